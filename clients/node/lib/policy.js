"use strict";
// Policies, declared once: { name, algorithm: "bucket" | "window" | "quota", limit, window or
// period, burst (bucket only), cost (default 1), onFailure ("open" | "closed") }.

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const QUOTA_PERIODS = { hour: "HOUR", day: "DAY", month: "MONTH" };

function positiveInteger(value, what) {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`redis-shield: ${what} must be a positive integer, not ${JSON.stringify(value)}`);
  }
  return value;
}

function normalizePolicy(spec, defaults = {}) {
  if (!spec || typeof spec !== "object") throw new TypeError("redis-shield: a policy is an object");
  const name = spec.name;
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new TypeError(`redis-shield: policy name ${JSON.stringify(name)} must be 1-64 of A-Z a-z 0-9 _ . -`);
  }
  const algorithm = spec.algorithm || "bucket";
  const policy = { name, algorithm, limit: positiveInteger(spec.limit, `policy ${name}: limit`) };
  if (algorithm === "bucket" || algorithm === "window") {
    policy.window = positiveInteger(spec.window, `policy ${name}: window (seconds)`);
    if (algorithm === "bucket" && spec.burst !== undefined) {
      policy.burst = positiveInteger(spec.burst, `policy ${name}: burst`);
    } else if (spec.burst !== undefined) {
      throw new TypeError(`redis-shield: policy ${name}: burst applies to the bucket algorithm only`);
    }
  } else if (algorithm === "quota") {
    const period = QUOTA_PERIODS[String(spec.period || "").toLowerCase()];
    if (!period) throw new TypeError(`redis-shield: policy ${name}: period must be "hour", "day" or "month"`);
    policy.period = period;
  } else {
    throw new TypeError(`redis-shield: policy ${name}: algorithm must be "bucket", "window" or "quota"`);
  }
  policy.cost = spec.cost === undefined ? 1 : positiveInteger(spec.cost, `policy ${name}: cost`);
  const onFailure = spec.onFailure || defaults.onFailure || "open";
  if (onFailure !== "open" && onFailure !== "closed") {
    throw new TypeError(`redis-shield: policy ${name}: onFailure must be "open" or "closed"`);
  }
  policy.onFailure = onFailure;
  return Object.freeze(policy);
}

/** Seconds of the current UTC calendar period (as SHIELD.quota's VERBOSE `period`). */
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

/** The window the RateLimit-Policy header names for a policy (w=), in seconds. */
function policyWindow(policy, now) {
  return policy.algorithm === "quota" ? quotaPeriodSeconds(policy.period, now) : policy.window;
}

module.exports = { normalizePolicy, policyWindow, quotaResetMs };
