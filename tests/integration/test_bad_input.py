"""Bad input gets the exact error, changes nothing, and the server keeps answering."""

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

# (how the key is prepared, error): the key exists, and must be left exactly as it was.
BAD_STORED = [
    (lambda r, k: r.rpush(k, "a"), WRONGTYPE),
    (lambda r, k: r.hset(k, "f", "v"), WRONGTYPE),
    (lambda r, k: r.sadd(k, "m"), WRONGTYPE),
    (lambda r, k: r.zadd(k, {"m": 1}), WRONGTYPE),
    (lambda r, k: r.xadd(k, {"f": "v"}), WRONGTYPE),
    (lambda r, k: r.set(k, "abc"), INVALID),
    (lambda r, k: r.set(k, ""), INVALID),
    (lambda r, k: r.set(k, "1.5"), INVALID),
    (lambda r, k: r.set(k, " 5"), INVALID),
    (lambda r, k: r.set(k, "5 "), INVALID),
    (lambda r, k: r.set(k, "5\x00"), INVALID),
    (lambda r, k: r.set(k, b"\xff\xfe\xfd"), INVALID),
    (lambda r, k: r.set(k, b"\xc3\x28"), INVALID),
    (lambda r, k: r.set(k, "99999999999999999999"), INVALID),
    (lambda r, k: r.set(k, "-99999999999999999999"), INVALID),
    (lambda r, k: r.set(k, "1e3"), INVALID),
    (lambda r, k: r.set(k, "0x10"), INVALID),
    (lambda r, k: r.set(k, "--1"), INVALID),
    (lambda r, k: r.set(k, "x" * 1_000_000), INVALID),
    (lambda r, k: r.set(k, "7" * 100), INVALID),
    (lambda r, k: r.psetex(k, 60_000, "junk"), INVALID),
]


def snapshot(r, key):
    return (r.type(key), r.dump(key), r.pexpiretime(key))


@pytest.mark.parametrize("args,error", BAD_ARGUMENTS, ids=[f"args{i}" for i in range(len(BAD_ARGUMENTS))])
def test_bad_arguments_give_the_exact_error_and_write_nothing(shared_server, args, error):
    r = shared_server.client(decode_responses=False)
    key = f"bad:{uuid.uuid4().hex}"
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command("SHIELD.absorb", key, *args)
    assert str(raised.value) == error
    assert r.exists(key) == 0
    assert r.ping()


@pytest.mark.parametrize("prepare,error", BAD_STORED, ids=[f"stored{i}" for i in range(len(BAD_STORED))])
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
)
def test_odd_but_numeric_stored_values_have_a_documented_reading(r, stored, reply):
    key = f"odd:{uuid.uuid4().hex}"
    r.psetex(key, 60_000, stored)  # written just now: nothing refilled yet
    assert r.execute_command("SHIELD.absorb", key, 10, 60, 1) == reply
