// Type-checked by the package test (tsc --noEmit): how an application uses redis-shield's types.
import Redis from "ioredis";
import express from "express";
import {
  RateLimiter,
  shieldExpress,
  type Policy,
  type RateLimitResult,
  type AcquireResult,
  type Reservation,
  type MiddlewareOptions,
} from "redis-shield";

const policies: Policy[] = [
  { name: "per-second", algorithm: "bucket", limit: 5, window: 1, burst: 10 },
  { name: "steady", algorithm: "gcra", limit: 100, window: 60, burst: 20 },
  { name: "minute", algorithm: "window", limit: 100, window: 60, onFailure: "closed" },
  { name: "daily", algorithm: "quota", limit: 1000, period: "day", cost: 1 },
];

const limiter = new RateLimiter({ redis: new Redis(), policies, timeout: 100, denyCache: { maxEntries: 1000 } });

async function use(): Promise<void> {
  const result: RateLimitResult = await limiter.limit("user:42", { cost: 2 });
  const allowed: boolean = result.allowed;
  const remaining: number | null = result.remaining;
  const retryAfter: number = result.retryAfter;
  const violated: string[] = result.violated;
  const header: string = result.headers["RateLimit-Policy"];
  const waited: AcquireResult = await limiter.acquire("user:42", { maxWait: 500 });
  console.log(allowed, remaining, retryAfter, violated, header, waited.waitedMs, limiter.stats.cacheHits);
  const reservation: Reservation = await limiter.reserve("user:42", 500);
  if (reservation.allowed) {
    const settled: RateLimitResult = await reservation.settle(120);
    const estimate: number = reservation.estimate;
    console.log(settled.remaining, estimate, reservation.settled, limiter.stats.settlesLost);
  }
}

const options: MiddlewareOptions = { limiter, key: { header: "x-api-key" }, trustedProxies: ["10.0.0.0/8"], exempt: ["/health", /^\/static\//] };
const app = express();
app.use(shieldExpress(options));
void use;

// @ts-expect-error: a quota has a period, not a window
const wrong: Policy = { name: "q", algorithm: "quota", limit: 1, window: 60 };
void wrong;

// @ts-expect-error: a window has no burst
const noBurst: Policy = { name: "w", algorithm: "window", limit: 1, window: 60, burst: 2 };
void noBurst;

async function misuse(): Promise<void> {
  // @ts-expect-error: reserve() takes the estimate as a number, not an options object
  await limiter.reserve("user:42", { cost: 5 });
  const reservation = await limiter.reserve("user:42", 5);
  // @ts-expect-error: settle() takes the actual cost
  await reservation.settle();
}
void misuse;
