#!/usr/bin/env bash
# echo_vs_baseline.sh - mux-echo -w 1 against the minimal epoll echo loop
# (tools/bench/epoll_echo.c), the practical ceiling for one worker.
#
# Server pinned to core 1, mux-stress to core 0; the two servers alternate
# run by run so drift on a shared machine hits both; medians and the ratio
# are printed. Usage (after tools/dev.sh build):
#   tools/bench/echo_vs_baseline.sh [RUNS] [SECONDS] [mux-stress args...]
# Defaults: 5 runs of 5 s, -c 50 -p 4 -s 64.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
SECS=${2:-5}
shift 2 2>/dev/null || shift $# 
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(-c 50 -p 4 -s 64)
B=${BUILD:-build}
STRESS=$B/tools/mux-stress
declare -A CMD=(
    [baseline]="$B/tools/bench/epoll_echo 127.0.0.1:0"
    [mux-echo]="$B/apps/mux-echo -w 1 -l 127.0.0.1:0 --log-level warn"
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run_one() { # name run -> prints req/s
    local name=$1 out=$tmp/$1.$2
    taskset -c 1 ${CMD[$name]} > "$out.ready" &
    local pid=$!
    local port=""
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out.ready")
        [ -n "$port" ] && break
        sleep 0.05
    done
    taskset -c 0 "$STRESS" -q -t 1 -d "$SECS" "${ARGS[@]}" --json "$out.json" "127.0.0.1:$port" > /dev/null
    kill -TERM $pid; wait $pid || true
    sed -n 's/.*"requests_per_sec": *\([0-9.]*\).*/\1/p' "$out.json" | head -1
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

for r in $(seq "$RUNS"); do
    for name in baseline mux-echo; do
        v=$(run_one "$name" "$r")
        echo "$v" >> "$tmp/$name.all"
        printf 'run %d %-9s %12.0f req/s\n' "$r" "$name" "$v"
    done
done
b=$(median < "$tmp/baseline.all")
m=$(median < "$tmp/mux-echo.all")
printf '\nmux-stress %s, %d runs of %ss\n' "${ARGS[*]}" "$RUNS" "$SECS"
printf 'median baseline %.0f req/s, mux-echo -w 1 %.0f req/s, ratio %.3f\n' "$b" "$m" \
    "$(echo "$m / $b" | bc -l)"
