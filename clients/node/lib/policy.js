"use strict";
// Policies, declared once: { name, algorithm: "bucket" | "gcra" | "window" | "quota", limit,
// window or period, burst (bucket and gcra), cost (default 1), onFailure ("open" | "closed") }.

// SHIELD.limit's names: 1-64 of A-Z a-z 0-9 _ -, and none of its words (in any case).
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const KEYWORDS = ["BUCKET", "GCRA", "WINDOW", "QUOTA", "BURST", "COST", "SETTLE", "DRYRUN", "HEADERS", "REFUND", "WAIT"];
const ALGORITHMS = ["bucket", "gcra", "window", "quota"];
const QUOTA_PERIODS = { hour: "HOUR", day: "DAY", month: "MONTH" };

function positiveInteger(value, what) {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`redis-shield: ${what} must be a positive integer, not ${JSON.stringify(value)}`);
  }
  return value;
}

function checkName(name) {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new TypeError(`redis-shield: policy name ${JSON.stringify(name)} must be 1-64 of A-Z a-z 0-9 _ -`);
  }
  if (KEYWORDS.includes(name.toUpperCase())) {
    throw new TypeError(
      `redis-shield: policy name ${JSON.stringify(name)} is a word of SHIELD.limit (${KEYWORDS.join(" ")}, in any case): choose another, such as "per-second"`,
    );
  }
  return name;
}

function normalizePolicy(spec, defaults = {}) {
  if (!spec || typeof spec !== "object") throw new TypeError("redis-shield: a policy is an object");
  const name = checkName(spec.name);
  const algorithm = spec.algorithm === undefined ? "bucket" : spec.algorithm;
  if (!ALGORITHMS.includes(algorithm)) {
    throw new TypeError(`redis-shield: policy ${name}: algorithm must be "bucket", "gcra", "window" or "quota"`);
  }
  const policy = { name, algorithm, limit: positiveInteger(spec.limit, `policy ${name}: limit`) };
  if (algorithm === "quota") {
    const period = QUOTA_PERIODS[String(spec.period || "").toLowerCase()];
    if (!period) throw new TypeError(`redis-shield: policy ${name}: period must be "hour", "day" or "month"`);
    policy.period = period;
  } else {
    policy.window = positiveInteger(spec.window, `policy ${name}: window (seconds)`);
  }
  if (spec.burst !== undefined) {
    if (algorithm !== "bucket" && algorithm !== "gcra") {
      throw new TypeError(`redis-shield: policy ${name}: burst applies to the bucket and gcra algorithms only`);
    }
    policy.burst = positiveInteger(spec.burst, `policy ${name}: burst`);
  }
  policy.cost = spec.cost === undefined ? 1 : positiveInteger(spec.cost, `policy ${name}: cost`);
  const onFailure = spec.onFailure || defaults.onFailure || "open";
  if (onFailure !== "open" && onFailure !== "closed") {
    throw new TypeError(`redis-shield: policy ${name}: onFailure must be "open" or "closed"`);
  }
  policy.onFailure = onFailure;
  return Object.freeze(policy);
}

/** Seconds of the current UTC calendar period (as SHIELD.limit's `window` of a quota). */
function quotaPeriodSeconds(period, now = Date.now()) {
  if (period === "HOUR") return 3600;
  if (period === "DAY") return 86400;
  const date = new Date(now);
  const start = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
  const end = Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
  return (end - start) / 1000;
}

function quotaResetMs(period, now = Date.now()) {
  const date = new Date(now);
  let end;
  if (period === "HOUR") end = Math.floor(now / 3600000) * 3600000 + 3600000;
  else if (period === "DAY") end = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() + 1);
  else end = Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
  return end - now;
}

/**
 * The limit (q=) and window (w=, seconds) the RateLimit-Policy header names for a policy when Redis
 * did not answer, as SHIELD.limit reports them: a bucket or GCRA with a burst `n` holds at most `n`
 * and fills from empty in ceil(n * window / limit) seconds; a quota's window is its current period.
 */
function policyQuota(policy, now) {
  if (policy.algorithm === "quota") return { limit: policy.limit, window: quotaPeriodSeconds(policy.period, now) };
  if (policy.burst === undefined) return { limit: policy.limit, window: policy.window };
  return { limit: policy.burst, window: Math.ceil((policy.burst * policy.window) / policy.limit) };
}

module.exports = { normalizePolicy, policyQuota, quotaResetMs, KEYWORDS };
