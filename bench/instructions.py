#!/usr/bin/env python3
"""Instructions the server executes per call, counted by callgrind: repeatable whatever else the
machine is doing, so it shows small changes that throughput on a shared two-core box hides.

Runs redis-server with the module and the floor module (bench/floor) under valgrind, sends each
workload, and reads the inclusive instruction count of the command's handler (setCommand, the
module command dispatcher, evalShaCommand).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "support"))
sys.path.insert(0, str(HERE))

from shield_servers import Server  # noqa: E402

CALLS = 20_000

# The workloads of the throughput benchmark (same commands, same prepared keys) that are counted.
MEASURED = ["SET PX", "SET PX new", "absorb new", "absorb allowed", "absorb denied", "Lua bucket",
            "floor write", "floor read", "floor call read", "absorb VERBOSE", "inspect", "absorb_multi 2",
            "refund", "absorb BURST", "CL.THROTTLE allowed", "CL.THROTTLE denied", "gcra allowed",
            "window allowed", "quota allowed"]

# Valkey renamed the module command dispatcher.
DISPATCHERS = {"redis": "RedisModuleCommandDispatcher", "valkey": "ValkeyModuleCommandDispatcher"}

# The function whose inclusive count is a call's cost, by the INFO commandstats name bench.py uses.
HANDLERS = {"set": "setCommand", "evalsha": "evalShaCommand"}


def measure(module, names=MEASURED, calls=CALLS, keyspace=1000, server_binary=None, kind="redis", floor=None):
    from bench import PREPARE, WORKLOADS, default_floor, prepare_keys

    floor = os.path.abspath(floor or default_floor(module))
    results = {}
    for name in names:
        words, stat, prep = WORKLOADS[name]
        symbol = HANDLERS.get(stat, DISPATCHERS[kind])
        out_file = tempfile.mktemp(prefix="shield-callgrind-")
        server = Server(server_binary or shutil.which("redis-server"), module=module,
                        extra_args=["--loadmodule", floor],
                        launcher=["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
                                  "--toggle-collect=call"])
        server.start(timeout=60)
        try:
            client = server.client()
            sha = client.script_load((HERE / "lua" / "token_bucket.lua").read_text())
            words = [sha if w == "{bucket}" else w for w in words]
            if prep in PREPARE:
                prepare_keys(client, prep, keyspace)
            space = 1_000_000_000 if prep == "new" else keyspace  # "new": nearly every key is new
            # Warm-up (creates the keys), then the measured calls: the difference of two dumps.
            subprocess.run(["redis-benchmark", "-p", str(server.port), "-c", "4", "-n", str(keyspace * 2),
                            "-r", str(space), "-P", "16", "-q", *words], check=True, capture_output=True)
            before = handler_instructions(server, out_file, symbol)
            subprocess.run(["redis-benchmark", "-p", str(server.port), "-c", "4", "-n", str(calls),
                            "-r", str(space), "-P", "16", "-q", *words], check=True, capture_output=True)
            after = handler_instructions(server, out_file, symbol)
            results[name] = round((after - before) / calls)
        finally:
            server.cleanup()
            for path in Path(out_file).parent.glob(Path(out_file).name + "*"):
                path.unlink()
    return results


def handler_instructions(server, out_file, symbol):
    """Dumps callgrind's counters so far and returns the handler's inclusive instructions."""
    subprocess.run(["callgrind_control", "--dump", str(server.process.pid)], check=True, capture_output=True)
    dumps = sorted(Path(out_file).parent.glob(Path(out_file).name + ".*"), key=lambda p: p.stat().st_mtime)
    total = 0
    for dump in dumps:
        text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(dump)],
                              check=True, capture_output=True, text=True).stdout
        for line in text.splitlines():
            m = re.match(r"\s*([\d,]+)\s.*\b" + re.escape(symbol) + r"\b", line)
            if m and "=>" not in line:
                total += int(m.group(1).replace(",", ""))
                break
    return total


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--module", required=True)
    parser.add_argument("--server", default=None, help="server binary (default: redis-server on PATH)")
    parser.add_argument("--kind", choices=sorted(DISPATCHERS), default="redis")
    parser.add_argument("--floor", default=None, help="the floor module (default: next to --module, as bench.py)")
    parser.add_argument("--only", default=None, help="comma-separated workloads (default: all of MEASURED)")
    parser.add_argument("--calls", type=int, default=CALLS)
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",")] if args.only else MEASURED
    print(json.dumps(measure(str(Path(args.module).resolve()), names, calls=args.calls, server_binary=args.server,
                             kind=args.kind, floor=args.floor), indent=2))
