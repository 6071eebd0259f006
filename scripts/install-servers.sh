#!/usr/bin/env bash
# Puts every server of Shield's test matrix under .deps/servers/<kind>/bin/, from Debian's archive
# only. Idempotent and cached by version: each kind's VERSION file says what is there, and a kind
# whose VERSION matches what the archive offers now is left alone, so a second run builds nothing.
# Run as root (or with sudo available).
#
#   kind        server                 from
#   redis7      redis-server 7.0       Debian's redis-server package (bookworm), linked, not copied
#   redict7     redict-server 7.3      redict-tools from bookworm-backports, unpacked, not installed
#   valkey8     valkey-server 8.0      valkey-tools from bookworm-backports, unpacked, not installed
#   redis8.0    redis-server 8.0       the upstream tarball of Debian's redis source (trixie), built
#   redis8.6    redis-server 8.6       the same, from experimental
#   valkey8.1   valkey-server 8.1      the upstream tarball of Debian's valkey source (trixie), built
#   valkey9.1   valkey-server 9.1      the same, from sid
#
# Usage: scripts/install-servers.sh [kind ...]     (default: every kind)
#
# What it changes on the system: installs Debian packages with apt-get (redis-server and
# redis-tools; build-essential, pkg-config and xz-utils to build; the libraries the backports
# binaries need). The other suites are read through an apt state of its own in
# .deps/servers/.apt (its own source list, package lists and download cache): nothing is added to
# /etc/apt, and the system's package lists are not touched. Builds use `make MALLOC=libc
# BUILD_TLS=no` (no jemalloc, no TLS) and keep only the server and the cli.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.deps/servers"
# The servers live in a cache outside the checkout (SHIELD_CACHE, default ~/.cache/redis-shield),
# linked from .deps/, so another clone on the same machine (CI's, a second worktree) builds nothing.
cache="${SHIELD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/redis-shield}/servers"
if [ ! -e "$dest" ] && [ ! -L "$dest" ]; then
  mkdir -p "$cache" "$root/.deps"
  ln -s "$cache" "$dest"
fi
apt_dir="$dest/.apt"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive

# kind:how:package:suite:name:series (series: the upstream major.minor the kind must hold)
matrix=(
  "redis7:system:redis-server:bookworm:redis:7.0"
  "redict7:backports:redict-tools:bookworm-backports:redict:7.3"
  "valkey8:backports:valkey-tools:bookworm-backports:valkey:8.0"
  "redis8.0:source:redis:trixie:redis:8.0"
  "redis8.6:source:redis:experimental:redis:8.6"
  "valkey8.1:source:valkey:trixie:valkey:8.1"
  "valkey9.1:source:valkey:sid:valkey:9.1"
)
build_flags="MALLOC=libc BUILD_TLS=no"

say() { echo "install-servers: $*"; }
die() { echo "install-servers: $*" >&2; exit 1; }

wanted=("$@")
if [ ${#wanted[@]} -eq 0 ]; then
  for row in "${matrix[@]}"; do wanted+=("${row%%:*}"); done
fi
rows=()
for kind in "${wanted[@]}"; do
  row=$(printf '%s\n' "${matrix[@]}" | grep -E "^${kind//./\\.}:" || true)
  [ -n "$row" ] || die "unknown kind '$kind' (kinds: $(printf '%s ' "${matrix[@]%%:*}"))"
  rows+=("$row")
done

# ---- apt: the system's, for packages of bookworm; a private state for the other suites -------

apt_install() {  # packages of the machine's own suites, installed only when missing
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  if ! $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/none.list" -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")

# The private source list, made from the machine's own apt source (same mirror and keys): the
# bookworm-backports binaries, and the source packages of trixie, sid and experimental.
write_private_sources() {
  mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  : >"$apt_dir/none.list"
  local out="$apt_dir/sources.list.d/shield-servers"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    local stanza
    stanza=$(awk 'BEGIN{RS="";ORS="\n"} /(^|\n)Suites:[^\n]*bookworm/ {print; exit}' /etc/apt/sources.list.d/debian.sources)
    [ -n "$stanza" ] || die "no bookworm entry in /etc/apt/sources.list.d/debian.sources"
    {
      printf '%s\n' "$stanza" | sed -e 's/^Types: .*/Types: deb/' -e 's/^Suites: .*/Suites: bookworm-backports/'
      echo
      printf '%s\n' "$stanza" | sed -e 's/^Types: .*/Types: deb-src/' -e 's/^Suites: .*/Suites: trixie sid experimental/'
    } >"$out.sources"
  elif [ -f /etc/apt/sources.list ]; then
    # "deb [options] URI bookworm components": keep the options and the URI.
    local line
    line=$(grep -E '^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+bookworm[[:space:]]' /etc/apt/sources.list | head -n1 || true)
    [ -n "$line" ] || die "no 'deb ... bookworm ...' line in /etc/apt/sources.list"
    local prefix
    prefix=$(printf '%s\n' "$line" | sed -E 's/^deb[[:space:]]+((\[[^]]*\][[:space:]]+)?[^[:space:]]+)[[:space:]]+bookworm[[:space:]].*/\1/')
    {
      echo "deb $prefix bookworm-backports main"
      for suite in trixie sid experimental; do echo "deb-src $prefix $suite main"; done
    } >"$out.list"
  else
    die "found neither /etc/apt/sources.list.d/debian.sources nor /etc/apt/sources.list"
  fi
}

private_lists_ready=""
refresh_private_lists() {
  [ -n "$private_lists_ready" ] && return 0
  write_private_sources
  say "reading the package lists of bookworm-backports, trixie, sid and experimental (into .deps/servers/.apt)"
  apt-get "${apt_opts[@]}" update -qq >/dev/null 2>"$apt_dir/update.log" || {
    cat "$apt_dir/update.log" >&2
    return 1
  }
  private_lists_ready=1
}

# Work folders, removed on exit: outside the repository (the servers' build scripts would take
# its git commit for their own), and open to _apt, which downloads run as where that user exists.
run_tmp=$(mktemp -d "${TMPDIR:-/tmp}/shield-servers.XXXXXX")
chmod 755 "$run_tmp"
trap 'rm -rf "$run_tmp"' EXIT
download_dir() {
  local dir
  dir=$(mktemp -d "$run_tmp/work.XXXXXX")
  if id _apt >/dev/null 2>&1; then chown _apt "$dir"; fi
  echo "$dir"
}

# ---- what each kind wants ---------------------------------------------------------------------

# Prints the stamp a kind should have now: what it is and exactly where it comes from.
wanted_stamp() {
  local how=$1 package=$2 suite=$3 name=$4
  case "$how" in
    system)
      echo "$name $(dpkg-query -W -f='${Version}' "$package") /usr/bin/$name-server (Debian $suite)"
      ;;
    backports)
      local version
      version=$(apt-cache "${apt_opts[@]}" policy "$package" | awk '/Candidate:/ {print $2}')
      if [ -z "$version" ] || [ "$version" = "(none)" ]; then die "$package is not in $suite"; fi
      echo "$name $version $package (Debian $suite, unpacked)"
      ;;
    source)
      local uri
      uri=$(cd /tmp && apt-get "${apt_opts[@]}" source --tar-only --print-uris -qq "$package/$suite" |
        awk '$2 ~ /\.orig\.tar\./ {print $2, $4; exit}')
      [ -n "$uri" ] || die "no upstream tarball for $package in $suite"
      echo "$name ${uri%% *} ${uri#* } (Debian $suite) make $build_flags"
      ;;
  esac
}

upstream_version() {  # redis_8.6.3.orig.tar.gz -> 8.6.3; valkey_8.1.1+dfsg1.orig.tar.xz -> 8.1.1
  local file=$1
  file=${file#*_}
  file=${file%%.orig.*}
  echo "${file%%+*}"
}

# ---- installing -------------------------------------------------------------------------------

install_system() {
  local dir=$1 name=$2
  mkdir -p "$dir/bin"
  ln -sfn "/usr/bin/$name-server" "$dir/bin/$name-server"
  ln -sfn "/usr/bin/$name-cli" "$dir/bin/$name-cli"
}

install_backports() {
  local dir=$1 package=$2 name=$3
  local work
  work=$(download_dir)
  local extra=()
  [ "$name" = redict ] && extra=(libhiredict1.3.1)  # not in bookworm itself
  (cd "$work" && apt-get "${apt_opts[@]}" download -qq "$package" "${extra[@]}" 2>/dev/null) ||
    die "could not download $package ${extra[*]} from bookworm-backports"
  apt_install libjemalloc2 liblzf1 libssl3 libatomic1 libsystemd0
  for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
  rm -rf "$dir.new"
  mkdir -p "$dir.new/bin" "$dir.new/libexec"
  # The server is a multi-call binary that acts on the name it runs under: any name but
  # *-check-rdb / *-check-aof / *-sentinel starts a server.
  cp "$work/x/usr/bin/$name-check-rdb" "$dir.new/libexec/$name-server"
  cp "$work/x/usr/bin/$name-cli" "$dir.new/libexec/$name-cli"
  if compgen -G "$work/x/usr/lib/*/lib*.so*" >/dev/null; then
    mkdir -p "$dir.new/lib"
    cp -a "$work"/x/usr/lib/*/lib*.so* "$dir.new/lib/"
  fi
  for tool in server cli; do
    if [ -d "$dir.new/lib" ]; then
      cat >"$dir.new/bin/$name-$tool" <<EOF
#!/bin/sh
# $package from bookworm-backports, unpacked by scripts/install-servers.sh; its own libraries are in ../lib.
here=\$(dirname "\$(readlink -f "\$0")")
LD_LIBRARY_PATH="\$here/../lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$here/../libexec/$name-$tool" "\$@"
EOF
      chmod +x "$dir.new/bin/$name-$tool"
    else
      ln -s "../libexec/$name-$tool" "$dir.new/bin/$name-$tool"
    fi
  done
  rm -rf "$work" "$dir"
  mv "$dir.new" "$dir"
}

install_source() {
  local dir=$1 package=$2 suite=$3 name=$4
  apt_install build-essential pkg-config xz-utils
  local work
  work=$(download_dir)
  (cd "$work" && apt-get "${apt_opts[@]}" source --tar-only -qq "$package/$suite" >/dev/null 2>&1) ||
    die "could not download the source of $package from $suite"
  mkdir "$work/src"
  tar -xf "$work"/*.orig.tar.* -C "$work/src" --strip-components=1
  local log
  log="$dest/$(basename "$dir").build.log"
  # shellcheck disable=SC2086  # build_flags is a list of make variables
  if ! make -C "$work/src/src" $build_flags -j"$(nproc)" "$name-server" "$name-cli" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "building $package from $suite failed (whole log: $log)"
  fi
  rm -rf "$dir.new"
  mkdir -p "$dir.new/bin"
  cp "$work/src/src/$name-server" "$work/src/src/$name-cli" "$dir.new/bin/"
  rm -rf "$work" "$dir"
  mv "$dir.new" "$dir"
}

mkdir -p "$dest"
summary=()
for row in "${rows[@]}"; do
  IFS=: read -r kind how package suite name series <<<"$row"
  dir="$dest/$kind"
  have=""
  [ -f "$dir/VERSION" ] && [ -x "$dir/bin/$name-server" ] && have=$(cat "$dir/VERSION")
  if [ "$how" != system ] && ! refresh_private_lists; then
    if [ -n "$have" ]; then
      say "$kind: could not read the package lists; keeping what is there: $have"
      summary+=("$kind: kept $have")
      continue
    fi
    die "$kind: could not read the package lists of the other suites, and $kind is not installed yet"
  fi
  [ "$how" = system ] && apt_install redis-server redis-tools
  want=$(wanted_stamp "$how" "$package" "$suite" "$name")
  version=$(echo "$want" | awk '{print $2}')
  [ "$how" = source ] && version=$(upstream_version "$version")
  version=${version#*:}   # the Debian epoch
  case "$version" in
    "$series".*) ;;
    *) die "$kind: $package in $suite is now $version, not $series.x: update the matrix in $0" ;;
  esac
  if [ "$have" = "$want" ]; then
    say "$kind: up to date ($want)"
    summary+=("$kind: cached")
    continue
  fi
  started=$(date +%s)
  case "$how" in
    system) say "$kind: linking Debian's $name-server $version"; install_system "$dir" "$name" ;;
    backports) say "$kind: unpacking $package $version from $suite"; install_backports "$dir" "$package" "$name" ;;
    source) say "$kind: building $name $version from the upstream tarball of $package in $suite ($build_flags)"
            install_source "$dir" "$package" "$suite" "$name" ;;
  esac
  "$dir/bin/$name-server" --version >/dev/null || die "$kind: $dir/bin/$name-server does not run"
  echo "$want" >"$dir/VERSION"
  seconds=$(($(date +%s) - started))
  say "$kind: installed in ${seconds}s: $("$dir/bin/$name-server" --version | head -n1)"
  summary+=("$kind: installed in ${seconds}s")
done

# .deps/valkey/bin is where scripts/install-deps.sh puts Valkey 8 and older checkouts look for it:
# point it at valkey8 unless something is there already.
if [ -d "$dest/valkey8" ] && [ ! -e "$root/.deps/valkey" ]; then
  ln -s servers/valkey8 "$root/.deps/valkey"
fi

done_list=$(IFS=';'; echo "${summary[*]}")
say "done: ${done_list//;/; }"
