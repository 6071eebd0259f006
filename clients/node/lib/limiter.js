"use strict";
const { performance } = require("node:perf_hooks");
const { createTransport } = require("./redis");
const { shieldCall } = require("./shield-call");
const { normalizePolicy, policyQuota, quotaResetMs } = require("./policy");
const { headersFor } = require("./headers");

class TimeoutError extends Error {
  constructor(ms) {
    super(`redis-shield: no reply from Redis within ${ms} ms`);
    this.name = "TimeoutError";
  }
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(ms)), ms);
  });
  promise.catch(() => {}); // a late failure after the timeout is not unhandled
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A bounded map of refusals: key -> { until, result }. Oldest entries go first when full. */
class DenyCache {
  constructor(maxEntries) {
    this.maxEntries = maxEntries;
    this.entries = new Map();
  }

  get(key, now) {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (now >= entry.until) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  set(key, until, result) {
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const now = Date.now();
      for (const [k, entry] of this.entries) if (entry.until <= now) this.entries.delete(k);
      while (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value);
    }
    this.entries.set(key, { until, result, at: until - result.retryAfterMs });
  }

  get size() {
    return this.entries.size;
  }
}

/** A result from the policies' results; `overall` ({ allowed, violated, retryAfterMs }), when
 * given, is Shield's own verdict over them. */
function summarize(policyResults, extra, overall) {
  let allowed;
  let violated;
  let retryAfterMs;
  if (overall) {
    ({ allowed, violated, retryAfterMs } = overall);
  } else {
    allowed = policyResults.every((p) => p.allowed);
    violated = policyResults.filter((p) => !p.allowed).map((p) => p.name);
    retryAfterMs = 0;
    if (!allowed) {
      const waits = policyResults.filter((p) => !p.allowed).map((p) => p.retryAfterMs);
      retryAfterMs = waits.includes(-1) ? -1 : Math.max(...waits);
    }
  }
  const known = policyResults.filter((p) => p.remaining !== null);
  let binding = null;
  for (const p of known) if (binding === null || p.remaining < binding.remaining) binding = p;
  const result = {
    allowed,
    remaining: binding ? binding.remaining : null,
    limit: binding ? binding.limit : null,
    retryAfterMs,
    retryAfter: retryAfterMs <= 0 ? retryAfterMs : Math.ceil(retryAfterMs / 1000),
    resetMs: binding ? binding.resetMs : 0,
    reset: binding ? Math.ceil(binding.resetMs / 1000) : 0,
    violated,
    policies: policyResults,
    fromCache: false,
    degraded: false,
    ...extra,
  };
  result.headers = headersFor(result);
  return result;
}

/** Shield's numbers as they are: remaining <= limit always (a burst's limit is the burst). */
function policyResults(decision) {
  return decision.decisions.map((d) => ({
    name: d.policy.name,
    algorithm: d.policy.algorithm,
    allowed: d.allowed,
    remaining: d.remaining,
    limit: d.limit,
    window: d.window,
    retryAfterMs: d.retryAfterMs,
    resetMs: d.resetMs,
  }));
}

/** Bucket and GCRA policies settle with SETTLE (and may go into debt); window and quota ones cannot. */
const settles = (policy) => policy.algorithm === "bucket" || policy.algorithm === "gcra";

/**
 * What RateLimiter#reserve resolves to: the reservation's result (every field of limit()'s), its
 * `key` and `estimate`, and settle(actual) to call once, when the real cost is known.
 * `countedUntil` maps each window and quota policy's name to the moment (performance.now(), ms) its
 * estimate stops counting: when the reserve's reply arrived plus that policy's reset time in it.
 */
class Reservation {
  constructor(limiter, key, estimate, result, arrived) {
    Object.assign(this, result);
    this.key = key;
    this.estimate = estimate;
    this.settled = false;
    this.countedUntil = {};
    if (!result.degraded && !result.fromCache) {
      for (const p of result.policies) if (!settles(p)) this.countedUntil[p.name] = arrived + p.resetMs;
    }
    Object.defineProperty(this, "limiter", { value: limiter, enumerable: false });
  }

  /** Settles the reservation at `actual` (zero or a positive integer); resolves to the result after it. */
  async settle(actual) {
    if (this.settled) throw new Error("redis-shield: this reservation is already settled");
    if (!this.allowed) throw new Error("redis-shield: a refused reservation took nothing: there is nothing to settle");
    if (!Number.isSafeInteger(actual) || actual < 0) {
      throw new TypeError(`redis-shield: actual must be zero or a positive integer, not ${JSON.stringify(actual)}`);
    }
    this.settled = true;
    return this.limiter._settle(this, actual);
  }
}

class RateLimiter {
  /**
   * @param {object} options
   *   redis: an ioredis Redis/Cluster or node-redis client/cluster (connected)
   *   policies: [{ name, algorithm ("bucket" | "gcra" | "window" | "quota"), limit, window | period,
   *     burst, cost, onFailure }]
   *   prefix: key prefix (default "shield:")
   *   timeout: ms per call before the failure policy applies (default 200)
   *   onFailure: default failure policy of the policies, "open" (default) or "closed"
   *   failureRetryAfter: ms a fail-closed refusal asks the caller to wait (default 1000)
   *   denyCache: { maxEntries } (default 10000), or false
   *   logger: { warn(message) } (default console); logInterval: ms (default 60000)
   */
  constructor(options) {
    if (!options || !Array.isArray(options.policies) || options.policies.length === 0) {
      throw new TypeError("redis-shield: RateLimiter needs { redis, policies: [...] } with at least one policy");
    }
    this.transport = createTransport(options.redis);
    this.policies = Object.freeze(options.policies.map((p) => normalizePolicy(p, options)));
    const names = new Set(this.policies.map((p) => p.name));
    if (names.size !== this.policies.length) throw new TypeError("redis-shield: policy names must be distinct");
    this.prefix = options.prefix === undefined ? "shield:" : String(options.prefix);
    this.timeout = options.timeout === undefined ? 200 : options.timeout;
    this.failureRetryAfter = options.failureRetryAfter === undefined ? 1000 : options.failureRetryAfter;
    const cache = options.denyCache === undefined ? {} : options.denyCache;
    this.denyCache = cache === false ? null : new DenyCache(cache.maxEntries || 10000);
    this.logger = options.logger || console;
    this.logInterval = options.logInterval === undefined ? 60000 : options.logInterval;
    this.stats = { calls: 0, redisCalls: 0, cacheHits: 0, failOpen: 0, failClosed: 0, settles: 0, settlesLost: 0 };
    this.pendingLog = { open: 0, closed: 0, settlesLost: 0, error: null };
    this.lastLog = -Infinity;
  }

  /** Takes `cost` (default: each policy's own cost) from every policy for `key`, all or nothing. */
  async limit(key, { cost } = {}) {
    if (typeof key !== "string" || key === "") throw new TypeError("redis-shield: key must be a non-empty string");
    const costs = this.policies.map((p) => (cost === undefined ? p.cost : cost));
    if (!costs.every((c) => Number.isSafeInteger(c) && c > 0)) throw new TypeError("redis-shield: cost must be a positive integer");
    this.stats.calls++;
    const cacheKey = `${key}\u0000${costs.join(",")}`;
    const now = Date.now();
    if (this.denyCache) {
      const entry = this.denyCache.get(cacheKey, now);
      if (entry) {
        this.stats.cacheHits++;
        return this._fromCache(entry, now);
      }
    }
    let decision;
    try {
      this.stats.redisCalls++;
      decision = await withTimeout(shieldCall(this.transport, this.prefix, key, this.policies, costs), this.timeout);
    } catch (error) {
      return this._failed(error);
    }
    const result = summarize(policyResults(decision), {}, decision);
    if (!result.allowed && result.retryAfterMs > 0 && this.denyCache) {
      this.denyCache.set(cacheKey, Date.now() + result.retryAfterMs, result);
    }
    return result;
  }

  /**
   * Reserves `estimate` tokens from every policy for `key` (limit() with that cost: all or nothing,
   * the failure policy and the deny cache apply). Resolves to a Reservation: limit()'s result, with
   * settle(actual) to call once the real cost is known.
   */
  async reserve(key, estimate) {
    if (!Number.isSafeInteger(estimate) || estimate <= 0) {
      throw new TypeError(`redis-shield: estimate must be a positive integer, not ${JSON.stringify(estimate)}`);
    }
    const result = await this.limit(key, { cost: estimate });
    return new Reservation(this, key, estimate, result, performance.now());
  }

  /**
   * The settle of an allowed reservation. Bucket and GCRA policies: one SHIELD.limit call with
   * SETTLE <estimate> <actual> (gives the difference back, or takes the overrun even into debt;
   * never refuses). Window and quota policies keep the estimate, and are given back
   * `estimate - actual` (a SHIELD.limit REFUND call of those policies alone, before the settle)
   * when the actual cost is lower, but only those whose estimate still counts
   * (reservation.countedUntil): once a policy's window or calendar period is over, a refund would
   * credit the next one. With none to refund, no REFUND call is sent. In the settle call they have
   * COST 0 (reported, not written). A failed REFUND call loses the settle as a failed settle call does.
   * A reservation decided without Redis (degraded) was not taken: its settle sends nothing.
   */
  async _settle(reservation, actual) {
    const { key, estimate } = reservation;
    if (reservation.degraded) {
      const result = { ...reservation };
      for (const field of ["key", "estimate", "settled", "countedUntil"]) delete result[field];
      return result;
    }
    this.stats.settles++;
    const now = performance.now();
    const counted = this.policies.filter((p) => !settles(p) && now < (reservation.countedUntil[p.name] ?? now));
    const costs = this.policies.map((p) => (settles(p) ? { reserved: estimate, actual } : 0));
    let decision;
    try {
      if (actual < estimate && counted.length > 0) {
        this.stats.redisCalls++;
        await withTimeout(shieldCall(this.transport, this.prefix, key, counted, counted.map(() => estimate - actual), ["REFUND"]), this.timeout);
      }
      this.stats.redisCalls++;
      decision = await withTimeout(shieldCall(this.transport, this.prefix, key, this.policies, costs), this.timeout);
    } catch (error) {
      return this._settleLost(error);
    }
    return summarize(policyResults(decision), {}, decision);
  }

  /** A settle Redis did not take (or did not confirm in time): counted, logged, and nothing retried. */
  _settleLost(error) {
    const now = Date.now();
    const results = this.policies.map((p) => ({
      name: p.name,
      algorithm: p.algorithm,
      allowed: true,
      remaining: null,
      ...policyQuota(p, now),
      retryAfterMs: 0,
      resetMs: 0,
    }));
    this.stats.settlesLost++;
    this.pendingLog.settlesLost++;
    this.pendingLog.error = error;
    if (now - this.lastLog >= this.logInterval) this._logFailures(now);
    return summarize(results, { degraded: true, error });
  }

  /**
   * Like limit(), but when refused sleeps for the reply's retry-after (plus up to `jitter` of it,
   * default 0.1) and tries again, as long as the total wait stays within `maxWait` ms.
   */
  async acquire(key, { cost, maxWait = 0, jitter = 0.1 } = {}) {
    const started = Date.now();
    for (;;) {
      const result = await this.limit(key, { cost });
      const waited = Date.now() - started;
      if (result.allowed || result.retryAfterMs < 0) return { ...result, waitedMs: waited };
      const budget = maxWait - waited;
      if (result.retryAfterMs > budget) return { ...result, waitedMs: waited };
      const extra = Math.min(budget - result.retryAfterMs, Math.floor(Math.random() * jitter * result.retryAfterMs));
      await sleep(result.retryAfterMs + extra);
    }
  }

  _fromCache(entry, now) {
    const elapsed = now - entry.at;
    const countDown = (ms) => (ms > 0 ? Math.max(1, ms - elapsed) : ms);
    const policies = entry.result.policies.map((p) => ({
      ...p,
      retryAfterMs: countDown(p.retryAfterMs),
      resetMs: Math.max(0, p.resetMs - elapsed),
    }));
    const { allowed, violated, retryAfterMs } = entry.result;
    return summarize(policies, { fromCache: true }, { allowed, violated, retryAfterMs: countDown(retryAfterMs) });
  }

  _failed(error) {
    const now = Date.now();
    const policyResults = this.policies.map((p) => {
      const open = p.onFailure === "open";
      const { limit, window } = policyQuota(p, now);
      return {
        name: p.name,
        algorithm: p.algorithm,
        allowed: open,
        remaining: open ? null : 0,
        limit,
        window,
        retryAfterMs: open ? 0 : this.failureRetryAfter,
        resetMs: open ? 0 : p.algorithm === "quota" ? Math.min(this.failureRetryAfter, quotaResetMs(p.period, now)) : this.failureRetryAfter,
      };
    });
    const result = summarize(policyResults, { degraded: true, error });
    if (result.allowed) {
      this.stats.failOpen++;
      this.pendingLog.open++;
    } else {
      this.stats.failClosed++;
      this.pendingLog.closed++;
    }
    this.pendingLog.error = error;
    if (now - this.lastLog >= this.logInterval) this._logFailures(now);
    return result;
  }

  _logFailures(now) {
    const { open, closed, settlesLost, error } = this.pendingLog;
    const since = this.lastLog === -Infinity ? "" : ` in the last ${Math.round((now - this.lastLog) / 1000)} s`;
    const lost = settlesLost > 0 ? `, and ${settlesLost} settle(s) lost` : "";
    this.logger.warn(
      `redis-shield: Redis unavailable (${error && error.message}): ${open} request(s) allowed (fail-open) and ` +
        `${closed} refused (fail-closed) without Redis${lost}${since}`,
    );
    this.lastLog = now;
    this.pendingLog = { open: 0, closed: 0, settlesLost: 0, error: null };
  }
}

module.exports = { RateLimiter, Reservation, TimeoutError, DenyCache };
