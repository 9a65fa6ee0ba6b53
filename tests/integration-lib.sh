# integration-lib.sh - sourced (bash) by every tests/*-integration.sh:
# the tally, a watchdog, and cleanup of what the script started.
#
#   . "$(dirname "$0")/integration-lib.sh"
#   it_start NAME SECONDS   TERM the script after SECONDS (exit 124)
#   pids+=($!)              background clients: killed on exit
#   SERVER=$!               the server under test: killed on exit
#   check WHAT CMD...       "ok" or "FAIL" by CMD's exit status
#   finish                  print "N passed, M failed" and exit
# $TMP is a scratch folder, removed on exit.

pass=0 fail=0
pids=()
TMP=$(mktemp -d)

it_cleanup() {
	local p
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	kill -TERM "$WATCHDOG" 2>/dev/null
	[ -n "${SERVER:-}" ] && kill -9 "$SERVER" 2>/dev/null
	rm -rf "$TMP"
}

it_start() {
	trap it_cleanup EXIT
	# shellcheck disable=SC2064 # the name is fixed now
	trap "echo '$1: timed out'; exit 124" TERM
	# the watchdog's own TERM (from it_cleanup) ends its sleep
	( trap 'kill $s; exit' TERM; sleep "$2" & s=$!; wait $s; kill -TERM $$ ) \
		>/dev/null 2>&1 & WATCHDOG=$!; disown $!
}

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }
