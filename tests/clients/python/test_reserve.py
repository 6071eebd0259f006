"""reserve(estimate) then settle(actual), sync and asyncio, against a real standalone server: the
give-back, the debt and the wait it imposes, window and quota policies given back what a lower
settle saves while their period lasts (and keeping the estimate otherwise), once only, the context
manager, and a settle lost while the server is down."""

import asyncio
import logging
import time

import pytest

from pyclient_support import REPO, command_calls
from redis_shield import AsyncLimiter, AsyncReservation, Limiter, Policy, Reservation
from redis_shield.core import limit_command, limit_results, settle_command

LONG = 1_000_000  # seconds: a refill so slow that no test sees a token come back


def run(coroutine):
    return asyncio.run(coroutine)


def remaining(client, key, policies):
    """What each window or quota policy has left for `key` now, read with SHIELD.limit_ro and COST 0."""
    command = ["SHIELD.limit_ro", *limit_command(policies, "shield:", key, 0)[1:]]
    return [r.remaining for r in limit_results(policies, client.execute_command(*command))]


def tokens_refunded(client):
    stats = client.execute_command("SHIELD.stats")
    return int(dict(zip(stats[::2], stats[1::2]))["tokens_refunded"])


def wait_until_the_window_counts_nothing(client, reservation, window):
    """Waits (polling, 10 s at most) until the server counts nothing in `window` for the reservation's
    key and the reservation's own clock says its estimate stopped counting there."""
    deadline = time.monotonic() + 10
    while remaining(client, reservation.key, [window]) != [window.limit] \
            or time.monotonic() < reservation.counted_until[window.name]:
        assert time.monotonic() < deadline, "the window still counts the reservation after 10 s"
        time.sleep(0.02)


@pytest.mark.parametrize("algorithm", ["bucket", "gcra"])
def test_a_reservation_of_10_settled_at_4_gives_6_back_in_one_shield_limit_call(url, server, algorithm):
    limiter = Limiter.from_url(url, [Policy(f"{algorithm}-tokens", algorithm, 100, LONG)])
    reservation = limiter.reserve("k", 10)
    assert isinstance(reservation, Reservation) and reservation and reservation.decision.source == "redis"
    assert reservation.decision.results[0].remaining == 90
    with server.client() as c:
        c.config_resetstat()
        after = reservation.settle(4)
        assert command_calls(c, "SHIELD.limit") == 1
    assert after.allowed and after.source == "redis" and after.results[0].remaining == 96
    assert reservation.settled is after
    assert limiter.consume("k", 96).allowed and not limiter.consume("k").allowed  # exactly 96 were there


def test_settling_above_the_estimate_leaves_the_bucket_in_debt_and_the_next_call_waits_out_the_debt(url, server):
    limiter = Limiter.from_url(url, [Policy.bucket("tokens", 10, 10)], deny_cache=None)  # 1 token a second
    reservation = limiter.reserve("k", 10)
    assert reservation.decision.results[0].remaining == 0
    after = reservation.settle(15)  # 5 more than the bucket held: 5 owed
    assert after.allowed and after.results[0].remaining == 0
    with server.client() as c:
        assert c.get("shield:{k}:tokens") == "0" and c.pttl("shield:{k}:tokens") > 14_000  # the debt's TTL
    refused = limiter.consume("k")
    assert not refused.allowed and refused.violated == ("tokens",)
    assert 5.0 <= refused.retry_after <= 6.0  # the debt (5 s), then one token's refill


def test_a_gcra_policy_settled_above_the_estimate_owes_the_rest_too(url):
    limiter = Limiter.from_url(url, [Policy.gcra("cells", 10, 10)], deny_cache=None)
    reservation = limiter.reserve("k", 10)
    assert reservation.settle(15).allowed
    refused = limiter.consume("k")
    assert not refused.allowed and 5.0 <= refused.retry_after <= 6.0


def test_the_debt_is_at_most_one_periods_refill(url):
    limiter = Limiter.from_url(url, [Policy.bucket("tokens", 10, 10)], deny_cache=None)
    limiter.reserve("k", 1).settle(1000)
    refused = limiter.consume("k")
    assert not refused.allowed and 10.0 <= refused.retry_after <= 11.0  # 10 owed at most, then a token


def test_settling_twice_is_an_error_and_sends_nothing(url, server):
    limiter = Limiter.from_url(url, [Policy.bucket("tokens", 100, LONG)])
    reservation = limiter.reserve("k", 10)
    reservation.settle(4)
    with server.client() as c:
        c.config_resetstat()
        with pytest.raises(RuntimeError, match="already settled"):
            reservation.settle(4)
        assert command_calls(c, "SHIELD.limit") == 0
    assert limiter.consume("k").results[0].remaining == 95  # settled once: 6 back, not 12


def test_a_refused_reservation_is_refused_as_consume_refuses_and_has_nothing_to_settle(url, server):
    limiter = Limiter.from_url(url, [Policy.bucket("tokens", 10, 10), Policy.quota("daily", 100, "DAY")])
    with limiter.reserve("k", 11) as reservation:  # more than the bucket ever holds
        assert not reservation and reservation.decision.violated == ("tokens",)
        assert reservation.decision.retry_after == float("inf")
        with pytest.raises(RuntimeError, match="refused"):
            reservation.settle(3)
    with server.client() as c:
        assert c.dbsize() == 0  # the refused reservation took nothing, and its settle sent nothing


def test_a_reservation_left_without_settle_keeps_the_estimate_and_sends_nothing(url, server):
    limiter = Limiter.from_url(url, [Policy.bucket("tokens", 100, LONG)])
    with server.client() as c:
        c.config_resetstat()
        with pytest.raises(KeyError):
            with limiter.reserve("k", 10) as reservation:
                raise KeyError("the work failed")
        assert command_calls(c, "SHIELD.limit") == 1  # the reservation only
        assert c.get("shield:{k}:tokens") == "90"
    with pytest.raises(RuntimeError, match="already settled"):
        reservation.settle(2)
    with limiter.reserve("k", 10) as reservation:
        reservation.settle(0)
    assert limiter.consume("k").results[0].remaining == 89


def test_a_window_and_a_quota_settled_lower_get_the_difference_back_in_one_refund_call_before_the_settle(url, server):
    policies = [Policy.bucket("tokens", 100, LONG), Policy.window("sliding", 10, 60),
                Policy.quota("daily", 10, "DAY"), Policy.bucket("requests", 100, LONG, cost=1)]
    limiter = Limiter.from_url(url, policies, deny_cache=None)
    reservation = limiter.reserve("k", 10)
    assert [r.remaining for r in reservation.decision.results] == [90, 0, 0, 99]
    assert set(reservation.counted_until) == {"sliding", "daily"}  # the policies a refund may reach
    with server.client() as c:
        assert remaining(c, "k", policies[1:3]) == [0, 0]
        c.config_resetstat()
        before = tokens_refunded(c)
        after = reservation.settle(4)
        assert command_calls(c, "SHIELD.limit") == 2  # the REFUND of the window and the quota, then the settle
        assert tokens_refunded(c) - before == 6 + 6 + 6  # the bucket's SETTLE, the window's and the quota's REFUND
        assert remaining(c, "k", policies[1:3]) == [6, 6]
        assert c.get("shield:{k}:daily") == "4" and c.get("shield:{k}:requests") == "99"  # a fixed cost keeps its 1
    assert after.allowed and [r.remaining for r in after.results] == [96, 6, 6, 99]


def test_a_window_and_a_quota_settled_higher_or_equal_keep_the_estimate_and_no_refund_is_sent(url, server):
    policies = [Policy.window("sliding", 10, 60), Policy.quota("daily", 10, "DAY")]
    limiter = Limiter.from_url(url, policies, deny_cache=None)
    higher, equal = limiter.reserve("k", 4), limiter.reserve("k", 2)
    with server.client() as c:
        c.config_resetstat()
        assert higher.settle(9).allowed and equal.settle(2).allowed
        assert command_calls(c, "SHIELD.limit") == 2  # the two settles, no REFUND
        assert remaining(c, "k", policies) == [4, 4]  # 6 counted: the estimates, not the overrun
    refused = limiter.reserve("k", 5)
    assert not refused and refused.decision.violated == ("sliding", "daily")


def test_a_window_whose_period_ended_before_the_settle_is_not_refunded_but_a_quota_still_counting_is(url, server):
    window, quota = Policy.window("second", 10, 1), Policy.quota("daily", 100, "DAY")
    limiter = Limiter.from_url(url, [window, quota], deny_cache=None)
    reservation = limiter.reserve("k", 5)
    with server.client() as c:
        wait_until_the_window_counts_nothing(c, reservation, window)
        assert limiter.consume("k", 3, [window]).allowed  # 3 counted in the window's new period
        before = tokens_refunded(c)
        c.config_resetstat()
        after = reservation.settle(1)
        assert command_calls(c, "SHIELD.limit") == 2  # a REFUND of the quota alone, then the settle
        assert tokens_refunded(c) - before == 4  # the quota's 4; the window's new period was not credited
        assert remaining(c, "k", [quota]) == [99]
    assert after.allowed and after.results[1].remaining == 99


def test_a_settle_after_every_refundable_period_ended_sends_no_refund_call(url, server):
    window = Policy.window("second", 10, 1)
    limiter = Limiter.from_url(url, [window, Policy.bucket("tokens", 100, LONG)], deny_cache=None)
    reservation = limiter.reserve("k", 5)
    with server.client() as c:
        wait_until_the_window_counts_nothing(c, reservation, window)
        assert limiter.consume("k", 3, [window]).allowed
        before = tokens_refunded(c)
        c.config_resetstat()
        after = reservation.settle(1)
        assert command_calls(c, "SHIELD.limit") == 1  # the settle alone
        assert tokens_refunded(c) - before == 4  # the bucket's SETTLE only
    assert after.allowed and after.results[1].remaining == 99


def test_the_settle_call_the_docs_show_is_the_one_the_limiter_builds():
    text = (REPO / "docs" / "clients" / "python.md").read_text()
    policies = [Policy.bucket("llm-tokens", 10000, 3600), Policy.quota("requests", 1000, "DAY", cost=1)]
    sent = " ".join(str(word) for word in settle_command(policies, "shield:", "user:42", 1000, 400))
    assert f"```text\n{sent}\n```" in text


def test_estimates_and_actual_costs_are_checked_before_redis(url):
    limiter = Limiter.from_url(url, [Policy.bucket("tokens", 100, LONG)])
    for estimate in (0, -1, 1.5):
        with pytest.raises(ValueError, match="cost"):
            limiter.reserve("k", estimate)
    reservation = limiter.reserve("k", 10)
    for actual in (-1, 2.5, "3"):
        with pytest.raises(ValueError, match="actual"):
            reservation.settle(actual)
    assert reservation.settle(10).results[0].remaining == 90  # still open after the refusals


def test_a_settle_while_the_server_is_down_is_lost_counted_and_logged(url, server, caplog):
    limiter = Limiter.from_url(url, [Policy.bucket("tokens", 100, LONG)], timeout=0.2)
    reservation = limiter.reserve("k", 10)
    server.kill()
    with caplog.at_level(logging.WARNING, logger="redis_shield"):
        lost = reservation.settle(4)
    assert lost.allowed and lost.source == "settle-lost" and lost.error and lost.results == ()
    assert limiter.failures.lost_settles == 1 and limiter.failures.counts == {"fail-open": 0, "fail-closed": 0}
    assert [r.getMessage() for r in caplog.records if "1 settles lost" in r.getMessage()]
    with pytest.raises(RuntimeError, match="already settled"):  # a lost settle is still a settle
        reservation.settle(4)


def test_a_reservation_decided_without_redis_sends_nothing_when_settled(url, server):
    limiter = Limiter.from_url(url, [Policy.bucket("tokens", 100, LONG)], timeout=0.2)
    server.kill()
    reservation = limiter.reserve("k", 10)
    assert reservation.allowed and reservation.decision.source == "fail-open"
    server.start()
    assert reservation.settle(4) is reservation.decision
    with server.client() as c:
        assert c.dbsize() == 0


def test_the_asyncio_limiter_reserves_settles_and_owes_as_the_sync_one(url, server):
    async def scenario():
        limiter = AsyncLimiter.from_url(url, [Policy.bucket("tokens", 10, 10), Policy.quota("daily", 100, "DAY")],
                                        deny_cache=None)
        reservation = await limiter.reserve("k", 10)
        assert isinstance(reservation, AsyncReservation) and reservation.allowed
        after = await reservation.settle(4)
        assert [r.remaining for r in after.results] == [6, 96]  # the quota got its 6 back too (a REFUND)
        with pytest.raises(RuntimeError, match="already settled"):
            await reservation.settle(4)
        async with limiter.reserve("k", 6) as reservation:
            assert [r.remaining for r in reservation.decision.results] == [0, 90]
            await reservation.settle(11)  # 5 owed; the quota keeps the estimate
        refused = await limiter.consume("k")
        assert not refused.allowed and 5.0 <= refused.retry_after <= 6.0
        async with limiter.reserve("other", 3) as kept:  # never settled: the estimate stays
            pass
        with pytest.raises(RuntimeError, match="already settled"):
            await kept.settle(1)
        assert (await limiter.consume("other")).results[0].remaining == 6
        server.kill()
        reservation = await limiter.reserve("k2", 2)
        assert reservation.decision.source == "fail-open"
        assert await reservation.settle(1) is reservation.decision
        await limiter.close()

    run(scenario())


def test_an_asyncio_settle_while_the_server_is_down_is_lost_and_counted(url, server):
    async def scenario():
        limiter = AsyncLimiter.from_url(url, [Policy.gcra("cells", 100, LONG)], timeout=0.2)
        async with limiter.reserve("k", 10) as reservation:
            server.kill()
            lost = await reservation.settle(4)
        assert lost.source == "settle-lost" and limiter.failures.lost_settles == 1
        await limiter.close()

    run(scenario())


def test_the_deny_cache_does_not_learn_of_tokens_a_settle_gives_back(url):
    limiter = Limiter.from_url(url, [Policy.bucket("tokens", 10, LONG)])
    reservation = limiter.reserve("k", 10)
    assert limiter.consume("k").source == "redis"  # refused, and remembered until its retry time
    assert reservation.settle(4).results[0].remaining == 6
    cached = limiter.consume("k")
    assert not cached.allowed and cached.source == "deny-cache"
    assert limiter.consume("k", 2).allowed  # another cost asks Redis, which has the tokens back
