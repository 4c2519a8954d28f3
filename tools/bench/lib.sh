# lib.sh - shared helpers for the tools/bench scripts (sourced, not run).
#
#   start_server CORE CMD...   start CMD pinned to CORE (taskset), wait (at
#                              most 10 s) for its "listening on 127.0.0.1:PORT"
#                              line; sets SRV_PID and SRV_PORT; returns 1 if
#                              the line never came (the process is stopped)
#   stop_server                SIGTERM to SRV_PID, wait at most 10 s, then SIGKILL
#   proc_ticks PID             utime+stime of the whole process (all threads),
#                              in clock ticks (USER_HZ, 100/s)
#   busy_ticks                 non-idle ticks of all CPUs together (/proc/stat)
#   median                     median of the numbers on stdin
#   need_tools TOOL...         exit 2 naming the first TOOL not on PATH
#                              (/usr/sbin searched too)
#   need_build BIN             exit 2 unless $B/BIN was built
#   splice_table DOC NAME TEXT replace what stands between <!-- NAME:begin -->
#                              and <!-- NAME:end --> in DOC with TEXT
#
# Every server started here is stopped on exit (bench_cleanup is the EXIT
# trap); only the PIDs recorded in SRV_PID are ever signalled.
B=${BUILD:-build-rel}
# shellcheck disable=SC2034 # used by the scripts that source this
STRESS=$B/tools/mux-stress
SRV_PID=
SRV_PORT=
BENCH_TMP=$(mktemp -d /tmp/muxbench.XXXXXX)

bench_cleanup() {
    [ -n "$SRV_PID" ] && stop_server
    rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

start_server() {
    local core=$1
    shift
    : > "$BENCH_TMP/ready"
    taskset -c "$core" "$@" > "$BENCH_TMP/ready" 2> "$BENCH_TMP/server.log" &
    SRV_PID=$!
    SRV_PORT=
    for _ in $(seq 200); do
        SRV_PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$BENCH_TMP/ready")
        [ -n "$SRV_PORT" ] && return 0
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "server did not become ready: $*" >&2
    cat "$BENCH_TMP/server.log" >&2
    stop_server
    return 1
}

stop_server() {
    [ -z "$SRV_PID" ] && return 0
    kill -TERM "$SRV_PID" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=
}

proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }

now() { date +%s.%N; }

median() { sort -g | awk '{a[NR] = $1} END {if (NR) print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# json FILE KEY  -> value of a top-level key or latency_us.pXX (jq)
json() { jq -r "$2" "$1"; }

need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" > /dev/null || PATH=$PATH:/usr/sbin
        command -v "$tool" > /dev/null || { echo "missing $tool${INSTALL_HINT:-}" >&2; exit 2; }
    done
}

need_build() { [ -x "$B/$1" ] || { echo "build $B first (cmake --build $B)" >&2; exit 2; }; }

splice_table() {
    grep -q "<!-- $2:begin -->" "$1" || return 0
    awk -v t="$3" -v b="<!-- $2:begin -->" -v e="<!-- $2:end -->" \
        '$0 == b {print; print t; skip = 1; next} $0 == e {skip = 0} !skip' "$1" > "$BENCH_TMP/doc"
    cp "$BENCH_TMP/doc" "$1"
}
