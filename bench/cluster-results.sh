#!/usr/bin/env bash
# Runs the cluster suite on one server kind (default redis7; SHIELD_CLUSTER_SERVER=redis8.6 or
# valkey9.1 for the others) and, when every test file ran and none failed, writes its measurements
# to bench/results/cluster-<kind>.json, the file docs/cluster.md quotes. The test run alone
# (ctest -L cluster) writes nothing: tests never write tracked files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kind=${SHIELD_CLUSTER_SERVER:-redis7}
export SHIELD_MODULE=${SHIELD_MODULE:-$root/build/libredis_shield.so}
export SHIELD_CLUSTER_SERVER=$kind
export SHIELD_CLUSTER_RESULTS="$root/bench/results/cluster-$kind.json"
cd "$root"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/cluster
