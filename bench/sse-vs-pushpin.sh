#!/bin/bash
# bench/sse-vs-pushpin.sh - end to end over loopback: examples' fanq-sse
# against Pushpin (Debian package), same client, same load.
#
#   BUILD=build bench/sse-vs-pushpin.sh [--conns K] [--messages M] [--rate R]
#                                       [--threads N] [--queue-max Q] [--policy P]
#
# For each server, sse-client opens K SSE streams on channel "a", then
# publishes M messages at R/s (fanq-sse: POST /publish?channel=a; Pushpin:
# its HTTP publish API) and reports events received, missing (not there
# 2 s after the last publish) and the latency from publish to receipt.  Pushpin runs from a temp dir with its own
# config (its own zurl for origin requests, so /var/run/zurl is not
# needed), behind a tiny GRIP origin (sse-client origin), with its message
# rate limit (2500/s by default) raised out of the way.
set -eu

BUILD=${BUILD:-build}
conns=1000 messages=1000 rate=100 threads=2 qmax=1024 policy=drop-new
while [ $# -gt 0 ]; do
	case "$1" in
	--conns) conns=$2 ;;
	--messages) messages=$2 ;;
	--rate) rate=$2 ;;
	--threads) threads=$2 ;;
	--queue-max) qmax=$2 ;;
	--policy) policy=$2 ;;
	-h|--help) sed -n '2,13p' "$0"; exit 0 ;;
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

load() { # name, client args...
	local name=$1
	shift
	printf '%-10s ' "$name"
	"$CLIENT" run --conns "$conns" --messages "$messages" --rate "$rate" "$@" || true
}

echo "sse-vs-pushpin: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "conns=$conns messages=$messages rate=$rate/s; fanq-sse --threads $threads --queue-max $qmax --policy $policy"

"$SSE" --port "$fanq_port" --threads "$threads" --queue-max "$qmax" --policy "$policy" \
	>"$tmp/fanq-sse.log" 2>&1 &
pids+=($!)
wait_port "$fanq_port"
load fanq-sse --port "$fanq_port" --publish fanq
kill "${pids[0]}" 2>/dev/null || true

command -v pushpin >/dev/null || exit 0
"$CLIENT" origin --port "$origin_port" --channel a &
pids+=($!)
mkdir -p "$tmp/run" "$tmp/log"
echo "* 127.0.0.1:$origin_port" >"$tmp/routes"
sed -e "s|^rundir=.*|rundir=$tmp/run|" -e "s|^logdir=.*|logdir=$tmp/log|" \
    -e "s|^http_port=.*|http_port=$pushpin_port|" -e "s|^port_offset=.*|port_offset=$offset|" \
    -e "s|^routesfile=.*|routesfile=$tmp/routes|" -e "s|^message_rate=.*|message_rate=100000000|" \
    -e "s|^message_hwm=.*|message_hwm=100000000|" \
    -e "s|^client_maxconn=.*|client_maxconn=$((conns + 1000))|" \
    -e "s|^services=.*|services=condure,zurl,pushpin-proxy,pushpin-handler|" \
    -e 's|^\[proxy\]|[proxy]\nzurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in\nzurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream\nzurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out|' \
    /etc/pushpin/pushpin.conf >"$tmp/pushpin.conf"
pushpin --config "$tmp/pushpin.conf" >"$tmp/pushpin.log" 2>&1 &
pids+=($!)
wait_port "$pushpin_port"
wait_port $((5561 + offset))
load pushpin --port "$pushpin_port" --publish pushpin --publish-port $((5561 + offset))
