#!/usr/bin/env bash
# Static analysis, failing on any finding:
#   - clang-tidy (the checks of .clang-tidy) over src/ and tests/unit/, with the compile commands
#     of a fresh CMake configuration in build-analysis/ (configured only: nothing is compiled);
#   - cppcheck over src/ (warning, performance, portability).
# Installs clang-tidy and cppcheck with apt-get when they are missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build="$root/build-analysis"

missing=()
command -v run-clang-tidy >/dev/null 2>&1 || missing+=(clang-tidy)
command -v cppcheck >/dev/null 2>&1 || missing+=(cppcheck)
. "$root/scripts/lib.sh"
shield_apt_install "${missing[@]}"

echo "== clang-tidy: src/ and tests/unit/"
cmake -S "$root" -B "$build" -DSHIELD_BUILD_TESTS=ON -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
# run-clang-tidy exits non-zero when any file has a finding (.clang-tidy: WarningsAsErrors '*').
run-clang-tidy -p "$build" -quiet -j "$(nproc)" "^$root/(src|tests/unit)/" >"$build/clang-tidy.log" 2>&1 ||
  tidy_failed=1
# Findings without the colour codes, each once (a header's finding shows in every file that
# includes it).
sed -e 's/\x1b\[[0-9;]*m//g' "$build/clang-tidy.log" | grep -E '^/.*(warning|error):' | sort -u || true
if [ "${tidy_failed:-0}" -eq 1 ]; then
  tail -20 "$build/clang-tidy.log" >&2
  echo "clang-tidy: findings above (full log: $build/clang-tidy.log)" >&2
  exit 1
fi
echo "clang-tidy: clean"

echo "== cppcheck: src/"
# Suppressed, with the reason:
#   missingIncludeSystem  the standard library's headers are the compiler's business, not cppcheck's
#   unmatchedSuppression  the suppressions below need not match on every cppcheck version
#   (and, inline where it stands, uninitMemberVar for ScratchArray in glue.hpp: its storage is raw
#   on purpose, the items are constructed in it with placement new)
cppcheck --enable=warning,performance,portability --error-exitcode=1 --std=c++20 --language=c++ \
  --inline-suppr --quiet -I "$root/src" -I "$root/.deps/redismodule" \
  --suppress=missingIncludeSystem --suppress=unmatchedSuppression \
  "$root/src"
echo "cppcheck: clean"
