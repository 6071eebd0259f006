"""SHIELD.window (sliding window) and SHIELD.quota (UTC calendar quota) on real servers: replies,
the VERBOSE map in RESP2 and RESP3, the key format, bad input that writes nothing, and writes
that reach replicas as SET ... PXAT effects (denials send nothing)."""

import calendar
import datetime
import os
import time
import uuid

import pytest
import redis
from shield_servers import ReplicationStream, RespClient

FIELDS = ["allowed", "remaining", "capacity", "period", "retry_after_ms", "reset_after_ms"]

# A window long enough that no test crosses into the next one (about 11.6 days).
LONG = 1_000_000
LONG_MS = LONG * 1000


def new_key(prefix="wq"):
    return f"{prefix}:{uuid.uuid4().hex}"


def fields(reply):
    """A RESP2 VERBOSE reply (flat field/value list) as a dict, after checking the field order."""
    assert isinstance(reply, list) and reply[::2] == FIELDS, reply
    return dict(zip(reply[::2], reply[1::2]))


def server_ms(r):
    seconds, micros = r.time()
    return seconds * 1000 + micros // 1000


def period_bounds(unit, now_ms):
    """(start, end) in unix ms of the UTC hour, day or month holding now_ms, by Python's calendar."""
    now = datetime.datetime.fromtimestamp(now_ms / 1000, tz=datetime.timezone.utc)
    if unit == "HOUR":
        start = now.replace(minute=0, second=0, microsecond=0)
        end = start + datetime.timedelta(hours=1)
    elif unit == "DAY":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + datetime.timedelta(days=1)
    else:
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start + datetime.timedelta(days=calendar.monthrange(now.year, now.month)[1])
    return int(start.timestamp()) * 1000, int(end.timestamp()) * 1000


# ---- SHIELD.window ----------------------------------------------------------------------------


def test_window_admits_the_limit_then_denies(r):
    key = new_key()
    assert [r.execute_command("SHIELD.window", key, 3, LONG) for _ in range(4)] == [2, 1, 0, -1]
    assert r.execute_command("SHIELD.window", key, 10, LONG, 7) == 0  # another limit: 3 + 7 = 10
    assert r.execute_command("SHIELD.window", key, 10, LONG, 1) == -1


def test_window_key_holds_start_previous_and_current_and_expires_two_windows_after_the_start(r):
    key = new_key()
    before = server_ms(r)
    assert r.execute_command("SHIELD.window", key, 10, LONG, 3) == 7
    after = server_ms(r)
    start, previous, current = (int(part) for part in r.get(key).split(":"))
    assert start % LONG_MS == 0 and before - LONG_MS < start <= after
    assert (previous, current) == (0, 3)
    assert r.pexpiretime(key) == start + 2 * LONG_MS
    # A denial writes nothing: the same value and expiry.
    state = (r.get(key), r.pexpiretime(key))
    assert r.execute_command("SHIELD.window", key, 10, LONG, 8) == -1
    assert (r.get(key), r.pexpiretime(key)) == state


def test_window_reads_a_hand_made_key_with_the_previous_window_weighted(r):
    key = new_key()
    before = server_ms(r)
    start = before - before % LONG_MS
    r.set(key, f"{start - LONG_MS}:0:600", pxat=start + LONG_MS)  # 600 in the previous window
    reply = fields(r.execute_command("SHIELD.window", key, 1000, LONG, 1, "VERBOSE"))
    after = server_ms(r)

    def weighted(now):  # ceil(600 * (W - e) / W)
        return -(-600 * (LONG_MS - (now - start)) // LONG_MS)

    assert reply["allowed"] == 1
    assert reply["remaining"] in {1000 - 1 - weighted(before), 1000 - 1 - weighted(after)}
    assert r.get(key) == f"{start}:600:1"
    assert r.pexpiretime(key) == start + 2 * LONG_MS
    # The current count is out of every window two windows after the start.
    assert start + 2 * LONG_MS - after <= reply["reset_after_ms"] <= start + 2 * LONG_MS - before


def test_window_verbose_is_the_flat_field_value_array_in_resp2(r):
    key = new_key()
    reply = fields(r.execute_command("SHIELD.window", key, 10, LONG, 4, "VERBOSE"))
    expire_at = r.pexpiretime(key)
    assert reply["allowed"] == 1 and reply["remaining"] == 6
    assert reply["capacity"] == 10 and reply["period"] == LONG and reply["retry_after_ms"] == 0
    # Everything is free again once the current count is out of every window: at the expiry.
    assert 0 < reply["reset_after_ms"] <= expire_at - server_ms(r) + 1000


def test_window_verbose_denial_reports_an_exact_wait_and_minus_one_beyond_the_limit(r):
    key = new_key()
    r.execute_command("SHIELD.window", key, 5, LONG, 5)
    denied = fields(r.execute_command("SHIELD.window", key, 5, LONG, 1, "VERBOSE"))
    start = int(r.get(key).split(":")[0])
    now = server_ms(r)
    assert denied["allowed"] == 0 and denied["remaining"] == 0
    # The 5 weigh fully until the next window, then fade: 1 fits once ceil(5 * (W - e) / W) <= 4,
    # that is e >= W / 5.
    expected_at = start + LONG_MS + LONG_MS // 5
    assert expected_at - now - 1000 <= denied["retry_after_ms"] <= expected_at - now + 1000
    never = fields(r.execute_command("SHIELD.window", new_key(), 5, LONG, 6, "VERBOSE"))
    assert never == {"allowed": 0, "remaining": 5, "capacity": 5, "period": LONG,
                     "retry_after_ms": -1, "reset_after_ms": 0}


def test_window_verbose_is_a_map_in_resp3(shared_server):
    with RespClient(shared_server.port, protocol=3) as c:
        reply = c.call("SHIELD.window", new_key(), 10, LONG, "VERBOSE")
    assert isinstance(reply, dict) and list(reply) == FIELDS, reply
    assert (reply["allowed"], reply["remaining"], reply["capacity"], reply["period"]) == (1, 9, 10, LONG)


def test_window_with_a_short_window_forgets_after_two_windows(r):
    key = new_key()
    assert r.execute_command("SHIELD.window", key, 2, 1, 2) == 0
    assert 1000 < r.pttl(key) <= 2000
    assert r.execute_command("SHIELD.window", key, 2, 1, 1) in (-1, 0)  # still counted, or fading
    expire_at = r.pexpiretime(key)
    time.sleep(max(0, expire_at - server_ms(r) + 20) / 1000)
    assert r.exists(key) == 0
    assert r.execute_command("SHIELD.window", key, 2, 1, 2) == 0


# ---- SHIELD.quota -----------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["HOUR", "DAY", "MONTH"])
def test_quota_admits_the_limit_then_denies_and_expires_at_the_periods_end(r, unit):
    key = new_key()
    before = server_ms(r)
    assert [r.execute_command("SHIELD.quota", key, 3, unit) for _ in range(4)] == [2, 1, 0, -1]
    after = server_ms(r)
    assert r.get(key) == "3"
    assert r.pexpiretime(key) in {period_bounds(unit, before)[1], period_bounds(unit, after)[1]}


@pytest.mark.parametrize("unit", ["HOUR", "DAY", "MONTH", "hour", "Month"])
def test_quota_verbose_reports_the_period_and_the_time_to_its_end(r, unit):
    key = new_key()
    now = server_ms(r)
    reply = fields(r.execute_command("SHIELD.quota", key, 10, unit, 4, "VERBOSE"))
    start, end = period_bounds(unit.upper(), now)
    assert reply["allowed"] == 1 and reply["remaining"] == 6 and reply["capacity"] == 10
    assert reply["period"] == (end - start) // 1000
    assert reply["retry_after_ms"] == 0
    assert 0 < reply["reset_after_ms"] <= end - now
    assert r.pexpiretime(key) == end


def test_quota_denial_waits_for_the_periods_end_and_minus_one_beyond_the_limit(r):
    key = new_key()
    r.execute_command("SHIELD.quota", key, 5, "DAY", 5)
    reply = fields(r.execute_command("SHIELD.quota", key, 5, "DAY", 1, "VERBOSE"))
    end = r.pexpiretime(key)
    assert reply["allowed"] == 0 and reply["remaining"] == 0
    assert reply["retry_after_ms"] == reply["reset_after_ms"]
    assert 0 < end - server_ms(r) - reply["retry_after_ms"] + 1000 <= 2000
    never = fields(r.execute_command("SHIELD.quota", new_key(), 5, "DAY", 6, "VERBOSE"))
    assert never["allowed"] == 0 and never["remaining"] == 5 and never["retry_after_ms"] == -1


def test_quota_verbose_is_a_map_in_resp3(shared_server):
    with RespClient(shared_server.port, protocol=3) as c:
        reply = c.call("SHIELD.quota", new_key(), 10, "MONTH", "VERBOSE")
    assert isinstance(reply, dict) and list(reply) == FIELDS, reply
    assert (reply["allowed"], reply["remaining"], reply["capacity"]) == (1, 9, 10)


def test_quota_reads_a_hand_made_count(r):
    key = new_key()
    r.set(key, "7")  # no expiry: counted in the current period, which the write then gives it
    assert r.execute_command("SHIELD.quota", key, 10, "HOUR", 2) == 1
    assert r.get(key) == "9"
    assert r.pexpiretime(key) in {period_bounds("HOUR", server_ms(r) - 1000)[1],
                                  period_bounds("HOUR", server_ms(r))[1]}


# ---- both: the command table, MULTI and scripts -------------------------------------------------


@pytest.mark.parametrize("command", ["SHIELD.window", "SHIELD.quota"])
def test_command_info_declares_a_fast_write_of_one_key_read_and_updated(shared_server, command):
    period = "60" if command == "SHIELD.window" else "DAY"
    with RespClient(shared_server.port) as c:
        info = c.call("COMMAND", "INFO", command)[0]
        assert c.call("COMMAND", "GETKEYS", command, "k", 10, period, 1, "VERBOSE") == ["k"]
    name, arity, flags, first, last, step = info[:6]
    assert name.lower() == command.lower() and arity == -4 and (first, last, step) == (1, 1, 1)
    assert {"write", "denyoom", "fast"} <= set(flags)
    key_specs = info[8]
    assert len(key_specs) == 1
    spec = dict(zip(key_specs[0][0::2], key_specs[0][1::2]))
    assert set(spec["flags"]) == {"RW", "access", "update"}


def test_inside_multi_and_lua_the_replies_are_the_same(r):
    window, quota = new_key(), new_key()
    with r.pipeline(transaction=True) as tx:
        tx.execute_command("SHIELD.window", window, 5, LONG, 2)
        tx.execute_command("SHIELD.quota", quota, 5, "MONTH", 2)
        assert tx.execute() == [3, 3]
    assert r.eval("return redis.call('SHIELD.window', KEYS[1], 5, ARGV[1], 2)", 1, window, LONG) == 1
    assert r.eval("return redis.call('SHIELD.quota', KEYS[1], 5, 'MONTH', 2)", 1, quota) == 1


# ---- bad input: the exact error, and nothing written -------------------------------------------

WINDOW_ARITY = "wrong number of arguments for 'SHIELD.window' command"
QUOTA_ARITY = "wrong number of arguments for 'SHIELD.quota' command"
LIMIT = "limit must be positive"
WINDOW = "window must be positive"
TOKENS = "tokens must be positive"
WINDOW_TOO_LARGE = "window value too large"
PERIOD = "period must be HOUR, DAY or MONTH"
SYNTAX = "syntax error"

BAD_ARGUMENTS = [
    ("SHIELD.window", (), WINDOW_ARITY),
    ("SHIELD.window", ("10",), WINDOW_ARITY),
    ("SHIELD.window", ("10", "60", "1", "extra"), WINDOW_ARITY),
    ("SHIELD.window", ("10", "60", "1", "2"), WINDOW_ARITY),
    ("SHIELD.window", ("10", "60", "VERBOSE", "1"), WINDOW_ARITY),
    ("SHIELD.window", ("10", "60", "VERBOSE", "verbose"), SYNTAX),
    ("SHIELD.window", ("0", "60"), LIMIT),
    ("SHIELD.window", ("-1", "60"), LIMIT),
    ("SHIELD.window", ("05", "60"), LIMIT),
    ("SHIELD.window", ("1.5", "60"), LIMIT),
    ("SHIELD.window", ("9223372036854775808", "60"), LIMIT),
    ("SHIELD.window", ("0", "0", "0"), LIMIT),
    ("SHIELD.window", ("10", "0"), WINDOW),
    ("SHIELD.window", ("10", "-60"), WINDOW),
    ("SHIELD.window", ("10", "sixty"), WINDOW),
    ("SHIELD.window", ("10", "0", "0"), WINDOW),
    ("SHIELD.window", ("10", "60", "0"), TOKENS),
    ("SHIELD.window", ("10", "60", "+1"), TOKENS),
    ("SHIELD.window", ("10", "9223372036854775807", "0"), TOKENS),
    ("SHIELD.window", ("10", "9223372036854776"), WINDOW_TOO_LARGE),
    ("SHIELD.window", ("10", "9223372036854775807"), WINDOW_TOO_LARGE),
    ("SHIELD.window", ("10", "4611686018427387"), WINDOW_TOO_LARGE),  # twice it does not fit
    ("SHIELD.quota", (), QUOTA_ARITY),
    ("SHIELD.quota", ("10",), QUOTA_ARITY),
    ("SHIELD.quota", ("10", "DAY", "1", "extra"), QUOTA_ARITY),
    ("SHIELD.quota", ("10", "DAY", "VERBOSE", "1"), QUOTA_ARITY),
    ("SHIELD.quota", ("10", "DAY", "VERBOSE", "VERBOSE"), SYNTAX),
    ("SHIELD.quota", ("0", "DAY"), LIMIT),
    ("SHIELD.quota", ("ten", "DAY"), LIMIT),
    ("SHIELD.quota", ("0", "WEEK", "0"), LIMIT),
    ("SHIELD.quota", ("10", "WEEK"), PERIOD),
    ("SHIELD.quota", ("10", "3600"), PERIOD),
    ("SHIELD.quota", ("10", "HOURS"), PERIOD),
    ("SHIELD.quota", ("10", ""), PERIOD),
    ("SHIELD.quota", ("10", "YEAR", "0"), PERIOD),
    ("SHIELD.quota", ("10", "DAY", "0"), TOKENS),
    ("SHIELD.quota", ("10", "DAY", "-2"), TOKENS),
    ("SHIELD.quota", ("10", "DAY", "9223372036854775808"), TOKENS),
]


@pytest.mark.parametrize("command,args,error", BAD_ARGUMENTS,
                         ids=[f"{c} {' '.join(a) or '(nothing)'}" for c, a, _ in BAD_ARGUMENTS])
def test_bad_arguments_get_the_exact_error_and_write_nothing(r, command, args, error):
    key = new_key()
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command(command, key, *args)
    assert str(raised.value) == error
    assert r.exists(key) == 0
    assert r.ping()


BAD_STORED = [
    ("SHIELD.window", "'abc'", lambda r, k: r.set(k, "abc"), "invalid sliding window state in Redis"),
    ("SHIELD.window", "a token count", lambda r, k: r.set(k, "17"), "invalid sliding window state in Redis"),
    ("SHIELD.window", "two numbers", lambda r, k: r.set(k, "1:2"), "invalid sliding window state in Redis"),
    ("SHIELD.window", "a decimal", lambda r, k: r.set(k, "1:2.5:3"), "invalid sliding window state in Redis"),
    ("SHIELD.window", "a list", lambda r, k: r.rpush(k, "a"),
     "WRONGTYPE Operation against a key holding the wrong kind of value"),
    ("SHIELD.quota", "'abc'", lambda r, k: r.set(k, "abc"), "invalid token count in Redis"),
    ("SHIELD.quota", "a window state", lambda r, k: r.set(k, "1:2:3"), "invalid token count in Redis"),
    ("SHIELD.quota", "a hash", lambda r, k: r.hset(k, "f", "v"),
     "WRONGTYPE Operation against a key holding the wrong kind of value"),
]


@pytest.mark.parametrize("command,what,prepare,error", BAD_STORED,
                         ids=[f"{c} on {w}" for c, w, _, _ in BAD_STORED])
def test_a_key_that_holds_something_else_gets_the_exact_error_and_stays_as_it_was(r, command, what,
                                                                                prepare, error):
    key = new_key()
    prepare(r, key)
    dump = r.dump(key)
    period = "60" if command == "SHIELD.window" else "DAY"
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command(command, key, 10, period)
    assert str(raised.value) == error
    assert r.dump(key) == dump and r.pttl(key) == -1


# ---- replication: effects, never the command; nothing for denials or errors --------------------


def test_replication_stream_carries_set_pxat_and_nothing_for_denials(make_server):
    primary = make_server()
    r = primary.client()
    window, quota = new_key(), new_key()
    with ReplicationStream(primary) as stream:
        assert r.execute_command("SHIELD.window", window, 2, LONG, 2) == 0
        assert r.execute_command("SHIELD.window", window, 2, LONG, 1) == -1  # denied
        assert r.execute_command("SHIELD.quota", quota, 2, "MONTH", 1, "VERBOSE")[1] == 1
        assert r.execute_command("SHIELD.quota", quota, 2, "MONTH", 2) == -1  # denied
        with pytest.raises(redis.ResponseError):
            r.execute_command("SHIELD.window", window, 0, LONG)  # error
        with pytest.raises(redis.ResponseError):
            r.execute_command("SHIELD.quota", quota, 2, "WEEK")  # error
        commands = stream.commands_until(new_key("marker"))
    assert [[word.upper() if i == 0 else word for i, word in enumerate(cmd)] for cmd in commands] == [
        ["SET", window, r.get(window), "PXAT", str(r.pexpiretime(window))],
        ["SET", quota, "1", "PXAT", str(r.pexpiretime(quota))],
    ]
    assert r.get(window).endswith(":0:2")


def test_replica_holds_the_same_values_and_expiries(primary_and_replica):
    primary, replica = primary_and_replica
    p, rep = primary.client(), replica.client()
    window, quota = new_key(), new_key()
    for _ in range(3):
        p.execute_command("SHIELD.window", window, 2, LONG)  # the third is denied
        p.execute_command("SHIELD.quota", quota, 2, "DAY")
    assert p.wait(1, 5000) == 1
    for key in (window, quota):
        assert (rep.get(key), rep.pexpiretime(key)) == (p.get(key), p.pexpiretime(key)), key
    with pytest.raises(redis.ReadOnlyError):
        rep.execute_command("SHIELD.window", window, 2, LONG)
    with pytest.raises(redis.ReadOnlyError):
        rep.execute_command("SHIELD.quota", quota, 2, "DAY")


REFUSED = ("Shield cannot propagate its write to replicas and the AOF (is SET or DEL renamed?); "
           "nothing was written")


def test_when_set_is_renamed_an_allowed_call_fails_writes_nothing_and_a_denial_still_answers(make_server):
    server = make_server(extra_args=["--rename-command", "SET", "SET_RENAMED"])
    r = server.client()
    window, quota = new_key(), new_key()
    for args in [("SHIELD.window", window, 10, LONG), ("SHIELD.quota", quota, 10, "DAY", 1, "VERBOSE")]:
        with pytest.raises(redis.ResponseError) as raised:
            r.execute_command(*args)
        assert str(raised.value) == REFUSED
    assert r.dbsize() == 0
    assert int(r.info("shield")["SHIELD_propagation_errors"]) == 2
    r.execute_command("SET_RENAMED", quota, 10, "PX", 60_000)
    assert r.execute_command("SHIELD.quota", quota, 10, "DAY") == -1
    assert r.get(quota) == "10"


def test_memory_usage_of_each_key_on_redis_7_0_is_what_docs_commands_md_says(r, server_kind):
    # docs/commands.md, "Why not an exact log": measured with MEMORY USAGE on Redis 7.0.
    if server_kind != "redis7":
        pytest.skip("the figures in docs/commands.md are Redis 7.0's; other servers lay keys out otherwise")
    if os.environ.get("SHIELD_SERVER_PRELOAD") or os.environ.get("SHIELD_SERVER_LAUNCHER"):
        pytest.skip("memory figures are the server's own allocator's, not a sanitizer's or valgrind's")
    window, big_window, bucket, quota = "w1", "w2", "b1", "q1"  # short names: the key counts too
    r.delete(window, big_window, bucket, quota)
    r.execute_command("SHIELD.window", window, 100, 60)
    r.set(big_window, f"{server_ms(r)}:1234567890123456789:1234567890123456789", px=120_000)
    r.execute_command("SHIELD.absorb", bucket, 100, 60)
    r.execute_command("SHIELD.quota", quota, 100, "DAY")
    assert [r.memory_usage(k) for k in (window, big_window, bucket, quota)] == [80, 112, 56, 56]
