#!/usr/bin/env bash
# Ferry against the caches people run (Squid, Apache Traffic Server, nginx's
# proxy_cache, Varnish) and against the origin served directly, side by side
# in one run on this machine. See bench/README.md for what each scenario means.
#
#   bench/run.sh            # RUNS=3 DURATION=10 IDLE_CONNS=10000 by default
#   BASE=<rev> bench/run.sh ab   # A/B: scenarios (a) and (b) only, Ferry at
#                                # <rev> (default HEAD~1) against the working
#                                # tree, interleaved, with Squid beside them
#
# Installs wrk, nginx, squid, varnish and trafficserver from Debian's packages
# if missing (the A/B mode needs only the first three), builds Ferry in release
# mode (FERRY_BIN / FERRY_BASE_BIN name ready binaries instead), runs
# everything on 127.0.0.1, prints the tables and writes them to
# bench/results/latest.md. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/bench/work
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNS=64
IDLE_CONNS=${IDLE_CONNS:-10000}
FERRY_SLOTS=256
MODE=${1:-full}

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# --- tools ------------------------------------------------------------------
install_missing wrk:wrk nginx:nginx-light squid:squid haproxy:haproxy curl:curl python3:python3 ss:iproute2
[ "$MODE" = ab ] || install_missing varnishd:varnish traffic_server:trafficserver
# Debian starts the packaged services; they are not part of the measurement.
(service squid stop; service nginx stop; service haproxy stop) >/dev/null 2>&1 || true
if [ "$MODE" != ab ]; then
  (service varnish stop; service varnishncsa stop; service trafficserver stop) >/dev/null 2>&1 || true
fi

# FERRY_BIN names a ready binary to measure instead of building the tree.
if [ -n "${FERRY_BIN:-}" ]; then
  FERRY=$FERRY_BIN
else
  log "building ferry (release)"
  cargo build --release --locked --bin ferry >&2
  FERRY=$ROOT/target/release/ferry
fi

# A/B: the base revision is built from its own checkout into its own target
# directory (FERRY_BASE_BIN names a ready binary instead).
FERRY_BASE=${FERRY_BASE_BIN:-}
if [ "$MODE" = ab ] && [ -z "$FERRY_BASE" ]; then
  BASE=${BASE:-HEAD~1}
  BASE_SRC=$ROOT/target/bench-base-src
  log "building ferry at $BASE (release) for the A/B comparison"
  git worktree remove --force "$BASE_SRC" >/dev/null 2>&1 || rm -rf "$BASE_SRC"
  git worktree prune
  git worktree add --detach "$BASE_SRC" "$BASE" >&2
  cargo build --release --locked --bin ferry --manifest-path "$BASE_SRC/Cargo.toml" \
    --target-dir "$ROOT/target/bench-base" >&2
  FERRY_BASE=$ROOT/target/bench-base/release/ferry
fi

ulimit -n "$(ulimit -Hn)"

# --- files ------------------------------------------------------------------
rm -rf "$WORK"
mkdir -p "$WORK/www/cold" "$WORK/logs"
head -c 1024 /dev/urandom >"$WORK/www/1k.bin"
head -c $((100 * 1024)) /dev/urandom >"$WORK/www/100k.bin"
head -c $((100 * 1024 * 1024)) /dev/urandom >"$WORK/www/100m.bin"
head -c $((1024 * 1024)) /dev/urandom >"$WORK/www/cold/1m.bin"
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

read -r ORIGIN_PORT SQUID_PORT SQUID_NOLOG_PORT FERRY_PORT FERRY5_PORT VARNISH_PORT NGINX_CACHE_PORT ATS_PORT RELAY_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(9)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)
ORIGIN=127.0.0.1:$ORIGIN_PORT

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pidfile in "$WORK/nginx.pid" "$WORK/nginx-cache/nginx.pid" "$WORK"/squid*/squid.pid; do
    if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT

record() { # scenario target metric value
  printf '{"scenario":"%s","target":"%s","metric":"%s","value":%s}\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
}
# The name a target goes by in the table (with the installed version).
record_label() { # target label
  printf '{"scenario":"meta","target":"%s","metric":"label","value":"%s"}\n' "$1" "$2" >>"$RESULTS"
}

# --- the origin: nginx --------------------------------------------------------
# /status (stub_status) counts the requests the origin has served: a hit on a
# cache must not reach it, a no-store miss must.
start_origin() {
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon on;
user root;
pid $WORK/nginx.pid;
error_log $WORK/logs/nginx-error.log;
events { worker_connections 30000; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {
    listen $ORIGIN;
    root $WORK/www;
    location / { add_header Cache-Control "max-age=3600"; }
    location /nostore/ { alias $WORK/www/; add_header Cache-Control "no-store"; }
    location /obj/ { add_header Cache-Control "max-age=3600"; try_files /1k.bin =404; }
    location /cold/ {
      access_log $WORK/logs/cold.log;
      add_header Cache-Control "max-age=3600";
      limit_rate 1m;
    }
    location = /status { stub_status; }
  }
}
EOF
nginx -c "$WORK/nginx.conf" -p "$WORK"
wait_port "$ORIGIN_PORT"
}
# nginx removes its pid file once the master has exited.
stop_nginx() { # pidfile
  local pid
  pid=$(cat "$1" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    if [ ! -f "$1" ] || ! alive "$pid"; then break; fi
    sleep 0.1
  done
}
origin_requests() { curl -s "http://$ORIGIN/status" | awk 'NR == 3 { print $3 }'; }
start_origin

# --- the proxies ----------------------------------------------------------------
start_ferry() { # name port [extra args...]
  local name=$1 port=$2
  shift 2
  local bin=$FERRY
  [ "$name" = ferry-base ] && bin=$FERRY_BASE
  rm -rf "$WORK/$name-cache"
  "$bin" proxy --listen "127.0.0.1:$port" --cache-dir "$WORK/$name-cache" \
    --memory-cache-size 512MiB --max-object-size 256MiB \
    --access-log "$WORK/logs/$name-access.log" "$@" 2>>"$WORK/logs/$name.err" &
  echo $! >"$WORK/$name.pid"
  PIDS+=("$!")
  wait_port "$port"
}
stop_ferry() { # name
  kill "$(cat "$WORK/$1.pid")" 2>/dev/null || true
  wait "$(cat "$WORK/$1.pid")" 2>/dev/null || true
}

# Squid in $WORK/<name>; "squid" logs every request like Ferry does,
# "squid-nolog" (scenarios (a) and (b) only) has no access log.
start_squid() { # [name port]
  local name=${1:-squid} port=${2:-$SQUID_PORT} dir log
  dir=$WORK/$name
  log="access_log stdio:$dir/access.log squid"
  [ "$name" = squid-nolog ] && log="access_log none"
  rm -rf "$dir"
  mkdir -p "$dir/cache"
  cat >"$dir/squid.conf" <<EOF
http_port 127.0.0.1:$port
workers 1
cache_mem 512 MB
maximum_object_size_in_memory 1 MB
maximum_object_size 256 MB
cache_dir aufs $dir/cache 2048 16 256
collapsed_forwarding on
$log
cache_log $dir/cache.log
pid_filename $dir/squid.pid
coredump_dir $dir
max_filedescriptors 20000
client_idle_pconn_timeout 2 minutes
shutdown_lifetime 1 seconds
http_access allow localhost
http_access deny all
EOF
  chown -R proxy:proxy "$dir"
  squid -N -f "$dir/squid.conf" -z >/dev/null 2>&1
  squid -N -f "$dir/squid.conf" &
  PIDS+=("$!")
  wait_port "$port"
}
stop_squid() { # [name]
  local pid
  pid=$(cat "$WORK/${1:-squid}/squid.pid" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    alive "$pid" || break
    sleep 0.1
  done
}

# Varnish, the origin as its only backend, the built-in VCL otherwise (it
# caches as Cache-Control says; no-store is a miss every time). varnishd runs
# in the foreground: its manager, which starts the child ("cache-main") that
# serves. Varnish writes its log to shared memory only (varnishncsa would be
# one more process to copy it to a file), so it runs without a file log.
start_varnish() {
  local dir=$WORK/varnish
  rm -rf "$dir"
  mkdir -p "$dir"
  cat >"$dir/default.vcl" <<EOF
vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "$ORIGIN_PORT"; }
EOF
  # timeout_idle (5 s by default) would close the idle connections of (d).
  varnishd -F -j none -n "$dir/run" -a "127.0.0.1:$VARNISH_PORT" -f "$dir/default.vcl" \
    -s malloc,512M -p timeout_idle=300 >>"$WORK/logs/varnish.log" 2>&1 &
  echo $! >"$WORK/varnish.pid"
  PIDS+=("$!")
  wait_port "$VARNISH_PORT"
}
stop_varnish() { stop_pid "$(cat "$WORK/varnish.pid" 2>/dev/null || true)"; }

# A second nginx, a cache in front of the origin: proxy_cache honouring the
# origin's Cache-Control, keep-alive to the origin, 1 worker, access log to a
# file. It takes the request's absolute form and sends it to its fixed backend.
start_nginx_cache() {
  local dir=$WORK/nginx-cache
  rm -rf "$dir"
  mkdir -p "$dir/cache"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon on;
user root;
pid $dir/nginx.pid;
error_log $WORK/logs/nginx-cache-error.log;
events { worker_connections 30000; }
http {
  access_log $WORK/logs/nginx-cache-access.log;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  proxy_cache_path $dir/cache levels=1:2 keys_zone=bench:64m max_size=2g inactive=1d use_temp_path=off;
  upstream origin {
    server $ORIGIN;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$NGINX_CACHE_PORT;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      add_header X-Cache \$upstream_cache_status;
    }
  }
}
EOF
  nginx -c "$dir/nginx.conf" -p "$dir"
  wait_port "$NGINX_CACHE_PORT"
}
stop_nginx_cache() { stop_nginx "$WORK/nginx-cache/nginx.pid"; }

# Apache Traffic Server as a forward caching proxy, traffic_server alone (no
# traffic_manager) in the foreground, from a runroot of its own: the package's
# config files (ip_allow.yaml lets 127.0.0.1 in; the error page templates)
# with ours over them; 9.2 reads records.config.
start_ats() {
  local dir=$WORK/ats sysconf
  sysconf=$(traffic_layout info | awk '$1 == "SYSCONFDIR:" { print $2 }')
  rm -rf "$dir"
  mkdir -p "$dir/etc" "$dir/cache" "$dir/run" "$dir/log" "$dir/var"
  cp -r "$sysconf/." "$dir/etc/"
  cat >"$dir/runroot.yaml" <<EOF
prefix: /usr
exec_prefix: /usr
bindir: /usr/bin
sbindir: /usr/sbin
includedir: /usr/include
libdir: $(traffic_layout info | awk '$1 == "LIBDIR:" { print $2 }')
libexecdir: $(traffic_layout info | awk '$1 == "PLUGINDIR:" { print $2 }')
sysconfdir: $dir/etc
datadir: $dir/var
localstatedir: $dir/var
runtimedir: $dir/run
logdir: $dir/log
cachedir: $dir/cache
EOF
  # #-1: keep the user that started it (the files are ours). Forward proxy:
  # no remap rule needed, absolute-form requests go where they say. 10,000+
  # idle client connections kept 5 minutes (it lowers the throttle to what
  # the descriptor limit allows, and says so in diags.log).
  cat >"$dir/etc/records.config" <<EOF
CONFIG proxy.config.admin.user_id STRING #-1
CONFIG proxy.config.http.server_ports STRING $ATS_PORT:ipv4:ip-in=127.0.0.1
CONFIG proxy.config.url_remap.remap_required INT 0
CONFIG proxy.config.reverse_proxy.enabled INT 0
CONFIG proxy.config.cache.ram_cache.size INT 536870912
CONFIG proxy.config.cache.max_doc_size INT 0
CONFIG proxy.config.net.connections_throttle INT 30000
CONFIG proxy.config.net.max_connections_in INT 30000
CONFIG proxy.config.http.keep_alive_no_activity_timeout_in INT 300
EOF
  echo "$dir/cache 1024M" >"$dir/etc/storage.config"
  cat >"$dir/etc/logging.yaml" <<'EOF'
logging:
  formats:
    - name: squid
      format: '%<cqtq> %<ttms> %<chi> %<crc>/%<pssc> %<psql> %<cqhm> %<cquc> %<caun> %<phr>/%<shn> %<psct>'
  logs:
    - filename: access
      format: squid
      mode: ascii
EOF
  traffic_server --run-root="$dir/runroot.yaml" >>"$WORK/logs/ats.out" 2>&1 &
  echo $! >"$WORK/ats.pid"
  PIDS+=("$!")
  wait_port "$ATS_PORT"
  # It listens before its cache is up; what it fetched before would not be stored.
  for _ in $(seq 1 200); do
    grep -q 'cache enabled' "$dir/log/diags.log" 2>/dev/null && break
    sleep 0.05
  done
}
stop_ats() { stop_pid "$(cat "$WORK/ats.pid" 2>/dev/null || true)"; }

# HAProxy as a relay only, no cache: the origin as its one server over
# kept-alive connections (http-reuse always), its default threads (one per
# core), a log line per request to a file as the caches write. What it costs
# to forward a request and its response is the floor under any cache's miss.
start_relay() {
  local dir=$WORK/relay
  mkdir -p "$dir"
  cat >"$dir/haproxy.cfg" <<EOF
global
  maxconn 8192
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  option http-keep-alive
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend relay
  bind 127.0.0.1:$RELAY_PORT
  default_backend origin
backend origin
  http-reuse always
  server origin $ORIGIN
EOF
  haproxy -db -f "$dir/haproxy.cfg" >"$WORK/logs/relay.log" 2>&1 &
  echo $! >"$WORK/relay.pid"
  PIDS+=("$!")
  wait_port "$RELAY_PORT"
}
stop_relay() { stop_pid "$(cat "$WORK/relay.pid" 2>/dev/null || true)"; }

squid_pid() { cat "$WORK/${1:-squid}/squid.pid"; }
ferry_pid() { cat "$WORK/$1.pid"; }

proc_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# The processes of a target: the tree under nginx's master for direct and
# nginx-cache (its worker; nginx-cache's cache manager and loader), Varnish's
# manager and child, traffic_server and its helper, Squid, Ferry.
target_pids() {
  case $1 in
    direct) pid_tree "$(cat "$WORK/nginx.pid")" ;;
    nginx-cache) pid_tree "$(cat "$WORK/nginx-cache/nginx.pid")" ;;
    varnish) pid_tree "$(cat "$WORK/varnish.pid")" ;;
    ats) pid_tree "$(cat "$WORK/ats.pid")" ;;
    relay) pid_tree "$(cat "$WORK/relay.pid")" ;;
    squid*) pid_tree "$(squid_pid "$1")" ;;
    *) pid_tree "$(ferry_pid "$1")" ;;
  esac
}

# CPU time (user + system, all threads) a target's processes have used, in
# clock ticks.
cpu_ticks() { # target
  local pids
  mapfile -t pids < <(target_pids "$1")
  cpu_ticks_of "${pids[@]}"
}

# Resident KiB of the processes that hold a target's client connections:
# nginx's worker (the master and the cache helpers hold none), else the sum
# over all its processes.
rss_kib() { # target
  local pids
  case $1 in
    direct) mapfile -t pids < <(pgrep -P "$(cat "$WORK/nginx.pid")" -f 'worker process') ;;
    nginx-cache) mapfile -t pids < <(pgrep -P "$(cat "$WORK/nginx-cache/nginx.pid")" -f 'worker process') ;;
    *) mapfile -t pids < <(target_pids "$1") ;;
  esac
  kib_of VmRSS "${pids[@]}"
}

# Runs a command and prints the CPU seconds (user + system) it used, on fd 3.
cpu_of() { python3 -c '
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=False)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(u.ru_utime + u.ru_stime, file=open(3, "w", closefd=False))' "$@"; }

# One wrk run through a proxy (absolute form) or straight at the origin; also
# the CPU the target's processes and wrk itself spent per request, and (full
# mode) how many requests reached the origin per request wrk made.
wrk_once() { # scenario target host:port target-url run
  local scen=$1 target=$2 hostport=$3 url=$4 run=$5 out before after wrk_cpu orig_before orig_after
  orig_before=$(origin_requests)
  before=$(cpu_ticks "$target")
  # The origin, and HAProxy (which refuses an absolute-form request whose
  # Host differs from its authority, as wrk's does), get the origin form.
  if [ "$target" = direct ] || [ "$target" = relay ]; then
    { out=$(cpu_of wrk -t1 -c$CONNS -d"${DURATION}s" -s "$ROOT/bench/wrk/absolute.lua" "http://$hostport${url#"http://$ORIGIN"}" 3>"$WORK/wrk.cpu" | tail -1); }
  else
    { out=$(TARGET=$url cpu_of wrk -t1 -c$CONNS -d"${DURATION}s" -s "$ROOT/bench/wrk/absolute.lua" "http://$hostport" 3>"$WORK/wrk.cpu" | tail -1); }
  fi
  after=$(cpu_ticks "$target")
  orig_after=$(origin_requests)
  wrk_cpu=$(cat "$WORK/wrk.cpu")
  echo "  $scen $target run $run: $out cpu_ticks=$((after - before)) wrk_cpu_s=$wrk_cpu origin_requests=$((orig_after - orig_before - 1))" >&2
  for metric in rps p50_ms p99_ms errors; do
    record "$scen" "$target" "$metric" "$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['$metric'])" "$out")"
  done
  record "$scen" "$target" cpu_us_per_req "$(python3 -c "
import json, os, sys
ticks = $((after - before)) / os.sysconf('SC_CLK_TCK')
print(round(ticks * 1e6 / json.loads(sys.argv[1])['requests'], 2))" "$out")"
  record "$scen" "$target" wrk_cpu_us_per_req "$(python3 -c "
import json, sys
print(round($wrk_cpu * 1e6 / json.loads(sys.argv[1])['requests'], 2))" "$out")"
  [ "$MODE" = ab ] || record "$scen" "$target" origin_per_req "$(python3 -c "
import json, sys
print(round(($orig_after - $orig_before - 1) / max(1, json.loads(sys.argv[1])['requests']), 3))" "$out")"
}

# The runs of one scenario, interleaved: every round measures each target once,
# so a slow spell of this shared machine hits all of them alike. Every other
# round runs the targets in reverse order, so none always runs first or last.
wrk_rounds() { # scenario url target:host:port...
  local scen=$1 url=$2 run spec i
  shift 2
  local specs=("$@")
  for run in $(seq 1 "$RUNS"); do
    for i in "${!specs[@]}"; do
      [ $((run % 2)) -eq 0 ] && spec=${specs[$((${#specs[@]} - 1 - i))]} || spec=${specs[$i]}
      wrk_once "$scen" "${spec%%:*}" "${spec#*:}" "$url" "$run"
    done
  done
}

x_cache() { # proxy url
  curl -s -o /dev/null -D - -x "http://$1" "$2" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-cache" { print $2 }'
}

# What a cache's answer says about itself (X-Cache: Squid, Ferry, nginx;
# X-Varnish with two ids on a hit; Age) and how many requests the origin got
# while it was fetched: 0 for a hit.
cache_evidence() { # headers-file origin-requests-before origin-requests-after
  local hdrs
  hdrs=$(tr -d '\r' <"$1" | awk -F': ' 'tolower($1) ~ /^(x-cache|x-varnish|age)$/ { printf "%s: %s, ", $1, $2 }')
  echo "${hdrs}origin requests: $(($3 - $2 - 1))"
}
# Fetches a URL twice through a proxy; the evidence of the second answer.
second_fetch() { # proxy url
  local before after
  curl -s -o /dev/null -x "http://$1" "$2"
  before=$(origin_requests)
  curl -s -o /dev/null -D "$WORK/headers" -x "http://$1" "$2"
  after=$(origin_requests)
  cache_evidence "$WORK/headers" "$before" "$after"
}

if [ "$MODE" = ab ]; then
  # Same flags for both Ferrys; the port of "Ferry (max-concurrent 5)" serves the base.
  start_squid
  start_ferry ferry-base "$FERRY5_PORT" --max-concurrent $FERRY_SLOTS
  # FERRY_NEW_ARGS: flags for the new Ferry only (e.g. rules that match
  # nothing in the bench, to show what carrying them costs).
  # shellcheck disable=SC2086
  start_ferry ferry "$FERRY_PORT" --max-concurrent $FERRY_SLOTS ${FERRY_NEW_ARGS:-}
  TARGETS=("direct:$ORIGIN")
  for p in "squid:$SQUID_PORT" "ferry-base:$FERRY5_PORT" "ferry:$FERRY_PORT"; do
    x_cache "127.0.0.1:${p#*:}" "http://$ORIGIN/1k.bin" >/dev/null
    echo "  ${p%%:*} second request: X-Cache $(x_cache "127.0.0.1:${p#*:}" "http://$ORIGIN/1k.bin")" >&2
    TARGETS+=("${p%%:*}:127.0.0.1:${p#*:}")
  done
  log "A/B (a) cache hit, 1 KiB, $CONNS connections"
  wrk_rounds a "http://$ORIGIN/1k.bin" "${TARGETS[@]}"
  log "A/B (b) miss path (no-store), 1 KiB, $CONNS connections, and HAProxy relaying it"
  start_relay
  wrk_rounds b "http://$ORIGIN/nostore/1k.bin" "${TARGETS[@]}" "relay:127.0.0.1:$RELAY_PORT"
  stop_relay
  HEADER=$WORK/header.md
  {
    echo "# Ferry A/B benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Command: \`${FERRY_BIN:+FERRY_BIN=$FERRY_BIN }${FERRY_NEW_ARGS:+FERRY_NEW_ARGS=\"$FERRY_NEW_ARGS\" }BASE=${BASE:-$FERRY_BASE} RUNS=$RUNS DURATION=$DURATION bench/run.sh ab\`."
    echo "Base: $( [ -n "${BASE:-}" ] && git rev-parse --short "$BASE" || echo "$FERRY_BASE"); new: ${FERRY_BIN:-$(git rev-parse --short HEAD)$(git diff --quiet || echo ' plus uncommitted changes')}."
    echo
    echo "Both Ferrys run with the same flags (\`--max-concurrent $FERRY_SLOTS\`, 512 MiB memory tier, access log to a"
    echo "file); Squid as in the full run. Every round measures each target once (wrk, 1 thread, $CONNS connections,"
    echo "${DURATION} s). new/base per round is the ratio of the two runs of the same round."
  } >"$HEADER"
  python3 "$ROOT/bench/tools/report.py" --ab "$RESULTS" "$HEADER" | tee "$ROOT/bench/results/ab-latest.md"
  exit 0
fi

SQUID_VERSION=$(squid -v | head -1 | awk '{ print $4 }')
NGINX_VERSION=$(nginx -v 2>&1 | sed 's|.*nginx/||')
VARNISH_VERSION=$(varnishd -V 2>&1 | sed -n 's/.*varnish-\([0-9.]*\).*/\1/p' | head -1)
ATS_VERSION=$(traffic_server -V 2>&1 | awk '/^Traffic Server/ { print $3; exit }')
record_label squid "Squid $(cut -d. -f1,2 <<<"$SQUID_VERSION")"
record_label ats "Apache Traffic Server $(cut -d. -f1,2 <<<"$ATS_VERSION")"
record_label nginx-cache "nginx $(cut -d. -f1,2 <<<"$NGINX_VERSION") \`proxy_cache\`"
record_label varnish "Varnish $(cut -d. -f1,2 <<<"$VARNISH_VERSION")"
record_label relay "HAProxy $(haproxy -v | awk 'NR == 1 { print $3 }' | cut -d. -f1,2) (relay only, no cache)"

start_squid
start_squid squid-nolog "$SQUID_NOLOG_PORT"
start_ats
start_nginx_cache
start_varnish
start_ferry ferry "$FERRY_PORT" --max-concurrent $FERRY_SLOTS
start_ferry ferry-default "$FERRY5_PORT"
PROXIES=("squid:$SQUID_PORT" "squid-nolog:$SQUID_NOLOG_PORT" "ats:$ATS_PORT" "nginx-cache:$NGINX_CACHE_PORT"
  "varnish:$VARNISH_PORT" "ferry:$FERRY_PORT" "ferry-default:$FERRY5_PORT")
# The caches of scenarios (c) and (d), each with one instance.
CACHES=("squid:$SQUID_PORT" "ats:$ATS_PORT" "nginx-cache:$NGINX_CACHE_PORT" "varnish:$VARNISH_PORT" "ferry:$FERRY_PORT")

# --- (a) cache hit, 1 KiB ---------------------------------------------------------
log "(a) cache hit, 1 KiB, $CONNS connections"
URL=http://$ORIGIN/1k.bin
TARGETS=("direct:$ORIGIN")
for p in "${PROXIES[@]}"; do
  echo "  ${p%%:*} second request: $(second_fetch "127.0.0.1:${p#*:}" "$URL")" >&2
  TARGETS+=("${p%%:*}:127.0.0.1:${p#*:}")
done
wrk_rounds a "$URL" "${TARGETS[@]}"

# --- (b) miss path, no-store -------------------------------------------------------
log "(b) miss path (no-store), 1 KiB, $CONNS connections"
for p in "${PROXIES[@]}"; do
  echo "  ${p%%:*} second no-store request: $(second_fetch "127.0.0.1:${p#*:}" "http://$ORIGIN/nostore/1k.bin")" >&2
done
# HAProxy joins (b) only: it relays, it does not cache.
start_relay
wrk_rounds b "http://$ORIGIN/nostore/1k.bin" "${TARGETS[@]}" "relay:127.0.0.1:$RELAY_PORT"
stop_relay

# --- (c) 100 MiB object --------------------------------------------------------------
log "(c) 100 MiB object: first fetch and second fetch, peak RSS"
stop_squid; stop_squid squid-nolog; stop_ferry ferry; stop_ferry ferry-default
stop_ats; stop_nginx_cache; stop_varnish
start_squid
start_ats
start_nginx_cache
start_varnish
start_ferry ferry "$FERRY_PORT" --max-concurrent $FERRY_SLOTS
for run in $(seq 1 "$RUNS"); do
  bps=$(curl -s -o /dev/null -w '%{speed_download}' "http://$ORIGIN/100m.bin")
  record c direct miss_mbps "$(python3 -c "print(round($bps / 1e6, 1))")"
done
for p in "${CACHES[@]}"; do
  for run in $(seq 1 "$RUNS"); do
    url="http://$ORIGIN/100m.bin?run=$run"
    miss=$(curl -s -o /dev/null -w '%{speed_download}' -x "http://127.0.0.1:${p#*:}" "$url")
    # Let a proxy that writes to disk after answering finish storing.
    sleep 1
    before=$(origin_requests)
    hit=$(curl -s -o /dev/null -D "$WORK/headers" -w '%{speed_download}' -x "http://127.0.0.1:${p#*:}" "$url")
    after=$(origin_requests)
    echo "  ${p%%:*} run $run: miss $miss B/s, hit $hit B/s, the second: $(cache_evidence "$WORK/headers" "$before" "$after")" >&2
    record c "${p%%:*}" miss_mbps "$(python3 -c "print(round($miss / 1e6, 1))")"
    record c "${p%%:*}" hit_mbps "$(python3 -c "print(round($hit / 1e6, 1))")"
  done
done
record c squid peak_rss_mib "$(python3 -c "print(round($(proc_kib "$(squid_pid)" VmHWM) / 1024, 1))")"
record c ferry peak_rss_mib "$(python3 -c "print(round($(proc_kib "$(ferry_pid ferry)" VmHWM) / 1024, 1))")"

# --- (d) idle keep-alive connections ------------------------------------------------
log "(d) $IDLE_CONNS idle keep-alive client connections"
# Every round starts every server afresh (the origin too, measured as
# "direct"), so each figure is the memory for the connections alone, not what
# an earlier round left allocated.
for run in $(seq 1 "$RUNS"); do
  stop_squid; stop_ferry ferry; stop_ats; stop_nginx_cache; stop_varnish
  stop_nginx "$WORK/nginx.pid"
  start_origin
  start_squid
  start_ats
  start_nginx_cache
  start_varnish
  # One client holds them all: lift the per-client and total connection caps.
  start_ferry ferry "$FERRY_PORT" --max-concurrent $FERRY_SLOTS \
    --max-connections $((IDLE_CONNS * 2)) --max-connections-per-client $((IDLE_CONNS * 2)) \
    --header-timeout 120
  for p in "direct:$ORIGIN_PORT" "${CACHES[@]}"; do
    name=${p%%:*}
    port=${p#*:}
    # Two requests: the object is cached and the hit path has run once.
    for _ in 1 2; do
      if [ "$name" = direct ]; then
        curl -s -o /dev/null "http://$ORIGIN/1k.bin"
      else
        curl -s -o /dev/null -x "http://127.0.0.1:$port" "http://$ORIGIN/1k.bin"
      fi
    done
    sleep 1
    before=$(rss_kib "$name")
    rm -f "$WORK/idle.ready"
    python3 "$ROOT/bench/tools/http_load.py" idle --proxy "127.0.0.1:$port" \
      --url "http://$ORIGIN/1k.bin" --count "$IDLE_CONNS" --hold 60 --ready "$WORK/idle.ready" >&2 &
    holder=$!
    for _ in $(seq 1 600); do [ -f "$WORK/idle.ready" ] && break; sleep 0.1; done
    # The figure is what idle connections hold once settled: the lowest of
    # 20 s of samples (Ferry lets go of a quiet connection's HTTP/1 state
    # after 1-2 s, and its allocator returns the pages within about 10 s).
    rss=$(rss_kib "$name")
    for _ in $(seq 1 20); do
      sleep 1
      now=$(rss_kib "$name")
      [ "$now" -lt "$rss" ] && rss=$now
    done
    opened=$(cat "$WORK/idle.ready" 2>/dev/null || echo 0)
    # Still open after the 20 s: the holder's established sockets to the port.
    held=$(ss -Htnp state established "( dport = :$port )" | grep -c "pid=$holder," || true)
    echo "  $name run $run: $opened connections opened, $held still open after 20 s, RSS $before KiB before, $rss KiB with them" >&2
    [ "$held" -lt "$IDLE_CONNS" ] && echo "  WARNING: $name holds only $held of $IDLE_CONNS idle connections" >&2
    record d "$name" rss_before_mib "$(python3 -c "print(round($before / 1024, 1))")"
    record d "$name" rss_mib "$(python3 -c "print(round($rss / 1024, 1))")"
    record d "$name" requested "$IDLE_CONNS"
    record d "$name" connections "$opened"
    record d "$name" held "$held"
    [ "$opened" -gt 0 ] && record d "$name" kib_per_conn "$(python3 -c "print(round(($rss - $before) / $opened, 2))")"
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
  done
done
# (e) and (f) are Squid against Ferry only.
stop_ats; stop_nginx_cache; stop_varnish

# --- (e) collapsed forwarding ----------------------------------------------------------
log "(e) 200 concurrent requests for one cold URL"
for p in "squid:$SQUID_PORT" "ferry:$FERRY_PORT"; do
  for run in $(seq 1 "$RUNS"); do
    tag="${p%%:*}-$run"
    result=$(python3 "$ROOT/bench/tools/http_load.py" burst --proxy "127.0.0.1:${p#*:}" \
      --url "http://$ORIGIN/cold/1m.bin?burst=$tag" --count 200 --expect-bytes $((1024 * 1024)))
    sleep 0.5
    origin_hits=$(grep -c "burst=$tag " "$WORK/logs/cold.log" || true)
    echo "  $tag: $result, origin saw $origin_hits" >&2
    record e "${p%%:*}" origin_requests "$origin_hits"
    record e "${p%%:*}" complete "$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['complete'])" "$result")"
  done
done

# --- (f) hit path as the cache grows --------------------------------------------------
log "(f) hits with 1,000 and with 100,000 cached objects"
stop_squid; stop_ferry ferry
start_squid
start_ferry ferry "$FERRY_PORT" --max-concurrent $FERRY_SLOTS
for n in 1000 100000; do
  for p in "squid:$SQUID_PORT" "ferry:$FERRY_PORT"; do
    warm=$(python3 "$ROOT/bench/tools/http_load.py" warm --proxy "127.0.0.1:${p#*:}" \
      --base "http://$ORIGIN/obj/" --count $n)
    echo "  ${p%%:*} warm-up of $n objects: $warm" >&2
  done
  # The warm-up leaves hundreds of MB of new files for the kernel to write
  # back; flush them first so the writeback does not share the cores with
  # the measurement of the hit path.
  sync
  metric=$([ $n = 1000 ] && echo rps_1k || echo rps_100k)
  for run in $(seq 1 "$RUNS"); do
    for p in "squid:$SQUID_PORT" "ferry:$FERRY_PORT"; do
      out=$(NOBJ=$n BASE="http://$ORIGIN/obj/" wrk -t1 -c$CONNS -d"${DURATION}s" \
        -s "$ROOT/bench/wrk/cycle.lua" "http://127.0.0.1:${p#*:}" | tail -1)
      echo "  ${p%%:*} $n objects run $run: $out" >&2
      record f "${p%%:*}" "$metric" "$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['rps'])" "$out")"
    done
  done
done
stop_squid; stop_ferry ferry

# --- the table ------------------------------------------------------------------------
HEADER=$WORK/header.md
{
  echo "# Ferry benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`RUNS=$RUNS DURATION=$DURATION IDLE_CONNS=$IDLE_CONNS bench/run.sh\` (commit $(git rev-parse --short HEAD))."
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -r)."
  echo "Peers (Debian's packages): nginx $NGINX_VERSION (the origin, 1 worker; and a second instance as a \`proxy_cache\`, 1 worker),"
  echo "Squid $SQUID_VERSION (one process, \`-N\`), Apache Traffic Server $ATS_VERSION (\`traffic_server\`, its default threads),"
  echo "Varnish $VARNISH_VERSION (manager and child, default thread pools), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')."
  echo
  echo "Everything runs on 127.0.0.1 and shares the $(nproc) cores, unpinned: wrk (1 thread, $CONNS connections,"
  echo "${DURATION} s a run), the origin (nginx, 1 worker) and the proxy under test (Squid, nginx: one process"
  echo "serving; ATS, Varnish, Ferry: their worker threads). Ferry runs with \`--max-concurrent $FERRY_SLOTS\` (column"
  echo "Ferry) and with its default of 5 (column Ferry (max-concurrent 5)). Every cache gets a 512 MiB memory tier"
  echo "(Squid \`cache_mem 512 MB\`, ATS \`ram_cache.size\`, Varnish \`-s malloc,512M\`, Ferry \`--memory-cache-size 512MiB\`;"
  echo "nginx caches in files and the page cache), Squid, ATS, nginx and Ferry a disk cache. Squid, ATS, nginx and Ferry"
  echo "write an access-log line per request to a file; Varnish logs to its shared memory only. CPU is user + system time"
  echo "of all a target's processes and threads. Runs are interleaved: each round of (a), (b) and (f) measures every target"
  echo "once, so a slow spell of the shared machine hits all alike. Scenarios (c)–(f) restart the servers so each starts"
  echo "empty; (e) and (f) are Squid against Ferry only."
} >"$HEADER"
python3 "$ROOT/bench/tools/report.py" "$RESULTS" "$HEADER" | tee "$ROOT/bench/results/latest.md"
cp "$RESULTS" "$ROOT/bench/results/latest.jsonl"
