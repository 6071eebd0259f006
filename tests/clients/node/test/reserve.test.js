"use strict";
// Costs known afterwards: reserve(key, estimate) and reservation.settle(actual) against a real
// server, through ioredis and through node-redis; and a settle that Redis does not take.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { performance } = require("node:perf_hooks");
const { RateLimiter } = require("../../../../clients/node");
const { normalizePolicy } = require("../../../../clients/node/lib/policy");
const { limitCommand, parseLimitReply } = require("../../../../clients/node/lib/shield-call");
const { Server, waitFor } = require("../support");
const { standalone, describeThroughEachClient } = require("./clients");

const unique = (name) => `${name}-${crypto.randomBytes(4).toString("hex")}`;
const HOUR = 3600; // a refill so slow that no test sees a token come back

function recordingLogger() {
  const lines = [];
  return { lines, warn: (line) => lines.push(line) };
}

/** What each window or quota policy has left for `key` now: SHIELD.limit_ro with COST 0. */
async function remaining(server, key, specs) {
  const policies = specs.map((spec) => normalizePolicy(spec));
  const [, ...words] = limitCommand(policies.map((p) => `shield:{${key}}:${p.name}`), policies, policies.map(() => 0));
  return parseLimitReply(await server.command("SHIELD.limit_ro", ...words), policies).decisions.map((d) => d.remaining);
}

async function tokensRefunded(server) {
  const stats = await server.command("SHIELD.stats");
  return Number(stats[stats.indexOf("tokens_refunded") + 1]);
}

/** Waits until the server counts nothing in `window` for the reservation's key, and the reservation's
 * own clock says its estimate stopped counting there. */
async function untilTheWindowCountsNothing(server, reservation, window) {
  await waitFor(async () => (await remaining(server, reservation.key, [window]))[0] === window.limit &&
    performance.now() >= reservation.countedUntil[window.name], { what: "the window to count nothing" });
}

describeThroughEachClient("reserve and settle on a standalone server", (limiter, suite) => {

  it("a reservation of 10 settled at 4 gives 6 back to a bucket and to a gcra limit, in one SHIELD.limit call", async () => {
    const l = limiter([
      { name: "tokens", limit: 10, window: HOUR },
      { name: "steady", algorithm: "gcra", limit: 10, window: HOUR },
    ]);
    const key = unique("give-back");
    const reservation = await l.reserve(key, 10);
    assert.equal(reservation.allowed, true);
    assert.equal(reservation.estimate, 10);
    assert.equal(reservation.key, key);
    assert.deepEqual(reservation.policies.map((p) => p.remaining), [0, 0]);
    const calls = await suite.server.calls("shield.limit");
    const settled = await reservation.settle(4);
    assert.equal(await suite.server.calls("shield.limit"), calls + 1, "one SHIELD.limit call");
    assert.equal(settled.allowed, true);
    assert.equal(settled.degraded, false);
    assert.deepEqual(settled.policies.map((p) => [p.name, p.remaining]), [["tokens", 6], ["steady", 6]]);
    assert.equal(settled.remaining, 6);
    const next = await l.limit(key, { cost: 6 });
    assert.equal(next.allowed, true, "the 6 given back can be taken again");
    assert.equal((await l.limit(key)).allowed, false);
    assert.equal(l.stats.settles, 1);
  });

  it("a reservation of 10 settled at 15 leaves the bucket in debt: the next call is refused for at least the debt", async () => {
    const l = limiter([{ name: "tokens", limit: 10, window: 10 }], { denyCache: false }); // one token a second
    const key = unique("debt");
    const reservation = await l.reserve(key, 10);
    assert.equal(reservation.allowed, true);
    const settled = await reservation.settle(15);
    assert.equal(settled.allowed, true, "a settle never refuses");
    assert.equal(settled.remaining, 0);
    const next = await l.limit(key);
    assert.equal(next.allowed, false);
    assert.deepEqual(next.violated, ["tokens"]);
    assert.ok(next.retryAfterMs >= 5000, `5 tokens owed at one a second, then one to take: ${next.retryAfterMs} ms`);
    assert.ok(next.retryAfterMs <= 6000, `${next.retryAfterMs} ms`);
    assert.ok(next.retryAfter >= 5);
    const pttl = Number(await suite.server.command("PTTL", `shield:{${key}}:tokens`));
    assert.ok(pttl > 10000, `the debt lies beyond the fill time in the key's expiry: ${pttl} ms`);
  });

  it("a gcra limit settled above its reservation refuses the next call for at least the overrun", async () => {
    const l = limiter([{ name: "steady", algorithm: "gcra", limit: 10, window: 10 }], { denyCache: false });
    const key = unique("gcra-debt");
    const reservation = await l.reserve(key, 10);
    assert.equal(reservation.allowed, true);
    const settled = await reservation.settle(15);
    assert.equal(settled.allowed, true);
    assert.equal(settled.remaining, 0);
    const next = await l.limit(key);
    assert.equal(next.allowed, false);
    assert.ok(next.retryAfterMs >= 5000, `5 calls owed at one a second: ${next.retryAfterMs} ms`);
  });

  it("a bucket's debt is at most one window's refill", async () => {
    const l = limiter([{ name: "tokens", limit: 10, window: 10 }], { denyCache: false });
    const key = unique("bounded");
    const settled = await (await l.reserve(key, 10)).settle(1000);
    assert.equal(settled.remaining, 0);
    const next = await l.limit(key);
    assert.equal(next.allowed, false);
    assert.ok(next.retryAfterMs > 10000 && next.retryAfterMs <= 11000, `10 tokens owed, then one: ${next.retryAfterMs} ms`);
  });

  it("a settle that gives back does not clear a refusal in the deny cache, which stands until its retry-after", async () => {
    const l = limiter([{ name: "tokens", limit: 10, window: HOUR }]);
    const key = unique("cached");
    const reservation = await l.reserve(key, 10);
    const refused = await l.limit(key);
    assert.equal(refused.allowed, false);
    assert.equal((await reservation.settle(4)).remaining, 6);
    const cached = await l.limit(key);
    assert.equal(cached.allowed, false);
    assert.equal(cached.fromCache, true);
    assert.equal((await l.limit(key, { cost: 2 })).allowed, true, "another cost goes to Redis, which has the 6");
  });

  it("settling twice rejects, and the second settle sends nothing", async () => {
    const l = limiter([{ name: "tokens", limit: 10, window: HOUR }]);
    const key = unique("twice");
    const reservation = await l.reserve(key, 5);
    const [first, second] = await Promise.allSettled([reservation.settle(2), reservation.settle(2)]);
    assert.equal(first.status, "fulfilled");
    assert.equal(first.value.remaining, 8);
    assert.equal(second.status, "rejected");
    assert.match(second.reason.message, /already settled/);
    await assert.rejects(reservation.settle(1), /already settled/);
    assert.equal(reservation.settled, true);
    assert.equal((await l.limit(key, { cost: 8 })).allowed, true, "the bucket was given back 3 once, not twice");
    assert.equal((await l.limit(key)).allowed, false);
    assert.equal(l.stats.settles, 1);
  });

  it("a refused reservation is a refused result like limit()'s, takes nothing, and has nothing to settle", async () => {
    const l = limiter([
      { name: "tokens", limit: 10, window: HOUR },
      { name: "daily", algorithm: "quota", limit: 100, period: "day" },
    ], { denyCache: false });
    const key = unique("refused");
    assert.equal((await l.limit(key, { cost: 8 })).allowed, true);
    const reservation = await l.reserve(key, 5);
    assert.equal(reservation.allowed, false);
    assert.deepEqual(reservation.violated, ["tokens"]);
    assert.ok(reservation.retryAfterMs > 0);
    assert.equal(reservation.headers["Retry-After"], String(reservation.retryAfter));
    assert.deepEqual(reservation.policies.map((p) => p.remaining), [2, 92], "nothing taken from either policy");
    await assert.rejects(reservation.settle(5), /nothing to settle/);
    const tooBig = await l.reserve(key, 11);
    assert.equal(tooBig.allowed, false);
    assert.equal(tooBig.retryAfterMs, -1, "more than the bucket ever holds: no wait helps");
  });

  it("a window and a quota settled lower are given the difference back while their period lasts, and settled higher keep the estimate", async () => {
    const l = limiter([
      { name: "tokens", limit: 100, window: HOUR },
      { name: "minute", algorithm: "window", limit: 20, window: 60 },
      { name: "daily", algorithm: "quota", limit: 20, period: "day" },
    ]);
    const key = unique("counted");
    const low = await l.reserve(key, 10);
    assert.deepEqual(low.policies.map((p) => p.remaining), [90, 10, 10]);
    const calls = await suite.server.calls("shield.limit");
    const lowSettled = await low.settle(4);
    assert.equal(await suite.server.calls("shield.limit"), calls + 2, "a REFUND of the window and the quota, then the settle");
    assert.deepEqual(lowSettled.policies.map((p) => p.remaining), [96, 16, 16]);

    const high = await l.reserve(key, 10);
    assert.deepEqual(high.policies.map((p) => p.remaining), [86, 6, 6]);
    const highSettled = await high.settle(15);
    assert.equal(await suite.server.calls("shield.limit"), calls + 4, "settled higher: the settle alone");
    assert.deepEqual(highSettled.policies.map((p) => p.remaining), [81, 6, 6], "the bucket takes 5 more; the window and the quota keep 10");
  });

  it("a window whose period ended before the settle is not refunded, while a quota still counting is, in a REFUND of the quota alone", async () => {
    const second = { name: "second", algorithm: "window", limit: 10, window: 1 };
    const daily = { name: "daily", algorithm: "quota", limit: 100, period: "day" };
    const l = limiter([second, daily], { denyCache: false });
    const key = unique("ended");
    const reservation = await l.reserve(key, 5);
    assert.deepEqual(Object.keys(reservation.countedUntil), ["second", "daily"]);
    await untilTheWindowCountsNothing(suite.server, reservation, second);
    assert.equal((await limiter([second]).limit(key, { cost: 3 })).allowed, true, "3 counted in the window's new period");
    const calls = await suite.server.calls("shield.limit");
    const refunded = await tokensRefunded(suite.server);
    const settled = await reservation.settle(1);
    assert.equal(await suite.server.calls("shield.limit"), calls + 2, "a REFUND of the quota alone, then the settle");
    assert.equal(await tokensRefunded(suite.server) - refunded, 4, "the quota's 4; the window's new period was not credited");
    assert.deepEqual(await remaining(suite.server, key, [daily]), [99]);
    assert.equal(settled.policies[1].remaining, 99);
  });

  it("a settle after every window's period ended sends no REFUND call", async () => {
    const second = { name: "second", algorithm: "window", limit: 10, window: 1 };
    const l = limiter([second, { name: "tokens", limit: 100, window: HOUR }], { denyCache: false });
    const key = unique("no-refund");
    const reservation = await l.reserve(key, 5);
    await untilTheWindowCountsNothing(suite.server, reservation, second);
    assert.equal((await limiter([second]).limit(key, { cost: 3 })).allowed, true);
    const calls = await suite.server.calls("shield.limit");
    const refunded = await tokensRefunded(suite.server);
    const settled = await reservation.settle(1);
    assert.equal(await suite.server.calls("shield.limit"), calls + 1, "the settle alone");
    assert.equal(await tokensRefunded(suite.server) - refunded, 4, "the bucket's SETTLE only");
    assert.equal(settled.policies[1].remaining, 99, "the bucket: 100 - 5 + 4");
  });

  it("a settle is written even when a window or a quota of the limiter is full", async () => {
    const l = limiter([
      { name: "tokens", limit: 10, window: HOUR },
      { name: "minute", algorithm: "window", limit: 5, window: 60 },
    ]);
    const key = unique("full");
    const reservation = await l.reserve(key, 5);
    assert.deepEqual(reservation.policies.map((p) => p.remaining), [5, 0]);
    const settled = await reservation.settle(9);
    assert.equal(settled.allowed, true);
    assert.deepEqual(settled.policies.map((p) => p.remaining), [1, 0]);
    assert.equal(await suite.server.command("GET", `shield:{${key}}:tokens`), "1");
  });

  it("a bad estimate or actual cost throws a TypeError and leaves the reservation to settle", async () => {
    const l = limiter([{ name: "tokens", limit: 10, window: HOUR }]);
    await assert.rejects(l.reserve(unique("bad"), 0), TypeError);
    await assert.rejects(l.reserve(unique("bad"), 1.5), TypeError);
    const reservation = await l.reserve(unique("bad"), 3);
    await assert.rejects(reservation.settle(-1), TypeError);
    await assert.rejects(reservation.settle("2"), TypeError);
    assert.equal(reservation.settled, false);
    assert.equal((await reservation.settle(0)).remaining, 10, "settled at 0: everything back");
  });
}, () => {
  it("the settle call has SETTLE <estimate> <actual> for a bucket and a gcra policy, and COST 0 for a window and a quota", () => {
    const policies = [
      normalizePolicy({ name: "b", limit: 10, window: 60, burst: 20 }),
      normalizePolicy({ name: "g", algorithm: "gcra", limit: 10, window: 60 }),
      normalizePolicy({ name: "w", algorithm: "window", limit: 10, window: 60 }),
      normalizePolicy({ name: "q", algorithm: "quota", limit: 10, period: "day" }),
    ];
    const settle = { reserved: 10, actual: 4 };
    assert.equal(limitCommand(["kb", "kg", "kw", "kq"], policies, [settle, settle, 0, 0]).join(" "),
      "SHIELD.limit 4 kb kg kw kq b BUCKET 10 60 BURST 20 SETTLE 10 4 g GCRA 10 60 SETTLE 10 4 w WINDOW 10 60 COST 0 q QUOTA 10 DAY COST 0");
    assert.equal(limitCommand(["kw", "kq"], policies.slice(2), [6, 6], ["REFUND"]).join(" "),
      "SHIELD.limit 2 kw kq w WINDOW 10 60 COST 6 q QUOTA 10 DAY COST 6 REFUND");
  });
});

for (const [kind, connect] of Object.entries(standalone)) {
  describe(`through ${kind}, when the server is killed between reserve and settle`, () => {
    it("the settle is lost: it resolves degraded, is counted and logged, and is not sent again", async () => {
      const server = await new Server().start();
      const conn = await connect(server.port);
      try {
        const logger = recordingLogger();
        const l = new RateLimiter({ redis: conn.client, timeout: 100, logger, policies: [{ name: "tokens", limit: 10, window: HOUR }] });
        const reservation = await l.reserve("user:1", 10);
        assert.equal(reservation.allowed, true);
        assert.equal(reservation.degraded, false);

        await server.kill();

        const settled = await reservation.settle(4);
        assert.equal(settled.degraded, true);
        assert.ok(settled.error instanceof Error);
        assert.equal(settled.allowed, true);
        assert.equal(settled.remaining, null);
        assert.equal(l.stats.settlesLost, 1);
        assert.equal(logger.lines.length, 1, logger.lines.join("\n"));
        assert.match(logger.lines[0], /0 request\(s\) allowed \(fail-open\) and 0 refused \(fail-closed\) without Redis, and 1 settle\(s\) lost/);
        await assert.rejects(reservation.settle(4), /already settled/);

        // A reservation decided without Redis took nothing there: its settle sends nothing.
        const degraded = await l.reserve("user:2", 10);
        assert.equal(degraded.allowed, true);
        assert.equal(degraded.degraded, true);
        const redisCalls = l.stats.redisCalls;
        const after = await degraded.settle(4);
        assert.equal(after.degraded, true);
        assert.equal(l.stats.redisCalls, redisCalls);
        assert.equal(l.stats.settlesLost, 1);
      } finally {
        await conn.close();
        await server.stop();
      }
    });
  });
}
