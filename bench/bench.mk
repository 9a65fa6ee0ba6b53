# bench/bench.mk - fanq-bench, included by the top Makefile.
#
#   make bench          default comparison (a few minutes on 2 cores): the
#                       end-to-end fanq-sse vs Pushpin run, then fanq-bench;
#                       writes bench/results/summary.json, table.txt, sse.tsv
#                       and fanout.png, and prints the table and the targets
#   make bench-quick    fanq-bench --quick only (under 30 s)
#   make bench BENCH_ARGS="--subs 1,1000 --systems fanq,zmq"
#   make bench-sse      the end-to-end comparison alone
#   make bench-cost     instructions per delivery under callgrind (bench/cost.sh)
#
# The peers (ZeroMQ, nng) and gnuplot are needed by the bench only; the
# library and the tests never link them.  Missing Debian packages are
# installed when run as root, as `make deps` does for the library.

# Building needs the peers; running `make bench` also needs gnuplot (PNG).
BENCH_BUILD_PKGS := libzmq3-dev libnng-dev
BENCH_RUN_PKGS := gnuplot-nox pushpin
BENCH_DEPS_STAMP := $(BUILD)/.bench-deps-ok
BENCH_RUN_STAMP := $(BUILD)/.bench-run-deps-ok
BENCH_DIR := $(BUILD)/bench
BENCH_BIN := $(BENCH_DIR)/fanq-bench
BENCH_SRCS := bench/fanq-bench.c $(sort $(wildcard bench/sys_*.c))
BENCH_OBJS := $(BENCH_SRCS:%.c=$(BUILD)/%.o)
SSE_CLIENT := $(BENCH_DIR)/sse-client
BENCH_RESULTS := bench/results
BENCH_ARGS ?=
BENCH_SSE_ARGS ?=
BENCH_COST_ARGS ?=
BENCH_CFLAGS = $(shell pkg-config --cflags libzmq 2>/dev/null)
BENCH_LIBS = $(shell pkg-config --libs libzmq 2>/dev/null || echo -lzmq) -lnng

.PHONY: bench bench-quick bench-deps bench-build bench-sse bench-cost

# Plain `make` builds the bench too, only where its peers are installed
# already: the library never waits on them.
BENCH_HAVE_PEERS := $(shell dpkg-query -W -f='$${Status}\n' $(BENCH_BUILD_PKGS) 2>/dev/null | grep -c "install ok installed")
ifeq ($(BENCH_HAVE_PEERS),2)
all: $(BENCH_BIN) $(SSE_CLIENT)
endif

bench-deps: $(BENCH_DEPS_STAMP) $(BENCH_RUN_STAMP)
$(BENCH_DEPS_STAMP):
	$(call fanq_apt,$(BENCH_BUILD_PKGS))
$(BENCH_RUN_STAMP):
	$(call fanq_apt,$(BENCH_RUN_PKGS))

$(BUILD)/bench/%.o: bench/%.c bench/bench.h include/fanq.h | $(BENCH_DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(BENCH_CFLAGS) -c $< -o $@

$(BENCH_BIN): $(BENCH_OBJS) $(STATIC_LIB)
	$(CC) -o $@ $(BENCH_OBJS) $(LDFLAGS) $(FANQ_LINK) $(BENCH_LIBS)

bench-build: $(BENCH_BIN) $(SSE_CLIENT)

# Needs neither fanq nor the peers: a plain loopback HTTP load generator.
$(SSE_CLIENT): bench/sse-client.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LDFLAGS)

# End to end: examples' fanq-sse against Pushpin (needs the pushpin package).
bench-sse: $(SSE_CLIENT) $(BUILD)/examples/fanq-sse
	BUILD=$(BUILD) bench/sse-vs-pushpin.sh $(BENCH_SSE_ARGS)

bench-cost: $(BENCH_BIN)
	BUILD=$(BUILD) bench/cost.sh $(BENCH_COST_ARGS)

# $(1): extra fanq-bench flags.  Table to stdout (and bench/results/table.txt).
define bench_run
	@mkdir -p $(BENCH_RESULTS)
	@$(BENCH_BIN) $(1) $(BENCH_ARGS) --json $(BENCH_RESULTS)/summary.json \
	  --plot-data $(BENCH_RESULTS)/fanout.dat >$(BENCH_RESULTS)/table.txt; \
	  rc=$$?; cat $(BENCH_RESULTS)/table.txt; exit $$rc
	@if command -v gnuplot >/dev/null; then \
	  gnuplot -e "datafile='$(BENCH_RESULTS)/fanout.dat'; outfile='$(BENCH_RESULTS)/fanout.png'" \
	    bench/plot.gp && echo "fanq-bench: wrote $(BENCH_RESULTS)/summary.json $(BENCH_RESULTS)/fanout.png"; \
	else echo "fanq-bench: gnuplot missing; no PNG"; fi
endef

# The end-to-end run goes first: fanq-bench merges its rows (sse.tsv) into
# the table, the JSON and the targets.
bench: $(BENCH_BIN) $(SSE_CLIENT) $(BUILD)/examples/fanq-sse | $(BENCH_RUN_STAMP)
	@mkdir -p $(BENCH_RESULTS)
	@rm -f $(BENCH_RESULTS)/sse.tsv
	BUILD=$(BUILD) bench/sse-vs-pushpin.sh --out $(BENCH_RESULTS)/sse.tsv $(BENCH_SSE_ARGS) \
	  || echo "fanq-bench: the end-to-end run failed; its rows are missing"
	$(call bench_run,--sse-results $(BENCH_RESULTS)/sse.tsv)

bench-quick: $(BENCH_BIN) | $(BENCH_RUN_STAMP)
	$(call bench_run,--quick)

# RSS per idle subscriber (README "Memory"); needs only the library.
MEM_IDLE := $(BENCH_DIR)/mem-idle
all: $(MEM_IDLE)
$(MEM_IDLE): bench/mem-idle.c include/fanq.h $(STATIC_LIB) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LDFLAGS) $(FANQ_LINK)

# Recovery after a burst the channel cannot keep up with (README "How it
# works", the hand-over); needs only the library.
BURST := $(BENCH_DIR)/burst
all: $(BURST)
$(BURST): bench/burst.c include/fanq.h $(STATIC_LIB) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LDFLAGS) $(FANQ_LINK)
