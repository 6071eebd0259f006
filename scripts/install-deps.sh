#!/usr/bin/env bash
# Installs what Shield needs on a fresh Debian bookworm machine. Idempotent. Run as root (or with
# sudo available). SHIELD_DEPS says how much:
#   run    build the module and run it: compiler, cmake, redis-server, redis-tools
#   bench  run, plus what bench/run.sh uses: redis-py, matplotlib, Google Benchmark, valgrind, Node.js
#   all    (default) run, plus everything the test suite uses, and project-local pieces in .deps/:
#            .deps/valkey/bin/valkey-server   Valkey 8 from bookworm-backports, unpacked, not installed
#            tests/cluster/node_modules       ioredis and node-redis for the cluster tests
# Every kind also puts redismodule.h, from Debian's redis source package, in .deps/redismodule/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${SHIELD_DEPS:-all}
case "$what" in run | bench | all) ;; *) echo "install-deps: SHIELD_DEPS must be run, bench or all" >&2; exit 2 ;; esac
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
lists=/etc/apt/sources.list.d

# Source entries (for redismodule.h) and bookworm-backports (for Valkey 8), made from the
# machine's own apt source so that they use the same mirror. Both apt formats are handled.
if [ -f "$lists/debian.sources" ]; then
  [ -f "$lists/shield-src.sources" ] ||
    sed -e 's/^Types: deb$/Types: deb-src/' "$lists/debian.sources" | $sudo tee "$lists/shield-src.sources" >/dev/null
  [ -f "$lists/shield-backports.sources" ] ||
    awk 'BEGIN{RS="";ORS="\n\n"} NR==1' "$lists/debian.sources" |
    sed -e 's/^Suites: .*/Suites: bookworm-backports/' | $sudo tee "$lists/shield-backports.sources" >/dev/null
elif [ -f /etc/apt/sources.list ]; then
  [ -f "$lists/shield-src.list" ] ||
    grep -E '^deb ' /etc/apt/sources.list | sed -e 's/^deb /deb-src /' | $sudo tee "$lists/shield-src.list" >/dev/null
  [ -f "$lists/shield-backports.list" ] ||
    grep -E '^deb [^ ]+ bookworm ' /etc/apt/sources.list | head -n1 |
    sed -E 's/^deb ([^ ]+) bookworm .*/deb \1 bookworm-backports main/' | $sudo tee "$lists/shield-backports.list" >/dev/null
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
packages=(build-essential cmake redis-server redis-tools ca-certificates)
case "$what" in
  bench) packages+=(python3-redis python3-matplotlib libbenchmark-dev valgrind) ;;
  all) packages+=(libgtest-dev libbenchmark-dev python3-redis python3-pytest python3-yaml clang-format) ;;
esac
# Some images ship their own Node.js (with npm) that conflicts with Debian's; keep it if present.
if [ "$what" != run ] && ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

# Debian's redis-server package starts a service on 6379 where systemd runs; Shield's scripts
# start their own servers, and scripts/run.sh wants that port.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet redis-server 2>/dev/null; then
  $sudo systemctl disable --now redis-server || true
fi

"$root/scripts/fetch-redismodule-h.sh" "$root/.deps/redismodule"

if [ "$what" = all ]; then
  if [ ! -x "$root/.deps/valkey/bin/valkey-server" ]; then
    work=$(mktemp -d)
    if ! (cd "$work" && apt-get download -qq valkey-tools); then
      echo "install-deps: could not download valkey-tools from bookworm-backports (is that suite in apt's sources?)" >&2
      exit 1
    fi
    $sudo apt-get install -y -qq --no-install-recommends libjemalloc2 liblzf1 libssl3 libatomic1 >/dev/null
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
