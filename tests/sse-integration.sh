#!/usr/bin/env bash
# sse-integration.sh BUILD_DIR - end-to-end test of examples/fanq-sse.
#
# Starts the server on a free loopback port, streams with real `curl -N`
# clients, publishes with curl, and uses raw sockets (python3) for clients
# that never read or misbehave.  Checks ordering, drop accounting per
# policy, /metrics, malformed requests and clean shutdown.  Loopback only;
# bounded to about 30 s; the server is killed on every exit path.
set -u

BUILD=${1:-build}
BIN=$BUILD/examples/fanq-sse
MESSAGES=150
PAYLOAD=65536        # bytes per message: silent clients fill socket buffers
QUEUE_MAX=4

. "$(dirname "$0")/sse-lib.sh"
sse_init 30

if [ ! -x "$BIN" ]; then
	echo "sse-integration: $BIN not built"
	bad "fanq-sse is built"
	finish
fi

# Raw-socket clients: slow (never reads), status (one request, print the
# status line), slowloris (half a head; prints seconds until closed).
cat > "$TMP/raw.py" <<'PY'
import socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.settimeout(10)
s.connect(("127.0.0.1", port))
if mode == "slow":
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUser-Agent: never-reads\r\n\r\n"
               % sys.argv[3]).encode())
    time.sleep(60)
elif mode == "status":
    s.sendall(sys.argv[3].encode().decode("unicode_escape").encode("latin-1"))
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print(data.split(b"\r\n")[0].decode(errors="replace"))
elif mode == "slowloris":
    t0 = time.time()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        print("never closed"); sys.exit()
    print("%.0f" % (time.time() - t0))
PY

# Prometheus text: every sample line is `name{labels} value`.
cat > "$TMP/prom.py" <<'PY'
import re, sys
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*)?\})? (-?[0-9][0-9.eE+-]*)$')
bad = 0
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        continue
    m = sample.match(line)
    if not m:
        print("bad metrics line: %r" % line); bad = 1; continue
    print("%s%s %s" % (m.group(1), m.group(2) or "", m.group(5)))
sys.exit(bad)
PY

if ! sse_start "$TMP/server.out" --threads 2 --queue-max $QUEUE_MAX \
	--policy drop-oldest --keepalive 1; then
	bad "server starts"; finish
fi
ok "server listens on 127.0.0.1:$PORT"

metric() { # metric NAME[{labels}] from the last parsed scrape
	awk -v k="$1" '$1 == k { print $2 }' "$TMP/metrics.parsed"
}
scrape() {
	curl -s --max-time 5 "$URL/metrics" > "$TMP/metrics.txt" &&
		python3 "$TMP/prom.py" "$TMP/metrics.txt" > "$TMP/metrics.parsed"
}
wait_metric() { # wait_metric NAME VALUE: poll up to 5 s
	for _ in $(seq 50); do
		scrape && [ "$(metric "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

python3 "$TMP/raw.py" slowloris "$PORT" > "$TMP/slowloris.out" & SLOWLORIS=$!
curl -sN --max-time 25 -A fast-client "$URL/events?channel=t" > "$TMP/fast.out" & pids+=($!); disown $!
python3 "$TMP/raw.py" slow "$PORT" "/events?channel=t" & SLOW_OLD=$!; pids+=($!); disown $!
python3 "$TMP/raw.py" slow "$PORT" "/events?channel=t&policy=drop-new" & SLOW_NEW=$!; pids+=($!); disown $!
check "three /events clients connected" wait_metric fanq_sse_connections 3

# Each payload: "m<i> " then x's, one line; big enough to fill buffers.
pad=$(head -c $PAYLOAD /dev/zero | tr '\0' x)
posted=0
for i in $(seq $MESSAGES); do
	printf 'm%d %s' "$i" "$pad" > "$TMP/body"
	reply=$(curl -s --max-time 5 --data-binary @"$TMP/body" "$URL/publish?channel=t")
	case $reply in *'"seq":'*'"accepted":'*) posted=$((posted + 1));; esac
done
check "$MESSAGES publishes answered with seq/accepted" [ "$posted" -eq $MESSAGES ]
echo "$reply" | grep -q "\"seq\":$MESSAGES," && ok "last seq is $MESSAGES" || bad "last seq is $MESSAGES ($reply)"

fast_ids() { grep -c '^id: t:' "$TMP/fast.out" 2>/dev/null; }
for _ in $(seq 100); do [ "$(fast_ids)" -ge $MESSAGES ] && break; sleep 0.1; done
check "fast client got all $MESSAGES messages" [ "$(fast_ids)" -eq $MESSAGES ]
check "fast client got them in order, intact" python3 - "$TMP/fast.out" $MESSAGES $PAYLOAD <<'PY'
import sys
text, n, size = open(sys.argv[1]).read(), int(sys.argv[2]), int(sys.argv[3])
events = [e for e in text.split("\n\n") if e.strip() and not e.startswith(":")]
want = ["id: t:%d\ndata: m%d %s" % (i, i, "x" * size) for i in range(1, n + 1)]
sys.exit(0 if events == want else 1)
PY
check "fast client saw no gap event" [ "$(grep -c 'fanq-gap' "$TMP/fast.out")" -eq 0 ]

check "/metrics is Prometheus text" scrape
cp "$TMP/metrics.txt" "$TMP/metrics.first"
enq=$(metric fanq_enqueued_total)
dlv=$(metric fanq_delivered_total)
old=$(metric 'fanq_dropped_total{reason="evicted_oldest"}')
new=$(metric 'fanq_dropped_total{reason="full_new"}')
prio=$(metric 'fanq_dropped_total{reason="evicted_priority"}')
unsub=$(metric 'fanq_dropped_total{reason="unsubscribed"}')
depth=$(metric fanq_queued_messages)
echo "     enqueued=$enq delivered=$dlv evicted_oldest=$old full_new=$new depth=$depth"
check "publishes_total counts every POST" [ "$(metric fanq_sse_publishes_total)" = $MESSAGES ]
check "enqueued = messages x subscribers" [ "$enq" = $((3 * MESSAGES)) ]
check "drop-oldest client's drops are evicted_oldest" [ "${old:-0}" -gt 0 ]
check "drop-new client's drops are full_new" [ "${new:-0}" -gt 0 ]
check "no priority or unsubscribed drops yet" [ "$prio" = 0 ] && [ "$unsub" = 0 ]
check "deliveries include the fast client's $MESSAGES" [ "${dlv:-0}" -ge $MESSAGES ]
check "deliveries < enqueued: silent clients were not served" [ "${dlv:-0}" -lt "$enq" ]
# Depth counts queued plus taken-for-writing (at most 256 KiB per writev:
# 4 payloads here, plus one partly written).
check "depth max stays within --queue-max + one writev" \
	[ "$(metric fanq_queued_messages_max)" -le $((QUEUE_MAX + 5)) ]
check "every message delivered, dropped or queued" \
	[ $((dlv + old + new + depth)) = "$enq" ]

# Misbehaving clients.
status() { python3 "$TMP/raw.py" status "$PORT" "$1"; }
check "garbage request line -> 400" [ "$(status 'GARBAGE\r\n\r\n')" = "HTTP/1.1 400 Bad Request" ]
check "bad version -> 400" [ "$(status 'GET / HTTP/9\r\n\r\n')" = "HTTP/1.1 400 Bad Request" ]
big=$(head -c 10000 /dev/zero | tr '\0' a)
check "huge header -> 431" [ "$(status "GET /metrics HTTP/1.1\\r\\nX-Big: $big\\r\\n\\r\\n")" = "HTTP/1.1 431 Request Header Fields Too Large" ]
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
check "unknown path -> 404" [ "$(code "$URL/nope")" = 404 ]
check "POST /metrics -> 405" [ "$(code -X POST "$URL/metrics")" = 405 ]
check "GET /publish -> 405" [ "$(code "$URL/publish?channel=t")" = 405 ]
check "bad channel name -> 400" [ "$(code "$URL/events?channel=a%20b")" = 400 ]
head -c $((1024 * 1024 + 1)) /dev/zero > "$TMP/huge"
check "body over 1 MiB -> 413" [ "$(code --data-binary @"$TMP/huge" "$URL/publish?channel=t")" = 413 ]
check "chunked body -> 501" [ "$(code -H 'Transfer-Encoding: chunked' --data-binary x "$URL/publish?channel=t")" = 501 ]
wait "$SLOWLORIS"
s=$(cat "$TMP/slowloris.out")
check "partial head closed after ~5 s (took ${s}s)" [ "$s" -ge 4 ] && [ "$s" -le 8 ]
check "idle fast client got a keepalive comment" grep -qx ': keepalive' "$TMP/fast.out"

# Silent clients go away mid-write; their backlog counts as unsubscribed.
kill -9 "$SLOW_OLD" "$SLOW_NEW" 2>/dev/null
check "server closes dead clients" wait_metric fanq_sse_connections 1
scrape
unsub=$(metric 'fanq_dropped_total{reason="unsubscribed"}')
dlv=$(metric fanq_delivered_total)
old=$(metric 'fanq_dropped_total{reason="evicted_oldest"}')
new=$(metric 'fanq_dropped_total{reason="full_new"}')
echo "     after close: delivered=$dlv unsubscribed=$unsub"
check "closed clients: delivered + dropped = enqueued" \
	[ $((dlv + old + new + unsub + $(metric fanq_queued_messages))) = "$(metric fanq_enqueued_total)" ]

# Still serving after all that.
check "server process survived" kill -0 "$SERVER"
check "publish still works" [ "$(code --data-binary 'after' "$URL/publish?channel=t")" = 200 ]
for _ in $(seq 50); do grep -q '^data: after$' "$TMP/fast.out" && break; sleep 0.1; done
check "fast client got the message after the abuse" grep -q '^data: after$' "$TMP/fast.out"
check "multi-line body becomes data: lines" [ "$(code --data-binary $'l1\nl2' "$URL/publish?channel=t")" = 200 ]
for _ in $(seq 50); do grep -q '^data: l2$' "$TMP/fast.out" && break; sleep 0.1; done
check "... delivered as one event" grep -qzP 'id: t:\d+\ndata: l1\ndata: l2\n\n' "$TMP/fast.out"

kill -TERM "$SERVER"
wait "$SERVER"; rc=$?
check "SIGTERM: clean exit (rc $rc)" [ "$rc" -eq 0 ]
[ "$fail" -eq 0 ] || { echo "--- server stderr"; cat "$TMP/server.out.err"; }
finish
