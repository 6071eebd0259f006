"use strict";
// The RateLimit-Policy and RateLimit header fields of draft-ietf-httpapi-ratelimit-headers-12:
// Structured Field Lists of Strings (the policy names) with parameters,
//   RateLimit-Policy: "burst";q=5;w=1, "daily";q=1000;w=86400
//   RateLimit: "burst";r=4;t=1, "daily";r=999;t=35000
// q is the quota (limit) per w seconds; r the quota left (at most q: with BURST a bucket may hold
// more than q, which the header does not say), t the seconds until the quota is fully back.

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
