#!/usr/bin/env bash
# The Debian packages the Python client's tests need (tests/clients/python/): the frameworks its
# middleware integrates with, an HTTP client for the tests, and what builds and installs its wheel
# offline. Installs only what is missing (scripts/lib.sh); run by scripts/test.sh before the build.
set -euo pipefail
cd "$(dirname "$0")/../../.."
. scripts/lib.sh
# shellcheck disable=SC2046  # one package a line
shield_apt_install $(shield_missing_packages \
  python3-redis python3-pytest \
  python3-flask python3-django python3-fastapi python3-starlette python3-uvicorn python3-httpx \
  python3-requests python3-setuptools python3-wheel python3-venv python3-pip)
