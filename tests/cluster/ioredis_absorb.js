// Sends SHIELD.absorb calls through an unmodified ioredis Cluster client and prints the replies.
// usage: node ioredis_absorb.js '{"ports": [p1, p2, p3], "calls": [["key", cap, period, tokens], ...]}'
"use strict";
const Redis = require("ioredis");

async function main() {
  const { ports, calls } = JSON.parse(process.argv[2]);
  const cluster = new Redis.Cluster(ports.map((port) => ({ host: "127.0.0.1", port })));
  try {
    const replies = [];
    for (const [key, ...numbers] of calls) {
      replies.push(await cluster.call("SHIELD.absorb", key, ...numbers));
    }
    console.log(JSON.stringify({ replies }));
  } finally {
    cluster.disconnect();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
