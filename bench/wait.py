"""WAIT against the best client-side retry loop (docs/commands.md, WAIT).

CLIENTS clients contend for one bucket of RATE tokens a second, each taking one token, then
asking again at once. Two ways to wait when the bucket is empty:

- wait: `SHIELD.absorb <key> RATE 1 1 WAIT <ms>`: the server queues the call, first come first
  served, and answers when its token is there.
- retry: `SHIELD.absorb <key> RATE 1 1 VERBOSE`; when denied, sleep `retry_after_ms`, then ask
  again (the loop rate-limiter-flexible's queue, @upstash/ratelimit's blockUntilReady and
  go-redis/redis_rate's examples run).

Each client is a thread with a redis-py connection of its own. The bucket is emptied first and the
first WARMUP_S seconds are left out, so the figures are the steady state: grants per second, Redis
calls per grant (INFO commandstats), and the waiting time of each grant, from the client's first
call for it to the reply that grants it (median, p99, max, max/median), and of each client (its
mean wait, max/median across clients: fairness).

Usage: python3 bench/wait.py [--seconds N] [--write]
--write writes bench/results/wait.json and bench/results/wait.md (docs quote wait.md).
Memory per waiter is bench/wait_memory.py's.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "support"))
from shield_servers import Server, find_server, server_version  # noqa: E402

CLIENTS = 200
RATE = 1000  # tokens a second
WAIT_MS = 10_000  # far above the queue's wait (CLIENTS / RATE seconds)
WARMUP_S = 2.0  # the herd's first seconds, left out of every figure
KEY = "bench:wait"
RESULTS = os.path.join(os.path.dirname(__file__), "results")


def absorb_calls(r):
    stats = {name.lower(): value for name, value in r.info("commandstats").items()}
    return int(stats["cmdstat_shield.absorb"]["calls"])


def run(kind, mode, seconds):
    """The figures of one way to wait, and the server's name and version."""
    server = Server(find_server(kind), extra_args=["--maxclients", "1000"]).start()
    try:
        admin = server.client()
        version = server_version(admin)
        admin.execute_command("SHIELD.absorb", KEY, RATE, 1, RATE)  # empty: every grant waits
        stop = threading.Event()
        grants = [[] for _ in range(CLIENTS)]  # (granted at, waited) per client
        ready = threading.Barrier(CLIENTS + 1)
        calls_at = {}

        def client(i):
            r = server.client()
            r.ping()
            ready.wait()
            while not stop.is_set():
                asked = time.monotonic()
                while True:
                    if mode == "wait":
                        left = r.execute_command("SHIELD.absorb", KEY, RATE, 1, 1, "WAIT", WAIT_MS)
                        if left >= 0:
                            break
                        continue  # not reached at this load: the queue's wait is far below WAIT_MS
                    reply = r.execute_command("SHIELD.absorb", KEY, RATE, 1, 1, "VERBOSE")
                    fields = dict(zip(reply[0::2], reply[1::2]))
                    if fields["allowed"]:
                        break
                    time.sleep(fields["retry_after_ms"] / 1000)
                now = time.monotonic()
                grants[i].append((now, now - asked))
            r.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        ready.wait()
        time.sleep(WARMUP_S)
        calls_at["from"] = absorb_calls(admin)
        measure_from = time.monotonic()
        time.sleep(seconds)
        calls_at["to"] = absorb_calls(admin)
        stop_at = time.monotonic()
        stop.set()
        for t in threads:
            t.join(timeout=WAIT_MS / 1000 + 5)
        window = [(at, waited) for g in grants for at, waited in g if measure_from <= at < stop_at]
        waits_ms = sorted(w * 1000 for _, w in window)
        per_client = [statistics.mean(w * 1000 for at, w in g if measure_from <= at < stop_at)
                      for g in grants if any(measure_from <= at < stop_at for at, _ in g)]
        median = statistics.median(waits_ms)
        client_median = statistics.median(per_client)
        return version, {
            "mode": mode,
            "grants_per_s": round(len(window) / (stop_at - measure_from), 1),
            "calls_per_grant": round((calls_at["to"] - calls_at["from"]) / len(window), 2),
            "wait_ms_median": round(median, 1),
            "wait_ms_p99": round(waits_ms[int(len(waits_ms) * 0.99)], 1),
            "wait_ms_max": round(waits_ms[-1], 1),
            "wait_max_over_median": round(waits_ms[-1] / median, 2),
            "clients_granted": len(per_client),
            "client_mean_wait_max_over_median": round(max(per_client) / client_median, 2),
            "client_mean_wait_min_over_median": round(min(per_client) / client_median, 2),
            "client_grants_min": min(sum(measure_from <= at < stop_at for at, _ in g) for g in grants),
            "client_grants_max": max(sum(measure_from <= at < stop_at for at, _ in g) for g in grants),
        }
    finally:
        server.cleanup()


def markdown(kind, version, seconds, rows):
    lines = [
        "# WAIT against a client-side retry loop",
        "",
        f"Written by `python3 bench/wait.py --write` on {version} ({kind}): {CLIENTS} clients, one "
        f"bucket of {RATE} tokens a second, one token per grant, {seconds} s measured after "
        f"{WARMUP_S:g} s of warm-up. Client threads are Python (redis-py), on the same two cores as "
        "the server.",
        "",
        "| way to wait | grants/s | Redis calls per grant | wait median (ms) | p99 (ms) | max (ms) "
        "| max/median | clients granted | client mean wait, max/median | min/median "
        "| grants per client, min-max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {"wait": f"`WAIT {WAIT_MS}`", "retry": "sleep `retry_after_ms`, retry"}
    for row in rows:
        lines.append(
            f"| {names[row['mode']]} | {row['grants_per_s']:,} | {row['calls_per_grant']} "
            f"| {row['wait_ms_median']} | {row['wait_ms_p99']} | {row['wait_ms_max']} "
            f"| {row['wait_max_over_median']} | {row['clients_granted']} of {CLIENTS} "
            f"| {row['client_mean_wait_max_over_median']} | {row['client_mean_wait_min_over_median']} "
            f"| {row['client_grants_min']}-{row['client_grants_max']} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="redis7")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    runs = [run(args.kind, mode, args.seconds) for mode in ("wait", "retry")]
    version = runs[0][0]
    rows = [row for _, row in runs]
    text = markdown(args.kind, version, args.seconds, rows)
    print(text)
    if args.write:
        with open(os.path.join(RESULTS, "wait.json"), "w") as f:
            json.dump({"server": version, "clients": CLIENTS, "rate_per_s": RATE,
                       "seconds": args.seconds, "warmup_s": WARMUP_S, "runs": rows}, f, indent=2)
            f.write("\n")
        with open(os.path.join(RESULTS, "wait.md"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
