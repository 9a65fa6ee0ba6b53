# fanq's test suites, included by the top-level Makefile.
#
#   make check           build and run every Check suite, then every
#                        tests/*-integration.sh with the build dir as $1
#   make check-asan      the same in build-asan (ASan + UBSan)
#   make check-tsan      the same in build-tsan (ThreadSanitizer)
#   make check-valgrind  every suite under valgrind memcheck, no fork
#   make check-allocfail the allocation-failure walk (test_allocfail) in
#                        build-allocfail: -DFANQ_ALLOC_FAIL, ASan + UBSan
#
#   SUITE="history ..."  with any of them: only those suites, and no
#                        integration scripts (make check-tsan SUITE=history)
#
# Other parts of the tree may add prerequisites to `check` (an example
# server an integration script needs); the recipe stays here.

TEST_SUITES := policy cursor accounting channel badinput group wakeup history monitor health stress soak misuse invariant
TEST_BINS := $(TEST_SUITES:%=$(BUILD)/tests/test_%)
RUN_SUITES := $(if $(SUITE),$(filter $(SUITE),$(TEST_SUITES)),$(TEST_SUITES))
RUN_BINS := $(RUN_SUITES:%=$(BUILD)/tests/test_%)
RUN_INTEGRATION := $(if $(SUITE),--no-integration)
$(if $(SUITE),$(if $(filter-out $(TEST_SUITES),$(SUITE)),\
  $(error SUITE: $(filter-out $(TEST_SUITES),$(SUITE)) not in $(TEST_SUITES))))
# Linked into every suite: the runner and the invariant checker.
TEST_COMMON_OBJS := $(BUILD)/tests/test_main.o $(BUILD)/tests/invariant.o
TEST_RUNNER := sh tests/check-runner.sh

# Check's per-test timeouts scale with this under the slower builds.
TEST_TIMEOUT_MULTIPLIER := $(if $(SAN),4,1)

$(BUILD)/tests/%.o: tests/%.c tests/test_util.h tests/invariant.h include/fanq.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

$(TEST_BINS) $(BUILD)/tests/test_allocfail: $(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_COMMON_OBJS) $(STATIC_LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_COMMON_OBJS) $(FANQ_LINK) $(CHECK_LIBS)

check: $(RUN_BINS)
	CK_TIMEOUT_MULTIPLIER=$(TEST_TIMEOUT_MULTIPLIER) \
	  $(TEST_RUNNER) $(RUN_INTEGRATION) $(BUILD) $(RUN_BINS)

check-asan:
	ASAN_OPTIONS=detect_leaks=1 \
	UBSAN_OPTIONS=print_stacktrace=1 \
	  $(MAKE) SAN=asan check

# tests/tsan.supp names liburcu only (why: see the file).
check-tsan:
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp second_deadlock_stack=1" \
	  $(MAKE) SAN=tsan check

# CK_FORK=no: one process per suite, so valgrind sees every test (Check's
# timeouts are off then; the stress test bounds itself in time).
VALGRIND := valgrind -q --tool=memcheck --error-exitcode=1 --leak-check=full \
	--fair-sched=yes --suppressions=$(CURDIR)/tests/valgrind.supp

VALGRIND_STAMP := $(BUILD)/.valgrind-ok
$(VALGRIND_STAMP):
	$(call fanq_apt,valgrind)

check-valgrind: $(RUN_BINS) $(VALGRIND_STAMP)
	CK_FORK=no FANQ_TEST_WRAPPER="$(VALGRIND)" \
	  $(TEST_RUNNER) --no-integration $(BUILD) $(RUN_BINS)

# Its hook (lib/alloc_fail.h) exists only in that build, so the suite is
# built and run there alone.
ALLOCFAIL_BIN := build-allocfail/tests/test_allocfail

check-allocfail:
	$(MAKE) SAN=allocfail $(ALLOCFAIL_BIN)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(TEST_RUNNER) --no-integration build-allocfail $(ALLOCFAIL_BIN)

include tests/fuzz/fuzz.mk
