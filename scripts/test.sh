#!/usr/bin/env bash
# Sets up and runs the whole test suite on a fresh Debian bookworm machine: installs what is
# missing, builds with warnings as errors in every build type, checks formatting, runs the
# sanitizer pass, and runs every test through ctest (GoogleTest unit tests, the exported-symbol
# check, the integration suite on each of the seven servers of the matrix, the cluster suite on
# three of them, and the packaging tests).
#
# `scripts/test.sh --quick` is the tier to run while working (a few minutes on a warm machine):
# it builds, runs the unit tests (ctest -L unit) and the integration suite on Redis 7.0 (Debian's
# redis-server), and nothing else. The full run without it is what CI runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
SHIELD_DEPS=test "$root/scripts/install-deps.sh"
if [ "${1:-}" = "--quick" ]; then
  shift
  "$root/scripts/build.sh" -DSHIELD_BUILD_TESTS=ON
  cd "$root/build"
  ctest --output-on-failure -L unit "$@"
  exec ctest --output-on-failure --timeout 900 -R '^integration_redis7$' "$@"
fi
"$root/scripts/install-servers.sh"            # the server matrix in .deps/servers/; builds only what changed
"$root/scripts/install-packaging-deps.sh"     # podman, runc, debootstrap, docker-compose, musl-tools
# What the client libraries' tests use (web frameworks, Go, npm packages): one script per language.
for script in "$root"/tests/clients/*/install-deps.sh; do
  [ ! -f "$script" ] || bash "$script"
done
"$root/scripts/build.sh" -DSHIELD_BUILD_TESTS=ON

# Instructions per call under callgrind, the same on every run: a Shield command's workload that costs
# more than 3% above bench/results/instructions-baseline.json fails (docs/benchmarks.md). About 40 s.
echo "== callgrind instruction gate"
/usr/bin/python3 "$root/bench/instructions.py" --check --module "${SHIELD_BUILD_DIR:-$root/build}/libredis_shield.so"

# Warnings are errors in every standard build type: a packager's Release or MinSizeRel build with
# the unit tests must work too (GCC warns differently at -O3 and -Os).
for type in Release MinSizeRel; do
  echo "== $type build with the unit tests"
  dir="$root/build-$(echo "$type" | tr '[:upper:]' '[:lower:]')"
  SHIELD_BUILD_DIR="$dir" SHIELD_BUILD_TYPE=$type "$root/scripts/build.sh" -DSHIELD_BUILD_TESTS=ON
  "$dir/tests/shield_unit_tests" --gtest_brief=1
done

echo "== clang-format"
files=$(git ls-files '*.cpp' '*.hpp' 2>/dev/null || find src tests bench -name '*.[ch]pp')
clang-format --dry-run --Werror $files
echo "formatting ok"

echo "== static analysis (clang-tidy, cppcheck)"
"$root/scripts/static-analysis.sh"
echo "== fuzzing against the exact model (short run)"
"$root/tests/fuzz/run.sh"
echo "== valgrind memcheck: unit tests, and redis-server with the module through a slice of the integration suite"
"$root/scripts/valgrind.sh"

echo "== sanitizers: unit tests, and the integration suite on Redis 7.0 and Valkey 9.1 with an ASan+UBSan module"
SHIELD_BUILD_DIR="$root/build-asan" SHIELD_BUILD_TYPE=Debug "$root/scripts/build.sh" -DSHIELD_SANITIZE=ON
# Valkey (and Redis 7.2+) load modules with RTLD_DEEPBIND, which ASan refuses: nodeepbind.so
# drops the flag before ASan sees it.
gcc -shared -fPIC -O2 -o "$root/build-asan/nodeepbind.so" "$root/tests/support/nodeepbind.c" -ldl
(cd "$root/build-asan" &&
  ctest --output-on-failure --timeout 900 -LE 'cluster|integration|packaging|chaos|clients' &&
  SHIELD_SERVER_PRELOAD="$root/build-asan/nodeepbind.so:$(gcc -print-file-name=libasan.so)" \
    ctest --output-on-failure --timeout 900 -R '^integration_(redis7|valkey9[.]1)$')

echo "== ctest"
cd "$root/build"
ctest --output-on-failure --timeout 1500 "$@"
