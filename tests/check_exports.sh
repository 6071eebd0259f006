#!/usr/bin/env bash
# Fails unless the module's only exported (defined, dynamic) symbol is RedisModule_OnLoad.
set -euo pipefail
exported=$(nm -D --defined-only "$1" | awk '{print $3}' | sort)
echo "exported: $exported"
[ "$exported" = "RedisModule_OnLoad" ]
