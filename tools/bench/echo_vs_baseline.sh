#!/usr/bin/env bash
# echo_vs_baseline.sh - mux-echo -w 1 against the minimal epoll echo loop
# (tools/bench/epoll_echo.c), the practical ceiling for one worker.
#
# Server pinned to core 1, mux-stress (-t 1) to core 0; the two servers
# alternate run by run so drift on a shared machine hits both. Each run also
# records the server's CPU (utime+stime from /proc/PID/stat, all threads),
# the client's (client_cpu_percent), and what the rest of the machine used
# (/proc/stat busy minus both), so a run where the client, not the server,
# is the limit, or where a neighbour was busy, can be recognised.
#
# Usage (after building build-rel, see docs/bench.md):
#   tools/bench/echo_vs_baseline.sh [RUNS] [SECONDS] [mux-stress args...]
# Defaults: 5 runs of 5 s, -c 50 -p 4 -s 64. Environment: BUILD (build
# tree, default build-rel), CSV (append one row per run to this file),
# LABEL (the config column in the CSV, default the mux-stress args),
# MUX_WRAP (a prefix for the mux-echo command only, for experiments, e.g.
# MUX_WRAP="env GLIBC_TUNABLES=glibc.malloc.trim_threshold=1073741824").
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
SECS=${2:-5}
if [ $# -ge 2 ]; then shift 2; else shift $#; fi
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(-c 50 -p 4 -s 64)
LABEL=${LABEL:-${ARGS[*]}}
. tools/bench/lib.sh
declare -A CMD=(
    [baseline]="$B/tools/bench/epoll_echo 127.0.0.1:0"
    [mux-echo]="${MUX_WRAP:-} $B/apps/mux-echo -w 1 -l 127.0.0.1:0 --log-level warn"
)
for f in "$STRESS" "$B/tools/bench/epoll_echo" "$B/apps/mux-echo"; do
    [ -x "$f" ] || { echo "missing $f (build $B first)" >&2; exit 2; }
done
if [ -n "${CSV:-}" ] && [ ! -s "$CSV" ]; then
    echo "config,server,run,req_per_s,p50_us,p99_us,client_cpu_pct,server_cpu_pct,server_us_per_req,other_cpu_pct" > "$CSV"
fi

run_one() { # name run -> appends "rps srv_us client% server% other% p50 p99" to $BENCH_TMP/name.all
    local name=$1 r=$2 j=$BENCH_TMP/$1.$2.json
    # shellcheck disable=SC2086
    start_server 1 ${CMD[$name]}
    local t0 s0 a0 t1 s1 a1 rc=0
    t0=$(now); s0=$(proc_ticks "$SRV_PID"); a0=$(busy_ticks)
    timeout $((SECS + 60)) taskset -c 0 "$STRESS" -q -t 1 -d "$SECS" "${ARGS[@]}" \
        --json "$j" "127.0.0.1:$SRV_PORT" > /dev/null || rc=$?
    t1=$(now); s1=$(proc_ticks "$SRV_PID"); a1=$(busy_ticks)
    stop_server
    if [ $rc -ne 0 ]; then
        echo "mux-stress failed (exit $rc) against $name" >&2
        exit 1
    fi
    local rps p50 p99 ccpu scpu other us
    rps=$(json "$j" .requests_per_sec); p50=$(json "$j" .latency_us.p50)
    p99=$(json "$j" .latency_us.p99); ccpu=$(json "$j" .client_cpu_percent)
    read -r scpu other us < <(awk -v s=$((s1 - s0)) -v a=$((a1 - a0)) -v w="$(echo "$t1 - $t0" | bc -l)" \
        -v c="$ccpu" -v rps="$rps" 'BEGIN {
            scpu = s / w; other = a / w - scpu - c; if (other < 0) other = 0
            printf "%.1f %.1f %.3f\n", scpu, other, scpu / 100 / rps * 1e6 }')
    printf 'run %d %-9s %10.0f req/s  p50 %7.1f us  p99 %7.1f us  client %5.1f%%  server %5.1f%% (%.2f us/req)  rest %4.1f%%\n' \
        "$r" "$name" "$rps" "$p50" "$p99" "$ccpu" "$scpu" "$us" "$other"
    echo "$rps $us $ccpu $scpu $other $p50 $p99" >> "$BENCH_TMP/$name.all"
    [ -n "${CSV:-}" ] && echo "$LABEL,$name,$r,$rps,$p50,$p99,$ccpu,$scpu,$us,$other" >> "$CSV"
    return 0
}

for r in $(seq "$RUNS"); do
    # alternate which server goes first, too
    if [ $((r % 2)) -eq 1 ]; then order="baseline mux-echo"; else order="mux-echo baseline"; fi
    for name in $order; do
        run_one "$name" "$r"
    done
done
col() { awk -v k="$2" '{print $k}' "$BENCH_TMP/$1.all" | median; }
printf '\nmux-stress %s, %d runs of %ss (medians)\n' "${ARGS[*]}" "$RUNS" "$SECS"
printf '%-9s %10s %9s %9s %9s %9s %9s\n' server req/s us/req client% server% p50_us p99_us
for name in baseline mux-echo; do
    printf '%-9s %10.0f %9.2f %9.1f %9.1f %9.1f %9.1f\n' "$name" "$(col "$name" 1)" \
        "$(col "$name" 2)" "$(col "$name" 3)" "$(col "$name" 4)" "$(col "$name" 6)" "$(col "$name" 7)"
done
printf 'ratio mux-echo/baseline: req/s %.3f, server CPU per request %.2f\n' \
    "$(echo "$(col mux-echo 1) / $(col baseline 1)" | bc -l)" \
    "$(echo "$(col mux-echo 2) / $(col baseline 2)" | bc -l)"
