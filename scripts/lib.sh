# Sourced by the scripts: the one way they install Debian packages. Nothing here runs by itself.

# Prints, one a line, those of the given Debian packages that dpkg does not list as installed.
shield_missing_packages() {
  local package
  for package in "$@"; do
    dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q ' installed$' || echo "$package"
  done
}

# Installs the given Debian packages with apt-get (through sudo when not root): one `apt-get update`,
# then the install, without recommended packages, waiting up to 10 minutes for another apt to
# finish. Callers pass only what is missing; nothing is installed when no package is given.
shield_apt_install() {
  [ $# -gt 0 ] || return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  local options=(-o DPkg::Lock::Timeout=600 -qq)
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get "${options[@]}" update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get "${options[@]}" install -y \
    --no-install-recommends "$@" >/dev/null
}
