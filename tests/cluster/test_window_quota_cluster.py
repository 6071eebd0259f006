"""SHIELD.window and SHIELD.quota in a real 3-primary cluster: the server routes them by their
one key (MOVED to the slot's owner, before Shield runs, writing nothing), a cluster client sends
them straight to the owner, and the key lives in its slot there."""

import uuid

import pytest
import redis
from shield_cluster import cluster_redirects
from shield_servers import HOST

CALLS = [
    ("SHIELD.window", (10, 60, 2)),
    ("SHIELD.window", (10, 60, 2, "VERBOSE")),
    ("SHIELD.quota", (10, "DAY", 2)),
    ("SHIELD.quota", (10, "MONTH", 2, "VERBOSE")),
]
IDS = [f"{command} {' '.join(map(str, args))}" for command, args in CALLS]


@pytest.fixture(scope="module")
def cluster(make_cluster):
    return make_cluster(primaries=3, replicas=0, node_timeout=5000)


@pytest.mark.parametrize("command,args", CALLS, ids=IDS)
def test_a_call_sent_to_a_node_that_does_not_own_the_slot_is_moved_and_writes_nothing(
        cluster, command, args):
    key = f"wq:{uuid.uuid4().hex[:8]}"
    slot = cluster.keyslot(key)
    owner = cluster.owner(slot)
    for node in cluster.primaries():
        if node is owner:
            continue
        with node.client() as c:
            with pytest.raises(redis.ResponseError) as error:
                c.execute_command(command, key, *args)
        assert str(error.value) == f"MOVED {slot} {HOST}:{owner.port}"
    for node in cluster.primaries():
        with node.client() as c:
            assert c.execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 0


@pytest.mark.parametrize("command,args", CALLS, ids=IDS)
def test_a_cluster_client_routes_the_call_to_the_owner_without_redirects(cluster, command, args):
    tag = "{u" + uuid.uuid4().hex[:8] + "}"
    key = f"{tag}:limit"
    owner = cluster.owner(cluster.keyslot(key))
    rc = cluster.client()
    redirects_before = cluster_redirects(cluster.nodes)
    try:
        reply = rc.execute_command(command, key, *args)
    finally:
        rc.close()
    assert cluster_redirects(cluster.nodes) == redirects_before
    remaining = reply if isinstance(reply, int) else dict(zip(reply[::2], reply[1::2]))["remaining"]
    assert remaining == 8
    with owner.client() as c:
        assert c.exists(key) == 1 and c.pttl(key) > 0
