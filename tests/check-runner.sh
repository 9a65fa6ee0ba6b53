#!/bin/sh
# Run fanq's Check suites, then the integration scripts.
#
#   tests/check-runner.sh [--no-integration] BUILD_DIR SUITE_BINARY...
#
# A suite passes when it exits 0 AND its closing line reads
# "100%: Checks: N, Failures: 0, Errors: 0" with N > 0: a suite whose
# tests were never added to its runner reports 0 checks and exits 0.
# Each tests/*-integration.sh then runs with BUILD_DIR as $1 and passes
# when it exits 0 (an executable script runs through its shebang, any
# other with bash).  FANQ_TEST_WRAPPER (e.g. a valgrind command line) is
# put in front of every suite binary.  Each suite's output is kept in
# BUILD_DIR/tests/<suite>.log.  The last line is "N passed, M failed",
# counting suites and scripts; the exit status is 1 if M > 0.

integration=1
if [ "$1" = "--no-integration" ]; then
	integration=0
	shift
fi
if [ $# -lt 2 ]; then
	echo "usage: $0 [--no-integration] BUILD_DIR SUITE_BINARY..." >&2
	exit 2
fi
build=$1
shift
tests_dir=$(dirname "$0")

passed=0
failed=0
checks=0
failed_names=""

pass() {
	passed=$((passed + 1))
	echo "PASS: $1"
}

fail() {
	failed=$((failed + 1))
	failed_names="$failed_names $1"
	echo "FAIL: $1 ($2)"
}

for bin in "$@"; do
	name=$(basename "$bin")
	log="$build/tests/$name.log"
	mkdir -p "$build/tests"
	# shellcheck disable=SC2086 # the wrapper is a command line
	$FANQ_TEST_WRAPPER "$bin" >"$log" 2>&1
	rc=$?
	cat "$log"
	summary=$(sed -n 's/.*%: Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' "$log" | tail -n 1)
	if [ -z "$summary" ]; then
		fail "$name" "no Check summary line, exit status $rc"
		continue
	fi
	n=$(echo "$summary" | cut -d' ' -f1)
	f=$(echo "$summary" | cut -d' ' -f2)
	e=$(echo "$summary" | cut -d' ' -f3)
	checks=$((checks + n))
	if [ "$n" -eq 0 ]; then
		fail "$name" "0 checks ran"
	elif [ "$f" -ne 0 ] || [ "$e" -ne 0 ]; then
		fail "$name" "$f failures, $e errors"
	elif [ "$rc" -ne 0 ]; then
		fail "$name" "exit status $rc"
	else
		pass "$name ($n checks)"
	fi
done

if [ "$integration" -eq 1 ]; then
	for script in "$tests_dir"/*-integration.sh; do
		[ -e "$script" ] || continue
		name=$(basename "$script")
		echo "=== $name $build"
		# run through its shebang when executable, else with bash
		if [ -x "$script" ]; then set -- "$script"; else set -- bash "$script"; fi
		if "$@" "$build"; then
			pass "$name"
		else
			fail "$name" "exit status $?"
		fi
	done
fi

echo "--- $checks checks in the suites; failed:${failed_names:- none}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
