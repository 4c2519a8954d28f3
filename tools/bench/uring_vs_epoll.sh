#!/usr/bin/env bash
# uring_vs_epoll.sh - mux-echo -w 1 on io_uring against mux-echo -w 1 on
# epoll and the hand-written epoll echo loop (tools/bench/epoll_echo.c),
# over connection counts; then mux-httpd on uring against its epoll self.
#
#   tools/bench/uring_vs_epoll.sh echo [RUNS] [SECONDS]     (defaults 5, 3)
#   tools/bench/uring_vs_epoll.sh httpd [RUNS] [SECONDS]    (defaults 5, 5)
#
# echo: mux-stress -t 1 -c C -p 1 -s 64 (each connection one 64-byte
# request in flight) for C in CONNS (default 1 10 50 100 300 1000 3000
# 10000). Server pinned to core 1, client to core 0; run r of every point
# is taken in round r with the servers in rotating order, so drift on a
# shared machine spreads over all of them. Per run: requests/s, the
# server's CPU per request (utime+stime from /proc/PID/stat) and its system
# calls per request (perf stat -e raw_syscalls:sys_enter on the server's
# PID for the run; no perf: left empty). Output: OUT (default
# docs/uring-echo.csv, medians per point) and its -runs.csv (every run);
# PLOT (default docs/uring-echo.png, tools/bench/uring_vs_epoll.gp).
#
# httpd: wrk -t 1 -c 50 for SECONDS on a 1 KiB file, mux-httpd -w 1
# --poller uring vs --poller epoll, interleaved; medians to
# docs/uring-httpd.csv.
#
# Environment: BUILD (default build-rel), CONNS, SERVERS (subset of
# baseline epoll uring).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=${1:-echo}
[ $# -ge 1 ] && shift
. tools/bench/lib.sh

have_perf() { perf stat -e raw_syscalls:sys_enter -x, true > /dev/null 2>&1; }

# server_run NAME -> appends a row to $BENCH_TMP/rows: starts the server,
# runs the load (the command in LOAD), measures; prints one line.
measure() { # name load-command... ; the server is already running
    local name=$1
    shift
    local t0 s0 t1 s1 perf_pid= pf=$BENCH_TMP/perf.$name rc=0
    if [ "$PERF" = 1 ]; then
        perf stat -e raw_syscalls:sys_enter -x, -o "$pf" -p "$SRV_PID" &
        perf_pid=$!
    fi
    t0=$(now); s0=$(proc_ticks "$SRV_PID")
    "$@" || rc=$?
    t1=$(now); s1=$(proc_ticks "$SRV_PID")
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
    fi
    SCPU_TICKS=$((s1 - s0))
    WALL=$(echo "$t1 - $t0" | bc -l)
    SYSCALLS=
    [ -s "$pf" ] && SYSCALLS=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$pf")
    rm -f "$pf"
    return $rc
}

echo_mode() {
    local RUNS=${1:-5} SECS=${2:-3}
    local CONNS=${CONNS:-1 10 50 100 300 1000 3000 10000}
    local SERVERS=${SERVERS:-baseline epoll uring}
    local OUT=${OUT:-docs/uring-echo.csv} PLOT=${PLOT:-docs/uring-echo.png}
    local RAW=${OUT%.csv}-runs.csv
    local MUX="$B/apps/mux-echo -c tools/bench/bench.conf -w 1 -l 127.0.0.1:0"
    declare -A CMD=(
        [baseline]="$B/tools/bench/epoll_echo 127.0.0.1:0"
        [epoll]="$MUX --poller epoll"
        [uring]="$MUX --poller uring"
    )
    echo "conns,server,run,req_per_s,server_cpu_pct,server_us_per_req,syscalls_per_req,client_cpu_pct" > "$RAW"
    for r in $(seq "$RUNS"); do
        for c in $CONNS; do
            # rotate the order every round and every point
            local list
            read -r -a list <<< "$SERVERS"
            local k=$(((r + c) % ${#list[@]}))
            local order=("${list[@]:k}" "${list[@]:0:k}")
            for name in "${order[@]}"; do
                # shellcheck disable=SC2086
                start_server 1 ${CMD[$name]}
                local j=$BENCH_TMP/$name.json
                measure "$name" timeout $((SECS + 120)) taskset -c 0 "$STRESS" -q -t 1 -c "$c" -p 1 \
                    -s 64 --warmup 1 -d "$SECS" --json "$j" "127.0.0.1:$SRV_PORT" > /dev/null ||
                    { echo "mux-stress failed against $name at $c" >&2; stop_server; exit 1; }
                if [ "$name" = uring ] && ! grep -q 'poller=uring' "$BENCH_TMP/ready"; then
                    echo "mux-echo did not run on io_uring: $(cat "$BENCH_TMP/ready")" >&2
                    exit 1
                fi
                stop_server
                local rps ccpu
                rps=$(json "$j" .requests_per_sec); ccpu=$(json "$j" .client_cpu_percent)
                # the warm-up second is in WALL and the ticks: scale by the whole window
                awk -v c="$c" -v n="$name" -v r="$r" -v rps="$rps" -v t="$SCPU_TICKS" -v w="$WALL" \
                    -v sc="${SYSCALLS:-}" -v cc="$ccpu" -v secs="$SECS" 'BEGIN {
                        cpu = t / w; us = cpu / 100 / rps * 1e6
                        spr = sc == "" ? "" : sprintf("%.3f", sc / (rps * w))
                        printf "%d,%s,%d,%.0f,%.1f,%.3f,%s,%.1f\n", c, n, r, rps, cpu, us, spr, cc }' >> "$RAW"
                tail -1 "$RAW"
            done
        done
    done
    # medians per (conns, server)
    echo "conns,server,req_per_s,server_us_per_req,syscalls_per_req,client_cpu_pct" > "$OUT"
    for c in $CONNS; do
        for name in $SERVERS; do
            local rows
            rows=$(awk -F, -v c="$c" -v n="$name" 'NR > 1 && $1 == c && $2 == n' "$RAW")
            printf '%s,%s,%s,%s,%s,%s\n' "$c" "$name" \
                "$(echo "$rows" | cut -d, -f4 | median)" "$(echo "$rows" | cut -d, -f6 | median)" \
                "$(echo "$rows" | cut -d, -f7 | grep . | median)" "$(echo "$rows" | cut -d, -f8 | median)" >> "$OUT"
        done
    done
    column -s, -t "$OUT"
    if command -v gnuplot > /dev/null; then
        gnuplot -e "csv='$OUT'; out='$PLOT'" tools/bench/uring_vs_epoll.gp && echo "plot: $PLOT"
    fi
}

httpd_mode() {
    local RUNS=${1:-5} SECS=${2:-5}
    local OUT=${OUT:-docs/uring-httpd.csv}
    local ROOT=$BENCH_TMP/www
    mkdir -p "$ROOT"
    head -c 1024 /dev/urandom > "$ROOT/1k.bin"
    command -v wrk > /dev/null || { echo "wrk is not installed" >&2; exit 2; }
    local RAW=${OUT%.csv}-runs.csv
    echo "poller,run,req_per_s,server_us_per_req,syscalls_per_req" > "$RAW"
    for r in $(seq "$RUNS"); do
        local order="epoll uring"
        [ $((r % 2)) -eq 0 ] && order="uring epoll"
        for p in $order; do
            start_server 1 "$B/apps/mux-httpd" -w 1 -l 127.0.0.1:0 --poller "$p" -r "$ROOT" \
                --log-level warn
            local wout=$BENCH_TMP/wrk.$p
            measure "$p" taskset -c 0 wrk -t 1 -c 50 -d "${SECS}s" \
                "http://127.0.0.1:$SRV_PORT/1k.bin" > "$wout"
            stop_server
            local rps
            rps=$(awk '/^Requests\/sec:/ {print $2}' "$wout")
            awk -v p="$p" -v r="$r" -v rps="$rps" -v t="$SCPU_TICKS" -v w="$WALL" \
                -v sc="${SYSCALLS:-}" 'BEGIN {
                    us = t / w / 100 / rps * 1e6
                    spr = sc == "" ? "" : sprintf("%.3f", sc / (rps * w))
                    printf "%s,%d,%.0f,%.3f,%s\n", p, r, rps, us, spr }' >> "$RAW"
            tail -1 "$RAW"
        done
    done
    echo "poller,req_per_s,server_us_per_req,syscalls_per_req" > "$OUT"
    for p in epoll uring; do
        local rows
        rows=$(awk -F, -v p="$p" 'NR > 1 && $1 == p' "$RAW")
        printf '%s,%s,%s,%s\n' "$p" "$(echo "$rows" | cut -d, -f3 | median)" \
            "$(echo "$rows" | cut -d, -f4 | median)" "$(echo "$rows" | cut -d, -f5 | grep . | median)" >> "$OUT"
    done
    column -s, -t "$OUT"
}

PERF=0
have_perf && PERF=1
for f in "$STRESS" "$B/tools/bench/epoll_echo" "$B/apps/mux-echo" "$B/apps/mux-httpd"; do
    [ -x "$f" ] || { echo "missing $f (build $B first)" >&2; exit 2; }
done
case $MODE in
echo) echo_mode "$@" ;;
httpd) httpd_mode "$@" ;;
*) echo "usage: $0 echo|httpd [RUNS] [SECONDS]" >&2; exit 2 ;;
esac
