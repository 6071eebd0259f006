"use strict";
// shieldCall: every Redis call the library makes goes through this one function.
//
// One decision is one SHIELD.limit call over all of a limiter's policies, one key per policy:
//   SHIELD.limit <n> <key>... <name> BUCKET|GCRA <limit> <window> [BURST <n>] COST <cost>
//                             | <name> WINDOW <limit> <window> COST <cost>
//                             | <name> QUOTA <limit> HOUR|DAY|MONTH COST <cost> ...  [REFUND]
// A settle (RateLimiter#reserve, Reservation#settle) writes `SETTLE <reserved> <actual>` in place of
// `COST <cost>` for a bucket or GCRA policy.
// Shield decides every policy at the same instant and takes each policy's cost only when every
// policy allows: all or nothing, in one round trip, with nothing to give back on a refusal.

/** The Redis key of one policy for one caller: the caller's key is a hash tag, so every policy
 * key of a caller lives in one cluster slot (as SHIELD.limit needs). */
function policyKey(prefix, key, policy) {
  return `${prefix}{${key}}:${policy.name}`;
}

/** The words of one policy in a SHIELD.limit call; `cost` is a number (COST) or, for a bucket or
 * GCRA policy, { reserved, actual } (SETTLE). */
function policyWords(policy, cost) {
  const words = [policy.name, policy.algorithm.toUpperCase(), policy.limit];
  if (policy.algorithm === "quota") words.push(policy.period);
  else words.push(policy.window);
  if (policy.burst !== undefined) words.push("BURST", policy.burst);
  if (cost !== null && typeof cost === "object") words.push("SETTLE", cost.reserved, cost.actual);
  else words.push("COST", cost);
  return words;
}

/** The whole command of one decision; `flags` are SHIELD.limit's words after the policies (REFUND). */
function limitCommand(keys, policies, costs, flags = []) {
  return ["SHIELD.limit", keys.length, ...keys, ...policies.flatMap((policy, i) => policyWords(policy, costs[i])), ...flags];
}

/** A reply map (RESP2 flat field/value array, RESP3 Map, or a plain object) as a Map. */
function asMap(reply) {
  if (reply instanceof Map) return new Map([...reply].map(([k, v]) => [String(k), v]));
  if (Array.isArray(reply)) {
    const map = new Map();
    for (let i = 0; i + 1 < reply.length; i += 2) map.set(String(reply[i]), reply[i + 1]);
    return map;
  }
  if (reply && typeof reply === "object") return new Map(Object.entries(reply));
  return new Map();
}

function unexpected(reply) {
  return new Error(`redis-shield: unexpected reply from SHIELD.limit: ${JSON.stringify(reply)}`);
}

function number(map, field, reply) {
  const value = Number(map.get(field));
  if (!map.has(field) || !Number.isFinite(value)) throw unexpected(reply);
  return value;
}

/** SHIELD.limit's reply as { allowed, retryAfterMs, violated, decisions: [one per policy] }. */
function parseLimitReply(reply, policies) {
  const top = asMap(reply);
  const list = top.get("policies");
  if (!Array.isArray(list) || list.length !== policies.length) throw unexpected(reply);
  const decisions = list.map((entry, i) => {
    const p = asMap(entry);
    if (String(p.get("name")) !== policies[i].name) throw unexpected(reply);
    return {
      allowed: number(p, "allowed", reply) === 1,
      remaining: number(p, "remaining", reply),
      limit: number(p, "limit", reply),
      window: number(p, "window", reply),
      retryAfterMs: number(p, "retry_after_ms", reply),
      resetMs: number(p, "reset_after_ms", reply),
      policy: policies[i],
    };
  });
  const violated = top.get("violated");
  return {
    allowed: number(top, "allowed", reply) === 1,
    retryAfterMs: number(top, "retry_after_ms", reply),
    violated: Array.isArray(violated) ? violated.map(String) : decisions.filter((d) => !d.allowed).map((d) => d.policy.name),
    decisions,
  };
}

/**
 * Takes `costs[i]` tokens for `policies[i]` for caller `key`, all or nothing, in one SHIELD.limit
 * call (gives them back with `flags` ["REFUND"]; settles with a cost { reserved, actual }). Resolves to { allowed, retryAfterMs, violated, decisions }, each decision being
 * { allowed, remaining, limit, window, retryAfterMs, resetMs, policy } as Shield reports it after
 * the call. Rejects when Redis fails (an error reply included: Shield then wrote nothing); the
 * caller applies the failure policy.
 */
async function shieldCall(transport, prefix, key, policies, costs, flags = []) {
  const keys = policies.map((policy) => policyKey(prefix, key, policy));
  // The first key routes the call: every key of the call shares its hash tag, hence its slot.
  const [reply] = await transport.send(keys[0], [limitCommand(keys, policies, costs, flags)]);
  if (reply instanceof Error) throw reply;
  return parseLimitReply(reply, policies);
}

module.exports = { shieldCall, policyKey, limitCommand, parseLimitReply };
