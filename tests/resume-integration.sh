#!/usr/bin/env bash
# resume-integration.sh BUILD_DIR - recovery in examples/fanq-sse, end to
# end with real curl clients: Last-Event-ID (header and lastEventId
# parameter) resumes from the channel history with nothing missed or
# repeated; a resume from too far back, and a client that falls behind
# under drop-oldest, get `fanq-gap` events with the right range.
# Loopback only; bounded to about 60 s; servers killed on every exit path.
set -u

BUILD=${1:-build}
BIN=$BUILD/examples/fanq-sse
HISTORY=250
SLOW_MESSAGES=100
SLOW_PAYLOAD=65536   # bytes: the silent client's socket buffers fill up

. "$(dirname "$0")/sse-lib.sh"
sse_init 60

if [ ! -x "$BIN" ]; then
	echo "resume-integration: $BIN not built"
	bad "fanq-sse is built"
	finish
fi

# sse.py exact FILE ITEM...: the events in FILE are exactly the ITEMs:
#   C:A-B      messages C:A .. C:B (ids "C:<seq>", data "C<seq>"); C:A one
#   gap:C:A-B  a fanq-gap for channel C, first A, last B, count B-A+1
#   gap:C      a fanq-gap for channel C without a range
# sse.py tile FILE C N: messages "m<seq> x..." and fanq-gaps of channel C
#   cover 1..N exactly, in order, with at least one gap.
cat > "$TMP/sse.py" <<'PY'
import json, sys

def events(path):
    text = open(path, "rb").read().decode()
    text = text.split("\r\n\r\n", 1)[-1]  # a raw client also got the head
    out = []
    for block in text.split("\n\n")[:-1]:  # the last one may be partial
        if not block or block.startswith(":"):
            continue
        ev = {"event": "message", "data": []}
        for line in block.split("\n"):
            key, _, value = line.partition(": ")
            if key == "data":
                ev["data"].append(value)
            else:
                ev[key] = value
        ev["data"] = "\n".join(ev["data"])
        out.append(ev)
    return out

def gap(ch, first=None, last=None):
    d = {"channel": ch}
    if first is not None:
        d.update(first=first, last=last, count=last - first + 1)
    return {"event": "fanq-gap", "data": d}

def message(ch, seq, data):
    return {"event": "message", "id": "%s:%d" % (ch, seq), "data": data}

def simple(ev):
    if ev["event"] == "fanq-gap":
        return {"event": "fanq-gap", "data": json.loads(ev["data"])}
    return ev

mode, path = sys.argv[1], sys.argv[2]
got = [simple(e) for e in events(path)]
if mode == "exact":
    want = []
    for item in sys.argv[3:]:
        parts = item.split(":")
        if parts[0] == "gap" and len(parts) == 2:
            want.append(gap(parts[1]))
        elif parts[0] == "gap":
            a, b = map(int, parts[2].split("-"))
            want.append(gap(parts[1], a, b))
        else:
            a, _, b = parts[1].partition("-")
            a, b = int(a), int(b or a)
            want += [message(parts[0], s, "%s%d" % (parts[0], s))
                     for s in range(a, b + 1)]
    if got != want:
        for i, (g, w) in enumerate(zip(got + [None] * len(want), want + [None] * len(got))):
            if g != w:
                print("event %d: got %s, want %s" % (i, g, w))
                break
        sys.exit(1)
else:
    ch, n, nxt, gaps = sys.argv[3], int(sys.argv[4]), 1, []
    for ev in got:
        if ev["event"] == "fanq-gap":
            d = ev["data"]
            ok = d == gap(ch, nxt, d.get("last", -1))["data"] and d["last"] < n
            nxt = d.get("last", -1) + 1
            gaps.append("%d..%d" % (d.get("first", -1), d.get("last", -1)))
        else:
            seq = nxt
            ok = ev == message(ch, seq, ev["data"]) and \
                ev["data"].startswith("m%d x" % seq)
            nxt += 1
        if not ok:
            print("at seq %d: unexpected %s" % (nxt, str(ev)[:200]))
            sys.exit(1)
    print("     gaps %s; messages and gaps cover 1..%d" % (" ".join(gaps), nxt - 1))
    sys.exit(0 if nxt == n + 1 and gaps else 1)
PY

# A client that stops reading until FLAG exists, then reads until it has
# seen WANT and the end of that event; writes what it read (head
# included) to OUT.
cat > "$TMP/slow.py" <<'PY'
import os, socket, sys, time
port, path, flag, out, want = sys.argv[1:6]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(port)))
s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
while not os.path.exists(flag):
    time.sleep(0.05)
s.settimeout(15)
data = b""
try:
    while want.encode() not in data or not data.endswith(b"\n\n"):
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
open(out, "wb").write(data)
PY

sse() { python3 "$TMP/sse.py" "$@"; }
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
connections() { # connections URL: open /events connections
	curl -s --max-time 5 "$1/metrics" | awk '$1 == "fanq_sse_connections" { print $2 }'
}
wait_connections() { # wait_connections URL N: up to 5 s
	for _ in $(seq 50); do [ "$(connections "$1")" = "$2" ] && return 0; sleep 0.1; done
	return 1
}
publish() { # publish URL CHANNEL FROM TO: bodies "<channel><seq>", seqs checked
	local i
	for i in $(seq "$3" "$4"); do
		curl -s --max-time 5 -d "$2$i" "$1/publish?channel=$2" |
			grep -q "\"seq\":$i," || return 1
	done
}
ids() { grep -c "^id: $2:" "$1" 2>/dev/null; }
wait_ids() { # wait_ids FILE CHANNEL N: up to 10 s for N message ids
	for _ in $(seq 100); do [ "$(ids "$1" "$2")" -ge "$3" ] && return 0; sleep 0.1; done
	return 1
}
stream() { # stream OUT CURL-ARGS...: an /events client in the background
	local out=$1
	shift
	curl -sN --max-time 40 "$@" > "$out" & pids+=($!)
}

# ------------------------------------------------ resume from history
if ! sse_start "$TMP/a.out" --threads 2 --history $HISTORY; then
	bad "server with --history starts"
	finish
fi
A=$URL
ok "server with --history $HISTORY listens"

stream "$TMP/first.out" "$A/events?channel=r"
first=${pids[-1]}
check "a client connects" wait_connections "$A" 1
check "r:1..100 published" publish "$A" r 1 100
check "it reads 100 messages" wait_ids "$TMP/first.out" r 100
kill "$first"
check "... and disconnects" wait_connections "$A" 0
last=$(sed -n 's/^id: //p' "$TMP/first.out" | tail -n 1)
check "its Last-Event-ID is r:100 (got $last)" [ "$last" = r:100 ]
check "r:101..300 published while it is away" publish "$A" r 101 300

stream "$TMP/second.out" -H "Last-Event-ID: $last" "$A/events?channel=r"
check "reconnected with Last-Event-ID: 200 missed messages" wait_ids "$TMP/second.out" r 200
check "r:301..305 published live" publish "$A" r 301 305
check "... arrive after them" wait_ids "$TMP/second.out" r 205
check "exactly r:101..305 in order: nothing lost or repeated" sse exact "$TMP/second.out" r:101-305

stream "$TMP/param.out" "$A/events?channel=r&lastEventId=r%3A290"
wait_ids "$TMP/param.out" r 15
check "lastEventId=r:290 parameter: exactly r:291..305" sse exact "$TMP/param.out" r:291-305

# The history keeps the last 250 of 305: r:56..305.
stream "$TMP/old.out" -H "Last-Event-ID: r:10" "$A/events?channel=r"
wait_ids "$TMP/old.out" r 250
check "from too far back: fanq-gap 11..55, then r:56..305" \
	sse exact "$TMP/old.out" gap:r:11-55 r:56-305

# A browser sends the last id it saw, of one channel: the other one's
# position is unknown, which a rangeless fanq-gap says.
stream "$TMP/multi.out" -H "Last-Event-ID: r:303" "$A/events?channel=r,s"
wait_ids "$TMP/multi.out" r 2
check "two channels, one id: fanq-gap for s, then r:304..305" \
	sse exact "$TMP/multi.out" gap:s r:304-305
stream "$TMP/both.out" "$A/events?channel=r,s&lastEventId=r:304,s:0"
wait_ids "$TMP/both.out" r 1
check "ids for both channels (lastEventId=r:304,s:0): r:305 only" \
	sse exact "$TMP/both.out" r:305

check "malformed Last-Event-ID -> 400" \
	[ "$(code -H 'Last-Event-ID: nonsense' "$A/events?channel=r")" = 400 ]
check "malformed lastEventId -> 400" [ "$(code "$A/events?channel=r&lastEventId=r:x")" = 400 ]

kill -TERM "$SERVER"
wait "$SERVER"; rc=$?
check "SIGTERM with histories held: clean exit (rc $rc)" [ "$rc" -eq 0 ]

# ------------------------------------- a client behind under drop-oldest
if ! sse_start "$TMP/b.out" --threads 1 --queue-max 4 --policy drop-oldest; then
	bad "drop-oldest server starts"
	finish
fi
B=$URL
python3 "$TMP/slow.py" "$PORT" "/events?channel=g" "$TMP/go" "$TMP/slow.out" \
	"id: g:$SLOW_MESSAGES"$'\n' & slow=$!; pids+=($slow)
check "a client that stops reading connects" wait_connections "$B" 1
pad=$(head -c $SLOW_PAYLOAD /dev/zero | tr '\0' x)
posted=0
for i in $(seq $SLOW_MESSAGES); do
	printf 'm%d %s' "$i" "$pad" > "$TMP/body"
	curl -s --max-time 5 --data-binary @"$TMP/body" "$B/publish?channel=g" |
		grep -q "\"seq\":$i," && posted=$((posted + 1))
done
check "$SLOW_MESSAGES messages of $SLOW_PAYLOAD bytes published" [ "$posted" -eq $SLOW_MESSAGES ]
touch "$TMP/go"
wait "$slow"
check "it reads on: fanq-gap events fill exactly the holes" \
	sse tile "$TMP/slow.out" g $SLOW_MESSAGES

kill -TERM "$SERVER"
wait "$SERVER"; rc=$?
check "SIGTERM: clean exit (rc $rc)" [ "$rc" -eq 0 ]

[ "$fail" -eq 0 ] || { echo "--- server stderr"; cat "$TMP"/*.out.err; }
finish
