#!/usr/bin/env bash
# Puts redismodule.h into DIR (default: .deps/redismodule), taken from Debian's source package of
# redis. The header is never stored in this repository. Needs deb-src entries (scripts/install-deps.sh
# adds them) and an `apt-get update` since.
set -euo pipefail
dest=${1:-"$(cd "$(dirname "$0")/.." && pwd)/.deps/redismodule"}
[ -f "$dest/redismodule.h" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source --download-only redis >/dev/null 2>&1) || {
  echo "fetch-redismodule-h: 'apt-get source redis' failed; run scripts/install-deps.sh first" >&2
  exit 1
}
tarball=$(ls "$work"/redis_*.orig.tar.* | head -n1)
mkdir -p "$dest"
tar -xf "$tarball" -C "$work" --wildcards '*/src/redismodule.h'
cp "$work"/*/src/redismodule.h "$dest/redismodule.h"
echo "fetch-redismodule-h: $(basename "$tarball") -> $dest/redismodule.h"
