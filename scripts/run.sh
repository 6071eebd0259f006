#!/usr/bin/env bash
# Sets up and runs Shield on this machine.
#   scripts/run.sh            install what is missing, build, start redis-server with Shield on
#                             127.0.0.1:6379 (SHIELD_PORT to change) and show SHIELD.absorb working
#   scripts/run.sh --cluster  the same, then the six-node cluster on ports 7001-7006
#   scripts/run.sh --stop     stop what the two above started
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-standalone}
run_dir="$root/.run/standalone"
port=${SHIELD_PORT:-6379}
pidfile="$run_dir/redis.pid"

# Stops the server this script started: the PID in its pidfile, if that process is still a
# redis-server on our port (a PID can be reused by an unrelated process after a reboot).
stop_standalone() {
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "redis-server.*:$port"; then
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    echo "stopped redis-server (pid $pid)"
  fi
  rm -f "$pidfile"
}

case "$mode" in
  --stop)
    stop_standalone
    "$root/scripts/cluster.sh" down
    exit 0
    ;;
  standalone | --cluster) ;;
  *)
    echo "usage: $0 [--cluster | --stop]" >&2
    exit 2
    ;;
esac

SHIELD_DEPS=run "$root/scripts/install-deps.sh"
# The unit tests need GoogleTest, which the run set of packages leaves out.
"$root/scripts/build.sh" -DSHIELD_BUILD_TESTS=OFF
module="$root/build/libredis_shield.so"

if [ "$mode" = --cluster ]; then
  SHIELD_MODULE="$module" "$root/scripts/cluster.sh" up
  "$root/scripts/cluster.sh" status
  echo
  echo "> redis-cli -c -p 7001 SHIELD.absorb user123 100 60 5"
  redis-cli -c -p 7001 SHIELD.absorb user123 100 60 5
  echo "Stop it with: scripts/run.sh --stop"
  exit 0
fi

stop_standalone
if redis-cli -p "$port" PING >/dev/null 2>&1; then
  echo "run.sh: something already answers on port $port; stop it or set SHIELD_PORT" >&2
  exit 1
fi
mkdir -p "$run_dir"
redis-server --port "$port" --bind 127.0.0.1 --dir "$run_dir" --daemonize yes \
  --pidfile "$pidfile" --logfile "$run_dir/redis.log" --appendonly yes --loadmodule "$module"
for _ in $(seq 100); do
  redis-cli -p "$port" PING >/dev/null 2>&1 && [ -f "$pidfile" ] && break
  sleep 0.1
done
if ! redis-cli -p "$port" MODULE LIST 2>/dev/null | grep -qx SHIELD; then
  echo "run.sh: redis-server did not start with Shield; see $run_dir/redis.log" >&2
  tail -n 5 "$run_dir/redis.log" >&2 || true
  exit 1
fi
echo "redis-server with Shield on 127.0.0.1:$port (pid $(cat "$pidfile"), data in $run_dir)"
redis-cli -p "$port" DEL demo:user123 >/dev/null
for _ in 1 2 3; do
  echo "> SHIELD.absorb demo:user123 30 60 13"
  redis-cli -p "$port" SHIELD.absorb demo:user123 30 60 13
done
echo "> GET demo:user123 ; PTTL demo:user123"
redis-cli -p "$port" GET demo:user123
redis-cli -p "$port" PTTL demo:user123
echo "Stop it with: scripts/run.sh --stop"
