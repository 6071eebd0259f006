"""The demo: `python3 -m redis_shield.demo --port 8080 --redis-url redis://127.0.0.1:6379`.

GET / answers `hello`, limited per client address to 5 per second with bursts of 10
(a token bucket, `per-second BUCKET 5 1 BURST 10`) and to 1000 per UTC day (`daily QUOTA 1000 DAY`), both
in one SHIELD.limit call per request (a refused request takes nothing from the daily quota),
with the RateLimit headers on every response and 429 with Retry-After beyond the limits.
Redis down: the per-second limit fails open, the daily one too (the demo keeps answering).
"""

import argparse
import logging
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from socketserver import ThreadingMixIn

from . import Limiter, Policy
from .wsgi import ShieldMiddleware

POLICIES = [Policy.bucket("per-second", 5, 1, burst=10), Policy.quota("daily", 1000, "DAY")]


def hello(environ, start_response):
    if environ.get("PATH_INFO", "/") != "/":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
    return [b"hello\n"]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # one short line per request, on stderr
        sys.stderr.write(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")
        sys.stderr.flush()


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m redis_shield.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--timeout", type=float, default=0.2, help="seconds per Redis call")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    limiter = Limiter.from_url(args.redis_url, POLICIES, timeout=args.timeout)
    app = ShieldMiddleware(hello, limiter, exempt=lambda info: info.path != "/")  # only GET / is limited
    server = make_server(args.host, args.port, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler)
    print(f"listening on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        limiter.close()


if __name__ == "__main__":
    main()
