"""Buckets move from a single instance into the cluster with `redis-cli --cluster import`.

Some buckets are written by Shield (SET n PXAT), some the way the original Rust module wrote them
(PSETEX key period_ms remaining): both are plain strings with an expiry, so both carry over.
"""

import subprocess
import uuid

import pytest
from shield_servers import HOST, Server, bucket_states, cli_binary

CAPACITY, PERIOD = 100, 3600


class Import:
    pass


@pytest.fixture(scope="module")
def imported(make_cluster, measured):
    cluster = make_cluster(primaries=3, replicas=0, node_timeout=5000)
    single = Server(cluster.binary).start()
    try:
        m = Import()
        m.cluster = cluster
        m.ours = [f"ours:{uuid.uuid4().hex[:8]}" for _ in range(30)]
        m.original = [f"orig:{uuid.uuid4().hex[:8]}" for _ in range(30)]
        with single.client() as s:
            for i, key in enumerate(m.ours):
                s.execute_command("SHIELD.absorb", key, CAPACITY, PERIOD, 1 + i)
            for i, key in enumerate(m.original):
                s.psetex(key, PERIOD * 1000, CAPACITY - 1 - i)  # the original's write
            m.before = bucket_states(s, m.ours + m.original)
        done = subprocess.run(
            [cli_binary(), "--cluster", "import", f"{HOST}:{cluster.nodes[0].port}",
             "--cluster-from", f"{HOST}:{single.port}", "--cluster-copy"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-3000:]
        return m
    finally:
        single.cleanup()


def test_imported_buckets_land_on_the_primary_owning_their_slot(imported):
    owners = set()
    for key in imported.before:
        owner = imported.cluster.owner(imported.cluster.keyslot(key))
        owners.add(owner.port)
        with owner.client() as c:
            assert c.exists(key) == 1, key
    assert len(owners) == 3


def test_imported_buckets_keep_their_tokens_and_expiry(imported, measured):
    drift = 0
    for key, (tokens, expire_at) in imported.before.items():
        owner = imported.cluster.owner(imported.cluster.keyslot(key))
        with owner.client() as c:
            assert c.get(key) == tokens, key
            drift = max(drift, abs(c.pexpiretime(key) - expire_at))
    measured["import from a single instance: largest PEXPIRETIME change (ms)"] = drift
    assert drift <= 100  # MIGRATE carries the time left; only the transfer time can shift it


def test_absorb_in_the_cluster_continues_buckets_written_by_shield_and_by_the_original(imported):
    client = imported.cluster.client()
    try:
        for key, (tokens, _) in imported.before.items():
            reply = client.execute_command("SHIELD.absorb", key, CAPACITY, PERIOD, 1)
            # An hour's period: well under one token refilled since the buckets were written.
            assert reply == int(tokens) - 1, key
    finally:
        client.close()


def test_a_node_without_the_module_answers_unknown_command(imported):
    bare = Server(imported.cluster.binary, module=None).start()
    try:
        with bare.client() as c, pytest.raises(Exception, match="unknown command"):
            c.execute_command("SHIELD.absorb", "user123", 100, 60, 5)
    finally:
        bare.cleanup()
