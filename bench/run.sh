#!/usr/bin/env bash
# Runs Shield's benchmark (a few minutes on two cores) and writes bench/results/:
# results.md (the table), results.json and chart.png. Installs and builds what it needs.
# Extra arguments go to bench.py (--rounds, --requests, --memory-keys).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
SHIELD_DEPS=run "$root/scripts/install-deps.sh"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  python3-redis python3-matplotlib libbenchmark-dev valgrind >/dev/null
# Its own Release build, so a test run's build/ is left alone.
SHIELD_BUILD_DIR="$root/build-bench" SHIELD_BUILD_TYPE=Release "$root/scripts/build.sh" \
  -DSHIELD_BUILD_BENCH=ON -DSHIELD_BUILD_TESTS=OFF
if command -v npm >/dev/null 2>&1 && [ ! -d "$here/node/node_modules/rate-limiter-flexible" ]; then
  (cd "$here/node" && npm install --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null) || true
fi
exec /usr/bin/python3 "$here/bench.py" --module "$root/build-bench/libredis_shield.so" "$@"
