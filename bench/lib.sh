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
