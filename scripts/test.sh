#!/usr/bin/env bash
# Runs Ferry's whole test suite on a fresh machine: installs the system tools the
# tests drive (curl, HAProxy, a real browser and NSS certutil, the Prometheus client
# library's metrics parser, the HTTP caching test suite and a browser driver
# from npm), then runs every unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# certutil: the browser test trusts Ferry's CA in an NSS database, as users do.
command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)
# The farm test puts three nodes behind a real HAProxy (Debian's, 2.6).
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
# The dashboard test checks /metrics with the reference OpenMetrics parser.
/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1 || need+=(python3-prometheus-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The public HTTP caching test suite (tests/conformance.rs runs it through
# the proxy); versions pinned by conformance/package-lock.json.
command -v npm >/dev/null 2>&1 || { echo "npm is needed for the conformance suite" >&2; exit 1; }
npm ci --prefix conformance --no-audit --no-fund --loglevel=error
# puppeteer-core drives the system's Chromium in the dashboard test (no
# browser download: it uses /usr/bin/chromium).
PUPPETEER_SKIP_DOWNLOAD=1 npm ci --prefix tests/browser-driver --no-audit --no-fund --loglevel=error

# Every unit and integration test, tests/layering.rs (import circles, the
# proxy's floors, file lengths) among them.
cargo test --workspace --locked "$@"
