#!/bin/bash
# bench/cost.sh - instructions per delivery of each in-process system, from
# callgrind: deterministic, so it compares code changes on a busy machine
# where wall-clock numbers cannot.
#
#   bench/cost.sh [--subs 1,64,1000,10000] [--msg-bytes 256] [--systems fanq,mutex,spsc]
#                 [--queue-max Q] [--policy drop-new|drop-oldest]
#
# Runs `fanq-bench --cost` (one thread publishes queue-max/4 messages to N
# subscribers, then drains them with the system's own consumer, repeated)
# under valgrind --tool=callgrind --separate-threads=yes and prints, per
# delivery: instructions inside cost_publish() (publish calls), inside
# cost_consume() (the consumer's drain), and in other threads (fanq: the
# call_rcu worker freeing segments; setup and teardown of those threads
# included, so a small overstatement).  Needs valgrind.
set -eu

BUILD=${BUILD:-build}
BIN=$BUILD/bench/fanq-bench
subs=1,64,1000,10000 bytes=256 systems=fanq,mutex,spsc extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--subs) subs=$2 ;;
	--msg-bytes) bytes=$2 ;;
	--systems) systems=$2 ;;
	--queue-max|--policy) extra+=("$1" "$2") ;;
	-h|--help) sed -n '2,16p' "$0"; exit 0 ;;
	*) echo "cost.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift 2
done
[ -x "$BIN" ] || { echo "cost.sh: $BIN missing (make)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "cost.sh: valgrind missing" >&2; exit 1; }

tmp=$(mktemp -d /tmp/fanq-cost.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# inclusive Ir of function $2 in callgrind file $1
incl() {
	callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
		awk -v fn=":$2 " 'index($0, fn) { gsub(",", "", $1); print $1; exit }'
}

printf '%-8s %6s %5s %10s | %9s %9s %9s %9s\n' system subs bytes deliveries \
	publish consume other total
for sys in ${systems//,/ }; do
	for b in ${bytes//,/ }; do
		for n in ${subs//,/ }; do
			out=$tmp/$sys-$n-$b
			valgrind -q --tool=callgrind --separate-threads=yes \
				--callgrind-out-file="$out.cg" \
				"$BIN" --cost --systems "$sys" --subs "$n" --msg-bytes "$b" \
				${extra[@]+"${extra[@]}"} >"$out.txt"
			deliv=$(awk -v s="$sys" '$1 == s { print $4 }' "$out.txt")
			main=$out.cg-01 # the first thread: main()
			pub=$(incl "$main" cost_publish)
			con=$(incl "$main" cost_consume)
			other=0
			for f in "$out".cg-*; do
				[ "$f" = "$main" ] && continue
				t=$(awk '/^totals:/ { print $2 }' "$f")
				other=$((other + ${t:-0}))
			done
			awk -v s="$sys" -v n="$n" -v b="$b" -v d="$deliv" -v p="${pub:-0}" \
			    -v c="${con:-0}" -v o="$other" 'BEGIN {
				printf "%-8s %6d %5d %10d | %9.1f %9.1f %9.1f %9.1f\n",
				       s, n, b, d, p / d, c / d, o / d, (p + c + o) / d }'
		done
	done
done
