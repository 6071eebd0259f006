"use strict";
// The only module that talks to Redis. `createTransport(client)` wraps an ioredis or node-redis
// client (standalone or cluster) in one method, `send(key, commands)`, which sends the commands
// through the client's generic command call to the node that owns `key`'s slot and resolves to
// the replies in order (an Error in place of an error reply). `shieldCall` (lib/shield-call.js)
// is its only caller, with one command (SHIELD.limit) per decision.

// CRC16/XMODEM, the hash Redis Cluster uses for key slots.
const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** The cluster slot of a key (honouring a {hash tag}). */
function keySlot(key) {
  let bytes = Buffer.from(String(key));
  const open = bytes.indexOf(0x7b); // {
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc % 16384;
}

function isIoredis(client) {
  return typeof client.call === "function" && typeof client.pipeline === "function";
}

function isNodeRedisCluster(client) {
  return typeof client.sendCommand === "function" && typeof client.getSlotMaster === "function";
}

// ioredis's Command class, from the client itself (this package does not depend on ioredis): a
// Cluster has no static Command, but the commands a pipeline queues are instances of it.
function ioredisCommandClass(client) {
  if (typeof client.constructor.Command === "function") return client.constructor.Command;
  const pipeline = client.pipeline();
  pipeline.call("PING");
  const queued = pipeline._queue && pipeline._queue[0];
  if (!queued) throw new TypeError("redis-shield: cannot find ioredis's Command class");
  return queued.constructor;
}

function settle(promises) {
  return Promise.all(promises.map((p) => p.then((v) => v, (error) => (error instanceof Error ? error : new Error(String(error))))));
}

function createTransport(client) {
  if (!client) throw new TypeError("redis-shield: a Redis client (ioredis or node-redis) is required");
  if (typeof client.send === "function" && client.kind === "custom") return client;
  if (isIoredis(client) && client.isCluster) {
    // ioredis routes commands it does not know (module commands) to a random node and follows
    // MOVED; giving each command its key's slot sends it straight to the owner.
    const Command = ioredisCommandClass(client);
    return {
      kind: "ioredis-cluster",
      send(key, commands) {
        const slot = keySlot(key);
        return settle(commands.map(([name, ...args]) => {
          const command = new Command(name, args, { replyEncoding: "utf8" });
          command.slot = slot;
          client.sendCommand(command);
          return command.promise;
        }));
      },
    };
  }
  if (isIoredis(client)) {
    return {
      kind: "ioredis",
      send(key, commands) {
        return settle(commands.map(([name, ...args]) => client.call(name, ...args)));
      },
    };
  }
  if (isNodeRedisCluster(client)) {
    // node-redis routes by the key it is given (the first argument): straight to the slot's owner.
    return {
      kind: "node-redis-cluster",
      send(key, commands) {
        return settle(commands.map((command) => client.sendCommand(key, false, command.map(String))));
      },
    };
  }
  if (typeof client.sendCommand === "function") {
    return {
      kind: "node-redis",
      send(key, commands) {
        return settle(commands.map((command) => client.sendCommand(command.map(String))));
      },
    };
  }
  throw new TypeError("redis-shield: unsupported Redis client: pass an ioredis Redis/Cluster or a node-redis client/cluster");
}

module.exports = { createTransport, keySlot };
