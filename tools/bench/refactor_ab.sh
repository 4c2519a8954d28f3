#!/usr/bin/env bash
# refactor_ab.sh - two builds of mux-echo -w 1 (BEFORE and AFTER, e.g. two
# worktrees of different commits) against the hand-written epoll echo loop
# (tools/bench/epoll_echo.c), one load, interleaved.
#
#   tools/bench/refactor_ab.sh [ROUNDS] [SECONDS] [mux-stress args...]
#
# Defaults: 7 rounds of 5 s, -c 50 -p 1 -s 64. Each round runs the three
# servers once, in an order that rotates round by round, so drift on a
# shared machine spreads over all of them; the ratios are taken pair by pair
# within a round (median and range over the rounds) as well as of the medians.
# Server pinned to core 1, mux-stress -t 1 to core 0, --warmup 1: the
# server's CPU (utime+stime of all its threads, /proc/PID/stat) is read from
# the end of the warm-up to the client's exit, so connection set-up is not in
# it. Per run: requests/s, server CPU us per request, client CPU %, server
# CPU %, and what the rest of the machine used (/proc/stat busy minus both).
# A round in which some run saw the rest of the machine above MAX_REST %
# (default 15; 0 keeps every round) is dropped and run again, at most
# 3 x ROUNDS rounds in all; the CSV has every run, its kept column 0 or 1.
#
# Environment: BEFORE, AFTER (build trees holding apps/mux-echo; required),
# BUILD (the tree for mux-stress and epoll_echo, default $AFTER), POLLER
# (mux-echo --poller, default epoll), CONF (mux-echo -c FILE, default
# tools/bench/bench.conf), CSV (append every run to this file), LABEL (its
# config column, default the mux-stress args and the poller).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-7}
SECS=${2:-5}
if [ $# -ge 2 ]; then shift 2; else shift $#; fi
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(-c 50 -p 1 -s 64)
: "${BEFORE:?set BEFORE to the build tree of the old code}" "${AFTER:?set AFTER to the build tree of the new code}"
BUILD=${BUILD:-$AFTER}
POLLER=${POLLER:-epoll}
CONF=${CONF:-tools/bench/bench.conf}
LABEL=${LABEL:-${ARGS[*]} $POLLER}
MAX_REST=${MAX_REST:-15}
. tools/bench/lib.sh
MUXARGS="-c $CONF -w 1 -l 127.0.0.1:0 --log-level warn --poller $POLLER"
declare -A CMD=(
    [baseline]="$B/tools/bench/epoll_echo 127.0.0.1:0"
    [before]="$BEFORE/apps/mux-echo $MUXARGS"
    [after]="$AFTER/apps/mux-echo $MUXARGS"
)
for f in "$STRESS" "$B/tools/bench/epoll_echo" "$BEFORE/apps/mux-echo" "$AFTER/apps/mux-echo"; do
    [ -x "$f" ] || { echo "missing $f" >&2; exit 2; }
done
if [ -n "${CSV:-}" ] && [ ! -s "$CSV" ]; then
    echo "config,server,round,kept,req_per_s,server_us_per_req,client_cpu_pct,server_cpu_pct,other_cpu_pct,p99_us" > "$CSV"
fi
NAMES=(baseline before after)

run_one() { # name round -> one line "round rps us ccpu scpu other p99" to $BENCH_TMP/name.round
    local name=$1 r=$2 j=$BENCH_TMP/$1.$2.json cpid rc=0
    # shellcheck disable=SC2086
    start_server 1 ${CMD[$name]}
    if [ "$name" != baseline ] && ! grep -q "poller=$POLLER" "$BENCH_TMP/ready"; then
        echo "$name did not run on $POLLER: $(cat "$BENCH_TMP/ready")" >&2
        exit 1
    fi
    timeout $((SECS + 60)) taskset -c 0 "$STRESS" -q -t 1 --warmup 1 -d "$SECS" "${ARGS[@]}" \
        --json "$j" "127.0.0.1:$SRV_PORT" > /dev/null &
    cpid=$!
    sleep 1
    local t0 s0 a0 t1 s1 a1
    t0=$(now); s0=$(proc_ticks "$SRV_PID"); a0=$(busy_ticks)
    wait "$cpid" || rc=$?
    t1=$(now); s1=$(proc_ticks "$SRV_PID"); a1=$(busy_ticks)
    stop_server
    [ $rc -eq 0 ] || { echo "mux-stress failed (exit $rc) against $name" >&2; exit 1; }
    local rps ccpu p99 scpu other us
    rps=$(json "$j" .requests_per_sec); ccpu=$(json "$j" .client_cpu_percent)
    p99=$(json "$j" .latency_us.p99)
    read -r scpu other us < <(awk -v s=$((s1 - s0)) -v a=$((a1 - a0)) -v w="$(echo "$t1 - $t0" | bc -l)" \
        -v c="$ccpu" -v rps="$rps" 'BEGIN {
            scpu = s / w; other = a / w - scpu - c; if (other < 0) other = 0
            printf "%.1f %.1f %.3f\n", scpu, other, scpu / 100 / rps * 1e6 }')
    printf 'round %d %-8s %9.0f req/s  %6.3f us/req  client %5.1f%%  server %5.1f%%  rest %4.1f%%  p99 %7.1f us\n' \
        "$r" "$name" "$rps" "$us" "$ccpu" "$scpu" "$other" "$p99"
    echo "$r $rps $us $ccpu $scpu $other $p99" > "$BENCH_TMP/$name.round"
    return 0
}

kept=0
attempt=0
while [ $kept -lt "$ROUNDS" ] && [ $attempt -lt $((3 * ROUNDS)) ]; do
    attempt=$((attempt + 1))
    r=$((kept + 1))
    k=$((attempt % 3))
    for name in "${NAMES[@]:k}" "${NAMES[@]:0:k}"; do
        run_one "$name" "$r"
    done
    ok=1
    for name in "${NAMES[@]}"; do
        awk -v m="$MAX_REST" 'm > 0 && $6 > m {exit 1}' "$BENCH_TMP/$name.round" || ok=0
    done
    [ $ok -eq 1 ] || echo "round dropped: the rest of the machine above $MAX_REST % in a run"
    for name in "${NAMES[@]}"; do
        [ $ok -eq 1 ] && cat "$BENCH_TMP/$name.round" >> "$BENCH_TMP/$name.all"
        [ -n "${CSV:-}" ] && awk -v l="$LABEL" -v n="$name" -v ok=$ok -v OFS=, \
            '{print l, n, $1, ok, $2, $3, $4, $5, $6, $7}' "$BENCH_TMP/$name.round" >> "$CSV"
    done
    kept=$((kept + ok))
done
[ $kept -gt 0 ] || { echo "no round kept (machine busy throughout)" >&2; exit 1; }

col() { awk -v k="$2" '{print $k}' "$BENCH_TMP/$1.all"; }
stats() { sort -g | awk '{a[NR] = $1} END {m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf "%.3f (%.3f-%.3f)", m, a[1], a[NR]}'; }
pair() { # A B column -> per-round ratios A/B
    join <(sort -n "$BENCH_TMP/$1.all") <(sort -n "$BENCH_TMP/$2.all") |
        awk -v k="$3" -v n=7 '{print $k / $(k + n - 1)}'
}
printf '\nmux-stress -t 1 %s, poller %s, %d rounds of %ss kept of %d: median (min-max)\n' "${ARGS[*]}" "$POLLER" "$kept" "$SECS" "$attempt"
for name in "${NAMES[@]}"; do
    printf '%-8s req/s %s  us/req %s  client%% %s  server%% %s\n' "$name" \
        "$(col "$name" 2 | stats)" "$(col "$name" 3 | stats)" "$(col "$name" 4 | stats)" "$(col "$name" 5 | stats)"
done
for p in "after baseline" "after before" "before baseline"; do
    read -r a b <<< "$p"
    printf 'pair ratio %s/%s: req/s %s  us/req %s\n' "$a" "$b" "$(pair "$a" "$b" 2 | stats)" "$(pair "$a" "$b" 3 | stats)"
done
