#!/usr/bin/env bash
# syscalls_per_request.sh - system calls per echo request for epoll_echo and
# mux-echo -w 1, counted over a fixed -n run.
#
#   tools/bench/syscalls_per_request.sh [strace|perf] N [mux-stress args...]
#
# strace (default): `strace -c -f` around the server. strace slows every
#   system call down by ~10x, which changes batching (more bytes per read,
#   more events per epoll_wait), so use these numbers as counts of what the
#   code does per event, not as the undisturbed mix.
# perf: `perf stat` on the syscall tracepoints (and page faults, task-clock)
#   of the running server: near-zero overhead, so the mix is the real one.
# Pinning as in echo_vs_baseline.sh. Prints per-request counts; the raw
# tables go to stderr with -v (VERBOSE=1).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=${1:-strace}
N=${2:-200000}
if [ $# -ge 2 ]; then shift 2; else shift $#; fi
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(-c 50 -p 4 -s 64)
. tools/bench/lib.sh
declare -A CMD=(
    [baseline]="$B/tools/bench/epoll_echo 127.0.0.1:0"
    [mux-echo]="$B/apps/mux-echo -w 1 -l 127.0.0.1:0 --log-level warn"
)
PERF_EV=task-clock,page-faults,context-switches,raw_syscalls:sys_enter
for s in read sendto sendmsg epoll_wait epoll_ctl madvise mprotect brk mmap munmap; do
    PERF_EV=$PERF_EV,syscalls:sys_enter_$s
done

for name in baseline mux-echo; do
    out=$BENCH_TMP/$name.counts
    j=$BENCH_TMP/$name.json
    if [ "$MODE" = strace ]; then
        # shellcheck disable=SC2086
        start_server 1 strace -qq -c -f -o "$out" ${CMD[$name]}
        # strace blocks fatal signals while it runs a program with -o: stop
        # the traced server (strace's only child) instead of strace itself.
        tracee=$(pgrep -P "$SRV_PID" | head -1)
    else
        # shellcheck disable=SC2086
        start_server 1 ${CMD[$name]}
        perf stat -x, -e "$PERF_EV" -p "$SRV_PID" -o "$out" &
        perf_pid=$!
        sleep 0.5
    fi
    rc=0
    timeout 300 taskset -c 0 "$STRESS" -q -t 1 -n "$N" "${ARGS[@]}" --json "$j" \
        "127.0.0.1:$SRV_PORT" > /dev/null || rc=$?
    [ $rc -eq 0 ] || { echo "mux-stress failed (exit $rc) against $name" >&2; exit 1; }
    if [ "$MODE" = strace ]; then
        kill -TERM "$tracee"
        for _ in $(seq 100); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
        stop_server
        # "% time seconds usecs/call calls [errors] syscall" -> "calls name"
        # (strace's own "total" row included)
        awk '$1 ~ /^[0-9.]+$/ && NF >= 5 {print $4, $NF}' "$out" > "$out.n"
    else
        kill -INT "$perf_pid"; wait "$perf_pid" || true
        stop_server
        awk -F, '$1 ~ /^[0-9.]+$/ {n = $3; sub(/^syscalls:sys_enter_/, "", n); sub(/^raw_syscalls:sys_enter$/, "total", n); print $1, n}' "$out" > "$out.n"
    fi
    [ -n "${VERBOSE:-}" ] && cat "$out" >&2
    reqs=$(json "$j" .requests)
    printf '%-9s %s %s, %s requests (%.0f req/s under %s):' "$name" "$MODE" "${ARGS[*]}" "$reqs" \
        "$(json "$j" .requests_per_sec)" "$MODE"
    awk -v n="$reqs" '$2 ~ /^(total|read|sendto|sendmsg|epoll_wait|epoll_ctl|madvise|mprotect|brk|mmap|munmap|page-faults|task-clock)$/ && $1 > 0 {
        if ($2 == "task-clock") printf "  cpu_us/req %.2f", $1 * 1000 / n
        else printf "  %s %.4f", $2, $1 / n }' "$out.n"
    echo
done
