#!/usr/bin/env bash
# Sets up and runs Shield on this machine.
#   scripts/run.sh                install what is missing, build, start redis-server with Shield on
#                                 127.0.0.1:6379 and show SHIELD.absorb working. Its data (an AOF)
#                                 is kept in .run/standalone, so a restart keeps the buckets.
#   scripts/run.sh --cluster      the same, then the six-node cluster on ports 7001-7006
#                                 (scripts/cluster.sh up), data in .run/cluster
#   scripts/run.sh --stop         stop what the two above started, by the PIDs in their pidfiles;
#                                 their data stays, and the next start continues from it
#   scripts/run.sh --stop --purge stop, then delete that data (.run/standalone and .run/cluster)
#
# It stops and starts nothing else. If the server it started is still running, it says so and
# leaves it alone (stop it first to restart with a new build); if something else has the port
# (Debian's redis-server service listens on 6379), it says so and stops.
#
# Environment:
#   SHIELD_PORT          the standalone server's port (default 6379)
#   SHIELD_RUN_DIR       where the standalone server keeps its data, log and pidfile
#                        (default .run/standalone in this repository)
#   SHIELD_REDIS_SERVER, SHIELD_REDIS_CLI  the binaries (default redis-server, redis-cli on PATH)
#   For tests: SHIELD_SKIP_DEPS=1 skips scripts/install-deps.sh, and SHIELD_MODULE=<path> loads
#   that module instead of building one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
host=127.0.0.1
run_dir=${SHIELD_RUN_DIR:-$root/.run/standalone}
port=${SHIELD_PORT:-6379}
server=${SHIELD_REDIS_SERVER:-redis-server}
cli=${SHIELD_REDIS_CLI:-redis-cli}
pidfile="$run_dir/redis.pid"
portfile="$run_dir/port"

usage() {
  echo "usage: $0 [--cluster | --stop [--purge]]" >&2
  exit 2
}

mode=standalone purge=no
case "${1:-}" in
  "") ;;
  --cluster) mode=cluster ;;
  --stop)
    mode=stop
    case "${2:-}" in "") ;; --purge) purge=yes ;; *) usage ;; esac
    ;;
  *) usage ;;
esac
[ "$mode" = stop ] || [ $# -le 1 ] || usage

rcli() { timeout 5 "$cli" -h "$host" -p "$@"; }

port_busy() { # something listens on host:PORT
  (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null
}

# The PID of the server this script started, if it is still running: the PID in the pidfile, and
# that process is a redis-server on the port it was started on (a PID can be reused by an
# unrelated process after a reboot).
running_pid() {
  local pid started_port
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  started_port=$(cat "$portfile" 2>/dev/null || echo "$port")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- ":$started_port" || return 1
  echo "$pid"
}

stop_standalone() {
  local pid
  if pid=$(running_pid); then
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    echo "stopped redis-server (pid $pid); its data stays in $run_dir"
  fi
  rm -f "$pidfile"
}

if [ "$mode" = stop ]; then
  stop_standalone
  if [ "$purge" = yes ]; then
    "$root/scripts/cluster.sh" down
    rm -rf "${run_dir:?}"
    echo "deleted $run_dir"
  else
    "$root/scripts/cluster.sh" stop
  fi
  exit 0
fi

if [ "$mode" = standalone ]; then
  # Decide before installing or building anything: a server of ours already runs, or the port is
  # someone else's.
  if pid=$(running_pid); then
    echo "run.sh: Shield's redis-server is already running on $host:$(cat "$portfile" 2>/dev/null || echo "$port") (pid $pid, data in $run_dir); left as it is."
    echo "To restart it (say, with a new build): scripts/run.sh --stop && scripts/run.sh"
    exit 0
  fi
  if port_busy "$port"; then
    echo "run.sh: port $port on $host is in use by a process this script did not start" >&2
    echo "(Debian's redis-server service listens there). Stop it, or choose another port: SHIELD_PORT=6380 scripts/run.sh" >&2
    exit 1
  fi
fi

if [ "${SHIELD_SKIP_DEPS:-}" != 1 ]; then
  SHIELD_DEPS=run "$root/scripts/install-deps.sh"
fi
if [ -n "${SHIELD_MODULE:-}" ]; then
  module=$SHIELD_MODULE
else
  # The unit tests need GoogleTest, which the run set of packages leaves out.
  "$root/scripts/build.sh" -DSHIELD_BUILD_TESTS=OFF
  module="$root/build/libredis_shield.so"
fi
module=$(cd "$(dirname "$module")" && pwd)/$(basename "$module")

if [ "$mode" = cluster ]; then
  SHIELD_MODULE="$module" SHIELD_REDIS_SERVER="$server" SHIELD_REDIS_CLI="$cli" "$root/scripts/cluster.sh" up
  "$root/scripts/cluster.sh" status
  echo
  echo "> redis-cli -c -p 7001 SHIELD.absorb user123 100 60 5"
  "$cli" -c -p 7001 SHIELD.absorb user123 100 60 5
  echo "Stop it with: scripts/run.sh --stop (keeps its data; --stop --purge deletes it)"
  exit 0
fi

mkdir -p "$run_dir"
echo "$port" >"$portfile"
"$server" --port "$port" --bind "$host" --dir "$run_dir" --daemonize yes \
  --pidfile "$pidfile" --logfile "$run_dir/redis.log" --appendonly yes --loadmodule "$module"
for _ in $(seq 100); do
  rcli "$port" PING >/dev/null 2>&1 && [ -f "$pidfile" ] && break
  sleep 0.1
done
if ! rcli "$port" MODULE LIST 2>/dev/null | grep -qix SHIELD; then
  echo "run.sh: redis-server did not start with Shield; see $run_dir/redis.log" >&2
  tail -n 5 "$run_dir/redis.log" >&2 || true
  exit 1
fi
echo "redis-server with Shield on $host:$port (pid $(cat "$pidfile"), data in $run_dir)"
rcli "$port" DEL demo:user123 >/dev/null
for _ in 1 2 3; do
  echo "> SHIELD.absorb demo:user123 30 60 13"
  rcli "$port" SHIELD.absorb demo:user123 30 60 13
done
echo "> GET demo:user123 ; PTTL demo:user123"
rcli "$port" GET demo:user123
rcli "$port" PTTL demo:user123
echo "Stop it with: scripts/run.sh --stop (keeps its data; --stop --purge deletes it)"
