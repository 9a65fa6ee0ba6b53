# libFuzzer targets, included by tests/tests.mk.
#
#   make fuzz [FUZZ_SECONDS=30]  build build-fuzz/tests/fuzz/fuzz_* with
#                                clang (ASan + UBSan) and run each target
#                                for FUZZ_SECONDS
#
#   fuzz_api   random API call sequences, the invariant checker as oracle
#   fuzz_http  fanq-sse's request-head parser (examples/http.c)
#
# Each target starts from its committed seeds, tests/fuzz/corpus/<target>/,
# and keeps what it finds in build-fuzz/corpus/<target>/ (not committed;
# minimize with -merge=1 before adding any of it to the seeds).  A crash
# or a hang over 10 s is written to build-fuzz/crash-<target>-* or
# timeout-<target>-*, and `make fuzz` fails.  Replay one with
# build-fuzz/tests/fuzz/fuzz_<target> FILE.

FUZZ_SECONDS ?= 30
FUZZ_TARGETS := api http
FUZZ_BUILD := build-fuzz
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/tests/fuzz/fuzz_%)

$(BUILD)/tests/fuzz/fuzz_api: $(BUILD)/tests/fuzz/fuzz_api.o $(BUILD)/tests/invariant.o $(STATIC_LIB)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $(filter %.o,$^) $(FANQ_LINK)

$(BUILD)/tests/fuzz/fuzz_http: $(BUILD)/tests/fuzz/fuzz_http.o $(BUILD)/examples/http.o
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^

.PHONY: fuzz
fuzz:
	$(MAKE) SAN=fuzz CC=clang $(FUZZ_BINS)
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t && \
	  $(FUZZ_BUILD)/tests/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	    -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/ \
	    $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done
