#!/usr/bin/env python3
"""h2_setup.py - how a connection to mux-httpd becomes HTTP/1.1 or HTTP/2,
and the request-header deadline of both versions.

usage: h2_setup.py MUX_HTTPD   (exit 0 pass, 1 fail, 77 skip)

Starts two mux-httpd (plain and TLS, header_timeout_ms = 400,
keepalive_timeout_ms = 4000, the poller MUX_TEST_POLLER names) and checks:

  - ALPN (mux_conn_alpn): "h2" is HTTP/2 from the first byte (the server's
    SETTINGS come before the client sends anything; HTTP/1.1 bytes get a
    GOAWAY), "http/1.1" is HTTP/1.1 only (the HTTP/2 preface is a 505, and
    Upgrade: h2c is ignored), no ALPN falls back to the preface sniff;
  - Upgrade: h2c (RFC 7540 3.2) on the plain port: 101, the request
    answered as stream 1 once the client's preface came, more streams on
    the same connection; no upgrade (an HTTP/1.1 answer) for HTTP/1.0, a
    body, a missing connection option, two or a malformed HTTP2-Settings;
  - the header deadline (mux_conn_set_deadline): a client trickling one
    byte every 100 ms is closed about 400 ms after its first byte, long
    before its last, for an HTTP/1.1 head, the HTTP/2 preface (prior
    knowledge and after an upgrade), a HEADERS frame (h2c and h2 over TLS)
    and a header block whose CONTINUATIONs never end it; complete frames
    at the same pace (PINGs) and silence between requests are not cut.

Every socket has a timeout and every loop a count bound; the servers are
stopped by PID (SIGTERM, exit 0 required). MUX_H2_WRAP runs them under a
command (valgrind); MUX_TEST_SLOWDOWN stretches the time bounds.
"""
import base64
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h2_frames import FAILED, PREFACE, PROTOCOL_ERROR, Conn, check, hf  # noqa: E402 (exits 77)

HEADER_MS = 400
IDLE_MS = 4000
SLOW = int(os.environ.get("MUX_TEST_SLOWDOWN", "1") or 1)
SLACK_MS = 1500 * SLOW
PACE = 0.1  # the trickling clients' pace: far slower than HEADER_MS in total


class Server:
    def __init__(self, binary, top, root, name, extra=()):
        conf = os.path.join(top, name + ".conf")
        with open(conf, "w") as f:
            f.write("httpd = { header_timeout_ms = %d; keepalive_timeout_ms = %d; };\n"
                    % (HEADER_MS, IDLE_MS))
        poller = os.environ.get("MUX_TEST_POLLER", "") or "epoll"
        flags = ["--poller", "epoll", "--edge"] if poller == "epoll-et" else ["--poller", poller]
        wrap = shlex.split(os.environ.get("MUX_H2_WRAP", ""))
        self.proc = subprocess.Popen(wrap + [binary, "-r", root, "-l", "127.0.0.1:0", "-w", "1",
                                             "-c", conf] + flags + list(extra),
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.port = None
        if line.startswith("listening on "):
            self.port = int(line.split()[2].rsplit(":", 1)[1])
        print("%s: %s" % (name, line.strip()), flush=True)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def tls_socket(port, alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
    s = ctx.wrap_socket(raw)
    got = s.selected_alpn_protocol()
    check(got == (alpn[0] if alpn and alpn[0] in ("h2", "http/1.1") else None),
          "ALPN offered %r: the server chose %r" % (alpn, got))
    return s


def read_until_closed(sock, limit_s=5.0):
    """Everything the server sends until it closes (or limit_s passes)."""
    data, end = b"", time.monotonic() + limit_s * SLOW
    for _ in range(100000):
        left = end - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except (socket.timeout, OSError):
            break
        if not d:
            break
        data += d
    return data


def trickle(sock, data):
    """Sends data one byte every PACE seconds, reading meanwhile. Returns
    (ms from the first byte until the server closed, or None when it never
    did, bytes the server sent)."""
    t0, got = time.monotonic(), b""
    for i in range(len(data)):
        try:
            sock.sendall(data[i:i + 1])
        except OSError:
            return (time.monotonic() - t0) * 1000, got
        end = time.monotonic() + PACE
        for _ in range(1000):
            left = end - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                d = sock.recv(65536)
            except socket.timeout:
                break
            except OSError:
                return (time.monotonic() - t0) * 1000, got
            if not d:
                return (time.monotonic() - t0) * 1000, got
            got += d
    return None, got


def at_deadline(what, ms, total_ms):
    """ms is when the trickling client was closed: at the deadline, far
    before its last byte at total_ms (which progress would have waited for)."""
    print("%s: closed after %s ms (its last byte would come at %d ms)"
          % (what, None if ms is None else int(ms), total_ms), flush=True)
    check(ms is not None and HEADER_MS - 100 <= ms < HEADER_MS + SLACK_MS,
          "%s: closed at the header deadline (%d ms), not later" % (what, HEADER_MS))


def h1_request(path="/hello.txt", extra="", version="1.1"):
    return ("GET %s HTTP/%s\r\nHost: t\r\n%s\r\n" % (path, version, extra)).encode()


def upgrade_request(settings=None, extra="", version="1.1", conn="Upgrade, HTTP2-Settings",
                    method="GET"):
    if settings is None:
        settings = base64.urlsafe_b64encode(hf.SettingsFrame(0, settings={
            hf.SettingsFrame.MAX_CONCURRENT_STREAMS: 100}).serialize_body()).rstrip(b"=").decode()
    return ("%s /hello.txt HTTP/%s\r\nHost: t\r\nConnection: %s\r\nUpgrade: h2c\r\n"
            "HTTP2-Settings: %s\r\n%s\r\n" % (method, version, conn, settings, extra)).encode()


def stream_get(c, sid, path="/hello.txt"):
    c.send(c.headers(sid, path))
    return c.response(sid)


# ---- the cases ------------------------------------------------------------

def deadlines_plain(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    req = h1_request(extra="X-Slow: " + "a" * 20 + "\r\n")
    ms, got = trickle(s, req)
    at_deadline("HTTP/1.1 head trickled", ms, len(req) * PACE * 1000)
    check(got == b"", "HTTP/1.1 head trickled: no answer")
    s.close()

    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    ms, _ = trickle(s, PREFACE)
    at_deadline("h2c preface trickled", ms, len(PREFACE) * PACE * 1000)
    s.close()

    c = Conn(port)
    check(c.handshake(), "h2c: SETTINGS exchanged")
    frame = c.headers(1, "/hello.txt", extra=[("x-slow", "a" * 10)]).serialize()
    ms, _ = trickle(c.sock, frame)
    at_deadline("h2c HEADERS frame trickled", ms, len(frame) * PACE * 1000)
    c.close()

    # Whole frames, but a header block that CONTINUATIONs never end.
    c = Conn(port)
    c.handshake()
    block = c.enc.encode([(":method", "GET"), (":scheme", "http"), (":path", "/hello.txt"),
                          (":authority", "t")])
    t0 = time.monotonic()
    c.send(hf.HeadersFrame(1, block))
    closed = None
    for i in range(7):  # below nghttp2's max_continuations (8)
        if c.goaway(timeout=0.3) is not None:
            closed = (time.monotonic() - t0) * 1000
            break
        try:
            c.send(hf.ContinuationFrame(1, c.enc.encode([("x-more-%d" % i, "b")])))
        except OSError:
            closed = (time.monotonic() - t0) * 1000
            break
    if closed is None and c.goaway(timeout=(HEADER_MS + SLACK_MS) / 1000) is not None:
        closed = (time.monotonic() - t0) * 1000
    at_deadline("h2c header block left open (CONTINUATION every 300 ms)", closed, 7 * 300)
    c.close()

    # Complete frames at the same pace are progress, not a head: the
    # connection lives on, then serves a request.
    c = Conn(port)
    c.handshake()
    acks = 0
    for i in range(int((HEADER_MS + SLACK_MS) / 1000 / PACE) + 5):
        c.send(hf.PingFrame(0, b"%08d" % i))
        f = c.recv_frame(PACE * 3)
        acks += isinstance(f, hf.PingFrame) and "ACK" in f.flags
        time.sleep(PACE)  # the client's pace, not a synchronisation
    r = stream_get(c, 1)
    check(acks > 0 and r is not None and r[0][":status"] == "200",
          "h2c: whole PINGs for %d ms are not a slow head (acks %d, then 200)"
          % (HEADER_MS + SLACK_MS, acks))
    # Silence between requests longer than the header deadline: still open.
    check(c.goaway(timeout=(HEADER_MS + 600) / 1000) is None, "h2c: idle past the header "
          "deadline between requests is not closed")
    r = stream_get(c, 3)
    check(r is not None and r[0][":status"] == "200", "h2c: served after the silence")
    c.close()


def upgrade_plain(port, hello):
    # The upgrade: 101, the preface, stream 1's answer, more streams.
    for method in ("GET", "HEAD"):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(upgrade_request(method=method))
        head = b""
        for _ in range(100):
            d = s.recv(4096)
            if not d:
                break
            head += d
            if b"\r\n\r\n" in head:
                break
        status, _, rest = head.partition(b"\r\n\r\n")
        check(status.startswith(b"HTTP/1.1 101 ") and b"Upgrade: h2c" in status,
              "%s Upgrade: h2c answered 101 (%r)" % (method, status[:40]))
        c = Conn(port, sock=s, preface=False)
        c.buf = rest
        c.send_preface()
        check(c.handshake(), "%s upgrade: SETTINGS exchanged after the 101" % method)
        r = c.response(1)
        if method == "GET":
            check(r is not None and r[0][":status"] == "200" and r[1] == hello,
                  "upgrade: the GET answered as stream 1, byte-exact")
            r = stream_get(c, 3)
            check(r is not None and r[0][":status"] == "200" and r[1] == hello,
                  "upgrade: stream 3 on the same connection")
        else:
            check(r is not None and r[0][":status"] == "200" and r[1] == b""
                  and r[0].get("content-length") == str(len(hello)),
                  "upgrade: the HEAD answered as stream 1, no body")
        c.close()

    # What must not upgrade: answered with HTTP/1.x as if Upgrade were absent.
    cases = [
        ("HTTP/1.0", upgrade_request(version="1.0"), b"HTTP/1.1 200 "),
        ("a body", upgrade_request(extra="Content-Length: 5\r\n") + b"hello", b"HTTP/1.1 200 "),
        ("no HTTP2-Settings option", upgrade_request(conn="Upgrade"), b"HTTP/1.1 200 "),
        ("two HTTP2-Settings", upgrade_request(extra="HTTP2-Settings: AAMAAABk\r\n"),
         b"HTTP/1.1 200 "),
        ("HTTP2-Settings not base64url", upgrade_request(settings="!!!!"), b"HTTP/1.1 200 "),
        ("HTTP2-Settings of 5 bytes", upgrade_request(settings="AAMAAAA"), b"HTTP/1.1 200 "),
    ]
    for what, req, want in cases:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(req)
        s.shutdown(socket.SHUT_WR)
        data = read_until_closed(s)
        check(data.startswith(want) and data.endswith(hello) and b" 101 " not in data,
              "Upgrade with %s: no upgrade, %r (%r)" % (what, want, data[:30]))
        s.close()

    # After a 101 the client's preface is a head like any other.
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(upgrade_request())
    head = b""
    for _ in range(100):
        d = s.recv(4096)
        head += d
        if not d or b"\r\n\r\n" in head:
            break
    ms, _ = trickle(s, PREFACE)
    at_deadline("preface trickled after the 101", ms, len(PREFACE) * PACE * 1000)
    s.close()


def alpn_h2(port, hello):
    # h2: the server's SETTINGS come first, unasked.
    s = tls_socket(port, ["h2", "http/1.1"])
    c = Conn(port, sock=s, preface=False)
    f = c.recv_frame(5 * SLOW)
    check(isinstance(f, hf.SettingsFrame) and "ACK" not in f.flags,
          "ALPN h2: the server's SETTINGS before any client byte (%r)" % (f,))
    c.server_settings = dict(f.settings) if isinstance(f, hf.SettingsFrame) else None
    c.send_preface()
    c.send(hf.SettingsFrame(0, flags=["ACK"]))
    r = stream_get(c, 1)
    check(r is not None and r[0][":status"] == "200" and r[1] == hello, "ALPN h2: GET 200")
    c.close()


def alpn_h2_refuses_http1(port, hello):
    # h2, but HTTP/1.1 bytes: not HTTP/1.1, a GOAWAY.
    s = tls_socket(port, ["h2"])
    s.sendall(h1_request())
    data = read_until_closed(s)
    check(b"HTTP/1.1" not in data and b"\x07\x00\x00\x00\x00\x00" in data,
          "ALPN h2 then HTTP/1.1 bytes: GOAWAY, no HTTP/1.1 answer (%r)" % data[-20:])
    s.close()


def alpn_http1(port, hello):
    # http/1.1: the preface is a 505; Upgrade: h2c is ignored.
    s = tls_socket(port, ["http/1.1"])
    s.sendall(PREFACE)
    data = read_until_closed(s)
    check(data.startswith(b"HTTP/1.1 505 "), "ALPN http/1.1 then the h2 preface: 505 (%r)"
          % data[:20])
    s.close()
    s = tls_socket(port, ["http/1.1"])
    s.sendall(upgrade_request(extra="Connection: close\r\n"))
    data = read_until_closed(s)
    check(data.startswith(b"HTTP/1.1 200 ") and data.endswith(hello),
          "ALPN http/1.1 with Upgrade: h2c: answered with HTTP/1.1 (%r)" % data[:20])
    s.close()


def no_alpn(port, hello):
    # No ALPN: the preface still decides (prior knowledge over TLS).
    s = tls_socket(port, None)
    c = Conn(port, sock=s)
    check(c.handshake(), "no ALPN: the preface makes it HTTP/2")
    r = stream_get(c, 1)
    check(r is not None and r[0][":status"] == "200", "no ALPN: h2 GET 200")
    c.close()


def deadlines_tls(port, hello):
    # The header deadline over TLS, both versions.
    s = tls_socket(port, ["h2"])
    c = Conn(port, sock=s)
    c.handshake()
    frame = c.headers(1, "/hello.txt", extra=[("x-slow", "a" * 10)]).serialize()
    ms, _ = trickle(c.sock, frame)
    at_deadline("h2 (ALPN) HEADERS frame trickled", ms, len(frame) * PACE * 1000)
    c.close()
    s = tls_socket(port, ["http/1.1"])
    req = h1_request(extra="X-Slow: " + "a" * 20 + "\r\n")
    ms, got = trickle(s, req)
    at_deadline("HTTP/1.1 (ALPN) head trickled", ms, len(req) * PACE * 1000)
    s.close()


def guarded(case, *args):
    """A case that raises (the server closed when it should have answered)
    fails, and the others still run."""
    try:
        case(*args)
    except (OSError, ValueError, KeyError, TypeError) as e:
        check(False, "%s raised %r" % (case.__name__, e))


def run(binary, top):
    root = os.path.join(top, "root")
    os.makedirs(root)
    hello = b"hello world\n"
    with open(os.path.join(root, "hello.txt"), "wb") as f:
        f.write(hello)
    cert, key = os.path.join(top, "cert.pem"), os.path.join(top, "key.pem")
    have_tls = shutil.which("openssl") and subprocess.call(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30) == 0
    plain = Server(binary, top, root, "plain")
    tls = Server(binary, top, root, "tls", ["--tls-cert", cert, "--tls-key", key]) \
        if have_tls else None
    try:
        if check(plain.port is not None, "plain server ready"):
            guarded(deadlines_plain, plain.port)
            guarded(upgrade_plain, plain.port, hello)
        if tls is None:
            print("openssl CLI missing: TLS cases skipped")
        elif check(tls.port is not None, "TLS server ready"):
            for case in (alpn_h2, alpn_h2_refuses_http1, alpn_http1, no_alpn, deadlines_tls):
                guarded(case, tls.port, hello)
    finally:
        for srv in (plain, tls):
            if srv is not None:
                rc = srv.stop()
                check(rc == 0, "server exit code %s after SIGTERM" % rc)
    print("%d failures" % len(FAILED))
    return 1 if FAILED else 0


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    top = tempfile.mkdtemp(prefix="mux-h2-setup-")
    try:
        return run(sys.argv[1], top)
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
