#!/usr/bin/env python3
"""What an idle client connection costs one `ferry proxy`, in resident memory.

    python3 bench/tools/idle_memory.py --ferry target/release/ferry [--count 10000] [--silent] [--tls]

Starts a small origin and the proxy on 127.0.0.1, warms one cached 1 KiB
object, notes the proxy's RSS, then opens COUNT keep-alive connections that
each fetch the object once (or, with --silent, send nothing) and stay open.
Prints the RSS and the bytes per connection right after and for 30 s after
(the proxy lets go of a quiet connection's HTTP/1 state after 1-2 s; the
allocator returns pages after a 10 s decay), then checks that some of the
connections are still served, and stops everything it started.

With --tls the proxy intercepts HTTPS (a throwaway CA, a TLS origin made
with openssl): each connection is a CONNECT, a TLS handshake with the
proxy's leaf, and one HTTP/1.1 request inside, then stays open.
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", default="target/release/ferry")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--silent", action="store_true", help="connections send nothing")
    ap.add_argument("--tls", action="store_true", help="intercepted HTTPS connections")
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
        return client_tls.wrap_socket(conn, server_hostname="127.0.0.1")
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
        fetch(warm, request)
        fetch(warm, request)
        warm.close()
        time.sleep(1)
        before = rss_kib(proxy.pid)
        print(f"proxy RSS before: {before} KiB", flush=True)
        conns = []
        started = time.time()
        for _ in range(args.count):
            conn = connect()
            if not args.silent:
                fetch(conn, request)
            conns.append(conn)
        print(f"{args.count} connections open in {time.time() - started:.1f} s", flush=True)
        started = time.time()
        for at in (0, 2, 5, 10, 20, 30):
            time.sleep(max(0.0, started + at - time.time()))
            now = rss_kib(proxy.pid)
            per = (now - before) * 1024 / args.count
            print(f"t+{at:>2} s: RSS {now} KiB, {per:.0f} bytes per connection", flush=True)
        for conn in conns[:: max(1, args.count // 20)]:
            fetch(conn, request)
        print("connections still served", flush=True)
    finally:
        proxy.kill()
        proxy.wait()
        origin.shutdown()
        scratch.cleanup()


if __name__ == "__main__":
    os.environ.pop("http_proxy", None)
    main()
