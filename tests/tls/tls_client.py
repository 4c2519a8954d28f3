#!/usr/bin/env python3
"""tls_client.py - TLS clients driven by test_tls.c against a mux server
whose handler echoes every byte, shuts its writing down after a message
ending in "SHUT\\n" and closes after one ending in "CLOSE\\n".

usage: tls_client.py CASE HOST PORT CAFILE SEED [ARG]

Python's ssl module over memory BIOs, so the test decides what goes on the
wire and when: records split at every byte, half a ClientHello, a TCP end
without close_notify. Exit 0 when the case holds, 1 with a reason on
stderr otherwise. Every wait is bounded (TIMEOUT); SEED makes payloads
reproducible.
"""
import asyncio
import os
import random
import resource
import signal
import socket
import ssl
import sys
import time
import warnings

TIMEOUT = float(os.environ.get("TLS_CLIENT_TIMEOUT", "20"))


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def context(cafile):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class Client:
    """One TLS connection over a memory BIO pair; frag sends 1 byte per send()."""

    def __init__(self, host, port, ctx, frag=False, version=None, prefix=b""):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        if version:
            ctx.maximum_version = version
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        self.frag = frag
        self.tcp_eof = False
        self.prefix = prefix  # sent with the first TLS bytes (a PROXY header)

    def flush(self):
        data = self.prefix + self.out.read()
        self.prefix = b""
        if self.frag:
            for i in range(len(data)):
                self.sock.send(data[i:i + 1])
        elif data:
            self.sock.sendall(data)

    def feed(self):
        """Moves what the socket has into the BIO; False at TCP EOF."""
        d = self.sock.recv(65536)
        if not d:
            self.inc.write_eof()
            self.tcp_eof = True
            return False
        self.inc.write(d)
        return True

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
                if not self.feed():
                    raise Failed("EOF during the handshake")

    def send(self, data):
        self.obj.write(data)
        self.flush()

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            try:
                buf += self.obj.read(n - len(buf))
            except ssl.SSLWantReadError:
                self.flush()
                if not self.feed():
                    raise Failed("TCP EOF after %d of %d bytes" % (len(buf), n))
        return bytes(buf)

    def read_end(self):
        """Reads until the stream ends: 'close_notify' or 'truncated'."""
        extra = 0
        while True:
            try:
                d = self.obj.read(65536)
                if not d:  # read() answers close_notify with b"" (or raises, below)
                    return "close_notify", extra
                extra += len(d)
            except ssl.SSLZeroReturnError:
                return "close_notify", extra
            except ssl.SSLEOFError:
                return "truncated", extra
            except ssl.SSLWantReadError:
                self.flush()
                if not self.feed() and self.inc.pending == 0:
                    continue  # the EOF is in the BIO: the next read reports it

    def send_close_notify(self):
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self.flush()

    def close(self):
        self.sock.close()


def wait_tcp_end(sock, timeout):
    """Seconds until the peer closed (EOF or reset), or None."""
    t0 = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - t0 < timeout:
        try:
            if not sock.recv(65536):
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
    return None


def round_trip(host, port, ctx, rng, size, frag=False, version=None):
    c = Client(host, port, ctx, frag, version)
    c.handshake()
    msg = rng.randbytes(size)
    c.send(msg)
    check(c.recv_exact(len(msg)) == msg, "echo differs")
    return c


# ---- cases ----

def case_fragment(host, port, cafile, rng, arg):
    """Handshake and records split at every byte, both TLS versions; our
    close_notify is answered by the server's."""
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        c = Client(host, port, context(cafile), frag=True, version=version)
        c.handshake()
        check(c.obj.version() in ("TLSv1.2", "TLSv1.3"), "version %s" % c.obj.version())
        for size in (1, 2, rng.randrange(3, 300), rng.randrange(16000, 20000)):
            msg = rng.randbytes(size)
            c.send(msg)
            check(c.recv_exact(size) == msg, "fragmented echo of %d bytes differs" % size)
        c.send_close_notify()
        how, extra = c.read_end()
        check(how == "close_notify" and extra == 0, "server end: %s, %d extra" % (how, extra))
        c.close()


def case_garbage(host, port, cafile, rng, arg):
    """Random bytes, plain HTTP, half a ClientHello and a TLS 1.1 client:
    each refused, and a good client is served afterwards."""
    ctx = context(cafile)
    hello = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), hello, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    client_hello = hello.read()
    # Random bytes that cannot start a TLS record, and plain HTTP, must be
    # refused on sight; half a ClientHello is refused at our FIN.
    noise = bytes([rng.choice([b for b in range(256) if b not in (20, 21, 22, 23)])])
    inputs = [(noise + rng.randbytes(rng.randrange(4, 4096)), False),
              (b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", False),
              (client_hello[:len(client_hello) // 2], True)]
    for data, fin in inputs:
        s = socket.create_connection((host, port), timeout=TIMEOUT)
        s.sendall(data)
        if fin:
            s.shutdown(socket.SHUT_WR)
        check(wait_tcp_end(s, 5) is not None, "not closed after %r..." % data[:16])
        s.close()
    # A real client offering only TLS 1.0 and 1.1: refused with an alert.
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(cafile)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    c = Client(host, port, old)
    try:
        c.handshake()
        raise Failed("a TLS 1.1 handshake succeeded (%s)" % c.obj.version())
    except ssl.SSLError as e:
        check("PROTOCOL_VERSION" in str(e).upper(), "TLS 1.1 refused with %s" % e)
    c.close()
    round_trip(host, port, ctx, rng, 1000).close()


def case_stall(host, port, cafile, rng, arg):
    """Half a ClientHello, then silence: others are served meanwhile (at
    least one while the staller is certainly still open), and the staller
    is closed at the deadline, not before (arg: milliseconds). The server's
    deadline starts when its worker takes the connection, after our t0."""
    ctx = context(cafile)
    deadline = int(arg) / 1000.0
    hello = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), hello, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    stall = socket.create_connection((host, port), timeout=TIMEOUT)
    t0 = time.monotonic()
    stall.sendall(hello.read()[:40])
    served, first = 0, None
    while served == 0 or time.monotonic() - t0 < deadline * 0.6:
        round_trip(host, port, ctx, rng, rng.randrange(1, 5000)).close()
        served += 1
        if first is None:
            first = time.monotonic() - t0
            # Still open: nothing to read, no EOF, no reset yet.
            stall.setblocking(False)
            try:
                still_open = stall.recv(1, socket.MSG_PEEK) != b""  # b"": EOF
            except BlockingIOError:
                still_open = True
            except OSError:
                still_open = False
            stall.setblocking(True)
            check(still_open or first >= deadline * 0.9,
                  "the staller was closed %.2fs in, before the %.2fs deadline" % (first, deadline))
    check(first < deadline, "the first client was served only after %.2fs, when the %.2fs "
          "deadline had passed: the staller held the worker" % (first, deadline))
    stall.settimeout(TIMEOUT)
    left = wait_tcp_end(stall, deadline * 4 + 5)
    check(left is not None, "the staller was never closed")
    took = time.monotonic() - t0
    check(took >= deadline * 0.9, "closed after %.2fs, before the %.2fs deadline" % (took, deadline))
    print("stall: %d clients served meanwhile (the first after %.2fs); the staller closed after "
          "%.2fs (deadline %.2fs)" % (served, first, took, deadline))


def case_vanish(host, port, cafile, rng, arg):
    """TCP FIN without close_notify (the server must see a truncation)."""
    ctx = context(cafile)
    c = round_trip(host, port, ctx, rng, 3000)
    c.sock.shutdown(socket.SHUT_WR)
    check(wait_tcp_end(c.sock, 5) is not None, "not closed after a truncated stream")
    c.close()


def case_close(host, port, cafile, rng, arg):
    """The server closes (mux_conn_close): the reply, then its close_notify."""
    ctx = context(cafile)
    c = round_trip(host, port, ctx, rng, 2000)
    c.send(b"bye CLOSE\n")
    check(c.recv_exact(10) == b"bye CLOSE\n", "echo before the close differs")
    how, extra = c.read_end()
    check(how == "close_notify" and extra == 0, "server close: %s, %d extra bytes" % (how, extra))
    c.close()


def case_shutdown(host, port, cafile, rng, arg):
    """mux_conn_shutdown_write: close_notify, and our data still reaches it
    (the server counts it); then our close_notify ends it."""
    ctx = context(cafile)
    c = round_trip(host, port, ctx, rng, 500)
    c.send(b"half SHUT\n")
    check(c.recv_exact(10) == b"half SHUT\n", "echo before the shutdown differs")
    how, extra = c.read_end()
    check(how == "close_notify" and extra == 0, "shutdown_write: %s, %d extra" % (how, extra))
    c.send(b"x" * int(arg))  # after the server's close_notify: still read by it
    c.send_close_notify()
    check(wait_tcp_end(c.sock, 5) is not None, "not closed after both close_notify")
    c.close()


async def many(host, port, ctx, rng, n):
    opened, go = [], asyncio.Event()
    sem = asyncio.Semaphore(200)  # connects in waves: the listen backlog stays short
    tasks = [asyncio.ensure_future(connect_and_wait(host, port, ctx, rng, opened, go, sem))
             for _ in range(n)]
    t0 = time.monotonic()
    while len(opened) < n:
        if time.monotonic() - t0 > TIMEOUT:
            raise Failed("only %d of %d connections opened" % (len(opened), n))
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            raise failed[0].exception()
        await asyncio.sleep(0.01)  # polls our own counter; the server is not waited on
    t_open = time.monotonic() - t0
    go.set()
    sizes = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    print("concurrent: %d TLS connections open at once (%.2fs to open), %d bytes echoed "
          "and verified" % (n, t_open, sum(sizes)))


async def connect_and_wait(host, port, ctx, rng, opened, go, sem):
    seed, size = rng.random(), rng.randrange(1, 20000)
    rnd = random.Random(seed)
    async with sem:
        r, w = await asyncio.open_connection(host, port, ssl=ctx, server_hostname="localhost")
    opened.append(1)
    await go.wait()
    msg = rnd.randbytes(size)
    w.write(msg)
    await w.drain()
    got = bytearray()
    while len(got) < size:
        d = await r.read(65536)
        if not d:
            raise Failed("EOF after %d of %d bytes" % (len(got), size))
        got += d
    check(bytes(got) == msg, "a concurrent connection's echo differs")
    w.close()
    try:
        await w.wait_closed()
    except (ssl.SSLError, ConnectionError):
        pass
    return size


def case_concurrent(host, port, cafile, rng, arg):
    """arg connections open at once, each echoing random bytes, all verified."""
    ctx = context(cafile)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(many(host, port, ctx, rng, int(arg)))


def case_proxy(host, port, cafile, rng, arg):
    """A PROXY v1 header before the ClientHello: in the same segment, and
    both split at every byte; the server must hand the handler the address
    it carries and still complete the handshake."""
    ctx = context(cafile)
    header = b"PROXY TCP4 192.0.2.7 198.51.100.1 4711 443\r\n"
    for frag in (False, True):
        c = Client(host, port, ctx, frag=frag, prefix=header)
        c.handshake()
        msg = rng.randbytes(rng.randrange(1, 40000))
        c.send(msg)
        check(c.recv_exact(len(msg)) == msg, "echo after a PROXY header differs")
        c.send_close_notify()
        how, extra = c.read_end()
        check(how == "close_notify", "end after a PROXY header: %s" % how)
        c.close()


def case_drain(host, port, cafile, rng, arg):
    """Graceful shutdown over TLS (arg: the server's PID): after SIGTERM the
    server still answers what we send, then ends with close_notify once we
    are quiet."""
    ctx = context(cafile)
    c = round_trip(host, port, ctx, rng, 1000)
    os.kill(int(arg), signal.SIGTERM)
    for _ in range(5):
        msg = rng.randbytes(rng.randrange(1, 3000))
        c.send(msg)
        check(c.recv_exact(len(msg)) == msg, "echo during the drain differs")
    how, extra = c.read_end()
    check(how == "close_notify" and extra == 0, "drain end: %s, %d extra" % (how, extra))
    c.close()


CASES = {"drain": case_drain, "proxy": case_proxy, "fragment": case_fragment, "garbage": case_garbage, "stall": case_stall,
         "vanish": case_vanish, "close": case_close, "shutdown": case_shutdown,
         "concurrent": case_concurrent}


def main():
    if len(sys.argv) < 6 or sys.argv[1] not in CASES:
        print(__doc__, file=sys.stderr)
        return 2
    name, host, port, cafile, seed = sys.argv[1:6]
    arg = sys.argv[6] if len(sys.argv) > 6 else "0"
    rng = random.Random(int(seed))
    try:
        CASES[name](host, int(port), cafile, rng, arg)
    except (Failed, OSError, ssl.SSLError, asyncio.TimeoutError) as e:
        print("tls_client %s (seed %s): %s: %s" % (name, seed, type(e).__name__, e),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
