"""CL.THROTTLE: a drop-in for redis-cell's command, on real servers.

The replies of redis-cell's README and end-to-end test, its error messages, keys hand-made in its
format (the TAT in decimal nanoseconds), the keys Shield writes (the same format, expiring at the
TAT), effects on the replication stream (SET ... PXAT, never the command, nothing for a denial),
and a clear load error when another module already owns CL.THROTTLE.
"""

import subprocess
import time
import uuid

import pytest
import redis
from shield_servers import MODULE, REPO, ReplicationStream, RespClient, RespError, wait_until

NS = 1_000_000_000
USAGE = ("Cell error: Store error: Usage: cl.throttle <key> <max_burst> <count per period> <period> "
         "[<quantity>]")


def new_key():
    return f"cell:{uuid.uuid4().hex}"


def server_now_ns(r):
    seconds, micros = r.time()
    return seconds * NS + micros * 1000


def throttle(r, key, *args):
    return r.execute_command("CL.THROTTLE", key, *args)


# ---- replies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,reply",
    [
        ((15, 30, 60), [0, 16, 15, -1, 2]),
        ((15, 30, 60, 1), [0, 16, 15, -1, 2]),
        ((5, 5, 3600), [0, 6, 5, -1, 720]),
        ((4, 1, 1, 6), [1, 5, 5, -1, 0]),
        ((4, 1, 1, 5), [0, 5, 0, -1, 5]),
        ((0, 2000, 1), [0, 1, 0, -1, 0]),
        ((6000, 6000, 1), [0, 6001, 6000, -1, 0]),
        ((999, 1_000_000, 1), [0, 1000, 999, -1, 0]),
        ((0, 1, 86_400), [0, 1, 0, -1, 86_400]),
        ((9223372036854775806, 1, 1), [0, 9223372036854775807, 9223372036854775806, -1, 1]),
    ],
    ids=["README: 15 burst, 30 per minute", "README with the quantity", "5 per hour, burst 5",
         "more than the limit is never allowed", "the whole limit at once",
         "2000 per second (redis-cell's issue #80)", "6000 per second (redis-cell's issue #50)",
         "a million per second", "one per day", "the largest max_burst"],
)
def test_a_new_key_replies_as_redis_cell_does(r, args, reply):
    assert throttle(r, new_key(), *args) == reply


def test_redis_cells_end_to_end_test_one_per_two_seconds_without_burst(r):
    key = new_key()
    assert throttle(r, key, 0, 1, 2, 1) == [0, 1, 0, -1, 2]
    assert throttle(r, key, 0, 1, 2, 1) == [1, 1, 0, 2, 2]
    # Instead of sleeping 2 s: move the TAT back by 2 s, as the passing of time would.
    r.set(key, int(r.get(key)) - 2 * NS, keepttl=True)
    assert throttle(r, key, 0, 1, 2, 1) == [0, 1, 0, -1, 2]


def test_a_burst_drains_then_denies_with_the_wait_until_the_next_call(r):
    key = new_key()
    replies = [throttle(r, key, 2, 1, 60) for _ in range(4)]
    assert [reply[:3] for reply in replies] == [[0, 3, 2], [0, 3, 1], [0, 3, 0], [1, 3, 0]]
    assert replies[3][3] == 60  # one more call in 60 s
    assert replies[3][4] == 180  # the whole burst back in 180 s


# ---- the key format -------------------------------------------------------------------------


def test_the_key_holds_the_tat_in_nanoseconds_and_expires_at_it(r):
    key = new_key()
    before = server_now_ns(r)
    throttle(r, key, 15, 30, 60)  # one call: the TAT is now + 2 s
    after = server_now_ns(r)
    tat = int(r.get(key))
    # Redis 7.0 gives modules the time in milliseconds only.
    assert before // 1_000_000 * 1_000_000 + 2 * NS <= tat <= after + 2 * NS
    assert r.pexpiretime(key) == -(-tat // 1_000_000)  # the first millisecond at or after it
    # Rounded up to the millisecond: redis-cell's PTTL is rounded down, up to 1 ms less.
    assert 2000 - (after - before) // 1_000_000 - 2 <= r.pttl(key) <= 2001


@pytest.mark.parametrize(
    "offset_ns,reply",
    [
        (2_500_000_123, [0, 5, 1, -1, 4]),  # 2.5 of 5 used, then this call
        (2_499_999_877, [0, 5, 1, -1, 4]),
        (10 * NS, [1, 5, 0, 6, 10]),  # beyond the tolerance: denied for 6 s
    ],
    ids=["2.5 s ahead and 123 ns", "2.5 s ahead less 123 ns", "10 s ahead"],
)
def test_a_key_hand_made_in_redis_cells_format_is_read_as_it_would(r, offset_ns, reply):
    key = new_key()
    tat = server_now_ns(r) + offset_ns
    r.set(key, str(tat), px=60_000)
    assert throttle(r, key, 4, 1, 1) == reply


def test_a_key_moved_from_redis_cell_at_the_limits_exact_boundary_is_allowed(r):
    # 10 of 11 used, written just before the call at the client's nanosecond time: redis-cell,
    # reading nanoseconds, allows the 11th call (0 11 0 -1 ...). A clock read in whole
    # milliseconds would read a time up to 1 ms earlier than the TAT's and deny most of these.
    interval = 3600 * NS  # one per hour, max_burst 10
    for _ in range(20):
        key = new_key()
        tat = time.time_ns() + 10 * interval
        r.set(key, str(tat), pxat=-(-tat // 1_000_000))
        assert throttle(r, key, 10, 1, 3600)[:4] == [0, 11, 0, -1]


def test_a_tat_in_the_past_on_a_key_without_expiry_has_the_whole_burst(r):
    key = new_key()
    r.set(key, str(server_now_ns(r) - 5 * NS))
    assert throttle(r, key, 4, 1, 1) == [0, 5, 4, -1, 1]


def test_a_tat_seconds_in_the_past_on_a_key_with_an_expiry_is_refused(r):
    # A GCRA key expires at its TAT, so such a value is another algorithm's (docs/commands.md).
    key = new_key()
    r.set(key, str(server_now_ns(r) - 5 * NS), px=60_000)
    with pytest.raises(redis.ResponseError, match="^Cell error: Store error: invalid theoretical"):
        throttle(r, key, 4, 1, 1)


@pytest.mark.parametrize("value", ["+1", "0007", "18446744073709551615"],
                         ids=["a plus sign", "leading zeros", "the largest u64"])
def test_every_value_redis_cell_reads_as_a_tat_is_read(r, value):
    key = new_key()
    r.set(key, value)
    limited = 1 if value == "18446744073709551615" else 0
    assert throttle(r, key, 4, 1, 1, 0)[0] == limited


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "", "18446744073709551616", " 1"],
                         ids=["text", "negative", "a decimal", "empty", "past u64", "a space"])
def test_a_value_that_is_not_a_tat_is_an_error_and_stays(r, value):
    key = new_key()
    r.set(key, value)
    with pytest.raises(redis.ResponseError, match="^Cell error: Store error: invalid theoretical arrival time"):
        throttle(r, key, 4, 1, 1)
    assert r.get(key) == value and r.ttl(key) == -1


def test_a_key_of_another_type_is_wrongtype(r):
    key = new_key()
    r.hset(key, "a", 1)
    with pytest.raises(redis.ResponseError, match="^WRONGTYPE"):
        throttle(r, key, 4, 1, 1)


def test_a_shield_bucket_is_refused_by_cl_throttle_instead_of_read_as_a_tat_in_1970(r):
    """A count with an expiry cannot be a TAT (a GCRA key lives until its TAT): an error, not a
    full burst (tests/integration/test_cross_algorithm_keys.py has every pair)."""
    key = new_key()
    assert r.execute_command("SHIELD.absorb", key, 10, 60, 3) == 7
    with pytest.raises(redis.ResponseError, match="^Cell error: Store error: invalid theoretical"):
        throttle(r, key, 4, 1, 1)
    assert r.get(key) == "7"


# ---- what is written, and what is propagated ---------------------------------------------------


def state(r, key):
    return r.get(key), r.pexpiretime(key)


def test_a_denied_call_writes_nothing(r):
    key = new_key()
    throttle(r, key, 0, 1, 60)
    before = state(r, key)
    assert throttle(r, key, 0, 1, 60)[0] == 1
    assert state(r, key) == before


def test_quantity_zero_looks_without_writing(r):
    key = new_key()
    assert throttle(r, key, 4, 1, 60, 0) == [0, 5, 5, -1, 0]
    assert r.exists(key) == 0
    throttle(r, key, 4, 1, 60, 2)
    before = state(r, key)
    assert throttle(r, key, 4, 1, 60, 0)[:3] == [0, 5, 3]
    assert state(r, key) == before


def test_a_negative_quantity_gives_back_and_a_full_give_back_deletes_the_key(r):
    key = new_key()
    throttle(r, key, 4, 1, 60, 3)
    tat = int(r.get(key))
    assert throttle(r, key, 4, 1, 60, -1)[:3] == [0, 5, 3]
    assert int(r.get(key)) == tat - 60 * NS
    assert throttle(r, key, 4, 1, 60, -5) == [0, 5, 5, -1, 0]
    assert r.exists(key) == 0


def test_the_replication_stream_carries_effects_never_the_command(make_server):
    primary = make_server()
    r = primary.client()
    key, missing = new_key(), new_key()
    with ReplicationStream(primary) as stream:
        assert throttle(r, key, 1, 1, 60)[0] == 0
        first = state(r, key)
        assert throttle(r, key, 1, 1, 60)[0] == 0
        second = state(r, key)
        assert throttle(r, key, 1, 1, 60)[0] == 1  # denied: nothing
        assert throttle(r, key, 1, 1, 60, 0)[0] == 0  # looks: nothing
        assert throttle(r, missing, 1, 1, 60, 0)[0] == 0  # looks at a missing key: nothing
        with pytest.raises(redis.ResponseError):
            throttle(r, missing, 1, 0, 60)  # an error: nothing
        assert throttle(r, key, 1, 1, 60, -5)[0] == 0  # gives everything back: DEL
        commands = stream.commands_until(new_key())
    commands = [[c[0].upper(), *c[1:]] for c in commands]
    assert commands == [
        ["SET", key, first[0], "PXAT", str(first[1])],
        ["SET", key, second[0], "PXAT", str(second[1])],
        ["DEL", key],
    ]


def test_a_replica_holds_the_primarys_tat_and_expiry(primary_and_replica):
    primary, replica = primary_and_replica
    p, rep = primary.client(), replica.client()
    keys = [new_key() for _ in range(3)]
    for i, key in enumerate(keys):
        for _ in range(i + 1):
            throttle(p, key, 5, 3, 1)
    assert p.wait(1, 5000) == 1
    for key in keys:
        assert state(rep, key) == state(p, key)


def test_it_is_refused_on_a_read_only_replica(primary_and_replica):
    _, replica = primary_and_replica
    with pytest.raises(redis.ReadOnlyError):
        throttle(replica.client(), new_key(), 5, 3, 1)


# ---- bad input -----------------------------------------------------------------------------------


BAD_INPUT = [
    ((), USAGE),
    (("15", "30"), USAGE),
    (("15", "30", "60", "1", "1"), USAGE),
    (("abc", "30", "60"), "Cell error: Store error: Couldn't parse as integer: abc"),
    (("15", "1.5", "60"), "Cell error: Store error: Couldn't parse as integer: 1.5"),
    (("15", "30", ""), "Cell error: Store error: Couldn't parse as integer: "),
    (("15", "30", "60", "x y"), "Cell error: Store error: Couldn't parse as integer: x y"),
    (("15", "30", "60", "a\r\nb"), "Cell error: Store error: Couldn't parse as integer: a  b"),
    (("15", "30", "60", "9223372036854775808"),
     "Cell error: Store error: Couldn't parse as integer: 9223372036854775808"),
    (("15", "0", "60"), "Cell error: Store error: Zero rates are not supported"),
    (("15", "30", "0"), "Cell error: Store error: Zero rates are not supported"),
    (("15", "2000000001", "2"), "Cell error: Store error: Zero rates are not supported"),
    (("15", "-30", "60"), "Cell error: Store error: Negative rates are not supported"),
    (("15", "30", "-60"), "Cell error: Store error: Negative rates are not supported"),
    (("-1", "30", "60"), "Cell error: Store error: max_burst must be between 0 and 9223372036854775806"),
    (("9223372036854775807", "30", "60"),
     "Cell error: Store error: max_burst must be between 0 and 9223372036854775806"),
    (("0", "1", "9223372036854775"),
     "Cell error: Store error: period too large: a call's interval must end before the year 2554"),
]


@pytest.mark.parametrize("args,error", BAD_INPUT,
                         ids=["no arguments", "two arguments", "five arguments", "a word", "a decimal",
                              "empty", "a space", "CR LF", "past int64", "zero count", "zero period",
                              "above a billion per second", "negative count", "negative period",
                              "negative max_burst", "max_burst 2^63-1",
                              "a period whose interval passes the year 2554"])
def test_bad_input_gets_the_exact_error_and_writes_nothing(shared_server, args, error):
    key = new_key()
    with RespClient(shared_server.port) as c:
        reply = c.call("CL.THROTTLE", key, *args)
        assert isinstance(reply, RespError) and str(reply) == error
        assert c.call("EXISTS", key) == 0


def test_without_a_key_it_is_the_usage_error(shared_server):
    with RespClient(shared_server.port) as c:
        reply = c.call("CL.THROTTLE")
    assert isinstance(reply, RespError) and str(reply) == USAGE


def test_the_command_is_lowercase_and_uppercase_alike(r):
    assert r.execute_command("cl.throttle", new_key(), 15, 30, 60) == [0, 16, 15, -1, 2]


# ---- command metadata ----------------------------------------------------------------------------


def test_command_info_declares_write_deny_oom_fast_and_the_key(shared_server):
    with RespClient(shared_server.port) as c:
        info = c.call("COMMAND", "INFO", "CL.THROTTLE")[0]
        assert c.call("COMMAND", "GETKEYS", "CL.THROTTLE", "user123", 15, 30, 60) == ["user123"]
    name, arity, flags, first, last, step = info[:6]
    assert (name.lower(), arity, first, last, step) == ("cl.throttle", -1, 1, 1, 1)
    assert {"write", "denyoom", "fast"} <= set(flags)
    key_specs = info[8]
    assert len(key_specs) == 1
    spec = dict(zip(key_specs[0][0::2], key_specs[0][1::2]))
    assert {"RW", "access", "update"} <= set(spec["flags"])


# ---- another module owning CL.THROTTLE -----------------------------------------------------------

MODULE_COMMAND = ["--enable-module-command", "yes"]
FAKE_CELL = r"""
#include "redismodule.h"
static int Throttle(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
  (void)argv; (void)argc;
  return RedisModule_ReplyWithSimpleString(ctx, "fake-cell");
}
int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
  (void)argv; (void)argc;
  if (RedisModule_Init(ctx, "redis-cell", 1, REDISMODULE_APIVER_1) == REDISMODULE_ERR)
    return REDISMODULE_ERR;
  return RedisModule_CreateCommand(ctx, "cl.throttle", Throttle, "write", 1, 1, 1);
}
"""


@pytest.fixture(scope="module")
def fake_cell(tmp_path_factory):
    """A module named redis-cell that registers cl.throttle, as redis-cell does."""
    header = str(REPO / ".deps" / "redismodule")
    folder = tmp_path_factory.mktemp("fake-cell")
    source, library = folder / "cell.c", folder / "libfake_cell.so"
    source.write_text(FAKE_CELL)
    built = subprocess.run(["cc", "-shared", "-fPIC", "-I", header, "-o", str(library), str(source)],
                           capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"cannot build the stand-in module: {built.stderr[:200]}")
    return str(library)


def test_shield_does_not_load_beside_redis_cell_and_says_why(make_server, fake_cell):
    server = make_server(module=fake_cell, extra_args=MODULE_COMMAND)
    r = server.client()
    assert r.execute_command("CL.THROTTLE", "k", 1, 1, 1) == "fake-cell"
    with pytest.raises(redis.ResponseError, match="Error loading the extension"):
        r.execute_command("MODULE", "LOAD", MODULE)
    def load_error():
        with open(server.log_path) as f:
            text = f.read()
        return text if "Shield could not register cl.throttle" in text else None

    log = wait_until(load_error, what="Shield's load error in the log")
    assert "most likely redis-cell's" in log and "MODULE UNLOAD redis-cell" in log
    # Nothing of Shield stays, and redis-cell's command is untouched.
    assert r.execute_command("CL.THROTTLE", "k", 1, 1, 1) == "fake-cell"
    with pytest.raises(redis.ResponseError):
        r.execute_command("SHIELD.absorb", "b", 10, 60)


def test_the_migration_unload_redis_cell_load_shield_keeps_every_key(make_server, fake_cell):
    server = make_server(module=fake_cell, extra_args=MODULE_COMMAND)
    r = server.client()
    key = new_key()
    r.set(key, str(server_now_ns(r) + 2_500_000_000), px=60_000)  # a key redis-cell wrote
    assert r.execute_command("MODULE", "UNLOAD", "redis-cell") == "OK"
    assert r.execute_command("MODULE", "LOAD", MODULE) == "OK"
    assert throttle(r, key, 4, 1, 1) == [0, 5, 1, -1, 4]


def test_redis_cell_does_not_load_beside_shield(make_server, fake_cell):
    r = make_server(extra_args=MODULE_COMMAND).client()
    with pytest.raises(redis.ResponseError, match="Error loading the extension"):
        r.execute_command("MODULE", "LOAD", fake_cell)
    assert throttle(r, new_key(), 15, 30, 60) == [0, 16, 15, -1, 2]


def test_time_moves_the_limit_along(r):
    """A real wait: one per 100 ms, no burst; allowed again once 100 ms have passed."""
    key = new_key()
    assert throttle(r, key, 0, 10, 1)[0] == 0
    assert throttle(r, key, 0, 10, 1)[0] == 1
    time.sleep(0.12)
    assert throttle(r, key, 0, 10, 1)[0] == 0


# ---- SHIELD.gcra: SHIELD.absorb's arguments and replies over the same limit -----------------------

VERBOSE_FIELDS = ["allowed", "remaining", "capacity", "period", "retry_after_ms", "reset_after_ms"]


def test_shield_gcra_replies_as_shield_absorb_does(r):
    key = new_key()
    assert [r.execute_command("SHIELD.gcra", key, 30, 60, 13) for _ in range(3)] == [17, 4, -1]


def test_shield_gcra_verbose_is_the_shield_map_in_resp2_and_resp3(shared_server):
    key = new_key()
    with RespClient(shared_server.port, protocol=3) as c3, RespClient(shared_server.port) as c2:
        first = c2.call("SHIELD.gcra", key, 30, 60, 13, "VERBOSE")
        assert first == ["allowed", 1, "remaining", 17, "capacity", 30, "period", 60,
                         "retry_after_ms", 0, "reset_after_ms", 26_000]
        c3.call("SHIELD.gcra", key, 30, 60, 13)
        denied = c3.call("SHIELD.gcra", key, 30, 60, 13, "VERBOSE")
    assert list(denied) == VERBOSE_FIELDS
    assert denied["allowed"] == 0 and denied["remaining"] == 4
    assert 18_000 - 50 <= denied["retry_after_ms"] <= 18_000  # 9 more at 2 s each, less the wait
    assert 52_000 - 50 <= denied["reset_after_ms"] <= 52_000


def test_shield_gcra_and_cl_throttle_share_one_key(r):
    key = new_key()
    assert r.execute_command("SHIELD.gcra", key, 30, 60, 1, "BURST", 16) == 15
    assert throttle(r, key, 15, 30, 60) == [0, 16, 14, -1, 4]
    assert r.execute_command("SHIELD.gcra", key, 30, 60, 14, "BURST", 16) == 0


@pytest.mark.parametrize(
    "args,error",
    [
        ((30,), None),
        ((0, 60), "capacity must be positive"),
        ((30, 0), "period must be positive"),
        ((30, 60, 0), "tokens must be positive"),
        ((30, 60, 1, "BURST", 0), "burst must be positive"),
        ((30, 60, "VERBOSE", "VERBOSE"), "syntax error"),
        ((2_000_000_000, 1), "rate too high: at most 1000000000 tokens per second"),
    ],
    ids=["arity", "zero capacity", "zero period", "zero tokens", "zero burst", "VERBOSE twice",
         "above a billion per second"],
)
def test_shield_gcra_errors_are_shield_absorbs_and_write_nothing(r, args, error):
    key = new_key()
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command("SHIELD.gcra", key, *args)
    if error is None:
        assert "wrong number of arguments" in str(raised.value)
    else:
        assert str(raised.value) == error
    assert r.exists(key) == 0


def test_shield_gcra_on_a_value_that_is_not_a_tat_says_so(r):
    key = new_key()
    r.set(key, "abc")
    with pytest.raises(redis.ResponseError, match="^invalid theoretical arrival time in Redis$"):
        r.execute_command("SHIELD.gcra", key, 30, 60)


def test_shield_gcra_propagates_its_effect(make_server):
    primary = make_server()
    r = primary.client()
    key = new_key()
    with ReplicationStream(primary) as stream:
        assert r.execute_command("SHIELD.gcra", key, 1, 60) == 0
        assert r.execute_command("SHIELD.gcra", key, 1, 60) == -1
        commands = stream.commands_until(new_key())
    assert [[c[0].upper(), *c[1:]] for c in commands] == [
        ["SET", key, r.get(key), "PXAT", str(r.pexpiretime(key))]]
