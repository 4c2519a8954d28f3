#!/usr/bin/env bash
# httpd_vs_peers.sh - mux-httpd against nginx, h2o and lighttpd (Debian
# packages nginx-light, h2o, lighttpd; wrk as the load generator).
#
#   tools/bench/httpd_vs_peers.sh [WORKERS...]        (default: 1 2)
#
# Every server serves the same temporary root with the same worker count,
# access logs off, keep-alive without a request limit, on its own port,
# pinned to core 0; wrk runs on core 1 (-t1 -c$CONNS). Loads:
#   4k        GET of a 4 KiB file, keep-alive
#   1m        GET of a 1 MiB file, keep-alive
#   pipe16    16 pipelined GETs of a 13-byte file per write (wrk_pipeline.lua)
#   h2c       HTTP/2 with prior knowledge, h2load -c100 -m100 -t1 on the
#             4 KiB file (mux-httpd, nginx and h2o only: lighttpd is left out)
#   h2tls     the same over TLS (ALPN h2; one EC P-256 certificate for all)
# Rounds are interleaved (every server for a load, then the next load, then
# the next round), so drift on the machine hits all servers alike; the
# table holds the median of $ROUNDS rounds of $DURATION each: requests/s,
# the p99 latency wrk reports (wrk shows none for pipelined runs), and the
# server's CPU time per request (user + system ticks of the server's
# processes and threads over the run, divided by the requests): when wrk's
# core is the bottleneck, throughput alone hides how much work each server
# does per request. Raw runs go to docs/httpd-peers.csv, the plot to
# docs/httpd-peers.png (gnuplot), and the table replaces the part of
# docs/httpd.md between the peers markers.
# Every server is started here and stopped by its PID.
#
# Environment: BUILD (default build-rel, a Release build), ROUNDS (3),
# DURATION (5s), CONNS (50), LOADS (default "4k 1m pipe16 h2c h2tls"),
# INSTALL=1 to apt-get the peers, wrk and h2load, TABLE_ONLY=1 to rebuild
# the table from an existing docs/httpd-peers.csv.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-50}
WORKER_SETS=("$@")
[ ${#WORKER_SETS[@]} -eq 0 ] && WORKER_SETS=(1 2)
. tools/bench/lib.sh

if [ "${INSTALL:-0}" = 1 ]; then
    apt-get install -y nginx-light h2o lighttpd wrk nghttp2-client openssl
fi
INSTALL_HINT=" (INSTALL=1 installs it)" need_tools nginx h2o lighttpd wrk curl h2load openssl
need_build apps/mux-httpd

ROOT=$BENCH_TMP/root
mkdir -p "$ROOT"
chmod 755 "$BENCH_TMP" "$ROOT" # nginx workers run as www-data
head -c 4096 /dev/urandom > "$ROOT/4k.bin"
head -c 1048576 /dev/urandom > "$ROOT/1m.bin"
printf 'Hello, World!' > "$ROOT/13.txt"
chmod 644 "$ROOT"/*
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -keyout "$BENCH_TMP/key.pem" -out "$BENCH_TMP/cert.pem" -subj /CN=127.0.0.1 2> /dev/null
chmod 644 "$BENCH_TMP"/*.pem
declare -A PATHS=([4k]=/4k.bin [1m]=/1m.bin [pipe16]=/13.txt [h2c]=/4k.bin [h2tls]=/4k.bin)
read -r -a LOADS <<< "${LOADS:-4k 1m pipe16 h2c h2tls}"
SERVERS=(mux-httpd nginx h2o lighttpd)
declare -A PORT PID H2C H2S
PEER_PIDS=()
MUX_TLS_PID=

# Which servers a load runs on, and on which port.
servers_for() { case $1 in h2*) echo mux-httpd nginx h2o ;; *) echo "${SERVERS[@]}" ;; esac; }
url_for() { # server load
    case $2 in
    h2c) echo "http://127.0.0.1:${H2C[$1]}${PATHS[$2]}" ;;
    h2tls) echo "https://127.0.0.1:${H2S[$1]}${PATHS[$2]}" ;;
    *) echo "http://127.0.0.1:${PORT[$1]}${PATHS[$2]}" ;;
    esac
}

# Peers do not print a ready line: poll the port (bounded) with curl.
wait_http() { # server port dir
    for _ in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$2/13.txt" && return 0
        sleep 0.1
    done
    echo "$1: no HTTP on port $2" >&2
    cat "$3"/"$1".* >&2 2>/dev/null || true
    return 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

conf_nginx() { # workers port dir
    cat > "$3/nginx.conf" <<CONF
daemon off;
worker_processes $1;
pid $3/nginx.pid;
error_log $3/nginx.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000000;
    keepalive_timeout 75s;
    open_file_cache max=1000 inactive=20s;
    types { application/octet-stream bin; text/plain txt; }
    client_body_temp_path $3/nginx-body;
    proxy_temp_path $3/nginx-proxy;
    fastcgi_temp_path $3/nginx-fastcgi;
    uwsgi_temp_path $3/nginx-uwsgi;
    scgi_temp_path $3/nginx-scgi;
    server { listen 127.0.0.1:$2; root $ROOT; }
    server { listen 127.0.0.1:$4 http2; root $ROOT; }
    server {
        listen 127.0.0.1:$5 ssl http2;
        root $ROOT;
        ssl_certificate $BENCH_TMP/cert.pem;
        ssl_certificate_key $BENCH_TMP/key.pem;
    }
}
CONF
}

conf_h2o() { # h2c with prior knowledge on the plain port ($4 = $2)
    cat > "$3/h2o.conf" <<CONF
listen:
  host: 127.0.0.1
  port: $2
listen:
  host: 127.0.0.1
  port: $5
  ssl:
    certificate-file: $BENCH_TMP/cert.pem
    key-file: $BENCH_TMP/key.pem
num-threads: $1
error-log: $3/h2o.err
hosts:
  default:
    paths:
      /:
        file.dir: $ROOT
CONF
}

conf_lighttpd() {
    cat > "$3/lighttpd.conf" <<CONF
server.document-root = "$ROOT"
server.bind = "127.0.0.1"
server.port = $2
server.errorlog = "$3/lighttpd.err"
server.max-keep-alive-requests = 1000000
server.max-keep-alive-idle = 75
server.max-fds = 8192
mimetype.assign = (".bin" => "application/octet-stream", ".txt" => "text/plain")
CONF
    [ "$1" -gt 1 ] && echo "server.max-worker = $1" >> "$3/lighttpd.conf"
    return 0
}

start_all() { # workers
    local w=$1 dir=$BENCH_TMP/w$1
    mkdir -p "$dir"
    start_server 0 "$B/apps/mux-httpd" -r "$ROOT" -l 127.0.0.1:0 -w "$w" --log-level warn
    PORT[mux-httpd]=$SRV_PORT
    PID[mux-httpd]=$SRV_PID
    H2C[mux-httpd]=$SRV_PORT # the preface decides
    start_mux_tls "$w"
    for s in nginx h2o lighttpd; do
        PORT[$s]=$(free_port)
        H2C[$s]=$(free_port)
        H2S[$s]=$(free_port)
        "conf_$s" "$w" "${PORT[$s]}" "$dir" "${H2C[$s]}" "${H2S[$s]}"
    done
    H2C[h2o]=${PORT[h2o]}
    taskset -c 0 nginx -c "$dir/nginx.conf" -p "$dir" 2> "$dir/nginx.out" &
    PID[nginx]=$!
    taskset -c 0 h2o -c "$dir/h2o.conf" > "$dir/h2o.out" 2>&1 &
    PID[h2o]=$!
    taskset -c 0 lighttpd -D -f "$dir/lighttpd.conf" > "$dir/lighttpd.out" 2>&1 &
    PID[lighttpd]=$!
    PEER_PIDS=("${PID[nginx]}" "${PID[h2o]}" "${PID[lighttpd]}")
    for s in "${SERVERS[@]}"; do wait_http "$s" "${PORT[$s]}" "$dir"; done
}

# The TLS mux-httpd (its own process: a server's listeners are all TLS or
# none), on core 0 like the rest.
start_mux_tls() { # workers
    local ready=$BENCH_TMP/mux-tls.ready
    taskset -c 0 "$B/apps/mux-httpd" -r "$ROOT" -l 127.0.0.1:0 -w "$1" --log-level warn \
        --tls-cert "$BENCH_TMP/cert.pem" --tls-key "$BENCH_TMP/key.pem" > "$ready" 2>&1 &
    MUX_TLS_PID=$!
    PID[mux-tls]=$MUX_TLS_PID
    for _ in $(seq 200); do
        H2S[mux-httpd]=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$ready")
        [ -n "${H2S[mux-httpd]}" ] && return 0
        sleep 0.05
    done
    echo "TLS mux-httpd not ready" >&2
    cat "$ready" >&2
    return 1
}

stop_peers() {
    [ -n "$MUX_TLS_PID" ] && PEER_PIDS+=("$MUX_TLS_PID") && MUX_TLS_PID=
    for p in "${PEER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PEER_PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    PEER_PIDS=()
}
trap 'stop_peers; bench_cleanup' EXIT

# "12.34k" / "5.6ms" / "800us" from wrk -> plain numbers (req/s, microseconds).
to_num() { awk -v v="$1" 'BEGIN { m = 1; if (v ~ /k$/) m = 1e3; if (v ~ /M$/) m = 1e6;
    if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1e3; else if (v ~ /[0-9]s$/) m = 1e6;
    sub(/[a-zA-Z]+$/, "", v); printf "%.0f", v * m }'; }

# utime + stime (clock ticks) of a server: its process and its children
# (nginx and lighttpd workers are child processes; threads are included).
tree_ticks() {
    local t=0 p
    for p in "$1" $(pgrep -P "$1" || true); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2> /dev/null || echo 0)))
    done
    echo "$t"
}

# h2load: 100 connections, 100 streams each, one thread, a 1 s warm-up.
run_h2load() { # server load -> "rps p99_us cpu_us_per_request"
    local pid=${PID[$1]} out t0 t1
    [ "$1" = mux-httpd ] && [ "$2" = h2tls ] && pid=${PID[mux-tls]}
    t0=$(tree_ticks "$pid")
    out=$(taskset -c 1 h2load -c100 -m100 -t1 --warm-up-time=1 -D "${DURATION%s}" \
        "$(url_for "$1" "$2")" 2>&1)
    t1=$(tree_ticks "$pid")
    local rps p99 cpu bad
    rps=$(awk '/^finished in/ {print $4}' <<< "$out")
    # failed + errored requests, and answers other than 2xx
    bad=$(awk '/^requests:/ {n += $10 + $12} /^status codes:/ {n += $5 + $7 + $9} END {print n + 0}' \
        <<< "$out")
    [ -n "$rps" ] && [ "$bad" = 0 ] || echo "  $1 $2: $(grep -E '^(requests|status codes):' <<< "$out")" >&2
    # t1 - t0 includes the warm-up second: scale the requests by it
    cpu=$(awk -v t=$((t1 - t0)) -v r="$rps" -v d="${DURATION%s}" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", (r > 0 ? t * 1e6 / hz / (r * (d + 1)) : 0) }')
    p99=0 # h2load prints no percentiles per request
    echo "$(awk -v v="${rps:-0}" 'BEGIN { printf "%.0f", v }') $p99 $cpu"
}

run_wrk() { # server load -> "rps p99_us cpu_us_per_request"
    case $2 in h2*) run_h2load "$@"; return ;; esac
    local url="http://127.0.0.1:${PORT[$1]}${PATHS[$2]}" out t0 t1 total
    local args=(-t1 -c"$CONNS" -d"$DURATION" --latency)
    t0=$(tree_ticks "${PID[$1]}")
    if [ "$2" = pipe16 ]; then
        out=$(taskset -c 1 wrk "${args[@]}" -s tools/bench/wrk_pipeline.lua "$url" -- 16)
    else
        out=$(taskset -c 1 wrk "${args[@]}" "$url")
    fi
    t1=$(tree_ticks "${PID[$1]}")
    local rps p99 errs cpu
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<< "$out")
    total=$(awk '/requests in/ {print $1}' <<< "$out")
    cpu=$(awk -v t=$((t1 - t0)) -v n="$total" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", (n > 0 ? t * 1e6 / hz / n : 0) }')
    p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
    errs=$(awk '/Non-2xx|Socket errors/' <<< "$out")
    [ -n "$errs" ] && echo "  $1 $2: $errs" >&2
    echo "$(to_num "$rps") $(to_num "$p99") $cpu"
}

CSV=docs/httpd-peers.csv
[ "${TABLE_ONLY:-0}" = 1 ] || echo "workers,load,server,round,requests_per_sec,p99_us,cpu_us_per_request" > "$CSV"
for w in "${WORKER_SETS[@]}"; do
    [ "${TABLE_ONLY:-0}" = 1 ] && break
    start_all "$w"
    for r in $(seq "$ROUNDS"); do
        for load in "${LOADS[@]}"; do
            for s in $(servers_for "$load"); do
                read -r rps p99 cpu < <(run_wrk "$s" "$load")
                echo "w=$w round $r $load $s: $rps req/s, p99 $p99 us, $cpu us CPU/request" >&2
                echo "$w,$load,$s,$r,$rps,$p99,$cpu" >> "$CSV"
            done
        done
    done
    stop_server
    stop_peers
done

# The table: medians per workers/load/server, and mux-httpd over the best
# peer (throughput, and CPU per request: how many times less it spends).
med() { # workers load server column
    awk -F, -v w="$1" -v l="$2" -v s="$3" -v c="$4" '$1==w && $2==l && $3==s {print $c}' "$CSV" | median
}
# The median over rounds of mux-httpd's req/s over a peer's in the same
# round (the pair ratio: drift between rounds cancels).
pair_ratio() { # workers load peer
    awk -F, -v w="$1" -v l="$2" -v p="$3" '$1==w && $2==l && $3=="mux-httpd" {m[$4]=$5}
        $1==w && $2==l && $3==p {q[$4]=$5}
        END { for (r in m) if (q[r] > 0) printf "%.4f\n", m[r] / q[r] }' "$CSV" | median
}
table() {
    echo "| workers | load | mux-httpd | nginx | h2o | lighttpd | mux / best peer, req/s | best peer / mux, CPU per request | pair ratios mux / nginx, h2o, lighttpd |"
    echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for w in "${WORKER_SETS[@]}"; do
        for load in "${LOADS[@]}"; do
            local row="| $w | $load" best=0 mux=0 mux_cpu=0 best_cpu=0
            for s in "${SERVERS[@]}"; do
                local m p cpu
                if ! [[ " $(servers_for "$load") " == *" $s "* ]]; then
                    row="$row | -"
                    continue
                fi
                m=$(med "$w" "$load" "$s" 5)
                p=$(med "$w" "$load" "$s" 6)
                cpu=$(med "$w" "$load" "$s" 7)
                row="$row | $(awk -v m="$m" -v p="$p" -v c="$cpu" 'BEGIN {
                    printf "%.1fk", m / 1e3
                    if (p > 0) printf ", p99 %.1f ms", p / 1e3
                    printf ", %.1f us", c }')"
                if [ "$s" = mux-httpd ]; then
                    mux=$m
                    mux_cpu=$cpu
                else
                    awk -v a="$m" -v b="$best" 'BEGIN{exit !(a>b)}' && best=$m
                    awk -v a="$cpu" -v b="$best_cpu" 'BEGIN{exit !(b==0 || a<b)}' && best_cpu=$cpu
                fi
            done
            row="$row | $(awk -v a="$mux" -v b="$best" 'BEGIN { printf "%.2fx", a / b }')"
            row="$row | $(awk -v a="$best_cpu" -v b="$mux_cpu" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }')"
            local pairs="" peer pr
            for peer in nginx h2o lighttpd; do
                pr=$(pair_ratio "$w" "$load" "$peer")
                pairs="$pairs${pairs:+, }$(awk -v v="$pr" 'BEGIN { if (v == "") print "-"; else printf "%.2fx", v }')"
            done
            echo "$row | $pairs |"
        done
    done
}
# The plot: the same medians, one cluster per (workers, load).
plot() {
    local col file
    for col in 5 7; do
        file=$BENCH_TMP/col$col.dat
        echo "group ${SERVERS[*]}" > "$file"
        for w in "${WORKER_SETS[@]}"; do
            for load in "${LOADS[@]}"; do
                local line="${w}w-$load"
                for s in "${SERVERS[@]}"; do
                    local v
                    v=$(med "$w" "$load" "$s" $col)
                    line="$line ${v:-0}"
                done
                echo "$line" >> "$file"
            done
        done
    done
    gnuplot -e "rps='$BENCH_TMP/col5.dat'; cpu='$BENCH_TMP/col7.dat'; out='docs/httpd-peers.png'" \
        tools/bench/httpd_vs_peers.gp
}
if command -v gnuplot > /dev/null; then plot; else echo "no gnuplot: plot skipped" >&2; fi
TABLE=$(table)
echo "$TABLE"
splice_table docs/httpd.md peers "$TABLE"
