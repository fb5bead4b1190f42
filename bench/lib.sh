# shellcheck shell=bash
# Shared by bench/run.sh and bench/tls.sh (sourced, not run).

log() { printf '\n== %s\n' "$*" >&2; }

# Installs the Debian packages behind the `command:package` pairs whose
# command is missing.
install_missing() {
  local need=() tool sudo=""
  for tool in "$@"; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  log "installing ${need[*]}"
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# Waits until something listens on 127.0.0.1:$1 (10 s at most).
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  return 1
}

# True while process $1 exists and is not a zombie (a daemon's exited master
# can linger as one until something reaps it).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat:0:1}" != Z ]
}

# Stops process $1 (SIGTERM) and waits until it has gone (10 s at most).
stop_pid() {
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    alive "$1" || break
    sleep 0.1
  done
  wait "$1" 2>/dev/null || true
}

# Process $1 and all its descendants, one pid a line.
pid_tree() {
  local child
  echo "$1"
  for child in $(pgrep -P "$1" || true); do pid_tree "$child"; done
}

# CPU time (user + system, all threads) the processes named by the arguments
# have used, in clock ticks. Parsed after the ")" that ends the command name,
# which may hold spaces; a process that has gone counts nothing.
cpu_ticks_of() {
  local pid files=()
  for pid in "$@"; do [ -r "/proc/$pid/stat" ] && files+=("/proc/$pid/stat"); done
  [ ${#files[@]} -eq 0 ] && { echo 0; return; }
  { cat "${files[@]}" 2>/dev/null || true; } | awk '{ sub(/.*\) /, ""); t += $12 + $13 } END { print t + 0 }'
}

# The sum of a /proc/PID/status field (in KiB: VmRSS, VmHWM) over the
# processes named by the arguments.
kib_of() { # field pid...
  local field=$1 pid files=()
  shift
  for pid in "$@"; do [ -r "/proc/$pid/status" ] && files+=("/proc/$pid/status"); done
  [ ${#files[@]} -eq 0 ] && { echo 0; return; }
  { cat "${files[@]}" 2>/dev/null || true; } | awk -v f="$field:" '$1 == f { t += $2 } END { print t + 0 }'
}
