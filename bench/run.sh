#!/usr/bin/env bash
# Runs Shield's benchmark (a few minutes on two cores) and writes bench/results/:
# results.md (the table), results.json and chart.png. Installs and builds what it needs.
# Extra arguments go to bench.py (--rounds, --requests, --memory-keys, --only, --quick).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
SHIELD_DEPS=bench "$root/scripts/install-deps.sh"
# Its own Release build, so a test run's build/ is left alone. SHIELD_BUILD_BENCH builds the floor
# module (bench/floor) and the core's Google Benchmark, which only the benchmark uses.
SHIELD_BUILD_DIR="$root/build-bench" SHIELD_BUILD_TYPE=Release "$root/scripts/build.sh" \
  -DSHIELD_BUILD_BENCH=ON -DSHIELD_BUILD_TESTS=OFF
if [ ! -d "$here/node/node_modules/rate-limiter-flexible" ]; then
  (cd "$here/node" && npm install --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null)
fi
exec /usr/bin/python3 "$here/bench.py" --module "$root/build-bench/libredis_shield.so" "$@"
