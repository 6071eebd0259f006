#!/usr/bin/env bash
# Runs the Go client's tests (clients/go/src/redisshield) with Debian's Go in GOPATH mode:
#   bash tests/clients/go/run-tests.sh [go test arguments, e.g. -run Cluster -v]
# SHIELD_MODULE names the module to load (default build/libredis_shield.so); the tests start their
# own redis-server processes (SHIELD_REDIS_SERVER overrides Debian's /usr/bin/redis-server).
# GOCACHE defaults to a folder under /tmp: nothing is written into the repository.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../../.." && pwd)"
export SHIELD_MODULE="${SHIELD_MODULE:-$repo/build/libredis_shield.so}"
export GO111MODULE=off GOFLAGS="" GOPATH="$repo/clients/go:/usr/share/gocode"
export GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/redisshield-go-cache}"
cd "$repo/clients/go/src/redisshield"
go vet redisshield redisshield/demo
exec go test -count=1 -timeout 300s "$@" redisshield
