#!/usr/bin/env bash
# Installs what the packaging tests (tests/packaging) need on Debian bookworm, from Debian's
# archive only. Idempotent: installs only what is missing and says what it installs.
#   podman, runc      rootful containers (runc, not crun: the tests run podman with --runtime runc)
#   debootstrap       makes the debian:bookworm base image from the Debian archive (no registry)
#   docker-compose    Debian's Compose 1.29, run against podman's Docker API
#   musl-tools        musl-gcc, to build a musl redis-server and try the module in it
# dpkg-deb and cpack (for the .deb) come with dpkg and cmake, redis-server with scripts/install-deps.sh.
# No service is enabled or started; nothing else on the system changes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# What the packaging tests build once (the debootstrap base tarball in .deps/packaging, the musl
# redis-server in .deps/musl) lives in a cache outside the checkout (SHIELD_CACHE, default
# ~/.cache/redis-shield), linked from .deps/, so another clone on the same machine reuses it.
cache="${SHIELD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/redis-shield}"
for part in packaging musl; do
  if [ ! -e "$root/.deps/$part" ] && [ ! -L "$root/.deps/$part" ]; then
    mkdir -p "$cache/$part" "$root/.deps"
    ln -s "$cache/$part" "$root/.deps/$part"
  fi
done
. "$root/scripts/lib.sh"
wanted=(podman runc catatonit debootstrap docker-compose musl-tools)
mapfile -t missing < <(shield_missing_packages "${wanted[@]}")
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-packaging-deps: all present (${wanted[*]})"
  exit 0
fi
echo "install-packaging-deps: installing ${missing[*]}"
shield_apt_install "${missing[@]}"
echo "install-packaging-deps: done"
