"use strict";
// Every snippet of docs/clients/node.md, node-express.md and node-fastify.md runs here as pasted,
// against a real server (and a 3-primary cluster for the cluster snippet).
//
// - ```js blocks run with this node, from a temporary application folder whose node_modules hold
//   redis-shield (clients/node) and the test's npm packages; a block with `import` lines runs as
//   an ES module. A block that calls `.listen(` is an HTTP server: it must answer GET / with 200
//   and a RateLimit-Policy that parses as a structured field list; then it is stopped by its PID.
//   Any other block must exit with 0.
// - ```bash blocks run with bash from the repository's folder, `node` being this node.
// - ```text blocks are example output, not run.
// - `// prints: X` (js) and `# prints: X` (bash) comments are the lines the block must print, in
//   that order (other lines may come between them).
// The only change made to a snippet: the ports it names (6379 Redis, 7001-7003 cluster primaries,
// 3000 and 8080 HTTP) become this test's. Every key is flushed before each snippet.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { REPO, CLIENT, Server, Cluster, freePort, waitFor, request } = require("../support");
const { parseList } = require("../sf");

const HERE = path.resolve(__dirname, "..");
const PAGES = ["node.md", "node-express.md", "node-fastify.md"].map((name) => path.join(REPO, "docs", "clients", name));
const TIMEOUT = 30000;

function snippets(file) {
  const out = [];
  const lines = fs.readFileSync(file, "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end] !== "```") end++;
    out.push({ file: path.basename(file), line: start, lang: open[1], text: lines.slice(start, end).join("\n") + "\n" });
    i = end;
  }
  return out;
}

function expectations(text, marker) {
  const re = new RegExp(`${marker} prints: (.*)$`);
  return text.split("\n").map((line) => re.exec(line)).filter(Boolean).map((m) => m[1].trim());
}

function assertPrinted(output, expected, label) {
  const lines = output.split("\n").map((l) => l.trim()).filter(Boolean);
  let at = 0;
  for (const want of expected) {
    while (at < lines.length && lines[at] !== want) at++;
    assert.ok(at < lines.length, `${label}: expected a line ${JSON.stringify(want)} in:\n${output}`);
    at++;
  }
}

function run(command, args, { cwd, env }) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c) => (output += c));
    child.stderr.on("data", (c) => (output += c));
    const timer = setTimeout(() => process.kill(-child.pid, "SIGKILL"), TIMEOUT);
    child.on("close", (code) => {
      clearTimeout(timer);
      try {
        process.kill(-child.pid, "SIGKILL"); // anything the snippet left running in its group
      } catch {}
      resolve({ code, output });
    });
  });
}

describe("the Node client's documentation", () => {
  let server;
  let cluster;
  let app;
  let env;
  before(async () => {
    server = await new Server().start();
    cluster = await new Cluster().start();
    app = fs.mkdtempSync(path.join(os.tmpdir(), "shield-node-docs-"));
    const modules = path.join(app, "node_modules");
    fs.mkdirSync(modules);
    fs.symlinkSync(CLIENT, path.join(modules, "redis-shield"));
    for (const name of fs.readdirSync(path.join(HERE, "node_modules"))) {
      if (!name.startsWith(".")) fs.symlinkSync(path.join(HERE, "node_modules", name), path.join(modules, name));
    }
    // `node` in a bash snippet is the node running this test (Node 18 or 20).
    fs.mkdirSync(path.join(app, "bin"));
    fs.writeFileSync(path.join(app, "bin", "node"), `#!/bin/sh\nexec "${process.execPath}" "$@"\n`, { mode: 0o755 });
    env = { ...process.env, PATH: `${path.join(app, "bin")}:${process.env.PATH}` };
  });
  after(async () => {
    if (server) await server.stop();
    if (cluster) await cluster.stop();
    if (app) fs.rmSync(app, { recursive: true, force: true });
  });

  async function localize(text) {
    const ports = { 6379: server.port, 7001: cluster.nodes[0].port, 7002: cluster.nodes[1].port, 7003: cluster.nodes[2].port };
    const http = await freePort();
    ports[3000] = http;
    ports[8080] = http;
    return { text: text.replace(/(?<!\d)(6379|700[1-3]|3000|8080)(?!\d)/g, (p) => String(ports[p])), http };
  }

  async function flush() {
    await server.command("FLUSHALL");
    for (const node of cluster.nodes) await node.command("FLUSHALL");
  }

  const all = PAGES.flatMap(snippets);
  it("the pages have snippets, every one of a kind this test runs or shows as output", () => {
    assert.ok(all.filter((s) => s.lang === "js").length >= 9);
    for (const s of all) assert.ok(["js", "bash", "text"].includes(s.lang), `${s.file}:${s.line}: \`\`\`${s.lang}`);
  });

  for (const snippet of all.filter((s) => s.lang !== "text")) {
    const label = `${snippet.file}:${snippet.line}`;
    it(`the ${snippet.lang} snippet at ${label} runs as pasted`, async () => {
      await flush();
      const { text, http } = await localize(snippet.text);
      if (snippet.lang === "bash") {
        const { code, output } = await run("bash", ["-c", text], { cwd: REPO, env });
        assert.equal(code, 0, `${label}:\n${output}`);
        assertPrinted(output, expectations(snippet.text, "#"), label);
        return;
      }
      const file = path.join(app, `snippet-${snippet.line}.${/^import /m.test(text) ? "mjs" : "js"}`);
      fs.writeFileSync(file, text);
      if (!text.includes(".listen(")) {
        const { code, output } = await run(process.execPath, [file], { cwd: app, env });
        assert.equal(code, 0, `${label}:\n${output}`);
        assertPrinted(output, expectations(snippet.text, "//"), label);
        return;
      }
      const child = spawn(process.execPath, [file], { cwd: app, env, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (c) => (output += c));
      child.stderr.on("data", (c) => (output += c));
      const exited = new Promise((resolve) => child.once("exit", resolve));
      try {
        const reply = await waitFor(async () => {
          if (child.exitCode !== null) throw new Error(`exited: ${output}`);
          return request(http);
        }, { timeout: TIMEOUT, what: `${label} to listen` });
        assert.equal(reply.status, 200, `${label}: ${reply.body}`);
        assert.ok(parseList(reply.headers["ratelimit-policy"]).length >= 1);
        assert.ok(parseList(reply.headers.ratelimit).length >= 1);
      } finally {
        if (child.exitCode === null) process.kill(child.pid, "SIGKILL");
        await exited;
      }
    });
  }
});
