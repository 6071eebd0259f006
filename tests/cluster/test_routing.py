"""Real cluster clients route SHIELD.absorb by its key, and each bucket lives on its slot's owner."""

import json
import os
import subprocess
import uuid

import pytest
import redis
from shield_cluster import cluster_redirects
from shield_servers import HOST, cli_binary, require

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_CLIENTS = os.path.join(HERE, "node_modules")


@pytest.fixture(scope="module")
def cluster(make_cluster):
    # cluster-node-timeout 5000 as in the deployment guide: nothing here waits for a failover.
    return make_cluster(primaries=3, replicas=1, node_timeout=5000)


def keys_on_every_primary(cluster, prefix, per_primary=2):
    """Fresh keys, `per_primary` on each primary, slots found with CLUSTER KEYSLOT."""
    return {key: primary for primary in cluster.primaries()
            for key in cluster.keys_on(primary, prefix, per_primary)}


def assert_bucket_lives_on_owner(cluster, key, owner, expected_tokens):
    slot = cluster.keyslot(key)
    with owner.client() as c:
        assert c.get(key) == str(expected_tokens)
        assert c.pttl(key) > 0
    for node in cluster.primaries():
        if node is not owner:
            with node.client() as c:
                assert c.execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 0


def run_node(script, ports, calls):
    require(os.path.isdir(NODE_CLIENTS), "tests/cluster/node_modules missing (npm install in tests/cluster)")
    done = subprocess.run(["node", os.path.join(HERE, script),
                           json.dumps({"ports": ports, "calls": calls})],
                          capture_output=True, text=True, timeout=60, cwd=HERE)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])["replies"]


def test_redis_py_cluster_client_routes_each_bucket_to_the_primary_owning_its_slot(cluster):
    owners = keys_on_every_primary(cluster, "py")
    rc = cluster.client()
    redirects_before = cluster_redirects(cluster.nodes)
    try:
        for key in owners:
            assert rc.execute_command("SHIELD.absorb", key, 100, 60, 5) == 95
            assert rc.execute_command("SHIELD.absorb", key, 100, 60, 5) == 90
    finally:
        rc.close()
    # redis-py finds the key from COMMAND's key positions and goes straight to the owner.
    assert cluster_redirects(cluster.nodes) == redirects_before
    assert len({o.port for o in owners.values()}) == 3
    for key, owner in owners.items():
        assert_bucket_lives_on_owner(cluster, key, owner, 90)


def test_ioredis_cluster_client_routes_each_bucket_to_the_primary_owning_its_slot(cluster, measured):
    owners = keys_on_every_primary(cluster, "ioredis")
    calls = [[key, 100, 60, 5] for key in owners] * 2
    redirects_before = cluster_redirects(cluster.nodes)
    replies = run_node("ioredis_absorb.js", [p.port for p in cluster.primaries()], calls)
    # ioredis takes key positions from its own table of built-in commands, not from COMMAND, so
    # it sends a module command to any node and follows the MOVED: correct, one hop longer.
    moved, _ = (a - b for a, b in zip(cluster_redirects(cluster.nodes), redirects_before))
    measured["ioredis: MOVED replies per SHIELD.absorb call"] = f"{moved}/{len(calls)}"
    assert replies == [95] * len(owners) + [90] * len(owners)
    for key, owner in owners.items():
        assert_bucket_lives_on_owner(cluster, key, owner, 90)


def test_node_redis_cluster_client_routes_each_bucket_to_the_primary_owning_its_slot(cluster):
    owners = keys_on_every_primary(cluster, "noderedis")
    calls = [[key, 100, 60, 5] for key in owners] * 2
    # Bootstrapped from one replica only: the client must discover the primaries itself.
    redirects_before = cluster_redirects(cluster.nodes)
    replies = run_node("node_redis_absorb.js", [cluster.replicas()[0].port], calls)
    # node-redis is given the key with the command, and goes straight to the owner.
    assert cluster_redirects(cluster.nodes) == redirects_before
    assert replies == [95] * len(owners) + [90] * len(owners)
    for key, owner in owners.items():
        assert_bucket_lives_on_owner(cluster, key, owner, 90)


def test_redis_cli_in_cluster_mode_follows_the_redirect_to_the_owner(cluster):
    owners = keys_on_every_primary(cluster, "cli", per_primary=1)
    entry = cluster.primaries()[0]
    for key, owner in owners.items():
        done = subprocess.run([cli_binary(), "-c", "-h", HOST, "-p", str(entry.port),
                               "SHIELD.absorb", key, "100", "60", "5"],
                              capture_output=True, text=True, timeout=30)
        assert done.stdout.strip() == "95", done.stdout + done.stderr
        assert_bucket_lives_on_owner(cluster, key, owner, 95)


def test_a_primary_that_does_not_own_the_slot_answers_moved_to_the_owner(cluster):
    key = "moved:" + uuid.uuid4().hex
    slot = cluster.keyslot(key)
    owner = cluster.owner(slot)
    for node in cluster.primaries():
        if node is owner:
            continue
        with node.client() as c, pytest.raises(redis.ResponseError) as error:
            c.execute_command("SHIELD.absorb", key, 10, 60)
        assert str(error.value) == f"MOVED {slot} {HOST}:{owner.port}"
        with node.client() as c:
            assert c.execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 0


def test_a_replica_answers_moved_to_its_primary_even_after_readonly(cluster):
    key = "replica-moved:" + uuid.uuid4().hex
    slot = cluster.keyslot(key)
    owner = cluster.owner(slot)
    replica = cluster.replica_of(owner)
    with replica.client() as c:
        c.execute_command("READONLY")  # reads may be served here; absorb writes, so it may not
        with pytest.raises(redis.ResponseError) as error:
            c.execute_command("SHIELD.absorb", key, 10, 60)
    assert str(error.value) == f"MOVED {slot} {HOST}:{owner.port}"


def test_hash_tagged_buckets_of_one_user_share_one_slot_and_one_node(cluster):
    keys = ["{user:123}:api", "{user:123}:web", "{user:123}:mobile"]
    slots = {cluster.keyslot(k) for k in keys}
    assert slots == {cluster.keyslot("user:123")}
    rc = cluster.client()
    try:
        for key in keys:
            rc.delete(key)
            assert rc.execute_command("SHIELD.absorb", key, 100, 60, 5) == 95
    finally:
        rc.close()
    owner = cluster.owner(slots.pop())
    for key in keys:
        assert_bucket_lives_on_owner(cluster, key, owner, 95)


def test_hash_tagged_buckets_absorb_together_in_one_pipeline_on_their_node(cluster):
    tag = "{team:" + uuid.uuid4().hex[:6] + "}"
    keys = [f"{tag}:api", f"{tag}:web", f"{tag}:mobile"]
    owner = cluster.owner(cluster.keyslot(keys[0]))
    with owner.client() as c:
        with c.pipeline(transaction=True) as tx:  # MULTI/EXEC: one slot, so no CROSSSLOT
            for key in keys:
                tx.execute_command("SHIELD.absorb", key, 10, 60, 4)
            for key in keys:
                tx.execute_command("SHIELD.absorb", key, 10, 60, 4)
            assert tx.execute() == [6, 6, 6, 2, 2, 2]
        with c.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.execute_command("SHIELD.absorb", key, 10, 60, 4)
            assert pipe.execute() == [-1, -1, -1]


def test_a_transaction_over_buckets_in_different_slots_of_one_node_is_refused_with_crossslot(
        cluster):
    entry = cluster.primaries()[0]
    owners = keys_on_every_primary(cluster, "cross", per_primary=2)
    first, second = [k for k, o in owners.items() if o is entry]
    assert cluster.keyslot(first) != cluster.keyslot(second)
    with entry.client() as c:
        with c.pipeline(transaction=True) as tx:
            tx.execute_command("SHIELD.absorb", first, 10, 60)
            tx.execute_command("SHIELD.absorb", second, 10, 60)
            with pytest.raises(redis.ResponseError, match="CROSSSLOT"):
                tx.execute()
        assert c.get(first) is None and c.get(second) is None  # nothing ran


def test_random_keys_spread_over_all_three_primaries(cluster):
    rc = cluster.client()
    prefix = "spread:" + uuid.uuid4().hex[:6]
    try:
        for i in range(300):
            assert rc.execute_command("SHIELD.absorb", f"{prefix}:{i}", 10, 60) == 9
    finally:
        rc.close()
    counts = {}
    for node in cluster.primaries():
        with node.client() as c:
            counts[node.port] = len(list(c.scan_iter(match=f"{prefix}:*", count=1000)))
            assert c.dbsize() > 0
    assert sum(counts.values()) == 300
    assert all(n >= 50 for n in counts.values()), counts


def test_the_module_is_loaded_on_all_six_nodes(cluster):
    assert len(cluster.nodes) == 6
    roles = []
    for node in cluster.nodes:
        with node.client() as c:
            names = [m["name"] for m in c.module_list()]
            roles.append(c.info("replication")["role"])
        assert "SHIELD" in names, node.port
    assert sorted(roles) == ["master"] * 3 + ["slave"] * 3


def test_every_replica_holds_its_primarys_buckets_with_the_same_expiry(cluster):
    owners = keys_on_every_primary(cluster, "repl", per_primary=3)
    rc = cluster.client()
    try:
        for key in owners:
            rc.execute_command("SHIELD.absorb", key, 50, 600, 7)
    finally:
        rc.close()
    for key, owner in owners.items():
        replica = cluster.replica_of(owner)
        with owner.client() as p, replica.client() as r:
            assert p.wait(1, 5000) == 1
            r.execute_command("READONLY")
            assert r.get(key) == p.get(key) == "43"
            assert r.pexpiretime(key) == p.pexpiretime(key) > 0
