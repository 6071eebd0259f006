"""The commands added after the original's SHIELD.absorb, in a real 3-primary/3-replica cluster.

SHIELD.inspect reads on replicas after READONLY, SHIELD.absorb_multi and SHIELD.reset keep all
their keys in one slot (the server's CROSSSLOT and MOVED checks run before Shield does), and
SHIELD.stats CLUSTER sums every node's counters over the cluster bus without waiting longer than
its TIMEOUT for a node that is stopped or gone.
"""

import contextlib
import os
import signal
import time
import uuid

import pytest
import redis
from shield_cluster import cluster_redirects
from shield_servers import HOST, RespClient, wait_until

# SHIELD.stats's counter fields, read from a node of the cluster when it starts: the server is
# the list, not this file.
COUNTERS = []
# The counters generate_traffic leaves alone (it calls no CL.THROTTLE, gcra, window, quota or
# stats_reset, limit, limit_ro or settle, and no write fails to propagate); it moves every other one.
UNMOVED_BY_TRAFFIC = {"throttle_calls", "gcra_calls", "window_calls", "quota_calls", "propagation_errors",
                      "stats_reset_calls", "limit_calls", "limit_ro_calls", "settle_calls", "waited",
                      "granted_after_wait", "wait_timeouts", "wait_time_ms"}
VERBOSE_FIELDS = ["allowed", "remaining", "capacity", "period", "retry_after_ms", "reset_after_ms"]
# Counters a SHIELD.stats call adds to the node it runs on; its own reply already counts it.
ONE_STATS_CALL = {"calls": 1, "stats_calls": 1}


@pytest.fixture(scope="module")
def cluster(make_cluster):
    # One cluster for the whole module; the tests that stop or kill a node use a replica, so no
    # failover starts, and give it back before they end.
    started = make_cluster(primaries=3, replicas=1, node_timeout=5000)
    with started.primaries()[0].client() as c:
        COUNTERS[:] = list(as_map(c.execute_command("SHIELD.stats")))
    assert "calls" in COUNTERS and "stats_calls" in COUNTERS, COUNTERS
    return started


# ---- helpers -------------------------------------------------------------------------------


def as_map(reply):
    """A Shield map reply as a dict: RESP2 sends it as a flat list [field, value, ...]; the
    `nodes` value of SHIELD.stats CLUSTER is an array of such lists."""
    if isinstance(reply, dict):
        pairs = list(reply.items())
    else:
        assert len(reply) % 2 == 0, reply
        pairs = list(zip(reply[0::2], reply[1::2]))
    result = {}
    for field, value in pairs:
        assert field not in result, f"field {field!r} twice in {reply!r}"
        result[field] = [as_map(node) for node in value] if field == "nodes" else value
    return result


def stats(node):
    with node.client(socket_timeout=10) as c:
        return as_map(c.execute_command("SHIELD.stats"))


def cluster_stats(node, *args):
    """SHIELD.stats CLUSTER on `node`, and the seconds it took."""
    with node.client(socket_timeout=10) as c:
        started = time.monotonic()
        reply = c.execute_command("SHIELD.stats", "CLUSTER", *args)
        return as_map(reply), time.monotonic() - started


def counters(entry):
    return {field: entry[field] for field in COUNTERS}


def plus(*maps):
    return {field: sum(m.get(field, 0) for m in maps) for field in COUNTERS}


def node_roles(cluster):
    """port -> (node id, "primary" or "replica"), from CLUSTER NODES."""
    return {row["port"]: (row["id"], "replica" if "slave" in row["flags"] else "primary")
            for row in cluster.table()}


def tag():
    return "{t" + uuid.uuid4().hex[:8] + "}"


def moved(key_slot, owner):
    return f"MOVED {key_slot} {HOST}:{owner.port}"


def generate_traffic(cluster):
    """Allowed, denied and refused calls of every command on every primary, inspects on a replica."""
    rc = cluster.client()
    try:
        for primary in cluster.primaries():
            key, other = cluster.keys_on(primary, "traffic", 2)
            assert rc.execute_command("SHIELD.absorb", key, 10, 600, 4) == 6
            assert rc.execute_command("SHIELD.absorb", key, 10, 600, 7) == -1
            assert rc.execute_command("SHIELD.absorb", other, 10, 60, 2, "BURST", 20, "VERBOSE")
            assert rc.execute_command("SHIELD.refund", key, 10, 600, 3) == 9
            assert rc.execute_command("SHIELD.reset", key) == 1
            with pytest.raises(redis.ResponseError, match="capacity must be positive"):
                rc.execute_command("SHIELD.absorb", key, 0, 60)
            t = "{" + key + "}"  # a tag on this primary's slot
            assert rc.execute_command("SHIELD.absorb_multi", f"{t}:a", 5, 1, 2,
                                      f"{t}:b", "5:8", 60, 3) == [3, 5]
            assert rc.execute_command("SHIELD.absorb_multi", f"{t}:a", 5, 1, 9,
                                      f"{t}:b", 5, 60, 1) == [-1, 5]
            replica = cluster.replica_of(primary)
            with primary.client() as p:
                assert p.wait(1, 5000) == 1
            with replica.client() as r:
                r.execute_command("READONLY")
                assert as_map(r.execute_command("SHIELD.inspect", other, 10, 60))["allowed"] == 1
    finally:
        rc.close()


def assert_cluster_sum_matches_every_node(cluster, caller):
    """Reads each node's own SHIELD.stats, then SHIELD.stats CLUSTER on `caller`, and compares
    field by field: every node's entry is what it said itself (the caller's one also counts the
    CLUSTER call), and the top-level counters are the sum of the entries."""
    own = {node.port: stats(node) for node in cluster.nodes}
    reply, _ = cluster_stats(caller)
    roles = node_roles(cluster)

    assert list(reply)[-3:] == ["nodes_total", "nodes_answered", "nodes"]
    assert set(reply) == set(COUNTERS) | {"nodes_total", "nodes_answered", "nodes"}
    assert reply["nodes_total"] == reply["nodes_answered"] == len(cluster.nodes) == 6

    entries = {}
    for entry in reply["nodes"]:
        port = int(entry["address"].split("@")[0].rsplit(":", 1)[1])
        assert entry["address"].split("@")[0] == f"{HOST}:{port}"
        assert (entry["id"], entry["role"]) == roles[port]
        assert entry["status"] == "ok"
        assert port not in entries
        entries[port] = counters(entry)
    assert sorted(entries) == sorted(n.port for n in cluster.nodes)

    for node in cluster.nodes:
        expected = counters(own[node.port])
        if node is caller:
            expected = plus(expected, ONE_STATS_CALL)
        assert entries[node.port] == expected, f"node {node.port}"
    assert counters(reply) == plus(*entries.values())
    assert counters(reply) == plus(*(own.values()), ONE_STATS_CALL)
    return own, reply


@contextlib.contextmanager
def stopped(node):
    """`node` is alive but mute (SIGSTOP) inside the block, and running again (SIGCONT) after it."""
    os.kill(node.process.pid, signal.SIGSTOP)
    try:
        yield node
    finally:
        os.kill(node.process.pid, signal.SIGCONT)

    def answers():
        with node.client(socket_timeout=1) as c:
            return c.ping()

    wait_until(answers, what=f"node {node.port} to answer again")


# ---- SHIELD.inspect on replicas ---------------------------------------------------------------

INSPECT_CASES = {
    "a_take_that_fits": 1,
    "a_take_larger_than_the_bucket_holds_now": 60,
    "a_take_larger_than_the_bucket_can_ever_hold": 101,
}


@pytest.mark.parametrize("tokens", INSPECT_CASES.values(), ids=INSPECT_CASES.keys())
def test_inspect_on_a_replica_after_readonly_answers_what_the_primary_answers(cluster, tokens):
    key = "inspect:" + uuid.uuid4().hex
    owner = cluster.owner(cluster.keyslot(key))
    replica = cluster.replica_of(owner)
    with owner.client() as p, replica.client() as r:
        assert p.execute_command("SHIELD.absorb", key, 100, 1_000_000, 50) == 50
        assert p.wait(1, 5000) == 1
        r.execute_command("READONLY")
        on_primary = as_map(p.execute_command("SHIELD.inspect", key, 100, 1_000_000, tokens))
        on_replica = as_map(r.execute_command("SHIELD.inspect", key, 100, 1_000_000, tokens))
    assert list(on_replica) == VERBOSE_FIELDS
    for field in ["allowed", "remaining", "capacity", "period"]:
        assert on_replica[field] == on_primary[field], field
    # The two reads are a few milliseconds apart; the refill is one token per 10000 s.
    for field in ["retry_after_ms", "reset_after_ms"]:
        assert abs(on_replica[field] - on_primary[field]) <= 1000, (field, on_primary, on_replica)
    assert on_replica["allowed"] == (1 if tokens <= 50 else 0)
    assert on_replica["remaining"] == (50 - tokens if tokens <= 50 else 50)
    if tokens > 100:
        assert on_replica["retry_after_ms"] == -1


def test_inspect_on_a_replica_changes_nothing_there(cluster):
    key = "inspect-still:" + uuid.uuid4().hex
    owner = cluster.owner(cluster.keyslot(key))
    replica = cluster.replica_of(owner)
    with owner.client() as p:
        p.execute_command("SHIELD.absorb", key, 100, 1_000_000, 7)
        assert p.wait(1, 5000) == 1
    with replica.client(decode_responses=False) as r:
        r.execute_command("READONLY")

        def state():
            return (r.dump(key), r.pexpiretime(key), r.object("ENCODING", key), r.dbsize())

        before = state()
        for tokens in (1, 93, 200):
            r.execute_command("SHIELD.inspect", key, 100, 1_000_000, tokens)
        r.execute_command("SHIELD.inspect", key, 100, 1_000_000, 1, "BURST", 300)
        after = state()
    assert before[0] is not None and before[1] > 0
    assert after == before


def test_inspect_on_a_replica_of_a_bucket_never_written_leaves_it_missing(cluster):
    key = "inspect-missing:" + uuid.uuid4().hex
    replica = cluster.replica_of(cluster.owner(cluster.keyslot(key)))
    with replica.client() as r:
        r.execute_command("READONLY")
        reply = as_map(r.execute_command("SHIELD.inspect", key, 10, 60, 3))
        assert (reply["allowed"], reply["remaining"], reply["retry_after_ms"]) == (1, 7, 0)
        assert r.exists(key) == 0


def test_inspect_on_a_replica_without_readonly_answers_moved_to_the_primary(cluster):
    key = "inspect-moved:" + uuid.uuid4().hex
    slot = cluster.keyslot(key)
    owner = cluster.owner(slot)
    with cluster.replica_of(owner).client() as r, pytest.raises(redis.ResponseError) as error:
        r.execute_command("SHIELD.inspect", key, 10, 60)
    assert str(error.value) == moved(slot, owner)


# ---- SHIELD.absorb_multi ----------------------------------------------------------------------


@pytest.mark.parametrize("same_node", [True, False],
                         ids=["two_slots_of_one_node", "two_slots_of_two_nodes"])
def test_absorb_multi_over_two_slots_is_refused_with_crossslot_and_writes_nothing(cluster,
                                                                                  same_node):
    first, second, entry = cluster.keys_in_different_slots("two", same_node)
    before = stats(entry)
    with entry.client() as c, pytest.raises(redis.ResponseError, match="^CROSSSLOT"):
        c.execute_command("SHIELD.absorb_multi", first, 10, 60, 1, second, 10, 60, 1)
    for key in (first, second):
        with cluster.owner(cluster.keyslot(key)).client() as c:
            assert c.exists(key) == 0
    # The server refused the call before the module ran: Shield did not count it.
    after = stats(entry)
    assert after["absorb_multi_calls"] == before["absorb_multi_calls"]
    assert after["errors"] == before["errors"]


def test_absorb_multi_with_one_users_hash_tag_absorbs_both_buckets_on_their_owner(cluster):
    user = "{user:" + uuid.uuid4().hex[:8] + "}"
    sec, hour = f"{user}:sec", f"{user}:hour"
    assert cluster.keyslot(sec) == cluster.keyslot(hour)
    owner = cluster.owner(cluster.keyslot(sec))
    with owner.client() as c:
        assert c.execute_command("SHIELD.absorb_multi", sec, 10, 1, 1, hour, 1000, 3600, 1) == \
            [9, 999]
        assert c.get(sec) == "9" and c.get(hour) == "999"


@pytest.mark.parametrize("word", ["VERBOSE", "verbose"])
def test_absorb_multi_verbose_is_not_taken_for_a_key_in_the_slot_check(cluster, word):
    t = tag()
    assert cluster.keyslot(word) != cluster.keyslot(t)
    owner = cluster.owner(cluster.keyslot(t))
    with owner.client() as c:
        keys = c.execute_command("COMMAND GETKEYS", "SHIELD.absorb_multi",
                                 f"{t}:a", 10, 1, 1, f"{t}:b", 10, 60, 2, word)
        assert keys == [f"{t}:a", f"{t}:b"]
        reply = c.execute_command("SHIELD.absorb_multi", f"{t}:a", 10, 1, 1, f"{t}:b", 10, 60, 2,
                                  word)
    maps = [as_map(m) for m in reply]
    assert [(m["allowed"], m["remaining"]) for m in maps] == [(1, 9), (1, 8)]


NOT_OWNERS = ["another_primary", "the_owners_replica_after_readonly"]


@pytest.mark.parametrize("sent_to", NOT_OWNERS)
def test_absorb_multi_sent_to_a_node_that_does_not_own_the_slot_is_moved_as_a_whole(cluster,
                                                                                    sent_to):
    t = tag()
    slot = cluster.keyslot(t)
    owner = cluster.owner(slot)
    if sent_to == "another_primary":
        node = next(p for p in cluster.primaries() if p is not owner)
    else:
        node = cluster.replica_of(owner)
    with node.client() as c:
        c.execute_command("READONLY")
        with pytest.raises(redis.ResponseError) as error:
            c.execute_command("SHIELD.absorb_multi", f"{t}:a", 10, 1, 1, f"{t}:b", 10, 60, 2,
                              "VERBOSE")
    assert str(error.value) == moved(slot, owner)
    with owner.client() as c:
        assert c.exists(f"{t}:a", f"{t}:b") == 0


def test_redis_py_cluster_client_routes_absorb_multi_to_the_owner_without_redirects(cluster):
    t = tag()
    owner = cluster.owner(cluster.keyslot(t))
    rc = cluster.client()
    redirects_before = cluster_redirects(cluster.nodes)
    try:
        assert rc.execute_command("SHIELD.absorb_multi", f"{t}:sec", 10, 1, 1,
                                  f"{t}:hour", 1000, 3600, 1) == [9, 999]
        verbose = rc.execute_command("SHIELD.absorb_multi", f"{t}:sec", 10, 1, 1,
                                     f"{t}:hour", 1000, 3600, 1, "VERBOSE")
    finally:
        rc.close()
    assert [as_map(m)["remaining"] for m in verbose] == [8, 998]
    assert cluster_redirects(cluster.nodes) == redirects_before
    with owner.client() as c:
        assert c.get(f"{t}:sec") == "8" and c.get(f"{t}:hour") == "998"


# ---- SHIELD.reset -----------------------------------------------------------------------------


@pytest.mark.parametrize("same_node", [True, False],
                         ids=["two_slots_of_one_node", "two_slots_of_two_nodes"])
def test_reset_of_keys_in_two_slots_is_refused_with_crossslot_and_deletes_nothing(cluster,
                                                                                 same_node):
    first, second, entry = cluster.keys_in_different_slots("two", same_node)
    for key in (first, second):
        with cluster.owner(cluster.keyslot(key)).client() as c:
            assert c.execute_command("SHIELD.absorb", key, 10, 60) == 9
    with entry.client() as c, pytest.raises(redis.ResponseError, match="^CROSSSLOT"):
        c.execute_command("SHIELD.reset", first, second)
    for key in (first, second):
        with cluster.owner(cluster.keyslot(key)).client() as c:
            assert c.get(key) == "9"


def test_reset_of_one_users_hash_tagged_buckets_through_the_cluster_client(cluster):
    t = tag()
    rc = cluster.client()
    try:
        rc.execute_command("SHIELD.absorb_multi", f"{t}:a", 10, 1, 1, f"{t}:b", 10, 60, 1)
        assert rc.execute_command("SHIELD.reset", f"{t}:a", f"{t}:b", f"{t}:never") == 2
        assert rc.execute_command("SHIELD.absorb", f"{t}:a", 10, 1) == 9
    finally:
        rc.close()


# ---- SHIELD.stats CLUSTER ---------------------------------------------------------------------


def test_stats_cluster_equals_the_sum_of_every_nodes_own_stats(cluster):
    generate_traffic(cluster)
    caller = cluster.replicas()[0]
    own, reply = assert_cluster_sum_matches_every_node(cluster, caller)
    # The traffic reached every primary and a replica, and each kind of counter.
    assert sum(own[p.port]["absorb_calls"] > 0 for p in cluster.primaries()) == 3
    assert all(reply[field] > 0 for field in COUNTERS if field not in UNMOVED_BY_TRAFFIC)


def test_stats_cluster_on_a_primary_answers_for_all_six_nodes_quickly(cluster):
    caller = cluster.primaries()[1]
    reply, seconds = cluster_stats(caller, "TIMEOUT", 5000)
    assert reply["nodes_total"] == reply["nodes_answered"] == 6
    assert seconds < 1.0  # every node answers: no waiting for the timeout
    roles = sorted(entry["role"] for entry in reply["nodes"])
    assert roles == ["primary"] * 3 + ["replica"] * 3


def test_stats_cluster_in_resp3_is_a_map_whose_nodes_are_maps(cluster):
    with RespClient(cluster.replicas()[1].port, protocol=3) as c:
        reply = c.call("SHIELD.stats", "CLUSTER")
    assert isinstance(reply, dict), reply
    assert list(reply)[-3:] == ["nodes_total", "nodes_answered", "nodes"]
    assert set(reply) == set(COUNTERS) | {"nodes_total", "nodes_answered", "nodes"}
    assert reply["nodes_total"] == reply["nodes_answered"] == 6
    assert all(isinstance(node, dict) and node["status"] == "ok" for node in reply["nodes"])
    assert counters(reply) == plus(*reply["nodes"])


@pytest.mark.parametrize("args, timeout", [(("TIMEOUT", 500), 0.5), ((), 1.0)],
                         ids=["timeout_500_ms", "the_default_timeout_of_1000_ms"])
def test_stats_cluster_answers_within_its_timeout_while_a_node_is_stopped(cluster, args, timeout):
    target = cluster.replicas()[0]
    caller = next(p for p in cluster.primaries() if cluster.replica_of(p) is not target)
    with stopped(target):
        reply, seconds = cluster_stats(caller, *args)
    assert timeout - 0.05 <= seconds < timeout + 1.5
    assert reply["nodes_total"] == 6 and reply["nodes_answered"] == 5
    by_port = {int(e["address"].split("@")[0].rsplit(":", 1)[1]): e for e in reply["nodes"]}
    assert by_port[target.port]["status"] == "timeout"
    assert not set(COUNTERS) & set(by_port[target.port])  # no counters from a mute node
    assert all(e["status"] == "ok" for port, e in by_port.items() if port != target.port)
    answered = [counters(e) for port, e in by_port.items() if port != target.port]
    assert counters(reply) == plus(*answered)


def test_stats_cluster_after_a_stopped_node_resumes_counts_it_once_again(cluster):
    # The stopped node's late answers to the calls above must not count in this call.
    target = cluster.replicas()[0]
    caller = cluster.primaries()[0]
    wait_until(lambda: cluster_stats(caller)[0]["nodes_answered"] == 6, timeout=10,
               what="every node to answer SHIELD.stats CLUSTER again")
    assert_cluster_sum_matches_every_node(cluster, caller)
    assert_cluster_sum_matches_every_node(cluster, target)


@pytest.mark.parametrize("timeout", [0, 60001])
def test_stats_cluster_timeout_out_of_range_is_an_error(cluster, timeout):
    with cluster.primaries()[0].client() as c, \
            pytest.raises(redis.ResponseError, match="^timeout must be between 1 and 60000$"):
        c.execute_command("SHIELD.stats", "CLUSTER", "TIMEOUT", timeout)


REFUSED_INSIDE = "cannot run inside MULTI or a script|[Bb]locking.*(transaction|script)|not allowed"


def test_stats_cluster_inside_multi_is_an_error(cluster):
    node = cluster.primaries()[0]
    with node.client() as c:
        with c.pipeline(transaction=True) as tx:
            tx.execute_command("SHIELD.stats", "CLUSTER")
            with pytest.raises(redis.ResponseError, match=REFUSED_INSIDE):
                tx.execute()
        assert c.ping()
    reply, _ = cluster_stats(node)
    assert reply["nodes_answered"] == 6


def test_stats_cluster_inside_a_script_is_an_error(cluster):
    with cluster.primaries()[0].client() as c:
        with pytest.raises(redis.ResponseError, match=REFUSED_INSIDE):
            c.eval("return redis.call('SHIELD.stats', 'CLUSTER')", 0)
        assert c.ping()


def test_stats_cluster_lists_a_killed_node_without_waiting_for_it(cluster):
    """Kills a replica by its PID and restarts it afterwards, so the cluster stays whole."""
    target = cluster.replicas()[-1]
    caller = next(p for p in cluster.primaries() if cluster.replica_of(p) is not target)
    target.kill()
    try:
        for _ in range(2):  # right after the kill, and again once the bus has tried to reconnect
            reply, seconds = cluster_stats(caller, "TIMEOUT", 500)
            assert seconds < 2.0
            assert reply["nodes_total"] == 6 and reply["nodes_answered"] == 5
            by_port = {int(e["address"].split("@")[0].rsplit(":", 1)[1]): e
                       for e in reply["nodes"]}
            assert by_port[target.port]["status"] in ("timeout", "unreachable")
            answered = [counters(e) for e in reply["nodes"] if e["status"] == "ok"]
            assert len(answered) == 5
            assert counters(reply) == plus(*answered)
    finally:
        cluster.restart(target)
        cluster.wait_healthy(timeout=60)
