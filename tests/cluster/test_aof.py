"""A cluster primary killed with -9 and restarted from its AOF has every bucket as it was."""


import pytest
from shield_servers import bucket_states


class Crash:
    pass


@pytest.fixture(scope="module")
def crash(make_cluster):
    # Three primaries and no replica, so nothing can take over while the node is down; the
    # guide's node-timeout 5000 and AOF with fsync on every write.
    cluster = make_cluster(primaries=3, replicas=0, node_timeout=5000,
                           extra_args=["--appendfsync", "always"])
    c = Crash()
    c.cluster = cluster
    c.node = cluster.primaries()[1]
    c.keys = cluster.keys_on(c.node, "aof", 40)
    with c.node.client() as r:
        for i, key in enumerate(c.keys):
            r.execute_command("SHIELD.absorb", key, 50, 3600 + i, 1 + i % 7)
            r.execute_command("SHIELD.absorb", key, 50, 3600 + i, 2)
        c.before = bucket_states(r, c.keys)
        c.node_id = r.execute_command("CLUSTER", "MYID")
    c.node.kill()
    cluster.restart(c.node)
    cluster.wait_healthy()
    return c


def test_restarted_primary_has_every_bucket_value_and_expiry_from_its_aof(crash):
    with crash.node.client() as r:
        assert bucket_states(r, crash.keys) == crash.before


def test_restarted_primary_keeps_its_identity_and_slots(crash):
    with crash.node.client() as r:
        assert r.execute_command("CLUSTER", "MYID") == crash.node_id
    assert crash.cluster.owner(crash.cluster.keyslot(crash.keys[0])) is crash.node


def test_restarted_primary_continues_each_bucket_from_its_last_state(crash):
    client = crash.cluster.client()
    try:
        for i, key in enumerate(crash.keys):
            left = int(crash.before[key][0])
            # Periods of an hour: less than a second passed, so no whole token refilled.
            assert client.execute_command("SHIELD.absorb", key, 50, 3600 + i, 1) == left - 1
    finally:
        client.close()
