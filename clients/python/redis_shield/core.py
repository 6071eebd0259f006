"""Policies, decisions, the deny cache and the failure policy: everything the sync and asyncio
limiters share. No Redis calls here; those are in `Limiter._evaluate` and `AsyncLimiter._evaluate`,
one `SHIELD.limit` call each (`limit_command`, `refund_command` or `settle_command` builds it,
`limit_results` reads its reply)."""

import logging
import math
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Dict, Optional, Sequence, Tuple, Union

log = logging.getLogger("redis_shield")

ALGORITHMS = ("bucket", "gcra", "window", "quota")
QUOTA_PERIODS = ("HOUR", "DAY", "MONTH")
FAIL_OPEN, FAIL_CLOSED = "open", "closed"
# SHIELD.limit's rules for a policy name (docs/commands.md): 1 to 64 of A-Z a-z 0-9 _ -, and none
# of its keywords in any case.
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
KEYWORDS = frozenset("BUCKET GCRA WINDOW QUOTA BURST COST SETTLE DRYRUN HEADERS REFUND WAIT".split())


def check_name(name):
    """Raises ValueError unless `name` is a name SHIELD.limit accepts."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"a policy name is 1 to 64 characters of A-Z a-z 0-9 _ - (SHIELD.limit's rule): {name!r}")
    if name.upper() in KEYWORDS:
        raise ValueError(f"a policy name may not be one of SHIELD.limit's keywords "
                         f"({' '.join(sorted(KEYWORDS))}, in any case): {name!r}")


@dataclass(frozen=True)
class Policy:
    """One limit, declared once; every call checks all of a limiter's policies in one SHIELD.limit.

    - `bucket`: a token bucket (`SHIELD.absorb`'s): `limit` tokens every `period` seconds, holding at
      most `burst` tokens (default `limit`).
    - `gcra`: the same limit on the generic cell rate algorithm (`SHIELD.gcra`'s, exact to the
      nanosecond): `limit` tokens every `period` seconds, at most `burst` (default `limit`) at once.
    - `window`: a sliding window (`SHIELD.window`'s): about `limit` tokens in any `period` seconds.
    - `quota`: a calendar quota (`SHIELD.quota`'s): `limit` tokens per UTC `HOUR`, `DAY` or `MONTH`.

    `name`: 1 to 64 of A-Z a-z 0-9 _ -, not a SHIELD.limit keyword (it names the key and the header item).
    `cost`: the tokens one call takes from this policy; None (the default) takes the call's cost.
    `on_failure`: `"open"` (allow) or `"closed"` (refuse) when Redis is down, slow or in error.
    """

    name: str
    algorithm: str
    limit: int
    period: Union[int, str]
    burst: Optional[int] = None
    cost: Optional[int] = None
    on_failure: str = FAIL_OPEN

    def __post_init__(self):
        check_name(self.name)
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}: {self.algorithm!r}")
        if not isinstance(self.limit, int) or self.limit <= 0:
            raise ValueError("limit must be a positive integer")
        if self.algorithm == "quota":
            if str(self.period).upper() not in QUOTA_PERIODS:
                raise ValueError(f"a quota's period is one of {QUOTA_PERIODS}: {self.period!r}")
            object.__setattr__(self, "period", str(self.period).upper())
        elif not isinstance(self.period, int) or self.period <= 0:
            raise ValueError("period must be a positive number of seconds")
        if self.burst is not None and (self.algorithm not in ("bucket", "gcra") or not isinstance(self.burst, int)
                                       or self.burst <= 0):
            raise ValueError("burst is a positive integer, for bucket and gcra policies only")
        if self.cost is not None and (not isinstance(self.cost, int) or self.cost <= 0):
            raise ValueError("cost must be a positive integer or None")
        if self.on_failure not in (FAIL_OPEN, FAIL_CLOSED):
            raise ValueError('on_failure must be "open" or "closed"')

    @classmethod
    def bucket(cls, name, limit, period, *, burst=None, cost=None, on_failure=FAIL_OPEN):
        return cls(name, "bucket", limit, period, burst, cost, on_failure)

    @classmethod
    def gcra(cls, name, limit, period, *, burst=None, cost=None, on_failure=FAIL_OPEN):
        return cls(name, "gcra", limit, period, burst, cost, on_failure)

    @classmethod
    def window(cls, name, limit, period, *, cost=None, on_failure=FAIL_OPEN):
        return cls(name, "window", limit, period, None, cost, on_failure)

    @classmethod
    def quota(cls, name, limit, period, *, cost=None, on_failure=FAIL_OPEN):
        return cls(name, "quota", limit, period, None, cost, on_failure)

    def tokens(self, cost):
        return self.cost if self.cost is not None else cost

    def redis_key(self, prefix, key):
        # The hash tag keeps every policy of one key in one cluster slot, as SHIELD.limit needs.
        return f"{prefix}{{{key}}}:{self.name}"

    def _words(self):
        words = [self.name, self.algorithm.upper(), self.limit, self.period]
        if self.burst is not None:
            words += ["BURST", self.burst]
        return words

    def spec(self, cost):
        """This policy's words in SHIELD.limit: `<name> <ALGORITHM> <limit> <period> [BURST <n>] COST <n>`."""
        return self._words() + ["COST", self.tokens(cost)]

    def settles(self):
        """Whether a settle adjusts this policy with SETTLE: a bucket or GCRA that takes the call's
        cost. A policy with a fixed `cost` keeps what the reservation took; a window or a quota
        keeps it too, unless it `refunds()` (a REFUND call before the settle)."""
        return self.algorithm in ("bucket", "gcra") and self.cost is None

    def refunds(self):
        """Whether a settle below the estimate gives this policy the difference back with REFUND
        (while the reservation's charge still counts): a window or a quota that takes the call's cost."""
        return self.algorithm in ("window", "quota") and self.cost is None

    def settle_spec(self, reserved, actual):
        """This policy's words in the SHIELD.limit call that settles a reservation of `reserved`
        at `actual`: `SETTLE <reserved> <actual>` when it `settles()`, else `COST 0` (reported,
        never written, never refused)."""
        if self.settles():
            return self._words() + ["SETTLE", reserved, actual]
        return self._words() + ["COST", 0]

    def quota_units(self, calendar_seconds):
        """(q, w) of the RateLimit-Policy header as SHIELD.limit reports them, for when Redis did not
        answer: a bucket or GCRA advertises the most it holds (`burst`, default `limit`) over the
        seconds it takes to fill from empty, so that `r` never exceeds `q`; a quota its current
        calendar period (`calendar_seconds`, 0 when unknown: a month's varies)."""
        if self.algorithm == "quota":
            return self.limit, calendar_seconds
        if self.algorithm == "window":
            return self.limit, self.period
        most = self.burst if self.burst is not None else self.limit
        if self.algorithm == "gcra":  # the server's interval is truncated to the nanosecond
            interval_ns = self.period * 10**9 // self.limit
            return most, -(-interval_ns * most // 10**9)
        return most, -(-most * self.period // self.limit)


@dataclass(frozen=True)
class PolicyResult:
    """One policy's part of a decision."""

    policy: Policy
    allowed: bool
    remaining: int
    retry_after: float  # seconds; 0 when allowed, math.inf when the cost can never fit
    reset: float  # seconds until the policy is whole again
    quota: int  # q of the RateLimit-Policy header
    window: int  # w of the RateLimit-Policy header


@dataclass(frozen=True)
class Decision:
    """What a call to the limiter decided.

    `source`: "redis" (Shield answered), "deny-cache" (refused locally, no round trip),
    "fail-open" or "fail-closed" (Redis was down, slow or in error: the policies' failure mode).
    """

    allowed: bool
    remaining: Optional[int]
    retry_after: float
    reset: float
    violated: Tuple[str, ...]
    results: Tuple[PolicyResult, ...]
    policies: Tuple[Policy, ...]
    source: str = "redis"
    error: Optional[str] = None

    def __bool__(self):
        return self.allowed

    @property
    def retry_after_seconds(self) -> Optional[int]:
        """The Retry-After value: whole seconds rounded up; None when no wait helps."""
        if self.allowed or math.isinf(self.retry_after):
            return None
        return max(1, math.ceil(self.retry_after))

    def policy_header(self) -> str:
        """RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers-12): `"<name>";q=<limit>;w=<window>`."""
        if self.results:
            return ", ".join(f'"{r.policy.name}";q={r.quota};w={r.window}' for r in self.results)
        items = []
        for p in self.policies:  # no reply (Redis failed): what the declaration says
            q, w = p.quota_units(_CALENDAR_SECONDS.get(p.period, 0))
            items.append(f'"{p.name}";q={q};w={w}' if w else f'"{p.name}";q={q}')
        return ", ".join(items)

    def ratelimit_header(self) -> Optional[str]:
        """RateLimit: `"<name>";r=<remaining>;t=<seconds>`; None when Redis did not answer."""
        if not self.results:
            return None
        return ", ".join(f'"{r.policy.name}";r={r.remaining};t={math.ceil(r.reset)}' for r in self.results)

    def headers(self, legacy=False) -> Dict[str, str]:
        """The response headers: RateLimit-Policy and RateLimit, Retry-After when refused, and with
        `legacy` X-RateLimit-Limit/-Remaining/-Reset of the policy with the fewest tokens left."""
        headers = {"RateLimit-Policy": self.policy_header()}
        ratelimit = self.ratelimit_header()
        if ratelimit:
            headers["RateLimit"] = ratelimit
        if not self.allowed and self.retry_after_seconds is not None:
            headers["Retry-After"] = str(self.retry_after_seconds)
        if legacy and self.results:
            tightest = min(self.results, key=lambda r: (r.allowed, r.remaining))
            headers["X-RateLimit-Limit"] = str(tightest.quota)
            headers["X-RateLimit-Remaining"] = str(tightest.remaining)
            headers["X-RateLimit-Reset"] = str(math.ceil(tightest.reset))
        return headers


_CALENDAR_SECONDS = {"HOUR": 3600, "DAY": 86400}


def limit_command(policies, prefix, key, cost):
    """The one SHIELD.limit call that takes `cost` for `key` from every policy, all or nothing:
    `SHIELD.limit <n> <key per policy> <spec per policy>` (docs/commands.md)."""
    keys = [p.redis_key(prefix, key) for p in policies]
    words = ["SHIELD.limit", len(policies), *keys]
    for policy in policies:
        words += policy.spec(cost)
    return words


def settle_command(policies, prefix, key, reserved, actual):
    """The one SHIELD.limit call that settles a reservation of `reserved` for `key` at `actual`:
    each policy's `settle_spec`. SETTLE never refuses, nor does COST 0, so the call always allows."""
    keys = [p.redis_key(prefix, key) for p in policies]
    words = ["SHIELD.limit", len(policies), *keys]
    for policy in policies:
        words += policy.settle_spec(reserved, actual)
    return words


def refund_command(policies, prefix, key, tokens):
    """The SHIELD.limit call that gives `tokens` back to each of `policies` (windows and quotas whose
    reservation still counts): `SHIELD.limit <n> <keys> <name> WINDOW|QUOTA ... COST <tokens> ... REFUND`."""
    return limit_command(policies, prefix, key, tokens) + ["REFUND"]


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _as_map(reply):
    """A RESP3 map, or a RESP2 flat field/value list, as a dict with str field names."""
    if isinstance(reply, dict):
        return {_text(k): v for k, v in reply.items()}
    return {_text(k): v for k, v in zip(reply[0::2], reply[1::2])}


def _seconds(milliseconds):
    return math.inf if milliseconds < 0 else milliseconds / 1000


def limit_results(policies, reply):
    """SHIELD.limit's reply (RESP2 or RESP3, str or bytes) as one PolicyResult per policy, in order.
    Every number is the server's: remaining, limit (q) and window (w), reset_after_ms and
    retry_after_ms; when another policy refused, a policy shows what it still holds."""
    fields = _as_map(reply)
    entries = [_as_map(entry) for entry in fields["policies"]]
    results = []
    for policy, entry in zip(policies, entries):
        allowed = int(entry["allowed"]) == 1
        results.append(PolicyResult(policy, allowed, int(entry["remaining"]),
                                    0.0 if allowed else _seconds(int(entry["retry_after_ms"])),
                                    int(entry["reset_after_ms"]) / 1000, int(entry["limit"]), int(entry["window"])))
    return results


def decide(policies, results, source="redis"):
    violated = tuple(r.policy.name for r in results if not r.allowed)
    allowed = not violated
    retry = 0.0 if allowed else max(r.retry_after for r in results if not r.allowed)
    return Decision(allowed=allowed, remaining=min(r.remaining for r in results),
                    retry_after=retry, reset=max(r.reset for r in results), violated=violated,
                    results=tuple(results), policies=tuple(policies), source=source)


class DenyCache:
    """Remembers refused calls until their retry time, so that a client that keeps calling is
    refused locally, without a round trip. Keyed by (key, policy names, cost); at most
    `max_entries` entries (the oldest go first); `max_seconds` caps how long one entry is kept."""

    def __init__(self, max_entries=10000, max_seconds=3600.0, clock=time.monotonic):
        self.max_entries = max_entries
        self.max_seconds = max_seconds
        self.clock = clock
        self.hits = 0
        self._entries = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._entries)

    def get(self, cache_key):
        with self._lock:
            entry = self._entries.get(cache_key)
            if entry is None:
                return None
            until, decision = entry
            now = self.clock()
            if now >= until:
                del self._entries[cache_key]
                return None
            self.hits += 1
        left = until - now
        elapsed = decision.retry_after - left if not math.isinf(decision.retry_after) else 0.0
        results = tuple(replace(r, retry_after=max(0.0, r.retry_after - elapsed) if not r.allowed else 0.0,
                                reset=max(0.0, r.reset - elapsed)) for r in decision.results)
        return replace(decision, retry_after=left if not math.isinf(decision.retry_after) else math.inf,
                       reset=max(0.0, decision.reset - elapsed), results=results, source="deny-cache")

    def put(self, cache_key, decision):
        seconds = min(decision.retry_after, self.max_seconds)
        if seconds <= 0:
            return
        with self._lock:
            self._entries[cache_key] = (self.clock() + seconds, decision)
            self._entries.move_to_end(cache_key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


class FailureTracker:
    """Counts every decision taken without Redis (fail-open and fail-closed) and every settle that
    Redis did not receive (`lost_settles`), and logs them at most once per `log_interval` seconds,
    with the counts since the last line."""

    def __init__(self, log_interval=10.0, clock=time.monotonic, logger=log):
        self.log_interval = log_interval
        self.clock = clock
        self.logger = logger
        self.counts = {"fail-open": 0, "fail-closed": 0}
        self.lost_settles = 0
        self._unlogged = {"fail-open": 0, "fail-closed": 0, "settle-lost": 0}
        self._last_log = None
        self._lock = threading.Lock()

    def record(self, source, policies, error):
        """Counts one failure: `source` is "fail-open", "fail-closed" or "settle-lost"."""
        with self._lock:
            if source == "settle-lost":
                self.lost_settles += 1
            else:
                self.counts[source] += 1
            self._unlogged[source] += 1
            now = self.clock()
            if self._last_log is not None and now - self._last_log < self.log_interval:
                return
            self._last_log = now
            unlogged, self._unlogged = self._unlogged, {"fail-open": 0, "fail-closed": 0, "settle-lost": 0}
        self.logger.warning(
            "redis_shield: Redis unavailable (%s); decided without it: %d fail-open, %d fail-closed, "
            "and %d settles lost since the last report (policies %s)", error, unlogged["fail-open"],
            unlogged["fail-closed"], unlogged["settle-lost"], ",".join(p.name for p in policies))


def failure_decision(policies, error, retry_after):
    """The decision when Redis failed: refused when any policy fails closed, allowed otherwise."""
    closed = tuple(p.name for p in policies if p.on_failure == FAIL_CLOSED)
    if closed:
        return Decision(False, None, retry_after, retry_after, closed, (), tuple(policies),
                        source="fail-closed", error=error)
    return Decision(True, None, 0.0, 0.0, (), (), tuple(policies), source="fail-open", error=error)


def _check_unique(policies):
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be unique in one call (each names a key): {names}")


@dataclass
class LimiterBase:
    """Settings shared by `Limiter` and `AsyncLimiter`."""

    client: object
    policies: Sequence[Policy] = ()
    prefix: str = "shield:"
    deny_cache: Optional[DenyCache] = field(default_factory=DenyCache)
    failures: FailureTracker = field(default_factory=FailureTracker)
    failure_retry_after: float = 1.0

    def __post_init__(self):
        self.policies = tuple(self.policies)
        _check_unique(self.policies)

    def _policies(self, policies):
        if policies is None:
            chosen = self.policies
        else:
            chosen = tuple(policies)
            _check_unique(chosen)
        if not chosen:
            raise ValueError("no policies: declare them on the limiter or pass them to the call")
        return chosen

    def _begin(self, key, cost, policies):
        """What `consume` does before it calls Redis: checks the cost, picks the policies and looks
        in the deny cache. Returns the policies, the cache key and the cached Decision (or None)."""
        self._check_cost(cost)
        policies = self._policies(policies)
        cache_key, cached = self._cached(policies, key, cost)
        return policies, cache_key, cached

    def _cached(self, policies, key, cost):
        if self.deny_cache is None:
            return None, None
        cache_key = (key, tuple(p.name for p in policies), cost)
        return cache_key, self.deny_cache.get(cache_key)

    def _settle(self, cache_key, decision):
        if not decision.allowed and decision.source == "redis" and self.deny_cache is not None:
            self.deny_cache.put(cache_key, decision)
        return decision

    def _failed(self, policies, error):
        text = f"{type(error).__name__}: {error}"
        decision = failure_decision(policies, text, self.failure_retry_after)
        self.failures.record(decision.source, policies, text)
        return decision

    def _lost_settle(self, policies, error):
        """The result of a settle that Redis did not receive: the reservation's estimate stands."""
        text = f"{type(error).__name__}: {error}"
        self.failures.record("settle-lost", policies, text)
        return Decision(True, None, 0.0, 0.0, (), (), tuple(policies), source="settle-lost", error=text)

    @staticmethod
    def _check_cost(cost):
        if not isinstance(cost, int) or cost <= 0:
            raise ValueError("cost must be a positive integer")

    @staticmethod
    def _check_actual(actual):
        if not isinstance(actual, int) or isinstance(actual, bool) or actual < 0:
            raise ValueError("actual must be an integer, zero or more")


class ReservationBase:
    """What `Reservation` and `AsyncReservation` share: the reservation's decision and whether it
    was settled. A reservation is truthy when it was allowed."""

    def __init__(self, limiter, policies, key, estimate, decision):
        self.limiter = limiter
        self.policies = tuple(policies)
        self.key = key
        self.estimate = estimate
        self.decision = decision  # the reservation's Decision: allowed, or refused as `consume` refuses
        # For each window or quota policy that `refunds()`: the moment (time.monotonic()) its estimate
        # stops counting, the reserve's reply's arrival (now: the reservation is made as it arrives)
        # plus that policy's reset time in the reply (a window's time until nothing is counted, a
        # quota's time to its period's end).
        arrived = time.monotonic()
        self.counted_until = {r.policy.name: arrived + r.reset for r in decision.results
                              if r.policy.refunds() and decision.source == "redis"}
        self.settled = None  # the settle's Decision, once settled (None when closed without settle())
        self._done = False
        self._lock = threading.Lock()

    @property
    def allowed(self):
        return self.decision.allowed

    def __bool__(self):
        return self.decision.allowed

    def __repr__(self):
        state = "settled" if self._done else "open"
        return (f"<{type(self).__name__} key={self.key!r} estimate={self.estimate} "
                f"allowed={self.allowed} source={self.decision.source} {state}>")

    def _begin_settle(self, actual):
        """Checks that this reservation can be settled once, at `actual`; marks it settled. True when
        there is something to send to Redis (the reservation was made by Redis)."""
        LimiterBase._check_actual(actual)
        with self._lock:
            if self._done:
                raise RuntimeError(f"this reservation of {self.key!r} was already settled")
            if not self.decision.allowed:
                raise RuntimeError(f"this reservation of {self.key!r} was refused: it holds nothing to settle")
            self._done = True
        return self.decision.source == "redis"

    def _refunded(self, actual):
        """The window and quota policies a settle at `actual` gives `estimate - actual` back to: none
        unless `actual` is lower; then those whose estimate still counts (their period has not
        ended: a refund after it would credit the next one)."""
        if actual >= self.estimate:
            return ()
        now = time.monotonic()
        return tuple(p for p in self.policies if p.refunds() and now < self.counted_until.get(p.name, now))

    def _close(self):
        """Leaving the `with` block: a reservation never settled keeps its estimate (no call)."""
        with self._lock:
            self._done = True
