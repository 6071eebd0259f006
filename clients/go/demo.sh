#!/usr/bin/env bash
# Builds and runs the Go demo: bash clients/go/demo.sh --port N --redis-url URL
# GET / answers "hello", limited per client address to 5 per second with bursts of 10 and 1000
# per day. Needs Debian's golang-go and golang-github-gomodule-redigo-dev
# (bash tests/clients/go/install-deps.sh installs both).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v go >/dev/null || { echo "demo.sh: no go: apt-get install golang-go golang-github-gomodule-redigo-dev" >&2; exit 1; }
out="$(mktemp -d "${TMPDIR:-/tmp}/redisshield-demo.XXXXXX")"
trap 'rm -rf "$out"' EXIT
export GO111MODULE=off GOPATH="$here:/usr/share/gocode" GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/redisshield-go-cache}"
go build -o "$out/demo" redisshield/demo
"$out/demo" "$@" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$out"' EXIT
trap 'exit 143' TERM INT
wait "$pid"
