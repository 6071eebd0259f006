#!/usr/bin/env bash
# What the Node.js client's tests need, installed idempotently:
# - npm packages (ioredis, node-redis, express, fastify, typescript) into tests/clients/node/node_modules;
# - Debian bookworm's Node.js 18 unpacked into .deps/node18/ (the system's node stays as it is),
#   so that the tests also run on Node 18. Its libnode reads a few bundled modules (acorn,
#   cjs-module-lexer, undici) from /usr/share/nodejs, which Debian's other node packages install;
#   our copy of libnode names /tmp/shield-n18js/ instead (a path of the same length), a symlink
#   to .deps/node18/usr/share/nodejs that .deps/node18/bin/node (re)creates.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"

if [ ! -d "$here/node_modules/ioredis" ] || [ ! -d "$here/node_modules/redis" ] || [ ! -d "$here/node_modules/express" ] \
   || [ ! -d "$here/node_modules/fastify" ] || [ ! -x "$here/node_modules/.bin/tsc" ]; then
  (cd "$here" && npm install --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null)
fi

node18="$root/.deps/node18"
if [ ! -x "$node18/bin/node" ]; then
  work="$(mktemp -d)"
  chmod 755 "$work"
  (cd "$work" && apt-get download nodejs=18.20.4+dfsg-1~deb12u3 libnode108=18.20.4+dfsg-1~deb12u3 \
      node-acorn node-cjs-module-lexer node-undici node-busboy node-xtend >/dev/null 2>&1) \
    || (cd "$work" && apt-get download 'nodejs=18.*' 'libnode108=18.*' node-acorn node-cjs-module-lexer \
      node-undici node-busboy node-xtend >/dev/null)
  rm -rf "$node18.tmp" && mkdir -p "$node18.tmp"
  for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$node18.tmp"; done
  mkdir -p "$node18.tmp/lib" "$node18.tmp/bin"
  /usr/bin/python3 - "$node18.tmp/usr/lib/x86_64-linux-gnu/libnode.so.108" "$node18.tmp/lib/libnode.so.108" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
old, new = b"/usr/share/nodejs/", b"/tmp/shield-n18js/"
assert len(old) == len(new) and data.count(old) > 0
open(sys.argv[2], "wb").write(data.replace(old, new))
PY
  cat > "$node18.tmp/bin/node" <<'SH'
#!/bin/sh
# Debian bookworm's Node.js 18, unpacked by tests/clients/node/install-deps.sh.
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(readlink /tmp/shield-n18js 2>/dev/null)" = "$here/usr/share/nodejs" ] || ln -sfn "$here/usr/share/nodejs" /tmp/shield-n18js
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/usr/bin/node" "$@"
SH
  chmod +x "$node18.tmp/bin/node"
  rm -rf "$node18" && mv "$node18.tmp" "$node18"
  rm -rf "$work"
fi
"$node18/bin/node" --version >/dev/null
echo "install-deps (node client): npm packages in $here/node_modules, Node $("$node18/bin/node" --version) in $node18"
