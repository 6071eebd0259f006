#!/usr/bin/env bash
# Measures the Go client's net/http middleware (clients/go/src/redisshield/bench_test.go) by hand,
# not in CI: `go test -run '^$' -bench . -benchmem -count N` against a redis-server with Shield on
# loopback (the benchmarks start it), then the medians per benchmark. Also runs the deny-cache
# flood test for its counts. Writes bench/results/clients-go.json unless --no-write.
#   flock /tmp/shield.lock bash tests/clients/go/run-bench.sh [--no-write] [--count N]
# SHIELD_MODULE names the module (default build/libredis_shield.so).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../../.." && pwd)"
write=1
count=5
while [ $# -gt 0 ]; do
  case "$1" in
    --no-write) write=0 ;;
    --count) count="$2"; shift ;;
    *) echo "run-bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
export SHIELD_MODULE="${SHIELD_MODULE:-$repo/build/libredis_shield.so}"
export GO111MODULE=off GOFLAGS="" GOPATH="$repo/clients/go:/usr/share/gocode"
export GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/redisshield-go-cache}"
out="$(mktemp -d "${TMPDIR:-/tmp}/redisshield-go-bench.XXXXXX")"
trap 'rm -rf "$out"' EXIT
cd "$repo/clients/go/src/redisshield"
go test -count="$count" -run '^$' -bench . -benchmem -timeout 600s redisshield | tee "$out/bench.txt"
go test -count=1 -run '^TestAFloodFromOneClientCostsFewRedisCallsWithTheDenyCache$' -v redisshield | tee "$out/flood.txt"
result="$repo/bench/results/clients-go.json"
[ "$write" = 1 ] || result=""
/usr/bin/python3 - "$out/bench.txt" "$out/flood.txt" "$(go version)" "$(redis-server --version)" "$count" "$result" <<'EOF'
import datetime, json, re, statistics, sys

bench_txt, flood_txt, go_version, server_version, count, result = sys.argv[1:]
names = {
    "BareHandler": "bare handler",
    "MiddlewareAllowed": "middleware, 1 policy, allowed",
    "MiddlewareAllowedTwoPolicies": "middleware, 2 policies (bucket and quota), allowed",
    "MiddlewareRefusedByRedis": "middleware, refused by Redis (no deny cache)",
    "MiddlewareRefusedFromTheDenyCache": "middleware, refused by the deny cache",
}
runs = {}
for line in open(bench_txt):
    m = re.match(r"Benchmark(\w+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:\s+(\d+) B/op\s+(\d+) allocs/op)?", line)
    if m and m.group(1) in names:
        runs.setdefault(m.group(1), []).append((float(m.group(2)), int(m.group(3) or 0), int(m.group(4) or 0)))
missing = [n for n in names if n not in runs]
if missing:
    sys.exit(f"run-bench.sh: no figures for {missing}")
us = {names[n]: round(statistics.median(r[0] for r in runs[n]) / 1000, 1) for n in names}
bare = us["bare handler"]
flood = re.search(r"a flood of (\d+) calls from one client: (\d+) SHIELD.limit calls with the deny cache, (\d+) without",
                  open(flood_txt).read())
if not flood:
    sys.exit("run-bench.sh: the flood test printed no counts")
data = {
    "what": "net/http middleware of clients/go per request, in-process (httptest), one SHIELD.limit per "
            "request against redis-server with Shield on loopback; medians of go test -bench runs",
    "command": "bash tests/clients/go/run-bench.sh",
    "go": go_version.split()[2],
    "server": server_version.split()[2],
    "runs": int(count),
    "us_per_request": us,
    "overhead_us_over_bare": {k: round(v - bare, 1) for k, v in us.items() if k != "bare handler"},
    "allocs_per_request": {names[n]: int(statistics.median(r[2] for r in runs[n])) for n in names},
    "flood_one_client_3_per_minute": {
        "requests": int(flood.group(1)),
        "shield_limit_calls_with_deny_cache": int(flood.group(2)),
        "shield_limit_calls_without": int(flood.group(3)),
    },
    "date": datetime.date.today().isoformat(),
}
text = json.dumps(data, indent=2) + "\n"
print(text, end="")
if result:
    with open(result, "w") as f:
        f.write(text)
    print(f"written to {result}")
EOF
