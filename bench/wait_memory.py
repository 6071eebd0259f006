"""Memory per WAIT waiter (docs/commands.md, WAIT): INFO memory used_memory with 10,000 idle
connections, then with the same connections blocked in SHIELD.absorb ... WAIT (on 10 keys, and on
10,000 keys, one waiter each), and, for comparison, blocked in BLPOP.
Usage: python3 bench/wait_memory.py [--write] [kind ...] (default redis7); --write writes
bench/results/wait-memory.md, which docs/commands.md quotes."""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "support"))
from shield_servers import Server, find_server, server_version, wait_until  # noqa: E402

WAITERS = 10_000
RESULTS = os.path.join(os.path.dirname(__file__), "results")


def command(*args):
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def bytes_per_waiter(kind, blpop, keys):
    server = Server(find_server(kind), extra_args=["--maxclients", str(WAITERS + 100)]).start()
    connections = []
    try:
        r = server.client()
        version = server_version(r)
        r.config_set("shield.wait-max-per-key", WAITERS)
        r.config_set("shield.wait-max-total", WAITERS)
        for k in range(keys):  # empty buckets of 1100 tokens a day: 1000 waiters fit in a day
            r.execute_command("SHIELD.absorb", f"m{k}", 1100, 86400, 1100)
        for _ in range(WAITERS):
            c = socket.create_connection(("127.0.0.1", server.port))
            c.sendall(command("PING"))
            c.recv(100)
            connections.append(c)
        time.sleep(0.5)
        before = int(r.info("memory")["used_memory"])
        for i, c in enumerate(connections):
            if blpop:
                c.sendall(command("BLPOP", f"l{i % keys}", 0))
            else:
                c.sendall(command("SHIELD.absorb", f"m{i % keys}", 1100, 86400, "WAIT", 86_400_000))
        wait_until(lambda: int(r.info("clients")["blocked_clients"]) == WAITERS, timeout=120)
        after = int(r.info("memory")["used_memory"])
        return version, (after - before) / WAITERS
    finally:
        for c in connections:
            c.close()
        server.cleanup()


if __name__ == "__main__":
    write = "--write" in sys.argv[1:]
    kinds = [a for a in sys.argv[1:] if a != "--write"] or ["redis7"]
    rows = []
    for kind in kinds:
        version, wait_10_keys = bytes_per_waiter(kind, blpop=False, keys=10)
        _, wait_10000_keys = bytes_per_waiter(kind, blpop=False, keys=WAITERS)
        _, blpop = bytes_per_waiter(kind, blpop=True, keys=10)
        row = {"kind": kind, "server": version, "wait_10_keys": round(wait_10_keys),
               "wait_10000_keys": round(wait_10000_keys), "blpop": round(blpop)}
        print(row, flush=True)
        rows.append(row)
    text = "\n".join([
        "# Memory per WAIT waiter",
        "",
        f"Written by `python3 bench/wait_memory.py --write {' '.join(kinds)}`: INFO memory "
        f"`used_memory` after {WAITERS:,} connections block, minus before, per connection.",
        "",
        "| server | WAIT, 10 keys (bytes) | WAIT, 10,000 keys (bytes) | BLPOP, 10 keys (bytes) |",
        "|---|---:|---:|---:|",
        *[f"| {r['server']} | {r['wait_10_keys']:,} | {r['wait_10000_keys']:,} | {r['blpop']:,} |"
          for r in rows],
    ]) + "\n"
    print(text)
    if write:
        with open(os.path.join(RESULTS, "wait-memory.md"), "w") as f:
            f.write(text)
        with open(os.path.join(RESULTS, "wait-memory.json"), "w") as f:
            json.dump({"waiters": WAITERS, "runs": rows}, f, indent=2)
            f.write("\n")
