#!/usr/bin/env bash
# proxy_vs_haproxy.sh - mux-proxy against HAProxy (TCP mode), one thread
# each, in the same run: mux-stress -> proxy -> mux-echo (-w 1).
#
# The proxy under test is pinned to CPU $PROXY_CORE, the client and the echo
# backend share CPU $CLIENT_CORE (the machine may have only two), and the two
# proxies alternate run by run so drift on a shared machine hits both. Each
# run records requests/s, p50 and p99 from mux-stress --json and the proxy's
# CPU (utime+stime from /proc/PID/stat).
#
# Usage (after a Release build, see docs/proxy.md):
#   tools/bench/proxy_vs_haproxy.sh [RUNS] [SECONDS] [mux-stress args...]
# Defaults: 5 runs of 5 s, -c 50 -p 4 -s 64. Environment: BUILD (build tree,
# default build-rel), PROXY_CORE (1), CLIENT_CORE (0), CSV (append one row
# per run). Needs haproxy (Debian package haproxy) and jq.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
SECS=${2:-5}
if [ $# -ge 2 ]; then shift 2; else shift $#; fi
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(-c 50 -p 4 -s 64)
B=${BUILD:-build-rel}
PROXY_CORE=${PROXY_CORE:-1}
CLIENT_CORE=${CLIENT_CORE:-0}
STRESS=$B/tools/mux-stress
for f in "$STRESS" "$B/apps/mux-echo" "$B/apps/mux-proxy"; do
    [ -x "$f" ] || { echo "missing $f (build $B first)" >&2; exit 2; }
done
command -v haproxy > /dev/null || { echo "haproxy not found (apt-get install haproxy)" >&2; exit 2; }
command -v jq > /dev/null || { echo "jq not found" >&2; exit 2; }

TMP=$(mktemp -d /tmp/proxybench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_mux CORE OUTVAR CMD...: a mux program pinned to CORE; its PID is
# appended to PIDS and its port stored in OUTVAR (from the ready line).
start_mux() {
    local core=$1 var=$2 log=$TMP/ready.$RANDOM port=
    shift 2
    taskset -c "$core" "$@" > "$log" 2> "$log.err" &
    PIDS+=($!)
    for _ in $(seq 200); do
        port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { echo "no ready line from $*" >&2; cat "$log.err" >&2; exit 1; }
    printf -v "$var" '%s' "$port"
}

stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_haproxy CORE BACKEND_PORT: sets HA_PORT and HA_PID.
start_haproxy() {
    HA_PORT=$(free_port)
    cat > "$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4000
defaults
    mode tcp
    timeout connect 1s
    timeout client 60s
    timeout server 60s
frontend in
    bind 127.0.0.1:$HA_PORT
    default_backend echo
backend echo
    server e1 127.0.0.1:$2
EOF
    taskset -c "$1" haproxy -f "$TMP/haproxy.cfg" -db > "$TMP/haproxy.log" 2>&1 &
    HA_PID=$!
    PIDS+=("$HA_PID")
    for _ in $(seq 200); do
        (exec 3<> "/dev/tcp/127.0.0.1/$HA_PORT") 2> /dev/null && return 0
        sleep 0.05
    done
    echo "haproxy did not start" >&2
    cat "$TMP/haproxy.log" >&2
    exit 1
}

proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_mux "$CLIENT_CORE" ECHO_PORT "$B/apps/mux-echo" -w 1 -l 127.0.0.1:0 --log-level warn

# run NAME PID PORT: one measurement through the proxy PID listening on PORT
run() {
    local name=$1 pid=$2 port=$3 t0 t1 out=$TMP/$1.json
    t0=$(proc_ticks "$pid")
    taskset -c "$CLIENT_CORE" "$STRESS" -q -t 1 -d "$SECS" --warmup 1 "${ARGS[@]}" --json "$out" \
        "127.0.0.1:$port" > /dev/null
    t1=$(proc_ticks "$pid")
    local rps p50 p99 cpu
    rps=$(jq -r .requests_per_sec "$out")
    p50=$(jq -r .latency_us.p50 "$out")
    p99=$(jq -r .latency_us.p99 "$out")
    cpu=$(awk -v d=$((t1 - t0)) -v s="$SECS" 'BEGIN {printf "%.0f", d / (s + 1)}') # ticks/s = % of a core
    printf '%-10s %3d %12.0f %10s %10s %6s%%\n' "$name" "$r" "$rps" "$p50" "$p99" "$cpu"
    echo "$name,$r,$rps,$p50,$p99,$cpu" >> "$TMP/rows.csv"
    if [ -n "${CSV:-}" ]; then echo "$name,$r,$rps,$p50,$p99,$cpu,${ARGS[*]}" >> "$CSV"; fi
}

echo "mux-stress ${ARGS[*]} -t 1, ${SECS}s (+1s warm-up) x $RUNS; proxy on CPU $PROXY_CORE," \
     "client and mux-echo on CPU $CLIENT_CORE"
printf '%-10s %3s %12s %10s %10s %7s\n' proxy run req/s p50_us p99_us cpu
for r in $(seq "$RUNS"); do
    order=(mux haproxy)
    [ $((r % 2)) -eq 0 ] && order=(haproxy mux)
    for which in "${order[@]}"; do
        if [ "$which" = mux ]; then
            start_mux "$PROXY_CORE" PX_PORT "$B/apps/mux-proxy" -w 1 -l 127.0.0.1:0 \
                -b "127.0.0.1:$ECHO_PORT" --log-level warn
            px_pid=${PIDS[-1]}
            run mux-proxy "$px_pid" "$PX_PORT"
            stop_pid "$px_pid"
        else
            start_haproxy "$PROXY_CORE" "$ECHO_PORT"
            run haproxy "$HA_PID" "$HA_PORT"
            stop_pid "$HA_PID"
        fi
    done
done
echo "medians:"
for name in mux-proxy haproxy; do
    rps=$(awk -F, -v n="$name" '$1 == n {print $3}' "$TMP/rows.csv" | sort -g |
          awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
    p99=$(awk -F, -v n="$name" '$1 == n {print $5}' "$TMP/rows.csv" | sort -g |
          awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
    printf '  %-10s %12.0f req/s  p99 %s us\n' "$name" "$rps" "$p99"
done
