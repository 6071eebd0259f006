#!/usr/bin/env python3
"""The Python client's costs: what the WSGI middleware adds to a request over the bare handler, and
how many Redis calls the deny cache saves under a flood from one client.

Starts one redis-server with Shield on a free loopback port (tests/support/shield_servers.py), calls
the WSGI application in-process (no HTTP server, so the figures are the middleware's and Redis's
round trip, not a web server's), in interleaved rounds, and reports medians. Every decision is one
SHIELD.limit call, whatever the number of policies. Writes
bench/results/clients-python.json (or --output). Run it by hand:

    flock /tmp/shield.lock /usr/bin/python3 bench/clients/python_middleware.py
"""

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "support"))
sys.path.insert(0, str(REPO / "clients" / "python"))

from shield_servers import MODULE, Server, find_server  # noqa: E402

from redis_shield import Limiter, Policy  # noqa: E402
from redis_shield.wsgi import ShieldMiddleware  # noqa: E402


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello\n"]


def environ(address):
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "REMOTE_ADDR": address, "HTTP_HOST": "bench"}


def per_request_us(app, requests, address):
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    env = environ(address)
    started = time.perf_counter()
    for _ in range(requests):
        b"".join(app(dict(env), start_response))
    return (time.perf_counter() - started) / requests * 1e6, statuses[-1]


def limit_calls(client):
    for name, stats in client.info("commandstats").items():
        if name.lower() == "cmdstat_shield.limit":
            return int(stats["calls"])
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=2000, help="requests per case and round")
    parser.add_argument("--flood", type=int, default=10000, help="requests of the flood")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "clients-python.json"))
    args = parser.parse_args()

    server = Server(find_server("redis7")).start()
    try:
        url = f"redis://127.0.0.1:{server.port}"
        roomy = [Policy.bucket("per-second", 10**9, 1)]  # never refuses
        two = [Policy.bucket("per-second", 10**9, 1), Policy.quota("daily", 10**9, "DAY")]
        tight = [Policy.bucket("per-minute", 10, 60)]
        cases = {
            "bare handler": hello,
            "middleware, 1 policy, allowed": ShieldMiddleware(hello, Limiter.from_url(url, roomy)),
            "middleware, 2 policies, allowed": ShieldMiddleware(hello, Limiter.from_url(url, two)),
            "middleware, refused by Redis (no deny cache)":
                ShieldMiddleware(hello, Limiter.from_url(url, tight, deny_cache=None)),
            "middleware, refused by the deny cache": ShieldMiddleware(hello, Limiter.from_url(url, tight)),
        }
        samples = {name: [] for name in cases}
        for index, (name, app) in enumerate(cases.items()):  # warm up; exhaust the tight limits
            per_request_us(app, 50, f"198.51.100.{index}")
        for _ in range(args.rounds):
            for index, (name, app) in enumerate(cases.items()):
                us, status = per_request_us(app, args.requests, f"198.51.100.{index}")
                samples[name].append(us)
        medians = {name: round(statistics.median(values), 1) for name, values in samples.items()}
        bare = medians["bare handler"]

        flood = {}
        with server.client() as c:
            for label, cache in (("without deny cache", None), ("with deny cache", "default")):
                c.flushall()
                c.config_resetstat()
                limiter = Limiter.from_url(url, tight) if cache else Limiter.from_url(url, tight, deny_cache=None)
                app = ShieldMiddleware(hello, limiter)
                us, _ = per_request_us(app, args.flood, "203.0.113.66")
                flood[label] = {"requests": args.flood, "shield_limit_calls": limit_calls(c),
                                "us_per_request": round(us, 1)}
    finally:
        server.cleanup()

    result = {
        "what": "WSGI middleware of clients/python per request, in-process, against redis-server 7 with Shield "
                "on loopback; medians of rounds",
        "python": platform.python_version(), "machine": platform.machine(), "module": MODULE,
        "rounds": args.rounds, "requests_per_round": args.requests,
        "us_per_request": medians,
        "overhead_us_over_bare": {name: round(value - bare, 1) for name, value in medians.items() if value != bare},
        "flood_one_client_10_per_minute": flood,
        "deny_cache_saves_calls": flood["without deny cache"]["shield_limit_calls"]
        - flood["with deny cache"]["shield_limit_calls"],
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    text = json.dumps(result, indent=2)
    print(text)
    Path(args.output).write_text(text + "\n")


if __name__ == "__main__":
    main()
