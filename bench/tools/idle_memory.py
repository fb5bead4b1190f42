#!/usr/bin/env python3
"""What an idle client connection costs one `ferry proxy`, in resident memory.

    python3 bench/tools/idle_memory.py --ferry target/release/ferry [--count 10000] [--silent] [--tls [--h2]]

Starts a small origin and the proxy on 127.0.0.1, warms one cached 1 KiB
object, notes the proxy's RSS, then opens COUNT keep-alive connections that
each fetch the object once (or, with --silent, send nothing) and stay open.
Prints the RSS and the bytes per connection right after and for 30 s after
(the proxy lets go of a quiet connection's HTTP/1 state after 1-2 s; the
allocator returns pages after a 10 s decay), then checks that some of the
connections are still served, and stops everything it started.

With --tls the proxy intercepts HTTPS (a throwaway CA, a TLS origin made
with openssl): each connection is a CONNECT, a TLS handshake with the
proxy's leaf, and one HTTP/1.1 request inside, then stays open. With --h2
as well, the TLS handshake offers only h2 (ALPN) and the request inside is
HTTP/2 (a minimal client below: the standard library has none).
"""
import argparse
import http.server
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time


class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b"x" * 1024
        self.send_response(200)
        self.send_header("Cache-Control", "max-age=600")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def fetch(conn, request):
    conn.sendall(request)
    got = b""
    while b"\r\n\r\n" not in got or len(got) < got.index(b"\r\n\r\n") + 4 + 1024:
        data = conn.recv(65536)
        if not data:
            raise SystemExit("the proxy closed a connection")
        got += data


def h2_frame(kind, flags, stream, payload=b""):
    return (len(payload).to_bytes(3, "big") + bytes([kind, flags])
            + stream.to_bytes(4, "big") + payload)


def h2_literal(name_index, value):
    """An HPACK literal without indexing, its name from the static table."""
    value = value.encode()
    return bytes([name_index, len(value)]) + value


class H2Conn:
    """One HTTP/2 connection inside the TLS tunnel: GETs on odd streams."""

    def __init__(self, tls, authority):
        self.tls, self.authority, self.next_stream = tls, authority, 1
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(0x4, 0, 0))
        self.pending = b""

    def read_frame(self):
        while len(self.pending) < 9 or len(self.pending) < 9 + int.from_bytes(self.pending[:3], "big"):
            data = self.tls.recv(65536)
            if not data:
                raise SystemExit("the proxy closed an HTTP/2 connection")
            self.pending += data
        length = int.from_bytes(self.pending[:3], "big")
        kind, flags = self.pending[3], self.pending[4]
        stream = int.from_bytes(self.pending[5:9], "big") & 0x7FFFFFFF
        payload, self.pending = self.pending[9:9 + length], self.pending[9 + length:]
        return kind, flags, stream, payload

    def get(self, path):
        stream, self.next_stream = self.next_stream, self.next_stream + 2
        block = (b"\x82\x87" + h2_literal(4, path) + h2_literal(1, self.authority))
        self.tls.sendall(h2_frame(0x1, 0x5, stream, block))
        body = 0
        while True:
            kind, flags, on, payload = self.read_frame()
            if kind == 0x4 and not flags & 0x1:
                self.tls.sendall(h2_frame(0x4, 0x1, 0))
            elif kind == 0x7 or (kind == 0x3 and on == stream):
                raise SystemExit(f"the proxy refused an HTTP/2 stream: {payload!r}")
            elif on == stream and kind in (0x0, 0x1):
                if kind == 0x0:
                    body += len(payload)
                if flags & 0x1:
                    if body < 1024:
                        raise SystemExit(f"an HTTP/2 response of {body} bytes")
                    return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", default="target/release/ferry")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--silent", action="store_true", help="connections send nothing")
    ap.add_argument("--tls", action="store_true", help="intercepted HTTPS connections")
    ap.add_argument("--h2", action="store_true", help="with --tls: HTTP/2 inside")
    args = ap.parse_args()

    scratch = tempfile.TemporaryDirectory()
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    extra = []
    client_tls = None
    if args.tls:
        cert, key = os.path.join(scratch.name, "cert.pem"), os.path.join(scratch.name, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1",
             "-addext", "basicConstraints=critical,CA:FALSE"], check=True, capture_output=True)
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_tls.load_cert_chain(cert, key)
        origin.socket = server_tls.wrap_socket(origin.socket, server_side=True)
        ca_dir = os.path.join(scratch.name, "ca")
        subprocess.run([args.ferry, "ca", "init", "--ca-dir", ca_dir], check=True,
                       capture_output=True)
        client_tls = ssl.create_default_context(cafile=os.path.join(ca_dir, "ca.pem"))
        client_tls.set_alpn_protocols(["h2"] if args.h2 else ["http/1.1"])
        extra = ["--intercept-tls", "--ca-dir", ca_dir, "--upstream-ca", cert,
                 "--connect-port", str(origin.server_address[1]), "--tunnel-idle-timeout", "300"]
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    port = free_port()
    proxy = subprocess.Popen(
        [args.ferry, "proxy", "--listen", f"127.0.0.1:{port}", "--max-concurrent", "256",
         "--max-connections", str(args.count * 2), "--max-connections-per-client",
         str(args.count * 2), "--max-tunnels", str(args.count * 2), "--header-timeout", "300"]
        + extra,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    origin_port = origin.server_address[1]

    def connect():
        conn = socket.create_connection(("127.0.0.1", port))
        if client_tls is None:
            return conn
        conn.sendall(f"CONNECT 127.0.0.1:{origin_port} HTTP/1.1\r\n"
                     f"Host: 127.0.0.1:{origin_port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(4096)
            if not data:
                raise SystemExit("the proxy closed a CONNECT")
            head += data
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"CONNECT refused: {head[:80]!r}")
        tls = client_tls.wrap_socket(conn, server_hostname="127.0.0.1")
        if not args.h2:
            return tls
        if tls.selected_alpn_protocol() != "h2":
            raise SystemExit(f"ALPN chose {tls.selected_alpn_protocol()!r}, not h2")
        return H2Conn(tls, f"127.0.0.1:{origin_port}")

    def fetch_one(conn):
        if isinstance(conn, H2Conn):
            conn.get("/1k")
        else:
            fetch(conn, request)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.1)
        target = "/1k" if args.tls else f"http://127.0.0.1:{origin_port}/1k"
        request = (f"GET {target} HTTP/1.1\r\n"
                   f"Host: 127.0.0.1:{origin_port}\r\n\r\n").encode()
        warm = connect()
        fetch_one(warm)
        fetch_one(warm)
        del warm
        time.sleep(1)
        before = rss_kib(proxy.pid)
        print(f"proxy RSS before: {before} KiB", flush=True)
        conns = []
        started = time.time()
        for _ in range(args.count):
            conn = connect()
            if not args.silent:
                fetch_one(conn)
            conns.append(conn)
        print(f"{args.count} connections open in {time.time() - started:.1f} s", flush=True)
        started = time.time()
        for at in (0, 2, 5, 10, 20, 30):
            time.sleep(max(0.0, started + at - time.time()))
            now = rss_kib(proxy.pid)
            per = (now - before) * 1024 / args.count
            print(f"t+{at:>2} s: RSS {now} KiB, {per:.0f} bytes per connection", flush=True)
        for conn in conns[:: max(1, args.count // 20)]:
            fetch_one(conn)
        print("connections still served", flush=True)
    finally:
        proxy.kill()
        proxy.wait()
        origin.shutdown()
        scratch.cleanup()


if __name__ == "__main__":
    os.environ.pop("http_proxy", None)
    main()
