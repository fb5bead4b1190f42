#!/usr/bin/env bash
# HTTPS interception against plain HTTP, through the same Ferry, in one run:
#
#   bench/tls.sh            # RUNS=3 DURATION=10 CONNS=32 by default
#
# (g) keep-alive hits: `tls_load plain` (absolute-form GETs of an http:// URL)
#     against `tls_load keepalive` (CONNECT once, TLS with Ferry's leaf, then
#     GETs of the https:// URL inside), both for a cached 1 KiB object;
# (h) a new client connection per request: `tls_load handshake` (CONNECT, TLS
#     handshake with a warm leaf, one GET), read against (g)'s intercepted
#     keep-alive figure: the difference is the handshake's cost.
# The origin is nginx over TLS with a certificate from a throwaway CA that
# only Ferry trusts (--upstream-ca). Rounds are interleaved. Writes
# bench/results/tls-latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/bench/work-tls
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

install_missing nginx:nginx-light openssl:openssl curl:curl
(service nginx stop) >/dev/null 2>&1 || true

log "building ferry and tls_load (release)"
cargo build --release --locked --bin ferry >&2
cargo build --release --locked -p ferry-testkit --bin tls_load >&2
FERRY=$ROOT/target/release/ferry
LOAD=$ROOT/target/release/tls_load

rm -rf "$WORK"
mkdir -p "$WORK/www" "$WORK/logs"
head -c 1024 /dev/urandom >"$WORK/www/1k.bin"
read -r ORIGIN_PORT PLAIN_PORT FERRY_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
)

# The origin's throwaway CA and its certificate for localhost.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=bench-origin-ca -keyout "$WORK/origin-ca.key" -out "$WORK/origin-ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$WORK/origin.key" -out "$WORK/origin.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$WORK/origin.ext"
openssl x509 -req -in "$WORK/origin.csr" -CA "$WORK/origin-ca.pem" -CAkey "$WORK/origin-ca.key" \
  -CAcreateserial -days 2 -extfile "$WORK/origin.ext" -out "$WORK/origin.pem" 2>/dev/null

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon on;
user root;
pid $WORK/nginx.pid;
error_log $WORK/logs/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$ORIGIN_PORT ssl;
    listen 127.0.0.1:$PLAIN_PORT;
    ssl_certificate $WORK/origin.pem;
    ssl_certificate_key $WORK/origin.key;
    root $WORK/www;
    location / { add_header Cache-Control "max-age=3600"; }
  }
}
EOF
nginx -c "$WORK/nginx.conf" -p "$WORK"
wait_port "$ORIGIN_PORT"

"$FERRY" ca --ca-dir "$WORK/ca" init >/dev/null
"$FERRY" proxy --listen "127.0.0.1:$FERRY_PORT" --cache-dir "$WORK/cache" \
  --memory-cache-size 256MiB --max-concurrent 256 --access-log "$WORK/logs/ferry-access.log" \
  --intercept-tls --ca-dir "$WORK/ca" --upstream-ca "$WORK/origin-ca.pem" \
  --connect-port "$ORIGIN_PORT" 2>>"$WORK/logs/ferry.err" &
PIDS+=("$!")
wait_port "$FERRY_PORT"

PROXY=127.0.0.1:$FERRY_PORT
HTTPS_URL=https://localhost:$ORIGIN_PORT/1k.bin
HTTP_URL=http://127.0.0.1:$PLAIN_PORT/1k.bin
# Warm both objects (and the leaf for localhost).
"$LOAD" "$PROXY" "$HTTPS_URL" "$WORK/ca/ca.pem" 1 1 handshake >/dev/null
"$LOAD" "$PROXY" "$HTTP_URL" "$WORK/ca/ca.pem" 1 1 plain >/dev/null

RESULTS=$WORK/results.txt
: >"$RESULTS"
for run in $(seq 1 "$RUNS"); do
  for mode in plain keepalive handshake; do
    url=$HTTPS_URL; [ "$mode" = plain ] && url=$HTTP_URL
    line=$("$LOAD" "$PROXY" "$url" "$WORK/ca/ca.pem" "$CONNS" "$DURATION" "$mode")
    log "run $run $mode: $line"
    echo "$mode $line" >>"$RESULTS"
  done
done

python3 - "$RESULTS" "$ROOT/bench/results/tls-latest.md" "$RUNS" "$DURATION" "$CONNS" <<'PY'
import json, statistics, sys, datetime
path, out, runs, duration, conns = sys.argv[1:]
samples = {}
for line in open(path):
    mode, data = line.split(" ", 1)
    samples.setdefault(mode, []).append(json.loads(data))
def med(mode, key):
    return statistics.median(s[key] for s in samples[mode])
plain, keep, hand = (med(m, "rps") for m in ("plain", "keepalive", "handshake"))
rows = [
    ("(g) plain HTTP hit, keep-alive", "plain"),
    ("(g) intercepted HTTPS hit, keep-alive", "keepalive"),
    ("(h) intercepted HTTPS hit, new connection + handshake each", "handshake"),
]
lines = [
    f"# Ferry HTTPS interception benchmark — {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
    "",
    f"Command: `RUNS={runs} DURATION={duration} CONNS={conns} bench/tls.sh`. Medians of {runs} interleaved runs;",
    f"{conns} connections from `tls_load`, a cached 1 KiB object, nginx over TLS as the origin.",
    "",
    "| measurement | req/s | p50 ms | p99 ms | errors |",
    "|---|---:|---:|---:|---:|",
]
for label, mode in rows:
    errors = sum(s["errors"] for s in samples[mode])
    lines.append(f"| {label} | {med(mode, 'rps'):,.0f} | {med(mode, 'p50_ms'):.2f} | {med(mode, 'p99_ms'):.2f} | {errors} |")
lines += [
    "",
    f"Intercepted keep-alive hits / plain hits: **{keep / plain:.2f}×**.",
    f"New intercepted connections (CONNECT + TLS handshake with a warm leaf + one hit): "
    f"{hand:,.0f}/s, against {keep:,.0f} requests/s on open ones ({hand / keep:.2f}×); "
    f"p50 {med('handshake', 'p50_ms'):.2f} ms per new connection.",
    "",
]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
