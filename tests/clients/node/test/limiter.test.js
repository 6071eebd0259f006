"use strict";
// The RateLimiter against a real standalone server, through ioredis and through node-redis.
const { it } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { RateLimiter } = require("../../../../clients/node");
const { normalizePolicy } = require("../../../../clients/node/lib/policy");
const { limitCommand, policyKey } = require("../../../../clients/node/lib/shield-call");
const { rateLimitItems } = require("../sf");
const { describeThroughEachClient } = require("./clients");

const unique = (name) => `${name}-${crypto.randomBytes(4).toString("hex")}`;

describeThroughEachClient("the rate limiter on a standalone server", (limiter, suite) => {

  it("a bucket with a burst allows the burst, then refuses with the retry-after of one token", async () => {
    const l = limiter([{ name: "per-second", algorithm: "bucket", limit: 5, window: 1, burst: 10 }]);
    const key = unique("burst");
    const results = [];
    for (let i = 0; i < 11; i++) results.push(await l.limit(key));
    assert.deepEqual(results.map((r) => r.allowed), [...Array(10).fill(true), false]);
    assert.deepEqual(results.map((r) => r.remaining), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]);
    assert.ok(results.every((r) => r.limit === 10 && r.policies[0].window === 2), "a burst of 10 at 5 per second: q=10, w=2");
    const refused = results[10];
    assert.deepEqual(refused.violated, ["per-second"]);
    assert.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= 200, `one token takes 200 ms: ${refused.retryAfterMs}`);
    assert.equal(refused.retryAfter, 1);
    assert.equal(refused.headers["Retry-After"], "1");
  });

  it("the RateLimit-Policy and RateLimit headers parse as structured field lists with r never above q", async () => {
    const l = limiter([
      { name: "per-second", limit: 5, window: 1, burst: 10 },
      { name: "steady", algorithm: "gcra", limit: 10, window: 1, burst: 4 },
      { name: "minute", algorithm: "window", limit: 100, window: 60 },
      { name: "daily", algorithm: "quota", limit: 1000, period: "day" },
    ]);
    const r = await l.limit(unique("headers"));
    const policy = rateLimitItems(r.headers["RateLimit-Policy"]);
    assert.deepEqual(policy, {
      "per-second": { q: 10, w: 2 }, steady: { q: 4, w: 1 }, minute: { q: 100, w: 60 }, daily: { q: 1000, w: 86400 },
    });
    const now = rateLimitItems(r.headers.RateLimit);
    assert.deepEqual(Object.keys(now), ["per-second", "steady", "minute", "daily"]);
    assert.equal(now["per-second"].r, 9, "a burst of 10 holds 9 after one call, and q is 10");
    assert.equal(now.steady.r, 3);
    assert.equal(now.minute.r, 99);
    assert.equal(now.daily.r, 999);
    for (const [name, item] of Object.entries(now)) {
      assert.ok(Number.isInteger(item.t) && item.t >= 0 && item.r <= policy[name].q, name);
    }
    assert.ok(now.daily.t <= 86400 && now.daily.t > 0);
  });

  it("a refused call takes nothing from any policy: bucket, gcra, window and quota keep what they held", async () => {
    const l = limiter([
      { name: "wide", limit: 100, window: 3600 },
      { name: "steady", algorithm: "gcra", limit: 100, window: 3600 },
      { name: "hourly", algorithm: "window", limit: 100, window: 3600 },
      { name: "daily", algorithm: "quota", limit: 100, period: "day" },
      { name: "once", limit: 1, window: 3600 },
    ], { denyCache: false });
    const key = unique("atomic");
    const first = await l.limit(key);
    assert.equal(first.allowed, true);
    const held = {};
    for (const name of ["wide", "steady", "hourly", "daily", "once"]) held[name] = await suite.server.command("GET", `shield:{${key}}:${name}`);
    for (let i = 0; i < 3; i++) {
      const refused = await l.limit(key);
      assert.equal(refused.allowed, false);
      assert.deepEqual(refused.violated, ["once"]);
      assert.deepEqual(refused.policies.map((p) => [p.name, p.allowed, p.remaining]),
        [["wide", true, 99], ["steady", true, 99], ["hourly", true, 99], ["daily", true, 99], ["once", false, 0]]);
    }
    for (const name of Object.keys(held)) {
      assert.equal(await suite.server.command("GET", `shield:{${key}}:${name}`), held[name], `${name} unchanged after the refusals`);
    }
    assert.equal(held.daily, "1", "the daily count is the one allowed call");
  });

  it("each decision is one SHIELD.limit call and nothing else", async () => {
    const l = limiter([
      { name: "per-second", limit: 5, window: 1, burst: 10 },
      { name: "daily", algorithm: "quota", limit: 1000, period: "day" },
    ], { denyCache: false });
    const key = unique("one-call");
    const before = await suite.server.command("INFO", "commandstats");
    for (let i = 0; i < 12; i++) await l.limit(key);
    const after = await suite.server.command("INFO", "commandstats");
    const shieldCalls = (info) => Object.fromEntries([...info.matchAll(/^cmdstat_(shield\.\w+|cl\.throttle):calls=(\d+)/gim)].map((m) => [m[1].toLowerCase(), Number(m[2])]));
    const b = shieldCalls(before);
    const a = shieldCalls(after);
    const delta = Object.fromEntries(Object.keys(a).map((c) => [c, a[c] - (b[c] || 0)]).filter(([, d]) => d > 0));
    assert.deepEqual(delta, { "shield.limit": 12 });
  });

  it("a gcra policy allows its burst at once, then one call per interval", async () => {
    const l = limiter([{ name: "steady", algorithm: "gcra", limit: 10, window: 1, burst: 3 }], { denyCache: false });
    const key = unique("gcra");
    const r = [];
    for (let i = 0; i < 4; i++) r.push(await l.limit(key));
    assert.deepEqual(r.map((x) => x.allowed), [true, true, true, false]);
    assert.deepEqual(r.map((x) => x.remaining), [2, 1, 0, 0]);
    assert.equal(r[3].policies[0].algorithm, "gcra");
    assert.ok(r[3].retryAfterMs > 0 && r[3].retryAfterMs <= 100, `one call every 100 ms: ${r[3].retryAfterMs}`);
    assert.match(await suite.server.command("GET", `shield:{${key}}:steady`), /^\d{19,}$/, "a GCRA key holds its TAT in ns");
  });

  it("a sliding window refuses past its limit and names itself", async () => {
    const l = limiter([{ name: "win", algorithm: "window", limit: 3, window: 60 }]);
    const key = unique("window");
    const r = [];
    for (let i = 0; i < 4; i++) r.push(await l.limit(key));
    assert.deepEqual(r.map((x) => x.remaining), [2, 1, 0, 0]);
    assert.deepEqual(r[3].violated, ["win"]);
    assert.ok(r[3].retryAfter > 0 && r[3].retryAfter <= 120);
  });

  it("a cost passed to a call overrides the policies' own cost", async () => {
    const l = limiter([{ name: "c", limit: 10, window: 60, cost: 2 }]);
    const key = unique("cost");
    assert.equal((await l.limit(key)).remaining, 8);
    assert.equal((await l.limit(key, { cost: 5 })).remaining, 3);
  });

  it("a cost larger than a policy can ever hold is refused with retry-after -1 and not cached", async () => {
    const l = limiter([{ name: "small", limit: 3, window: 60 }]);
    const key = unique("huge");
    const r = await l.limit(key, { cost: 4 });
    assert.equal(r.allowed, false);
    assert.equal(r.retryAfterMs, -1);
    assert.equal(r.headers["Retry-After"], undefined);
    assert.equal((await l.limit(key, { cost: 4 })).fromCache, false);
  });

  it("the deny cache answers a flood from one client without Redis calls until the retry-after", async () => {
    const l = limiter([{ name: "slow", limit: 1, window: 2 }]);
    const key = unique("flood");
    const before = await suite.server.calls("shield.limit");
    assert.equal((await l.limit(key)).allowed, true);
    let fromCache = 0;
    for (let i = 0; i < 500; i++) {
      const r = await l.limit(key);
      assert.equal(r.allowed, false);
      assert.ok(r.retryAfterMs > 0 && r.retryAfterMs <= 2000);
      if (r.fromCache) fromCache++;
    }
    assert.equal(fromCache, 499);
    assert.equal((await suite.server.calls("shield.limit")) - before, 2, "501 calls, 2 reached Redis");
    assert.equal(l.stats.cacheHits, 499);
    // Once the retry-after has passed, the next call goes to Redis and is allowed.
    const refused = await l.limit(key);
    await new Promise((resolve) => setTimeout(resolve, refused.retryAfterMs + 5));
    const again = await l.limit(key);
    assert.equal(again.fromCache, false);
    assert.equal(again.allowed, true);
  });

  it("without the deny cache every call of a flood reaches Redis", async () => {
    const l = limiter([{ name: "slow", limit: 1, window: 2 }], { denyCache: false });
    const key = unique("nocache");
    const before = await suite.server.calls("shield.limit");
    for (let i = 0; i < 101; i++) await l.limit(key);
    assert.equal((await suite.server.calls("shield.limit")) - before, 101);
  });

  it("the deny cache holds at most maxEntries refusals", async () => {
    const l = limiter([{ name: "one", limit: 1, window: 60 }], { denyCache: { maxEntries: 3 } });
    for (let i = 0; i < 6; i++) {
      const key = unique("bounded");
      await l.limit(key);
      await l.limit(key);
    }
    assert.equal(l.denyCache.size, 3);
  });

  it("acquire sleeps for the retry-after and then takes the tokens", async () => {
    const l = limiter([{ name: "half", limit: 2, window: 1 }]);
    const key = unique("acquire");
    await l.limit(key);
    await l.limit(key);
    const refused = await l.limit(key);
    assert.equal(refused.allowed, false);
    const started = Date.now();
    const r = await l.acquire(key, { maxWait: 2000 });
    assert.equal(r.allowed, true);
    assert.ok(r.waitedMs >= refused.retryAfterMs - 50, `waited ${r.waitedMs} ms for ${refused.retryAfterMs}`);
    assert.ok(Date.now() - started < 1500);
  });

  it("acquire returns the refusal at once when the wait exceeds maxWait", async () => {
    const l = limiter([{ name: "slow", limit: 1, window: 60 }]);
    const key = unique("nowait");
    await l.limit(key);
    const r = await l.acquire(key, { maxWait: 100 });
    assert.equal(r.allowed, false);
    assert.ok(r.waitedMs < 100);
  });
}, () => {
  it("a decision is the SHIELD.limit call docs/clients/node.md shows, one policy per key, each with its cost", () => {
    const policies = [
      normalizePolicy({ name: "per-second", algorithm: "bucket", limit: 5, window: 1, burst: 10 }),
      normalizePolicy({ name: "daily", algorithm: "quota", limit: 1000, period: "day" }),
    ];
    const keys = policies.map((p) => policyKey("shield:", "user:42", p));
    assert.equal(limitCommand(keys, policies, [1, 1]).join(" "),
      "SHIELD.limit 2 shield:{user:42}:per-second shield:{user:42}:daily per-second BUCKET 5 1 BURST 10 COST 1 daily QUOTA 1000 DAY COST 1");
    const gcra = normalizePolicy({ name: "steady", algorithm: "gcra", limit: 10, window: 1, burst: 3 });
    const win = normalizePolicy({ name: "minute", algorithm: "window", limit: 100, window: 60 });
    assert.deepEqual(limitCommand(["a", "b"], [gcra, win], [2, 3]).slice(4),
      ["steady", "GCRA", 10, 1, "BURST", 3, "COST", 2, "minute", "WINDOW", 100, 60, "COST", 3]);
  });

  it("policies are checked when declared: names, algorithms, limits and failure policies", () => {
    const redis = { sendCommand() {} };
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "bad name", limit: 1, window: 1 }] }), /policy name "bad name" must be 1-64 of/);
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "a.b", limit: 1, window: 1 }] }), /policy name "a.b" must be 1-64 of A-Z a-z 0-9 _ -/);
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "x".repeat(65), limit: 1, window: 1 }] }), /policy name/);
    for (const word of ["burst", "Bucket", "GCRA", "window", "quota", "cost", "settle", "dryrun", "headers", "refund", "wait"]) {
      assert.throws(() => new RateLimiter({ redis, policies: [{ name: word, limit: 1, window: 1 }] }),
        new RegExp(`policy name "${word}" is a word of SHIELD.limit .*choose another`), word);
    }
    assert.ok(new RateLimiter({ redis, policies: [{ name: "x".repeat(64), limit: 1, window: 1 }, { name: "per-second_2", limit: 1, window: 1 }] }));
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "a", algorithm: "leaky", limit: 1, window: 1 }] }), /algorithm must be "bucket", "gcra", "window" or "quota"/);
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "a", algorithm: "window", limit: 1, window: 1, burst: 2 }] }), /burst applies to the bucket and gcra/);
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "a", limit: 0, window: 1 }] }), /limit/);
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "a", algorithm: "quota", limit: 1, period: "week" }] }), /period/);
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "a", limit: 1, window: 1, onFailure: "maybe" }] }), /onFailure/);
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "a", limit: 1, window: 1 }, { name: "a", limit: 2, window: 1 }] }), /distinct/);
  });
});
