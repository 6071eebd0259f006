"use strict";
// The RateLimiter on a real 3-primary cluster, through ioredis's and node-redis's cluster clients.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { RateLimiter } = require("../../../../clients/node");
const { keySlot } = require("../../../../clients/node/lib/redis");
const { Cluster, waitFor } = require("../support");
const { cluster: clients } = require("./clients");

describe("the rate limiter on a cluster", () => {
  let cluster;
  before(async () => {
    cluster = await new Cluster().start();
  });
  after(async () => {
    if (cluster) await cluster.stop();
  });

  it("the library's slot of a key is the cluster's CLUSTER KEYSLOT", async () => {
    for (const key of ["a", "user:42", "shield:{ip:10.0.0.1}:burst", "{}x", "x{}y{z}", "ключ"]) {
      assert.equal(keySlot(key), await cluster.nodes[0].command("CLUSTER", "KEYSLOT", key), key);
    }
  });

  for (const [kind, connect] of Object.entries(clients)) {
    it(`through ${kind}, every policy of a caller lives on the primary owning the caller's slot, one call per decision, without redirects`, async () => {
      const conn = await connect(cluster.ports());
      try {
        const limiter = new RateLimiter({
          redis: conn.client,
          policies: [
            { name: "per-second", limit: 5, window: 1, burst: 10 },
            { name: "steady", algorithm: "gcra", limit: 100, window: 1 },
            { name: "minute", algorithm: "window", limit: 50, window: 60 },
            { name: "daily", algorithm: "quota", limit: 1000, period: "day" },
          ],
        });
        // Six callers or more, until they live on two primaries at least (random names alone all
        // land on one primary once in 243 runs).
        const keys = [];
        const owners = new Set();
        while (keys.length < 6 || owners.size < 2) {
          const key = `${kind}-${crypto.randomBytes(4).toString("hex")}`;
          keys.push(key);
          owners.add((await cluster.owner(keySlot(key))).port);
        }
        const movedBefore = await redirects(cluster);
        const callsBefore = await cluster.calls("shield.limit");
        for (const key of keys) {
          const results = [];
          for (let i = 0; i < 11; i++) results.push(await limiter.limit(key));
          assert.deepEqual(results.map((r) => r.allowed), [...Array(10).fill(true), false], key);
          assert.deepEqual(results[10].violated, ["per-second"]);
          const owner = await cluster.owner(keySlot(key));
          assert.equal(await owner.command("GET", `shield:{${key}}:daily`), "10", "the refused call took nothing");
        }
        assert.equal(await redirects(cluster), movedBefore, "no MOVED: each call went straight to the owner");
        assert.equal((await cluster.calls("shield.limit")) - callsBefore, 11 * keys.length, "one SHIELD.limit per decision");
      } finally {
        await conn.close();
      }
    });
  }

  for (const [kind, connect] of Object.entries(clients)) {
    it(`through ${kind}, a call sent on a stale slot map after the caller's slot moved is redirected and counted on the new owner`, async () => {
      const conn = await connect(cluster.ports());
      try {
        const limiter = new RateLimiter({ redis: conn.client, denyCache: false, policies: [
          { name: "per-second", limit: 5, window: 1, burst: 10 },
          { name: "daily", algorithm: "quota", limit: 1000, period: "day" },
        ] });
        const key = `moved-${kind}-${crypto.randomBytes(4).toString("hex")}`;
        const slot = keySlot(key);
        assert.equal((await limiter.limit(key)).allowed, true);
        const from = await cluster.owner(slot);
        const to = cluster.nodes.find((n) => n !== from);
        await moveSlot(cluster, slot, from, to);
        const movedBefore = await redirects(cluster);
        for (let i = 0; i < 3; i++) assert.equal((await limiter.limit(key)).allowed, true);
        assert.ok((await redirects(cluster)) > movedBefore, "the old owner answered MOVED");
        assert.equal(await to.command("GET", `shield:{${key}}:daily`), "4", "counted on the new owner");
        assert.equal(await from.command("CLUSTER", "COUNTKEYSINSLOT", slot), 0, "nothing counted on the old owner");
      } finally {
        await conn.close();
      }
    });
  }
});

/** Moves a slot and its keys from one primary to another (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE). */
async function moveSlot(cluster, slot, from, to) {
  const fromId = await from.command("CLUSTER", "MYID");
  const toId = await to.command("CLUSTER", "MYID");
  await to.command("CLUSTER", "SETSLOT", slot, "IMPORTING", fromId);
  await from.command("CLUSTER", "SETSLOT", slot, "MIGRATING", toId);
  const keys = await from.command("CLUSTER", "GETKEYSINSLOT", slot, 100);
  if (keys.length > 0) await from.command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", ...keys);
  for (const node of cluster.nodes) await node.command("CLUSTER", "SETSLOT", slot, "NODE", toId);
  await waitFor(async () => {
    for (const node of cluster.nodes) {
      const slots = await node.command("CLUSTER", "SLOTS");
      const range = slots.find((r) => r[0] <= slot && slot <= r[1]);
      if (!range || Number(range[2][1]) !== to.port) return false;
    }
    return true;
  }, { what: `every node to see slot ${slot} on port ${to.port}` });
}

async function redirects(cluster) {
  let moved = 0;
  for (const node of cluster.nodes) {
    const info = await node.command("INFO", "errorstats");
    const match = /errorstat_MOVED:count=(\d+)/.exec(info);
    moved += match ? Number(match[1]) : 0;
  }
  return moved;
}
