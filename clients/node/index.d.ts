// Types of redis-shield (hand-written; the package is plain JavaScript).

/** An ioredis Redis or Cluster, or a node-redis client or cluster (connected). */
export type RedisClient = object;

export type Algorithm = "bucket" | "gcra" | "window" | "quota";
export type FailurePolicy = "open" | "closed";

interface PolicyBase {
  /**
   * 1-64 of A-Z a-z 0-9 _ - ; names the policy in headers and in the Redis key. Not one of
   * SHIELD.limit's words (BUCKET GCRA WINDOW QUOTA BURST COST SETTLE DRYRUN HEADERS REFUND WAIT, in any case).
   */
  name: string;
  /** tokens per window (bucket and gcra: refilled per window; window: at most per sliding window; quota: per period) */
  limit: number;
  /** tokens one call takes when limit() is given no cost (default 1) */
  cost?: number;
  /** what a call decides for this policy when Redis fails or times out (default: the limiter's, else "open") */
  onFailure?: FailurePolicy;
}

export interface BucketPolicy extends PolicyBase {
  algorithm?: "bucket";
  /** seconds to refill `limit` tokens */
  window: number;
  /** tokens the bucket holds at most (default: limit) */
  burst?: number;
}

export interface GcraPolicy extends PolicyBase {
  algorithm: "gcra";
  /** seconds in which `limit` calls are allowed, one every window/limit */
  window: number;
  /** calls allowed at once (default: limit) */
  burst?: number;
}

export interface WindowPolicy extends PolicyBase {
  algorithm: "window";
  /** the sliding window, in seconds */
  window: number;
}

export interface QuotaPolicy extends PolicyBase {
  algorithm: "quota";
  /** the UTC calendar period */
  period: "hour" | "day" | "month";
}

export type Policy = BucketPolicy | GcraPolicy | WindowPolicy | QuotaPolicy;

export interface Logger {
  warn(message: string): void;
}

export interface RateLimiterOptions {
  redis: RedisClient;
  policies: Policy[];
  /** prefix of the Redis keys, "<prefix>{<key>}:<policy name>" (default "shield:") */
  prefix?: string;
  /** ms to wait for Redis before the failure policy applies (default 200) */
  timeout?: number;
  /** default failure policy of the policies (default "open") */
  onFailure?: FailurePolicy;
  /** ms a fail-closed refusal asks the caller to wait (default 1000) */
  failureRetryAfter?: number;
  /** the local cache of refusals (default { maxEntries: 10000 }); false turns it off */
  denyCache?: { maxEntries?: number } | false;
  /** where decisions made without Redis are logged, once per logInterval (default console) */
  logger?: Logger;
  /** ms between two such log lines (default 60000) */
  logInterval?: number;
}

export interface PolicyResult {
  name: string;
  algorithm: Algorithm;
  allowed: boolean;
  /** tokens left, at most `limit`; null when unknown (Redis failed and the policy failed open) */
  remaining: number | null;
  /** the RateLimit-Policy q=: the most the policy holds (a bucket's or gcra's burst when it has one) */
  limit: number;
  /** seconds: the RateLimit-Policy w= (with a burst, the time to fill from empty) */
  window: number;
  /** 0 when allowed; -1 when no wait helps (cost above what the policy can ever hold) */
  retryAfterMs: number;
  resetMs: number;
}

export interface RateLimitHeaders {
  "RateLimit-Policy": string;
  RateLimit?: string;
  "Retry-After"?: string;
}

export interface RateLimitResult {
  allowed: boolean;
  /** the smallest remaining of the policies (null when none is known) */
  remaining: number | null;
  /** the limit of that policy */
  limit: number | null;
  /** seconds, rounded up: 0 when allowed, -1 when no wait helps */
  retryAfter: number;
  retryAfterMs: number;
  /** seconds until the policy with the smallest remaining is full again */
  reset: number;
  resetMs: number;
  /** names of the policies that refused */
  violated: string[];
  policies: PolicyResult[];
  headers: RateLimitHeaders;
  /** refused by the local deny cache, without a round trip */
  fromCache: boolean;
  /** decided by the failure policy: Redis failed or did not answer in time */
  degraded: boolean;
  error?: Error;
}

export interface AcquireResult extends RateLimitResult {
  waitedMs: number;
}

/** What reserve() resolves to: the reservation's result, and settle() to call once the real cost is known. */
export interface Reservation extends RateLimitResult {
  readonly key: string;
  /** the tokens reserved from every policy */
  readonly estimate: number;
  /** true once settle() was called (even when Redis lost the settle) */
  readonly settled: boolean;
  /** per window and quota policy name: when (performance.now(), ms) its estimate stops counting */
  readonly countedUntil: { [policy: string]: number };
  /**
   * Settles at `actual` (zero or a positive integer): bucket and gcra policies are given back the
   * difference or take the overrun (into debt, at most one window's refill); window and quota
   * policies are given back the difference when `actual` is lower and their estimate still counts
   * (their window or period has not ended since the reserve), and keep the estimate otherwise.
   * Resolves to the result after the settle (`degraded` when Redis lost it). Rejects when called
   * twice, or on a refused reservation (it took nothing).
   */
  settle(actual: number): Promise<RateLimitResult>;
}

export interface RateLimiterStats {
  calls: number;
  redisCalls: number;
  cacheHits: number;
  failOpen: number;
  failClosed: number;
  /** settles sent to Redis */
  settles: number;
  /** settles Redis failed or did not confirm within the timeout */
  settlesLost: number;
}

export class RateLimiter {
  constructor(options: RateLimiterOptions);
  readonly policies: ReadonlyArray<Readonly<Policy>>;
  readonly stats: RateLimiterStats;
  limit(key: string, options?: { cost?: number }): Promise<RateLimitResult>;
  acquire(key: string, options?: { cost?: number; maxWait?: number; jitter?: number }): Promise<AcquireResult>;
  /** Takes `estimate` (a positive integer) from every policy, as limit(key, { cost: estimate }), to settle later. */
  reserve(key: string, estimate: number): Promise<Reservation>;
}

export class TimeoutError extends Error {}

/** A request as the middleware reads it (Node's IncomingMessage, Express's and Fastify's requests). */
export interface RequestLike {
  headers: Record<string, string | string[] | undefined>;
  socket?: { remoteAddress?: string };
  [field: string]: unknown;
}

export type KeyOption = "ip" | "user" | { header: string } | ((req: any) => string | Promise<string>);
export type ExemptRule = string | RegExp | ((req: any) => boolean);

export interface MiddlewareOptions {
  limiter: RateLimiter;
  /** what a request is limited by (default "ip") */
  key?: KeyOption;
  /** proxies (addresses or CIDR ranges) whose X-Forwarded-For is believed */
  trustedProxies?: string[];
  exempt?: ExemptRule[];
  cost?: number | ((req: any) => number);
  /** also send X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset */
  legacyHeaders?: boolean;
  /** the authenticated user's id, for key "user" (default req.user.id, or req.user) */
  user?: (req: any) => string | number | null | undefined;
}

export interface ProblemDetails {
  type: string;
  title: string;
  status: 429;
  detail: string;
  violated: string[];
  retryAfter?: number;
}

export interface HttpCore {
  check(req: RequestLike, route?: { limiter?: RateLimiter; key?: KeyOption; cost?: number | ((req: any) => number) }): Promise<RateLimitResult>;
  headers(result: RateLimitResult): Record<string, string>;
  problem(result: RateLimitResult): ProblemDetails;
  isExempt(req: RequestLike, path: string): boolean;
  keyFor(req: RequestLike, key?: KeyOption): Promise<string>;
  clientIp(req: RequestLike): string;
}

export function createHttpCore(options: MiddlewareOptions): HttpCore;

/** Express middleware: (req, res, next) => void. */
export function shieldExpress(options: MiddlewareOptions): (req: any, res: any, next: (error?: unknown) => void) => void;

/** Route config of the Fastify plugin: `config: { rateLimit: false | { limiter, key, cost } }`. */
export interface FastifyRouteRateLimit {
  limiter?: RateLimiter;
  key?: KeyOption;
  cost?: number | ((req: any) => number);
}

/** Fastify plugin: fastify.register(shieldFastify, options). */
export function shieldFastify(fastify: any, options: MiddlewareOptions, done: (error?: Error) => void): void;

export function clientIp(remoteAddress: string | undefined, forwardedFor: string | undefined, trusted: unknown): string;
export function headersFor(result: RateLimitResult, options?: { legacy?: boolean }): Record<string, string>;
