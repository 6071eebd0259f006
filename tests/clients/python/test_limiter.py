"""The sync and asyncio limiters against a real standalone server: policies, one atomic SHIELD.limit
call per decision (a refused call takes nothing), replies, headers, the deny cache, acquire, and the
failure policy (the server killed or paused mid-test)."""

import asyncio
import logging
import math
import time

import pytest
import redis
import redis.asyncio

from pyclient_support import REPO, command_calls
from redis_shield import AsyncLimiter, DenyCache, FailureTracker, Limiter, Policy
from redis_shield.core import failure_decision, limit_command
from sfparse import ParseError, parse_list, ratelimit, ratelimit_policy

DEMO = [Policy.bucket("per-second", 5, 1, burst=10), Policy.quota("daily", 1000, "DAY")]


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_bucket_with_a_burst_allows_the_burst_then_refuses_with_the_exact_wait(url):
    limiter = Limiter.from_url(url, DEMO)
    decisions = [limiter.consume("ip:10.0.0.1") for _ in range(11)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert [d.results[0].remaining for d in decisions[:10]] == list(range(9, -1, -1))
    refused = decisions[-1]
    assert refused.violated == ("per-second",)
    assert 0 < refused.retry_after <= 0.2  # one token every 200 ms
    assert refused.headers()["Retry-After"] == "1"
    assert refused.source == "redis"


def test_the_headers_parse_as_structured_fields_and_remaining_never_exceeds_the_quota(url):
    limiter = Limiter.from_url(url, DEMO)
    decision = limiter.consume("ip:10.0.0.2")
    policy = ratelimit_policy(decision.headers()["RateLimit-Policy"])
    state = ratelimit(decision.headers()["RateLimit"])
    assert policy == {"per-second": {"q": 10, "w": 2}, "daily": {"q": 1000, "w": 86400}}
    assert state["per-second"]["r"] == 9 and state["daily"]["r"] == 999
    for name, params in state.items():
        assert params["r"] <= policy[name]["q"]
        assert 0 <= params["t"] <= 86400


def test_the_structured_field_parser_refuses_what_the_draft_does_not_allow():
    for bad in ['default;q=10', '"a";q=1.5', '"a";q=10,', '"a" "b"', '"a";Q=1', '"unterminated;q=1']:
        with pytest.raises(ParseError):
            ratelimit_policy(bad)
    assert parse_list('"a";q=1;w=2, "b";q=3') == [("a", {"q": 1, "w": 2}), ("b", {"q": 3})]


def test_a_bucket_without_burst_advertises_its_rate_and_a_window_its_window(url):
    limiter = Limiter.from_url(url, [Policy.bucket("b", 30, 60), Policy.window("w", 100, 60)])
    decision = limiter.consume("k", cost=13)
    assert ratelimit_policy(decision.headers()["RateLimit-Policy"]) == {"b": {"q": 30, "w": 60},
                                                                       "w": {"q": 100, "w": 60}}
    assert {n: p["r"] for n, p in ratelimit(decision.headers()["RateLimit"]).items()} == {"b": 17, "w": 87}


def test_a_call_that_one_policy_refuses_takes_nothing_from_the_others(url, server):
    limiter = Limiter.from_url(url, [Policy.bucket("tokens", 10, 60), Policy.window("sliding", 2, 60)],
                               deny_cache=None)
    assert limiter.consume("k").allowed and limiter.consume("k").allowed
    refused = limiter.consume("k")
    assert refused.violated == ("sliding",)
    assert refused.results[0].allowed and refused.results[0].remaining == 8  # the third call took nothing
    with server.client() as c:
        assert c.get("shield:{k}:tokens") == "8"


def test_a_refused_call_leaves_the_daily_quotas_count_unchanged(url, server):
    limiter = Limiter.from_url(url, [Policy.bucket("per-minute", 2, 60), Policy.quota("daily", 1000, "DAY")],
                               deny_cache=None)
    assert limiter.consume("k").allowed and limiter.consume("k").allowed
    with server.client() as c:
        assert c.get("shield:{k}:daily") == "2"
        for _ in range(5):
            refused = limiter.consume("k")
            assert refused.violated == ("per-minute",) and refused.source == "redis"
            assert refused.results[1].remaining == 998
        assert c.get("shield:{k}:daily") == "2"  # five 429s took nothing from the quota
        assert c.get("shield:{k}:per-minute") == "0"


def test_a_window_refused_by_another_policy_keeps_no_count(url, server):
    limiter = Limiter.from_url(url, [Policy.window("sliding", 100, 60), Policy.bucket("tokens", 1, 60)],
                               deny_cache=None)
    assert limiter.consume("k").allowed
    for _ in range(3):
        refused = limiter.consume("k")
        assert refused.violated == ("tokens",) and refused.results[0].remaining == 99
    assert limiter.consume("k", policies=[Policy.window("sliding", 100, 60)]).results[0].remaining == 98


def test_each_decision_is_one_shield_limit_call_and_nothing_else(url, server):
    limiter = Limiter.from_url(url, DEMO, deny_cache=None)
    with server.client() as c:
        c.config_resetstat()
        decisions = [limiter.consume("ip:10.0.0.3") for _ in range(12)]
        stats = c.info("commandstats")
    assert [d.allowed for d in decisions] == [True] * 10 + [False, False]
    assert command_calls(c, "SHIELD.limit") == 12
    called = {name.lower() for name in stats if not name.startswith(("cmdstat_config", "cmdstat_info"))}
    assert called == {"cmdstat_shield.limit"}
    assert [d.results[1].remaining for d in decisions] == list(range(999, 989, -1)) + [990, 990]


def test_the_shield_limit_call_the_docs_show_is_the_one_the_limiter_builds():
    text = (REPO / "docs" / "clients" / "python.md").read_text()
    sent = " ".join(str(word) for word in limit_command(DEMO, "shield:", "user:42", 1))
    assert f"```text\n{sent}\n```" in text


def test_a_gcra_policy_allows_its_burst_and_advertises_the_time_to_recover_it(url, server):
    limiter = Limiter.from_url(url, [Policy.gcra("per-minute", 60, 60, burst=10)], deny_cache=None)
    decisions = [limiter.consume("k") for _ in range(11)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert [d.results[0].remaining for d in decisions[:10]] == list(range(9, -1, -1))
    assert ratelimit_policy(decisions[0].headers()["RateLimit-Policy"]) == {"per-minute": {"q": 10, "w": 10}}
    assert 0 < decisions[-1].retry_after <= 1.0  # one call a second
    assert decisions[-1].headers()["Retry-After"] == "1"
    with server.client() as c:  # SHIELD.gcra reads the same key (a GCRA time): the burst is used up
        assert c.execute_command("SHIELD.gcra", "shield:{k}:per-minute", 60, 60, 1, "BURST", 10) == -1


def test_a_policy_with_a_fixed_cost_ignores_the_calls_cost(url):
    limiter = Limiter.from_url(url, [Policy.bucket("requests", 10, 60, cost=1), Policy.bucket("bytes", 1000, 60)])
    decision = limiter.consume("k", cost=400)
    assert [r.remaining for r in decision.results] == [9, 600]


def test_a_cost_that_can_never_fit_is_refused_without_retry_after(url):
    limiter = Limiter.from_url(url, [Policy.bucket("small", 5, 60)])
    decision = limiter.consume("k", cost=6)
    assert not decision.allowed and math.isinf(decision.retry_after)
    assert "Retry-After" not in decision.headers()


def test_the_legacy_headers_name_the_tightest_policy(url):
    limiter = Limiter.from_url(url, [Policy.bucket("wide", 100, 60), Policy.bucket("narrow", 3, 60)])
    headers = limiter.consume("k").headers(legacy=True)
    assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("3", "2")
    assert int(headers["X-RateLimit-Reset"]) > 0


def test_per_call_policies_replace_the_limiters_own(url):
    limiter = Limiter.from_url(url, [Policy.bucket("default", 100, 60)])
    decision = limiter.consume("k", policies=[Policy.bucket("upload", 2, 60)])
    assert [r.policy.name for r in decision.results] == ["upload"]


def test_policies_are_checked_when_declared():
    with pytest.raises(ValueError):
        Policy.quota("q", 10, "WEEK")
    with pytest.raises(ValueError):
        Policy.window("w", 10, 60, cost=0)
    with pytest.raises(ValueError):
        Policy("x", "leaky", 1, 1)
    with pytest.raises(ValueError, match="burst"):
        Policy("w", "window", 10, 60, burst=20)
    assert Policy.gcra("g", 10, 60, burst=20).burst == 20


@pytest.mark.parametrize("name", ['with"quote', "a b", "user:42", "", "x" * 65, "caf\u00e9"])
def test_a_policy_name_outside_shield_limits_alphabet_is_refused_when_declared(name):
    with pytest.raises(ValueError, match=r"1 to 64 characters of A-Z a-z 0-9 _ -"):
        Policy.bucket(name, 1, 1)


@pytest.mark.parametrize("name", ["cost", "BURST", "Window", "quota", "gcra", "bucket", "settle", "DryRun",
                                  "headers", "refund", "wait"])
def test_a_policy_named_like_a_shield_limit_keyword_is_refused_in_any_case(name):
    with pytest.raises(ValueError, match="keywords"):
        Policy.window(name, 1, 1)


def test_the_longest_names_shield_limit_accepts_are_accepted_and_work(url):
    names = ["x" * 64, "A-z_0-9", "costs"]
    limiter = Limiter.from_url(url, [Policy.bucket(n, 5, 60) for n in names])
    decision = limiter.consume("k")
    assert decision.source == "redis" and [r.remaining for r in decision.results] == [4, 4, 4]


def test_two_policies_of_one_name_in_one_call_are_refused_before_redis(url):
    limiter = Limiter.from_url(url, [Policy.bucket("a", 5, 60)])
    with pytest.raises(ValueError, match="unique"):
        limiter.consume("k", policies=[Policy.bucket("a", 5, 60), Policy.window("a", 5, 60)])
    with pytest.raises(ValueError, match="unique"):
        Limiter.from_url(url, [Policy.bucket("a", 5, 60), Policy.quota("a", 5, "DAY")])


def test_a_refused_call_is_refused_locally_until_its_retry_time(url, server):
    limiter = Limiter.from_url(url, [Policy.bucket("b", 1, 1)])
    assert limiter.consume("k").allowed
    with server.client() as c:
        c.config_resetstat()
    first = limiter.consume("k")
    assert not first.allowed and first.source == "redis"
    with server.client() as c:
        for _ in range(50):
            again = limiter.consume("k")
            assert not again.allowed and again.source == "deny-cache"
            assert 0 < again.retry_after <= first.retry_after
        assert command_calls(c, "SHIELD.limit") == 1  # the first refusal only
        time.sleep(first.retry_after)  # the wait the reply named: then Redis decides again
        assert limiter.consume("k").allowed


def test_the_deny_cache_is_bounded_and_keyed_by_cost(url):
    cache = DenyCache(max_entries=3)
    limiter = Limiter.from_url(url, [Policy.bucket("b", 5, 60)], deny_cache=cache)
    for n in range(5):
        assert not limiter.consume(f"k{n}", cost=6).allowed  # never fits: cached
    assert len(cache) <= 3
    limiter.consume("x", cost=5)
    assert not limiter.consume("x", cost=5).allowed
    assert limiter.consume("x", cost=5).source == "deny-cache"
    assert not limiter.consume("x", cost=1).source == "deny-cache"


def test_acquire_sleeps_the_retry_time_and_then_succeeds(url):
    limiter = Limiter.from_url(url, [Policy.bucket("b", 5, 1)], deny_cache=None)
    for _ in range(5):
        limiter.consume("k")
    started = time.monotonic()
    decision = limiter.acquire("k", max_wait=2)
    waited = time.monotonic() - started
    assert decision.allowed
    assert 0.15 <= waited < 1.0  # one token every 200 ms: one wait, not a polling loop


def test_acquire_gives_up_at_once_when_the_wait_exceeds_max_wait(url):
    limiter = Limiter.from_url(url, [Policy.bucket("b", 1, 60)])
    limiter.consume("k")
    started = time.monotonic()
    assert not limiter.acquire("k", max_wait=0.5).allowed
    assert time.monotonic() - started < 0.3


def test_a_killed_server_is_decided_by_each_policys_failure_mode(url, server, caplog):
    open_limiter = Limiter.from_url(url, [Policy.bucket("open", 10, 60)], timeout=0.2)
    closed_limiter = Limiter.from_url(url, [Policy.bucket("open", 10, 60),
                                            Policy.quota("closed", 100, "DAY", on_failure="closed")], timeout=0.2)
    assert open_limiter.consume("k").source == "redis"
    server.kill()
    with caplog.at_level(logging.WARNING, logger="redis_shield"):
        for _ in range(3):
            decision = open_limiter.consume("k")
            assert decision.allowed and decision.source == "fail-open" and decision.error
        refused = closed_limiter.consume("k")
    assert not refused.allowed and refused.source == "fail-closed" and refused.violated == ("closed",)
    assert refused.headers()["Retry-After"] == "1" and "RateLimit" not in refused.headers()
    assert ratelimit_policy(refused.headers()["RateLimit-Policy"])["closed"] == {"q": 100, "w": 86400}
    assert open_limiter.failures.counts == {"fail-open": 3, "fail-closed": 0}
    assert closed_limiter.failures.counts == {"fail-open": 0, "fail-closed": 1}
    assert len([r for r in caplog.records if r.name == "redis_shield"]) == 2  # once per interval and limiter
    server.start()
    assert open_limiter.consume("k").source == "redis"


def test_without_redis_the_policy_header_advertises_what_shield_limit_reported(url, server):
    policies = [Policy.bucket("slow-burst", 10, 60, burst=4), Policy.gcra("cell", 3, 1, burst=6),
                Policy.gcra("plain-gcra", 7, 10), Policy.window("sliding", 5, 60), Policy.quota("hourly", 10, "HOUR")]
    limiter = Limiter.from_url(url, policies, timeout=0.2)
    answered = limiter.consume("k")
    assert answered.source == "redis"
    server.kill()
    unanswered = limiter.consume("k")
    assert unanswered.source == "fail-open"
    assert unanswered.headers()["RateLimit-Policy"] == answered.headers()["RateLimit-Policy"]
    assert ratelimit_policy(answered.headers()["RateLimit-Policy"])["slow-burst"] == {"q": 4, "w": 24}


def test_failures_are_logged_once_per_interval_with_their_count(caplog):
    now = [0.0]
    tracker = FailureTracker(log_interval=10, clock=lambda: now[0])
    policies = [Policy.bucket("b", 1, 1)]
    with caplog.at_level(logging.WARNING, logger="redis_shield"):
        for step in range(25):
            now[0] = step
            tracker.record("fail-open", policies, "ConnectionError")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3  # at 0, 10 and 20 seconds
    assert "10 fail-open" in messages[1] and tracker.counts["fail-open"] == 25


def test_a_paused_server_times_out_within_the_calls_timeout(url, make_server):
    pauser = make_server()
    limiter = Limiter.from_url(f"redis://127.0.0.1:{pauser.port}", [Policy.bucket("b", 10, 60)], timeout=0.1)
    assert limiter.consume("k").source == "redis"
    with pauser.client() as c:
        c.execute_command("CLIENT", "PAUSE", 3000, "ALL")
        started = time.monotonic()
        decision = limiter.consume("k")
        elapsed = time.monotonic() - started
        c.execute_command("CLIENT", "UNPAUSE")
    assert decision.source == "fail-open" and "Timeout" in decision.error
    assert elapsed < 0.5


def test_the_asyncio_limiter_decides_as_the_sync_one(url, server):
    async def scenario():
        limiter = AsyncLimiter.from_url(url, DEMO)
        decisions = [await limiter.consume("ip:10.0.0.9") for _ in range(12)]
        await limiter.close()
        return decisions

    decisions = run(scenario())
    assert [d.allowed for d in decisions] == [True] * 10 + [False, False]
    assert [d.source for d in decisions[10:]] == ["redis", "deny-cache"]
    assert ratelimit(decisions[0].headers()["RateLimit"])["per-second"]["r"] == 9


def test_the_asyncio_limiter_takes_nothing_when_refused_acquires_and_fails_open_when_the_server_dies(url, server):
    async def scenario():
        limiter = AsyncLimiter(redis.asyncio.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2),
                               [Policy.bucket("tokens", 10, 60), Policy.window("sliding", 2, 60),
                                Policy.quota("daily", 1000, "DAY")], deny_cache=None)
        assert (await limiter.consume("k")).allowed and (await limiter.consume("k")).allowed
        refused = await limiter.consume("k")
        assert refused.violated == ("sliding",) and [r.remaining for r in refused.results] == [8, 0, 998]
        assert await limiter.client.get("shield:{k}:daily") == b"2"
        fast = AsyncLimiter(limiter.client, [Policy.bucket("fast", 5, 1)], deny_cache=None)
        for _ in range(5):
            await fast.consume("f")
        started = asyncio.get_running_loop().time()
        assert (await fast.acquire("f", max_wait=2)).allowed
        assert 0.15 <= asyncio.get_running_loop().time() - started < 1.0
        server.kill()
        decision = await limiter.consume("k")
        assert decision.allowed and decision.source == "fail-open"
        await limiter.close()

    run(scenario())


def test_an_error_reply_is_a_failure_too(make_server):
    plain = make_server(module=None)  # no Shield: the command is unknown
    limiter = Limiter.from_url(f"redis://127.0.0.1:{plain.port}", [Policy.bucket("b", 10, 60)])
    decision = limiter.consume("k")
    assert decision.source == "fail-open" and "ResponseError" in decision.error


def test_an_error_reply_names_the_policy_and_writes_nothing(url, server):
    too_fast = Policy.gcra("too-fast", 2 * 10**9, 1, on_failure="closed")  # above 10^9 a second
    limiter = Limiter.from_url(url, [Policy.bucket("b", 10, 60), too_fast])
    decision = limiter.consume("k")
    assert decision.source == "fail-closed" and decision.violated == ("too-fast",)
    assert "policy 'too-fast'" in decision.error
    with server.client() as c:
        assert c.dbsize() == 0  # not even the bucket's token


def test_the_deny_cache_keeps_an_entry_at_most_max_seconds():
    now = [0.0]
    cache = DenyCache(max_entries=10, max_seconds=5, clock=lambda: now[0])
    refusal = failure_decision([Policy.bucket("b", 1, 1, on_failure="closed")], "ConnectionError", 100.0)
    cache.put("k", refusal)
    now[0] = 4.9
    assert cache.get("k").retry_after == pytest.approx(0.1)
    now[0] = 5.0
    assert cache.get("k") is None
