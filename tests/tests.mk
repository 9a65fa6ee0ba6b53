# fanq's test suites, included by the top-level Makefile.
#
#   make check           build and run every Check suite, then every
#                        tests/*-integration.sh with the build dir as $1
#   make check-asan      the same in build-asan (ASan + UBSan)
#   make check-tsan      the same in build-tsan (ThreadSanitizer)
#   make check-valgrind  every suite under valgrind memcheck, no fork
#
# Other parts of the tree may add prerequisites to `check` (an example
# server an integration script needs); the recipe stays here.

TEST_SUITES := policy accounting channel badinput group monitor health stress
TEST_BINS := $(TEST_SUITES:%=$(BUILD)/tests/test_%)
TEST_MAIN_OBJ := $(BUILD)/tests/test_main.o
TEST_RUNNER := sh tests/check-runner.sh

# Check's per-test timeouts scale with this under the slower builds.
TEST_TIMEOUT_MULTIPLIER := $(if $(SAN),4,1)

$(BUILD)/tests/%.o: tests/%.c tests/test_util.h include/fanq.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

$(TEST_BINS): $(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_MAIN_OBJ) $(STATIC_LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_MAIN_OBJ) $(FANQ_LINK) $(CHECK_LIBS)

check: $(TEST_BINS)
	CK_TIMEOUT_MULTIPLIER=$(TEST_TIMEOUT_MULTIPLIER) \
	  $(TEST_RUNNER) $(BUILD) $(TEST_BINS)

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

check-valgrind: $(TEST_BINS)
	CK_FORK=no FANQ_TEST_WRAPPER="$(VALGRIND)" \
	  $(TEST_RUNNER) --no-integration $(BUILD) $(TEST_BINS)
