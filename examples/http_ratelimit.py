"""An HTTP server that rate-limits each client with Redis Shield, and says so in its headers.

Each request takes one token from the limit `ratelimit:<X-Api-Key header, or client IP>` with
`SHIELD.absorb <key> <capacity> <period> 1 VERBOSE` (or, with --algorithm, SHIELD.window,
SHIELD.gcra or SHIELD.quota: their VERBOSE replies have the same fields), and answers with the
IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers): 200 while tokens are left, 429 with
Retry-After when not.

Run it (Python 3.8+, `pip install redis`), against a server with Shield loaded:

    redis-server --loadmodule ./build/libredis_shield.so
    python3 examples/http_ratelimit.py --capacity 5 --period 10
    curl -i http://127.0.0.1:8080/            # or: curl -i -H 'X-Api-Key: alice' ...

Options default to the environment: PORT (8080), REDIS_URL (redis://127.0.0.1:6379),
RATELIMIT_CAPACITY (10 requests), RATELIMIT_PERIOD (60 seconds; HOUR, DAY or MONTH for the quota)
and RATELIMIT_ALGORITHM (bucket, window, gcra or quota).
"""

import argparse
import math
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis


COMMANDS = {"bucket": "SHIELD.absorb", "window": "SHIELD.window", "gcra": "SHIELD.gcra",
            "quota": "SHIELD.quota"}


def as_dict(reply):
    """The VERBOSE reply: a dict in RESP3, a flat [field, value, ...] list in RESP2."""
    return reply if isinstance(reply, dict) else dict(zip(reply[0::2], reply[1::2]))


class RateLimited(BaseHTTPRequestHandler):
    db = None  # a redis.Redis, set in main()
    shield_command, capacity, period = "SHIELD.absorb", 0, 0

    def do_GET(self):
        client = self.headers.get("X-Api-Key") or self.client_address[0]
        try:
            reply = as_dict(self.db.execute_command(
                self.shield_command, f"ratelimit:{client}", self.capacity, self.period, 1, "VERBOSE"))
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
    args = parser.parse_args()
    RateLimited.db = redis.Redis.from_url(args.redis_url, decode_responses=True)
    RateLimited.shield_command = COMMANDS[args.algorithm]
    RateLimited.capacity, RateLimited.period = args.capacity, args.period
    server = ThreadingHTTPServer(("127.0.0.1", args.port), RateLimited)
    print(f"listening on http://127.0.0.1:{args.port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
