"""The limiters: `Limiter` over redis-py's `Redis` or `RedisCluster`, `AsyncLimiter` over
`redis.asyncio.Redis` or `redis.asyncio.cluster.RedisCluster`.

Every Redis call of each is in its `_evaluate(policies, command)`: one `SHIELD.limit` call that
decides every policy at the same instant and takes each one's cost only when all of them allow
(all or nothing, atomic on the server), or settles a reservation (`reserve`, then `settle`). Its keys share a hash tag, so in a cluster the call goes
to one node (redis-py finds the keys with COMMAND GETKEYS). The call is sent as a pipeline of one
command: redis-py's cluster clients retry a plain command on a dead node five times, 0.25 s apart,
but a pipeline as often as `cluster_error_retry_attempts` says (`connect_kwargs`).
"""

import asyncio
import random
import time

import redis
import redis.asyncio

from .core import (DenyCache, FailureTracker, LimiterBase, Policy, ReservationBase, decide, limit_command,
                   limit_results, refund_command, settle_command)

__all__ = ["Limiter", "AsyncLimiter", "Reservation", "AsyncReservation", "Policy", "DenyCache", "FailureTracker",
           "connect_kwargs"]


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

    def _evaluate(self, policies, command):
        """The one place that talks to Redis: one SHIELD.limit call, the per-policy results."""
        pipe = self.client.pipeline(transaction=False)
        pipe.execute_command(*command)
        [reply] = pipe.execute()
        return limit_results(policies, reply)

    def consume(self, key, cost=1, policies=None):
        """Takes `cost` for `key` from every policy (the limiter's, or `policies`): a Decision."""
        policies, cache_key, cached = self._begin(key, cost, policies)
        if cached is not None:
            return cached
        try:
            results = self._evaluate(policies, limit_command(policies, self.prefix, key, cost))
        except (redis.RedisError, OSError) as error:
            return self._failed(policies, error)
        return self._settle(cache_key, decide(policies, results))

    def reserve(self, key, estimate, policies=None):
        """Reserves `estimate` for work whose cost is known only when it ends: takes `estimate` from
        every policy, as `consume(key, estimate)` does (one SHIELD.limit call), and returns a
        `Reservation` holding that Decision. `reservation.settle(actual)` then settles it; used as
        a context manager, a reservation left without `settle()` keeps the estimate."""
        policies = self._policies(policies)
        decision = self.consume(key, estimate, policies)
        return Reservation(self, policies, key, estimate, decision)

    def _settle_reservation(self, reservation, actual):
        policies = reservation.policies
        refunded = reservation._refunded(actual)
        try:
            if refunded:
                self._evaluate(refunded, refund_command(refunded, self.prefix, reservation.key,
                                                        reservation.estimate - actual))
            results = self._evaluate(policies, settle_command(policies, self.prefix, reservation.key,
                                                              reservation.estimate, actual))
        except (redis.RedisError, OSError) as error:
            return self._lost_settle(policies, error)
        return decide(policies, results)

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

    async def _evaluate(self, policies, command):
        """The one place that talks to Redis: one SHIELD.limit call, the per-policy results."""
        pipe = self.client.pipeline(transaction=False)
        pipe.execute_command(*command)
        [reply] = await pipe.execute()
        return limit_results(policies, reply)

    async def consume(self, key, cost=1, policies=None):
        policies, cache_key, cached = self._begin(key, cost, policies)
        if cached is not None:
            return cached
        try:
            results = await self._evaluate(policies, limit_command(policies, self.prefix, key, cost))
        except (redis.RedisError, OSError) as error:
            return self._failed(policies, error)
        return self._settle(cache_key, decide(policies, results))

    def reserve(self, key, estimate, policies=None):
        """`Limiter.reserve` for asyncio: `await limiter.reserve(key, estimate)` gives an
        `AsyncReservation`, and so does `async with limiter.reserve(key, estimate) as reservation:`
        (leaving the block without `await reservation.settle(actual)` keeps the estimate)."""
        return _PendingReservation(self, self._policies(policies), key, estimate)

    async def _reserve(self, policies, key, estimate):
        decision = await self.consume(key, estimate, policies)
        return AsyncReservation(self, policies, key, estimate, decision)

    async def _settle_reservation(self, reservation, actual):
        policies = reservation.policies
        refunded = reservation._refunded(actual)
        try:
            if refunded:
                await self._evaluate(refunded, refund_command(refunded, self.prefix, reservation.key,
                                                              reservation.estimate - actual))
            results = await self._evaluate(policies, settle_command(policies, self.prefix, reservation.key,
                                                                    reservation.estimate, actual))
        except (redis.RedisError, OSError) as error:
            return self._lost_settle(policies, error)
        return decide(policies, results)

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



class Reservation(ReservationBase):
    """An estimate taken by `Limiter.reserve`, to settle once the real cost is known.

    `decision` is the reservation's Decision (`allowed`, or refused as `consume` refuses: then there
    is nothing to settle). `settle(actual)` sends one SHIELD.limit call: `SETTLE <estimate> <actual>`
    on every bucket and GCRA policy (the difference is given back, or taken even beyond what the
    bucket holds: a debt of at most one period's refill), `COST 0` on the others. A window or a
    quota policy keeps the estimate when `actual` is not lower; when it is lower, it gets
    `estimate - actual` back in one SHIELD.limit REFUND call of those policies alone, sent before
    the settle, but only while its estimate still counts (`counted_until[name]`, on
    `time.monotonic()`: the reserve's reply plus that policy's reset time in it); once its window or
    calendar period is over, a refund would credit the next one, so it gets none, and with none to
    refund no REFUND is sent. It returns the Decision after the settle call, which always allows. A
    second `settle`, or a `settle` of a refused reservation, raises RuntimeError. When Redis does not
    answer (to the REFUND call or the settle), the settle is lost: it is not retried, the limiter's
    `failures.lost_settles` counts it, the `redis_shield` logger says so, and the Decision's `source`
    is "settle-lost". A reservation that Redis did not make (fail-open) has nothing in Redis to
    settle: `settle` returns its decision.
    """

    def settle(self, actual):
        if not self._begin_settle(actual):
            self.settled = self.decision
        else:
            self.settled = self.limiter._settle_reservation(self, actual)
        return self.settled

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._close()
        return False


class AsyncReservation(ReservationBase):
    """`Reservation` for `AsyncLimiter`: `await reservation.settle(actual)`, `async with`."""

    async def settle(self, actual):
        if not self._begin_settle(actual):
            self.settled = self.decision
        else:
            self.settled = await self.limiter._settle_reservation(self, actual)
        return self.settled

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        self._close()
        return False


class _PendingReservation:
    """What `AsyncLimiter.reserve` returns: awaited, or entered with `async with`, it reserves."""

    def __init__(self, limiter, policies, key, estimate):
        limiter._check_cost(estimate)
        self._args = (policies, key, estimate)
        self._limiter = limiter
        self._reservation = None

    def __await__(self):
        return self._limiter._reserve(*self._args).__await__()

    async def __aenter__(self):
        self._reservation = await self._limiter._reserve(*self._args)
        return self._reservation

    async def __aexit__(self, *exc_info):
        return await self._reservation.__aexit__(*exc_info)
