#!/usr/bin/env bash
# httpd_tls_vs_nginx.sh - mux-httpd over TLS against nginx over TLS (Debian
# nginx-light; wrk and mux-stress as the load generators).
#
#   tools/bench/httpd_tls_vs_nginx.sh
#
# Both servers: one worker pinned to core 0, the same certificate and key
# (made here: RSA 2048, the common web certificate, so a handshake's server
# side is dominated by the signature the server must compute), OpenSSL's
# default TLS 1.3 suites (the negotiated protocol and cipher of each server
# are printed, checked equal), access logs off, keep-alive without a request
# limit. The load runs on core 1. Loads:
#   4k         wrk -t1 -c$CONNS: GET of a 4 KiB file over keep-alive TLS
#   handshake  mux-stress --reconnect 1 -c$CONNS --insecure: every request on
#              a new connection with a full handshake (no resumption)
# Rounds are interleaved (each server for a load, then the next load, then
# the next round); the table holds the medians of $ROUNDS rounds of
# $DURATION: requests/s (4k) or handshakes/s, and the server's CPU time per
# request or handshake (user + system ticks of the server's processes over
# the run). Raw runs go to docs/httpd-tls.csv; the table replaces the part
# of docs/httpd.md between the tls markers.
# Every server is started here and stopped by its PID.
#
# Environment: BUILD (default build-rel, a Release build), ROUNDS (5),
# DURATION (5s), CONNS (50), TABLE_ONLY=1 to rebuild the table from the CSV.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-50}
. tools/bench/lib.sh

need_tools nginx wrk curl openssl jq
need_build apps/mux-httpd
need_build tools/mux-stress

ROOT=$BENCH_TMP/root
mkdir -p "$ROOT"
chmod 755 "$BENCH_TMP" "$ROOT" # nginx workers run as www-data
head -c 4096 /dev/urandom > "$ROOT/4k.bin"
chmod 644 "$ROOT"/*
CERT=$BENCH_TMP/cert.pem
KEY=$BENCH_TMP/key.pem
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$KEY" -out "$CERT" -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2> /dev/null
chmod 644 "$KEY"
SERVERS=(mux-httpd nginx)
LOADS=(4k handshake)
declare -A PORT PID

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_https() { # server port
    for _ in $(seq 100); do
        curl -sfk -o /dev/null "https://127.0.0.1:$2/4k.bin" && return 0
        sleep 0.1
    done
    echo "$1: no HTTPS on port $2" >&2
    cat "$BENCH_TMP"/nginx.err >&2 2>/dev/null || true
    return 1
}

start_nginx() {
    PORT[nginx]=$(free_port)
    local d=$BENCH_TMP
    cat > "$d/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/nginx.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000000;
    keepalive_timeout 75s;
    open_file_cache max=1000 inactive=20s;
    types { application/octet-stream bin; }
    client_body_temp_path $d/nginx-body;
    proxy_temp_path $d/nginx-proxy;
    fastcgi_temp_path $d/nginx-fastcgi;
    uwsgi_temp_path $d/nginx-uwsgi;
    scgi_temp_path $d/nginx-scgi;
    server {
        listen 127.0.0.1:${PORT[nginx]} ssl;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $ROOT;
    }
}
CONF
    taskset -c 0 nginx -c "$d/nginx.conf" -p "$d" 2> "$d/nginx.out" &
    PID[nginx]=$!
    wait_https nginx "${PORT[nginx]}"
}

stop_nginx() {
    local p=${PID[nginx]:-}
    [ -z "$p" ] && return 0
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    PID[nginx]=
}
trap 'stop_nginx; bench_cleanup' EXIT

tree_ticks() {
    local t=0 p
    for p in "$1" $(pgrep -P "$1" || true); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2> /dev/null || echo 0)))
    done
    echo "$t"
}

# "Protocol : TLSv1.3" and "Cipher is X" of a server, as s_client sees them.
negotiated() {
    openssl s_client -connect "127.0.0.1:$1" -servername localhost < /dev/null 2>/dev/null |
        awk '/^New, / {sub(/,$/, "", $2); print $2, $NF; exit}'
}

to_num() { awk -v v="$1" 'BEGIN { m = 1; if (v ~ /k$/) m = 1e3; if (v ~ /M$/) m = 1e6;
    sub(/[a-zA-Z]+$/, "", v); printf "%.0f", v * m }'; }

run_load() { # server load -> "rate cpu_us_per_unit"
    local t0 t1 rate n
    t0=$(tree_ticks "${PID[$1]}")
    if [ "$2" = 4k ]; then
        local out
        out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" "https://127.0.0.1:${PORT[$1]}/4k.bin")
        rate=$(to_num "$(awk '/^Requests\/sec:/ {print $2}' <<< "$out")")
        n=$(awk '/requests in/ {print $1}' <<< "$out")
        awk '/Non-2xx|Socket errors/' <<< "$out" >&2
    else
        taskset -c 1 "$STRESS" -q --json "$BENCH_TMP/hs.json" --insecure -c "$CONNS" \
            --reconnect 1 -d "$DURATION" "https://127.0.0.1:${PORT[$1]}/4k.bin" > /dev/null ||
            echo "  $1 handshake run did not pass" >&2
        rate=$(jq -r '.connections_per_sec | floor' "$BENCH_TMP/hs.json")
        n=$(jq -r '.connects' "$BENCH_TMP/hs.json")
    fi
    t1=$(tree_ticks "${PID[$1]}")
    echo "$rate $(awk -v t=$((t1 - t0)) -v n="$n" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0) }')"
}

CSV=docs/httpd-tls.csv
if [ "${TABLE_ONLY:-0}" != 1 ]; then
    start_server 0 "$B/apps/mux-httpd" -r "$ROOT" -l 127.0.0.1:0 -w 1 --log-level warn \
        --tls-cert "$CERT" --tls-key "$KEY"
    PORT[mux-httpd]=$SRV_PORT
    PID[mux-httpd]=$SRV_PID
    start_nginx
    a=$(negotiated "${PORT[mux-httpd]}")
    b=$(negotiated "${PORT[nginx]}")
    echo "negotiated: mux-httpd $a, nginx $b" >&2
    [ "$a" = "$b" ] || { echo "the servers negotiate differently" >&2; exit 1; }
    echo "load,server,round,rate,cpu_us_per_unit,negotiated" > "$CSV"
    for r in $(seq "$ROUNDS"); do
        for load in "${LOADS[@]}"; do
            for s in "${SERVERS[@]}"; do
                read -r rate cpu < <(run_load "$s" "$load")
                echo "round $r $load $s: $rate/s, $cpu us CPU each" >&2
                echo "$load,$s,$r,$rate,$cpu,$a" >> "$CSV"
            done
        done
    done
    stop_server
    stop_nginx
fi

med() { awk -F, -v l="$1" -v s="$2" -v c="$3" '$1==l && $2==s {print $c}' "$CSV" | median; }
table() {
    echo "| load | mux-httpd | nginx | mux / nginx | nginx / mux, CPU per unit |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    for load in "${LOADS[@]}"; do
        local m n mc nc unit
        unit=$([ "$load" = 4k ] && echo "req/s" || echo "handshakes/s")
        m=$(med "$load" mux-httpd 4); n=$(med "$load" nginx 4)
        mc=$(med "$load" mux-httpd 5); nc=$(med "$load" nginx 5)
        awk -v l="$load" -v u="$unit" -v m="$m" -v n="$n" -v mc="$mc" -v nc="$nc" 'BEGIN {
            printf "| %s | %.0f %s, %.1f us | %.0f %s, %.1f us | %.2fx | %.2fx |\n",
                l, m, u, mc, n, u, nc, m / n, (mc > 0 ? nc / mc : 0) }'
    done
}
TABLE=$(table)
echo "$TABLE"
splice_table docs/httpd.md tls "$TABLE"
