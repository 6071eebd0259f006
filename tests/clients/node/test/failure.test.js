"use strict";
// The failure policy: the server is killed (or stalls) mid-test; each policy fails open or closed
// as declared, every such decision is counted, and they are logged once per interval.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const { RateLimiter } = require("../../../../clients/node");
const { Server, waitFor } = require("../support");
const { rateLimitItems } = require("../sf");
const { standalone } = require("./clients");

function recordingLogger() {
  const lines = [];
  return { lines, warn: (line) => lines.push(line) };
}

for (const [kind, connect] of Object.entries(standalone)) {
  describe(`through ${kind}, when the server is killed mid-test`, () => {
    it("fail-open policies allow, fail-closed ones refuse, each decision is counted and logged once per interval", async () => {
      const server = await new Server().start();
      const conn = await connect(server.port);
      try {
        const logger = recordingLogger();
        const limiter = new RateLimiter({
          redis: conn.client,
          timeout: 100,
          logger,
          logInterval: 60000,
          policies: [{ name: "lenient", limit: 100, window: 60, onFailure: "open" }],
        });
        const strict = new RateLimiter({
          redis: conn.client,
          timeout: 100,
          logger,
          failureRetryAfter: 2000,
          policies: [
            { name: "lenient", limit: 100, window: 60 },
            { name: "strict", algorithm: "quota", limit: 100, period: "hour", onFailure: "closed" },
          ],
        });
        assert.equal((await limiter.limit("user:1")).degraded, false);
        assert.equal((await strict.limit("user:1")).allowed, true);

        await server.kill();

        const open = [];
        for (let i = 0; i < 3; i++) open.push(await limiter.limit("user:1"));
        assert.ok(open.every((r) => r.allowed && r.degraded), "fail-open: allowed without Redis");
        assert.ok(open.every((r) => r.error instanceof Error));
        assert.equal(limiter.stats.failOpen, 3);
        assert.equal(open[0].headers.RateLimit, undefined, "nothing known to report as remaining");
        assert.deepEqual(rateLimitItems(open[0].headers["RateLimit-Policy"]), { lenient: { q: 100, w: 60 } });

        const closed = await strict.limit("user:1");
        assert.equal(closed.allowed, false);
        assert.equal(closed.degraded, true);
        assert.deepEqual(closed.violated, ["strict"]);
        assert.equal(closed.headers["Retry-After"], "2");
        assert.deepEqual(rateLimitItems(closed.headers.RateLimit), { strict: { r: 0, t: 2 } });
        assert.equal(strict.stats.failClosed, 1);

        // One line per limiter for its first failure; the other failures of the interval wait.
        assert.equal(logger.lines.length, 2, logger.lines.join("\n"));
        assert.match(logger.lines[0], /1 request\(s\) allowed \(fail-open\) and 0 refused/);
        assert.match(logger.lines[1], /0 request\(s\) allowed \(fail-open\) and 1 refused \(fail-closed\)/);

        // Back on its port, the server decides again.
        await server.start();
        await waitFor(async () => !(await limiter.limit("user:2")).degraded, { timeout: 15000, what: "the client to reconnect" });
        assert.equal((await strict.limit("user:2")).allowed, true);
      } finally {
        await conn.close();
        await server.stop();
      }
    });

    it("an error reply is decided by the failure policy too, and nothing is taken from the other policies", async () => {
      const server = await new Server().start();
      const conn = await connect(server.port);
      try {
        await server.command("RPUSH", "shield:{broken}:list", "x"); // the wrong type for the policy's key
        const limiter = new RateLimiter({ redis: conn.client, logger: recordingLogger(), policies: [
          { name: "other", limit: 10, window: 60 },
          { name: "list", limit: 10, window: 60, onFailure: "closed" },
        ] });
        const r = await limiter.limit("broken");
        assert.equal(r.allowed, false);
        assert.equal(r.degraded, true);
        assert.match(r.error.message, /WRONGTYPE/);
        assert.deepEqual(r.violated, ["list"]);
        assert.equal(limiter.stats.failClosed, 1);
        assert.equal(await server.command("EXISTS", "shield:{broken}:other"), 0, "SHIELD.limit's error wrote nothing");
      } finally {
        await conn.close();
        await server.stop();
      }
    });

    it("a server slower than the timeout is a failure too, decided within the timeout", async () => {
      const server = await new Server().start();
      const conn = await connect(server.port);
      try {
        const limiter = new RateLimiter({ redis: conn.client, timeout: 100, onFailure: "closed", logger: recordingLogger(),
          policies: [{ name: "p", limit: 10, window: 60 }, { name: "per-second", limit: 5, window: 1, burst: 10 }] });
        assert.equal((await limiter.limit("k")).allowed, true);
        process.kill(server.process.pid, "SIGSTOP"); // the server stalls: connected, and silent
        const started = Date.now();
        const r = await limiter.limit("k");
        const took = Date.now() - started;
        assert.equal(r.allowed, false);
        assert.equal(r.degraded, true);
        assert.equal(r.error.name, "TimeoutError");
        assert.ok(took >= 90 && took < 600, `decided after ${took} ms`);
        assert.deepEqual(rateLimitItems(r.headers["RateLimit-Policy"]), { p: { q: 10, w: 60 }, "per-second": { q: 10, w: 2 } },
          "q and w as SHIELD.limit reports them: a burst of 10 at 5 per second fills in 2 s");
      } finally {
        process.kill(server.process.pid, "SIGCONT");
        await conn.close();
        await server.stop();
      }
    });
  });
}
