"""SHIELD.inspect: the VERBOSE reply of SHIELD.absorb, computed without changing anything."""

import time
import uuid

import pytest
from shield_servers import ReplicationStream, RespClient

FIELDS = ["allowed", "remaining", "capacity", "period", "retry_after_ms", "reset_after_ms"]
TOLERANCE_MS = 2000  # time that may pass between two calls on a loaded machine


def fields(reply):
    assert isinstance(reply, list) and reply[::2] == FIELDS, reply
    return dict(zip(reply[::2], reply[1::2]))


def new_key():
    return f"inspect:{uuid.uuid4().hex}"


def snapshot(raw, key):
    """Everything inspect must leave alone: type, serialized value, absolute expiry, encoding."""
    exists = raw.exists(key)
    encoding = raw.object("encoding", key) if exists else None
    return (exists, raw.type(key), raw.dump(key), raw.pexpiretime(key), encoding)


# How a bucket is prepared: (description, function of client and key). One token per 360 s for
# 10 per hour, so no whole token refills during a test.
PREPARED = [
    ("a missing key", lambda r, k: None),
    ("an int-encoded value written by SET PX", lambda r, k: r.set(k, 5, px=3_600_000)),
    ("a value written by PSETEX with half a token refilled", lambda r, k: r.psetex(k, 3_600_000 - 180_000, 3)),
    ("a bucket written by SHIELD.absorb", lambda r, k: r.execute_command("SHIELD.absorb", k, 10, 3600, 6)),
    ("an empty bucket", lambda r, k: r.execute_command("SHIELD.absorb", k, 10, 3600, 10)),
    ("a value without expiry", lambda r, k: r.set(k, 2)),
]

# Arguments after the key, all for a bucket of 10 per hour.
CALLS = [
    ("10", "3600"),
    ("10", "3600", "4"),
    ("10", "3600", "11"),
    ("10", "3600", "4", "BURST", "20"),
    ("10", "3600", "BURST", "3"),
    ("10", "3600", "VERBOSE"),
]


@pytest.mark.parametrize("prepare", [p for _, p in PREPARED], ids=[d for d, _ in PREPARED])
@pytest.mark.parametrize("args", CALLS, ids=lambda args: "inspect " + " ".join(args))
def test_inspect_replies_what_absorb_verbose_then_replies(r, prepare, args):
    key = new_key()
    prepare(r, key)
    inspected = fields(r.execute_command("SHIELD.inspect", key, *args))
    absorb_args = [a for a in args if a != "VERBOSE"]
    absorbed = fields(r.execute_command("SHIELD.absorb", key, *absorb_args, "VERBOSE"))
    for field in ("allowed", "remaining", "capacity", "period"):
        assert inspected[field] == absorbed[field], (field, inspected, absorbed)
    for field in ("retry_after_ms", "reset_after_ms"):
        if inspected[field] <= 0:
            assert absorbed[field] == inspected[field], (field, inspected, absorbed)
        else:  # the second call comes a little later
            assert inspected[field] - TOLERANCE_MS <= absorbed[field] <= inspected[field], (field, inspected, absorbed)


def test_inspect_of_a_missing_key_is_the_documented_example(r):
    reply = r.execute_command("SHIELD.inspect", new_key(), 30, 60, 13)
    assert reply == ["allowed", 1, "remaining", 17, "capacity", 30, "period", 60,
                     "retry_after_ms", 0, "reset_after_ms", 26000]


def test_inspect_replies_a_map_in_resp3(shared_server):
    with RespClient(shared_server.port, protocol=3) as c:
        reply = c.call("SHIELD.inspect", new_key(), 30, 60, 13)
    assert isinstance(reply, dict), reply
    assert list(reply.items()) == [("allowed", 1), ("remaining", 17), ("capacity", 30), ("period", 60),
                                   ("retry_after_ms", 0), ("reset_after_ms", 26000)]


def test_inspect_with_tokens_and_burst(r):
    key = new_key()
    assert fields(r.execute_command("SHIELD.inspect", key, 10, 60, 4, "BURST", 20)) == {
        "allowed": 1, "remaining": 16, "capacity": 10, "period": 60, "retry_after_ms": 0, "reset_after_ms": 24000}
    assert fields(r.execute_command("SHIELD.inspect", key, 10, 60, 21, "burst", 20)) == {
        "allowed": 0, "remaining": 20, "capacity": 10, "period": 60, "retry_after_ms": -1, "reset_after_ms": 0}
    assert r.execute_command("SHIELD.absorb", key, 10, 60, 18, "BURST", 20) == 2
    reply = fields(r.execute_command("SHIELD.inspect", key, 10, 60, 5, "BURST", 20))
    assert reply["allowed"] == 0 and reply["remaining"] == 2
    assert 18_000 - TOLERANCE_MS < reply["retry_after_ms"] <= 18_000  # 3 tokens at 6 s each
    assert 108_000 - TOLERANCE_MS < reply["reset_after_ms"] <= 108_000  # 18 tokens
    assert r.exists(key) and r.get(key) == "2"


def test_inspect_does_not_take_tokens(r):
    key = new_key()
    for _ in range(5):
        assert fields(r.execute_command("SHIELD.inspect", key, 3, 3600, 3))["remaining"] == 0
    assert r.execute_command("SHIELD.absorb", key, 3, 3600, 3) == 0


@pytest.mark.parametrize("prepare", [p for _, p in PREPARED], ids=[d for d, _ in PREPARED])
def test_inspect_changes_nothing(shared_server, prepare):
    raw = shared_server.client(decode_responses=False)
    key = new_key()
    prepare(raw, key)
    before = snapshot(raw, key)
    for args in CALLS:
        raw.execute_command("SHIELD.inspect", key, *args)
    assert snapshot(raw, key) == before
    if prepare is PREPARED[1][1]:
        assert before[4] == b"int"  # the case that matters: reading must not re-encode the value


def test_inspect_emits_no_keyspace_event(make_server):
    server = make_server(extra_args=["--notify-keyspace-events", "KEA"])
    r = server.client()
    present = new_key()
    r.execute_command("SHIELD.absorb", present, 10, 3600, 4)
    r.set(f"{present}:int", 5, px=3_600_000)
    marker = new_key()
    with r.pubsub() as sub:
        sub.psubscribe("__key*@*__:*")
        message = sub.get_message(timeout=5)
        assert message is not None and message["type"] == "psubscribe"
        for key in (present, f"{present}:int", new_key()):
            for args in CALLS:
                r.execute_command("SHIELD.inspect", key, *args)
        r.set(marker, 1)  # its event ends the reading
        events = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = sub.get_message(timeout=1)
            if message is None or message["type"] != "pmessage":
                continue
            if message["channel"].endswith(f":{marker}"):
                break
            events.append((message["channel"], message["data"]))
        else:
            pytest.fail("the marker's event never arrived")
    assert events == []


def test_inspect_propagates_nothing(make_server):
    primary = make_server()
    r = primary.client()
    key = new_key()
    with ReplicationStream(primary) as stream:
        assert r.execute_command("SHIELD.absorb", key, 10, 3600, 4) == 6
        for args in CALLS:
            r.execute_command("SHIELD.inspect", key, *args)
            r.execute_command("SHIELD.inspect", new_key(), *args)
        commands = stream.commands_until(new_key())
    assert commands == [["SET", key, "6", "PXAT", str(r.pexpiretime(key))]]


def test_inspect_runs_on_a_read_only_replica_and_changes_nothing_there(primary_and_replica):
    primary, replica = primary_and_replica
    p = primary.client()
    keys = {desc: new_key() for desc, _ in PREPARED}
    for desc, prepare in PREPARED:
        prepare(p, keys[desc])
    assert p.wait(1, 5000) == 1
    raw = replica.client(decode_responses=False)
    rep = replica.client()
    assert rep.config_get("replica-read-only")["replica-read-only"] == "yes"
    for desc, key in keys.items():
        before = snapshot(raw, key)
        for args in CALLS:
            on_replica = fields(rep.execute_command("SHIELD.inspect", key, *args))
            on_primary = fields(p.execute_command("SHIELD.inspect", key, *args))
            assert on_replica["allowed"] == on_primary["allowed"], (desc, args)
            assert on_replica["remaining"] == on_primary["remaining"], (desc, args)
        assert snapshot(raw, key) == before, desc
    assert rep.info("replication")["master_link_status"] == "up"


def test_inspect_is_declared_readonly_and_fast_with_one_key(shared_server):
    c = shared_server.client()
    c.set_response_callback("COMMAND", lambda response, **options: response)
    info = c.execute_command("COMMAND", "INFO", "SHIELD.inspect")
    name, arity, flags, first, last, step = info[0][:6]
    assert name.lower() == "shield.inspect"
    assert {"readonly", "fast"} <= set(flags)
    assert "write" not in flags and "denyoom" not in flags
    assert (first, last, step) == (1, 1, 1)
    assert c.execute_command("COMMAND", "GETKEYS", "SHIELD.inspect", "k", "10", "60", "2", "BURST", "5") == ["k"]


@pytest.mark.parametrize("renamed_to", ["", "GET_RENAMED"], ids=["GET removed", "GET renamed"])
def test_inspect_reads_in_place_when_get_is_renamed_and_logs_it_once(make_server, renamed_to):
    server = make_server(extra_args=["--rename-command", "GET", renamed_to])
    r = server.client()
    raw = server.client(decode_responses=False)
    key, other = new_key(), new_key()
    r.set(key, 5, px=3_600_000)
    assert r.execute_command("SHIELD.absorb", other, 10, 3600, 6) == 4
    expiry = raw.pexpiretime(key)
    # What SHIELD.absorb would reply: one token taken from 5, and from 4.
    assert fields(r.execute_command("SHIELD.inspect", key, 10, 3600))["remaining"] == 4
    assert fields(r.execute_command("SHIELD.inspect", other, 10, 3600))["remaining"] == 3
    # The value and the expiry stay; only the encoding may change (documented).
    assert raw.pexpiretime(key) == expiry
    assert r.execute_command("SHIELD.absorb", key, 10, 3600) == 4
    log = open(server.log_path).read()
    assert log.count("Shield cannot call GET") == 1
