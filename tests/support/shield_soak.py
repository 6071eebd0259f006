#!/usr/bin/env python3
"""Memory and counters under long load: millions of SHIELD.absorb calls, then every bucket deleted.

    /usr/bin/python3 bench/soak.py                 # 10,000,000 calls over 1,000,000 buckets, 5 rounds
    /usr/bin/python3 bench/soak.py --quick         # 200,000 calls over 20,000 buckets, 2 rounds (seconds)

bench/soak.py is the command; the code lives here, in tests/support/, which the tests import too.

One redis-server (or `--server`: a path or a kind of scripts/install-servers.sh) with Shield loaded,
no persistence, on a free loopback port. Before the first round every command used here runs once
and its key is deleted, so what the server allocates once per command (command statistics, latency
histograms, error statistics) is in the baseline; then `used_memory` is read once it is steady.

Each round:
1. `redis-benchmark -n <calls/rounds> -r <buckets> -P 16 -c 50 SHIELD.absorb soak:__rand_int__ 100
   3600`: pipelined, random keys among `buckets` names, so about 1 - e^(-calls/rounds/buckets) of the
   names become buckets (86% at 2 calls per name), each taking one token per call;
2. deletes every bucket through the module: `SHIELD.reset` of 1,000 names a call (every name the
   benchmark could have drawn), 50 calls per pipeline, from one redis-py connection; the replies
   sum to the buckets that existed, and DBSIZE must then be 0;
3. waits (at most 30 s) until `used_memory` is steady (the server shrinks its emptied key tables in
   its cron), then reads `used_memory`, `used_memory_rss`, and the RSS again after `MEMORY PURGE`
   (which returns jemalloc's free pages to the system; a no-op on a libc build).

Then a control round: the same number of `SET soak:N 99 PX ...` on the same names through
redis-benchmark, deleted the same way, to show what residue Redis itself leaves after such a
delete (a few hundred KiB at most, that does not grow: freed tables and buffers the server keeps).

Checks (`ok` in the results):
- `used_memory` after each round's delete is within the tolerance of the baseline:
  `--tolerance-bytes` (default 512 KiB) or `--tolerance-pct` (default 1%) of the baseline,
  whichever is larger;
- RSS does not grow without bound: the RSS after the last round's delete and purge is at most the
  first round's times 1.10 plus 8 MiB (the allocator keeps pages it may reuse; what matters is that
  repeated rounds do not add to it);
- the INFO shield counters equal the calls made: `absorb_calls` is every request redis-benchmark sent
  (it sends exactly -n when -n is a multiple of -P), `reset_calls` every reset call, `calls` their sum
  (INFO itself is not a Shield command), `allowed + denied = absorb_calls`, `tokens_absorbed =
  allowed` (one token a call), `buckets_reset` the sum of the reset replies, `errors = 0`; and
  `cmdstat_SHIELD.absorb` (the server's own count) equals `absorb_calls`.

Writes bench/results/soak.json and soak.md (`--out` changes the folder). Exits 1 when a check fails.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"  # where the command (bench/soak.py) writes its results

import shield_servers
from shield_servers import MODULE, Server

CAPACITY, PERIOD = 100, 3600
RESET_BATCH, RESET_PIPELINE = 1000, 50
KEY = "soak:%012d"  # what redis-benchmark makes of soak:__rand_int__


def resolve_server(spec):
    if spec and os.path.sep in spec:
        return spec
    if spec:
        find = getattr(shield_servers, "find_server", None)
        found = find(spec) if find else shield_servers.server_binaries().get(spec)
        if not found:
            raise SystemExit(f"no server binary for {spec!r}")
        return found
    return shutil.which("redis-server")


def benchmark_binary():
    return shutil.which("redis-benchmark") or shutil.which("valkey-benchmark")


def shield_counters(client):
    info = client.info("shield")
    return {k[len("SHIELD_"):].lower() if k.startswith("SHIELD_") else k.lower(): int(v)
            for k, v in info.items()}


def commandstat_calls(client, name):
    entry = client.info("commandstats").get(f"cmdstat_{name}")
    if entry is None:
        return 0
    return int(entry["calls"]) if isinstance(entry, dict) else int(re.search(r"calls=(\d+)", entry).group(1))


def memory(client):
    m = client.info("memory")
    return int(m["used_memory"]), int(m["used_memory_rss"])


def steady_used_memory(client, timeout=30.0):
    """used_memory once three readings 300 ms apart agree within 4 KiB (at most `timeout`)."""
    readings = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readings.append(memory(client)[0])
        if len(readings) >= 3 and max(readings[-3:]) - min(readings[-3:]) <= 4096:
            break
        time.sleep(0.3)
    return readings[-1]


def memory_stats(client):
    """MEMORY STATS, the numeric fields (db.0's overheads flattened)."""
    raw = client.execute_command("MEMORY", "STATS")
    if isinstance(raw, list):
        raw = dict(zip(raw[::2], raw[1::2]))
    out = {}
    for k, v in raw.items():
        if isinstance(v, int):
            out[k] = v
        elif isinstance(v, list):  # db.0: [overhead.hashtable.main, n, overhead.hashtable.expires, n]
            for kk, vv in zip(v[::2], v[1::2]):
                if isinstance(vv, int):
                    out[f"{k}.{kk}"] = vv
    return out


ABSORB = ["SHIELD.absorb", "soak:__rand_int__", str(CAPACITY), str(PERIOD)]
# The control: the same keys written by SET with an expiry, deleted the same way.
SET_PX = ["SET", "soak:__rand_int__", "99", "PX", str(PERIOD * 1000)]


def run_benchmark(port, requests, keyspace, pipeline, clients, words=ABSORB):
    cmd = [benchmark_binary(), "-h", "127.0.0.1", "-p", str(port), "-n", str(requests), "-r", str(keyspace),
           "-P", str(pipeline), "-c", str(clients), "--csv", *words]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"redis-benchmark exited {done.returncode}: {done.stderr[-2000:]}")
    lines = [l for l in done.stdout.strip().splitlines() if l.startswith('"') and not l.startswith('"test"')]
    return float(lines[-1].split('","')[1].strip('"'))


def reset_all(server, keyspace):
    """SHIELD.reset of every name in the key space, through a connection of its own that is closed
    afterwards (so its query buffer is not counted in used_memory); returns (calls made, buckets
    that existed)."""
    with server.client() as client:
        return _reset_all(client, keyspace)


def _reset_all(client, keyspace):
    calls = existed = 0
    pipe = client.pipeline(transaction=False)
    queued = 0
    for start in range(0, keyspace, RESET_BATCH):
        pipe.execute_command("SHIELD.reset", *[KEY % i for i in range(start, min(keyspace, start + RESET_BATCH))])
        queued += 1
        if queued == RESET_PIPELINE:
            existed += sum(pipe.execute())
            calls += queued
            queued = 0
    if queued:
        existed += sum(pipe.execute())
        calls += queued
    return calls, existed


def soak(binary, module, calls, buckets, rounds, pipeline=16, clients=50, tolerance_bytes=512 * 1024,
         tolerance_pct=1.0, log=print):
    per_round = calls // rounds
    per_round -= per_round % pipeline  # redis-benchmark sends exactly -n when -n is a multiple of -P
    server = Server(binary, module=module, extra_args=["--appendonly", "no"]).start()
    try:
        client = server.client()
        version = client.info("server")
        allocator = client.info("memory").get("mem_allocator", "?")
        # Warm-up: every command once, so what the server allocates once per command is in the baseline.
        client.execute_command("SHIELD.absorb", "soak:warmup", CAPACITY, PERIOD)
        client.execute_command("SHIELD.reset", "soak:warmup")
        client.info("shield")
        client.info("commandstats")
        client.execute_command("MEMORY", "PURGE")
        warm = shield_counters(client)
        baseline = steady_used_memory(client)
        stats_before = memory_stats(client)
        baseline_rss = memory(client)[1]
        tolerance = max(tolerance_bytes, int(baseline * tolerance_pct / 100))
        log(f"baseline used_memory {baseline:,} B, RSS {baseline_rss:,} B; tolerance {tolerance:,} B")
        made = {"absorb": 0, "reset": 0, "existed": 0}
        per = []
        started = time.monotonic()
        for rnd in range(rounds):
            t0 = time.monotonic()
            ops = run_benchmark(server.port, per_round, buckets, pipeline, clients)
            made["absorb"] += per_round
            loaded_used, loaded_rss = memory(client)
            keys = client.dbsize()
            t1 = time.monotonic()
            reset_calls, existed = reset_all(server, buckets)
            made["reset"] += reset_calls
            made["existed"] += existed
            left = client.dbsize()
            t2 = time.monotonic()
            used_after = steady_used_memory(client)
            rss_after = memory(client)[1]
            client.execute_command("MEMORY", "PURGE")
            time.sleep(1.2)  # INFO's used_memory_rss is refreshed by the server's cron
            rss_purged = memory(client)[1]
            row = {"round": rnd + 1, "absorb_calls": per_round, "ops_per_sec": round(ops),
                   "buckets_after_load": keys, "used_memory_loaded": loaded_used, "rss_loaded": loaded_rss,
                   "reset_calls": reset_calls, "buckets_reset": existed, "keys_left": left,
                   "used_memory_after_delete": used_after, "used_memory_vs_baseline": used_after - baseline,
                   "rss_after_delete": rss_after, "rss_after_purge": rss_purged,
                   "load_seconds": round(t1 - t0, 1), "delete_seconds": round(t2 - t1, 1)}
            per.append(row)
            log(f"round {rnd + 1}/{rounds}: {ops:,.0f} ops/s, {keys:,} buckets, used {loaded_used:,} -> "
                f"{used_after:,} B ({used_after - baseline:+,} vs baseline), RSS {loaded_rss:,} -> "
                f"{rss_after:,} -> {rss_purged:,} B after purge")
        stats_after = memory_stats(client)
        counters = shield_counters(client)
        server_count = commandstat_calls(client, "SHIELD.absorb")
        # Control round: SET ... PX on the same names, deleted with SHIELD.reset the same way.
        run_benchmark(server.port, per_round, buckets, pipeline, clients, words=SET_PX)
        control_keys = client.dbsize()
        _, control_existed = reset_all(server, buckets)
        control = {"keys": control_keys, "used_memory_after_delete": steady_used_memory(client)}
        control["used_memory_vs_baseline"] = control["used_memory_after_delete"] - baseline
        log(f"control (SET PX): {control_keys:,} keys, used_memory after delete "
            f"{control['used_memory_vs_baseline']:+,} B vs baseline")
        seconds = time.monotonic() - started
    finally:
        server.cleanup()

    delta = {k: counters.get(k, 0) - warm.get(k, 0) for k in counters}
    expected = {"absorb_calls": made["absorb"], "reset_calls": made["reset"],
                "calls": made["absorb"] + made["reset"], "buckets_reset": made["existed"], "errors": 0}
    checks = []
    for name, want in expected.items():
        checks.append({"check": f"INFO shield {name} = {want:,}", "ok": delta.get(name) == want,
                       "got": delta.get(name)})
    checks.append({"check": "allowed + denied = absorb_calls",
                   "ok": delta.get("allowed", 0) + delta.get("denied", 0) == delta.get("absorb_calls"),
                   "got": [delta.get("allowed"), delta.get("denied")]})
    checks.append({"check": "tokens_absorbed = allowed", "ok": delta.get("tokens_absorbed") == delta.get("allowed"),
                   "got": delta.get("tokens_absorbed")})
    checks.append({"check": "cmdstat_SHIELD.absorb calls = absorb_calls",
                   "ok": server_count - 1 == made["absorb"], "got": server_count - 1})
    checks.append({"check": "no bucket left after the deletes", "ok": all(r["keys_left"] == 0 for r in per),
                   "got": [r["keys_left"] for r in per]})
    worst = max(r["used_memory_vs_baseline"] for r in per)
    growth = per[-1]["used_memory_after_delete"] - per[min(1, len(per) - 1)]["used_memory_after_delete"]
    checks.append({"check": "used_memory after delete does not grow from round 2 to the last (<= 64 KiB)",
                   "ok": growth <= 64 * 1024, "got": growth})
    checks.append({"check": f"used_memory back to baseline within {tolerance:,} B after every round",
                   "ok": worst <= tolerance, "got": worst})
    first, last = per[0]["rss_after_purge"], per[-1]["rss_after_purge"]
    checks.append({"check": "RSS after the last round <= first round's x 1.10 + 8 MiB",
                   "ok": last <= first * 1.10 + 8 * 1024 * 1024, "got": [first, last]})
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "server": f"{'valkey' if 'valkey_version' in version else 'redis'} "
                  f"{version.get('valkey_version', version.get('redis_version'))}, {allocator}",
        "calls": made["absorb"], "buckets": buckets, "rounds": rounds, "pipeline": pipeline, "clients": clients,
        "seconds": round(seconds, 1),
        "baseline_used_memory": baseline, "baseline_rss": baseline_rss, "tolerance_bytes": tolerance,
        "rounds_detail": per, "counters": delta, "shield_calls_made": made, "control_set_px": control,
        "memory_stats_change": {k: stats_after.get(k, 0) - v for k, v in stats_before.items()
                                if stats_after.get(k, 0) != v and not k.startswith(("peak", "total.allocated",
                                                                                    "startup", "allocator",
                                                                                    "rss", "fragmentation"))},
        "checks": checks, "ok": all(c["ok"] for c in checks),
    }


def write_results(result, out, command):
    out.mkdir(parents=True, exist_ok=True)
    result = dict(result, command=command)
    (out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Memory and counters under long load", "",
             f"Measured {result['date']} on {result['machine']}; {result['server']}. `{command}`: "
             f"{result['calls']:,} SHIELD.absorb calls over {result['buckets']:,} bucket names in "
             f"{result['rounds']} rounds (redis-benchmark, {result['clients']} clients, pipeline "
             f"{result['pipeline']}), every bucket deleted with SHIELD.reset after each round; "
             f"{result['seconds']} s in all.", "",
             f"Baseline used_memory {result['baseline_used_memory']:,} B (after one call of each command); "
             f"tolerance {result['tolerance_bytes']:,} B.", "",
             "| round | ops/s | buckets | used_memory loaded | used_memory after delete | vs baseline | "
             "RSS loaded | RSS after delete | RSS after MEMORY PURGE |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rounds_detail"]:
        lines.append(f"| {r['round']} | {r['ops_per_sec']:,} | {r['buckets_after_load']:,} | "
                     f"{r['used_memory_loaded']:,} | {r['used_memory_after_delete']:,} | "
                     f"{r['used_memory_vs_baseline']:+,} | {r['rss_loaded']:,} | {r['rss_after_delete']:,} | "
                     f"{r['rss_after_purge']:,} |")
    lines += ["", "| check | result | measured |", "|---|---|---|"]
    for c in result["checks"]:
        lines.append(f"| {c['check']} | {'pass' if c['ok'] else 'FAIL'} | {c['got']} |")
    ctl = result["control_set_px"]
    lines += ["", f"Control: one round of `SET soak:N 99 PX {PERIOD * 1000}` on the same names ({ctl['keys']:,} keys), "
              f"deleted the same way: used_memory after delete {ctl['used_memory_vs_baseline']:+,} B vs the "
              f"baseline (the same kind of residue: Redis's own, not Shield's)."]
    lines += ["", "What used_memory holds after the last delete that it did not at the baseline (MEMORY STATS, "
              "bytes): " + (", ".join(f"{k} {v:+,}" for k, v in result["memory_stats_change"].items()) or "nothing")]
    c = result["counters"]
    lines += ["", "INFO shield over the run: " + ", ".join(f"{k} {v:,}" for k, v in c.items() if v)]
    (out / "soak.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description="Memory and counters under long load (see the docstring).")
    p.add_argument("--calls", type=int, default=10_000_000)
    p.add_argument("--buckets", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--pipeline", type=int, default=16)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--tolerance-bytes", type=int, default=512 * 1024)
    p.add_argument("--tolerance-pct", type=float, default=1.0)
    p.add_argument("--quick", action="store_true", help="200,000 calls over 20,000 buckets, 2 rounds")
    p.add_argument("--server", default=None, help="server binary path or kind (default: redis-server)")
    p.add_argument("--module", default=MODULE)
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--no-results", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.calls, args.buckets, args.rounds = 200_000, 20_000, 2
    if not benchmark_binary():
        raise SystemExit("redis-benchmark not found (Debian package redis-tools)")
    result = soak(resolve_server(args.server), args.module, args.calls, args.buckets, args.rounds,
                  args.pipeline, args.clients, args.tolerance_bytes, args.tolerance_pct)
    command = "/usr/bin/python3 bench/soak.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if not args.no_results:
        write_results(result, Path(args.out), command.strip())
        print((Path(args.out) / "soak.md").read_text())
    for c in result["checks"]:
        print(f"{'pass' if c['ok'] else 'FAIL'}: {c['check']} (measured {c['got']})")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
