#!/usr/bin/env bash
# A six-node Redis Cluster with Shield on every node, on this machine, without Docker.
#
#   scripts/cluster.sh up      start 3 primaries + 3 replicas on 127.0.0.1:7001-7006, each with
#                              --loadmodule Shield, cluster-enabled, cluster-node-timeout 5000 and
#                              appendonly yes; join them with `redis-cli --cluster create
#                              --cluster-replicas 1` and wait until every node says cluster_state:ok
#                              with all 16384 slots assigned. If the nodes are already running it
#                              says so and changes nothing; if they were stopped without `down`
#                              (their data is still there) it starts them again on that data.
#   scripts/cluster.sh status  for every node: pid, role, module loaded, cluster state, keys
#                              (DBSIZE) and memory; then `redis-cli --cluster check`. Exits 1 if a
#                              node is down, lacks the module, or the cluster is not ok.
#   scripts/cluster.sh stop    stop the processes `up` started (by the PIDs in its pidfiles, never
#                              by name) and keep their data: the next `up` starts them again on it.
#   scripts/cluster.sh down    stop them the same way and delete their data.
#   scripts/cluster.sh ports   print the six ports, space-separated (the first is a primary).
#
# Environment:
#   SHIELD_MODULE              the module to load (default build/libredis_shield.so in this repo)
#   SHIELD_CLUSTER_PORTS       six ports, space- or comma-separated (default 7001 ... 7006); the
#                              first three become primaries. Each port's bus port (+10000) is used too.
#   SHIELD_CLUSTER_BASE_PORT   or just the first port: the six are BASE ... BASE+5
#   SHIELD_CLUSTER_DIR         where node data, logs and pidfiles go (default .run/cluster in this
#                              repo, one folder per port)
# `up` writes the ports to SHIELD_CLUSTER_DIR/ports; without either port variable, every command
# uses the ports written there (so `stop` stops the cluster `up` started, whatever its ports),
# and 7001-7006 when there are none.
#   SHIELD_CLUSTER_NODE_TIMEOUT  cluster-node-timeout in ms (default 5000)
#   SHIELD_REDIS_SERVER, SHIELD_REDIS_CLI  the binaries (default redis-server, redis-cli on PATH)
#   SHIELD_CLUSTER_WAIT        seconds to wait for the nodes and the cluster (default 60)
#
# Everything listens on 127.0.0.1 only. scripts/run.sh --cluster builds the module and calls this.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
host=127.0.0.1
server=${SHIELD_REDIS_SERVER:-redis-server}
cli=${SHIELD_REDIS_CLI:-redis-cli}
module=${SHIELD_MODULE:-$root/build/libredis_shield.so}
run_dir=${SHIELD_CLUSTER_DIR:-$root/.run/cluster}
node_timeout=${SHIELD_CLUSTER_NODE_TIMEOUT:-5000}
wait_seconds=${SHIELD_CLUSTER_WAIT:-60}

ports_file="$run_dir/ports"
recorded=()
[ ! -f "$ports_file" ] || read -r -a recorded <"$ports_file"
if [ -n "${SHIELD_CLUSTER_PORTS:-}" ]; then
  read -r -a ports <<<"${SHIELD_CLUSTER_PORTS//,/ }"
elif [ -z "${SHIELD_CLUSTER_BASE_PORT:-}" ] && [ "${#recorded[@]}" -gt 0 ]; then
  ports=("${recorded[@]}")
else
  base=${SHIELD_CLUSTER_BASE_PORT:-7001}
  ports=()
  for i in 0 1 2 3 4 5; do ports+=($((base + i))); done
fi
if [ "${#ports[@]}" -ne 6 ]; then
  echo "cluster.sh: need exactly six ports, got: ${ports[*]}" >&2
  exit 2
fi

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

rcli() { # rcli PORT ARGS... : one command to one node, short timeout, no cluster redirects
  local port=$1
  shift
  timeout 5 "$cli" -h "$host" -p "$port" "$@"
}

pid_of() { # the PID from a node's pidfile, if that process is still alive
  local file="$run_dir/$1/redis.pid" pid
  [ -f "$file" ] || return 1
  pid=$(cat "$file")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

port_busy() { # something already listens on PORT
  (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null
}

# What listens on PORT, as ss names it ("redis-server (pid 123)"), or "a process" when ss is missing
# or may not see it (another user's, without root).
port_owner() {
  local owner=""
  if command -v ss >/dev/null 2>&1; then
    owner=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -n1 |
      sed -E 's/users:\(\("([^"]*)",pid=([0-9]+)/\1 (pid \2)/')
  fi
  echo "${owner:-a process}"
}

wait_for() { # wait_for WHAT COMMAND...: poll COMMAND until it succeeds or the deadline passes
  local what=$1
  shift
  local deadline=$((SECONDS + wait_seconds))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "cluster.sh: timed out after ${wait_seconds}s waiting for $what" >&2
      return 1
    fi
    sleep 0.1
  done
}

node_answers() { [ "$(rcli "$1" PING 2>/dev/null)" = PONG ]; }

node_cluster_ok() { # cluster_state:ok, all slots assigned, knows all six nodes
  local info
  info=$(rcli "$1" CLUSTER INFO 2>/dev/null | tr -d '\r') || return 1
  grep -qx 'cluster_state:ok' <<<"$info" &&
    grep -qx 'cluster_slots_ok:16384' <<<"$info" &&
    grep -qx 'cluster_known_nodes:6' <<<"$info"
}

replica_linked() { # a node that is a replica has its link to the primary up
  local info
  info=$(rcli "$1" INFO replication 2>/dev/null | tr -d '\r') || return 1
  grep -qx 'role:master' <<<"$info" || grep -qx 'master_link_status:up' <<<"$info"
}

all_ok() {
  local port
  for port in "${ports[@]}"; do
    node_cluster_ok "$port" && replica_linked "$port" || return 1
  done
}

start_node() {
  local port=$1 dir="$run_dir/$1"
  mkdir -p "$dir"
  "$server" --port "$port" --bind "$host" --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-node-timeout "$node_timeout" --appendonly yes \
    --loadmodule "$module"
}

cmd_up() {
  if [ ! -f "$module" ]; then
    echo "cluster.sh: module not found: $module (build it, or set SHIELD_MODULE)" >&2
    exit 1
  fi
  module=$(cd "$(dirname "$module")" && pwd)/$(basename "$module")

  local port running=() stopped=() resume=yes others=()
  # A cluster that `up` started from this folder on other ports, still running: starting another
  # one here would lose track of it.
  if [ "${recorded[*]}" != "${ports[*]}" ]; then
    for port in "${recorded[@]}"; do
      if pid_of "$port" >/dev/null; then others+=("$port"); fi
    done
    if [ "${#others[@]}" -gt 0 ]; then
      echo "cluster.sh: the cluster of $run_dir runs on ports ${recorded[*]}; stop it first (unset SHIELD_CLUSTER_PORTS and SHIELD_CLUSTER_BASE_PORT, then: $0 stop)" >&2
      exit 1
    fi
  fi
  for port in "${ports[@]}"; do
    if pid_of "$port" >/dev/null; then running+=("$port"); else stopped+=("$port"); fi
    [ -f "$run_dir/$port/nodes.conf" ] || resume=no
  done
  if [ "${#stopped[@]}" -eq 0 ]; then
    echo "cluster.sh: already up on ports ${ports[*]} (see: $0 status)"
    return 0
  fi
  for port in "${stopped[@]}"; do
    local p
    for p in "$port" $((port + 10000)); do
      if port_busy "$p"; then
        echo "cluster.sh: port $p (node $port or its bus port) on $host is in use by $(port_owner "$p"), which this script did not start;" >&2
        echo "stop it, or choose other ports: SHIELD_CLUSTER_BASE_PORT=<first of six free ports>" >&2
        exit 1
      fi
    done
  done
  if [ "${#running[@]}" -gt 0 ] && [ "$resume" = no ]; then
    echo "cluster.sh: only some nodes are running (${running[*]}); run '$0 down' first" >&2
    exit 1
  fi

  if [ "$resume" = yes ]; then
    echo "cluster.sh: starting the stopped nodes ${stopped[*]} again on their data in $run_dir"
  else
    for port in "${ports[@]}"; do rm -rf "${run_dir:?}/$port"; done
  fi
  mkdir -p "$run_dir"
  echo "${ports[*]}" >"$ports_file"
  for port in "${stopped[@]}"; do start_node "$port"; done
  for port in "${stopped[@]}"; do wait_for "node $port to answer PING" node_answers "$port"; done

  if [ "$resume" = no ]; then
    local addresses=()
    for port in "${ports[@]}"; do addresses+=("$host:$port"); done
    "$cli" --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes \
      >"$run_dir/create.log" 2>&1 || {
      cat "$run_dir/create.log" >&2
      echo "cluster.sh: redis-cli --cluster create failed" >&2
      exit 1
    }
  fi
  wait_for "cluster_state:ok on every node with all replicas linked" all_ok
  echo "cluster.sh: up - 3 primaries + 3 replicas on $host ports ${ports[*]}, data in $run_dir"
  echo "  try: $cli -c -p ${ports[0]} SHIELD.absorb user123 100 60 5"
}

cmd_status() {
  local port pid role modules module_ok state keys memory problems=0 live=""
  printf '%-6s %-8s %-8s %-7s %-14s %-6s %s\n' PORT PID ROLE SHIELD CLUSTER_STATE KEYS MEMORY
  for port in "${ports[@]}"; do
    if ! pid=$(pid_of "$port") || ! node_answers "$port"; then
      printf '%-6s %-8s %s\n' "$port" "${pid:--}" "NOT RUNNING"
      problems=$((problems + 1))
      continue
    fi
    live=${live:-$port}
    role=$(rcli "$port" INFO replication | tr -d '\r' | sed -n 's/^role://p')
    [ "$role" = slave ] && role=replica
    [ "$role" = master ] && role=primary
    modules=$(rcli "$port" MODULE LIST)
    if grep -qix shield <<<"$modules"; then module_ok=loaded; else
      module_ok=MISSING
      problems=$((problems + 1))
    fi
    state=$(rcli "$port" CLUSTER INFO | tr -d '\r' | sed -n 's/^cluster_state://p')
    [ "$state" = ok ] || problems=$((problems + 1))
    keys=$(rcli "$port" DBSIZE)
    memory=$(rcli "$port" INFO memory | tr -d '\r' | sed -n 's/^used_memory_human://p')
    printf '%-6s %-8s %-8s %-7s %-14s %-6s %s\n' "$port" "$pid" "$role" "$module_ok" "$state" "$keys" "$memory"
  done
  if [ -n "$live" ]; then
    echo
    echo "CLUSTER INFO (node $live):"
    rcli "$live" CLUSTER INFO | tr -d '\r' |
      grep -E '^cluster_(state|slots_assigned|slots_ok|slots_pfail|slots_fail|known_nodes|size|current_epoch):' |
      sed 's/^/  /'
    echo
    echo "CLUSTER NODES (node $live):"
    rcli "$live" CLUSTER NODES | sed 's/^/  /'
    echo
    echo "redis-cli --cluster check $host:$live"
    timeout 30 "$cli" --cluster check "$host:$live" || problems=$((problems + 1))
  fi
  if [ "$problems" -gt 0 ]; then
    echo "cluster.sh: $problems problem(s) found" >&2
    return 1
  fi
}

cmd_stop() {
  local port pid deadline signalled=() ports_stopped=()
  # SIGTERM to every node first (each saves and exits on its own), then wait for all of them.
  for port in "${ports[@]}"; do
    pid=$(pid_of "$port") || continue
    # Only a process that is the server we started on this port (its title names the port).
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- ":$port"; then
      kill "$pid"
      signalled+=("$pid")
      ports_stopped+=("$port")
    else
      echo "cluster.sh: pid $pid in $run_dir/$port/redis.pid is not our node on port $port; left alone" >&2
    fi
  done
  deadline=$((SECONDS + 30))
  for pid in "${signalled[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  done
  for i in "${!signalled[@]}"; do
    echo "stopped node ${ports_stopped[$i]} (pid ${signalled[$i]})"
  done
  [ "${#signalled[@]}" -gt 0 ] || echo "cluster.sh: no running nodes on ports ${ports[*]}"
}

cmd_down() {
  local port
  cmd_stop
  for port in "${ports[@]}"; do rm -rf "${run_dir:?}/$port"; done
  rm -f "$run_dir/create.log" "$ports_file"
  rmdir "$run_dir" 2>/dev/null || true
}

case "${1:-}" in
  up) cmd_up ;;
  status) cmd_status ;;
  stop) cmd_stop ;;
  down) cmd_down ;;
  ports) echo "${ports[*]}" ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
