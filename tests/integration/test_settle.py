"""SHIELD.settle (costs known afterwards) and DRYRUN on SHIELD.window, SHIELD.quota and
SHIELD.gcra, on real servers: the give-back, the debt and its bound, how every reader sees a bucket
in debt, SETTLE in SHIELD.limit, and dry runs that change nothing."""

import uuid

import pytest
import redis

LONG = 1_000_000  # seconds: a refill so slow that no test sees a token come back


def key(prefix="st"):
    return f"{prefix}:{uuid.uuid4().hex}"


def test_settling_below_the_reservation_gives_the_difference_back(r):
    k = key()
    assert r.execute_command("SHIELD.absorb", k, 10, LONG, 6) == 4
    assert r.execute_command("SHIELD.settle", k, 10, LONG, 6, 2) == 8


def test_settling_above_the_reservation_takes_the_rest_and_leaves_the_bucket_in_debt(r):
    k = key()
    assert r.execute_command("SHIELD.absorb", k, 10, 10, 8) == 2
    assert r.execute_command("SHIELD.settle", k, 10, 10, 8, 13) == -3  # 2 were there, 3 are owed
    assert r.get(k) == "0"
    # Debt is refill time beyond the fill time: 3 tokens at 1 per second.
    assert 12_900 <= r.pttl(k) <= 13_000
    verbose = r.execute_command("SHIELD.absorb", k, 10, 10, 1, "VERBOSE")
    fields = dict(zip(verbose[::2], verbose[1::2]))
    assert fields["allowed"] == 0 and fields["remaining"] == 0
    assert 3_900 <= fields["retry_after_ms"] <= 4_000  # the debt, then one token's refill


def test_the_debt_is_at_most_one_periods_refill(r):
    k = key()
    assert r.execute_command("SHIELD.settle", k, 10, 10, 0, 1000) == -10
    assert 19_900 <= r.pttl(k) <= 20_000


def test_a_refund_or_a_settle_that_gives_back_repays_the_debt_first(r):
    k = key()
    r.execute_command("SHIELD.settle", k, 10, 10, 0, 15)  # 10 taken, 5 owed
    assert r.execute_command("SHIELD.refund", k, 10, 10, 2) == -3
    assert r.execute_command("SHIELD.settle", k, 10, 10, 5, 0) == 2  # 3 repay the debt, 2 are left


def test_a_policy_of_cost_zero_reports_a_debt_in_its_reset_time(r):
    k = key()
    r.execute_command("SHIELD.settle", k, 10, 10, 0, 15)  # 10 taken, 5 owed: 5 s of refill
    reply = r.execute_command("SHIELD.limit", 1, k, "b", "BUCKET", 10, 10, "COST", 0)
    policy = dict(zip(reply[7][0][::2], reply[7][0][1::2]))
    assert policy["remaining"] == 0 and policy["reset_after_ms"] > 14_000


def test_settle_counts_what_it_took_and_gave(make_server):
    r = make_server().client()
    k = key()
    r.execute_command("SHIELD.settle", k, 10, LONG, 0, 4)
    r.execute_command("SHIELD.settle", k, 10, LONG, 4, 1)
    stats = r.execute_command("SHIELD.stats")
    stats = dict(zip(stats[::2], stats[1::2]))
    assert (stats["settle_calls"], stats["tokens_absorbed"], stats["tokens_refunded"]) == (2, 4, 3)


@pytest.mark.parametrize("words, error", [
    ([10, 60, -1, 2], "reserved and actual must be zero or positive integers"),
    ([10, 60, 1, "x"], "reserved and actual must be zero or positive integers"),
    ([0, 60, 1, 2], "capacity must be positive"),
    ([10, 60, 1, 2, "BURST", 0], "burst must be positive"),
    ([10, 60, 1, 2, "FAST", 3], "syntax error"),
    ([10, 60, 1], "wrong number of arguments"),
], ids=["a negative reservation", "an actual that is not a number", "a capacity of zero",
        "a burst of zero", "an unknown option", "no actual cost"])
def test_bad_settle_arguments_are_refused_and_write_nothing(r, words, error):
    k = key()
    with pytest.raises(redis.ResponseError, match=error):
        r.execute_command("SHIELD.settle", k, *words)
    assert r.exists(k) == 0


def test_settle_in_shield_limit_settles_a_bucket_and_a_gcra_limit_together(r):
    t = "{" + uuid.uuid4().hex + "}"
    bucket, gcra = f"b:{t}", f"g:{t}"
    r.execute_command("SHIELD.limit", 2, bucket, gcra, "b", "BUCKET", 10, LONG, "COST", 5, "g", "GCRA", 10,
                      LONG, "COST", 5)
    reply = r.execute_command("SHIELD.limit", 2, bucket, gcra, "b", "BUCKET", 10, LONG, "SETTLE", 5, 12, "g",
                              "GCRA", 10, LONG, "SETTLE", 5, 1)
    reply = dict(zip(reply[::2], reply[1::2]))
    assert reply["allowed"] == 1
    policies = [dict(zip(p[::2], p[1::2])) for p in reply["policies"]]
    assert [p["remaining"] for p in policies] == [0, 9]
    assert r.get(bucket) == "0" and r.pttl(bucket) > LONG * 1000  # in debt: 2 tokens owed
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SHIELD.limit", 1, bucket, "b", "BUCKET", 10, LONG, "SETTLE", 1, 2, "REFUND")


@pytest.mark.parametrize("command, words", [
    ("SHIELD.window", [5, 60]),
    ("SHIELD.quota", [5, "DAY"]),
    ("SHIELD.gcra", [5, 60]),
], ids=["the sliding window", "the calendar quota", "GCRA"])
def test_dryrun_replies_what_the_call_would_and_changes_nothing(r, command, words):
    k = key()
    assert r.execute_command(command, k, *words, 2, "DRYRUN") == 3
    assert r.exists(k) == 0
    assert r.execute_command(command, k, *words, 2) == 3
    value, encoding, expiry = r.get(k), r.object("encoding", k), r.pexpiretime(k)
    verbose = r.execute_command(command, k, *words, 4, "VERBOSE", "DRYRUN")
    assert dict(zip(verbose[::2], verbose[1::2]))["allowed"] == 0
    assert (r.get(k), r.object("encoding", k), r.pexpiretime(k)) == (value, encoding, expiry)
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command(command, k, *words, "DRYRUN", "DRYRUN")
