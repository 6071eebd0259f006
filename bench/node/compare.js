// ioredis calling SHIELD.absorb vs rate-limiter-flexible's RateLimiterRedis, same server, same
// concurrency, same key space. Prints one JSON object: ops/s per limiter.
// Usage: node compare.js <port> <concurrency> <operations>
'use strict';
const Redis = require('ioredis');
const { RateLimiterRedis } = require('rate-limiter-flexible');

const [port, concurrency, operations] = process.argv.slice(2).map(Number);
const KEYSPACE = 100000;

async function drive(name, once) {
  let next = 0;
  const started = process.hrtime.bigint();
  async function worker() {
    while (next < operations) {
      next += 1;
      await once(`bench:${name}:${Math.floor(Math.random() * KEYSPACE)}`);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return Math.round(operations / seconds);
}

async function main() {
  const redis = new Redis({ host: '127.0.0.1', port, enableAutoPipelining: false });
  const limiter = new RateLimiterRedis({ storeClient: redis, points: 1000000000, duration: 60, keyPrefix: 'rlf' });
  const result = {};
  // Two interleaved rounds each; the best of each is reported.
  for (let round = 0; round < 2; round += 1) {
    const shield = await drive('shield', (key) => redis.call('SHIELD.absorb', key, 1000000000, 60, 1));
    const flexible = await drive('rlf', (key) => limiter.consume(key, 1));
    result.shield_ioredis = Math.max(result.shield_ioredis || 0, shield);
    result.rate_limiter_flexible = Math.max(result.rate_limiter_flexible || 0, flexible);
  }
  console.log(JSON.stringify(result));
  redis.disconnect();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
