"use strict";
// Real redis-server processes for the Node client's tests: each on a free loopback port below
// 32768 (its cluster bus port too), in its own temporary folder, waited for by polling (never a
// fixed sleep), and stopped by the PID it was started with.
const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const Redis = require("ioredis");

const REPO = path.resolve(__dirname, "..", "..", "..");
const CLIENT = path.join(REPO, "clients", "node");
const HOST = "127.0.0.1";
const SERVER_BINARIES = {
  redis7: "/usr/bin/redis-server",
  redict7: "redict-server",
  valkey8: "valkey-server",
  "redis8.0": "redis-server",
  "redis8.6": "redis-server",
  "valkey8.1": "valkey-server",
  "valkey9.1": "valkey-server",
};

function serverBinary() {
  const kind = process.env.SHIELD_SERVER_KIND || "redis7";
  const name = SERVER_BINARIES[kind];
  if (!name) throw new Error(`unknown SHIELD_SERVER_KIND ${kind}`);
  const local = path.join(REPO, ".deps", "servers", kind, "bin", path.basename(name));
  if (fs.existsSync(local)) return local;
  if (kind === "redis7" && fs.existsSync(name)) return name;
  throw new Error(`no ${kind} server: run scripts/install-servers.sh ${kind}`);
}

async function waitFor(condition, { timeout = 15000, interval = 20, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last.message})` : ""}`);
}

let moduleCopy = null;
/** The module, copied once per test process (the lead may rebuild build/ meanwhile). */
async function shieldModule() {
  if (moduleCopy) return moduleCopy;
  const source = process.env.SHIELD_MODULE || path.join(REPO, "build", "libredis_shield.so");
  await waitFor(() => fs.existsSync(source) && fs.statSync(source).size > 0, { timeout: 120000, interval: 500, what: source });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shield-node-module-"));
  moduleCopy = path.join(dir, "libredis_shield.so");
  fs.copyFileSync(source, moduleCopy);
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  return moduleCopy;
}

function portFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

// 11000-21999, and bus ports 21000-31999: below the kernel's ephemeral range (32768 and up).
let nextPort = 11000 + ((process.pid * 53) % 11000);
async function freePort({ withBus = false } = {}) {
  for (let i = 0; i < 5000; i++) {
    nextPort = 11000 + ((nextPort - 11000 + 1) % 11000);
    if ((await portFree(nextPort)) && (!withBus || (await portFree(nextPort + 10000)))) return nextPort;
  }
  throw new Error("no free port");
}

class Server {
  constructor({ cluster = false, port } = {}) {
    this.cluster = cluster;
    this.port = port;
    this.process = null;
  }

  async start() {
    this.port = this.port || (await freePort({ withBus: this.cluster }));
    this.dir = this.dir || fs.mkdtempSync(path.join(os.tmpdir(), `shield-node-${this.port}-`));
    const args = ["--port", String(this.port), "--bind", HOST, "--dir", this.dir, "--save", "", "--appendonly", "no", "--enable-debug-command", "yes",
      "--logfile", path.join(this.dir, "server.log"), "--loadmodule", await shieldModule()];
    if (this.cluster) args.push("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000");
    this.process = spawn(serverBinary(), args, { stdio: "ignore" });
    this.exited = new Promise((resolve) => this.process.once("exit", resolve));
    await waitFor(async () => {
      if (this.process.exitCode !== null) throw new Error(`server exited: ${this.logTail()}`);
      return (await this.command("PING")) === "PONG";
    }, { what: `server on port ${this.port}` });
    return this;
  }

  logTail() {
    try {
      return fs.readFileSync(path.join(this.dir, "server.log"), "utf8").split("\n").slice(-10).join("\n");
    } catch {
      return "";
    }
  }

  /** One command over a fresh connection. */
  async command(...args) {
    const client = new Redis({ host: HOST, port: this.port, lazyConnect: true, maxRetriesPerRequest: 0,
      enableOfflineQueue: false, retryStrategy: () => null });
    client.on("error", () => {});
    try {
      await client.connect();
      return await client.call(...args);
    } finally {
      client.disconnect();
    }
  }

  /** INFO commandstats calls of one command (e.g. "shield.absorb"). */
  async calls(command) {
    const info = await this.command("INFO", "commandstats");
    const match = new RegExp(`^cmdstat_${command.replace(".", "\\.")}:calls=(\\d+)`, "mi").exec(info);
    return match ? Number(match[1]) : 0;
  }

  /** Kills the server (SIGKILL by its PID) and waits for it to be gone. */
  async kill() {
    if (this.process && this.process.exitCode === null && this.process.signalCode === null) {
      process.kill(this.process.pid, "SIGKILL");
      await this.exited;
    }
  }

  async stop() {
    await this.kill();
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Three cluster primaries (no replicas), slots assigned with CLUSTER ADDSLOTSRANGE, joined with MEET. */
class Cluster {
  constructor() {
    this.nodes = [new Server({ cluster: true }), new Server({ cluster: true }), new Server({ cluster: true })];
  }

  async start() {
    try {
      for (const node of this.nodes) await node.start();
      const share = Math.floor(16384 / this.nodes.length);
      for (const [i, node] of this.nodes.entries()) {
        const last = i === this.nodes.length - 1 ? 16383 : (i + 1) * share - 1;
        await node.command("CLUSTER", "ADDSLOTSRANGE", String(i * share), String(last));
      }
      for (const node of this.nodes.slice(1)) await node.command("CLUSTER", "MEET", HOST, String(this.nodes[0].port));
      await waitFor(async () => {
        const views = [];
        for (const node of this.nodes) {
          const info = await node.command("CLUSTER", "INFO");
          if (!/cluster_state:ok/.test(info) || !/cluster_known_nodes:3\b/.test(info)) return false;
          const slots = await node.command("CLUSTER", "SLOTS");
          views.push(JSON.stringify(slots.map((s) => [s[0], s[1], s[2][1]]).sort((a, b) => a[0] - b[0])));
        }
        return views.every((v) => v === views[0]);
      }, { timeout: 60000, interval: 50, what: "the cluster to be ok on every node" });
    } catch (error) {
      await this.stop();
      throw error;
    }
    return this;
  }

  ports() {
    return this.nodes.map((n) => n.port);
  }

  async calls(command) {
    let total = 0;
    for (const node of this.nodes) total += await node.calls(command);
    return total;
  }

  /** The node serving a slot. */
  async owner(slot) {
    const slots = await this.nodes[0].command("CLUSTER", "SLOTS");
    const range = slots.find((s) => s[0] <= slot && slot <= s[1]);
    return this.nodes.find((n) => n.port === Number(range[2][1]));
  }

  async stop() {
    for (const node of this.nodes) await node.stop();
  }
}

/** A free port for an HTTP server, and a request helper (keep-alive off; resolves status, headers, body). */
function request(port, { path: urlPath = "/", headers = {}, method = "GET" } = {}) {
  const http = require("node:http");
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, path: urlPath, method, headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

function npmPack(destination) {
  const done = spawnSync("npm", ["pack", "--pack-destination", destination, "--loglevel=error"], { cwd: CLIENT, encoding: "utf8" });
  if (done.status !== 0) throw new Error(`npm pack failed: ${done.stderr}`);
  return path.join(destination, done.stdout.trim().split("\n").pop());
}

module.exports = { REPO, CLIENT, HOST, Server, Cluster, waitFor, freePort, request, npmPack, shieldModule };
