"""SHIELD.absorb ... VERBOSE: the decision as a map (RESP3) or field/value pairs (RESP2)."""

import time
import uuid

import pytest
from shield_servers import RespClient

FIELDS = ["allowed", "remaining", "capacity", "period", "retry_after_ms", "reset_after_ms"]


def fields(reply):
    """A RESP2 VERBOSE reply (flat field/value list) as a dict, after checking the field order."""
    assert isinstance(reply, list) and reply[::2] == FIELDS, reply
    return dict(zip(reply[::2], reply[1::2]))


def new_key():
    return f"verbose:{uuid.uuid4().hex}"


def test_verbose_reply_is_the_flat_field_value_array_in_resp2(r):
    reply = r.execute_command("SHIELD.absorb", new_key(), 30, 60, 13, "VERBOSE")
    assert reply == ["allowed", 1, "remaining", 17, "capacity", 30, "period", 60,
                     "retry_after_ms", 0, "reset_after_ms", 26000]


def test_verbose_reply_is_a_map_in_resp3(shared_server):
    with RespClient(shared_server.port, protocol=3) as c:
        reply = c.call("SHIELD.absorb", new_key(), 30, 60, 13, "VERBOSE")
    assert isinstance(reply, dict), reply
    assert list(reply.items()) == [("allowed", 1), ("remaining", 17), ("capacity", 30), ("period", 60),
                                   ("retry_after_ms", 0), ("reset_after_ms", 26000)]


def test_resp3_and_resp2_replies_carry_the_same_decision(shared_server):
    key = new_key()
    with RespClient(shared_server.port, protocol=3) as c3, RespClient(shared_server.port, protocol=2) as c2:
        assert c3.call("SHIELD.absorb", key, 30, 36_000, 13, "VERBOSE")["remaining"] == 17
        # 36000 s: one token per 1200 s, so nothing refills between the two calls.
        resp2 = fields(c2.call("SHIELD.absorb", key, 30, 36_000, 13, "VERBOSE"))
        resp3 = c3.call("SHIELD.absorb", key, 30, 36_000, 13, "VERBOSE")
    assert resp2["remaining"] == 4 and resp2["allowed"] == 1
    assert resp3["allowed"] == 0 and resp3["remaining"] == 4
    assert resp3["capacity"] == 30 and resp3["period"] == 36_000


def test_an_allowed_call_after_a_take_reports_the_time_until_full_less_the_carried_refill(r):
    key = new_key()
    r.execute_command("SHIELD.absorb", key, 30, 3600, 13)
    reply = fields(r.execute_command("SHIELD.absorb", key, 30, 3600, 13, "VERBOSE"))
    assert reply["allowed"] == 1 and reply["remaining"] == 4 and reply["retry_after_ms"] == 0
    # 26 tokens at 120 s each, less the refill under way since the first call (< one token).
    assert 26 * 120_000 - 120_000 < reply["reset_after_ms"] <= 26 * 120_000


def test_a_denied_call_reports_the_tokens_held_and_when_to_retry(r):
    key = new_key()
    assert r.execute_command("SHIELD.absorb", key, 30, 3600, 13) == 17
    assert r.execute_command("SHIELD.absorb", key, 30, 3600, 13) == 4
    before = (r.get(key), r.pexpiretime(key))
    reply = fields(r.execute_command("SHIELD.absorb", key, 30, 3600, 13, "VERBOSE"))
    assert reply["allowed"] == 0
    assert reply["remaining"] == 4  # what the bucket holds now
    assert reply["capacity"] == 30 and reply["period"] == 3600
    # 9 more tokens at 120 s each, less the refill under way (< one token); 26 to be full.
    assert 9 * 120_000 - 120_000 < reply["retry_after_ms"] <= 9 * 120_000
    assert 26 * 120_000 - 120_000 < reply["reset_after_ms"] <= 26 * 120_000
    assert reply["retry_after_ms"] < reply["reset_after_ms"]
    assert (r.get(key), r.pexpiretime(key)) == before  # a denial writes nothing


@pytest.mark.parametrize(
    "args,held",
    [
        (("30", "60", "31"), 30),
        (("30", "60", "9223372036854775807"), 30),
        (("30", "60", "21", "BURST", "20"), 20),
    ],
    ids=["31 tokens from a bucket of 30", "2^63-1 tokens from a bucket of 30", "21 tokens from a burst of 20"],
)
def test_more_tokens_than_the_bucket_can_ever_hold_give_retry_after_minus_one(r, args, held):
    key = new_key()
    reply = fields(r.execute_command("SHIELD.absorb", key, *args, "VERBOSE"))
    assert reply == {"allowed": 0, "remaining": held, "capacity": 30, "period": 60,
                     "retry_after_ms": -1, "reset_after_ms": 0}
    assert r.exists(key) == 0


@pytest.mark.parametrize("tokens_sequence", [(1, 3, 5, 2), (4, 1)], ids=["1, 3, 5 then 2 tokens", "4 then 1 tokens"])
def test_waiting_retry_after_ms_is_enough_for_the_same_call_to_succeed(r, tokens_sequence):
    """Capacity 5 per second: a token every 200 ms. Drain, ask, sleep what the reply says, retry."""
    key = new_key()
    for tokens in tokens_sequence:
        for _ in range(20):  # a slow machine may refill a token between the drain and the ask
            while r.execute_command("SHIELD.absorb", key, 5, 1, 1) >= 0:
                pass
            reply = fields(r.execute_command("SHIELD.absorb", key, 5, 1, tokens, "VERBOSE"))
            if reply["allowed"] == 0:
                break
        assert reply["allowed"] == 0, reply
        retry = reply["retry_after_ms"]
        assert 0 < retry <= tokens * 200, reply
        time.sleep(retry / 1000)
        assert r.execute_command("SHIELD.absorb", key, 5, 1, tokens) >= 0, f"denied after {retry} ms"


def test_without_verbose_the_replies_are_integers_as_before(r):
    key = new_key()
    assert [r.execute_command("SHIELD.absorb", key, 30, 60, 13) for _ in range(3)] == [17, 4, -1]
    burst_key = new_key()
    assert r.execute_command("SHIELD.absorb", burst_key, 10, 60, "BURST", 20) == 19
    assert r.execute_command("SHIELD.absorb", burst_key, 10, 60, 19, "BURST", 20) == 0
    assert r.execute_command("SHIELD.absorb", burst_key, 10, 60, 1, "BURST", 20) == -1


@pytest.mark.parametrize(
    "options",
    [
        ("VERBOSE", "BURST", "40"),
        ("BURST", "40", "VERBOSE"),
        ("verbose", "burst", "40"),
        ("Burst", "40", "vErBoSe"),
    ],
    ids=lambda options: " ".join(options),
)
def test_verbose_and_burst_are_case_insensitive_and_in_any_order(r, options):
    reply = fields(r.execute_command("SHIELD.absorb", new_key(), 30, 60, 13, *options))
    # A new bucket of 40 tokens refilling 30 per minute: 13 tokens take 26 s to come back.
    assert reply == {"allowed": 1, "remaining": 27, "capacity": 30, "period": 60,
                     "retry_after_ms": 0, "reset_after_ms": 26000}


@pytest.mark.parametrize("word", ["VERBOSE", "verbose"])
def test_verbose_without_tokens_takes_one(r, word):
    key = new_key()
    reply = fields(r.execute_command("SHIELD.absorb", key, 10, 60, word))
    assert reply == {"allowed": 1, "remaining": 9, "capacity": 10, "period": 60,
                     "retry_after_ms": 0, "reset_after_ms": 6000}
    assert r.get(key) == "9"


def test_verbose_with_a_small_burst_reports_the_time_to_refill_the_burst(r):
    key = new_key()
    reply = fields(r.execute_command("SHIELD.absorb", key, 10, 60, "BURST", 2, "VERBOSE"))
    assert reply == {"allowed": 1, "remaining": 1, "capacity": 10, "period": 60,
                     "retry_after_ms": 0, "reset_after_ms": 6000}
    # The key lives until the bucket of 2 is full again: 12 s from the write.
    assert 11_000 < r.pttl(key) <= 12_000


def test_verbose_inside_multi_and_lua_gives_the_same_pairs(r):
    key = new_key()
    with r.pipeline(transaction=True) as tx:
        tx.execute_command("SHIELD.absorb", key, 30, 60, 13, "VERBOSE")
        (reply,) = tx.execute()
    assert fields(reply)["remaining"] == 17
    lua = r.eval("return redis.call('SHIELD.absorb', KEYS[1], 30, 60, 13, 'VERBOSE')", 1, new_key())
    assert lua == ["allowed", 1, "remaining", 17, "capacity", 30, "period", 60,
                   "retry_after_ms", 0, "reset_after_ms", 26000]
