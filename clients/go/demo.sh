#!/usr/bin/env bash
# Builds and runs the Go demo: bash clients/go/demo.sh --port N --redis-url URL
# GET / answers "hello", limited per client address to 5 per second with bursts of 10 and 1000
# per UTC day. Needs Debian's golang-go and golang-github-gomodule-redigo-dev
# (bash tests/clients/go/install-deps.sh installs both). The binary is built in a temporary
# folder, removed when the demo stops.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v go >/dev/null || {
  echo "demo.sh: no go: apt-get install golang-go golang-github-gomodule-redigo-dev" >&2
  exit 1
}
out="$(mktemp -d "${TMPDIR:-/tmp}/redisshield-demo.XXXXXX")"
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
export GO111MODULE=off GOPATH="$here:/usr/share/gocode"
export GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/redisshield-go-cache}"
go build -o "$out/demo" redisshield/demo
"$out/demo" "$@" &
pid=$!
wait "$pid"
