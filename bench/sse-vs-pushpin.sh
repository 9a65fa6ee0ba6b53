#!/bin/bash
# bench/sse-vs-pushpin.sh - end to end over loopback: examples' fanq-sse
# against Pushpin (Debian package), same client, same load.
#
#   BUILD=build bench/sse-vs-pushpin.sh [--conns 64,1000] [--duration SEC]
#       [--publishers N] [--payload B] [--stalled S] [--threads N]
#       [--queue-max Q] [--policy P] [--out FILE]
#
# For each server and each client count K, sse-client (bench/sse-client.c)
# opens K SSE streams on channel "a" plus S streams that never read, then N
# publisher threads publish B-byte messages back to back for SEC seconds
# (fanq-sse: POST /publish?channel=a; Pushpin: its HTTP publish API, one
# item per request; each request answered before the next).  Reported:
# deliveries/s to the reading clients, publish-to-receive latency p50/p99
# under that load, events missing 2 s after the last publish, server RSS
# per open connection (all of Pushpin's processes), and what each
# never-reading client got once it finally read (events, fanq-gap notices,
# closed by the server).  --out appends one tab-separated line per run for
# fanq-bench --sse-results.
#
# Pushpin runs stock from a temp dir with its own config (its own zurl for
# origin requests, ports moved out of the way), behind a tiny GRIP origin
# (sse-client origin), with one change: its delivery rate limit
# (message_rate, 2500/s in the stock pushpin.conf) and its queue limit
# (message_hwm) set to -1, which pushpin-handler reads as "none" (its
# built-in default when the keys are absent; a large number would overflow
# its int batch arithmetic).  The run warns if Pushpin delivered at or
# under 2500/s.
set -eu

BUILD=${BUILD:-build}
conns_list=64,1000 duration=3 publishers=2 payload=512 stalled=1
threads=2 qmax=1024 policy=drop-new out=
while [ $# -gt 0 ]; do
	case "$1" in
	--conns) conns_list=$2 ;;
	--duration) duration=$2 ;;
	--publishers) publishers=$2 ;;
	--payload) payload=$2 ;;
	--stalled) stalled=$2 ;;
	--threads) threads=$2 ;;
	--queue-max) qmax=$2 ;;
	--policy) policy=$2 ;;
	--out) out=$2 ;;
	-h|--help) sed -n '2,25p' "$0"; exit 0 ;;
	*) echo "sse-vs-pushpin: unknown option $1" >&2; exit 2 ;;
	esac
	shift 2
done

SSE=$BUILD/examples/fanq-sse
CLIENT=$BUILD/bench/sse-client
for b in "$SSE" "$CLIENT"; do
	[ -x "$b" ] || { echo "sse-vs-pushpin: $b missing (make examples bench-build)" >&2; exit 1; }
done
if ! command -v pushpin >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pushpin >/dev/null
	else
		echo "sse-vs-pushpin: pushpin missing (apt-get install pushpin); fanq-sse only" >&2
	fi
fi
command -v curl >/dev/null || { echo "sse-vs-pushpin: curl missing" >&2; exit 1; }

tmp=$(mktemp -d /tmp/fanq-sse-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# Ports from the pid, below the ephemeral range and away from Pushpin's
# defaults (5560.., 7999); its own ports move by port_offset.
base=$((20000 + ($$ % 500) * 10))
fanq_port=$base origin_port=$((base + 1)) pushpin_port=$((base + 2))
offset=$((base - 5000))

wait_port() { # port: wait until something listens there
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "sse-vs-pushpin: nothing listens on port $1" >&2
	return 1
}

wait_stream() { # port: wait until GET /events answers 200 (a stream opens)
	local code
	for _ in $(seq 50); do
		code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' \
			"http://127.0.0.1:$1/events?channel=a" 2>/dev/null || true)
		[ "$code" = 200 ] && return 0
		sleep 0.2
	done
	echo "sse-vs-pushpin: no stream from port $1" >&2
	return 1
}

descendants() { # pid: it and all its descendants, comma-separated
	local list=$1 p
	for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		list="$list,$(descendants "$p")"
	done
	echo "$list"
}

kv() { # key, line: the value of key=value in line
	echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# name, rss pids, client args...: one run per client count
load() {
	local name=$1 rss=$2 k line rc
	shift 2
	for k in ${conns_list//,/ }; do
		rc=0
		line=$("$CLIENT" run --conns "$k" --duration "$duration" --rate 0 --messages 0 \
			--publishers "$publishers" --payload "$payload" --stalled "$stalled" \
			--rss-pids "$rss" --timeout $((30 + k / 50)) "$@") || rc=$?
		printf '%-9s %s\n' "$name" "$line"
		if [ -z "$line" ] || [ "$(kv received "$line")" = 0 ]; then
			echo "sse-vs-pushpin: $name delivered nothing to $k clients (rc $rc)" >&2
			continue
		fi
		if [ "$name" = pushpin ] && [ "${line/events_per_s=/}" != "$line" ] &&
		   [ "$(kv events_per_s "$line")" -le 2500 ] 2>/dev/null; then
			echo "sse-vs-pushpin: pushpin at or under its default 2500/s limit:" \
			     "is message_rate really raised?" >&2
		fi
		[ -z "$out" ] || printf 'sse\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
			"$name" "$k" "$publishers" "$payload" "$(kv events_per_s "$line")" \
			"$(awk -v u="$(kv p50_us "$line")" 'BEGIN { printf "%.0f", u * 1000 }')" \
			"$(awk -v u="$(kv p99_us "$line")" 'BEGIN { printf "%.0f", u * 1000 }')" \
			"$(kv missing "$line")" "$(kv rss_open "$line")" "$(kv rss_per_conn "$line")" \
			"$(kv stalled_published "$line")" "$(kv stalled "$line")" "$(kv stalled_events "$line")" \
			"$(kv stalled_gaps "$line")" "$(kv stalled_closed "$line")" >>"$out"
	done
}

echo "sse-vs-pushpin: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "clients $conns_list (+$stalled never reading); $publishers publishers back to back for" \
     "${duration}s, $payload-byte messages; fanq-sse --threads $threads --queue-max $qmax --policy $policy"

"$SSE" --port "$fanq_port" --threads "$threads" --queue-max "$qmax" --policy "$policy" \
	>"$tmp/fanq-sse.log" 2>&1 &
fanq_pid=$!
pids+=($fanq_pid)
wait_port "$fanq_port"
load fanq-sse "$fanq_pid" --port "$fanq_port" --publish fanq
kill "$fanq_pid" 2>/dev/null || true

command -v pushpin >/dev/null || exit 0
"$CLIENT" origin --port "$origin_port" --channel a &
pids+=($!)
mkdir -p "$tmp/run" "$tmp/log"
echo "* 127.0.0.1:$origin_port" >"$tmp/routes"
max_conns=0
for k in ${conns_list//,/ }; do [ "$k" -gt "$max_conns" ] && max_conns=$k; done
sed -e "s|^rundir=.*|rundir=$tmp/run|" -e "s|^logdir=.*|logdir=$tmp/log|" \
    -e "s|^http_port=.*|http_port=$pushpin_port|" -e "s|^port_offset=.*|port_offset=$offset|" \
    -e "s|^routesfile=.*|routesfile=$tmp/routes|" -e "s|^message_rate=.*|message_rate=-1|" \
    -e "s|^message_hwm=.*|message_hwm=-1|" \
    -e "s|^client_maxconn=.*|client_maxconn=$((max_conns + stalled + 1000))|" \
    -e "s|^services=.*|services=condure,zurl,pushpin-proxy,pushpin-handler|" \
    -e 's|^\[proxy\]|[proxy]\nzurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in\nzurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream\nzurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out|' \
    /etc/pushpin/pushpin.conf >"$tmp/pushpin.conf"
for key in message_rate message_hwm; do
	grep -q "^$key=-1$" "$tmp/pushpin.conf" ||
		{ echo "sse-vs-pushpin: could not raise Pushpin's $key" >&2; exit 1; }
done
pushpin --config "$tmp/pushpin.conf" >"$tmp/pushpin.log" 2>&1 &
pp_pid=$!
pids+=($pp_pid)
wait_port "$pushpin_port"
wait_port $((5561 + offset))
wait_stream "$pushpin_port" # proxy, handler and zurl are all up
load pushpin "$(descendants "$pp_pid")" --port "$pushpin_port" --publish pushpin \
	--publish-port $((5561 + offset))
