#!/usr/bin/env bash
# valgrind memcheck, failing on any invalid access, use of uninitialised memory or definite leak:
#   1. the unit tests;
#   2. redis-server with the module, under memcheck, driven through a slice of the integration
#      suite that calls every command and its error paths (bad arguments, bad stored values,
#      wrong types, inspect, absorb_multi, refund, reset, stats, CL.THROTTLE, SHIELD.gcra,
#      SHIELD.window and SHIELD.quota, VERBOSE in RESP2 and RESP3).
#      Each server writes its report to build/valgrind/memcheck-<pid>.log; servers stop with
#      SIGTERM so that memcheck reports leaks at exit, and every report is checked here.
# Redis's own allocator (Debian's redis-server links jemalloc) is replaced by memcheck's through
# --soname-synonyms, so that the module's allocations are tracked too. scripts/valgrind-redis.supp
# names the two reports left out, with the reason. Takes about 90 seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SHIELD_BUILD_DIR:-"$root/build"}

. "$root/scripts/lib.sh"
command -v valgrind >/dev/null 2>&1 || shield_apt_install valgrind
if [ ! -x "$build/tests/shield_unit_tests" ] || [ ! -f "$build/libredis_shield.so" ]; then
  SHIELD_BUILD_DIR="$build" "$root/scripts/build.sh" -DSHIELD_BUILD_TESTS=ON
fi

memcheck=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite
  --show-leak-kinds=definite --num-callers=30)

echo "== valgrind: unit tests"
"${memcheck[@]}" --error-exitcode=1 -q "$build/tests/shield_unit_tests" --gtest_brief=1
echo "unit tests: no memcheck error, no definite leak"

echo "== valgrind: redis-server with the module, through the integration slice"
logs="$build/valgrind"
rm -rf "$logs"
mkdir -p "$logs"
slice=(
  tests/integration/test_bad_input.py
  tests/integration/test_inspect.py
  tests/integration/test_absorb_multi.py
  tests/integration/test_refund_reset.py
  tests/integration/test_verbose.py
  tests/integration/test_stats.py
  tests/integration/test_compat.py
  tests/integration/test_server_features.py
  tests/integration/test_propagation_refused.py
  tests/integration/test_acl_categories.py
  tests/integration/test_cl_throttle.py
  tests/integration/test_window_quota.py
)
# Left to the ordinary runs: tests of replicas, of the replication stream and keyspace events
# (other processes), of many concurrent clients, and one that bounds a PTTL to the millisecond
# (memcheck slows the server more than that).
deselect="not replica and not replication and not propagat and not keyspace_event and not concurrent and not tat_in_nanoseconds"
(
  cd "$root"
  SHIELD_SERVERS=redis7 SHIELD_MODULE="$build/libredis_shield.so" \
    SHIELD_SERVER_LAUNCHER="${memcheck[*]} --error-exitcode=99 --soname-synonyms=somalloc=libjemalloc.so* --suppressions=$root/scripts/valgrind-redis.supp --log-file=$logs/memcheck-%p.log" \
    timeout 600 /usr/bin/python3 -m pytest -q -p no:cacheprovider -k "$deselect" "${slice[@]}"
)

# Every report: complete (the server exited and memcheck wrote its summary), no error, no
# definite leak.
status=0
reports=0
for log in "$logs"/memcheck-*.log; do
  [ -e "$log" ] || continue
  reports=$((reports + 1))
  if ! grep -q 'ERROR SUMMARY: 0 errors' "$log"; then
    echo "valgrind: errors in $log" >&2
    grep -E -A25 '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|[0-9,]+ bytes in)' \
      "$log" | head -120 >&2 || true
    grep 'ERROR SUMMARY' "$log" >&2 || echo "  (no summary: the server did not exit cleanly)" >&2
    status=1
  fi
done
if [ "$reports" -eq 0 ]; then
  echo "valgrind: no server report found in $logs" >&2
  exit 1
fi
[ "$status" -eq 0 ] && echo "redis-server under memcheck: $reports servers, no error, no definite leak"
exit "$status"
