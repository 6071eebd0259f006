"""After a failover the promoted replica continues every bucket from where the primary left it.

The original module never replicated its writes, so a promoted replica had no buckets and every
caller got a full bucket again. Shield propagates each absorb as SET key n PXAT ms, so the replica
already holds the bucket when it takes over.
"""

import time

import pytest
from shield_cluster import wait_for_promotion
from shield_servers import wait_until

CAPACITY = 100
PERIOD = 1_000_000  # seconds: refill is one token in 10000 s, none during a test


@pytest.fixture(scope="module")
def cluster(make_cluster):
    # cluster-node-timeout 5000, the value the deployment guide uses, so the failover times
    # measured here are the ones a deployment with that setting gets.
    return make_cluster(primaries=3, replicas=1, node_timeout=5000)


def drain_differently(client, keys):
    """Takes 3, 4, 5, ... tokens from the buckets, one call at a time; the last replies."""
    last = {}
    for i, key in enumerate(keys):
        for _ in range(i + 3):
            last[key] = client.execute_command("SHIELD.absorb", key, CAPACITY, PERIOD, 1)
    return last


def absorb_once_each(client, keys):
    return {key: client.execute_command("SHIELD.absorb", key, CAPACITY, PERIOD, 1) for key in keys}


class Failover:
    """One failover of `old_primary` to its replica, with the buckets it owned."""

    def __init__(self, cluster, old_primary, tag):
        self.old_primary = old_primary
        self.promoted = cluster.replica_of(old_primary)
        self.keys = cluster.keys_on(old_primary, tag, 12)


@pytest.fixture(scope="module")
def graceful(cluster, measured):
    """CLUSTER FAILOVER on the replica of the first primary."""
    f = Failover(cluster, cluster.primaries()[0], "graceful")
    client = cluster.client()
    try:
        f.before = drain_differently(client, f.keys)
        with f.promoted.client() as r:
            assert r.execute_command("CLUSTER", "FAILOVER") == "OK"
        f.seconds = wait_for_promotion(cluster, f.promoted, timeout=30)
        f.after = absorb_once_each(client, f.keys)  # the client follows MOVED to the new owner
    finally:
        client.close()
    cluster.wait_healthy()
    measured["graceful failover: seconds until the replica owned the slots"] = round(f.seconds, 2)
    return f


@pytest.fixture(scope="module")
def hard(cluster, graceful, measured):
    """kill -9 of a primary whose writes a replica acknowledged (WAIT 1 returned 1)."""
    f = Failover(cluster, next(p for p in cluster.primaries() if p is not graceful.promoted), "hard")
    client = cluster.client()
    try:
        f.before = drain_differently(client, f.keys)
        with f.old_primary.client() as p:
            f.acknowledged = p.wait(1, 5000)
        killed_at = time.monotonic()
        f.old_primary.kill()
        f.seconds = wait_for_promotion(cluster, f.promoted, timeout=60)
        # The first absorb that a fresh client gets through after the kill.
        probe = f"{{{f.keys[0]}}}:probe"

        def absorb_probe():
            fresh = cluster.client()
            try:
                return fresh.execute_command("SHIELD.absorb", probe, CAPACITY, PERIOD, 1)
            finally:
                fresh.close()

        wait_until(absorb_probe, timeout=60, interval=0.05, what="absorb after the failover")
        f.unavailable = time.monotonic() - killed_at
        client.close()
        client = cluster.client()
        f.after = absorb_once_each(client, f.keys)
    finally:
        client.close()
        if not f.old_primary.alive:
            cluster.restart(f.old_primary)
    cluster.wait_healthy(timeout=60)
    with f.old_primary.client() as c:
        f.old_role = c.info("replication")
    measured["hard failover (kill -9, node-timeout 5000): seconds until promoted"] = round(f.seconds, 2)
    measured["hard failover: seconds from kill to the first successful absorb"] = round(
        f.unavailable, 2)
    return f


def test_graceful_failover_promoted_replica_continues_each_bucket_from_its_last_state(graceful):
    assert graceful.after == {key: left - 1 for key, left in graceful.before.items()}
    assert all(left < CAPACITY - 1 for left in graceful.after.values())


def test_graceful_failover_turns_the_old_primary_into_a_replica_of_the_promoted_node(cluster,
                                                                                      graceful):
    assert cluster.replica_of(graceful.promoted) is graceful.old_primary


def test_hard_failover_starts_from_writes_a_replica_acknowledged(hard):
    assert hard.acknowledged == 1


def test_hard_failover_promotes_the_replica_after_the_node_timeout(cluster, hard):
    # Failure detection needs node-timeout; the election adds about a second more.
    assert cluster.node_timeout / 1000 <= hard.seconds + 0.5 < cluster.node_timeout / 1000 + 10


def test_hard_failover_promoted_replica_continues_each_bucket_from_its_last_state(hard):
    assert hard.after == {key: left - 1 for key, left in hard.before.items()}


def test_killed_primary_restarts_as_a_replica_of_the_promoted_node(cluster, hard):
    assert hard.old_role["role"] == "slave"
    assert hard.old_role["master_port"] == hard.promoted.port
    assert cluster.replica_of(hard.promoted) is hard.old_primary
    with hard.old_primary.client() as c:
        c.execute_command("READONLY")
        for key, left in hard.after.items():
            assert c.get(key) == str(left)
