"""A primary with a replica under Sentinel: after a Sentinel failover the new primary continues
every bucket from its last state, and Sentinel-aware clients find it."""

import os
import subprocess
import uuid

import pytest
from redis.sentinel import Sentinel
from shield_servers import HOST, ServerExited, free_port, wait_for_replica_link, wait_until

MASTER = "shield"


@pytest.fixture
def sentinel_setup(make_server, server_binary, tmp_path):
    primary = make_server()
    replica = make_server(extra_args=["--replicaof", HOST, str(primary.port)])
    wait_for_replica_link(replica)
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind {HOST}\ndir {tmp_path}\nlogfile {tmp_path / 'sentinel.log'}\n"
        f"sentinel monitor {MASTER} {HOST} {primary.port} 1\n"
        f"sentinel down-after-milliseconds {MASTER} 1000\n"
        f"sentinel failover-timeout {MASTER} 10000\n")
    process = subprocess.Popen([server_binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)

    def sentinel_knows_the_replica():
        if process.poll() is not None:
            raise ServerExited("sentinel exited")
        sentinel = Sentinel([(HOST, port)], socket_timeout=1)
        return sentinel.discover_slaves(MASTER)

    try:
        wait_until(sentinel_knows_the_replica, timeout=20, what="sentinel to see the replica")
        yield primary, replica, Sentinel([(HOST, port)], socket_timeout=2)
    finally:
        if process.poll() is None:
            os.kill(process.pid, 9)
            process.wait(timeout=10)


def test_sentinel_failover_keeps_buckets(sentinel_setup):
    primary, replica, sentinel = sentinel_setup
    master = sentinel.master_for(MASTER, decode_responses=True)
    keys = [f"sentinel:{i}:{uuid.uuid4().hex[:6]}" for i in range(20)]
    last = {key: master.execute_command("SHIELD.absorb", key, 100, 3600, i + 1) for i, key in enumerate(keys)}
    assert master.wait(1, 5000) == 1

    # Sentinel refuses (NOGOODSLAVE) until it has read the replica's INFO itself: retry until it starts.
    wait_until(lambda: sentinel.sentinel_failover(MASTER), timeout=30, interval=0.2, what="failover to start")
    wait_until(lambda: sentinel.discover_master(MASTER)[1] == replica.port, timeout=30,
               what="sentinel to promote the replica")
    def replica_is_primary():
        with replica.client() as c:
            return c.info("replication")["role"] == "master"

    wait_until(replica_is_primary, what="replica to be primary")

    master = sentinel.master_for(MASTER, decode_responses=True)
    for key in keys:
        assert master.execute_command("SHIELD.absorb", key, 100, 3600, 1) == last[key] - 1
