// Sends SHIELD.absorb calls through an unmodified node-redis v4 cluster client and prints the replies.
// usage: node node_redis_absorb.js '{"ports": [p1, p2, p3], "calls": [["key", cap, period, tokens], ...]}'
"use strict";
const { createCluster } = require("redis");

async function main() {
  const { ports, calls } = JSON.parse(process.argv[2]);
  const cluster = createCluster({
    rootNodes: ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })),
  });
  cluster.on("error", (error) => console.error(error));
  await cluster.connect();
  try {
    const replies = [];
    for (const [key, ...numbers] of calls) {
      // v4: sendCommand(firstKey, isReadonly, args) routes by firstKey's slot; absorb writes.
      replies.push(
        await cluster.sendCommand(key, false, ["SHIELD.absorb", key, ...numbers.map(String)]),
      );
    }
    console.log(JSON.stringify({ replies }));
  } finally {
    await cluster.disconnect();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
