"use strict";
// `node clients/node/demo.js --port N --redis-url URL`: GET / answers hello, 5 per second with a
// burst of 10 and 1000 per day per client IP, in one SHIELD.limit call. Twelve quick requests: ten
// 200s, then 429s that take nothing from the daily quota.
const { it } = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const http = require("node:http");
const path = require("node:path");
const { CLIENT, HOST, Server, freePort, waitFor, request } = require("../support");
const { rateLimitItems } = require("../sf");

it("the demo answers 12 quick requests with ten 200s and then 429s that leave the daily count unchanged", async () => {
  const server = await new Server().start();
  const port = await freePort();
  const demo = spawn(process.execPath, [path.join(CLIENT, "demo.js"), "--port", String(port), "--redis-url", `redis://${HOST}:${server.port}`],
    { cwd: CLIENT, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  demo.stdout.on("data", (chunk) => (output += chunk));
  demo.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise((resolve) => demo.once("exit", resolve));
  try {
    await waitFor(async () => (await request(port, { path: "/health" })).status === 200, { what: "the demo to listen" });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const replies = [];
    for (let i = 0; i < 12; i++) {
      replies.push(await new Promise((resolve, reject) => {
        http.get({ host: HOST, port, path: "/", agent }, (res) => {
          let body = "";
          res.on("data", (c) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
        }).on("error", reject);
      }));
    }
    agent.destroy();
    const transcript = replies.map((r, i) =>
      `${String(i + 1).padStart(2)} ${r.status} RateLimit: ${r.headers.ratelimit}` +
      `${r.headers["retry-after"] ? ` Retry-After: ${r.headers["retry-after"]}` : ""} ${r.body.trim()}`).join("\n");
    console.log(`demo: ${output.trim()}\n${transcript}`);
    assert.deepEqual(replies.map((r) => r.status), [...Array(10).fill(200), 429, 429], transcript);
    assert.ok(replies.slice(0, 10).every((r) => r.body === "hello\n"));
    assert.deepEqual(rateLimitItems(replies[0].headers["ratelimit-policy"]), { "per-second": { q: 10, w: 2 }, daily: { q: 1000, w: 86400 } });
    const now = replies.map((r) => rateLimitItems(r.headers.ratelimit));
    assert.deepEqual(now.map((n) => n["per-second"].r), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0]);
    assert.deepEqual(now.map((n) => n.daily.r), [999, 998, 997, 996, 995, 994, 993, 992, 991, 990, 990, 990],
      "a 429 takes nothing from the daily quota");
    assert.deepEqual(JSON.parse(replies[10].body).violated, ["per-second"]);
    assert.equal(replies[10].headers["retry-after"], "1");
    assert.equal(await server.command("GET", `demo:{ip:${HOST}}:daily`), "10", "the daily count is the ten 200s");
    assert.equal(await server.calls("shield.limit"), 11, "one call per request; the 12th from the deny cache");
  } finally {
    if (demo.exitCode === null) process.kill(demo.pid, "SIGTERM");
    await exited;
    await server.stop();
  }
});
