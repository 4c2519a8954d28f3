#!/usr/bin/env bash
# poller_scaling.sh - echo round trips on a few active connections while K
# idle connections are held open, for each poller backend of mux-echo -w 1
# (epoll, epoll --edge, poll, select, uring) and for the blocking
# thread-per-connection server (thread_echo).
#
#   tools/bench/poller_scaling.sh [RUNS] [SECONDS]        (defaults 3, 5)
#
# Load: mux-stress -t 1 -c 10 -p 1 -s 64 (closed loop) --warmup 1 -d 5,
# while K idle connections are held open by other mux-stress processes
# (--idle 500 each, see open_idle below; IDLE_MODE=single: --idle K on the
# measuring client itself); the server must hold all of them before the
# measured run starts (idle_held in the CSV says how many it really held).
# Server pinned to core 1, every mux-stress to core 0. K = 0 100 1000 10000
# (select: 0 100 900; it cannot watch fds >= FD_SETSIZE = 1024 and refuses
# such connections). Run r of every point is taken in round r, servers
# rotating, so drift on a shared machine spreads over all points. Environment: BUILD (default build-rel),
# KS (override the K list), SERVERS (subset), OUT (summary CSV, default
# docs/poller-scaling.csv; the per-run rows go to OUT with -runs.csv),
# PLOT (default docs/poller-scaling.png; rendered with poller_scaling.gp).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-3}
SECS=${2:-5}
WARMUP=${WARMUP:-1}
BATCH=${BATCH:-500}
IDLE_MODE=${IDLE_MODE:-batch}
KS=${KS:-0 100 1000 10000}
SERVERS=${SERVERS:-epoll epoll-edge poll select uring thread}
OUT=${OUT:-docs/poller-scaling.csv}
RAW=${OUT%.csv}-runs.csv
PLOT=${PLOT:-docs/poller-scaling.png}
. tools/bench/lib.sh
MUX="$B/apps/mux-echo -c tools/bench/bench.conf -w 1 -l 127.0.0.1:0"
declare -A CMD=(
    [epoll]="$MUX --poller epoll"
    [epoll-edge]="$MUX --poller epoll --edge"
    [poll]="$MUX --poller poll"
    [select]="$MUX --poller select"
    [uring]="$MUX --poller uring"
    [thread]="$B/tools/bench/thread_echo 127.0.0.1:0"
)
for f in "$STRESS" "$B/apps/mux-echo" "$B/tools/bench/thread_echo"; do
    [ -x "$f" ] || { echo "missing $f (build $B first)" >&2; exit 2; }
done
echo "server,idle,run,req_per_s,p50_us,p99_us,client_cpu_pct,server_cpu_pct,server_rss_kb,server_threads,idle_held,verify_failures,connect_errors,resets,refused_log_lines" > "$RAW"

k_for() { # server K -> the K actually run (select: 1000+ -> 900 once, then skip)
    if [ "$1" = select ] && [ "$2" -ge 1000 ]; then
        [ "$2" = "$(for k in $KS; do [ "$k" -ge 1000 ] && echo "$k"; done | head -1)" ] && echo 900
        return 0
    fi
    echo "$2"
}

fdcount() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2> /dev/null | wc -l; }

HOLDERS=()
stop_holders() {
    local p
    for p in "${HOLDERS[@]}"; do kill -TERM "$p" 2> /dev/null || true; done
    for p in "${HOLDERS[@]}"; do wait "$p" 2> /dev/null || true; done
    HOLDERS=()
}
trap 'stop_holders; bench_cleanup' EXIT

# Opens K idle connections to the server and waits (at most 30 s) until the
# server holds them. IDLE_MODE=batch (default): mux-stress processes of
# --idle BATCH each (plus one connection at --rate 1), started 0.4 s apart;
# IDLE_MODE=single: the measuring mux-stress opens all K itself (--idle K).
# Why batches: a burst of 10 000 connects overflows the 511-entry accept
# queue of a server that accepts slowly (thread_echo: one pthread_create per
# accept); with SYN cookies such a connection is then complete on the client
# side and unknown to the server, and since an idle client never sends, it
# is never repaired: thread_echo ended up with ~5 000 of 10 000.
HOLD_N=0 # holder processes started = connections at --rate 1
open_idle() { # K
    local left=$1 n
    HOLD_N=0
    while [ "$left" -gt 0 ]; do
        n=$((left < BATCH ? left : BATCH))
        timeout 600 taskset -c 0 "$STRESS" -q -t 1 -c 1 --rate 1 --idle "$n" -d 400 --timeout 60 \
            "127.0.0.1:$SRV_PORT" > /dev/null 2>&1 &
        HOLDERS+=($!)
        left=$((left - n)); HOLD_N=$((HOLD_N + 1))
        if [ "$left" -gt 0 ]; then sleep 0.4; fi
    done
}

run_point() { # server K run
    local name=$1 k=$2 r=$3 j=$BENCH_TMP/run.json
    # shellcheck disable=SC2086
    start_server 1 ${CMD[$name]}
    local fd0 h=0 idle_arg=0 held
    fd0=$(fdcount "$SRV_PID")
    if [ "$IDLE_MODE" = batch ] && [ "$k" -gt 0 ]; then
        open_idle "$k"
        h=$HOLD_N
        for _ in $(seq 300); do
            [ "$(fdcount "$SRV_PID")" -ge $((fd0 + k + h)) ] && break
            sleep 0.1
        done
    else
        idle_arg=$k
    fi
    local t0 s0 t1 s1 rss thr spid rc=0
    t0=$(now); s0=$(proc_ticks "$SRV_PID")
    timeout $((SECS + WARMUP + 60)) taskset -c 0 "$STRESS" -q -t 1 -c 10 -p 1 -s 64 --idle "$idle_arg" \
        --warmup "$WARMUP" -d "$SECS" --json "$j" "127.0.0.1:$SRV_PORT" > /dev/null &
    spid=$!
    # mid-run: RSS, thread count and connections actually held by the server
    sleep "$(echo "$WARMUP + $SECS / 2" | bc -l)"
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$SRV_PID/status")
    thr=$(awk '/^Threads/ {print $2}' "/proc/$SRV_PID/status")
    held=$(($(fdcount "$SRV_PID") - fd0 - 10 - h))
    wait "$spid" || rc=$?
    t1=$(now); s1=$(proc_ticks "$SRV_PID")
    stop_holders
    stop_server
    local refused
    refused=$(grep -c FD_SETSIZE "$BENCH_TMP/server.log" || true)
    if [ $rc -ne 0 ]; then
        echo "mux-stress failed (exit $rc) against $name with $k idle" >&2
        exit 1
    fi
    local scpu
    scpu=$(awk -v s=$((s1 - s0)) -v w="$(echo "$t1 - $t0" | bc -l)" 'BEGIN {printf "%.1f", s / w}')
    printf '%-10s K=%-5s run %d %9.0f req/s  p50 %7.1f us  p99 %8.1f us  client %5.1f%%  server %5.1f%%  rss %7s kB  threads %5s  idle held %5s  refused %s\n' \
        "$name" "$k" "$r" "$(json "$j" .requests_per_sec)" "$(json "$j" .latency_us.p50)" \
        "$(json "$j" .latency_us.p99)" "$(json "$j" .client_cpu_percent)" "$scpu" "$rss" "$thr" "$held" "$refused"
    echo "$name,$k,$r,$(json "$j" .requests_per_sec),$(json "$j" .latency_us.p50),$(json "$j" .latency_us.p99),$(json "$j" .client_cpu_percent),$scpu,$rss,$thr,$held,$(json "$j" .verify_failures),$(json "$j" .connect_errors),$(json "$j" .resets),$refused" >> "$RAW"
}

# runs outermost, then K, then the servers in rotated order: slow drift of a
# shared machine spreads over every point instead of hitting one K.
for r in $(seq "$RUNS"); do
    for K in $KS; do
        # shellcheck disable=SC2086 # a list of names, split on purpose
        set -- $SERVERS
        for _ in $(seq $(((r - 1) % $#))); do set -- "${@:2}" "$1"; done
        for name in "$@"; do
            k=$(k_for "$name" "$K")
            if [ -n "$k" ]; then run_point "$name" "$k" "$r"; fi
        done
    done
done

# medians per (server, K)
{
    echo "server,idle,req_per_s,p50_us,p99_us,client_cpu_pct,server_cpu_pct,server_rss_kb,server_threads,idle_held,runs,note"
    for name in $SERVERS; do
        for k in $(awk -F, -v s="$name" 'NR > 1 && $1 == s {print $2}' "$RAW" | sort -nu); do
            row="$name,$k"
            for c in 4 5 6 7 8 9 10 11; do
                row="$row,$(awk -F, -v s="$name" -v k="$k" -v c=$c 'NR > 1 && $1 == s && $2 == k {print $c}' "$RAW" | median)"
            done
            n=$(awk -F, -v s="$name" -v k="$k" 'NR > 1 && $1 == s && $2 == k' "$RAW" | wc -l)
            note=""
            [ "$name" = select ] && [ "$k" = 900 ] && note="select: K>=1000 impossible (FD_SETSIZE 1024); 900 instead"
            echo "$row,$n,$note"
        done
    done
} > "$OUT"
column -s, -t "$OUT"
if command -v gnuplot > /dev/null; then
    gnuplot -e "data='$OUT'; out='$PLOT'" tools/bench/poller_scaling.gp && echo "plot: $PLOT"
fi
