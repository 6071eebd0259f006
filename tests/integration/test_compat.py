"""SHIELD.absorb behaves as the original module does, and shares its key format both ways.

Every test here runs twice per server kind: on a standalone server, and through a cluster client
on a three-primary cluster (keys spread over all primaries).
"""

import time
import uuid

import pytest
from shield_cluster import Cluster
from shield_servers import original_reading


@pytest.fixture(scope="module")
def compat_cluster(server_binary):
    cluster = Cluster(server_binary, primaries=3, replicas=0)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["standalone", "cluster"])
def r(request, shared_server):
    if request.param == "standalone":
        client = shared_server.client()
    else:
        client = request.getfixturevalue("compat_cluster").client()
    yield client
    client.close()


def fresh_key(prefix="compat"):
    return f"{prefix}:{uuid.uuid4().hex}"


def shift_time(r, key, ms):
    """Moves a bucket `ms` into the future by shortening its TTL, as the wait would."""
    pttl = r.pttl(key)
    if pttl <= ms:
        r.delete(key)
    else:
        r.pexpire(key, pttl - ms)


def absorb(r, key, *args):
    return r.execute_command("SHIELD.absorb", key, *args)


def test_readme_example(r):
    key = fresh_key()
    assert [absorb(r, key, 30, 60, 13) for _ in range(3)] == [17, 4, -1]


def test_tokens_default_to_one(r):
    key = fresh_key()
    assert absorb(r, key, 5, 10) == 4
    assert absorb(r, key, 5, 10) == 3


def test_original_timing_case_capacity_3_period_6(r):
    key = fresh_key()
    assert absorb(r, key, 3, 6, 1) == 2
    shift_time(r, key, 3000)
    assert absorb(r, key, 3, 6, 1) == 2
    assert absorb(r, key, 3, 6, 2) == 0
    shift_time(r, key, 6000)
    assert absorb(r, key, 3, 6, 1) == 2


def test_original_timing_case_capacity_5_period_1(r):
    key = fresh_key()
    assert absorb(r, key, 5, 1, 3) == 2
    shift_time(r, key, 2000)
    assert absorb(r, key, 5, 1, 1) == 4


def test_original_timing_case_capacity_100_period_10(r):
    key = fresh_key()
    assert absorb(r, key, 100, 10, 50) == 50
    shift_time(r, key, 5000)
    assert absorb(r, key, 100, 10, 1) in (98, 99)


def test_key_without_ttl_counts_as_full(r):
    key = fresh_key()
    r.set(key, 2)
    assert absorb(r, key, 30, 60) == 29


def test_writes_a_plain_string_with_millisecond_ttl(r):
    key = fresh_key()
    assert absorb(r, key, 30, 60, 5) == 25
    assert r.type(key) == "string"
    assert r.get(key) == "25"
    assert 59_000 < r.pttl(key) <= 60_000


def test_denied_call_writes_nothing(r):
    key = fresh_key()
    assert absorb(r, key, 3, 60, 3) == 0
    expire_at = r.pexpiretime(key)
    assert absorb(r, key, 3, 60, 1) == -1
    assert r.get(key) == "0"
    assert r.pexpiretime(key) == expire_at


def test_more_tokens_than_capacity_is_denied_and_writes_nothing(r):
    key = fresh_key()
    assert absorb(r, key, 5, 60, 6) == -1
    assert r.exists(key) == 0


@pytest.mark.parametrize(
    "stored,pttl_ms,capacity,period,tokens",
    [
        (4, 45_000, 30, 60, 1),  # 15 s refilled at 0.5/s: 7 whole tokens
        (0, 1_000, 10, 10, 1),  # nearly full again
        (17, 60_000, 30, 60, 13),  # just written
        (1, 30_000, 1_000_000, 60, 1000),  # a big bucket half refilled
        (0, 59_999, 3, 60, 1),  # nothing refilled yet: denied
    ],
)
def test_reads_buckets_written_by_the_original(r, stored, pttl_ms, capacity, period, tokens):
    """The original writes `PSETEX key period_ms remaining`; ours reads it with the same formula."""
    key = fresh_key("original")
    r.psetex(key, pttl_ms, stored)
    started = time.monotonic()
    expected = original_reading(stored, r.pttl(key), capacity, period)
    reply = absorb(r, key, capacity, period, tokens)
    # Time passes between reading the TTL and the call: allow the refill of that time (rounded
    # up to whole milliseconds, the TTL's step), and nothing beyond it.
    waited_ms = int((time.monotonic() - started) * 1000) + 2
    slack = waited_ms * capacity // (period * 1000) + 1
    if expected < tokens:
        assert reply == -1
    else:
        assert 0 <= reply - (expected - tokens) <= slack


@pytest.mark.parametrize("capacity,period,taken", [(30, 60, 13), (3, 6, 2), (1_000_000, 10, 999_999), (10, 3600, 10)])
def test_original_reads_buckets_we_write(r, capacity, period, taken):
    """After our write, the original's formula on GET and PTTL gives back the tokens we replied."""
    key = fresh_key("ours")
    started = time.monotonic()
    remaining = absorb(r, key, capacity, period, taken)
    reading = original_reading(r.get(key), r.pttl(key), capacity, period)
    # Our TTL carries under one token of partial refill, plus whatever accrued since the call
    # (the TTL has millisecond steps, so round the wait up and add one).
    waited_ms = int((time.monotonic() - started) * 1000) + 2
    assert 0 <= reading - remaining <= 1 + waited_ms * capacity // (period * 1000)


def test_partial_refill_is_kept_not_reset(r):
    """Flaw 3 of the original: a call every 1.9 s on 3 per 6 s was starved forever."""
    key = fresh_key("starve")
    granted = 0
    for _ in range(30):
        if absorb(r, key, 3, 6, 1) >= 0:
            granted += 1
        shift_time(r, key, 1900)
    window_s = 29 * 1.9
    assert granted >= 3 + int(window_s * 3 / 6) - 1
    assert granted <= 3 + int(window_s * 3 / 6) + 1


def test_binary_key_names_work(r):
    key = b"bin:\x00\xff\xfe" + uuid.uuid4().bytes
    assert absorb(r, key, 10, 60, 3) == 7
    assert r.get(key) == "7"
