"""Bad input gets the exact error, changes nothing, and the server keeps answering."""

import re
import uuid

import pytest
import redis

ARITY = "wrong number of arguments for 'SHIELD.absorb' command"
CAPACITY = "capacity must be positive"
PERIOD = "period must be positive"
TOKENS = "tokens must be positive"
TOO_LARGE = "period value too large"
INVALID = "invalid token count in Redis"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"

# (arguments after the key, error). The key itself is fresh and must stay absent.
BAD_ARGUMENTS = [
    ((), ARITY),
    (("10",), ARITY),
    (("10", "60", "1", "extra"), ARITY),
    (("10", "60", "1", "2", "3"), ARITY),
    (("0", "60"), CAPACITY),
    (("-1", "60"), CAPACITY),
    (("-9223372036854775808", "60"), CAPACITY),
    (("9223372036854775808", "60"), CAPACITY),
    (("abc", "60"), CAPACITY),
    (("", "60"), CAPACITY),
    (("1.5", "60"), CAPACITY),
    (("1e3", "60"), CAPACITY),
    (("+5", "60"), CAPACITY),
    (("05", "60"), CAPACITY),
    ((" 5", "60"), CAPACITY),
    (("5 ", "60"), CAPACITY),
    (("0x10", "60"), CAPACITY),
    (("5\x00", "60"), CAPACITY),
    (("\xff", "60"), CAPACITY),
    (("inf", "60"), CAPACITY),
    (("nan", "60"), CAPACITY),
    (("-0", "60"), CAPACITY),
    (("0", "0", "0"), CAPACITY),
    (("10", "0"), PERIOD),
    (("10", "-60"), PERIOD),
    (("10", "sixty"), PERIOD),
    (("10", ""), PERIOD),
    (("10", "60.0"), PERIOD),
    (("10", "+60"), PERIOD),
    (("10", "060"), PERIOD),
    (("10", "1e2"), PERIOD),
    (("10", "99999999999999999999"), PERIOD),
    (("10", "0", "0"), PERIOD),
    (("10", "60", "0"), TOKENS),
    (("10", "60", "-1"), TOKENS),
    (("10", "60", "one"), TOKENS),
    (("10", "60", ""), TOKENS),
    (("10", "60", "1.0"), TOKENS),
    (("10", "60", "+1"), TOKENS),
    (("10", "60", "01"), TOKENS),
    (("10", "60", "9223372036854775808"), TOKENS),
    (("10", "9223372036854775807", "0"), TOKENS),
    (("10", "9223372036854776"), TOO_LARGE),
    (("10", "9223372036854775807"), TOO_LARGE),
    (("10", "9223372036854775807", "1"), TOO_LARGE),
    # Fits in ms, but now + period does not fit in an absolute expiry.
    (("10", "9223372036854775"), TOO_LARGE),
    (("10", "9223372000000000"), TOO_LARGE),
    (("9223372036854775807", "9223372036854775"), TOO_LARGE),
]

# (what the key holds, how it is prepared, error): the key exists, and must be left exactly as it was.
BAD_STORED = [
    ("a list", lambda r, k: r.rpush(k, "a"), WRONGTYPE),
    ("a hash", lambda r, k: r.hset(k, "f", "v"), WRONGTYPE),
    ("a set", lambda r, k: r.sadd(k, "m"), WRONGTYPE),
    ("a sorted set", lambda r, k: r.zadd(k, {"m": 1}), WRONGTYPE),
    ("a stream", lambda r, k: r.xadd(k, {"f": "v"}), WRONGTYPE),
    ("'abc'", lambda r, k: r.set(k, "abc"), INVALID),
    ("an empty string", lambda r, k: r.set(k, ""), INVALID),
    ("'1.5'", lambda r, k: r.set(k, "1.5"), INVALID),
    ("' 5'", lambda r, k: r.set(k, " 5"), INVALID),
    ("'5 '", lambda r, k: r.set(k, "5 "), INVALID),
    ("'5' and a NUL byte", lambda r, k: r.set(k, "5\x00"), INVALID),
    ("binary bytes", lambda r, k: r.set(k, b"\xff\xfe\xfd"), INVALID),
    ("invalid UTF-8", lambda r, k: r.set(k, b"\xc3\x28"), INVALID),
    ("a number beyond 64 bits", lambda r, k: r.set(k, "99999999999999999999"), INVALID),
    ("a negative number beyond 64 bits", lambda r, k: r.set(k, "-99999999999999999999"), INVALID),
    ("'1e3'", lambda r, k: r.set(k, "1e3"), INVALID),
    ("'0x10'", lambda r, k: r.set(k, "0x10"), INVALID),
    ("'--1'", lambda r, k: r.set(k, "--1"), INVALID),
    ("a million x", lambda r, k: r.set(k, "x" * 1_000_000), INVALID),
    ("a hundred 7s", lambda r, k: r.set(k, "7" * 100), INVALID),
    ("'junk' written by PSETEX", lambda r, k: r.psetex(k, 60_000, "junk"), INVALID),
]


def shown(arg):
    """An argument as a test id shows it: plain when it is plain, quoted when it is odd."""
    return arg if re.fullmatch(r"[A-Za-z0-9_:.+{}-]+", arg) else repr(arg)


def short(error):
    if error.startswith("wrong number of arguments"):
        return "the arity error"
    return "WRONGTYPE" if error.startswith("WRONGTYPE") else f"'{error}'"


def describe(command, args, error):
    """A readable test id: `absorb k 05 60 gives 'capacity must be positive'`."""
    return f"{command.split('.', 1)[1]} {' '.join(shown(a) for a in args)} gives {short(error)}".replace("  ", " ")


def snapshot(r, key):
    return (r.type(key), r.dump(key), r.pexpiretime(key))


@pytest.mark.parametrize("args,error", BAD_ARGUMENTS,
                         ids=[describe("SHIELD.absorb", ("k", *args), error) for args, error in BAD_ARGUMENTS])
def test_bad_arguments_give_the_exact_error_and_write_nothing(shared_server, args, error):
    r = shared_server.client(decode_responses=False)
    key = f"bad:{uuid.uuid4().hex}"
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command("SHIELD.absorb", key, *args)
    assert str(raised.value) == error
    assert r.exists(key) == 0
    assert r.ping()


@pytest.mark.parametrize("prepare,error", [(prepare, error) for _, prepare, error in BAD_STORED],
                         ids=[f"{held} gives {short(error)}" for held, _, error in BAD_STORED])
def test_bad_stored_values_give_a_clear_error_and_change_nothing(shared_server, prepare, error):
    r = shared_server.client(decode_responses=False)
    key = f"stored:{uuid.uuid4().hex}"
    prepare(r, key)
    before = snapshot(r, key)
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command("SHIELD.absorb", key, 10, 60, 1)
    assert str(raised.value) == error
    assert snapshot(r, key) == before
    assert r.ping()


def test_missing_arguments_with_no_key_give_the_arity_error(r):
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("SHIELD.absorb")


# Stored values that are not what Shield writes, and the documented way each one reads.
@pytest.mark.parametrize(
    "stored,reply",
    [
        ("-5", -1),  # a negative count reads as an empty bucket (the TTL says nothing refilled)
        ("-9223372036854775808", -1),
        ("9223372036854775807", 9),  # more than capacity reads as a full bucket
        ("+5", 4),  # a sign and leading zeros are accepted, as the original accepted them
        ("005", 4),
        ("0", -1),
    ],
    ids=lambda value: f"stored {value}" if isinstance(value, str) else f"reads as {value}",
)
def test_odd_but_numeric_stored_values_have_a_documented_reading(r, stored, reply):
    key = f"odd:{uuid.uuid4().hex}"
    r.psetex(key, 60_000, stored)  # written just now: nothing refilled yet
    assert r.execute_command("SHIELD.absorb", key, 10, 60, 1) == reply


# The new commands' errors, without the "ERR " prefix, as redis-py shows them.
BURST = "burst must be positive"
BURST_TOO_LARGE = "burst value too large"
SYNTAX = "syntax error"
STATS_RESET_MOVED = ("SHIELD.stats RESET is now SHIELD.stats_reset, an admin command (flags write admin), "
                     "so that read-only users cannot wipe the counters")
DUPLICATE = "key appears more than once in SHIELD.absorb_multi"
MAX = "9223372036854775807"


def arity(command):
    return f"wrong number of arguments for '{command}' command"


# (command, arguments with {a} and {b} for two keys, error). Both keys hold a bucket (3 tokens,
# expiring in 10 minutes) that must be left exactly as it was.
NEW_BAD_ARGUMENTS = [
    # SHIELD.absorb's options
    ("SHIELD.absorb", ("{a}", "10", "60", "1", "BURST", "0"), BURST),
    ("SHIELD.absorb", ("{a}", "10", "60", "BURST", "0"), BURST),
    ("SHIELD.absorb", ("{a}", "10", "60", "BURST", "-2"), BURST),
    ("SHIELD.absorb", ("{a}", "10", "60", "BURST", "abc"), BURST),
    ("SHIELD.absorb", ("{a}", "10", "60", "BURST", ""), BURST),
    ("SHIELD.absorb", ("{a}", "10", "60", "BURST", "+2"), BURST),
    ("SHIELD.absorb", ("{a}", "10", "60", "BURST", "02"), BURST),
    ("SHIELD.absorb", ("{a}", "10", "60", "BURST", "2.5"), BURST),
    ("SHIELD.absorb", ("{a}", "10", "60", "BURST", "9223372036854775808"), BURST),
    ("SHIELD.absorb", ("{a}", "0", "60", "1", "BURST", "0"), CAPACITY),  # capacity is checked first
    ("SHIELD.absorb", ("{a}", "10", "0", "1", "BURST", "0"), PERIOD),
    ("SHIELD.absorb", ("{a}", "10", "60", "0", "BURST", "0"), TOKENS),
    ("SHIELD.absorb", ("{a}", "1", "1", "BURST", MAX), BURST_TOO_LARGE),  # 2^63-1 s to fill
    ("SHIELD.absorb", ("{a}", "1", "9223372036854", "BURST", MAX), BURST_TOO_LARGE),
    ("SHIELD.absorb", ("{a}", "1000", "1", "BURST", MAX), BURST_TOO_LARGE),  # fits in ms; now + it does not
    # With BURST the key lives the time to fill the burst, not the period: a burst of 10 at
    # 10 per period takes the whole (too long) period.
    ("SHIELD.absorb", ("{a}", "10", "9223372036854775", "BURST", "10"), BURST_TOO_LARGE),
    # Neither fits: the burst's time to fill (2 periods) is what is reported.
    ("SHIELD.absorb", ("{a}", "1", "9223372036854775", "BURST", "2"), BURST_TOO_LARGE),
    ("SHIELD.absorb", ("{a}", "10", "60", "1", "BURST", "2", "BURST", "2"), SYNTAX),
    ("SHIELD.absorb", ("{a}", "10", "60", "BURST", "2", "burst", "3"), SYNTAX),
    ("SHIELD.absorb", ("{a}", "10", "60", "1", "VERBOSE", "VERBOSE"), SYNTAX),
    ("SHIELD.absorb", ("{a}", "10", "60", "VERBOSE", "BURST", "2", "verbose"), SYNTAX),
    ("SHIELD.absorb", ("{a}", "10", "60", "1", "BURST"), arity("SHIELD.absorb")),
    ("SHIELD.absorb", ("{a}", "10", "60", "VERBOSE", "5"), arity("SHIELD.absorb")),
    ("SHIELD.absorb", ("{a}", "10", "60", "1", "VERBOSE", "extra"), arity("SHIELD.absorb")),
    ("SHIELD.absorb", ("{a}", "10", "60", "1", "BURST", "2", "extra"), arity("SHIELD.absorb")),
    ("SHIELD.absorb", ("{a}", "10", "60", "1", "VERBOSEX"), arity("SHIELD.absorb")),
    # SHIELD.inspect
    ("SHIELD.inspect", ("{a}",), arity("SHIELD.inspect")),
    ("SHIELD.inspect", ("{a}", "10"), arity("SHIELD.inspect")),
    ("SHIELD.inspect", ("{a}", "10", "60", "1", "extra"), arity("SHIELD.inspect")),
    ("SHIELD.inspect", ("{a}", "10", "60", "1", "2"), arity("SHIELD.inspect")),
    ("SHIELD.inspect", ("{a}", "10", "60", "1", "BURST"), arity("SHIELD.inspect")),
    ("SHIELD.inspect", ("{a}", "0", "60"), CAPACITY),
    ("SHIELD.inspect", ("{a}", "05", "60"), CAPACITY),
    ("SHIELD.inspect", ("{a}", "10", "0"), PERIOD),
    ("SHIELD.inspect", ("{a}", "10", "60", "0"), TOKENS),
    ("SHIELD.inspect", ("{a}", "10", "60", "1", "BURST", "0"), BURST),
    ("SHIELD.inspect", ("{a}", "10", "9223372036854776"), TOO_LARGE),
    ("SHIELD.inspect", ("{a}", "1", "9223372036854", "BURST", MAX), BURST_TOO_LARGE),
    ("SHIELD.inspect", ("{a}", "10", "60", "BURST", "2", "BURST", "2"), SYNTAX),
    ("SHIELD.inspect", ("{a}", "10", "60", "VERBOSE", "VERBOSE"), SYNTAX),
    # SHIELD.absorb_multi: the first bucket is fine, the second is not
    ("SHIELD.absorb_multi", ("{a}", "10", "60"), arity("SHIELD.absorb_multi")),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}"), arity("SHIELD.absorb_multi")),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}", "10", "60"), arity("SHIELD.absorb_multi")),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}", "10", "60", "1", "extra"),
     arity("SHIELD.absorb_multi")),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}", "0", "60", "1"), CAPACITY),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}", ":5", "60", "1"), CAPACITY),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}", "+10", "60", "1"), CAPACITY),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}", "10", "0", "1"), PERIOD),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}", "10", "60", "0"), TOKENS),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}", "10:0", "60", "1"), BURST),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}", "10:", "60", "1"), BURST),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}", "10:abc", "60", "1"), BURST),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}", "10:-5", "60", "1"), BURST),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}", "10", "9223372036854776", "1"), TOO_LARGE),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}", f"1:{MAX}", "1", "1"), BURST_TOO_LARGE),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{a}", "10", "60", "1"), DUPLICATE),
    ("SHIELD.absorb_multi", ("{a}", "10", "60", "1", "{b}", "10", "60", "1", "{a}", "5", "60", "1", "VERBOSE"),
     DUPLICATE),
    # SHIELD.refund
    ("SHIELD.refund", ("{a}", "10", "60"), arity("SHIELD.refund")),
    ("SHIELD.refund", ("{a}", "10", "60", "1", "extra"), arity("SHIELD.refund")),
    ("SHIELD.refund", ("{a}", "10", "60", "1", "VERBOSE"), arity("SHIELD.refund")),
    ("SHIELD.refund", ("{a}", "10", "60", "1", "BURST"), arity("SHIELD.refund")),
    ("SHIELD.refund", ("{a}", "0", "60", "1"), CAPACITY),
    ("SHIELD.refund", ("{a}", "10", "0", "1"), PERIOD),
    ("SHIELD.refund", ("{a}", "10", "60", "0"), TOKENS),
    ("SHIELD.refund", ("{a}", "10", "60", "01"), TOKENS),
    ("SHIELD.refund", ("{a}", "10", "60", "1", "BURST", "0"), BURST),
    ("SHIELD.refund", ("{a}", "10", "9223372036854776", "1"), TOO_LARGE),
    ("SHIELD.refund", ("{a}", "1", "1", "1", "BURST", MAX), BURST_TOO_LARGE),
    ("SHIELD.refund", ("{a}", "10", "60", "1", "BURST", "2", "BURST", "2"), SYNTAX),
    # SHIELD.reset and SHIELD.stats
    ("SHIELD.reset", (), arity("SHIELD.reset")),
    ("SHIELD.stats", ("nope",), SYNTAX),
    ("SHIELD.stats", ("RESET", "{a}"), STATS_RESET_MOVED),
    # More arguments than any form of SHIELD.stats takes: the arity error, as every command answers.
    ("SHIELD.stats", ("CLUSTER", "TIMEOUT", "100", "{a}"), arity("SHIELD.stats")),
    # SHIELD.gcra has SHIELD.absorb's errors for periods and bursts too long to store
    ("SHIELD.gcra", ("{a}", "1", "9223372036854775"), TOO_LARGE),
    ("SHIELD.gcra", ("{a}", "1", "9223372036854775", "VERBOSE"), TOO_LARGE),
    ("SHIELD.gcra", ("{a}", "1", "20000000000"), TOO_LARGE),
]


@pytest.mark.parametrize("command,args,error", NEW_BAD_ARGUMENTS,
                         ids=[describe(c, [a.replace("{a}", "a").replace("{b}", "b") for a in args], e)
                              for c, args, e in NEW_BAD_ARGUMENTS])
def test_bad_arguments_to_the_new_commands_give_the_exact_error_and_write_nothing(shared_server, command, args,
                                                                                   error):
    r = shared_server.client(decode_responses=False)
    tag = uuid.uuid4().hex
    keys = {"{a}": f"bad:{{{tag}}}:a", "{b}": f"bad:{{{tag}}}:b"}
    for key in keys.values():
        r.psetex(key, 600_000, 3)
    before = {key: snapshot(r, key) for key in keys.values()}
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command(command, *[keys.get(a, a) for a in args])
    assert str(raised.value) == error
    assert {key: snapshot(r, key) for key in keys.values()} == before
    assert r.ping()


@pytest.mark.parametrize("prepare,error", [(prepare, error) for _, prepare, error in BAD_STORED[:7]],
                         ids=[f"{held} gives {short(error)}" for held, _, error in BAD_STORED[:7]])
@pytest.mark.parametrize(
    "command,args",
    [("SHIELD.inspect", ("10", "60")), ("SHIELD.refund", ("10", "60", "1")),
     ("SHIELD.absorb", ("10", "60", "1", "BURST", "20", "VERBOSE"))],
    ids=["inspect", "refund", "absorb with options"],
)
def test_bad_stored_values_give_the_same_errors_to_the_new_commands(shared_server, command, args, prepare, error):
    r = shared_server.client(decode_responses=False)
    key = f"stored:{uuid.uuid4().hex}"
    prepare(r, key)
    before = snapshot(r, key)
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command(command, key, *args)
    assert str(raised.value) == error
    assert snapshot(r, key) == before


@pytest.mark.parametrize("name", ["shield.inspect", "SHIELD.INSPECT", "Shield.Absorb_Multi", "shield.REFUND",
                                  "shield.reset"])
def test_arity_errors_name_the_new_commands_as_registered(r, name):
    registered = {"shield.inspect": "SHIELD.inspect", "shield.absorb_multi": "SHIELD.absorb_multi",
                  "shield.refund": "SHIELD.refund", "shield.reset": "SHIELD.reset"}[name.lower()]
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command(name)
    assert str(raised.value) == arity(registered)
