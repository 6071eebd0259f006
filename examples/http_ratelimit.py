"""An HTTP server that rate-limits each client with Redis Shield, and says so in its headers.

Each request is one SHIELD.limit call that decides two limits of the client at once, all or
nothing: a token bucket (5 requests a second, bursts of 10) and a daily quota (1000 requests per
UTC day). For a client at 203.0.113.7:

    SHIELD.limit 2 ratelimit:{ip:203.0.113.7}:bucket ratelimit:{ip:203.0.113.7}:day
                 ip BUCKET 5 1 BURST 10 day QUOTA 1000 DAY HEADERS

The reply's `headers` are sent as they are on every response: `RateLimit-Policy` and `RateLimit`
(draft-ietf-httpapi-ratelimit-headers, one list item per policy), 200 while both limits allow, and
429 with `Retry-After` when either refuses (then nothing is taken from the other). The two keys
share a hash tag, so they live in one slot of a Redis Cluster.

Who the client is: its address (policy `ip`, keys `ratelimit:{ip:<address>}:...`), unless the
request carries an API key that the server knows (`X-Api-Key`, checked against --api-keys): then
the key's own limits (policy `key`, keys `ratelimit:{key:<SHA-256 of the key, 32 hex digits>}:...`,
so that key names do not hold the secret). An unknown or missing key counts against the address:
a client cannot dodge its limit by sending made-up keys. Behind a reverse proxy every request
comes from the proxy's address; this server does not read X-Forwarded-For (a client can write any
value there), so rate-limit at the proxy or give clients keys.

Run it (Python 3.8+ and redis-py: Debian's python3-redis, which scripts/run.sh installs), against
a server with Shield loaded (bash scripts/run.sh starts one on 127.0.0.1:6379):

    python3 examples/http_ratelimit.py --api-keys alice-secret
    curl -i http://127.0.0.1:8080/            # or: curl -i -H 'X-Api-Key: alice-secret' ...

Options default to the environment: PORT (8080), REDIS_URL (redis://127.0.0.1:6379), the bucket's
RATELIMIT_CAPACITY (5 requests) per RATELIMIT_PERIOD (1 second) holding at most RATELIMIT_BURST
(10), RATELIMIT_DAILY (1000 requests per UTC day) and RATELIMIT_API_KEYS (the known API keys,
comma-separated; none by default, so every client is limited by its address).
"""

import argparse
import hashlib
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis


def key_digest(api_key):
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]


def as_dict(reply):
    """A map reply: a dict in RESP3, a flat [field, value, ...] list in RESP2."""
    return reply if isinstance(reply, dict) else dict(zip(reply[0::2], reply[1::2]))


class RateLimited(BaseHTTPRequestHandler):
    db = None  # a redis.Redis, set in main()
    bucket = (5, 1, "BURST", 10)  # BUCKET's arguments, set in main()
    daily = 1000
    known_keys = frozenset()  # digests of the API keys given with --api-keys

    def client(self):
        """(policy name, identity): the API key's digest when the key is known, else the address."""
        api_key = self.headers.get("X-Api-Key")
        if api_key and key_digest(api_key) in self.known_keys:
            return "key", key_digest(api_key)
        return "ip", self.client_address[0]

    def do_GET(self):
        name, identity = self.client()
        keys = f"ratelimit:{{{name}:{identity}}}:bucket", f"ratelimit:{{{name}:{identity}}}:day"
        try:
            reply = as_dict(self.db.execute_command(
                "SHIELD.limit", 2, *keys, name, "BUCKET", *self.bucket,
                "day", "QUOTA", self.daily, "DAY", "HEADERS"))
        except redis.RedisError as error:  # fail closed; to fail open, serve the request here
            self.log_error("rate limiter unavailable: %s", error)
            self.send_error(503, "rate limiter unavailable")
            return
        allowed = reply["allowed"] == 1
        self.send_response(200 if allowed else 429)
        # RateLimit-Policy and RateLimit always; Retry-After when refused (unless no wait helps).
        for header, value in as_dict(reply["headers"]).items():
            self.send_header(header, str(value))
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
    parser.add_argument("--capacity", type=int, default=int(env("RATELIMIT_CAPACITY", "5")),
                        help="requests the bucket refills per period")
    parser.add_argument("--period", type=int, default=int(env("RATELIMIT_PERIOD", "1")),
                        help="seconds")
    parser.add_argument("--burst", type=int, default=int(env("RATELIMIT_BURST", "10")),
                        help="the most requests the bucket holds")
    parser.add_argument("--daily", type=int, default=int(env("RATELIMIT_DAILY", "1000")),
                        help="requests per UTC day")
    parser.add_argument("--api-keys", default=env("RATELIMIT_API_KEYS", ""),
                        help="the known API keys, comma-separated")
    args = parser.parse_args()
    RateLimited.known_keys = frozenset(key_digest(k) for k in args.api_keys.split(",") if k)
    RateLimited.db = redis.Redis.from_url(args.redis_url, decode_responses=True)
    RateLimited.bucket = (args.capacity, args.period, "BURST", args.burst)
    RateLimited.daily = args.daily
    server = ThreadingHTTPServer(("127.0.0.1", args.port), RateLimited)
    print(f"listening on http://127.0.0.1:{args.port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
