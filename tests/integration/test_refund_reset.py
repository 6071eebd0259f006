"""SHIELD.refund gives tokens back; SHIELD.reset deletes buckets."""

import uuid

import pytest
import redis
from shield_servers import ReplicationStream, wait_for_replica_link

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
HOUR_MS = 3_600_000
TOKEN_MS = 360_000  # 10 tokens per hour: one every 360 s, so none refills during a test


def new_key():
    return f"refund:{uuid.uuid4().hex}"


def snapshot(raw, key):
    return (raw.exists(key), raw.type(key), raw.dump(key), raw.pexpiretime(key))


def test_refund_adds_tokens_back_but_never_above_capacity(r):
    key = new_key()
    assert r.execute_command("SHIELD.absorb", key, 10, 3600, 3) == 7
    assert r.execute_command("SHIELD.refund", key, 10, 3600, 2) == 9
    assert r.get(key) == "9"
    assert r.execute_command("SHIELD.refund", key, 10, 3600, 100) == 10
    assert r.execute_command("SHIELD.refund", key, 10, 3600, 9223372036854775807) == 10
    assert r.execute_command("SHIELD.absorb", key, 10, 3600, 10) == 0  # full again, and no more


@pytest.mark.parametrize("burst,taken", [(20, 5), (3, 3)], ids=["burst above capacity", "burst below capacity"])
def test_refund_with_burst_stops_at_the_burst(r, burst, taken):
    key = new_key()
    assert r.execute_command("SHIELD.absorb", key, 10, 60, taken, "BURST", burst) == burst - taken
    assert r.execute_command("SHIELD.refund", key, 10, 60, 1, "BURST", burst) == burst - taken + 1
    assert r.execute_command("SHIELD.refund", key, 10, 60, 100, "burst", burst) == burst
    assert r.execute_command("SHIELD.absorb", key, 10, 60, burst, "BURST", burst) == 0


def test_refund_after_absorb_keeps_the_refill_under_way(r):
    key = new_key()
    assert r.execute_command("SHIELD.absorb", key, 10, 3600, 3) == 7
    expiry = r.pexpiretime(key)
    assert r.execute_command("SHIELD.refund", key, 10, 3600, 2) == 9
    # The refill since the absorb (less than a token) is carried: the expiry stays where it was.
    assert r.pexpiretime(key) == expiry


def test_refund_keeps_the_part_of_a_token_already_refilled(r):
    key = new_key()
    r.psetex(key, HOUR_MS - TOKEN_MS // 2, 3)  # half a token refilled
    expiry = r.pexpiretime(key)
    assert r.execute_command("SHIELD.refund", key, 10, 3600, 4) == 7
    assert r.get(key) == "7"
    assert r.pexpiretime(key) == expiry


def test_refund_moves_whole_refilled_tokens_into_the_count_and_keeps_the_rest(r):
    key = new_key()
    r.psetex(key, HOUR_MS - TOKEN_MS - TOKEN_MS // 2, 3)  # one and a half tokens refilled
    expiry = r.pexpiretime(key)
    assert r.execute_command("SHIELD.refund", key, 10, 3600, 2) == 6  # 3 + 1 refilled + 2
    assert r.get(key) == "6"
    assert r.pexpiretime(key) == expiry + TOKEN_MS  # the half token is still under way


@pytest.mark.parametrize(
    "args,reply",
    [(("10", "3600", "4"), 10), (("10", "3600", "4", "BURST", "25"), 25), (("10", "3600", "4", "BURST", "2"), 2)],
    ids=["capacity 10", "burst 25", "burst 2"],
)
def test_refund_of_a_missing_key_replies_a_full_bucket_and_writes_nothing(r, args, reply):
    key = new_key()
    assert r.execute_command("SHIELD.refund", key, *args) == reply
    assert r.exists(key) == 0


def test_refund_of_a_stored_full_bucket_changes_nothing(shared_server):
    raw = shared_server.client(decode_responses=False)
    key = new_key()
    raw.set(key, 10, px=HOUR_MS)
    before = snapshot(raw, key)
    assert raw.execute_command("SHIELD.refund", key, 10, 3600, 3) == 10
    assert snapshot(raw, key) == before


def test_refund_is_propagated_as_its_effect(make_server):
    primary = make_server()
    r = primary.client()
    key, missing = new_key(), new_key()
    with ReplicationStream(primary) as stream:
        assert r.execute_command("SHIELD.absorb", key, 10, 3600, 5) == 5
        absorbed_expiry = r.pexpiretime(key)
        assert r.execute_command("SHIELD.refund", key, 10, 3600, 2) == 7
        assert r.execute_command("SHIELD.refund", missing, 10, 3600, 2) == 10  # writes nothing
        commands = stream.commands_until(new_key())
    assert commands == [
        ["SET", key, "5", "PXAT", str(absorbed_expiry)],
        ["SET", key, "7", "PXAT", str(r.pexpiretime(key))],
    ]


def test_refund_is_refused_on_a_read_only_replica(make_server):
    primary = make_server()
    replica = make_server(extra_args=["--replicaof", "127.0.0.1", str(primary.port)])
    wait_for_replica_link(replica)
    with pytest.raises(redis.ReadOnlyError):
        replica.client().execute_command("SHIELD.refund", new_key(), 10, 60, 1)
    with pytest.raises(redis.ReadOnlyError):
        replica.client().execute_command("SHIELD.reset", new_key())


def test_reset_deletes_buckets_and_counts_the_keys_that_existed(r):
    a, b, c = new_key(), new_key(), new_key()
    r.execute_command("SHIELD.absorb", a, 10, 60, 5)
    r.execute_command("SHIELD.absorb", b, 10, 60, 10)
    assert r.execute_command("SHIELD.reset", a, b, c) == 2
    assert r.exists(a, b, c) == 0
    assert r.execute_command("SHIELD.absorb", a, 10, 60, 10) == 0  # a deleted bucket reads as full


def test_reset_of_a_missing_key_replies_zero(r):
    assert r.execute_command("SHIELD.reset", new_key()) == 0


def test_reset_deletes_any_string(r):
    a = new_key()
    r.set(a, "not a count")
    assert r.execute_command("SHIELD.reset", a) == 1
    assert r.exists(a) == 0


@pytest.mark.parametrize("position", [0, 1, 2], ids=["list first", "list in the middle", "list last"])
def test_reset_with_a_key_of_another_type_gives_wrongtype_and_deletes_nothing(shared_server, position):
    raw = shared_server.client(decode_responses=False)
    buckets = [new_key(), new_key()]
    for key in buckets:
        raw.execute_command("SHIELD.absorb", key, 10, 3600, 4)
    listed = new_key()
    raw.rpush(listed, "x")
    keys = list(buckets)
    keys.insert(position, listed)
    before = {key: snapshot(raw, key) for key in keys}
    with pytest.raises(redis.ResponseError) as raised:
        raw.execute_command("SHIELD.reset", *keys)
    assert str(raised.value) == WRONGTYPE
    assert {key: snapshot(raw, key) for key in keys} == before


def test_reset_works_under_oom(make_server):
    r = make_server().client()
    key = new_key()
    r.execute_command("SHIELD.absorb", key, 10, 60, 5)
    r.config_set("maxmemory", 1)
    try:
        assert r.execute_command("SHIELD.reset", key) == 1
    finally:
        r.config_set("maxmemory", 0)
    assert r.exists(key) == 0


def test_reset_reaches_the_replica_as_del(make_server):
    primary = make_server()
    replica = make_server(extra_args=["--replicaof", "127.0.0.1", str(primary.port)])
    wait_for_replica_link(replica)
    p, rep = primary.client(), replica.client()
    a, b, kept = new_key(), new_key(), new_key()
    for key in (a, b, kept):
        p.execute_command("SHIELD.absorb", key, 10, 60, 5)
    assert p.wait(1, 5000) == 1
    assert rep.exists(a, b, kept) == 3
    assert p.execute_command("SHIELD.reset", a, b, new_key()) == 2
    assert p.wait(1, 5000) == 1
    assert rep.exists(a, b) == 0
    assert rep.get(kept) == "5"


def test_reset_is_propagated_as_one_del_per_deleted_key(make_server):
    primary = make_server()
    r = primary.client()
    a, b, missing = new_key(), new_key(), new_key()
    r.execute_command("SHIELD.absorb", a, 10, 60, 5)
    r.execute_command("SHIELD.absorb", b, 10, 60, 5)
    with ReplicationStream(primary) as stream:
        assert r.execute_command("SHIELD.reset", a, missing, b) == 2
        assert r.execute_command("SHIELD.reset", missing) == 0
        commands = stream.commands_until(new_key())
    # The server wraps the two DELs of one command in MULTI/EXEC.
    commands = [[c[0].upper(), *c[1:]] for c in commands]
    assert [c for c in commands if c[0] not in ("MULTI", "EXEC")] == [["DEL", a], ["DEL", b]]
    assert [c[0] for c in commands] in (["DEL", "DEL"], ["MULTI", "DEL", "DEL", "EXEC"])


@pytest.mark.parametrize(
    "command,flags,absent",
    [("SHIELD.refund", {"write", "denyoom", "fast"}, {"readonly"}),
     ("SHIELD.reset", {"write"}, {"denyoom", "readonly", "fast"})],
    ids=["refund is write deny-oom fast", "reset is write, not fast, like DEL"],
)
def test_command_info_declares_the_documented_flags(shared_server, command, flags, absent):
    c = shared_server.client()
    c.set_response_callback("COMMAND", lambda response, **options: response)
    declared = set(c.execute_command("COMMAND", "INFO", command)[0][2])
    assert flags <= declared and not absent & declared, declared


def test_command_getkeys_finds_every_key_of_reset(shared_server):
    c = shared_server.client()
    c.set_response_callback("COMMAND", lambda response, **options: response)
    assert c.execute_command("COMMAND", "GETKEYS", "SHIELD.reset", "a", "b", "c") == ["a", "b", "c"]
    assert c.execute_command("COMMAND", "GETKEYS", "SHIELD.refund", "a", "10", "60", "1", "BURST", "5") == ["a"]


def test_reset_of_ten_thousand_keys_with_repeats_deletes_each_once(r):
    keys = [f"reset:{{many}}:{uuid.uuid4().hex}" for _ in range(10_000)]
    with r.pipeline(transaction=False) as pipe:
        for k in keys[:5_000]:
            pipe.execute_command("SHIELD.absorb", k, 10, 60)
        pipe.execute()
    # Each existing key named twice: deleted once, counted once.
    assert r.execute_command("SHIELD.reset", *keys, *keys[:5_000]) == 5_000
    assert r.exists(*keys[:100]) == 0
