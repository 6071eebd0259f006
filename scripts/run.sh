#!/usr/bin/env bash
# Sets up and runs Shield on this machine.
#   scripts/run.sh                install what is missing (scripts/install-deps.sh's run set), build,
#                                 start redis-server with Shield on 127.0.0.1:6379, show
#                                 SHIELD.absorb working and print what to do next. Its data (an AOF)
#                                 is kept in .run/standalone, so a restart keeps the buckets.
#   scripts/run.sh --cluster      the same, then the six-node cluster on ports 7001-7006
#                                 (scripts/cluster.sh up), data in .run/cluster
#   scripts/run.sh --stop         stop what the two above started, by the PIDs in their pidfiles;
#                                 their data stays, and the next start continues from it
#   scripts/run.sh --stop --purge stop, then delete that data (.run/standalone and .run/cluster)
#
# It stops and starts nothing else. If the server it started is still running, it says so and
# leaves it alone (stop it first to restart with a new build). It installs first and then looks at
# the port (installing Debian's redis-server starts that package's own service on 6379 where
# systemd runs): if something else has the port, it names that process (from `ss -ltnp`) and stops.
#
# Environment:
#   SHIELD_PORT          the standalone server's port (default 6379)
#   SHIELD_RUN_DIR       where the standalone server keeps its data, log, pidfile and port
#                        (default .run/standalone in this repository)
#   SHIELD_CLUSTER_BASE_PORT, SHIELD_CLUSTER_PORTS, SHIELD_CLUSTER_DIR  the cluster's ports and data
#                        folder (scripts/cluster.sh). The ports a cluster was started on are written
#                        to <cluster data folder>/ports, so --stop finds them without the variable.
#   SHIELD_REDIS_SERVER, SHIELD_REDIS_CLI  the binaries (default redis-server, redis-cli on PATH)
#   For tests: SHIELD_SKIP_DEPS=1 skips scripts/install-deps.sh, SHIELD_DEPS_SCRIPT=<path> runs that
#   instead of it, and SHIELD_MODULE=<path> loads that module instead of building one.
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

# How to call this script and the example again, as the user would type it: from the repository
# root, or by full path; with the settings that this run was given and the next run needs.
if [ "$PWD" = "$root" ]; then here=""; else here="$root/"; fi
again="bash ${here}scripts/run.sh"
settings=""
[ -z "${SHIELD_RUN_DIR:-}" ] || settings+="SHIELD_RUN_DIR=$SHIELD_RUN_DIR "
[ -z "${SHIELD_CLUSTER_DIR:-}" ] || settings+="SHIELD_CLUSTER_DIR=$SHIELD_CLUSTER_DIR "

rcli() { timeout 5 "$cli" -h "$host" -p "$@"; }

port_busy() { # something listens on host:PORT
  (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null
}

# What listens on PORT, as ss names it ("redis-server (pid 123)"), or nothing when ss is missing or
# may not see the process (another user's, without root).
port_owner() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -n1 |
    sed -E 's/users:\(\("([^"]*)",pid=([0-9]+)/\1 (pid \2)/'
}

refuse_busy_port() {
  local owner pid
  owner=$(port_owner "$port")
  if [ -n "$owner" ]; then
    echo "run.sh: port $port on $host is in use by $owner, which this script did not start." >&2
    pid=$(sed -E 's/.*\(pid ([0-9]+)\)$/\1/' <<<"$owner")
    if grep -qs 'redis-server\.service' "/proc/$pid/cgroup"; then
      echo "That is Debian's redis-server service: 'systemctl stop redis-server' stops it" >&2
      echo "('systemctl disable redis-server' keeps it from starting at boot)." >&2
    fi
  else
    echo "run.sh: port $port on $host is in use by a process this script did not start" >&2
    echo "(ss -ltnp names it, as root)." >&2
  fi
  echo "Stop it, or choose another port: ${settings}SHIELD_PORT=$((port + 1)) $again" >&2
  exit 1
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
    SHIELD_REDIS_CLI="$cli" "$root/scripts/cluster.sh" down
    rm -rf "${run_dir:?}"
    echo "deleted $run_dir"
  else
    SHIELD_REDIS_CLI="$cli" "$root/scripts/cluster.sh" stop
  fi
  exit 0
fi

if [ "$mode" = standalone ] && pid=$(running_pid); then
  started_port=$(cat "$portfile" 2>/dev/null || echo "$port")
  port_setting=""
  [ "$started_port" = 6379 ] || port_setting="SHIELD_PORT=$started_port "
  echo "run.sh: Shield's redis-server is already running on $host:$started_port (pid $pid, data in $run_dir); left as it is."
  echo "To restart it (say, with a new build): ${settings}$again --stop && ${settings}${port_setting}$again"
  exit 0
fi

if [ -n "${SHIELD_DEPS_SCRIPT:-}" ]; then
  "$SHIELD_DEPS_SCRIPT"
elif [ "${SHIELD_SKIP_DEPS:-}" != 1 ]; then
  SHIELD_DEPS=run "$root/scripts/install-deps.sh"
fi
# Only now: installing Debian's redis-server may have started its service on the port.
if [ "$mode" = standalone ] && port_busy "$port"; then refuse_busy_port; fi

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
  SHIELD_REDIS_CLI="$cli" "$root/scripts/cluster.sh" status
  first=$(SHIELD_REDIS_CLI="$cli" "$root/scripts/cluster.sh" ports | cut -d' ' -f1)
  echo
  echo "> redis-cli -c -p $first SHIELD.absorb user123 100 60 5"
  "$cli" -c -h "$host" -p "$first" SHIELD.absorb user123 100 60 5
  echo
  echo "Next:"
  echo "  connect:  redis-cli -c -p $first          (-c follows the cluster's redirects; clients: docs/cluster.md)"
  echo "  stop:     ${settings}$again --stop          (keeps its data; --stop --purge deletes it)"
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
redis_url=""
[ "$port" = 6379 ] || redis_url="REDIS_URL=redis://$host:$port "
echo
echo "Next:"
echo "  connect:           redis-cli -p $port"
echo "  the HTTP example:  ${redis_url}python3 ${here}examples/http_ratelimit.py"
echo "                     then, in another shell: curl -i http://127.0.0.1:8080/"
echo "  stop:              ${settings}$again --stop          (keeps its data; --stop --purge deletes it)"
