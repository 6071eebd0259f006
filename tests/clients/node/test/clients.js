"use strict";
// The Redis clients the tests drive the library with: ioredis and node-redis, standalone and cluster.
const Redis = require("ioredis");
const { createClient, createCluster } = require("redis");
const { HOST } = require("../support");

const standalone = {
  ioredis: async (port) => {
    const client = new Redis({ host: HOST, port, maxRetriesPerRequest: 1 });
    client.on("error", () => {});
    return { client, close: () => client.disconnect() };
  },
  "node-redis": async (port) => {
    const client = createClient({ socket: { host: HOST, port, reconnectStrategy: 50 } });
    client.on("error", () => {});
    await client.connect();
    return { client, close: () => client.disconnect().catch(() => {}) };
  },
};

const cluster = {
  ioredis: async (ports) => {
    const client = new Redis.Cluster(ports.map((port) => ({ host: HOST, port })));
    client.on("error", () => {});
    await new Promise((resolve, reject) => {
      client.once("ready", resolve);
      client.once("end", () => reject(new Error("cluster client ended")));
    });
    return { client, close: () => client.disconnect() };
  },
  "node-redis": async (ports) => {
    const client = createCluster({ rootNodes: ports.map((port) => ({ url: `redis://${HOST}:${port}` })) });
    client.on("error", () => {});
    await client.connect();
    return { client, close: () => client.disconnect().catch(() => {}) };
  },
};

module.exports = { standalone, cluster };
