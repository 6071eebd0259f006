"use strict";
// The Redis clients the tests drive the library with: ioredis and node-redis, standalone and cluster.
const Redis = require("ioredis");
const { createClient, createCluster } = require("redis");
const { describe, before, after } = require("node:test");
const { RateLimiter } = require("../../../../clients/node");
const { HOST, Server } = require("../support");

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

// A suite on one standalone server, repeated through each standalone client: declares
// describe(title), starts the server before its tests and stops it after, and for each client a
// describe(`through <client>`) whose tests `body(limiter, suite)` declares: limiter(policies,
// options) is a RateLimiter over that client's connection, suite.server the running server.
// `more()` declares the suite's tests that need no client.
function describeThroughEachClient(title, body, more = () => {}) {
  describe(title, () => {
    const suite = {};
    before(async () => {
      suite.server = await new Server().start();
    });
    after(async () => {
      await suite.server.stop();
    });
    for (const [kind, connect] of Object.entries(standalone)) {
      describe(`through ${kind}`, () => {
        let conn;
        before(async () => {
          conn = await connect(suite.server.port);
        });
        after(async () => {
          await conn.close();
        });
        body((policies, options = {}) => new RateLimiter({ redis: conn.client, policies, ...options }), suite);
      });
    }
    more();
  });
}

module.exports = { standalone, cluster, describeThroughEachClient };
