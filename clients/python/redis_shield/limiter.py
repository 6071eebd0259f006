"""The limiters: `Limiter` over redis-py's `Redis` or `RedisCluster`, `AsyncLimiter` over
`redis.asyncio.Redis` or `redis.asyncio.cluster.RedisCluster`.

Every Redis call of each is in its `_evaluate(policies, key, cost)`: one pipelined round trip of
one Shield command per policy (`SHIELD.absorb`, `SHIELD.window`, `SHIELD.quota`, with VERBOSE), and,
when some policy refused while a token bucket took tokens, a second round trip that gives the
bucket's tokens back (`SHIELD.refund`). The policies are NOT checked atomically: a window or quota
that counted a call another policy refused keeps the count (they have no refund), and two calls
may interleave between the take and the refund. SHIELD.limit (one atomic call over several
policies) will replace the body of `_evaluate` when it lands.
"""

import asyncio
import random
import time

import redis
import redis.asyncio

from .core import DenyCache, FailureTracker, LimiterBase, Policy, after_refund, as_fields, decide, policy_result

__all__ = ["Limiter", "AsyncLimiter", "Policy", "DenyCache", "FailureTracker", "connect_kwargs"]


def connect_kwargs(timeout, cluster=False):
    """The redis-py options that make `timeout` (seconds) the longest a call may take. A cluster
    client tries a failing pipeline once (redis-py's default, 3 attempts with 0.25 s sleeps between
    them in its asyncio client, would hold the caller for about a second)."""
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if cluster:
        options["cluster_error_retry_attempts"] = 1
    else:
        options["retry_on_timeout"] = False
    return options


def _wait_time(decision, started, max_wait, jitter, clock):
    """How long acquire sleeps before trying again, or None when waiting cannot succeed in time."""
    if decision.allowed or decision.retry_after == float("inf"):
        return None
    sleep = decision.retry_after * (1 + random.uniform(0, jitter)) + 0.001
    if clock() - started + decision.retry_after > max_wait:
        return None
    return min(sleep, max(0.0, max_wait - (clock() - started)))


class Limiter(LimiterBase):
    """A rate limiter over a synchronous redis-py client (`redis.Redis` or `redis.cluster.RedisCluster`).

    The per-call timeout is the client's `socket_timeout`/`socket_connect_timeout`:
    `Limiter.from_url(url, policies, timeout=0.05)` sets both. A call that fails or times out is
    decided by the policies' `on_failure`: refused when any is "closed", allowed otherwise.
    """

    @classmethod
    def from_url(cls, url, policies=(), *, timeout=0.1, cluster=False, **options):
        factory = redis.cluster.RedisCluster if cluster else redis.Redis
        client = factory.from_url(url, **connect_kwargs(timeout, cluster))
        return cls(client, policies, **options)

    def _evaluate(self, policies, key, cost):
        """The one place that talks to Redis: the per-policy results of taking `cost` for `key`."""
        pipe = self.client.pipeline(transaction=False)
        for policy in policies:
            pipe.execute_command(*policy.command(self.prefix, key, cost))
        results = [policy_result(p, as_fields(reply)) for p, reply in zip(policies, pipe.execute())]
        refunds = _refunds(results, self.prefix, key, cost)
        if refunds:
            pipe = self.client.pipeline(transaction=False)
            for _, command in refunds:
                pipe.execute_command(*command)
            for (index, _), tokens in zip(refunds, pipe.execute()):
                results[index] = after_refund(results[index], tokens)
        return results

    def consume(self, key, cost=1, policies=None):
        """Takes `cost` for `key` from every policy (the limiter's, or `policies`): a Decision."""
        self._check_cost(cost)
        policies = self._policies(policies)
        cache_key, cached = self._cached(policies, key, cost)
        if cached is not None:
            return cached
        try:
            results = self._evaluate(policies, key, cost)
        except (redis.RedisError, OSError) as error:
            return self._failed(policies, error)
        return self._settle(cache_key, decide(policies, results))

    def acquire(self, key, cost=1, policies=None, *, max_wait=1.0, jitter=0.1):
        """Like `consume`, but when refused sleeps the reply's retry-after (plus up to `jitter` of it)
        and tries again, for at most `max_wait` seconds; returns the last Decision."""
        started = time.monotonic()
        while True:
            decision = self.consume(key, cost, policies)
            wait = _wait_time(decision, started, max_wait, jitter, time.monotonic)
            if wait is None:
                return decision
            time.sleep(wait)

    def close(self):
        self.client.close()


class AsyncLimiter(LimiterBase):
    """The same over redis-py's asyncio clients (`redis.asyncio.Redis`, `redis.asyncio.cluster.RedisCluster`).

    The per-call timeout is again the client's `socket_timeout` (`AsyncLimiter.from_url(url,
    policies, timeout=0.05)`): the limiter never cancels a call in flight, which could leave a
    reply unread on a pooled connection.
    """

    @classmethod
    def from_url(cls, url, policies=(), *, timeout=0.1, cluster=False, **options):
        factory = redis.asyncio.cluster.RedisCluster if cluster else redis.asyncio.Redis
        client = factory.from_url(url, **connect_kwargs(timeout, cluster))
        return cls(client, policies, **options)

    async def _evaluate(self, policies, key, cost):
        """The one place that talks to Redis: the per-policy results of taking `cost` for `key`."""
        pipe = self.client.pipeline(transaction=False)
        for policy in policies:
            pipe.execute_command(*policy.command(self.prefix, key, cost))
        results = [policy_result(p, as_fields(reply)) for p, reply in zip(policies, await pipe.execute())]
        refunds = _refunds(results, self.prefix, key, cost)
        if refunds:
            pipe = self.client.pipeline(transaction=False)
            for _, command in refunds:
                pipe.execute_command(*command)
            for (index, _), tokens in zip(refunds, await pipe.execute()):
                results[index] = after_refund(results[index], tokens)
        return results

    async def consume(self, key, cost=1, policies=None):
        self._check_cost(cost)
        policies = self._policies(policies)
        cache_key, cached = self._cached(policies, key, cost)
        if cached is not None:
            return cached
        try:
            results = await self._evaluate(policies, key, cost)
        except (redis.RedisError, OSError) as error:
            return self._failed(policies, error)
        return self._settle(cache_key, decide(policies, results))

    async def acquire(self, key, cost=1, policies=None, *, max_wait=1.0, jitter=0.1):
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            decision = await self.consume(key, cost, policies)
            wait = _wait_time(decision, started, max_wait, jitter, loop.time)
            if wait is None:
                return decision
            await asyncio.sleep(wait)

    async def close(self):
        await self.client.close()


def _refunds(results, prefix, key, cost):
    """When some policy refused: the buckets that took tokens, and the commands that give them back."""
    if all(r.allowed for r in results):
        return []
    refunds = []
    for index, result in enumerate(results):
        command = result.policy.refund_command(prefix, key, cost) if result.allowed else None
        if command:
            refunds.append((index, command))
    return refunds
