"use strict";
// What the Express and Fastify middleware (and the demo's bare http server) share: which key a
// request is limited under, whether it is exempt, what it costs, and the response it gets.
const crypto = require("node:crypto");
const net = require("node:net");
const { headersFor } = require("./headers");

function normalizeAddress(address) {
  if (!address) return "";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1] : address;
}

/** A net.BlockList of trusted proxies from addresses and CIDR ranges ("10.0.0.0/8", "::1"). */
function trustList(proxies = []) {
  const list = new net.BlockList();
  for (const entry of proxies) {
    const [address, bits] = String(entry).split("/");
    const type = net.isIPv6(address) ? "ipv6" : "ipv4";
    if (!net.isIP(address)) throw new TypeError(`redis-shield: trusted proxy ${entry} is not an IP address or range`);
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}

function trusted(list, address) {
  const type = net.isIPv6(address) ? "ipv6" : net.isIPv4(address) ? "ipv4" : null;
  return type !== null && list.check(address, type);
}

/**
 * The client's address: the peer, unless the peer is a trusted proxy; then X-Forwarded-For is
 * read from the right, skipping trusted proxies, and the first address that is not one is the
 * client (entries left of it were written by the client and are not believed).
 */
function clientIp(remoteAddress, forwardedFor, list) {
  let address = normalizeAddress(remoteAddress);
  if (!trusted(list, address) || !forwardedFor) return address;
  const hops = String(forwardedFor).split(",").map((s) => normalizeAddress(s.trim())).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!net.isIP(hops[i])) return address; // garbage: stop at the last address we could check
    address = hops[i];
    if (!trusted(list, address)) return address;
  }
  return address;
}

function digest(value) {
  return crypto.createHash("sha256").update(String(value)).digest("hex").slice(0, 32);
}

function headerValue(headers, name) {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * options: { limiter, key, trustedProxies, exempt, cost, legacyHeaders, user }
 *   key: "ip" (default) | "user" | { header: "x-api-key" } | (req) => string | Promise<string>
 *   exempt: [path string | RegExp | (req) => boolean]
 *   cost: number | (req) => number
 *   user: (req) => user id (default: req.user.id, or req.user when it is a string)
 */
function createHttpCore(options) {
  if (!options || !options.limiter) throw new TypeError("redis-shield: the middleware needs { limiter }");
  const proxies = trustList(options.trustedProxies);
  const keyOption = options.key === undefined ? "ip" : options.key;
  const exempt = (options.exempt || []).map((rule) => {
    if (typeof rule === "string") return (req, path) => path === rule;
    if (rule instanceof RegExp) return (req, path) => rule.test(path);
    if (typeof rule === "function") return (req) => Boolean(rule(req));
    throw new TypeError("redis-shield: exempt rules are paths, RegExps or functions");
  });
  const userOf = options.user || ((req) => (req.user == null ? null : typeof req.user === "object" ? req.user.id : req.user));

  function ipKey(req) {
    const remote = req.socket ? req.socket.remoteAddress : req.raw && req.raw.socket.remoteAddress;
    return `ip:${clientIp(remote, headerValue(req.headers, "x-forwarded-for"), proxies)}`;
  }

  async function keyFor(req, keySpec = keyOption) {
    if (typeof keySpec === "function") return String(await keySpec(req));
    if (keySpec === "ip") return ipKey(req);
    if (keySpec === "user") {
      const user = userOf(req);
      return user == null || user === "" ? ipKey(req) : `user:${user}`;
    }
    if (keySpec && typeof keySpec === "object" && keySpec.header) {
      const value = headerValue(req.headers, keySpec.header);
      // The value may be a secret (an API key): Redis sees a digest of it, not the value.
      return value ? `${keySpec.header.toLowerCase()}:${digest(value)}` : ipKey(req);
    }
    throw new TypeError(`redis-shield: unknown key option ${JSON.stringify(keySpec)}`);
  }

  function isExempt(req, path) {
    return exempt.some((rule) => rule(req, path));
  }

  function costOf(req, costSpec = options.cost) {
    if (costSpec === undefined) return undefined;
    return typeof costSpec === "function" ? costSpec(req) : costSpec;
  }

  /** Limits one request: resolves to the limiter's result (see RateLimiter#limit). */
  async function check(req, route = {}) {
    const limiter = route.limiter || options.limiter;
    const key = await keyFor(req, route.key === undefined ? keyOption : route.key);
    return limiter.limit(key, { cost: costOf(req, route.cost === undefined ? options.cost : route.cost) });
  }

  function headers(result) {
    return headersFor(result, { legacy: Boolean(options.legacyHeaders) });
  }

  /** The application/problem+json body of a 429 (RFC 9457). */
  function problem(result) {
    const body = {
      type: "about:blank",
      title: "Too Many Requests",
      status: 429,
      detail:
        result.retryAfterMs < 0
          ? `The request costs more than policy ${result.violated.join(", ")} can ever allow.`
          : `Rate limit exceeded: ${result.violated.join(", ")}. Retry after ${result.retryAfter} s.`,
      violated: result.violated,
    };
    if (result.retryAfterMs >= 0) body.retryAfter = result.retryAfter;
    return body;
  }

  return { check, headers, problem, isExempt, keyFor, clientIp: (req) => ipKey(req).slice(3) };
}

module.exports = { createHttpCore, clientIp, trustList };
