"use strict";
// The Express and Fastify middleware, in real apps listening on loopback ports, against a real server.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const express = require("express");
const Fastify = require("fastify");
const { RateLimiter, shieldExpress, shieldFastify } = require("../../../../clients/node");
const { Server, request, HOST } = require("../support");
const { rateLimitItems } = require("../sf");
const { standalone } = require("./clients");

let server;
let conn;
before(async () => {
  server = await new Server().start();
  conn = await standalone.ioredis(server.port);
});
after(async () => {
  await conn.close();
  await server.stop();
});

const limiterOf = (policies) => new RateLimiter({ redis: conn.client, prefix: `mw-${crypto.randomBytes(4).toString("hex")}:`, policies });
const small = () => limiterOf([{ name: "small", limit: 2, window: 60 }, { name: "daily", algorithm: "quota", limit: 1000, period: "day" }]);

// Each framework builds an app from { options, routes } and returns { port, close }.
const frameworks = {
  express: async (options, { routeLimiter, user } = {}) => {
    const app = express();
    if (user) app.use((req, res, next) => ((req.user = { id: req.get("x-test-user") }), next()));
    // A route with its own policies is left out of the app-wide middleware and mounts its own.
    app.use(shieldExpress({ ...options, exempt: [...(options.exempt || []), "/search"] }));
    app.get("/", (req, res) => res.send("hello"));
    app.get("/health", (req, res) => res.send("ok"));
    app.post("/upload", (req, res) => res.send("stored"));
    app.get("/search", shieldExpress({ ...options, limiter: routeLimiter || options.limiter, exempt: [] }), (req, res) => res.send("found"));
    const listener = await new Promise((resolve) => {
      const l = app.listen(0, HOST, () => resolve(l));
    });
    return { port: listener.address().port, close: () => new Promise((resolve) => listener.close(resolve)) };
  },
  fastify: async (options, { routeLimiter, user } = {}) => {
    const app = Fastify();
    if (user) app.addHook("onRequest", async (request) => { request.user = { id: request.headers["x-test-user"] }; });
    await app.register(shieldFastify, options);
    app.get("/", async () => "hello");
    app.get("/health", { config: { rateLimit: false } }, async () => "ok");
    app.post("/upload", async () => "stored");
    app.get("/search", { config: { rateLimit: { limiter: routeLimiter || options.limiter } } }, async () => "found");
    await app.listen({ port: 0, host: HOST });
    return { port: app.server.address().port, close: () => app.close() };
  },
};

for (const [name, build] of Object.entries(frameworks)) {
  describe(`the ${name} middleware`, () => {
    it("sets RateLimit-Policy and RateLimit on every response and answers 429 with Retry-After and a problem+json body naming the policy", async () => {
      const app = await build({ limiter: small(), exempt: ["/health"] });
      try {
        const replies = [];
        for (let i = 0; i < 3; i++) replies.push(await request(app.port));
        assert.deepEqual(replies.map((r) => r.status), [200, 200, 429]);
        assert.equal(replies[0].body, "hello");
        for (const reply of replies) {
          assert.deepEqual(rateLimitItems(reply.headers["ratelimit-policy"]), { small: { q: 2, w: 60 }, daily: { q: 1000, w: 86400 } });
          const now = rateLimitItems(reply.headers.ratelimit);
          assert.ok(now.small.r <= 2 && now.small.t >= 0);
        }
        assert.deepEqual(replies.map((r) => rateLimitItems(r.headers.ratelimit).small.r), [1, 0, 0]);
        const refused = replies[2];
        assert.match(refused.headers["content-type"], /^application\/problem\+json/);
        assert.ok(Number(refused.headers["retry-after"]) >= 29 && Number(refused.headers["retry-after"]) <= 30);
        const problem = JSON.parse(refused.body);
        assert.equal(problem.status, 429);
        assert.equal(problem.title, "Too Many Requests");
        assert.deepEqual(problem.violated, ["small"]);
        assert.equal(refused.headers["x-ratelimit-limit"], undefined, "legacy headers only when asked for");
      } finally {
        await app.close();
      }
    });

    it("leaves exempt routes alone", async () => {
      const app = await build({ limiter: small(), exempt: ["/health"] });
      try {
        for (let i = 0; i < 4; i++) {
          const reply = await request(app.port, { path: "/health" });
          assert.equal(reply.status, 200);
          assert.equal(reply.headers["ratelimit-policy"], undefined);
        }
      } finally {
        await app.close();
      }
    });

    it("believes X-Forwarded-For only from a trusted proxy", async () => {
      const untrusted = await build({ limiter: small(), trustedProxies: ["10.0.0.0/8"] });
      try {
        // The peer (127.0.0.1) is not trusted: each made-up address is still 127.0.0.1's budget.
        const statuses = [];
        for (let i = 0; i < 3; i++) statuses.push((await request(untrusted.port, { headers: { "x-forwarded-for": `203.0.113.${i}` } })).status);
        assert.deepEqual(statuses, [200, 200, 429]);
      } finally {
        await untrusted.close();
      }
      const trusted = await build({ limiter: small(), trustedProxies: ["127.0.0.1", "10.0.0.0/8"] });
      try {
        // Through trusted proxies, the client is the right-most untrusted address; what it wrote
        // to the left of it does not count.
        const via = (client, spoofed) => request(trusted.port, { headers: { "x-forwarded-for": `${spoofed}, ${client}, 10.1.2.3` } });
        const statuses = [];
        for (let i = 0; i < 3; i++) statuses.push((await via("198.51.100.7", `192.0.2.${i}`)).status);
        assert.deepEqual(statuses, [200, 200, 429]);
        assert.equal((await via("198.51.100.8", "192.0.2.1")).status, 200, "another client has its own budget");
      } finally {
        await trusted.close();
      }
    });

    it("limits by a header, by the authenticated user, or by a function", async () => {
      for (const [key, headersOf, extra] of [
        [{ header: "x-api-key" }, (i) => ({ "x-api-key": `key-${i}` }), {}],
        ["user", (i) => ({ "x-test-user": `u${i}` }), { user: true }],
        [(req) => `tenant:${req.headers["x-tenant"]}`, (i) => ({ "x-tenant": `t${i}` }), {}],
      ]) {
        const app = await build({ limiter: small(), key }, extra);
        try {
          const statuses = [];
          for (let i = 0; i < 3; i++) statuses.push((await request(app.port, { headers: headersOf(1) })).status);
          statuses.push((await request(app.port, { headers: headersOf(2) })).status);
          assert.deepEqual(statuses, [200, 200, 429, 200], String(key));
        } finally {
          await app.close();
        }
      }
    });

    it("keeps a header's value out of Redis: the key holds its SHA-256 digest", async () => {
      const limiter = small();
      const app = await build({ limiter, key: { header: "x-api-key" } });
      try {
        assert.equal((await request(app.port, { headers: { "x-api-key": "secret-api-key-1234" } })).status, 200);
        const digest = crypto.createHash("sha256").update("secret-api-key-1234").digest("hex").slice(0, 32);
        const keys = await server.command("KEYS", `${limiter.prefix}*`);
        assert.deepEqual(keys.sort(), [`${limiter.prefix}{x-api-key:${digest}}:daily`, `${limiter.prefix}{x-api-key:${digest}}:small`]);
      } finally {
        await app.close();
      }
    });

    it("uses a route's own policies and takes the cost from the request", async () => {
      const search = limiterOf([{ name: "search", limit: 1, window: 60 }]);
      const costly = limiterOf([{ name: "bytes", limit: 10, window: 60 }]);
      const app = await build({ limiter: costly, cost: (req) => Number(req.headers["x-cost"] || 1) }, { routeLimiter: search });
      try {
        const first = await request(app.port, { path: "/search" });
        assert.equal(first.status, 200);
        assert.deepEqual(Object.keys(rateLimitItems(first.headers["ratelimit-policy"])), ["search"]);
        const second = await request(app.port, { path: "/search" });
        assert.equal(second.status, 429);
        assert.deepEqual(JSON.parse(second.body).violated, ["search"]);
        const big = await request(app.port, { path: "/upload", method: "POST", headers: { "x-cost": "7" } });
        assert.equal(rateLimitItems(big.headers.ratelimit).bytes.r, 3);
        const tooBig = await request(app.port, { path: "/upload", method: "POST", headers: { "x-cost": "4" } });
        assert.equal(tooBig.status, 429);
      } finally {
        await app.close();
      }
    });

    it("sends the legacy X-RateLimit headers when asked to", async () => {
      const app = await build({ limiter: small(), legacyHeaders: true });
      try {
        const reply = await request(app.port);
        assert.equal(reply.headers["x-ratelimit-limit"], "2");
        assert.equal(reply.headers["x-ratelimit-remaining"], "1");
        assert.ok(Number(reply.headers["x-ratelimit-reset"]) > 0);
      } finally {
        await app.close();
      }
    });
  });
}
