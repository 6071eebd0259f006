"""SHIELD.absorb_multi: several buckets at once, all or nothing."""

import threading
import time
import uuid

import pytest
import redis
from shield_servers import ReplicationStream, RespClient, run_threads

FIELDS = ["allowed", "remaining", "capacity", "period", "retry_after_ms", "reset_after_ms"]
DUPLICATE = "key appears more than once in SHIELD.absorb_multi"


def fields(reply):
    assert isinstance(reply, list) and reply[::2] == FIELDS, reply
    return dict(zip(reply[::2], reply[1::2]))


def new_keys(n=2):
    tag = uuid.uuid4().hex
    return [f"multi:{{{tag}}}:{i}" for i in range(n)]


def snapshot(raw, key):
    return (raw.type(key), raw.dump(key), raw.pexpiretime(key))


def test_takes_from_every_bucket_and_replies_what_each_holds(r):
    a, b = new_keys()
    assert r.execute_command("SHIELD.absorb_multi", a, 10, 3600, 1, b, 1000, 3600, 1) == [9, 999]
    assert r.execute_command("SHIELD.absorb_multi", a, 10, 3600, 3, b, 1000, 3600, 7) == [6, 992]
    assert (r.get(a), r.get(b)) == ("6", "992")
    assert r.pttl(a) > 0 and r.pttl(b) > 0


def test_one_bucket_is_the_same_as_absorb(r):
    a, b = new_keys()
    assert r.execute_command("SHIELD.absorb_multi", a, 30, 60, 13) == [17]
    assert r.execute_command("SHIELD.absorb", b, 30, 60, 13) == 17
    assert r.get(a) == r.get(b) == "17"


def test_a_short_bucket_denies_the_whole_call_and_nothing_is_written(shared_server):
    raw = shared_server.client(decode_responses=False)
    r = shared_server.client()
    a, b, c = new_keys(3)
    assert r.execute_command("SHIELD.absorb", b, 5, 3600, 4) == 1
    assert r.execute_command("SHIELD.absorb", c, 10, 3600, 3) == 7
    before = {k: snapshot(raw, k) for k in (b, c)}
    # a is missing (a full bucket of 10), b holds 1 and is asked for 3.
    assert r.execute_command("SHIELD.absorb_multi", a, 10, 3600, 2, b, 5, 3600, 3) == [10, -1]
    assert r.execute_command("SHIELD.absorb_multi", c, 10, 3600, 2, b, 5, 3600, 3, a, 10, 3600, 1) == [7, -1, 10]
    # Both short.
    assert r.execute_command("SHIELD.absorb_multi", b, 5, 3600, 2, c, 10, 3600, 8) == [-1, -1]
    assert r.exists(a) == 0
    assert {k: snapshot(raw, k) for k in (b, c)} == before


def test_verbose_replies_an_array_of_maps_in_resp2(r):
    a, b = new_keys()
    reply = r.execute_command("SHIELD.absorb_multi", a, 30, 60, 13, b, 10, 60, 1, "VERBOSE")
    assert reply == [
        ["allowed", 1, "remaining", 17, "capacity", 30, "period", 60, "retry_after_ms", 0, "reset_after_ms", 26000],
        ["allowed", 1, "remaining", 9, "capacity", 10, "period", 60, "retry_after_ms", 0, "reset_after_ms", 6000],
    ]


def test_verbose_replies_an_array_of_maps_in_resp3(shared_server):
    a, b = new_keys()
    with RespClient(shared_server.port, protocol=3) as c:
        reply = c.call("SHIELD.absorb_multi", a, 30, 60, 13, b, 10, 60, 1, "verbose")
    assert isinstance(reply, list) and all(isinstance(m, dict) for m in reply), reply
    assert [list(m.items()) for m in reply] == [
        [("allowed", 1), ("remaining", 17), ("capacity", 30), ("period", 60), ("retry_after_ms", 0),
         ("reset_after_ms", 26000)],
        [("allowed", 1), ("remaining", 9), ("capacity", 10), ("period", 60), ("retry_after_ms", 0),
         ("reset_after_ms", 6000)],
    ]


def test_a_denied_verbose_call_reports_the_whole_outcome_in_every_map(r):
    a, b, c = new_keys(3)
    assert r.execute_command("SHIELD.absorb", b, 10, 60, 9) == 1
    reply = [fields(m) for m in r.execute_command(
        "SHIELD.absorb_multi", a, 30, 60, 13, b, 10, 60, 4, c, 10, 60, 11, "VERBOSE")]
    assert [m["allowed"] for m in reply] == [0, 0, 0]
    assert [m["remaining"] for m in reply] == [30, 1, 10]  # what each holds now
    assert [m["reset_after_ms"] for m in reply][0] == 0  # a full bucket
    # The call can never succeed (11 never fit in 10), so every map says -1: the call's own wait,
    # not b's 18 s.
    assert [m["retry_after_ms"] for m in reply] == [-1, -1, -1]
    assert (r.exists(a), r.exists(c), r.get(b)) == (0, 0, "1")


def test_a_denied_verbose_call_gives_the_longest_wait_in_every_map(r):
    a, b = new_keys()
    assert r.execute_command("SHIELD.absorb", a, 10, 60, 10) == 0
    reply = [fields(m) for m in r.execute_command(
        "SHIELD.absorb_multi", a, 10, 60, 1, b, 10, 60, 1, "VERBOSE")]
    assert [m["allowed"] for m in reply] == [0, 0]
    assert 5_000 < reply[0]["retry_after_ms"] <= 6_000  # a's next token, at 6 s a token
    assert reply[1]["retry_after_ms"] == reply[0]["retry_after_ms"]  # b alone had enough


def test_a_bucket_that_can_never_hold_its_tokens_makes_every_map_say_minus_one(r):
    a, b = new_keys()
    assert r.execute_command("SHIELD.absorb", a, 10, 60, 10) == 0
    reply = [fields(m) for m in r.execute_command(
        "SHIELD.absorb_multi", a, 10, 60, 1, b, 10, 60, 11, "VERBOSE")]
    assert [m["retry_after_ms"] for m in reply] == [-1, -1]


def test_the_call_succeeds_after_the_largest_retry_after_ms(r):
    a, b = new_keys()
    # a: 5 per second (200 ms a token); b: 10 per second (100 ms a token).
    for _ in range(20):  # a slow machine may refill a token between the drain and the ask
        while r.execute_command("SHIELD.absorb", a, 5, 1) >= 0:
            pass
        while r.execute_command("SHIELD.absorb", b, 10, 1) >= 0:
            pass
        reply = [fields(m) for m in r.execute_command("SHIELD.absorb_multi", a, 5, 1, 2, b, 10, 1, 3, "VERBOSE")]
        if reply[0]["allowed"] == 0:
            break
    assert reply[0]["allowed"] == 0, reply
    wait_ms = reply[0]["retry_after_ms"]
    assert [m["retry_after_ms"] for m in reply] == [wait_ms, wait_ms], reply
    assert 0 < wait_ms <= 400, reply
    time.sleep(wait_ms / 1000)
    assert min(r.execute_command("SHIELD.absorb_multi", a, 5, 1, 2, b, 10, 1, 3)) >= 0


def test_burst_is_written_after_the_capacity_with_a_colon(r):
    a, b, c = new_keys(3)
    assert r.execute_command("SHIELD.absorb_multi", a, "10:20", 60, 5, b, 10, 60, 1, c, "10:2", 60, 1) == [15, 9, 1]
    # Each key lives until its bucket would be full again.
    assert 119_000 < r.pttl(a) <= 120_000
    assert 59_000 < r.pttl(b) <= 60_000
    assert 11_000 < r.pttl(c) <= 12_000
    reply = [fields(m) for m in
             r.execute_command("SHIELD.absorb_multi", a, "10:20", 60, 1, c, "10:2", 60, 1, "VERBOSE")]
    assert [m["capacity"] for m in reply] == [10, 10]
    assert [m["remaining"] for m in reply] == [14, 0]
    # The same bucket through SHIELD.absorb ... BURST reads the same.
    assert fields(r.execute_command("SHIELD.inspect", a, 10, 60, "BURST", 20))["remaining"] == 13


@pytest.mark.parametrize(
    "layout",
    [("a", "b", "a"), ("a", "a"), ("a", "b", "c", "b")],
    ids=["first and third", "first and second", "second and fourth"],
)
def test_a_key_given_twice_is_an_error_and_nothing_is_written(r, layout):
    names = dict(zip("abc", new_keys(3)))
    args = []
    for name in layout:
        args += [names[name], 10, 60, 1]
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command("SHIELD.absorb_multi", *args)
    assert str(raised.value) == DUPLICATE
    assert r.exists(*names.values()) == 0


def test_a_thousand_buckets_with_the_last_key_repeating_the_first_is_an_error(r):
    keys = new_keys(1000)
    args = []
    for key in keys[:-1] + [keys[0]]:
        args += [key, 10, 60, 1]
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command("SHIELD.absorb_multi", *args)
    assert str(raised.value) == DUPLICATE
    assert r.exists(*keys) == 0


def test_a_thousand_distinct_buckets_are_taken_in_one_call(r):
    keys = new_keys(1000)
    args = [x for key in keys for x in (key, 10, 60, 1)]
    assert r.execute_command("SHIELD.absorb_multi", *args) == [9] * 1000


def test_more_than_a_thousand_buckets_is_an_error_and_nothing_is_written(r):
    keys = new_keys(1001)
    args = [x for key in keys for x in (key, 10, 60, 1)]
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command("SHIELD.absorb_multi", *args)
    assert str(raised.value) == "too many buckets: SHIELD.absorb_multi takes at most 1000"
    assert r.exists(*keys) == 0


# The second bucket is bad in each way: the first (valid, missing) key must stay missing, and a
# prepared third key must keep its value and expiry.
SECOND_BUCKET_ERRORS = [
    pytest.param(lambda r, k: None, ("0", "60", "1"), "capacity must be positive", id="capacity 0"),
    pytest.param(lambda r, k: None, ("10", "0", "1"), "period must be positive", id="period 0"),
    pytest.param(lambda r, k: None, ("10", "60", "0"), "tokens must be positive", id="tokens 0"),
    pytest.param(lambda r, k: None, ("10:0", "60", "1"), "burst must be positive", id="burst 0"),
    pytest.param(lambda r, k: None, ("10", "9223372036854776", "1"), "period value too large", id="period too large"),
    pytest.param(lambda r, k: None, ("1:9223372036854775807", "1", "1"), "burst value too large",
                 id="burst too large"),
    pytest.param(lambda r, k: r.rpush(k, "x"), ("10", "60", "1"),
                 "WRONGTYPE Operation against a key holding the wrong kind of value", id="a list"),
    pytest.param(lambda r, k: r.set(k, "abc"), ("10", "60", "1"), "invalid token count in Redis",
                 id="a string that is not a count"),
]


@pytest.mark.parametrize("prepare,args,error", SECOND_BUCKET_ERRORS)
def test_an_error_in_the_second_bucket_writes_nothing_anywhere(shared_server, prepare, args, error):
    raw = shared_server.client(decode_responses=False)
    first, second, third = new_keys(3)
    prepare(raw, second)
    raw.execute_command("SHIELD.absorb", third, 10, 3600, 4)
    before = {k: snapshot(raw, k) for k in (second, third)}
    with pytest.raises(redis.ResponseError) as raised:
        raw.execute_command("SHIELD.absorb_multi", first, 10, 60, 1, second, *args, third, 10, 3600, 1)
    assert str(raised.value) == error
    assert raw.exists(first) == 0
    assert {k: snapshot(raw, k) for k in (second, third)} == before
    assert raw.ping()


@pytest.mark.parametrize(
    "args,keys",
    [
        (("a", "1", "1", "1", "b", "1", "1", "1", "VERBOSE"), ["a", "b"]),
        (("a", "1", "1", "1", "b", "1", "1", "1"), ["a", "b"]),
        (("a", "1", "1", "1", "VERBOSE"), ["a"]),
        (("a", "1:5", "1", "1", "b", "2:3", "1", "1", "c", "1", "1", "1", "verbose"), ["a", "b", "c"]),
    ],
    ids=["two buckets and VERBOSE", "two buckets", "one bucket and VERBOSE", "three buckets with bursts"],
)
def test_command_getkeys_finds_every_fourth_argument_and_never_verbose(raw_command, args, keys):
    assert raw_command.execute_command("COMMAND", "GETKEYS", "SHIELD.absorb_multi", *args) == keys


def test_command_info_declares_a_write_command(raw_command):
    info = raw_command.execute_command("COMMAND", "INFO", "SHIELD.absorb_multi")
    name, arity, flags = info[0][:3]
    assert name.lower() == "shield.absorb_multi"
    assert {"write", "denyoom"} <= set(flags)
    assert "fast" not in flags  # O(N) in its buckets, like MSET


def test_replica_holds_the_same_buckets(primary_and_replica):
    primary, replica = primary_and_replica
    p, rep = primary.client(), replica.client()
    a, b, c = new_keys(3)
    assert p.execute_command("SHIELD.absorb_multi", a, 10, 60, 3, b, "100:500", 3600, 7) == [7, 493]
    assert p.execute_command("SHIELD.absorb_multi", a, 10, 60, 1, c, 5, 60, 6) == [7, -1]  # denied
    assert p.execute_command("SHIELD.absorb_multi", b, "100:500", 3600, 3, a, 10, 60, 2) == [490, 5]
    assert p.wait(1, 5000) == 1
    for key in (a, b):
        assert (rep.get(key), rep.pexpiretime(key)) == (p.get(key), p.pexpiretime(key)), key
    assert rep.exists(c) == 0


def test_replication_stream_carries_the_sets_in_one_transaction(make_server):
    primary = make_server()
    r = primary.client()
    a, b, c = new_keys(3)
    with ReplicationStream(primary) as stream:
        assert r.execute_command("SHIELD.absorb_multi", a, 10, 60, 3, b, "10:20", 60, 2) == [7, 18]
        assert r.execute_command("SHIELD.absorb_multi", a, 10, 60, 1, c, 5, 60, 6) == [7, -1]  # denied
        with pytest.raises(redis.ResponseError):
            r.execute_command("SHIELD.absorb_multi", a, 10, 60, 1, a, 10, 60, 1)
        commands = stream.commands_until(new_keys(1)[0])
    assert [[word.upper() if i == 0 else word for i, word in enumerate(cmd)] for cmd in commands] == [
        ["MULTI"],
        ["SET", a, "7", "PXAT", str(r.pexpiretime(a))],
        ["SET", b, "18", "PXAT", str(r.pexpiretime(b))],
        ["EXEC"],
    ]


def test_twenty_concurrent_clients_never_overdraw_either_bucket(shared_server):
    """A takes 1 of 50 per call, B 3 of 100: exactly 33 calls fit, and each took from both."""
    a, b = new_keys()
    period = 36_000  # a token every 720 s and 360 s: none refills during the test
    outcomes = []
    lock = threading.Lock()

    def client_loop():
        mine = []
        with shared_server.client() as c:
            denials = 0
            while denials < 5:  # keep pushing after the first denial
                reply = c.execute_command("SHIELD.absorb_multi", a, 50, period, 1, b, 100, period, 3)
                if min(reply) >= 0:
                    mine.append(tuple(reply))
                else:
                    denials += 1
                    assert reply[1] == -1 and reply[0] >= 0, reply  # only B can run short
        with lock:
            outcomes.append(mine)

    run_threads(client_loop, 20, timeout=120)
    assert len(outcomes) == 20
    granted = [reply for mine in outcomes for reply in mine]
    assert len(granted) == 33
    # Every grant saw a distinct state, each the previous one less exactly 1 and 3.
    assert sorted(granted, reverse=True) == [(50 - n, 100 - 3 * n) for n in range(1, 34)]
    assert (int(shared_server.client().get(a)), int(shared_server.client().get(b))) == (17, 1)
