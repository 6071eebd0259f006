#!/bin/sh
# The image's entrypoint: runs redis-server with Shield loaded, then the arguments given.
#   (no arguments)              redis-server --loadmodule <module>
#   --port 6380 ...             redis-server --loadmodule <module> --port 6380 ...
#   /etc/redis.conf --port ...  redis-server /etc/redis.conf --loadmodule <module> --port ...
#   redis-server ...            the same as without `redis-server`
#   anything else (redis-cli, sh, ...) runs as it is.
# The module is not added twice when the arguments already load it.
# SHIELD_MODULE_PATH: where the module is (default /usr/lib/redis/modules/libredis_shield.so).
# SHIELD_EXEC_VIA: a command to hand the server's command line to instead of running it, such as
# the official redis image's docker-entrypoint.sh (docs/deploy.md).
set -e
module=${SHIELD_MODULE_PATH:-/usr/lib/redis/modules/libredis_shield.so}

if [ $# -eq 0 ]; then
  set -- redis-server
fi
case "$1" in
  -* | *.conf) set -- redis-server "$@" ;;
esac
case "$1" in
  redis-server | */redis-server) ;;
  *) exec "$@" ;;
esac
server=$1
shift

# Redis reads a configuration file only as its first argument.
conf=""
case "$1" in
  "" | -*) ;;
  *) conf=$1; shift ;;
esac
for arg in "$@"; do
  if [ "$arg" = "$module" ]; then
    module=""
  fi
done
if [ -n "$module" ]; then
  set -- --loadmodule "$module" "$@"
fi
if [ -n "$conf" ]; then
  set -- "$conf" "$@"
fi
exec ${SHIELD_EXEC_VIA:+"$SHIELD_EXEC_VIA"} "$server" "$@"
