"""Memory per WAIT waiter (docs/commands.md, WAIT): INFO memory used_memory with 10,000 idle
connections, then with the same connections blocked in SHIELD.absorb ... WAIT (on 10 keys), and,
for comparison, blocked in BLPOP. Usage: python3 bench/wait_memory.py [kind ...] (default redis7)."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "support"))
from shield_servers import Server, find_server, wait_until  # noqa: E402

WAITERS = 10_000
KEYS = 10


def command(*args):
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def bytes_per_waiter(kind, blpop):
    server = Server(find_server(kind), extra_args=["--maxclients", str(WAITERS + 100)]).start()
    connections = []
    try:
        r = server.client()
        r.config_set("shield.wait-max-per-key", WAITERS)
        r.config_set("shield.wait-max-total", WAITERS)
        for k in range(KEYS):  # empty buckets of 1100 tokens a day: 1000 waiters fit in a day
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
                c.sendall(command("BLPOP", f"l{i % KEYS}", 0))
            else:
                c.sendall(command("SHIELD.absorb", f"m{i % KEYS}", 1100, 86400, "WAIT", 86_400_000))
        wait_until(lambda: int(r.info("clients")["blocked_clients"]) == WAITERS, timeout=120)
        after = int(r.info("memory")["used_memory"])
        return (after - before) / WAITERS
    finally:
        for c in connections:
            c.close()
        server.cleanup()


if __name__ == "__main__":
    for kind in sys.argv[1:] or ["redis7"]:
        wait_bytes = bytes_per_waiter(kind, blpop=False)
        blpop_bytes = bytes_per_waiter(kind, blpop=True)
        print(f"{kind}: WAIT {wait_bytes:,.0f} bytes per waiter, BLPOP {blpop_bytes:,.0f}")
