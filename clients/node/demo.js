#!/usr/bin/env node
"use strict";
// The demo of issue 16's contract: `node demo.js --port N --redis-url URL` serves GET / answering
// `hello`, limited per client IP to 5 per second with a burst of 10 and 1000 per day, both in one
// SHIELD.limit call (`per-second BUCKET 5 1 BURST 10` and `daily QUOTA 1000 DAY`, all or nothing).
// GET /health answers `ok`, unlimited.
// It uses ioredis, or node-redis when ioredis is not installed.
const http = require("node:http");
const path = require("node:path");
const { RateLimiter, createHttpCore } = require("./index.js");

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function load(name) {
  // Installed next to the application, or where the repository's tests install it.
  const paths = [process.cwd(), __dirname, path.join(__dirname, "..", "..", "tests", "clients", "node")];
  try {
    return require(require.resolve(name, { paths }));
  } catch {
    return null;
  }
}

async function connect(url) {
  const Redis = load("ioredis");
  if (Redis) return { redis: new Redis(url, { maxRetriesPerRequest: 1 }), close: (r) => r.disconnect() };
  const nodeRedis = load("redis");
  if (nodeRedis) {
    const client = nodeRedis.createClient({ url });
    client.on("error", () => {});
    await client.connect();
    return { redis: client, close: (r) => r.quit() };
  }
  throw new Error("demo.js needs ioredis or redis (node-redis): npm install ioredis");
}

async function main() {
  const port = Number(option("port", "8080"));
  const url = option("redis-url", "redis://127.0.0.1:6379");
  const { redis, close } = await connect(url);
  const limiter = new RateLimiter({
    redis,
    prefix: "demo:",
    policies: [
      { name: "per-second", algorithm: "bucket", limit: 5, window: 1, burst: 10 },
      { name: "daily", algorithm: "quota", limit: 1000, period: "day" },
    ],
  });
  const core = createHttpCore({ limiter, key: "ip", exempt: ["/health"] });
  const server = http.createServer(async (req, res) => {
    const pathname = (req.url || "/").split("?")[0];
    if (req.method === "GET" && pathname === "/health") return res.end("ok\n");
    if (req.method !== "GET" || pathname !== "/") {
      res.statusCode = 404;
      return res.end("not found\n");
    }
    try {
      const result = await core.check(req);
      for (const [name, value] of Object.entries(core.headers(result))) res.setHeader(name, value);
      if (!result.allowed) {
        res.statusCode = 429;
        res.setHeader("Content-Type", "application/problem+json");
        return res.end(JSON.stringify(core.problem(result)));
      }
      res.setHeader("Content-Type", "text/plain");
      res.end("hello\n");
    } catch (error) {
      res.statusCode = 500;
      res.end(`${error.message}\n`);
    }
  });
  server.listen(port, "127.0.0.1", () => console.log(`redis-shield demo on http://127.0.0.1:${port}/ (Redis ${url})`));
  const stop = () => server.close(() => Promise.resolve(close(redis)).finally(() => process.exit(0)));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
