#!/usr/bin/env python3
"""Makes docs/dashboard.png: starts a local origin and `ferry proxy`, sends a few
minutes of mixed traffic through it (hits, misses, uncacheable pages, large
files, refusals, unreachable origins) at a rate that rises and falls, then has
headless Chromium (tests/browser-driver) load the dashboard and save a
screenshot. Everything runs on 127.0.0.1 and stops by itself.

    python3 scripts/dashboard-screenshot.py [--ferry target/debug/ferry] [--seconds 180]
"""
import argparse, http.server, math, os, random, re, socketserver, subprocess, sys, tempfile
import threading, time, urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/big/"):
            body, cc = b"x" * (512 * 1024), "max-age=600"
        elif self.path.startswith("/news/"):
            body, cc = b"<p>today</p>" * 40, "no-store"
        else:
            body, cc = b"<p>article</p>" * 200, "max-age=600"
        time.sleep(random.uniform(0.002, 0.03))
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("cache-control", cc)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", default=os.path.join(ROOT, "target/debug/ferry"))
    ap.add_argument("--seconds", type=int, default=180)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs/dashboard.png"))
    args = ap.parse_args()

    origin = Server(("127.0.0.1", 0), Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{origin.server_address[1]}"
    cache = tempfile.mkdtemp(prefix="ferry-demo-")
    proxy = subprocess.Popen(
        [args.ferry, "proxy", "--listen", "127.0.0.1:0", "--cache-dir", cache,
         "--access-log", os.devnull, "--max-concurrent", "4",
         "--deny-domain", "ads.example", "--deny-domain", "tracker.example"],
        stderr=subprocess.PIPE, text=True)
    addr = None
    for line in proxy.stderr:
        m = re.match(r"ferry: listening on http://(\S+)", line)
        if m:
            addr = m.group(1)
            break
    threading.Thread(target=lambda: [None for _ in proxy.stderr], daemon=True).start()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://{addr}"}))

    def get(url):
        try:
            with opener.open(url, timeout=10) as r:
                r.read()
        except (urllib.error.URLError, OSError):
            pass

    stop = time.time() + args.seconds
    unique = [0]

    def worker(seed):
        rnd = random.Random(seed)
        while time.time() < stop:
            phase = (time.time() % 120) / 120
            rate = 6 + 5 * math.sin(2 * math.pi * phase)
            r = rnd.random()
            if r < 0.55:
                get(f"{site}/articles/{rnd.randint(1, 30)}")
            elif r < 0.70:
                unique[0] += 1
                get(f"{site}/articles/new-{seed}-{unique[0]}")
            elif r < 0.80:
                get(f"{site}/news/{rnd.randint(1, 5)}")
            elif r < 0.86:
                get(f"{site}/big/{rnd.randint(1, 6)}")
            elif r < 0.95:
                get(f"http://{rnd.choice(['ads.example', 'tracker.example'])}/pixel")
            else:
                get("http://127.0.0.1:1/unreachable")
            time.sleep(rnd.expovariate(rate))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = subprocess.run(
        ["node", os.path.join(ROOT, "tests/browser-driver/dashboard.mjs"), "/usr/bin/chromium",
         f"http://{addr}/", args.out, f"{site}/articles/1"],
        capture_output=True, text=True)
    proxy.terminate()
    proxy.wait(timeout=30)
    origin.shutdown()
    print(out.stdout[:300], out.stderr[-2000:], file=sys.stderr)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
