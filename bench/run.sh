#!/usr/bin/env bash
# Ferry against Squid and against the origin served directly, side by side in
# one run on this machine. See bench/README.md for what each scenario means.
#
#   bench/run.sh            # RUNS=3 DURATION=10 by default
#   BASE=<rev> bench/run.sh ab   # A/B: scenarios (a) and (b) only, Ferry at
#                                # <rev> (default HEAD~1) against the working
#                                # tree, interleaved, with Squid beside them
#
# Installs wrk, nginx and squid from Debian's packages if missing, builds Ferry
# in release mode (FERRY_BIN / FERRY_BASE_BIN name ready binaries instead),
# runs everything on 127.0.0.1, prints the table and writes it to
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
install_missing wrk:wrk nginx:nginx-light squid:squid curl:curl python3:python3
# Debian starts the packaged services; they are not part of the measurement.
(service squid stop; service nginx stop) >/dev/null 2>&1 || true

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

read -r ORIGIN_PORT SQUID_PORT SQUID_NOLOG_PORT FERRY_PORT FERRY5_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)
ORIGIN=127.0.0.1:$ORIGIN_PORT

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  for pidfile in "$WORK"/squid*/squid.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT

record() { # scenario target metric value
  printf '{"scenario":"%s","target":"%s","metric":"%s","value":%s}\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
}

# --- the origin: nginx --------------------------------------------------------
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
  }
}
EOF
nginx -c "$WORK/nginx.conf" -p "$WORK"
wait_port "$ORIGIN_PORT"

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
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
}
squid_pid() { cat "$WORK/${1:-squid}/squid.pid"; }
ferry_pid() { cat "$WORK/$1.pid"; }

proc_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# CPU time (user + system, all threads) a process has used, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# The process serving a target: nginx's worker for direct, else the proxy.
serving_pid() {
  case $1 in
    direct) pgrep -P "$(cat "$WORK/nginx.pid")" | head -1 ;;
    squid*) squid_pid "$1" ;;
    *) ferry_pid "$1" ;;
  esac
}

# Runs a command and prints the CPU seconds (user + system) it used, on fd 3.
cpu_of() { python3 -c '
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=False)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(u.ru_utime + u.ru_stime, file=open(3, "w", closefd=False))' "$@"; }

# One wrk run through a proxy (absolute form) or straight at the origin; also
# the CPU the serving process and wrk itself spent per request.
wrk_once() { # scenario target host:port target-url run
  local scen=$1 target=$2 hostport=$3 url=$4 run=$5 out pid before after wrk_cpu
  pid=$(serving_pid "$target")
  before=$(cpu_ticks "$pid")
  if [ "$target" = direct ]; then
    { out=$(cpu_of wrk -t1 -c$CONNS -d"${DURATION}s" -s "$ROOT/bench/wrk/absolute.lua" "http://$hostport${url#http://$ORIGIN}" 3>"$WORK/wrk.cpu" | tail -1); }
  else
    { out=$(TARGET=$url cpu_of wrk -t1 -c$CONNS -d"${DURATION}s" -s "$ROOT/bench/wrk/absolute.lua" "http://$hostport" 3>"$WORK/wrk.cpu" | tail -1); }
  fi
  after=$(cpu_ticks "$pid")
  wrk_cpu=$(cat "$WORK/wrk.cpu")
  echo "  $scen $target run $run: $out cpu_ticks=$((after - before)) wrk_cpu_s=$wrk_cpu" >&2
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
  log "A/B (b) miss path (no-store), 1 KiB, $CONNS connections"
  wrk_rounds b "http://$ORIGIN/nostore/1k.bin" "${TARGETS[@]}"
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

start_squid
start_squid squid-nolog "$SQUID_NOLOG_PORT"
start_ferry ferry "$FERRY_PORT" --max-concurrent $FERRY_SLOTS
start_ferry ferry-default "$FERRY5_PORT"
PROXIES=("squid:$SQUID_PORT" "squid-nolog:$SQUID_NOLOG_PORT" "ferry:$FERRY_PORT" "ferry-default:$FERRY5_PORT")

# --- (a) cache hit, 1 KiB ---------------------------------------------------------
log "(a) cache hit, 1 KiB, $CONNS connections"
URL=http://$ORIGIN/1k.bin
TARGETS=("direct:$ORIGIN")
for p in "${PROXIES[@]}"; do
  x_cache "127.0.0.1:${p#*:}" "$URL" >/dev/null
  echo "  ${p%%:*} second request: X-Cache $(x_cache "127.0.0.1:${p#*:}" "$URL")" >&2
  TARGETS+=("${p%%:*}:127.0.0.1:${p#*:}")
done
wrk_rounds a "$URL" "${TARGETS[@]}"

# --- (b) miss path, no-store -------------------------------------------------------
log "(b) miss path (no-store), 1 KiB, $CONNS connections"
wrk_rounds b "http://$ORIGIN/nostore/1k.bin" "${TARGETS[@]}"

# --- (c) 100 MiB object --------------------------------------------------------------
log "(c) 100 MiB object: first fetch and second fetch, peak RSS"
stop_squid; stop_squid squid-nolog; stop_ferry ferry; stop_ferry ferry-default
start_squid
start_ferry ferry "$FERRY_PORT" --max-concurrent $FERRY_SLOTS
for run in $(seq 1 "$RUNS"); do
  bps=$(curl -s -o /dev/null -w '%{speed_download}' "http://$ORIGIN/100m.bin")
  record c direct miss_mbps "$(python3 -c "print(round($bps / 1e6, 1))")"
done
for p in "squid:$SQUID_PORT" "ferry:$FERRY_PORT"; do
  for run in $(seq 1 "$RUNS"); do
    url="http://$ORIGIN/100m.bin?run=$run"
    miss=$(curl -s -o /dev/null -w '%{speed_download}' -x "http://127.0.0.1:${p#*:}" "$url")
    # Let a proxy that writes to disk after answering finish storing.
    sleep 1
    hit=$(curl -s -o /dev/null -w '%{speed_download}' -x "http://127.0.0.1:${p#*:}" "$url")
    echo "  ${p%%:*} run $run: miss $miss B/s, hit $hit B/s, then X-Cache $(x_cache "127.0.0.1:${p#*:}" "$url")" >&2
    record c "${p%%:*}" miss_mbps "$(python3 -c "print(round($miss / 1e6, 1))")"
    record c "${p%%:*}" hit_mbps "$(python3 -c "print(round($hit / 1e6, 1))")"
  done
done
record c squid peak_rss_mib "$(python3 -c "print(round($(proc_kib "$(squid_pid)" VmHWM) / 1024, 1))")"
record c ferry peak_rss_mib "$(python3 -c "print(round($(proc_kib "$(ferry_pid ferry)" VmHWM) / 1024, 1))")"

# --- (d) idle keep-alive connections ------------------------------------------------
log "(d) $IDLE_CONNS idle keep-alive client connections"
# Every round starts both proxies afresh, so each figure is the memory for
# the connections alone, not what an earlier round left allocated.
for run in $(seq 1 "$RUNS"); do
  stop_squid; stop_ferry ferry
  start_squid
  # One client holds them all: lift the per-client and total connection caps.
  start_ferry ferry "$FERRY_PORT" --max-concurrent $FERRY_SLOTS \
    --max-connections $((IDLE_CONNS * 2)) --max-connections-per-client $((IDLE_CONNS * 2)) \
    --header-timeout 120
  for p in "squid:$SQUID_PORT" "ferry:$FERRY_PORT"; do
    name=${p%%:*}
    pid=$([ "$name" = squid ] && squid_pid || ferry_pid ferry)
    x_cache "127.0.0.1:${p#*:}" "http://$ORIGIN/1k.bin" >/dev/null
    rm -f "$WORK/idle.ready"
    python3 "$ROOT/bench/tools/http_load.py" idle --proxy "127.0.0.1:${p#*:}" \
      --url "http://$ORIGIN/1k.bin" --count "$IDLE_CONNS" --hold 60 --ready "$WORK/idle.ready" >&2 &
    holder=$!
    for _ in $(seq 1 600); do [ -f "$WORK/idle.ready" ] && break; sleep 0.1; done
    # The figure is what idle connections hold once settled: the lowest of
    # 20 s of samples (Ferry lets go of a quiet connection's HTTP/1 state
    # after 1-2 s, and its allocator returns the pages within about 10 s).
    rss=$(proc_kib "$pid" VmRSS)
    for _ in $(seq 1 20); do
      sleep 1
      now=$(proc_kib "$pid" VmRSS)
      [ "$now" -lt "$rss" ] && rss=$now
    done
    echo "  $name run $run: $(cat "$WORK/idle.ready" 2>/dev/null) connections open, RSS $rss KiB" >&2
    record d "$name" rss_mib "$(python3 -c "print(round($rss / 1024, 1))")"
    record d "$name" connections "$(cat "$WORK/idle.ready" 2>/dev/null || echo 0)"
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
  done
done

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
  echo "Command: \`RUNS=$RUNS DURATION=$DURATION bench/run.sh\` (commit $(git rev-parse --short HEAD))."
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -r)."
  echo "Peers: $(nginx -v 2>&1 | cut -d/ -f2) (origin, 1 worker), Squid $(squid -v | head -1 | awk '{print $4}') (one process, \`-N\`), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')."
  echo
  echo "Everything runs on 127.0.0.1 and shares the $(nproc) cores, unpinned: wrk (1 thread, $CONNS connections,"
  echo "${DURATION} s a run), the origin (nginx, 1 worker) and the proxy under test (Squid: one process; Ferry: its"
  echo "runtime's worker threads, one per core). Ferry runs with \`--max-concurrent $FERRY_SLOTS\` (column Ferry) and"
  echo "with its default of 5 (column Ferry (max-concurrent 5)). Both proxies get a 512 MiB memory tier"
  echo "(Squid \`cache_mem 512 MB\`, Ferry \`--memory-cache-size 512MiB\`), a disk cache and 256 MiB objects;"
  echo "both write an access-log line per request to a file. Runs are interleaved: each round of (a), (b)"
  echo "and (f) measures every target once, so a slow spell of the shared machine hits all alike."
  echo "Scenarios (c)–(f) restart the proxies so each starts empty."
} >"$HEADER"
python3 "$ROOT/bench/tools/report.py" "$RESULTS" "$HEADER" | tee "$ROOT/bench/results/latest.md"
cp "$RESULTS" "$ROOT/bench/results/latest.jsonl"
