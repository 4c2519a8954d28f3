#!/usr/bin/env python3
"""h2_frames.py - HTTP/2 conformance and abuse tests for mux-httpd, raw
frames over a socket (python3-h2's hyperframe and hpack build and parse
them; no HTTP/2 client library decides anything for us).

usage: h2_frames.py MUX_HTTPD   (exit 0 pass, 1 fail, 77 skip)

Starts mux-httpd on 127.0.0.1:0 (ready line), one worker and a short
keep-alive timeout, and stops it by PID (SIGTERM, exit 0 required). Every
socket has a timeout and every loop a count bound. The conformance part
checks what h2spec checks for a server: the preface and SETTINGS
exchange, frame sizes, stream states, flow control in both directions,
HPACK errors, SETTINGS and GOAWAY handling, and that GET/HEAD, ranges,
conditionals and path safety answer as HTTP/1.1 does. The abuse part runs
Rapid Reset, a CONTINUATION flood, an HPACK bomb, SETTINGS and PING
floods, a zero window that never opens and thousands of streams never
read: each time the attacker is answered with GOAWAY (or a reset stream
for the bomb) or closed, the server's RSS stays bounded, and a fresh
client is served meanwhile.
"""
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

try:
    import hpack
    from hyperframe import frame as hf
except ImportError:
    print("SKIP: python3-h2 (hyperframe, hpack) not installed")
    sys.exit(77)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR = 0, 1, 2, 3, 6
REFUSED_STREAM, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 7, 9, 11
FAILED = []


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL:", what, flush=True)
    return cond


class Conn:
    """A raw HTTP/2 client connection."""

    def __init__(self, port, settings=None, timeout=5.0, sock=None, preface=True):
        """sock: an open (e.g. TLS) socket instead of a new TCP one;
        preface=False: send nothing yet (send_preface later)."""
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.eof = False
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.server_settings = None
        self.streams = {}  # sid -> [headers, body, sizes, done, reset]
        if preface:
            self.send_preface(settings)

    def send_preface(self, settings=None):
        self.sock.sendall(PREFACE + hf.SettingsFrame(0, settings=settings or {}).serialize())

    def send(self, *frames):
        self.sock.sendall(b"".join(f.serialize() for f in frames))

    def recv_frame(self, timeout=5.0):
        """The next frame, or None on timeout or EOF/reset (then self.eof)."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 9:
                f, length = hf.Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) >= 9 + length:
                    f.parse_body(memoryview(self.buf[9:9 + length]))
                    self.buf = self.buf[9 + length:]
                    return f
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                data = b""
            if not data:
                self.eof = True
                return None
            self.buf += data

    def handshake(self):
        """Reads up to the server's SETTINGS and its ACK of ours."""
        acked = False
        for _ in range(10):
            f = self.recv_frame()
            if f is None:
                return False
            if isinstance(f, hf.SettingsFrame):
                if "ACK" in f.flags:
                    acked = True
                else:
                    self.server_settings = dict(f.settings)
                    self.send(hf.SettingsFrame(0, flags=["ACK"]))
            if acked and self.server_settings is not None:
                return True
        return False

    def headers(self, sid, path, method="GET", extra=(), end_stream=True):
        hdrs = [(":method", method), (":scheme", "http"), (":authority", "t"),
                (":path", path)] + list(extra)
        flags = ["END_HEADERS"] + (["END_STREAM"] if end_stream else [])
        return hf.HeadersFrame(sid, self.enc.encode(hdrs), flags=flags)

    def response(self, sid, timeout=10.0, window=True, max_frames=100000):
        """(headers dict, body bytes, data frame sizes) of stream sid, or
        None on connection end or RST_STREAM. Frames of other streams are
        kept for their own call."""
        for _ in range(max_frames):
            st = self.streams.get(sid)
            if st and st[4]:
                return None
            if st and st[3]:
                return st[0], st[1], st[2]
            f = self.recv_frame(timeout)
            if f is None or isinstance(f, hf.GoAwayFrame):
                return None
            if isinstance(f, hf.PingFrame) and "ACK" not in f.flags:
                self.send(hf.PingFrame(0, f.opaque_data, flags=["ACK"]))
            if f.stream_id == 0:
                continue
            st = self.streams.setdefault(f.stream_id, [None, b"", [], False, False])
            if isinstance(f, hf.RstStreamFrame):
                st[4] = True
            if isinstance(f, hf.HeadersFrame):
                st[0] = dict((k.decode() if isinstance(k, bytes) else k,
                              v.decode() if isinstance(v, bytes) else v)
                             for k, v in self.dec.decode(f.data))
            if isinstance(f, hf.DataFrame):
                st[1] += f.data
                st[2].append(len(f.data))
                if window and f.flow_controlled_length:
                    self.send(hf.WindowUpdateFrame(0, f.flow_controlled_length),
                              hf.WindowUpdateFrame(f.stream_id, f.flow_controlled_length))
            if "END_STREAM" in f.flags:
                st[3] = True
        return None

    def goaway(self, timeout=10.0, max_frames=1000000):
        """The server's GOAWAY error code, 'closed' when the connection
        ended without one, None when it stayed open."""
        deadline = time.monotonic() + timeout
        for _ in range(max_frames):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            f = self.recv_frame(left)
            if f is None:
                return "closed" if self.eof else None
            if isinstance(f, hf.GoAwayFrame):
                return f.error_code
        return None

    def close(self):
        self.sock.close()


def get(port, path, extra=(), method="GET"):
    c = Conn(port)
    try:
        if not c.handshake():
            return None
        c.send(c.headers(1, path, method, extra))
        return c.response(1)
    finally:
        c.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---- conformance -------------------------------------------------------

def conformance(port, root):
    hello = open(os.path.join(root, "hello.txt"), "rb").read()
    big = open(os.path.join(root, "big.bin"), "rb").read()

    c = Conn(port)
    check(c.handshake(), "preface: SETTINGS exchanged and our SETTINGS acknowledged")
    s = c.server_settings or {}
    check(s.get(hf.SettingsFrame.MAX_CONCURRENT_STREAMS) == 100, "MAX_CONCURRENT_STREAMS 100")
    check(s.get(hf.SettingsFrame.MAX_HEADER_LIST_SIZE, 0) > 0, "MAX_HEADER_LIST_SIZE advertised")
    c.send(hf.PingFrame(0, b"12345678"))
    f = c.recv_frame()
    check(isinstance(f, hf.PingFrame) and "ACK" in f.flags and f.opaque_data == b"12345678",
          "PING answered with an ACK carrying the same payload")
    # Several streams on one connection, answered whatever the order.
    c.send(c.headers(1, "/hello.txt"), c.headers(3, "/hello.txt", "HEAD"),
           c.headers(5, "/nope"))
    r1, r3, r5 = c.response(1), c.response(3), c.response(5)
    check(r1 and r1[0][":status"] == "200" and r1[1] == hello, "GET: 200 and the file")
    check(r1 and r1[0].get("content-length") == str(len(hello)), "GET: content-length")
    check(r1 and "connection" not in r1[0] and "etag" in r1[0] and "date" in r1[0]
          and "last-modified" in r1[0], "GET: HTTP/1.1's fields minus Connection")
    check(r3 and r3[0][":status"] == "200" and r3[1] == b"" and
          r3[0].get("content-length") == str(len(hello)), "HEAD: length, no DATA")
    check(r5 and r5[0][":status"] == "404", "404")
    c.close()

    etag = r1[0]["etag"] if r1 else '"x"'
    r = get(port, "/hello.txt", [("if-none-match", etag)])
    check(r and r[0][":status"] == "304" and r[1] == b"", "If-None-Match: 304, no body")
    r = get(port, "/hello.txt", [("if-modified-since", r1[0]["last-modified"] if r1 else "")])
    check(r and r[0][":status"] == "304", "If-Modified-Since: 304")
    r = get(port, "/big.bin", [("range", "bytes=100-199")])
    check(r and r[0][":status"] == "206" and r[1] == big[100:200] and
          r[0].get("content-range") == "bytes 100-199/%d" % len(big), "Range: 206")
    r = get(port, "/big.bin", [("range", "bytes=0-9,20-29")])
    check(r and r[0][":status"] == "206" and "multipart/byteranges" in r[0]["content-type"]
          and big[0:10] in r[1] and big[20:30] in r[1]
          and int(r[0]["content-length"]) == len(r[1]), "two ranges: multipart/byteranges")
    r = get(port, "/hello.txt", [("range", "bytes=100-")])
    check(r and r[0][":status"] == "416" and r[0].get("content-range") == "bytes */%d"
          % len(hello), "Range past the end: 416")
    for path in ("/../outside.txt", "/%2e%2e/outside.txt", "/a/%2E%2E/%2e%2e/outside.txt",
                 "/%00"):
        r = get(port, path)
        check(r and r[0][":status"] == "403" and b"secret" not in r[1], "403 for " + path)
    r = get(port, "/hello.txt", method="POST")
    check(r and r[0][":status"] == "405" and r[0].get("allow") == "GET, HEAD", "POST: 405 Allow")
    r = get(port, "/sub")
    check(r and r[0][":status"] == "301" and r[0].get("location") == "/sub/", "dir: 301")
    r = get(port, "/big.bin")
    check(r and r[1] == big and max(r[2]) <= 16384, "big file byte-exact, DATA <= 16384")

    # Flow control: a 1000-byte stream window gets exactly 1000 bytes.
    c = Conn(port, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 1000})
    c.handshake()
    c.send(c.headers(1, "/big.bin"))
    got, end = 0, time.monotonic() + 5
    while time.monotonic() < end:
        f = c.recv_frame(0.5)
        if f is None:
            break
        if isinstance(f, hf.DataFrame):
            got += len(f.data)
    check(got == 1000, "stream window 1000: %d bytes before WINDOW_UPDATE" % got)
    c.send(hf.WindowUpdateFrame(1, len(big)), hf.WindowUpdateFrame(0, len(big)))
    r = c.response(1)
    check(r is not None and got + len(r[1]) == len(big), "rest after WINDOW_UPDATE")
    c.close()

    # Protocol errors end the connection with the right GOAWAY code.
    def expect_goaway(frames, code, what, settings=None):
        c = Conn(port, settings=settings)
        c.handshake()
        c.sock.sendall(frames(c) if callable(frames) else frames)
        got = c.goaway()
        check(got == code, "%s: GOAWAY %r (want %r)" % (what, got, code))
        c.close()

    hdr = lambda c, sid: c.headers(sid, "/hello.txt").serialize()
    expect_goaway(lambda c: hdr(c, 2), PROTOCOL_ERROR, "HEADERS on an even stream")
    expect_goaway(lambda c: hf.DataFrame(1, b"x").serialize(), PROTOCOL_ERROR,
                  "DATA on an idle stream")
    expect_goaway(hf.DataFrame(1, b"x" * 20000).serialize(), FRAME_SIZE_ERROR,
                  "DATA above SETTINGS_MAX_FRAME_SIZE")
    expect_goaway(hf.HeadersFrame(1, b"\xff\xff\xff\xff\x0f", flags=["END_HEADERS"]).serialize(),
                  COMPRESSION_ERROR, "HPACK: index out of range")
    expect_goaway(hf.SettingsFrame(0, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 1 << 31})
                  .serialize(), FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE 2^31")
    expect_goaway(b"\x00\x00\x06\x04\x01\x00\x00\x00\x00" + b"\x00" * 6, FRAME_SIZE_ERROR,
                  "SETTINGS ACK with a payload")
    expect_goaway(b"\x00\x00\x05\x04\x00\x00\x00\x00\x00" + b"\x00" * 5, FRAME_SIZE_ERROR,
                  "SETTINGS of 5 bytes")
    expect_goaway(b"\x00\x00\x08\x06\x00\x00\x00\x00\x01" + b"\x00" * 8, PROTOCOL_ERROR,
                  "PING on a stream")
    expect_goaway(hf.WindowUpdateFrame(0, 0x7fffffff).serialize() +
                  hf.WindowUpdateFrame(0, 0x7fffffff).serialize(), FLOW_CONTROL_ERROR,
                  "connection window above 2^31-1")
    expect_goaway(lambda c: hdr(c, 1) + hf.ContinuationFrame(1, b"").serialize(),
                  PROTOCOL_ERROR, "CONTINUATION after END_HEADERS")
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
    data, end = b"", time.monotonic() + 5
    try:
        while time.monotonic() < end:
            d = s.recv(4096)
            if not d:
                break
            data += d
    except (socket.timeout, OSError):
        pass
    check(data.startswith(b"HTTP/1.1 505"), "a bad preface is HTTP/1.1 (505), not HTTP/2")
    s.close()
    c = Conn(port)
    c.handshake()
    c.send(hf.GoAwayFrame(0, 0, NO_ERROR))
    check(c.goaway(timeout=5) in ("closed", NO_ERROR), "client GOAWAY: the server closes")
    c.close()


# ---- abuse -------------------------------------------------------------

def fresh_client_ok(port, hello):
    r = get(port, "/hello.txt")
    return r is not None and r[0][":status"] == "200" and r[1] == hello


def abuse(port, pid, root):
    hello = open(os.path.join(root, "hello.txt"), "rb").read()
    base = rss_kb(pid)
    print("server RSS at start: %d KiB" % base, flush=True)

    def attack(what, run, accept=(ENHANCE_YOUR_CALM, PROTOCOL_ERROR, "closed"), timeout=20,
               settings=None):
        c = Conn(port, settings=settings, timeout=5)
        c.handshake()
        t0 = time.monotonic()
        try:
            run(c)
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            pass
        check(fresh_client_ok(port, hello), what + ": a fresh client is served meanwhile")
        got = c.goaway(timeout=timeout)
        rss = rss_kb(pid)
        print("%s: %r after %.1f s, RSS %d KiB" % (what, got, time.monotonic() - t0, rss),
              flush=True)
        check(got in accept, "%s: GOAWAY %r, want one of %r" % (what, got, accept))
        check(rss < base + 64 * 1024, "%s: RSS %d KiB bounded" % (what, rss))
        c.close()

    def rapid_reset(c):
        for sid in range(1, 2 * 20000, 2):
            c.send(c.headers(sid, "/hello.txt"), hf.RstStreamFrame(sid, 8))
    attack("Rapid Reset (HEADERS + RST_STREAM x 20000)", rapid_reset,
           accept=(ENHANCE_YOUR_CALM, INTERNAL_ERROR)) # nghttp2's rate limit says INTERNAL_ERROR

    def continuation_flood(c):
        block = c.enc.encode([(":method", "GET"), (":scheme", "http"), (":path", "/"),
                              (":authority", "t")])
        c.send(hf.HeadersFrame(1, block))
        junk = c.enc.encode([("x-junk", "a" * 100)])
        for _ in range(50000):
            c.send(hf.ContinuationFrame(1, junk))
    attack("CONTINUATION flood", continuation_flood)

    def hpack_bomb(c):
        c.send(hf.HeadersFrame(1, c.enc.encode([(":method", "GET"), (":scheme", "http"),
                                                (":path", "/hello.txt"), (":authority", "t"),
                                                ("x-bomb", "b" * 4000)]),
                               flags=["END_HEADERS", "END_STREAM"]))
        # Every further block repeats the 4 KB table entry 2000 times: 8 MB
        # decoded from 2 KB on the wire, per stream.
        for sid in range(3, 3 + 2 * 200, 2):
            block = bytes([0x82, 0x86, 0x84, 0x41, 0x01, ord("t")]) + b"\xbe" * 2000
            c.send(hf.HeadersFrame(sid, block, flags=["END_HEADERS", "END_STREAM"]))
    attack("HPACK bomb", hpack_bomb,
           accept=(ENHANCE_YOUR_CALM, PROTOCOL_ERROR, COMPRESSION_ERROR, "closed", None),
           timeout=3)

    def settings_flood(c):
        c.sock.settimeout(2)
        for _ in range(200000):
            c.send(hf.SettingsFrame(0, settings={hf.SettingsFrame.MAX_FRAME_SIZE: 16384}))
    attack("SETTINGS flood (never reading the ACKs)", settings_flood)

    def ping_flood(c):
        c.sock.settimeout(2)
        for _ in range(200000):
            c.send(hf.PingFrame(0, b"pingpong"))
    attack("PING flood (never reading the ACKs)", ping_flood)

    def zero_window(c):
        for sid in range(1, 21, 2):
            c.send(c.headers(sid, "/big.bin"))
    attack("zero window that never opens (keepalive_timeout_ms = 2000)", zero_window,
           accept=("closed",), settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0})

    def many_streams(c):
        c.sock.settimeout(2)
        for sid in range(1, 2 * 5000, 2):
            c.send(c.headers(sid, "/big.bin"))
    attack("5000 streams never read", many_streams,
           accept=(ENHANCE_YOUR_CALM, PROTOCOL_ERROR, REFUSED_STREAM, "closed", None),
           timeout=3)
    check(fresh_client_ok(port, hello), "served after every attack")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = sys.argv[1]
    top = tempfile.mkdtemp(prefix="mux-h2-frames-")
    try:
        return run(binary, top)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def run(binary, top):
    root = os.path.join(top, "root")
    os.makedirs(os.path.join(root, "sub"))
    for name, data in (("root/hello.txt", b"hello world\n"), ("root/sub/index.html", b"sub\n"),
                       ("outside.txt", b"secret outside the root\n"),
                       ("root/big.bin", os.urandom(3 << 20))):
        with open(os.path.join(top, name), "wb") as f:
            f.write(data)
    conf = os.path.join(top, "h2frames.conf")
    with open(conf, "w") as f:
        f.write("httpd = { keepalive_timeout_ms = 2000; };\n")
    # MUX_H2_WRAP: a command to run the server under, e.g. valgrind.
    wrap = shlex.split(os.environ.get("MUX_H2_WRAP", ""))
    srv = subprocess.Popen(wrap + [binary, "-r", root, "-l", "127.0.0.1:0", "-w", "1", "-c", conf],
                           stdout=subprocess.PIPE, text=True)
    try:
        line = srv.stdout.readline()
        if not line.startswith("listening on "):
            print("FAIL: no ready line:", line)
            return 1
        port = int(line.split()[2].rsplit(":", 1)[1])
        conformance(port, root)
        abuse(port, srv.pid, root)
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            rc = srv.wait(timeout=20)
        except subprocess.TimeoutExpired:
            srv.kill()
            rc = srv.wait()
    check(rc == 0, "server exit code %s after SIGTERM" % rc)
    print("%d failures" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
