"""A real Redis Cluster of redis-server processes with Shield loaded, for the cluster tests.

`Cluster` starts N primaries and N*R replicas on free loopback ports (each with a free bus port),
joins them with `redis-cli --cluster create`, waits by polling until every node reports
cluster_state:ok with all 16384 slots assigned and agrees on who owns them, and every replica's
link to its primary is up. `stop()` kills every process by the PID it started, even after a
failed test (the fixtures call it from their finalizers).
"""

import shutil
import subprocess
import threading
import time
import uuid

from redis.cluster import ClusterNode, RedisCluster

from shield_servers import HOST, MODULE, Server, cli_binary, wait_until

SLOTS = 16384


def node_table(client):
    """CLUSTER NODES of one node as a list of dicts (id, port, flags, master, slots, connected)."""
    rows = []
    raw = client.execute_command("CLUSTER", "NODES")  # split form: no redis-py reply parser
    if isinstance(raw, bytes):
        raw = raw.decode()
    for line in str(raw).splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        address = parts[1].split("@")[0]
        slots = set()
        for item in parts[8:]:
            if item.startswith("["):  # slot being imported / migrated
                continue
            low, _, high = item.partition("-")
            slots.update(range(int(low), int(high or low) + 1))
        flags = parts[2].split(",")
        rows.append({
            "id": parts[0],
            "port": int(address.rsplit(":", 1)[1]) if ":" in address else None,
            "flags": flags,
            "master": parts[3],
            "connected": parts[7] == "connected",
            "slots": slots,
        })
    return rows


class Cluster:
    """N primaries, each with `replicas` replicas, all with the Shield module loaded."""

    def __init__(self, binary=None, *, primaries=3, replicas=1, node_timeout=5000,
                 extra_args=(), module=MODULE):
        self.binary = binary or shutil.which("redis-server")
        self.primary_count = primaries
        self.replicas_per_primary = replicas
        self.node_timeout = node_timeout
        args = ["--cluster-node-timeout", str(node_timeout), "--appendonly", "yes", *extra_args]
        self.nodes = [Server(self.binary, cluster=True, module=module, extra_args=args)
                      for _ in range(primaries * (1 + replicas))]

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, timeout=90.0):
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"{HOST}:{node.port}" for node in self.nodes]
            subprocess.run(
                [cli_binary(), "--cluster", "create", *addresses,
                 "--cluster-replicas", str(self.replicas_per_primary), "--cluster-yes"],
                check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
            self.wait_healthy(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Kills every node by its PID and removes its folder."""
        for node in self.nodes:
            node.cleanup()

    def restart(self, node, timeout=30.0):
        """Starts a stopped or killed node again on the same port, in the same folder."""
        node.start(timeout=timeout)
        return node

    # ---- health ----------------------------------------------------------------------------

    def wait_healthy(self, timeout=60.0):
        """Until every live node says ok, covers all slots, agrees on owners, replicas linked."""
        wait_until(self.healthy, timeout=timeout, interval=0.05, what="cluster to become healthy")

    def healthy(self):
        live = [n for n in self.nodes if n.alive]
        views = []
        for node in live:
            with node.client(socket_timeout=2) as c:
                info = c.cluster("INFO")
                if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != SLOTS:
                    return False
                if int(info["cluster_known_nodes"]) != len(self.nodes):
                    return False
                table = node_table(c)
                # Every node must see the whole topology: all primaries and all replicas.
                if sum("slave" in row["flags"] for row in table) != \
                        self.primary_count * self.replicas_per_primary:
                    return False
                views.append(sorted((row["port"], tuple(sorted(row["slots"])))
                                    for row in table if "master" in row["flags"] and row["slots"]))
                if any("fail" in row["flags"] or "fail?" in row["flags"] for row in table
                       if self.node_by_port(row["port"]).alive):
                    return False
                role = c.info("replication")
                if role["role"] == "slave" and role.get("master_link_status") != "up":
                    return False
        return all(view == views[0] for view in views)

    # ---- topology --------------------------------------------------------------------------

    def node_by_port(self, port):
        return next(n for n in self.nodes if n.port == port)

    def live_node(self):
        return next(n for n in self.nodes if n.alive)

    def table(self):
        with self.live_node().client(socket_timeout=2) as c:
            return node_table(c)

    def primaries(self):
        """The live primaries that own slots, in slot order."""
        rows = [r for r in self.table() if "master" in r["flags"] and r["slots"]
                and "fail" not in r["flags"]]
        rows.sort(key=lambda r: min(r["slots"]))
        return [self.node_by_port(r["port"]) for r in rows]

    def replicas(self):
        return [self.node_by_port(r["port"]) for r in self.table() if "slave" in r["flags"]]

    def node_id(self, node):
        with node.client() as c:
            return c.execute_command("CLUSTER MYID")

    def owner(self, slot):
        for row in self.table():
            if "master" in row["flags"] and slot in row["slots"]:
                return self.node_by_port(row["port"])
        raise LookupError(f"no node owns slot {slot}")

    def replica_of(self, primary):
        primary_id = self.node_id(primary)
        for row in self.table():
            if "slave" in row["flags"] and row["master"] == primary_id:
                return self.node_by_port(row["port"])
        raise LookupError(f"no replica of {primary.port}")

    def keyslot(self, key):
        with self.live_node().client() as c:
            return c.cluster("KEYSLOT", key)

    def keys_in_different_slots(self, prefix, same_node):
        """Two fresh keys of different slots, both on the first primary (`same_node`) or the
        second on another primary; and the first primary."""
        first_owner, other = self.primaries()[:2]
        first, second = self.keys_on(first_owner, prefix, 2)
        if not same_node:
            second = self.keys_on(other, prefix, 1)[0]
        assert self.keyslot(first) != self.keyslot(second)
        return first, second, first_owner

    def keys_on(self, primary, prefix, count):
        """`count` fresh keys whose slots `primary` serves (slots asked with CLUSTER KEYSLOT)."""
        keys = []
        while len(keys) < count:
            key = f"{prefix}:{uuid.uuid4().hex[:8]}"
            if self.owner(self.keyslot(key)) is primary:
                keys.append(key)
        return keys

    # ---- clients ---------------------------------------------------------------------------

    def startup_ports(self):
        return [n.port for n in self.nodes if n.alive]

    def client(self, **kwargs):
        """An unmodified redis-py cluster client bootstrapped from every live node."""
        kwargs.setdefault("decode_responses", True)
        nodes = [ClusterNode(HOST, port) for port in self.startup_ports()]
        return RedisCluster(startup_nodes=nodes, **kwargs)


class AbsorbLoad:
    """Client threads absorbing one token at a time, round robin over their own buckets, through
    unmodified redis-py cluster clients (which follow MOVED and ASK themselves). Each bucket is
    absorbed by one thread only, so its replies form one sequence. Every call is recorded with the
    monotonic times it was sent and answered; whatever the client raised instead of handling it
    itself goes to `errors`. The one load generator of the cluster tests that move slots."""

    def __init__(self, cluster, buckets, threads=3):
        self.cluster = cluster
        self.buckets = buckets  # key -> (capacity, period in seconds)
        self.calls = {key: [] for key in buckets}  # key -> [(sent, answered, reply)]
        self.errors = []
        self.started = self.stopped = None
        self.stopping = threading.Event()
        keys = sorted(buckets)
        self.threads = [threading.Thread(target=self._work, args=(keys[i::threads],), daemon=True)
                        for i in range(threads)]

    def _work(self, keys):
        client = self.cluster.client()
        try:
            while not self.stopping.is_set():
                for key in keys:
                    capacity, period = self.buckets[key]
                    sent = time.monotonic()
                    try:
                        reply = client.execute_command("SHIELD.absorb", key, capacity, period, 1)
                    except Exception as error:  # anything the client did not handle itself
                        self.errors.append(f"{key}: {error!r}")
                        continue
                    self.calls[key].append((sent, time.monotonic(), reply))
        finally:
            client.close()

    def start(self):
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)
        self.stopped = time.monotonic()

    def replies(self, key):
        return [reply for _, _, reply in self.calls[key]]

    def calls_since(self, key, moment):
        """How many calls to `key` were sent at or after `moment` (time.monotonic())."""
        return sum(1 for sent, _, _ in self.calls[key] if sent >= moment)


def wait_for_promotion(cluster, node, timeout=60.0):
    """Polls until `node` reports itself a primary that owns slots; returns seconds waited."""
    started = time.monotonic()

    def promoted():
        with node.client(socket_timeout=2) as c:
            if c.info("replication")["role"] != "master":
                return False
            mine = [r for r in node_table(c) if "myself" in r["flags"]]
            return bool(mine and mine[0]["slots"])

    wait_until(promoted, timeout=timeout, interval=0.05, what=f"node {node.port} to be promoted")
    return time.monotonic() - started


def cluster_redirects(nodes, kinds=("MOVED", "ASK")):
    """The replies of each of `kinds` that the given nodes have sent so far (INFO errorstats), as a
    tuple in that order: (moved, ask) by default."""
    totals = [0] * len(kinds)
    for node in nodes:
        if not node.alive:
            continue
        with node.client() as c:
            stats = c.info("errorstats")
        for i, kind in enumerate(kinds):
            totals[i] += _count(stats.get(f"errorstat_{kind}"))
    return tuple(totals)


def _count(stat):
    """An errorstat entry: redis-py gives {'count': n} or the raw 'count=n'."""
    if stat is None:
        return 0
    if isinstance(stat, dict):
        return int(stat["count"])
    return int(str(stat).split("=", 1)[1])


__all__ = ["Cluster", "AbsorbLoad", "node_table", "wait_for_promotion", "cluster_redirects", "SLOTS"]
