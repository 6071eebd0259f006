"""An HTTP server that rate-limits each client with Redis Shield, and says so in its headers.

Each request takes one token from its client's limit with
`SHIELD.absorb <key> <capacity> <period> 1 VERBOSE` (or, with --algorithm, SHIELD.window,
SHIELD.gcra or SHIELD.quota: their VERBOSE replies have the same fields), and answers with the
IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers): 200 while tokens are left, 429 with
Retry-After when not.

Who the client is: its address (`ratelimit:ip:<address>`), unless the request carries an API key
that the server knows (`X-Api-Key`, checked against --api-keys): then the key's own limit
(`ratelimit:key:<SHA-256 of the key, 32 hex digits>`, so that key names do not hold the secret).
An unknown or missing key counts against the address: a client cannot dodge its limit by sending
made-up keys. Behind a reverse proxy every request comes from the proxy's address; this server
does not read X-Forwarded-For (a client can write any value there), so rate-limit at the proxy or
give clients keys.

Run it (Python 3.8+ and redis-py: Debian's python3-redis, which scripts/run.sh installs), against
a server with Shield loaded (bash scripts/run.sh starts one on 127.0.0.1:6379):

    python3 examples/http_ratelimit.py --capacity 5 --period 10 --api-keys alice-secret
    curl -i http://127.0.0.1:8080/            # or: curl -i -H 'X-Api-Key: alice-secret' ...

Options default to the environment: PORT (8080), REDIS_URL (redis://127.0.0.1:6379),
RATELIMIT_CAPACITY (10 requests), RATELIMIT_PERIOD (60 seconds; HOUR, DAY or MONTH for the quota),
RATELIMIT_ALGORITHM (bucket, window, gcra or quota) and RATELIMIT_API_KEYS (the known API keys,
comma-separated; none by default, so every client is limited by its address).
"""

import argparse
import hashlib
import math
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis


COMMANDS = {"bucket": "SHIELD.absorb", "window": "SHIELD.window", "gcra": "SHIELD.gcra",
            "quota": "SHIELD.quota"}


def key_digest(api_key):
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]


def as_dict(reply):
    """The VERBOSE reply: a dict in RESP3, a flat [field, value, ...] list in RESP2."""
    return reply if isinstance(reply, dict) else dict(zip(reply[0::2], reply[1::2]))


class RateLimited(BaseHTTPRequestHandler):
    db = None  # a redis.Redis, set in main()
    shield_command, capacity, period = "SHIELD.absorb", 0, 0
    known_keys = frozenset()  # digests of the API keys given with --api-keys

    def limit_key(self):
        """The client's limit: its API key's when the key is known, its address's otherwise."""
        api_key = self.headers.get("X-Api-Key")
        if api_key and key_digest(api_key) in self.known_keys:
            return f"ratelimit:key:{key_digest(api_key)}"
        return f"ratelimit:ip:{self.client_address[0]}"

    def do_GET(self):
        try:
            reply = as_dict(self.db.execute_command(
                self.shield_command, self.limit_key(), self.capacity, self.period, 1, "VERBOSE"))
        except redis.RedisError as error:  # fail closed; to fail open, serve the request here
            self.log_error("rate limiter unavailable: %s", error)
            self.send_error(503, "rate limiter unavailable")
            return
        allowed = reply["allowed"] == 1
        self.send_response(200 if allowed else 429)
        self.send_header("RateLimit-Policy", f'"default";q={reply["capacity"]};w={reply["period"]}')
        reset = math.ceil(reply["reset_after_ms"] / 1000)
        self.send_header("RateLimit", f'"default";r={reply["remaining"]};t={reset}')
        if not allowed and reply["retry_after_ms"] >= 0:  # -1: the request can never fit
            self.send_header("Retry-After", str(math.ceil(reply["retry_after_ms"] / 1000)))
        body = b"hello\n" if allowed else b"too many requests\n"
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(env("PORT", "8080")))
    parser.add_argument("--redis-url", default=env("REDIS_URL", "redis://127.0.0.1:6379"))
    parser.add_argument("--capacity", type=int, default=int(env("RATELIMIT_CAPACITY", "10")))
    parser.add_argument("--period", default=env("RATELIMIT_PERIOD", "60"))
    parser.add_argument("--algorithm", choices=COMMANDS, default=env("RATELIMIT_ALGORITHM", "bucket"))
    parser.add_argument("--api-keys", default=env("RATELIMIT_API_KEYS", ""),
                        help="the known API keys, comma-separated")
    args = parser.parse_args()
    RateLimited.known_keys = frozenset(key_digest(k) for k in args.api_keys.split(",") if k)
    RateLimited.db = redis.Redis.from_url(args.redis_url, decode_responses=True)
    RateLimited.shield_command = COMMANDS[args.algorithm]
    RateLimited.capacity, RateLimited.period = args.capacity, args.period
    server = ThreadingHTTPServer(("127.0.0.1", args.port), RateLimited)
    print(f"listening on http://127.0.0.1:{args.port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
