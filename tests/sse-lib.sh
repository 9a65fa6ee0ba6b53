# sse-lib.sh - what the fanq-sse integration scripts share; sourced by
# them (tests/check-runner.sh runs only tests/*-integration.sh).
#
#   sse_init SECONDS         $TMP, cleanup on every exit path (servers,
#                            $SERVER and the pids in $pids killed), a
#                            watchdog that ends the script after SECONDS
#   ok / bad / check / finish  tallies; finish exits with the verdict
#   sse_start OUT ARGS...    start $BIN --port 0 ARGS, stdout to OUT and
#                            stderr to OUT.err; sets SERVER (its pid),
#                            PORT and URL, or returns 1
#
# Loopback only.  The caller sets BIN before sse_start.

pass=0 fail=0
pids=()
servers=()

_sse_cleanup() {
	local p
	for p in "${pids[@]}" "${servers[@]}" ${SERVER:+"$SERVER"}; do
		kill -9 "$p" 2>/dev/null
	done
	kill -TERM "$WATCHDOG" 2>/dev/null
	rm -rf "$TMP"
}

sse_init() {
	TMP=$(mktemp -d)
	trap _sse_cleanup EXIT
	trap 'echo "$(basename "$0"): timed out"; exit 124' TERM
	# Watchdog: TERM us after $1 s; its own TERM (from cleanup) ends its sleep.
	( trap 'kill $s; exit' TERM; sleep "$1" & s=$!; wait $s; kill -TERM $$ ) \
		>/dev/null 2>&1 & WATCHDOG=$!; disown $!
}

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

sse_start() {
	local out=$1
	shift
	: > "$out"
	"$BIN" --port 0 "$@" > "$out" 2> "$out.err" &
	SERVER=$!
	servers+=("$SERVER")
	PORT=
	for _ in $(seq 50); do
		PORT=$(sed -n 's/.*listening on 127\.0\.0\.1 port \([0-9]*\).*/\1/p' "$out")
		[ -n "$PORT" ] && break
		sleep 0.1
	done
	[ -n "$PORT" ] || { cat "$out.err"; return 1; }
	URL=http://127.0.0.1:$PORT
}
