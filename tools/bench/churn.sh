#!/usr/bin/env bash
# churn.sh - connection churn: every request on a new TCP connection
# (mux-stress --reconnect 1), mux-echo -w 1 against the minimal epoll loop
# (tools/bench/epoll_echo.c) and, when built, libevent and libuv echo
# servers (tools/bench/libevent_echo.c, libuv_echo.c; Debian packages
# libevent-dev, libuv1-dev).
#
# Server pinned to core 1, mux-stress (-t 1) to core 0; the servers take
# turns run by run, in a rotating order, so drift on a shared machine hits
# all of them. Each run records connections/s, connect and request latency,
# the server's CPU (utime+stime from /proc/PID/stat) and so its CPU time per
# connection, the client's CPU, and what the rest of the machine used.
# Prints per-run lines, then medians and ratios to the epoll loop.
#
# Usage (after building build-rel, see docs/stress.md):
#   tools/bench/churn.sh [RUNS] [SECONDS] [mux-stress args...]
# Defaults: 5 runs of 5 s, -c 16 -s 64. Environment: BUILD (build tree,
# default build-rel), CSV (append one row per run to this file), LABEL (the
# config column in the CSV, default the mux-stress args), QUIET (also print
# medians over only the runs where the rest of the machine used at most this
# many percent of a core: on a shared machine those are the comparable ones).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
SECS=${2:-5}
if [ $# -ge 2 ]; then shift 2; else shift $#; fi
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(-c 16 -s 64)
LABEL=${LABEL:-${ARGS[*]}}
. tools/bench/lib.sh
# A directory of our own (not /tmp/muxbench.*, which other scripts may sweep):
# lib.sh's exit trap removes whatever BENCH_TMP names when we leave.
rmdir "$BENCH_TMP"
BENCH_TMP=$(mktemp -d /tmp/mux-churn.XXXXXX)
declare -A CMD=(
    [epoll]="$B/tools/bench/epoll_echo 127.0.0.1:0"
    [mux-echo]="$B/apps/mux-echo -w 1 -l 127.0.0.1:0 --log-level warn"
    [libevent]="$B/tools/bench/libevent_echo 127.0.0.1:0"
    [libuv]="$B/tools/bench/libuv_echo 127.0.0.1:0"
)
SERVERS=(epoll mux-echo)
for f in "$STRESS" "$B/tools/bench/epoll_echo" "$B/apps/mux-echo"; do
    [ -x "$f" ] || { echo "missing $f (build $B first)" >&2; exit 2; }
done
for p in libevent libuv; do
    if [ -x "$B/tools/bench/${p}_echo" ]; then
        SERVERS+=("$p")
    else
        echo "note: $B/tools/bench/${p}_echo not built (needs ${p/libuv/libuv1}-dev); skipped" >&2
    fi
done
if [ -n "${CSV:-}" ] && [ ! -s "$CSV" ]; then
    echo "config,server,run,conn_per_s,connect_p50_us,connect_p99_us,req_p50_us,req_p99_us,client_cpu_pct,server_cpu_pct,server_us_per_conn,other_cpu_pct" > "$CSV"
fi

run_one() { # name run -> appends "cps conn_p50 conn_p99 req_p50 req_p99 client% server% us other%"
    local name=$1 r=$2 j=$BENCH_TMP/$1.$2.json
    # shellcheck disable=SC2086
    start_server 1 ${CMD[$name]}
    local t0 s0 a0 t1 s1 a1 rc=0
    t0=$(now); s0=$(proc_ticks "$SRV_PID"); a0=$(busy_ticks)
    timeout $((SECS + 60)) taskset -c 0 "$STRESS" -q -t 1 --reconnect 1 -d "$SECS" "${ARGS[@]}" \
        --json "$j" "127.0.0.1:$SRV_PORT" > /dev/null || rc=$?
    t1=$(now); s1=$(proc_ticks "$SRV_PID"); a1=$(busy_ticks)
    stop_server
    if [ $rc -ne 0 ]; then
        echo "mux-stress failed (exit $rc) against $name" >&2
        exit 1
    fi
    local cps cp50 cp99 p50 p99 ccpu scpu other us
    cps=$(json "$j" .connections_per_sec)
    cp50=$(json "$j" .connect_latency_us.p50); cp99=$(json "$j" .connect_latency_us.p99)
    p50=$(json "$j" .latency_us.p50); p99=$(json "$j" .latency_us.p99)
    ccpu=$(json "$j" .client_cpu_percent)
    read -r scpu other us < <(awk -v s=$((s1 - s0)) -v a=$((a1 - a0)) -v w="$(echo "$t1 - $t0" | bc -l)" \
        -v c="$ccpu" -v cps="$cps" 'BEGIN {
            scpu = s / w; other = a / w - scpu - c; if (other < 0) other = 0
            printf "%.1f %.1f %.2f\n", scpu, other, scpu / 100 / cps * 1e6 }')
    printf 'run %d %-9s %8.0f conn/s  connect p50 %6.1f p99 %7.1f us  request p50 %6.1f us  client %5.1f%%  server %5.1f%% (%.2f us/conn)  rest %4.1f%%\n' \
        "$r" "$name" "$cps" "$cp50" "$cp99" "$p50" "$ccpu" "$scpu" "$us" "$other"
    echo "$cps $cp50 $cp99 $p50 $p99 $ccpu $scpu $us $other" >> "$BENCH_TMP/$name.all"
    [ -n "${CSV:-}" ] && echo "$LABEL,$name,$r,$cps,$cp50,$cp99,$p50,$p99,$ccpu,$scpu,$us,$other" >> "$CSV"
    return 0
}

n=${#SERVERS[@]}
for r in $(seq "$RUNS"); do
    for k in $(seq 0 $((n - 1))); do # rotate the order: each server leads once per n runs
        run_one "${SERVERS[$(((r - 1 + k) % n))]}" "$r"
    done
done
# medians of column $2 of server $1's runs, only those with rest <= $3 (if given)
col() {
    awk -v k="$2" -v q="${3:-}" 'q == "" || $9 <= q {print $k}' "$BENCH_TMP/$1.all" | median
}
count() { awk -v q="${2:-}" 'q == "" || $9 <= q' "$BENCH_TMP/$1.all" | wc -l; }
table() { # [quiet%]
    local q=${1:-} base
    base=$(col epoll 1 "$q")
    printf '%-9s %3s %9s %7s %11s %11s %11s %8s %8s %10s %6s\n' server n conn/s ratio \
        connect_p50 connect_p99 request_p50 client% server% us/conn rest%
    for name in "${SERVERS[@]}"; do
        if [ "$(count "$name" "$q")" -eq 0 ] || [ -z "$base" ]; then
            printf '%-9s %3d (no runs)\n' "$name" 0
            continue
        fi
        printf '%-9s %3d %9.0f %7.2f %11.1f %11.1f %11.1f %8.1f %8.1f %10.2f %6.1f\n' "$name" \
            "$(count "$name" "$q")" "$(col "$name" 1 "$q")" \
            "$(echo "$(col "$name" 1 "$q") / $base" | bc -l)" "$(col "$name" 2 "$q")" \
            "$(col "$name" 3 "$q")" "$(col "$name" 4 "$q")" "$(col "$name" 6 "$q")" \
            "$(col "$name" 7 "$q")" "$(col "$name" 8 "$q")" "$(col "$name" 9 "$q")"
    done
}
printf '\nmux-stress --reconnect 1 %s, %d runs of %ss, medians of all runs\n' "${ARGS[*]}" "$RUNS" "$SECS"
table
if [ -n "${QUIET:-}" ]; then
    printf '\nmedians of the quiet runs only (rest of the machine <= %s%% of a core)\n' "$QUIET"
    table "$QUIET"
fi
