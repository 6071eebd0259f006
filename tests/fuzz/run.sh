#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build-fuzz/ and runs each one for a fixed time from
# the committed corpus (tests/fuzz/corpus/<target>/, read only: what a run finds goes to
# build-fuzz/corpus/<target>/). Fails on any crash, sanitizer report or broken contract; the
# input that did it is build-fuzz/artifacts/<target>-crash-*, and `build-fuzz/<target> <file>`
# replays it.
#
#   tests/fuzz/run.sh                 CI: 20 s per target, about a minute in all
#   tests/fuzz/run.sh --long [secs]   600 s per target (or secs), one after another, and writes
#                                     the figures to bench/results/fuzz.json
#   tests/fuzz/run.sh --build         build only
#   SHIELD_FUZZ_TARGETS="fuzz_bucket" limits the run to some targets
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build-fuzz"
seconds=20
long=0
build_only=0
case "${1:-}" in
  --long) long=1; seconds=${2:-600} ;;
  --build) build_only=1 ;;
  "") ;;
  *) echo "usage: $0 [--long [seconds] | --build]" >&2; exit 2 ;;
esac
targets=${SHIELD_FUZZ_TARGETS:-"fuzz_args fuzz_stored fuzz_bucket fuzz_gcra fuzz_limit"}

# clang with libFuzzer and the sanitizer runtimes, and Boost.Multiprecision (header-only).
missing=()
command -v clang++ >/dev/null 2>&1 || missing+=(clang)
[ -d /usr/include/boost/multiprecision ] || missing+=(libboost-dev)
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
  missing+=(libclang-rt-dev)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
. "$root/scripts/lib.sh"
shield_apt_install "${missing[@]}"

cmake -S "$root/tests/fuzz" -B "$build" -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
mkdir -p "$build"
# shellcheck disable=SC2086
if ! cmake --build "$build" -j"$(nproc)" --target $targets >"$build/build.log" 2>&1; then
  cat "$build/build.log" >&2
  exit 1
fi
[ "$build_only" -eq 0 ] || exit 0

mkdir -p "$build/artifacts" "$build/logs"
status=0
results=()
for target in $targets; do
  corpus="$build/corpus/$target"
  mkdir -p "$corpus" "$root/tests/fuzz/corpus/$target"
  dict=()
  case "$target" in
    fuzz_args) dict=(-dict="$root/tests/fuzz/args.dict") ;;
    fuzz_stored) dict=(-dict="$root/tests/fuzz/stored.dict") ;;
  esac
  log="$build/logs/$target.log"
  echo "== $target: ${seconds}s"
  started=$(date +%s)
  # One process, one job: the machine's other work keeps its cores.
  if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/$target" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=4096 -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-" \
    "$corpus" "$root/tests/fuzz/corpus/$target" >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
    grep -E -A40 '^=== contract violated|ERROR: (AddressSanitizer|libFuzzer)|runtime error:' \
      "$log" | head -80 >&2 || tail -40 "$log" >&2
  fi
  elapsed=$(($(date +%s) - started))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # The last status line: "#N  DONE  cov: C ft: F corp: U/Sb ..."
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  echo "   $result: ${execs:-?} executions (${rate:-?}/s) in ${elapsed}s, coverage ${cov:-?} edges," \
    "${ft:-?} features, corpus ${corp:-?} inputs"
  results+=("{\"target\": \"$target\", \"result\": \"$result\", \"seconds\": $elapsed, \"executions\": ${execs:-0}, \"execs_per_second\": ${rate:-0}, \"coverage_edges\": ${cov:-0}, \"features\": ${ft:-0}, \"corpus_inputs\": ${corp:-0}}")
done

if [ "$long" -eq 1 ]; then
  out="$root/bench/results/fuzz.json"
  mkdir -p "$(dirname "$out")"
  commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  {
    echo "{"
    echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
    echo "  \"commit\": \"$commit\","
    echo "  \"seconds_per_target\": $seconds,"
    echo "  \"compiler\": \"$(clang++ --version | head -1)\","
    echo "  \"machine\": \"$(nproc) cores; one fuzz process at a time\","
    echo "  \"targets\": ["
    for i in "${!results[@]}"; do
      sep=","
      [ "$i" -eq $((${#results[@]} - 1)) ] && sep=""
      echo "    ${results[$i]}$sep"
    done
    echo "  ]"
    echo "}"
  } >"$out"
  echo "fuzz: figures in $out"
fi
exit "$status"
