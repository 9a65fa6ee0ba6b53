#!/usr/bin/env bash
# health-integration.sh BUILD_DIR - fanq's diagnosis and eviction through
# examples/fanq-sse, with real clients on loopback:
#   fast    curl -N, reads everything
#   stuck   a raw socket that never reads (tiny receive buffer)
#   slow    curl --limit-rate 1K
# Part 1 (no eviction rule): the log names the slow connections by peer
# and User-Agent, in a handful of lines; /subscribers ranks them first;
# the fast client lost nothing.  Part 2 (--evict-full-ms): the stuck
# client is disconnected within the rule's time and the log says who and
# why; the fast client stays.  About 10 s; every server is killed on exit.
set -u

BUILD=${1:-build}
BIN=$BUILD/examples/fanq-sse
MESSAGES=150
PAYLOAD=65536        # bytes per message: the slow clients fill socket buffers
QUEUE_MAX=8
EVICT_MS=1000

. "$(dirname "$0")/sse-lib.sh"
sse_init 60

if [ ! -x "$BIN" ]; then
	bad "fanq-sse is built ($BIN)"
	finish
fi

# stuck PORT: /events, never reads; prints its own port.
# publish PORT N SIZE: N POSTs of SIZE bytes ("m<i> " then x's), one line each.
cat > "$TMP/client.py" <<'PY'
import http.client, socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
if mode == "stuck":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    print(s.getsockname()[1], flush=True)
    s.sendall(b"GET /events?channel=t HTTP/1.1\r\nHost: x\r\nUser-Agent: never-reads\r\n\r\n")
    time.sleep(60)
elif mode == "publish":
    n, size = int(sys.argv[3]), int(sys.argv[4])
    for i in range(1, n + 1):
        head = b"m%d " % i
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", "/publish?channel=t", head + b"x" * (size - len(head)))
        r = c.getresponse()
        r.read()
        if r.status != 200:
            sys.exit("publish %d: HTTP %d" % (i, r.status))
        c.close()
        time.sleep(0.005) # a fast reader keeps up even on a loaded host
elif mode == "trickle":
    # one message of 64 KiB every 100 ms until the stop file appears
    # (at most 10 s); prints how many
    stop, n = sys.argv[3], 0
    import os
    while not os.path.exists(stop) and n < 100:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", "/publish?channel=t", b"t%d " % n + b"x" * 65530)
        c.getresponse().read()
        c.close()
        n += 1
        time.sleep(0.1)
    print(n, flush=True)
PY

# start_server ARGS...: the server of these tests (sse_start); its stderr
# is $ERR
ERR=$TMP/server.out.err
start_server() {
	sse_start "$TMP/server.out" --threads 2 --queue-max $QUEUE_MAX --policy drop-oldest \
		--log-interval-ms 500 "$@"
}

stop_server() {
	kill -TERM "$SERVER"
	wait "$SERVER"
	local rc=$?
	SERVER=
	return $rc
}

metric() { # metric NAME: its value in a fresh scrape
	curl -s --max-time 5 "$URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}

wait_metric() { # wait_metric NAME VALUE TENTHS
	for _ in $(seq "$3"); do
		[ "$(metric "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

start_stuck() { # sets STUCK_PORT
	python3 "$TMP/client.py" stuck "$PORT" > "$TMP/stuck.port" & pids+=($!); disown $!
	for _ in $(seq 50); do
		STUCK_PORT=$(cat "$TMP/stuck.port")
		[ -n "$STUCK_PORT" ] && return 0
		sleep 0.1
	done
	return 1
}

fast_ids() { grep -c '^id: t:' "$TMP/fast.out" 2>/dev/null; }

fast_got_all() { # [N]: N messages expected (default MESSAGES)
	local want=${1:-$MESSAGES}
	for _ in $(seq 100); do [ "$(fast_ids)" -ge "$want" ] && break; sleep 0.1; done
	[ "$(fast_ids)" -eq "$want" ] && ! grep -q fanq-gap "$TMP/fast.out"
}

# ---------------------------------------------------------------- part 1

if ! start_server; then
	bad "server starts"; cat "$ERR"; finish
fi
ok "server listens on $URL"
curl -sN --max-time 40 -A fast-client "$URL/events?channel=t" > "$TMP/fast.out" & pids+=($!); disown $!
start_stuck || bad "stuck client connected"
curl -sN --max-time 40 --limit-rate 1K -A slow-reader "$URL/events?channel=t" \
	> /dev/null & pids+=($!); disown $!
check "three /events clients connected" wait_metric fanq_sse_connections 3 50

check "$MESSAGES publishes of $PAYLOAD bytes" \
	python3 "$TMP/client.py" publish "$PORT" $MESSAGES $PAYLOAD
check "fast client got all $MESSAGES messages, no gap" fast_got_all

# The library's lines name the slow connections.
stuck_lines() { grep "^fanq: sub [0-9]* peer=127.0.0.1:$STUCK_PORT ua=never-reads " "$ERR"; }
slow_lines() { grep "^fanq: sub [0-9]* peer=127.0.0.1:[0-9]* ua=slow-reader " "$ERR"; }
stuck_first_drop() { stuck_lines | grep -q 'channel=t policy=drop-oldest first drop (seq [0-9]*, evicted_oldest)'; }
slow_first_drop() { slow_lines | grep -q 'first drop'; }
stuck_summary() {
	stuck_lines | grep -Eq "channel=t policy=drop-oldest dropped [0-9]+ \(seq [0-9]+\.\.[0-9]+\) in [0-9.]+s, queue [0-9]+/$QUEUE_MAX msgs"
}
sleep 0.7 # one summary interval
check "log names the stuck client (peer 127.0.0.1:$STUCK_PORT, ua never-reads) at its first drop" \
	stuck_first_drop
check "log names the --limit-rate client (ua slow-reader) at its first drop" slow_first_drop
check "drop summaries give a count, seq range, time and queue" stuck_summary
check "the fast client is never named" [ "$(grep -c 'ua=fast-client' "$ERR")" -eq 0 ]

curl -s --max-time 5 "$URL/subscribers?top=3" > "$TMP/top.json"
curl -s --max-time 5 "$URL/subscribers?top=3&by=drops" > "$TMP/top-drops.json"
check "/subscribers ranks the slow clients first, by depth and by drops, and the burst stayed a few lines" \
	python3 - "$TMP/top.json" "$TMP/top-drops.json" "$STUCK_PORT" "$ERR" <<'PY'
import json, sys
by_depth, by_drops = (json.load(open(f)) for f in sys.argv[1:3])
log = open(sys.argv[4]).read().splitlines()
for ranking in (by_depth, by_drops):
    uas = [s["ua"] for s in ranking]
    assert len(ranking) == 3, ranking
    assert set(uas[:2]) == {"never-reads", "slow-reader"}, uas
    assert uas[2] == "fast-client", uas
    assert ranking[2]["depth"] == 0 and sum(ranking[2]["drops"].values()) == 0
stuck = [s for s in by_depth if s["ua"] == "never-reads"][0]
assert stuck["peer"] == "127.0.0.1:" + sys.argv[3], stuck
assert stuck["depth"] >= 8 and stuck["over_high"] is True, stuck
for s in by_depth[:2]:
    drops = s["drops"]["evicted_oldest"]
    lines = [l for l in log if ("ua=" + s["ua"] + " ") in l]
    print("     %s: %d drops in %d log lines" % (s["ua"], drops, len(lines)))
    assert drops >= 40 and len(lines) <= 15, (drops, lines)
PY
check "/subscribers?top=0 -> 400" \
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/subscribers?top=0")" = 400 ]
check "SIGTERM: clean exit" stop_server
for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
pids=()

# ---------------------------------------------------------------- part 2

if ! start_server --evict-full-ms $EVICT_MS; then
	bad "server with --evict-full-ms starts"; finish
fi
curl -sN --max-time 40 -A fast-client "$URL/events?channel=t" > "$TMP/fast.out" & pids+=($!); disown $!
start_stuck || bad "stuck client connected"
check "two /events clients connected" wait_metric fanq_sse_connections 2 50
python3 "$TMP/client.py" publish "$PORT" $MESSAGES $PAYLOAD
t0=$(date +%s%N)
# The stuck socket may still take data for a while after the burst (the
# kernel grows its send buffer; seen on a loaded host), so its queue is
# kept full by a trickle, as a live channel would, until it is gone.
# Then the rule's time, at most a tick (100 ms) and the worker's
# reaction; 3 s of slack for a loaded host (sanitizer builds, CI
# neighbours).
python3 "$TMP/client.py" trickle "$PORT" "$TMP/trickle.stop" > "$TMP/trickle.n" &
trickle=$!
wait_metric fanq_sse_connections 1 $((EVICT_MS / 100 + 35))
ms=$((($(date +%s%N) - t0) / 1000000))
touch "$TMP/trickle.stop"
wait $trickle
trickled=$(cat "$TMP/trickle.n")
check "stuck client disconnected ${ms} ms after the burst (rule: full for ${EVICT_MS} ms)" \
	[ "$(metric fanq_sse_connections)" = 1 ] && [ "$ms" -le $((EVICT_MS + 3000)) ]
check "evictions_total{rule=full} is 1" [ "$(metric 'fanq_evictions_total{rule="full"}')" = 1 ]
check "fanq logs the eviction with peer, UA and why" \
	grep -Eq "^fanq: sub [0-9]+ peer=127.0.0.1:$STUCK_PORT ua=never-reads policy=drop-oldest evicted \(full\): queue full for [0-9.]+s" "$ERR"
check "fanq-sse logs whom it closed and why" \
	grep -q "^fanq-sse: closing 127.0.0.1:$STUCK_PORT ua=\"never-reads\": evicted by rule full" "$ERR"
check "fast client got all $MESSAGES + $trickled messages and stays connected" \
	fast_got_all $((MESSAGES + trickled))
check "... and was not evicted" [ "$(grep -c 'ua=fast-client' "$ERR")" -eq 0 ]
check "SIGTERM: clean exit" stop_server
[ "$fail" -eq 0 ] || { echo "--- server stderr"; tail -30 "$ERR"; }
finish
