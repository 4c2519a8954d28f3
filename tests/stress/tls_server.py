#!/usr/bin/env python3
"""tls_server.py - a TLS test server for mux-stress, built on Python's ssl
module (OpenSSL driven by code that is not ours), one thread per connection.

  tls_server.py -l HOST:PORT --cert PEM --key PEM [mode] [fault]
  modes:  echo (default) | --http-file F (keep-alive HTTP/1.1, body = F,
          --alpn: refuse a client that did not negotiate ALPN http/1.1)
  faults: --garbage         answer the ClientHello with random bytes
          --stall           accept, never answer the handshake
          --truncate N      after N reply bytes close the TCP connection
                            without close_notify (requests owed)
          --notify-after N  after N reply bytes send close_notify and close
          --flip N          XOR 0x01 into the Nth reply byte of each connection
Prints "listening on HOST:PORT" once bound; exits 0 on SIGTERM/SIGINT.
Test code only: small and simple, not fast."""
import argparse
import os
import signal
import socket
import ssl
import sys
import threading


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("-l", default="127.0.0.1:0")
    p.add_argument("-w", default="1")  # the fixture passes it; one thread per connection here
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--http-file")
    p.add_argument("--alpn", action="store_true")
    p.add_argument("--garbage", action="store_true")
    p.add_argument("--stall", action="store_true")
    p.add_argument("--truncate", type=int, default=0)
    p.add_argument("--notify-after", type=int, default=0)
    p.add_argument("--flip", type=int, default=0)
    return p.parse_args()


class Replies:
    """The reply stream of one connection with the faults applied. send()
    returns False once the connection was cut on purpose."""

    def __init__(self, tls, raw, a):
        self.tls, self.raw, self.a, self.pos = tls, raw, a, 0

    def send(self, data):
        a = self.a
        if a.flip and self.pos < a.flip <= self.pos + len(data):
            i = a.flip - self.pos - 1
            data = data[:i] + bytes([data[i] ^ 1]) + data[i + 1:]
        limit = a.truncate or a.notify_after
        if limit and self.pos + len(data) >= limit:
            self.tls.sendall(data[:limit - self.pos])
            if a.truncate:
                self.raw.shutdown(socket.SHUT_RDWR)  # FIN, no close_notify
            else:
                self.tls.unwrap()  # close_notify, then the TCP close
            return False
        self.tls.sendall(data)
        self.pos += len(data)
        return True


def serve_echo(tls, out):
    while True:
        data = tls.recv(65536)
        if not data or not out.send(data):
            return


def serve_http(tls, out, body):
    head = ("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: "
            "application/octet-stream\r\n\r\n" % len(body)).encode()
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            data = tls.recv(65536)
            if not data:
                return
            buf += data
        _, buf = buf.split(b"\r\n\r\n", 1)
        if not out.send(head + body):
            return


def handle(raw, ctx, a, body):
    try:
        if a.stall:
            raw.recv(1 << 16)
            raw.recv(1 << 16)  # returns when the client gives up
            return
        if a.garbage:
            raw.recv(1 << 16)
            raw.sendall(os.urandom(512))
            return
        tls = ctx.wrap_socket(raw, server_side=True)
        if a.alpn and tls.selected_alpn_protocol() != "http/1.1":
            return
        out = Replies(tls, raw, a)
        if body is None:
            serve_echo(tls, out)
        else:
            serve_http(tls, out, body)
    except (OSError, ssl.SSLError):
        pass
    finally:
        raw.close()


def main():
    a = parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(a.cert, a.key)
    if a.alpn:
        ctx.set_alpn_protocols(["http/1.1"])
    body = None
    if a.http_file:
        with open(a.http_file, "rb") as f:
            body = f.read()
    host, port = a.l.rsplit(":", 1)
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind((host, int(port)))
    lst.listen(512)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("listening on %s:%d" % lst.getsockname(), flush=True)
    lst.settimeout(0.1)
    while not stop.is_set():
        try:
            raw, _ = lst.accept()
        except socket.timeout:
            continue
        raw.settimeout(None)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(raw, ctx, a, body), daemon=True).start()
    lst.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
