#!/usr/bin/env bash
# Real package managers through a fresh Ferry, twice each with empty client
# caches: does the second round come from the cache? Run BY HAND, once: it
# reaches the package registries this machine's clients are configured for
# (their defaults; no registry is named here), fetches a handful of small
# packages, and is never run in a loop or in CI.
#
#   bench/real-clients.sh              # apt pip npm cargo
#   bench/real-clients.sh pip npm      # some of them
#
# Ferry runs as a user would run it for this traffic:
#   ferry proxy --intercept-tls --cache-preset packages
# with upstream TLS trusting the system's store (no --upstream-ca), and every
# client trusting one bundle (`ferry ca export --bundle`: the system's roots
# plus Ferry's CA), configured the way the README's client set-up says.
#
# Prints, per client and round: requests, bytes from origins, bytes from the
# cache, artifacts (package files) from the cache, and time; writes the table
# to bench/results/real-clients.md. FERRY_BIN names a ready binary; KEEP=1
# keeps the scratch directory (Ferry's access log among it) for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CLIENTS=("$@")
[ ${#CLIENTS[@]} -eq 0 ] && CLIENTS=(apt pip npm cargo)

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

if [ -n "${FERRY_BIN:-}" ]; then
  FERRY=$FERRY_BIN
else
  log "building ferry (release)"
  cargo build --release --locked --bin ferry >&2
  FERRY=$ROOT/target/release/ferry
fi

WORK=$(mktemp -d /tmp/ferry-real-clients.XXXXXX)
PROXY_PID=
cleanup() {
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PROXY=http://127.0.0.1:$PORT
"$FERRY" ca --ca-dir "$WORK/ca" init >/dev/null
"$FERRY" ca --ca-dir "$WORK/ca" export --bundle "$WORK/bundle.pem" >&2
BUNDLE=$WORK/bundle.pem
LOG=$WORK/access.jsonl

log "starting ferry on $PROXY"
"$FERRY" proxy --listen "127.0.0.1:$PORT" --cache-dir "$WORK/cache" \
  --intercept-tls --ca-dir "$WORK/ca" --cache-preset packages \
  --access-log "$LOG" --log-format json --max-concurrent 16 \
  2>"$WORK/ferry.stderr" &
PROXY_PID=$!
wait_port "$PORT"

# The environment some machines set for every program names another CA file
# for these clients; each client below is given the bundle instead.
unset PIP_CERT REQUESTS_CA_BUNDLE CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS SSL_CERT_FILE SSL_CERT_DIR
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY

run_apt() {
  local dir=$1
  mkdir -p "$dir/lists/partial" "$dir/archives/partial" "$dir/get"
  local opts=(-o "Acquire::http::Proxy=$PROXY" -o "Acquire::https::Proxy=$PROXY"
    -o "Acquire::https::CaInfo=$BUNDLE" -o "Dir::State::Lists=$dir/lists"
    -o "Dir::Cache::Archives=$dir/archives" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
    -o "APT::Sandbox::User=root" -q=2)
  apt-get "${opts[@]}" update >/dev/null
  (cd "$dir/get" && apt-get "${opts[@]}" download hello tree sl >/dev/null)
}

run_pip() {
  local dir=$1
  python3 -m pip download --quiet --no-deps --no-cache-dir --proxy "$PROXY" \
    --cert "$BUNDLE" -d "$dir" six idna packaging >/dev/null
}

run_npm() {
  local dir=$1
  mkdir -p "$dir/project"
  (cd "$dir/project" && npm install --silent --no-save --no-audit --no-fund \
    --cache "$dir/npm-cache" --proxy "$PROXY" --https-proxy "$PROXY" --cafile "$BUNDLE" \
    is-number left-pad ms >/dev/null)
}

run_cargo() {
  local dir=$1
  mkdir -p "$dir/crate/src"
  cat >"$dir/crate/Cargo.toml" <<'EOF'
[package]
name = "probe"
version = "0.1.0"
edition = "2021"

[dependencies]
itoa = "1"
ryu = "1"
EOF
  echo 'fn main() {}' >"$dir/crate/src/main.rs"
  (cd "$dir/crate" && CARGO_HOME="$dir/cargo-home" CARGO_HTTP_PROXY="$PROXY" \
    CARGO_HTTP_CAINFO="$BUNDLE" cargo fetch --quiet)
}

ROWS=$WORK/rows.jsonl
: >"$ROWS"
for client in "${CLIENTS[@]}"; do
  for round in 1 2; do
    dir=$WORK/$client-$round
    mkdir -p "$dir"
    before=$(wc -l <"$LOG" 2>/dev/null || echo 0)
    log "$client, round $round (empty client cache)"
    start=$(date +%s.%N)
    status=ok
    "run_$client" "$dir" || status=failed
    end=$(date +%s.%N)
    sleep 1 # the access log's writer batches its lines
    python3 - "$LOG" "$before" "$client" "$round" "$start" "$end" "$status" >>"$ROWS" <<'EOF'
import json, sys
log, before, client, rnd, start, end, status = sys.argv[1:]
lines = open(log).read().splitlines()[int(before):]
records = [json.loads(l) for l in lines if l.strip()]
artifact = lambda u: any(u.split('?')[0].endswith(s) for s in ('.deb', '.whl', '.tar.gz', '.tgz', '.crate', '.zip', '/download'))
arts = [r for r in records if artifact(r['url']) and r['method'] == 'GET']
print(json.dumps({
    'client': client, 'round': int(rnd), 'status': status,
    'requests': len(records),
    'tunnels': sum(1 for r in records if r['method'] == 'CONNECT'),
    'origin_bytes': sum(r['bytes'] for r in records if r['cache'] == 'MISS' or (r['cache'] == '-' and r['method'] != 'CONNECT')),
    'cache_bytes': sum(r['bytes'] for r in records if r['cache'] == 'HIT'),
    'artifacts': len(arts),
    'artifacts_hit': sum(1 for r in arts if r['cache'] == 'HIT'),
    'seconds': round(float(end) - float(start), 1),
}))
EOF
  done
done

{
  echo "# Real package managers through Ferry — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "\`bench/real-clients.sh ${CLIENTS[*]}\`: \`ferry proxy --intercept-tls --cache-preset packages\`, upstream TLS"
  echo "trusting the system's store, each client trusting \`ferry ca export --bundle\`; each client run twice with"
  echo "an empty client cache. Bytes are response bodies as the access log counts them."
  echo
} >"$ROOT/bench/results/real-clients.md"
python3 - "$ROWS" <<'EOF' | tee -a "$ROOT/bench/results/real-clients.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
mb = lambda n: f"{n / 1e6:.2f} MB"
print("| client | round | requests | from origins | from the cache | artifacts from the cache | time |")
print("|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    note = "" if r['status'] == 'ok' else " (client failed)"
    print(f"| {r['client']}{note} | {r['round']} | {r['requests']} | {mb(r['origin_bytes'])} | "
          f"{mb(r['cache_bytes'])} | {r['artifacts_hit']} of {r['artifacts']} | {r['seconds']} s |")
by = {(r['client'], r['round']): r for r in rows}
for client in dict.fromkeys(r['client'] for r in rows):
    one, two = by.get((client, 1)), by.get((client, 2))
    if one and two and one['origin_bytes']:
        share = 100 * two['origin_bytes'] / one['origin_bytes']
        print(f"\n{client}: round 2 took {share:.1f}% of round 1's bytes from origins", end="")
print()
EOF
