#!/usr/bin/env python3
"""Soak test: mixed, partly hostile traffic against one `ferry proxy` on
127.0.0.1 for a while, watching its memory and open file descriptors.

    python3 bench/soak.py [--ferry target/release/ferry] [--seconds 600] [--idle 10000]
                          [--intercepted 2000]

Traffic, from several threads at once, all on loopback:
  hits (one cacheable URL), misses (no-store URLs and fresh URLs), CONNECT
  tunnels carrying a request, errors (a closed port, a denied domain, garbage
  requests, a GET with a body), slow clients (request heads that never end,
  readers that take a trickle), and abusive ones (connection floods over the
  per-client cap, oversized heads).

With --idle N it also holds N keep-alive connections open beside that load
(from many loopback addresses, so the per-client cap applies to the rest),
each answered once at the start and then asked again every 20 s (the proxy
runs with a 30 s header timeout then, its idle limit, instead of 5 s): every answer must come, on the same
connection, for the soak to pass.

With --intercepted N the proxy intercepts TLS (a throwaway CA, an origin
over TLS with a certificate made by openssl): N intercepted HTTP/1.1
connections are held open the same way (CONNECT, TLS with the proxy's
leaf, the hit inside, again every 20 s), and one more client makes
intercepted requests with pauses of up to 2.5 s, across the 1-2 s after
which a quiet connection lets go of its HTTP/1 state: every one of those
answers must come too. The plain tunnels then go to `localhost`, which is
not intercepted.

Every 10 s it samples the proxy's RSS (VmRSS) and open descriptors
(/proc/PID/fd); at the end it prints the idle figures before the traffic,
the first sample after a one-minute warm-up, the idle figures after the
traffic and the largest RSS, and exits 1 if the last RSS exceeds
the warm-up one by more than 20% (+8 MiB), or if the descriptors open once
the traffic has stopped exceed those at the start by more than 10, or if a
held or intercepted connection lost an answer. It stops everything it
started.
"""
import argparse
import http.server
import os
import random
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time

BODY = os.urandom(64 * 1024)
BIG = os.urandom(4 * 1024 * 1024)


class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/big"):
            body, cc = BIG, "max-age=600"
        elif self.path.startswith("/nostore"):
            body, cc = BODY[:1024], "no-store"
        else:
            body, cc = BODY, "max-age=600"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cc)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self.send_response(204)
        self.end_headers()


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def exchange(proxy, data, read=True, timeout=10):
    try:
        with socket.create_connection(proxy, timeout=timeout) as s:
            s.sendall(data)
            if not read:
                return b""
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
    except OSError:
        return b""


def read_answer(conn):
    """Reads one answer carrying BODY, on a connection kept open."""
    got = b""
    while b"\r\n\r\n" not in got or len(got) < got.index(b"\r\n\r\n") + 4 + len(BODY):
        chunk = conn.recv(65536)
        if not chunk:
            raise OSError("closed by the proxy")
        got += chunk


def hold(conns, ask, lost, label, stop, count):
    """Asks every held connection again every 20 s until `stop`: an answer
    that does not come is recorded in `lost` and its connection dropped."""
    begun = time.time()
    while time.time() < stop:
        round_started = time.time()
        for i, conn in enumerate(conns):
            if conn is None:
                continue
            try:
                ask(conn)
            except (OSError, ssl.SSLError) as e:
                lost.append(f"{label} {i} at {time.time() - begun:.0f}s: {e}")
                conn.close()
                conns[i] = None
        count(f"{label} round")
        time.sleep(max(0.0, 20 - (time.time() - round_started)))
    for conn in conns:
        if conn is not None:
            conn.close()


def sample(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", default="target/release/ferry")
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--idle", type=int, default=0,
                    help="keep-alive connections held open (and asked again every 20 s)")
    ap.add_argument("--intercepted", type=int, default=0,
                    help="intercepted HTTPS connections held open (and asked again every 20 s)")
    args = ap.parse_args()

    # Idle connections need an idle limit longer than the 20 s between
    # their requests; without them, slow heads are cut after 5 s.
    header_timeout = 30 if args.idle or args.intercepted else 5
    origin = ThreadingServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    oport = origin.server_address[1]
    closed_port = free_port()
    port = free_port()
    cache_dir = f"/tmp/ferry-soak-{os.getpid()}"
    scratch = tempfile.TemporaryDirectory()
    intercept_args, tunnel_host, tls_port, client_tls = [], "127.0.0.1", 0, None
    if args.intercepted:
        cert = os.path.join(scratch.name, "cert.pem")
        key = os.path.join(scratch.name, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1",
             "-addext", "basicConstraints=critical,CA:FALSE"], check=True, capture_output=True)
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_tls.load_cert_chain(cert, key)
        tls_origin = ThreadingServer(("127.0.0.1", 0), Origin)
        tls_origin.socket = server_tls.wrap_socket(tls_origin.socket, server_side=True)
        threading.Thread(target=tls_origin.serve_forever, daemon=True).start()
        tls_port = tls_origin.server_address[1]
        ca_dir = os.path.join(scratch.name, "ca")
        subprocess.run([args.ferry, "ca", "init", "--ca-dir", ca_dir], check=True,
                       capture_output=True)
        client_tls = ssl.create_default_context(cafile=os.path.join(ca_dir, "ca.pem"))
        client_tls.set_alpn_protocols(["http/1.1"])
        intercept_args = ["--intercept-tls", "--ca-dir", ca_dir, "--upstream-ca", cert,
                          "--connect-port", str(tls_port), "--no-intercept", "localhost",
                          "--max-tunnels", str(args.intercepted + 2000)]
        tunnel_host = "localhost"
    proc = subprocess.Popen(
        [args.ferry, "proxy", "--listen", f"127.0.0.1:{port}", "--cache-dir", cache_dir,
         "--access-log", "/dev/null", "--max-concurrent", "32",
         "--connect-port", str(oport), "--deny-domain", "denied.test",
         "--max-connections-per-client", "200", "--header-timeout", str(header_timeout),
         "--transfer-window", "5", "--min-transfer-bytes", "200",
         "--max-connections", str(args.idle + args.intercepted + 4000)] + intercept_args,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = ("127.0.0.1", port)
    for _ in range(100):
        try:
            socket.create_connection(proxy, timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    base = sample(proc.pid)
    stop = time.time() + args.seconds
    counts = {}
    lock = threading.Lock()

    def count(kind):
        with lock:
            counts[kind] = counts.get(kind, 0) + 1

    def req(path, host=f"127.0.0.1:{oport}", extra=b""):
        return f"GET http://{host}{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode() + extra + b"\r\n"

    def hits():
        while time.time() < stop:
            exchange(proxy, req("/hit"))
            count("hit")

    def misses():
        n = 0
        while time.time() < stop:
            n += 1
            exchange(proxy, req("/nostore/x"))
            exchange(proxy, req(f"/fresh/{n}-{random.random()}"))
            count("miss")

    def tunnels():
        while time.time() < stop:
            try:
                with socket.create_connection(proxy, timeout=10) as s:
                    s.sendall(f"CONNECT {tunnel_host}:{oport} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    s.recv(4096)
                    s.sendall(b"GET /tunnel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    while s.recv(65536):
                        pass
            except OSError:
                pass
            count("tunnel")

    def errors():
        while time.time() < stop:
            exchange(proxy, req("/", host=f"127.0.0.1:{closed_port}"))
            exchange(proxy, req("/", host="denied.test"))
            exchange(proxy, b"BREW /coffee HTCPCP/1.0\r\n\r\n")
            exchange(proxy, f"GET http://127.0.0.1:{oport}/hit HTTP/1.1\r\nHost: x\r\n"
                     "Connection: close\r\nContent-Length: 5\r\n\r\nhello".encode())
            exchange(proxy, req("/", extra=b"X-Big: " + b"a" * 70000 + b"\r\n"))
            count("error")
            time.sleep(0.05)

    def slow():
        while time.time() < stop:
            held = []
            for _ in range(20):
                try:
                    s = socket.create_connection(proxy, timeout=10)
                    s.sendall(b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: ")
                    held.append(s)
                except OSError:
                    pass
            try:
                r = socket.socket()
                r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                r.settimeout(10)
                r.connect(proxy)
                r.sendall(req(f"/big/{random.random()}"))
                for _ in range(20):
                    r.recv(16)
                    time.sleep(0.25)
                r.close()
            except OSError:
                pass
            for s in held:
                s.close()
            count("slow")

    def abusive():
        while time.time() < stop:
            flood = []
            for _ in range(300):
                try:
                    flood.append(socket.create_connection(proxy, timeout=2))
                except OSError:
                    break
            time.sleep(1)
            for s in flood:
                s.close()
            count("flood")

    idle_lost = []

    def idle_held():
        # Quiet connections held open: each is asked for the hit at the
        # start and every 20 s after, and must answer every time.
        request = f"GET http://127.0.0.1:{oport}/hit HTTP/1.1\r\nHost: x\r\n\r\n".encode()

        def ask(conn):
            conn.sendall(request)
            read_answer(conn)

        conns = []
        for i in range(args.idle):
            conn = socket.socket()
            conn.settimeout(20)
            # 150 connections per loopback address: under the per-client cap.
            conn.bind((f"127.1.{i // 150 // 250}.{i // 150 % 250 + 1}", 0))
            try:
                conn.connect(proxy)
                ask(conn)
                conns.append(conn)
            except OSError as e:
                idle_lost.append(f"connection {i} at the start: {e}")
        count("idle open")
        hold(conns, ask, idle_lost, "idle", stop, count)

    intercepted_lost = []
    inside = f"GET /hit HTTP/1.1\r\nHost: 127.0.0.1:{tls_port}\r\n\r\n".encode()

    def ask_inside(tls):
        tls.sendall(inside)
        read_answer(tls)

    def open_intercepted(source):
        conn = socket.socket()
        conn.settimeout(20)
        conn.bind((source, 0))
        conn.connect(proxy)
        conn.sendall(f"CONNECT 127.0.0.1:{tls_port} HTTP/1.1\r\n"
                     f"Host: 127.0.0.1:{tls_port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                raise OSError("CONNECT closed")
            head += chunk
        if not head.startswith(b"HTTP/1.1 200"):
            raise OSError(f"CONNECT answered {head[:40]!r}")
        return client_tls.wrap_socket(conn, server_hostname="127.0.0.1")

    def intercepted_held():
        # As idle_held, inside intercepted tunnels, from other addresses.
        conns = []
        for i in range(args.intercepted):
            try:
                tls = open_intercepted(f"127.2.{i // 150 // 250}.{i // 150 % 250 + 1}")
                ask_inside(tls)
                conns.append(tls)
            except (OSError, ssl.SSLError) as e:
                intercepted_lost.append(f"intercepted {i} at the start: {e}")
        count("intercepted open")
        hold(conns, ask_inside, intercepted_lost, "intercepted", stop, count)

    def intercepted_active():
        # Requests with pauses across the edge of a quiet turn.
        n = 0
        while time.time() < stop:
            n += 1
            try:
                tls = open_intercepted("127.3.0.1")
                for _ in range(10):
                    if time.time() >= stop:
                        break
                    time.sleep(random.uniform(0.0, 2.5))
                    ask_inside(tls)
                    count("intercepted")
                tls.close()
            except (OSError, ssl.SSLError) as e:
                intercepted_lost.append(f"active session {n}: {e}")

    workers = [hits, hits, misses, tunnels, errors, slow, abusive]
    if args.idle:
        workers.append(idle_held)
    if args.intercepted:
        workers += [intercepted_held, intercepted_active]
    threads = [threading.Thread(target=w, daemon=True) for w in workers]
    for t in threads:
        t.start()
    samples = []
    started = time.time()
    while time.time() < stop:
        time.sleep(10)
        if proc.poll() is not None:
            print("ferry exited during the soak", file=sys.stderr)
            sys.exit(1)
        samples.append((time.time() - started, *sample(proc.pid)))
        print(f"{samples[-1][0]:6.0f}s  rss {samples[-1][1] / 1024:7.1f} MiB  fds {samples[-1][2]:5d}  {counts}",
              flush=True)
    for t in threads:
        t.join(timeout=30)
    time.sleep(header_timeout + 1)  # let connections held by slow clients time out
    end = sample(proc.pid)
    proc.terminate()
    proc.wait(timeout=30)
    origin.shutdown()
    subprocess.run(["rm", "-rf", cache_dir])
    scratch.cleanup()
    warm = next((s for s in samples if s[0] >= 60), samples[0])
    peak = max(s[1] for s in samples)
    print(f"\nstart (idle): rss {base[0] / 1024:.1f} MiB, fds {base[1]}")
    print(f"after warm-up ({warm[0]:.0f}s): rss {warm[1] / 1024:.1f} MiB, fds {warm[2]}")
    print(f"end (idle, after the traffic): rss {end[0] / 1024:.1f} MiB, fds {end[1]}")
    print(f"largest rss during the run: {peak / 1024:.1f} MiB")
    print(f"requests and sessions driven: {counts}")
    grew = end[0] > warm[1] * 1.2 + 8 * 1024 or end[1] > base[1] + 10
    print("verdict:", "GROWTH beyond noise" if grew else "no growth beyond noise")
    if args.idle:
        print(f"idle connections lost: {len(idle_lost)} of {args.idle}")
        for line in idle_lost[:10]:
            print("  ", line)
    if args.intercepted:
        print(f"intercepted answers lost: {len(intercepted_lost)}")
        for line in intercepted_lost[:10]:
            print("  ", line)
    sys.exit(1 if grew or idle_lost or intercepted_lost else 0)


if __name__ == "__main__":
    main()
