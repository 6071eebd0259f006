"use strict";
// The RateLimiter against a real standalone server, through ioredis and through node-redis.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { RateLimiter } = require("../../../../clients/node");
const { Server } = require("../support");
const { rateLimitItems } = require("../sf");
const { standalone } = require("./clients");

const unique = (name) => `${name}-${crypto.randomBytes(4).toString("hex")}`;

describe("the rate limiter on a standalone server", () => {
  let server;
  before(async () => {
    server = await new Server().start();
  });
  after(async () => {
    await server.stop();
  });

  for (const [kind, connect] of Object.entries(standalone)) {
    describe(`through ${kind}`, () => {
      let conn;
      before(async () => {
        conn = await connect(server.port);
      });
      after(async () => {
        await conn.close();
      });
      const limiter = (policies, options = {}) => new RateLimiter({ redis: conn.client, policies, ...options });

      it("a bucket with a burst allows the burst, then refuses with the retry-after of one token", async () => {
        const l = limiter([{ name: "burst", algorithm: "bucket", limit: 5, window: 1, burst: 10 }]);
        const key = unique("burst");
        const results = [];
        for (let i = 0; i < 11; i++) results.push(await l.limit(key));
        assert.deepEqual(results.map((r) => r.allowed), [...Array(10).fill(true), false]);
        assert.ok(results.every((r) => r.remaining <= 5), "remaining is never above the limit q");
        const refused = results[10];
        assert.deepEqual(refused.violated, ["burst"]);
        assert.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= 200, `one token takes 200 ms: ${refused.retryAfterMs}`);
        assert.equal(refused.retryAfter, 1);
        assert.equal(refused.headers["Retry-After"], "1");
      });

      it("the RateLimit-Policy and RateLimit headers parse as structured field lists with r never above q", async () => {
        const l = limiter([
          { name: "burst", limit: 5, window: 1, burst: 10 },
          { name: "minute", algorithm: "window", limit: 100, window: 60 },
          { name: "daily", algorithm: "quota", limit: 1000, period: "day" },
        ]);
        const r = await l.limit(unique("headers"));
        const policy = rateLimitItems(r.headers["RateLimit-Policy"]);
        assert.deepEqual(policy, { burst: { q: 5, w: 1 }, minute: { q: 100, w: 60 }, daily: { q: 1000, w: 86400 } });
        const now = rateLimitItems(r.headers.RateLimit);
        assert.deepEqual(Object.keys(now), ["burst", "minute", "daily"]);
        assert.equal(now.burst.r, 5, "a burst of 10 holds 9 after one call: shown as q");
        assert.equal(now.minute.r, 99);
        assert.equal(now.daily.r, 999);
        for (const [name, item] of Object.entries(now)) {
          assert.ok(Number.isInteger(item.t) && item.t >= 0 && item.r <= policy[name].q, name);
        }
        assert.ok(now.daily.t <= 86400 && now.daily.t > 0);
      });

      it("a refused request gives its tokens back to the buckets that took them", async () => {
        const l = limiter([
          { name: "wide", limit: 100, window: 60 },
          { name: "narrow", limit: 2, window: 60 },
        ], { denyCache: false });
        const key = unique("refund");
        const r = [await l.limit(key), await l.limit(key), await l.limit(key)];
        assert.deepEqual(r.map((x) => x.allowed), [true, true, false]);
        assert.deepEqual(r[2].violated, ["narrow"]);
        assert.equal(await server.command("GET", `shield:{${key}}:wide`), "98");
        assert.equal(r[2].policies[0].remaining, 98);
      });

      it("a window or quota that took tokens keeps them when another policy refuses, until SHIELD.limit exists", async () => {
        const l = limiter([
          { name: "daily", algorithm: "quota", limit: 100, period: "day" },
          { name: "hourly", algorithm: "window", limit: 100, window: 3600 },
          { name: "once", limit: 1, window: 60 },
        ], { denyCache: false });
        const key = unique("nonatomic");
        assert.equal((await l.limit(key)).allowed, true);
        const refused = await l.limit(key);
        assert.deepEqual(refused.violated, ["once"]);
        assert.equal(await server.command("GET", `shield:{${key}}:daily`), "2");
        assert.equal(refused.policies[1].remaining, 98);
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
        const before = await server.calls("shield.absorb");
        assert.equal((await l.limit(key)).allowed, true);
        let fromCache = 0;
        for (let i = 0; i < 500; i++) {
          const r = await l.limit(key);
          assert.equal(r.allowed, false);
          assert.ok(r.retryAfterMs > 0 && r.retryAfterMs <= 2000);
          if (r.fromCache) fromCache++;
        }
        assert.equal(fromCache, 499);
        assert.equal((await server.calls("shield.absorb")) - before, 2, "501 calls, 2 reached Redis");
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
        const before = await server.calls("shield.absorb");
        for (let i = 0; i < 101; i++) await l.limit(key);
        assert.equal((await server.calls("shield.absorb")) - before, 101);
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
    });
  }

  it("policies are checked when declared: names, algorithms, limits and failure policies", () => {
    const redis = { sendCommand() {} };
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "bad name", limit: 1, window: 1 }] }), /policy name/);
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "a", algorithm: "gcra", limit: 1, window: 1 }] }), /algorithm/);
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "a", limit: 0, window: 1 }] }), /limit/);
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "a", algorithm: "quota", limit: 1, period: "week" }] }), /period/);
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "a", limit: 1, window: 1, onFailure: "maybe" }] }), /onFailure/);
    assert.throws(() => new RateLimiter({ redis, policies: [{ name: "a", limit: 1, window: 1 }, { name: "a", limit: 2, window: 1 }] }), /distinct/);
  });
});
