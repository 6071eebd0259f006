#!/usr/bin/env bash
# Installs what the Go client's tests need, when missing: Debian's Go toolchain (golang-go, Go 1.19)
# and redigo (golang-github-gomodule-redigo-dev, under /usr/share/gocode), and the redis-server and
# redis-cli the tests start and join into a cluster. The library is a GOPATH
# package (GO111MODULE=off): no module proxy is used. Safe to run again: installs nothing when all
# is there.
set -euo pipefail
cd "$(dirname "$0")/../../.."
. scripts/lib.sh
# shellcheck disable=SC2046  # one package per word
shield_apt_install $(shield_missing_packages golang-go golang-github-gomodule-redigo-dev redis-server redis-tools)
