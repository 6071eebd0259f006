"use strict";
// The RateLimit-Policy and RateLimit header fields of draft-ietf-httpapi-ratelimit-headers-12:
// Structured Field Lists of Strings (the policy names) with parameters,
//   RateLimit-Policy: "per-second";q=10;w=2, "daily";q=1000;w=86400
//   RateLimit: "per-second";r=9;t=1, "daily";r=999;t=35000
// q is the quota (limit) per w seconds, as SHIELD.limit reports them (a bucket with BURST n: q = n
// and w = its time to fill from empty); r the quota left (never above q), t the seconds until the
// quota is fully back. Built here from the numbers of each policy (not asked of SHIELD.limit with
// HEADERS) because a result from the deny cache or the failure policy needs them too.

function sfString(value) {
  return `"${String(value).replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function policyHeader(policies) {
  return policies.map((p) => `${sfString(p.name)};q=${p.limit};w=${p.window}`).join(", ");
}

function rateLimitHeader(policies) {
  return policies
    .filter((p) => p.remaining !== null)
    .map((p) => `${sfString(p.name)};r=${p.remaining};t=${Math.ceil(Math.max(0, p.resetMs) / 1000)}`)
    .join(", ");
}

/** Header name -> value for a result; `legacy` adds X-RateLimit-Limit/-Remaining/-Reset. */
function headersFor(result, { legacy = false } = {}) {
  const headers = { "RateLimit-Policy": policyHeader(result.policies) };
  const rateLimit = rateLimitHeader(result.policies);
  if (rateLimit) headers.RateLimit = rateLimit;
  if (!result.allowed && result.retryAfter > 0) headers["Retry-After"] = String(result.retryAfter);
  if (legacy && result.remaining !== null) {
    headers["X-RateLimit-Limit"] = String(result.limit);
    headers["X-RateLimit-Remaining"] = String(result.remaining);
    headers["X-RateLimit-Reset"] = String(result.reset);
  }
  return headers;
}

module.exports = { headersFor, policyHeader, rateLimitHeader, sfString };
