#!/usr/bin/env bash
# Fails unless the module's only exported (defined, dynamic) symbols are RedisModule_OnLoad and
# RedisModule_OnUnload (which refuses MODULE UNLOAD).
set -euo pipefail
exported=$(nm -D --defined-only "$1" | awk '{print $3}' | sort)
echo "exported: $exported"
[ "$exported" = "$(printf 'RedisModule_OnLoad\nRedisModule_OnUnload')" ]
