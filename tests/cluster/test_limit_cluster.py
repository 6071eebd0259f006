"""SHIELD.limit and SHIELD.limit_ro in a real 3-primary/3-replica cluster.

The keys come after <numkeys>, at positions the key specs give (COMMAND GETKEYS), so the server
checks them like any multi-key command before Shield runs: keys of one hash tag are decided on
their slot's owner, keys of two slots get the server's CROSSSLOT and a node that does not own the
slot answers MOVED, both writing nothing. SHIELD.limit_ro is readonly: a replica answers it after
READONLY and changes nothing there. Which cluster clients route the call straight to the owner
and which follow the MOVED is measured here with the clients themselves.
"""

import json
import os
import subprocess
import uuid

import pytest
import redis
from redis.exceptions import RedisClusterException
from shield_cluster import cluster_redirects
from shield_servers import HOST, require

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_CLIENTS = os.path.join(HERE, "node_modules")
POLICY_FIELDS = ["name", "algorithm", "allowed", "remaining", "limit", "window", "reset_after_ms",
                 "retry_after_ms"]
# Per client: 5 a second with a burst of 10, and 1000 a day (the README's example).
POLICIES = ["ip", "BUCKET", 5, 1, "BURST", 10, "day", "QUOTA", 1000, "DAY"]
LONG = 1_000_000  # seconds: no test crosses a period this long
COMMANDS = ["SHIELD.limit", "SHIELD.limit_ro"]


@pytest.fixture(scope="module")
def cluster(make_cluster):
    return make_cluster(primaries=3, replicas=1, node_timeout=5000)


# ---- helpers -------------------------------------------------------------------------------


def tag():
    return "{l" + uuid.uuid4().hex[:8] + "}"


def text(reply):
    """A reply read with decode_responses=False, as one read with it."""
    if isinstance(reply, list):
        return [text(item) for item in reply]
    return reply.decode() if isinstance(reply, bytes) else reply


def decision(reply):
    """A SHIELD.limit RESP2 reply (a flat field/value list) as a dict, its policies as dicts."""
    reply = text(reply)
    assert isinstance(reply, list) and len(reply) % 2 == 0, reply
    result = dict(zip(reply[::2], reply[1::2]))
    assert list(result)[:4] == ["allowed", "retry_after_ms", "violated", "policies"], reply
    policies = []
    for policy in result["policies"]:
        assert policy[::2] == POLICY_FIELDS, policy
        policies.append(dict(zip(policy[::2], policy[1::2])))
    result["policies"] = policies
    return result


def remaining(reply):
    return [policy["remaining"] for policy in decision(reply)["policies"]]


def stats(node):
    with node.client() as c:
        reply = c.execute_command("SHIELD.stats")
    return reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2]))


def limit_calls(nodes):
    """SHIELD.limit and SHIELD.limit_ro calls Shield counted on `nodes`."""
    return sum(stats(n)["limit_calls"] + stats(n)["limit_ro_calls"] for n in nodes if n.alive)


def getkeys_calls(nodes):
    """COMMAND GETKEYS calls the nodes answered (INFO commandstats)."""
    total = 0
    for node in nodes:
        with node.client() as c:
            entry = c.info("commandstats").get("cmdstat_command|getkeys")
        total += int(entry["calls"]) if entry else 0
    return total


def moved(slot, owner):
    return f"MOVED {slot} {HOST}:{owner.port}"


def key_pair(t):
    return f"{t}:ip", f"{t}:day"


def assert_nothing_in_slot_anywhere(cluster, slot):
    for node in cluster.primaries():
        with node.client() as c:
            assert c.execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 0, node.port


def run_node(script, ports, calls):
    """Runs `script` (JavaScript) with node in tests/cluster, where the clients are installed."""
    require(os.path.isdir(NODE_CLIENTS), "tests/cluster/node_modules missing (npm install in tests/cluster)")
    done = subprocess.run(["node", "-e", script, json.dumps({"ports": ports, "calls": calls})],
                          capture_output=True, text=True, timeout=60, cwd=HERE)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])["replies"]


# Each call is [key, key, policy words...]: SHIELD.limit 2 <keys> <policies>.
IOREDIS = """
const Redis = require("ioredis");
async function main() {
  const { ports, calls } = JSON.parse(process.argv[1]);
  const cluster = new Redis.Cluster(ports.map((port) => ({ host: "127.0.0.1", port })));
  try {
    const replies = [];
    for (const words of calls) replies.push(await cluster.call("SHIELD.limit", 2, ...words));
    console.log(JSON.stringify({ replies }));
  } finally {
    cluster.disconnect();
  }
}
main().catch((error) => { console.error(error); process.exit(1); });
"""

NODE_REDIS = """
const { createCluster } = require("redis");
async function main() {
  const { ports, calls } = JSON.parse(process.argv[1]);
  const cluster = createCluster({ rootNodes: ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })) });
  cluster.on("error", (error) => console.error(error));
  await cluster.connect();
  try {
    const replies = [];
    for (const words of calls) {
      // sendCommand(firstKey, isReadonly, args): the caller names the key that routes the call.
      replies.push(await cluster.sendCommand(words[0], false, ["SHIELD.limit", "2", ...words.map(String)]));
    }
    console.log(JSON.stringify({ replies }));
  } finally {
    await cluster.disconnect();
  }
}
main().catch((error) => { console.error(error); process.exit(1); });
"""


# ---- one hash tag: decided on the slot's owner -------------------------------------------------


def test_keys_with_one_hash_tag_are_decided_together_on_their_slots_owner(cluster):
    t = tag()
    ip, day = key_pair(t)
    slot = cluster.keyslot(ip)
    assert cluster.keyslot(day) == slot
    owner = cluster.owner(slot)
    with owner.client() as c:
        first = decision(c.execute_command("SHIELD.limit", 2, ip, day, *POLICIES))
        assert first["allowed"] == 1 and first["violated"] == []
        assert [(p["name"], p["remaining"], p["limit"]) for p in first["policies"]] == \
            [("ip", 9, 10), ("day", 999, 1000)]
        assert remaining(c.execute_command("SHIELD.limit", 2, ip, day, *POLICIES)) == [8, 998]
        assert c.get(ip) == "8" and c.get(day) == "2"
        assert c.execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 2
    for node in cluster.primaries():
        if node is not owner:
            with node.client() as c:
                assert c.execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 0


def test_the_policy_words_are_not_taken_for_keys_in_the_slot_check(cluster):
    # "ip", "day", "BUCKET", ... hash to other slots than the tag: only the keys count.
    t = tag()
    ip, day = key_pair(t)
    owner = cluster.owner(cluster.keyslot(t))
    assert {cluster.keyslot(word) for word in ("ip", "day", "HEADERS")} != {cluster.keyslot(t)}
    with owner.client() as c:
        for command in COMMANDS:
            assert c.execute_command("COMMAND GETKEYS", command, 2, ip, day, *POLICIES, "HEADERS") == \
                [ip, day]
        reply = decision(c.execute_command("SHIELD.limit", 2, ip, day, *POLICIES, "HEADERS"))
    headers = dict(zip(reply["headers"][::2], reply["headers"][1::2]))
    assert headers["RateLimit-Policy"] == '"ip";q=10;w=2, "day";q=1000;w=86400'


def test_a_refused_call_on_the_owner_takes_nothing_from_either_key(cluster):
    t = tag()
    ip, day = key_pair(t)
    policies = ["ip", "BUCKET", 1, LONG, "day", "QUOTA", 1000, "DAY"]
    with cluster.owner(cluster.keyslot(t)).client() as c:
        assert remaining(c.execute_command("SHIELD.limit", 2, ip, day, *policies)) == [0, 999]
        refused = decision(c.execute_command("SHIELD.limit", 2, ip, day, *policies))
        assert refused["allowed"] == 0 and refused["violated"] == ["ip"]
        assert c.get(ip) == "0" and c.get(day) == "1"


# ---- CROSSSLOT and MOVED: the server's checks, before Shield runs ------------------------------


@pytest.mark.parametrize("same_node", [True, False], ids=["two_slots_of_one_node", "two_slots_of_two_nodes"])
@pytest.mark.parametrize("command", COMMANDS)
def test_keys_of_two_slots_are_refused_with_crossslot_and_nothing_is_written(cluster, command,
                                                                            same_node):
    first, second, entry = cluster.keys_in_different_slots("lx", same_node)
    counted = limit_calls(cluster.nodes)
    with entry.client() as c, pytest.raises(redis.ResponseError, match="^CROSSSLOT"):
        c.execute_command(command, 2, first, second, *POLICIES)
    for key in (first, second):
        with cluster.owner(cluster.keyslot(key)).client() as c:
            assert c.exists(key) == 0
    # The server refused the call: Shield never ran, so it counted nothing.
    assert limit_calls(cluster.nodes) == counted


SENT_TO = {
    "another_primary": ("another_primary", False),
    "the_owners_replica": ("replica", False),
    "the_owners_replica_after_readonly": ("replica", True),
}


@pytest.mark.parametrize("sent_to", SENT_TO)
def test_limit_sent_to_a_node_that_does_not_own_the_slot_is_moved_and_writes_nothing(cluster, sent_to):
    # SHIELD.limit writes: a replica redirects it even after READONLY.
    t = tag()
    ip, day = key_pair(t)
    slot = cluster.keyslot(t)
    owner = cluster.owner(slot)
    kind, readonly = SENT_TO[sent_to]
    node = (next(p for p in cluster.primaries() if p is not owner) if kind == "another_primary"
            else cluster.replica_of(owner))
    with node.client(single_connection_client=True) as c:
        if readonly:
            c.execute_command("READONLY")
        with pytest.raises(redis.ResponseError) as error:
            c.execute_command("SHIELD.limit", 2, ip, day, *POLICIES)
    assert str(error.value) == moved(slot, owner)
    assert_nothing_in_slot_anywhere(cluster, slot)


@pytest.mark.parametrize("sent_to", ["another_primary", "the_owners_replica"])
def test_limit_ro_sent_to_a_node_that_does_not_serve_the_slot_is_moved(cluster, sent_to):
    t = tag()
    slot = cluster.keyslot(t)
    owner = cluster.owner(slot)
    node = (next(p for p in cluster.primaries() if p is not owner) if sent_to == "another_primary"
            else cluster.replica_of(owner))
    with node.client() as c, pytest.raises(redis.ResponseError) as error:
        c.execute_command("SHIELD.limit_ro", 2, *key_pair(t), *POLICIES)
    assert str(error.value) == moved(slot, owner)


# ---- SHIELD.limit_ro on a replica -------------------------------------------------------------


def test_limit_ro_on_a_replica_after_readonly_answers_what_the_primary_answers(cluster):
    t = tag()
    ip, day = key_pair(t)
    policies = ["ip", "BUCKET", 100, LONG, "BURST", 200, "COST", 30,
                "day", "QUOTA", 1000, "MONTH", "COST", 30]
    owner = cluster.owner(cluster.keyslot(t))
    replica = cluster.replica_of(owner)
    with owner.client() as p, replica.client(single_connection_client=True) as r:
        assert remaining(p.execute_command("SHIELD.limit", 2, ip, day, *policies)) == [170, 970]
        assert p.wait(1, 5000) == 1
        r.execute_command("READONLY")
        on_primary = decision(p.execute_command("SHIELD.limit_ro", 2, ip, day, *policies))
        on_replica = decision(r.execute_command("SHIELD.limit_ro", 2, ip, day, *policies))
    assert on_replica["allowed"] == on_primary["allowed"] == 1
    assert [p["remaining"] for p in on_replica["policies"]] == [140, 940]  # what a call would leave
    for mine, theirs in zip(on_replica["policies"], on_primary["policies"]):
        for field in ("name", "algorithm", "allowed", "remaining", "limit", "window", "retry_after_ms"):
            assert mine[field] == theirs[field], field
        # The two reads are milliseconds apart; the bucket refills one token per 10000 s.
        assert abs(mine["reset_after_ms"] - theirs["reset_after_ms"]) <= 1000


def test_limit_ro_on_a_replica_changes_nothing_there(cluster):
    t = tag()
    ip, day = key_pair(t)
    owner = cluster.owner(cluster.keyslot(t))
    with owner.client() as p:
        p.execute_command("SHIELD.limit", 2, ip, day, *POLICIES)
        assert p.wait(1, 5000) == 1
    never = f"{t}:never"
    with cluster.replica_of(owner).client(decode_responses=False, single_connection_client=True) as r:
        r.execute_command("READONLY")

        def state():
            return ([(r.dump(k), r.pexpiretime(k)) for k in (ip, day)], r.exists(never), r.dbsize())

        before = state()
        for words in (POLICIES, [*POLICIES, "HEADERS"], [*POLICIES, "REFUND"],
                      ["ip", "BUCKET", 5, 1, "COST", 50, "day", "QUOTA", 1000, "DAY"]):
            r.execute_command("SHIELD.limit_ro", 2, ip, day, *words)
        reply = decision(r.execute_command("SHIELD.limit_ro", 2, ip, never, *POLICIES))
        after = state()
    assert reply["allowed"] == 1 and reply["policies"][1]["remaining"] == 999
    assert all(value is not None and expiry > 0 for value, expiry in before[0])
    assert before[1] == 0
    assert after == before


# ---- cluster clients ---------------------------------------------------------------------------


def test_redis_py_cluster_client_routes_limit_to_the_owner_by_command_getkeys(cluster):
    # redis-py 4.x reads COMMAND: SHIELD.limit is flagged movablekeys, so before each call it asks
    # a node COMMAND GETKEYS for the keys, then sends the call to their slot's primary.
    tags = [tag() for _ in range(6)]
    rc = cluster.client()
    try:
        redirects_before = cluster_redirects(cluster.nodes)
        getkeys_before = getkeys_calls(cluster.nodes)
        for t in tags:
            assert remaining(rc.execute_command("SHIELD.limit", 2, *key_pair(t), *POLICIES)) == [9, 999]
            assert remaining(rc.execute_command("SHIELD.limit_ro", 2, *key_pair(t), *POLICIES)) == [8, 998]
        assert cluster_redirects(cluster.nodes) == redirects_before
        assert getkeys_calls(cluster.nodes) - getkeys_before == 2 * len(tags)
    finally:
        rc.close()
    assert len({cluster.owner(cluster.keyslot(t)).port for t in tags}) >= 2
    for t in tags:
        with cluster.owner(cluster.keyslot(t)).client() as c:
            assert c.mget(*key_pair(t)) == ["9", "1"]


def test_redis_py_cluster_client_refuses_keys_of_two_slots_before_sending(cluster):
    first, second, _ = cluster.keys_in_different_slots("lx", same_node=False)
    rc = cluster.client()
    try:
        counted = limit_calls(cluster.nodes)
        with pytest.raises(RedisClusterException, match="same key slot"):
            rc.execute_command("SHIELD.limit", 2, first, second, *POLICIES)
    finally:
        rc.close()
    assert limit_calls(cluster.nodes) == counted


def test_ioredis_cluster_client_sends_limit_to_any_node_and_follows_the_moved(cluster, measured):
    # ioredis knows key positions of built-in commands only: it sends a module command to a
    # random primary and follows the MOVED.
    tags = [tag() for _ in range(12)]
    calls = [[*key_pair(t), *POLICIES] for t in tags]
    redirects_before = cluster_redirects(cluster.nodes)
    replies = run_node(IOREDIS, [p.port for p in cluster.primaries()], calls)
    moved_count, _ = (a - b for a, b in zip(cluster_redirects(cluster.nodes), redirects_before))
    measured["ioredis: MOVED replies per SHIELD.limit call"] = f"{moved_count}/{len(calls)}"
    assert [remaining(reply) for reply in replies] == [[9, 999]] * len(calls)
    assert moved_count >= 1  # 12 calls spread over 3 primaries: some went to the wrong one
    for t in tags:
        with cluster.owner(cluster.keyslot(t)).client() as c:
            assert c.mget(*key_pair(t)) == ["9", "1"]


def test_node_redis_cluster_client_routes_limit_by_the_key_it_is_given(cluster):
    tags = [tag() for _ in range(6)]
    calls = [[*key_pair(t), *POLICIES] for t in tags]
    redirects_before = cluster_redirects(cluster.nodes)
    replies = run_node(NODE_REDIS, [cluster.replicas()[0].port], calls)
    assert cluster_redirects(cluster.nodes) == redirects_before
    assert [remaining(reply) for reply in replies] == [[9, 999]] * len(calls)
    for t in tags:
        with cluster.owner(cluster.keyslot(t)).client() as c:
            assert c.mget(*key_pair(t)) == ["9", "1"]
