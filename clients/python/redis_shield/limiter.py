"""The limiters: `Limiter` over redis-py's `Redis` or `RedisCluster`, `AsyncLimiter` over
`redis.asyncio.Redis` or `redis.asyncio.cluster.RedisCluster`.

Every Redis call of each is in its `_evaluate(policies, key, cost)`: one `SHIELD.limit` call that
decides every policy at the same instant and takes each one's cost only when all of them allow
(all or nothing, atomic on the server). Its keys share a hash tag, so in a cluster the call goes
to one node (redis-py finds the keys with COMMAND GETKEYS). The call is sent as a pipeline of one
command: redis-py's cluster clients retry a plain command on a dead node five times, 0.25 s apart,
but a pipeline as often as `cluster_error_retry_attempts` says (`connect_kwargs`).
"""

import asyncio
import random
import time

import redis
import redis.asyncio

from .core import DenyCache, FailureTracker, LimiterBase, Policy, decide, limit_command, limit_results

__all__ = ["Limiter", "AsyncLimiter", "Policy", "DenyCache", "FailureTracker", "connect_kwargs"]


def connect_kwargs(timeout, cluster=False):
    """The redis-py options that make `timeout` (seconds) the longest a call may take. A cluster
    client tries a failing pipeline once (redis-py's default, 3 attempts with 0.25 s sleeps between
    them in its asyncio client, would hold the caller for about a second); the limiter sends its
    one command as a pipeline for that reason."""
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
        """The one place that talks to Redis: one SHIELD.limit call, the per-policy results."""
        pipe = self.client.pipeline(transaction=False)
        pipe.execute_command(*limit_command(policies, self.prefix, key, cost))
        [reply] = pipe.execute()
        return limit_results(policies, reply)

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
        """The one place that talks to Redis: one SHIELD.limit call, the per-policy results."""
        pipe = self.client.pipeline(transaction=False)
        pipe.execute_command(*limit_command(policies, self.prefix, key, cost))
        [reply] = await pipe.execute()
        return limit_results(policies, reply)

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

