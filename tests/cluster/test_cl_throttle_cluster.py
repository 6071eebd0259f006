"""CL.THROTTLE in a real 3-primary/3-replica cluster: routed by its key spec, MOVED from a node
that does not own the key, and each TAT on its slot's owner and that owner's replica."""

import uuid

import pytest
import redis
from shield_cluster import cluster_redirects


@pytest.fixture(scope="module")
def cluster(make_cluster):
    return make_cluster(primaries=3, replicas=1, node_timeout=5000)


def test_a_cluster_client_sends_each_key_to_its_owner_without_a_redirect(cluster):
    keys = {key: primary for primary in cluster.primaries()
            for key in cluster.keys_on(primary, f"cell-{uuid.uuid4().hex[:8]}", 2)}
    rc = cluster.client()
    before = cluster_redirects(cluster.nodes)
    try:
        for key in keys:
            assert rc.execute_command("CL.THROTTLE", key, 15, 30, 60) == [0, 16, 15, -1, 2]
    finally:
        rc.close()
    assert cluster_redirects(cluster.nodes) == before  # redis-py routes by COMMAND's key spec
    for key, owner in keys.items():
        with owner.client() as c:
            assert int(c.get(key)) > 0 and c.pttl(key) > 0
        replica = cluster.replica_of(owner)
        with owner.client() as c, replica.client() as rep:
            assert c.wait(1, 5000) == 1
            rep.execute_command("READONLY")
            assert rep.get(key) == c.get(key)


def test_a_node_that_does_not_own_the_key_answers_moved_and_writes_nothing(cluster):
    owner = cluster.primaries()[0]
    other = cluster.primaries()[1]
    key = cluster.keys_on(owner, f"cell-moved-{uuid.uuid4().hex[:8]}", 1)[0]
    with other.client() as c:
        with pytest.raises(redis.ResponseError, match=f"^MOVED {cluster.keyslot(key)} "):
            c.execute_command("CL.THROTTLE", key, 15, 30, 60)
        assert c.execute_command("CLUSTER", "COUNTKEYSINSLOT", cluster.keyslot(key)) == 0
    with owner.client() as c:
        assert c.exists(key) == 0
