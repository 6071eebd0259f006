"use strict";
// shieldCall: every Redis call the library makes goes through this one function, so that moving to
// SHIELD.limit (one atomic call over several policies, not in Shield yet) changes only this file.
//
// Today it sends one command per policy, all together in one round trip: SHIELD.absorb ... BURST
// ... VERBOSE for a bucket, SHIELD.window ... VERBOSE, SHIELD.quota ... VERBOSE. The commands are
// not atomic together: when one policy refuses (or answers an error), the buckets that took tokens get them back with
// SHIELD.refund (a second round trip, on refusals only), but a window or quota that took tokens
// keeps them (those commands have no refund yet), so a refused request may still count against
// them.

const VERBOSE_FIELDS = ["allowed", "remaining", "capacity", "period", "retry_after_ms", "reset_after_ms"];

/** The Redis key of one policy for one caller: the caller's key is a hash tag, so every policy
 * key of a caller lives in one cluster slot (as SHIELD.absorb_multi and SHIELD.limit need). */
function policyKey(prefix, key, policy) {
  return `${prefix}{${key}}:${policy.name}`;
}

function takeCommand(policy, redisKey, cost) {
  if (policy.algorithm === "bucket") {
    const burst = policy.burst === undefined ? [] : ["BURST", policy.burst];
    return ["SHIELD.absorb", redisKey, policy.limit, policy.window, cost, ...burst, "VERBOSE"];
  }
  if (policy.algorithm === "window") return ["SHIELD.window", redisKey, policy.limit, policy.window, cost, "VERBOSE"];
  return ["SHIELD.quota", redisKey, policy.limit, policy.period, cost, "VERBOSE"];
}

function refundCommand(policy, redisKey, cost) {
  const burst = policy.burst === undefined ? [] : ["BURST", policy.burst];
  return ["SHIELD.refund", redisKey, policy.limit, policy.window, cost, ...burst];
}

/** A VERBOSE reply (RESP2 flat array, RESP3 Map, or an object) as {field: number}. */
function parseVerbose(reply) {
  const fields = {};
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) fields[String(reply[i])] = Number(reply[i + 1]);
  } else if (reply instanceof Map) {
    for (const [k, v] of reply) fields[String(k)] = Number(v);
  } else if (reply && typeof reply === "object") {
    for (const [k, v] of Object.entries(reply)) fields[k] = Number(v);
  }
  for (const field of VERBOSE_FIELDS) {
    if (!Number.isFinite(fields[field])) throw new Error(`redis-shield: unexpected reply ${JSON.stringify(reply)}`);
  }
  return fields;
}

/**
 * Takes `costs[i]` tokens for `policies[i]` for caller `key`; resolves to one decision per policy:
 * { allowed, remaining, limit, window, retryAfterMs, resetMs, refunded }. Rejects when Redis
 * fails (an error reply included); the caller applies the failure policy.
 */
async function shieldCall(transport, prefix, key, policies, costs) {
  const keys = policies.map((policy) => policyKey(prefix, key, policy));
  const replies = await transport.send(keys[0], policies.map((policy, i) => takeCommand(policy, keys[i], costs[i])));
  const failure = replies.find((reply) => reply instanceof Error);
  const decisions = replies.map((reply, i) => {
    if (reply instanceof Error) return { allowed: false, error: reply, policy: policies[i] };
    const v = parseVerbose(reply);
    return {
      allowed: v.allowed === 1,
      remaining: v.remaining,
      limit: v.capacity,
      window: v.period,
      retryAfterMs: v.retry_after_ms,
      resetMs: v.reset_after_ms,
      refunded: false,
      policy: policies[i],
    };
  });
  if (decisions.some((d) => !d.allowed)) {
    const back = decisions
      .map((d, i) => ({ d, i }))
      .filter(({ d }) => d.allowed && d.policy.algorithm === "bucket");
    // (also when a policy's reply was an error: the buckets that took tokens give them back)
    if (back.length > 0) {
      // A refund that fails leaves the decision as it is (refused); the tokens stay taken.
      let refunds;
      try {
        refunds = await transport.send(keys[0], back.map(({ d, i }) => refundCommand(d.policy, keys[i], costs[i])));
      } catch (error) {
        refunds = back.map(() => error);
      }
      refunds.forEach((reply, j) => {
        if (reply instanceof Error) {
          back[j].d.refundError = reply;
          return;
        }
        back[j].d.remaining = Number(reply);
        back[j].d.refunded = true;
      });
    }
  }
  if (failure) throw failure; // an error reply: the caller's failure policy decides
  return decisions;
}

module.exports = { shieldCall, policyKey };
