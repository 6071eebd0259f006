#!/usr/bin/env node
"use strict";
// The Node client's benchmark, run by hand (no test runs it):
//   flock /tmp/shield.lock node bench/clients/node_middleware.js [--rounds 7] [--requests 2000] [--no-write]
// Against one redis-server 7 with Shield, started here on a free loopback port (and stopped by its
// PID), it measures in-process the Express middleware of clients/node per request against the bare
// handler (the middleware function called with minimal request/response objects, then the
// handler), in interleaved rounds, and reports medians; then a flood of 10000 requests from one
// client limited to 10 per minute, with and without the deny cache, counting the SHIELD.limit calls
// that reached Redis (INFO commandstats). Every decision is one SHIELD.limit call, whatever the
// number of policies. Writes bench/results/clients-node.json unless --no-write.
// Needs bash tests/clients/node/install-deps.sh (ioredis) and the module (SHIELD_MODULE, default
// build/libredis_shield.so).
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const REPO = path.resolve(__dirname, "..", "..");
const { Server } = require(path.join(REPO, "tests", "clients", "node", "support"));
const Redis = require(require.resolve("ioredis", { paths: [path.join(REPO, "tests", "clients", "node")] }));
const { RateLimiter, shieldExpress } = require(path.join(REPO, "clients", "node"));

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const ROUNDS = option("rounds", 7);
const REQUESTS = option("requests", 2000);

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const round1 = (x) => Math.round(x * 10) / 10;

// One request through `middleware` (or none) and the handler; resolves when the response ends.
function serve(middleware, handler, ip) {
  return new Promise((resolve) => {
    const req = { method: "GET", url: "/", path: "/", headers: {}, socket: { remoteAddress: ip } };
    const res = { statusCode: 200, headers: {}, setHeader(n, v) { this.headers[n] = v; }, end() { resolve(this.statusCode); } };
    if (!middleware) return handler(req, res);
    middleware(req, res, (error) => (error ? resolve(500) : handler(req, res)));
  });
}
const hello = (req, res) => res.end("hello");

async function perRequest(middleware, ipOf) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < REQUESTS; i++) await serve(middleware, hello, ipOf(i));
  return Number(process.hrtime.bigint() - started) / 1000 / REQUESTS;
}

async function main() {
  const server = await new Server().start();
  const redis = new Redis({ host: "127.0.0.1", port: server.port });
  try {
    const one = new RateLimiter({ redis, prefix: "b1:", policies: [{ name: "big", limit: 1e12, window: 60 }] });
    const two = new RateLimiter({ redis, prefix: "b2:", policies: [
      { name: "big", limit: 1e12, window: 60 }, { name: "daily", algorithm: "quota", limit: 1e12, period: "day" }] });
    const refusedRedis = new RateLimiter({ redis, prefix: "b3:", denyCache: false, policies: [{ name: "tiny", limit: 1, window: 3600 }] });
    const refusedCache = new RateLimiter({ redis, prefix: "b4:", policies: [{ name: "tiny", limit: 1, window: 3600 }] });
    const three = new RateLimiter({ redis, prefix: "b5:", policies: [
      { name: "big", limit: 1e12, window: 60 }, { name: "steady", algorithm: "gcra", limit: 1e6, window: 1 },
      { name: "daily", algorithm: "quota", limit: 1e12, period: "day" }] });
    const cases = {
      "bare handler": [null, () => "10.0.0.1"],
      "middleware, 1 policy, allowed": [shieldExpress({ limiter: one }), (i) => `10.1.${(i >> 8) & 255}.${i & 255}`],
      "middleware, 2 policies, allowed": [shieldExpress({ limiter: two }), (i) => `10.2.${(i >> 8) & 255}.${i & 255}`],
      "middleware, 3 policies (bucket, gcra, quota), allowed": [shieldExpress({ limiter: three }), (i) => `10.5.${(i >> 8) & 255}.${i & 255}`],
      "middleware, refused by Redis (no deny cache)": [shieldExpress({ limiter: refusedRedis }), () => "10.3.0.1"],
      "middleware, refused by the deny cache": [shieldExpress({ limiter: refusedCache }), () => "10.4.0.1"],
    };
    for (const [middleware, ipOf] of Object.values(cases)) await perRequest(middleware, ipOf); // warm-up
    const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, [middleware, ipOf]] of Object.entries(cases)) samples[name].push(await perRequest(middleware, ipOf));
    }
    const us = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, round1(median(values))]));
    const overhead = Object.fromEntries(Object.entries(us).filter(([name]) => name !== "bare handler")
      .map(([name, value]) => [name, round1(value - us["bare handler"])]));

    const flood = {};
    for (const [label, denyCache] of [["without deny cache", false], ["with deny cache", {}]]) {
      const limiter = new RateLimiter({ redis, prefix: `flood-${denyCache ? "c" : "n"}:`, denyCache, policies: [{ name: "minute", limit: 10, window: 60 }] });
      const middleware = shieldExpress({ limiter });
      const before = await server.calls("shield.limit");
      const started = process.hrtime.bigint();
      for (let i = 0; i < 10000; i++) await serve(middleware, hello, "198.51.100.1");
      const elapsed = Number(process.hrtime.bigint() - started) / 1000;
      flood[label] = { requests: 10000, shield_limit_calls: (await server.calls("shield.limit")) - before, us_per_request: round1(elapsed / 10000) };
    }
    const result = {
      what: "Express middleware of clients/node per request (one SHIELD.limit call per decision), in-process, against redis-server 7 with Shield on loopback; medians of rounds",
      node: process.version,
      machine: os.arch(),
      rounds: ROUNDS,
      requests_per_round: REQUESTS,
      us_per_request: us,
      overhead_us_over_bare: overhead,
      flood_one_client_10_per_minute: flood,
      deny_cache_saves_calls: flood["without deny cache"].shield_limit_calls - flood["with deny cache"].shield_limit_calls,
      date: new Date().toISOString().slice(0, 10),
    };
    console.log(JSON.stringify(result, null, 2));
    if (!process.argv.includes("--no-write")) {
      fs.writeFileSync(path.join(REPO, "bench", "results", "clients-node.json"), `${JSON.stringify(result, null, 2)}\n`);
    }
  } finally {
    redis.disconnect();
    await server.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
