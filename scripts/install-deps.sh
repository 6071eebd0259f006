#!/usr/bin/env bash
# Installs what Shield needs on a fresh Debian bookworm machine. Idempotent. Run as root (or with
# sudo available). SHIELD_DEPS says how much:
#   run    (default) build the module and run it: compiler, cmake, redis-server, redis-tools,
#          iproute2 (ss, to name what holds a busy port), python3-redis and curl (for the HTTP
#          example and its requests)
#   bench  run, plus what bench/run.sh uses: matplotlib, Google Benchmark, valgrind, Node.js
#   test   run, plus everything the test suite uses (scripts/test.sh asks for it), and
#          project-local pieces in .deps/:
#            .deps/valkey/bin/valkey-server   Valkey 8 from bookworm-backports, unpacked, not installed
#            .deps/redis_exporter/bin/        Prometheus's redis_exporter, unpacked, not installed
#            tests/cluster/node_modules       ioredis and node-redis for the cluster tests
#          (`all` is the old name of `test` and means the same)
# Every kind also puts redismodule.h, from Debian's redis source package, in .deps/redismodule/.
#
# What it changes on the system (docs/install.md lists the same):
#   - adds up to two apt source files, derived from the machine's own Debian entry so that they use
#     the same mirror, unless equivalent entries are already there:
#       /etc/apt/sources.list.d/shield-src.sources (or .list)        deb-src entries, for redismodule.h
#       /etc/apt/sources.list.d/shield-backports.sources (or .list)  bookworm-backports, for Valkey 8
#                                                                    (SHIELD_DEPS=test only)
#     (.sources when the machine uses deb822's debian.sources, .list for a one-line sources.list);
#   - runs apt-get update, only when something is missing (a package, redismodule.h, or for
#     SHIELD_DEPS=test the unpacked Valkey or exporter), and installs the missing Debian packages
#     (listed below; for SHIELD_DEPS=test also libjemalloc2 liblzf1 libssl3 libatomic1, which the
#     unpacked Valkey needs);
#   - in this repository only: .deps/ and tests/cluster/node_modules (above);
#   - nothing else: it starts, stops, enables and disables no service. Debian's redis-server package
#     starts its own service on port 6379 where systemd runs; scripts/run.sh then says who holds
#     the port (use SHIELD_PORT, or stop that service yourself).
#
#   scripts/install-deps.sh --sources-only   only write the apt source files (no apt-get);
#                                            SHIELD_APT_DIR (default /etc/apt) says where the
#                                            machine's apt configuration is: tests point it at a
#                                            folder of sample files.
#   scripts/install-deps.sh --list           print the Debian packages of the SHIELD_DEPS set, one a
#                                            line, and change nothing; --missing prints only those
#                                            that are not installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${SHIELD_DEPS:-run}
[ "$what" != all ] || what=test
case "$what" in run | bench | test) ;; *) echo "install-deps: SHIELD_DEPS must be run, bench or test" >&2; exit 2 ;; esac
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_dir=${SHIELD_APT_DIR:-/etc/apt}
lists=$apt_dir/sources.list.d
release=bookworm

die() {
  echo "install-deps: $*" >&2
  exit 1
}

# Writes stdin to FILE (through sudo only when its folder is not writable) and says so.
write_source() {
  if [ -w "$(dirname "$1")" ]; then tee "$1" >/dev/null; else $sudo tee "$1" >/dev/null; fi
  echo "install-deps: added $1"
}

# True when some apt source file under $apt_dir already has an entry matching the regex $1 (the
# regexes are anchored at the start of a line, so comments never match).
have_entry() {
  grep -Eqs -- "$1" "$apt_dir/sources.list" "$lists"/*.list "$lists"/*.sources
}

# The one-line format: `deb [options] URI SUITE COMPONENTS...`, options optional. Prints the
# deb-src twin of every deb line (options kept), or nothing.
oneline_src() {
  sed -nE 's/^[[:space:]]*deb([[:space:]]+\[[^]]*\])?[[:space:]]+/deb-src\1 /p' "$1"
}

# The first deb line for the release itself, its suite replaced by <release>-backports and its
# components by main.
oneline_backports() {
  sed -nE "s/^[[:space:]]*deb(([[:space:]]+\[[^]]*\])?[[:space:]]+[^[:space:]]+)[[:space:]]+$release([[:space:]].*)?\$/deb\1 $release-backports main/p" "$1" |
    head -n1
}

# Source entries (for redismodule.h) and, for SHIELD_DEPS=test only, bookworm-backports (for
# Valkey 8), made from the machine's own apt source so that they use the same mirror. Both apt
# formats are handled; when neither gives an entry, this fails and says what to add by hand.
derive_sources() {
  local deb822="$lists/debian.sources" oneline="$apt_dir/sources.list" text
  if [ -f "$deb822" ] && grep -Eq '^Types:(.*[[:space:]])?deb([[:space:]]|$)' "$deb822"; then
    if ! have_entry '^(Types:.*deb-src|deb-src[[:space:]])' && [ ! -f "$lists/shield-src.sources" ]; then
      text=$(awk 'BEGIN{RS="";ORS="\n\n"} /Types:/' "$deb822" |
        sed -E 's/^Types:.*/Types: deb-src/')
      [ -n "$text" ] || die "found no deb stanza in $deb822 to derive deb-src entries from"
      printf '%s\n' "$text" | write_source "$lists/shield-src.sources"
    fi
    if [ "$what" = test ] && ! have_entry "^Suites:.*[[:space:]]$release-backports([[:space:]]|\$)" &&
      [ ! -f "$lists/shield-backports.sources" ]; then
      text=$(awk -v rel="$release" 'BEGIN{RS="";ORS="\n\n"}
          { n = split($0, lines, "\n"); for (i = 1; i <= n; i++)
              if (lines[i] ~ "^Suites:" && (" " lines[i] " ") ~ (" " rel " ")) { print; exit } }' "$deb822" |
        sed -E -e 's/^Types:.*/Types: deb/' -e "s/^Suites:.*/Suites: $release-backports/" \
          -e 's/^Components:.*/Components: main/')
      [ -n "$text" ] ||
        die "found no stanza with Suites: $release in $deb822 to derive $release-backports from; add a $release-backports entry yourself"
      printf '%s\n' "$text" | write_source "$lists/shield-backports.sources"
    fi
  elif [ -f "$oneline" ] && grep -Eq '^[[:space:]]*deb[[:space:]]' "$oneline"; then
    if ! have_entry '^[[:space:]]*deb-src[[:space:]]' && [ ! -f "$lists/shield-src.list" ]; then
      text=$(oneline_src "$oneline")
      [ -n "$text" ] || die "found no deb line in $oneline to derive deb-src entries from"
      printf '%s\n' "$text" | write_source "$lists/shield-src.list"
    fi
    if [ "$what" = test ] && ! have_entry "^[[:space:]]*deb[[:space:]].*[[:space:]]$release-backports([[:space:]]|\$)" &&
      [ ! -f "$lists/shield-backports.list" ]; then
      text=$(oneline_backports "$oneline")
      [ -n "$text" ] ||
        die "found no 'deb [options] URI $release ...' line in $oneline to derive $release-backports from; add a $release-backports entry yourself"
      printf '%s\n' "$text" | write_source "$lists/shield-backports.list"
    fi
  else
    die "found no Debian entry in $deb822 or $oneline to derive deb-src and $release-backports entries from; add them yourself (docs/install.md)"
  fi
}

packages=(build-essential cmake redis-server redis-tools ca-certificates iproute2 python3-redis curl)
case "$what" in
  bench) packages+=(python3-matplotlib libbenchmark-dev valgrind) ;;
  test) packages+=(libgtest-dev libbenchmark-dev python3-pytest python3-yaml clang-format
    clang libclang-rt-14-dev libboost-dev clang-tidy cppcheck valgrind) ;; # fuzzing, static analysis, valgrind
esac
# Some images ship their own Node.js (with npm) that conflicts with Debian's; keep it if present.
if [ "$what" != run ] && ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi

. "$root/scripts/lib.sh"
# The packages of the set that are not installed, one a line.
missing_packages() { shield_missing_packages "${packages[@]}"; }

case "${1:-}" in
  --sources-only)
    derive_sources
    exit 0
    ;;
  --missing)
    missing_packages
    exit 0
    ;;
  --list)
    printf '%s\n' "${packages[@]}"
    exit 0
    ;;
  "") ;;
  *) die "usage: $0 [--sources-only | --missing | --list]" ;;
esac
derive_sources

mapfile -t missing < <(missing_packages)
needs_apt=no
[ "${#missing[@]}" -eq 0 ] || needs_apt=yes
[ -f "$root/.deps/redismodule/redismodule.h" ] || needs_apt=yes
if [ "$what" = test ] && { [ ! -x "$root/.deps/valkey/bin/valkey-server" ] ||
  [ ! -x "$root/.deps/redis_exporter/bin/prometheus-redis-exporter" ]; }; then needs_apt=yes; fi

export DEBIAN_FRONTEND=noninteractive
if [ "$needs_apt" = yes ]; then
  $sudo apt-get update -qq
else
  echo "install-deps: nothing missing for the $what set; no apt-get update"
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

"$root/scripts/fetch-redismodule-h.sh" "$root/.deps/redismodule"

if [ "$what" = test ]; then
  if [ ! -x "$root/.deps/valkey/bin/valkey-server" ]; then
    work=$(mktemp -d)
    if ! (cd "$work" && apt-get download -qq valkey-tools); then
      echo "install-deps: could not download valkey-tools from bookworm-backports (is that suite in apt's sources?)" >&2
      exit 1
    fi
    $sudo apt-get install -y -qq --no-install-recommends libjemalloc2 liblzf1 libssl3 libatomic1 >/dev/null
    dpkg-deb -x "$work"/valkey-tools_*.deb "$work/x"
    mkdir -p "$root/.deps/valkey/bin"
    cp "$work/x/usr/bin/valkey-check-rdb" "$root/.deps/valkey/bin/valkey-multi"
    cp "$work/x/usr/bin/valkey-cli" "$root/.deps/valkey/bin/valkey-cli"
    # The server is a multi-call binary that acts on the name it runs under.
    ln -sf valkey-multi "$root/.deps/valkey/bin/valkey-server"
    rm -rf "$work"
  fi
  # Prometheus's redis_exporter for docs/production.md's test, unpacked like Valkey: installing
  # Debian's package would start an exporter service on port 9121.
  if [ ! -x "$root/.deps/redis_exporter/bin/prometheus-redis-exporter" ]; then
    work=$(mktemp -d)
    (cd "$work" && apt-get download -qq prometheus-redis-exporter) ||
      die "could not download prometheus-redis-exporter"
    dpkg-deb -x "$work"/prometheus-redis-exporter_*.deb "$work/x"
    mkdir -p "$root/.deps/redis_exporter/bin"
    cp "$work/x/usr/bin/prometheus-redis-exporter" "$root/.deps/redis_exporter/bin/"
    rm -rf "$work"
  fi
  if [ ! -d "$root/tests/cluster/node_modules/ioredis" ] || [ ! -d "$root/tests/cluster/node_modules/redis" ]; then
    (cd "$root/tests/cluster" && npm install --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null)
  fi
fi
echo "install-deps: done ($what)"
