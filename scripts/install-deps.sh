#!/usr/bin/env bash
# Installs everything Shield needs to build, run and test on a fresh Debian bookworm machine.
# Idempotent. Run as root (or with sudo). Leaves project-local pieces in .deps/:
#   .deps/redismodule/redismodule.h  from Debian's redis source package
#   .deps/valkey/bin/valkey-server   Valkey 8 from bookworm-backports, unpacked, not installed
#   tests/cluster/node_modules       ioredis and node-redis for the cluster tests
# Set SHIELD_DEPS=run to install only what building and running the module needs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${SHIELD_DEPS:-all}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

sources=/etc/apt/sources.list.d/debian.sources
if [ -f "$sources" ]; then
  # Source entries (for redismodule.h) and bookworm-backports (for Valkey 8), both made from the
  # machine's own apt source so they use the same mirror.
  if [ ! -f /etc/apt/sources.list.d/shield-src.sources ]; then
    sed -e 's/^Types: deb$/Types: deb-src/' "$sources" | $sudo tee /etc/apt/sources.list.d/shield-src.sources >/dev/null
  fi
  if [ "$what" = all ] && [ ! -f /etc/apt/sources.list.d/shield-backports.sources ]; then
    awk 'BEGIN{RS="";ORS="\n\n"} NR==1' "$sources" |
      sed -e 's/^Suites: .*/Suites: bookworm-backports/' | $sudo tee /etc/apt/sources.list.d/shield-backports.sources >/dev/null
  fi
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
packages=(build-essential cmake redis-server redis-tools ca-certificates)
if [ "$what" = all ]; then
  packages+=(libgtest-dev libbenchmark-dev python3-redis python3-pytest python3-yaml clang-format)
  # Some images ship their own Node.js (with npm) that conflicts with Debian's; keep it if present.
  command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
fi
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

# Debian's redis-server package may start a service on 6379; Shield's scripts start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
  $sudo systemctl stop redis-server || true
fi

"$root/scripts/fetch-redismodule-h.sh" "$root/.deps/redismodule"

if [ "$what" = all ]; then
  if [ ! -x "$root/.deps/valkey/bin/valkey-server" ]; then
    work=$(mktemp -d)
    (cd "$work" && apt-get download -qq valkey-tools 2>/dev/null)
    $sudo apt-get install -y -qq --no-install-recommends libjemalloc2 liblzf1 libssl3 libatomic1 >/dev/null
    mkdir -p "$root/.deps/valkey"
    dpkg-deb -x "$work"/valkey-tools_*.deb "$work/x"
    mkdir -p "$root/.deps/valkey/bin"
    cp "$work/x/usr/bin/valkey-check-rdb" "$root/.deps/valkey/bin/valkey-multi"
    cp "$work/x/usr/bin/valkey-cli" "$root/.deps/valkey/bin/valkey-cli"
    # The server is a multi-call binary that acts on the name it runs under.
    ln -sf valkey-multi "$root/.deps/valkey/bin/valkey-server"
    rm -rf "$work"
  fi
  if [ ! -d "$root/tests/cluster/node_modules/ioredis" ] || [ ! -d "$root/tests/cluster/node_modules/redis" ]; then
    (cd "$root/tests/cluster" && npm install --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null)
  fi
fi
echo "install-deps: done ($what)"
