#!/usr/bin/env bash
# examples-integration.sh BUILD_DIR - the small example programs run and
# report every message they published as received: pubsub (plain pop
# loop) and fanq-uv (the group's eventfd inside a libuv loop).
set -u

BUILD=${1:-build}
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# $1: program, $2: regex its last line must match
run() {
	local bin=$BUILD/examples/$1 out rc
	if [ ! -x "$bin" ]; then bad "$1 built"; return; fi
	out=$(timeout 30 "$bin" 2>&1); rc=$?
	if [ $rc -ne 0 ]; then bad "$1 exits 0 (rc $rc)"; echo "$out" | tail -5; return; fi
	ok "$1 exits 0"
	if echo "$out" | tail -1 | grep -Eq "$2"; then ok "$1: $2"
	else bad "$1: last line '$(echo "$out" | tail -1)' !~ $2"; fi
}

run fanq-uv '^published ([0-9]+), received \1$'
run pubsub '^keep-last: enqueued 6, delivered 3, dropped 0 new \+ 3 oldest, queued 0$'
# every summary line of pubsub balances: enqueued = delivered + dropped + queued
if "$BUILD/examples/pubsub" 2>&1 | awk '/enqueued/ {
	gsub(/,/, ""); n++
	for (i = 1; i <= NF; i++) v[$i] = $(i + 1)
	e = v["enqueued"]; d = v["delivered"]; q = v["queued"]
	# "dropped A new + B oldest"
	for (i = 1; i <= NF; i++) if ($i == "dropped") dr = $(i + 1) + $(i + 4)
	if (e != d + dr + q) bad = 1
} END { exit (n == 0 || bad) }'; then ok "pubsub: enqueued = delivered + dropped + queued"
else bad "pubsub: accounting lines balance"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
