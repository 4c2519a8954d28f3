#!/usr/bin/env bash
# h2_tools.sh MUX_HTTPD - HTTP/2 against mux-httpd with clients nobody in
# this project wrote: curl --http2-prior-knowledge (h2c) and curl --http2
# over TLS (ALPN h2) fetch a 3 MiB file byte for byte, nghttp -nv shows the
# SETTINGS exchange, h2load --h2c-style prior knowledge and h2load over TLS
# (ALPN h2) get 1000 responses, all 2xx. Each case is skipped when its tool
# is missing (exit 77 when all are); every command has a timeout; the
# servers are stopped by PID and must exit 0.
set -u
BIN=$1
TOP=$(mktemp -d /tmp/mux-h2-tools-XXXXXX)
PIDS=()
FAIL=0
RAN=0
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$TOP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; FAIL=1; }
have() { command -v "$1" >/dev/null 2>&1; }

mkdir -p "$TOP/root"
echo "hello world" > "$TOP/root/hello.txt"
head -c $((3 << 20)) /dev/urandom > "$TOP/root/big.bin"

# start NAME ARGS...: starts mux-httpd, sets PORT_<NAME> from the ready line.
start() {
    local name=$1
    shift
    "$BIN" -r "$TOP/root" -l 127.0.0.1:0 -w 2 "$@" > "$TOP/$name.out" 2> "$TOP/$name.err" &
    PIDS+=($!)
    eval "PID_$name=$!"
    local i
    for i in $(seq 100); do
        grep -q "^listening on" "$TOP/$name.out" && break
        kill -0 "${PIDS[-1]}" 2>/dev/null || break
        sleep 0.05 # polling the ready line's file, bounded by the count
    done
    local port
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TOP/$name.out")
    [ -n "$port" ] || { fail "$name: no ready line"; cat "$TOP/$name.err"; exit 1; }
    eval "PORT_$name=$port"
}
stop() {
    local pid
    eval "pid=\$PID_$1"
    kill -TERM "$pid"
    local rc=0
    timeout 20 tail --pid="$pid" -f /dev/null || rc=1
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ] || fail "$1: exit status $rc after SIGTERM"
}

start plain
TLS=0
if have openssl && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$TOP/key.pem" -out "$TOP/cert.pem" -days 1 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1; then
    start tls --tls-cert "$TOP/cert.pem" --tls-key "$TOP/key.pem"
    TLS=1
fi

if have curl; then
    RAN=1
    out=$(timeout 30 curl -s --http2-prior-knowledge -o "$TOP/c1" -w '%{http_code} %{http_version}' \
          "http://127.0.0.1:$PORT_plain/big.bin")
    [ "$out" = "200 2" ] || fail "curl --http2-prior-knowledge: $out"
    cmp -s "$TOP/c1" "$TOP/root/big.bin" || fail "curl --http2-prior-knowledge: body differs"
    out=$(timeout 30 curl -s --http2-prior-knowledge -r 10-19 -o "$TOP/c2" -w '%{http_code}' \
          "http://127.0.0.1:$PORT_plain/big.bin")
    [ "$out" = "206" ] && cmp -s "$TOP/c2" <(tail -c +11 "$TOP/root/big.bin" | head -c 10) ||
        fail "curl h2c range: $out"
    if [ $TLS = 1 ]; then
        out=$(timeout 30 curl -s -k --http2 -o "$TOP/c3" -w '%{http_code} %{http_version}' \
              "https://127.0.0.1:$PORT_tls/big.bin")
        [ "$out" = "200 2" ] || fail "curl --http2 over TLS: $out"
        cmp -s "$TOP/c3" "$TOP/root/big.bin" || fail "curl --http2 over TLS: body differs"
        out=$(timeout 30 curl -s -k --http1.1 -o /dev/null -w '%{http_code} %{http_version}' \
              "https://127.0.0.1:$PORT_tls/hello.txt")
        [ "$out" = "200 1.1" ] || fail "curl --http1.1 over TLS (ALPN http/1.1): $out"
    fi
    echo "curl: done"
else
    echo "SKIP: curl not installed"
fi

if have nghttp; then
    RAN=1
    timeout 30 nghttp -nv "http://127.0.0.1:$PORT_plain/hello.txt" > "$TOP/nghttp" 2>&1 ||
        fail "nghttp -nv: exit $?"
    grep -q "recv SETTINGS frame" "$TOP/nghttp" &&
        grep -q "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100" "$TOP/nghttp" &&
        grep -q "recv SETTINGS frame <length=0, flags=0x01" "$TOP/nghttp" &&
        grep -q ":status: 200" "$TOP/nghttp" || { fail "nghttp -nv output"; cat "$TOP/nghttp"; }
    echo "nghttp: done"
else
    echo "SKIP: nghttp (nghttp2-client) not installed"
fi

if have h2load; then
    RAN=1
    timeout 60 h2load -n 1000 -c 10 -m 10 "http://127.0.0.1:$PORT_plain/hello.txt" > "$TOP/h1" 2>&1
    grep -q "status codes: 1000 2xx" "$TOP/h1" || { fail "h2load h2c"; cat "$TOP/h1"; }
    if [ $TLS = 1 ]; then
        timeout 60 h2load -n 1000 -c 10 -m 10 "https://127.0.0.1:$PORT_tls/hello.txt" > "$TOP/h2" 2>&1
        grep -q "status codes: 1000 2xx" "$TOP/h2" && grep -q "Application protocol: h2" "$TOP/h2" ||
            { fail "h2load over TLS"; cat "$TOP/h2"; }
    fi
    echo "h2load: done"
else
    echo "SKIP: h2load (nghttp2-client) not installed"
fi

stop plain
[ $TLS = 1 ] && stop tls
PIDS=()
[ $RAN = 1 ] || exit 77
[ $FAIL = 0 ] && echo "all passed"
exit $FAIL
