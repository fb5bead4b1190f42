#!/usr/bin/env python3
"""What an idle client connection costs one `ferry proxy`, in resident memory.

    python3 bench/tools/idle_memory.py --ferry target/release/ferry [--count 10000] [--silent]

Starts a small origin and the proxy on 127.0.0.1, warms one cached 1 KiB
object, notes the proxy's RSS, then opens COUNT keep-alive connections that
each fetch the object once (or, with --silent, send nothing) and stay open.
Prints the RSS and the bytes per connection right after and for 30 s after
(the proxy lets go of a quiet connection's HTTP/1 state after 1-2 s; the
allocator returns pages after a 10 s decay), then checks that some of the
connections are still served, and stops everything it started.
"""
import argparse
import http.server
import os
import socket
import subprocess
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
    args = ap.parse_args()

    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    port = free_port()
    proxy = subprocess.Popen(
        [args.ferry, "proxy", "--listen", f"127.0.0.1:{port}", "--max-concurrent", "256",
         "--max-connections", str(args.count * 2), "--max-connections-per-client",
         str(args.count * 2), "--header-timeout", "300"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.1)
        request = (f"GET http://127.0.0.1:{origin.server_address[1]}/1k HTTP/1.1\r\n"
                   "Host: 127.0.0.1\r\n\r\n").encode()
        warm = socket.create_connection(("127.0.0.1", port))
        fetch(warm, request)
        fetch(warm, request)
        warm.close()
        time.sleep(1)
        before = rss_kib(proxy.pid)
        print(f"proxy RSS before: {before} KiB", flush=True)
        conns = []
        started = time.time()
        for _ in range(args.count):
            conn = socket.create_connection(("127.0.0.1", port))
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


if __name__ == "__main__":
    os.environ.pop("http_proxy", None)
    main()
