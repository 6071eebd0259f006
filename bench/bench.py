#!/usr/bin/env python3
"""Shield's benchmark: SHIELD.absorb next to SET, SET PX, INCR and the Lua scripts users write.

Everything runs against one redis-server with the module, started here on a free loopback port,
in interleaved rounds; medians are reported. The floor module (bench/floor, built only with
-DSHIELD_BUILD_BENCH=ON) is loaded next to Shield: its commands do only what the module API imposes on any bucket command, and each Shield
command is also reported as a ratio to its floor, measured in the same run on the same server.
Writes results/results.json, results/results.md and results/chart.png. Run it through
bench/run.sh, which installs and builds what it needs; `--quick` is a smoke run of a few seconds.
"""

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# What tests and the benchmark share (the workloads, the callgrind counts, the server helper).
sys.path.insert(0, str(REPO / "tests" / "support"))

from shield_instructions import MEASURED, measure  # noqa: E402
from shield_servers import Server, wait_until  # noqa: E402
from shield_workloads import BIG, PREPARE, WORKLOADS, default_floor, needs_floor, prepare_keys  # noqa: E402

KEYSPACE = 100_000

# Ratios of a workload's cost to its floor's (or to plain absorb), with the targets.
# A denied absorb is a write command that writes nothing: its floor is FLOOR.read, which opens the
# key read+write as any write command must. SHIELD.inspect is read-only: its floors are the
# read-only FLOOR.read_ro and FLOOR.call_read (GET through RedisModule_Call).
FLOOR_RATIOS = [
    ("absorb allowed", "floor write", 1.10),
    ("absorb denied", "floor read", 1.10),
    ("inspect", "floor read ro", 1.15),
    ("inspect", "floor call read", 1.15),
    ("absorb VERBOSE", "absorb allowed", 1.15),
    ("absorb_multi 2", "absorb allowed", 1.6),
    ("refund", "floor write", None),
    ("absorb BURST", "absorb allowed", None),
    ("CL.THROTTLE allowed", "absorb allowed", 1.15),
    ("CL.THROTTLE allowed", "floor write", None),
    ("CL.THROTTLE denied", "absorb denied", None),
    ("gcra allowed", "absorb allowed", None),
    ("window allowed", "absorb allowed", None),
    ("window allowed", "floor write", None),
    ("quota allowed", "absorb allowed", None),
    ("quota allowed", "floor write", None),
]

def run(cmd, **kwargs):
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr[-2000:]} {done.stdout[-2000:]}")
    return done.stdout


def redis_benchmark(port, words, *, requests, clients, pipeline, keyspace=KEYSPACE, extra=()):
    out = run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients), "-n", str(requests),
               "-r", str(keyspace), "-P", str(pipeline), "--csv", *extra, *words])
    lines = [l for l in out.strip().splitlines() if l.startswith('"') and not l.startswith('"test"')]
    fields = [f.strip('"') for f in lines[-1].split('","')]
    return float(fields[1])


def commandstat(client, name):
    stats = client.info("commandstats")
    entry = stats.get(f"cmdstat_{name}")
    return float(entry["usec_per_call"]) if entry else float("nan")


def throughput(server, rounds, requests, names):
    client = server.client()
    shas = {
        "{bucket}": client.script_load((HERE / "lua" / "token_bucket.lua").read_text()),
        "{gcra}": client.script_load((HERE / "lua" / "gcra.lua").read_text()),
    }
    results = {}
    for rnd in range(rounds):
        client.flushall()
        order = list(names) if rnd % 2 == 0 else list(reversed(names))
        for pipeline in (1, 16):
            for name in order:
                words, stat, prep = WORKLOADS[name]
                # Right before each run: a bucket lives one period (60 s) after its last write,
                # less than a round takes, so keys prepared once per round would have expired.
                if prep in PREPARE:
                    prepare_keys(client, prep, KEYSPACE)
                words = [shas.get(w, w) for w in words]
                keyspace = 100_000_000 if prep == "new" else KEYSPACE
                # "new" workloads: a fresh prefix per run and a 100M key space, so nearly every key is new.
                words = [w.replace("n:__rand_int__", f"n{rnd}p{pipeline}w{list(WORKLOADS).index(name)}:__rand_int__") for w in words]
                n = requests if pipeline == 1 else requests * 3
                client.config_resetstat()
                ops = redis_benchmark(server.port, words, requests=n, clients=50, pipeline=pipeline, keyspace=keyspace)
                usec = commandstat(client, stat)
                entry = results.setdefault(f"{name}|{pipeline}", {"ops": [], "usec": []})
                entry["ops"].append(ops)
                entry["usec"].append(usec)
        print(f"  round {rnd + 1}/{rounds} done", flush=True)
    summary = {}
    for key, entry in results.items():
        name, pipeline = key.split("|")
        summary.setdefault(name, {})[f"P{pipeline}"] = {
            "ops_per_sec": statistics.median(entry["ops"]),
            "usec_per_call": statistics.median(entry["usec"]),
        }
    return summary


PERCENTILE_LINE = re.compile(r"^\s*([\d.]+)% <= ([\d.]+) milliseconds")


def latency(server, words, requests, clients):
    """p50/p99/p99.9 in ms from redis-benchmark's percentile distribution (the first listed
    percentile at or above each target, so never an underestimate)."""
    out = run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port), "-c", str(clients), "-n", str(requests),
               "-r", str(KEYSPACE), "--precision", "3", *words])
    points = []
    in_dist = False
    for line in out.splitlines():
        if "Latency by percentile distribution" in line:
            in_dist = True
            continue
        if in_dist:
            m = PERCENTILE_LINE.match(line)
            if m:
                points.append((float(m.group(1)), float(m.group(2))))
            elif points and "cumulative" not in line:
                break
    def at(target):
        for pct, ms in points:
            if pct >= target:
                return ms
        return points[-1][1]
    return {"p50": at(50.0), "p99": at(99.0), "p99.9": at(99.9)}


def latencies(server, rounds, requests):
    client = server.client()
    client.flushall()
    prepare_keys(client, "allowed", KEYSPACE)
    cases = {
        "absorb allowed": WORKLOADS["absorb allowed"][0],
        "SET PX": WORKLOADS["SET PX"][0],
    }
    samples = {name: [] for name in cases}
    for _ in range(rounds):
        for name, words in cases.items():
            samples[name].append(latency(server, words, requests, clients=4))
    return {name: {p: statistics.median(s[p] for s in runs) for p in ("p50", "p99", "p99.9")}
            for name, runs in samples.items()}


def memory(server, count):
    """Bytes per key over `count` keys: a Shield bucket vs SET k <int> PX."""
    client = server.client()
    result = {}
    scripts = {
        "SHIELD bucket": "redis.call('SHIELD.absorb', 'm:' .. i, '10', '60', '1')",
        "SHIELD bucket BURST": "redis.call('SHIELD.absorb', 'm:' .. i, '10', '60', '1', 'BURST', '100')",
        "CL.THROTTLE key": "redis.call('CL.THROTTLE', 'm:' .. i, '10', '1', '60')",
        "redis-cell's value (SET of a TAT)": "redis.call('SET', 'm:' .. i, '1795701372400423000', 'PX', '60000')",
        "SHIELD.window key": "redis.call('SHIELD.window', 'm:' .. i, '10', '60', '1')",
        "SHIELD.quota key": "redis.call('SHIELD.quota', 'm:' .. i, '10', 'DAY', '1')",
        "SET k <int> PX": "redis.call('SET', 'm:' .. i, '9', 'PX', '60000')",
    }
    for name, call in scripts.items():
        client.flushall()
        wait_until(lambda: client.dbsize() == 0)
        before = client.info("memory")["used_memory"]
        for start in range(0, count, 100_000):
            client.eval(f"for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do {call} end return 1", 0,
                        start, min(count, start + 100_000) - 1)
        after = client.info("memory")["used_memory"]
        keys = client.dbsize()
        result[name] = {"keys": keys, "bytes_per_key": round((after - before) / keys, 1),
                        "encoding": client.object("encoding", "m:1")}
    client.flushall()
    return result


def node_compare(server, operations):
    script = HERE / "node" / "compare.js"
    if not (HERE / "node" / "node_modules" / "rate-limiter-flexible").exists() or not shutil.which("node"):
        return None
    server.client().flushall()
    out = run(["node", str(script), str(server.port), "50", str(operations)], cwd=HERE / "node")
    return json.loads(out.strip().splitlines()[-1])


def cluster_compare(binary, module, requests):
    """SHIELD.absorb throughput on one standalone primary vs a three-primary cluster."""
    words = ["SHIELD.absorb", "c:{tag}:__rand_int__", str(BIG), "60", "1"]
    single = Server(binary, module=module).start()
    try:
        one = redis_benchmark(single.port, ["SHIELD.absorb", "c:__rand_int__", str(BIG), "60", "1"],
                              requests=requests, clients=50, pipeline=16)
    finally:
        single.cleanup()
    nodes = [Server(binary, module=module, cluster=True) for _ in range(3)]
    try:
        for node in nodes:
            node.start()
        run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes], "--cluster-yes"])
        wait_until(lambda: all(n.client().cluster("info")["cluster_state"] == "ok" for n in nodes), timeout=30,
                   what="cluster ok")
        three = redis_benchmark(nodes[0].port, words, requests=requests, clients=50, pipeline=16, extra=("--cluster",))
    finally:
        for node in nodes:
            node.cleanup()
    return {"one primary": one, "three primaries": three}


def core_bench():
    binary = REPO / "build-bench" / "bench" / "core" / "shield_core_bench"
    if not binary.exists():
        return None
    out = run([str(binary), "--benchmark_format=json", "--benchmark_min_time=0.2"])
    data = json.loads(out)
    return {b["name"]: round(b["cpu_time"], 1) for b in data["benchmarks"]}


def floor_ratios(results):
    """The rows of "ratio to the floor, same run": for each FLOOR_RATIOS pair that was measured,
    the ratio of usec/call at pipeline 16 and, where callgrind counted both, of instructions."""
    t = results["throughput"]
    counted = results.get("instructions") or {}
    rows = []
    for name, base, target in FLOOR_RATIOS:
        if name not in t or base not in t:
            continue
        usec = t[name]["P16"]["usec_per_call"] / t[base]["P16"]["usec_per_call"]
        instr = counted[name] / counted[base] if counted.get(name) and counted.get(base) else None
        rows.append({"workload": name, "vs": base, "target": target,
                     "usec_ratio": round(usec, 3) if math.isfinite(usec) else None,
                     "instructions_ratio": round(instr, 3) if instr is not None else None})
    return rows


def ratio_cell(value, target):
    if value is None:
        return "n/a"
    return f"{value:.2f}" + (" (over)" if target is not None and value > target else "")


def vs(row, base, field):
    """row[field] / base[field] formatted, or n/a when the base workload was not run."""
    return f"{row[field] / base[field]:.2f}" if base else "n/a"


def write_markdown(results, path):
    t = results["throughput"]
    set_p16 = t.get("SET", {}).get("P16")
    set_px = t.get("SET PX", {}).get("P16")
    lines = [
        f"Measured {results['date']} on {results['machine']}; {results['server']}.",
        "50 clients, random keys from a 100k key space (the \"new\" rows: 100M, so nearly every key is new), medians of "
        f"{results['rounds']} interleaved rounds. usec/call is the server's own cost (INFO commandstats).",
        "",
        "| workload | ops/s P1 | ops/s P16 | P16 vs SET | P16 vs SET PX | usec/call | usec vs SET PX |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in t.items():
        p1, p16 = row["P1"], row["P16"]
        lines.append(
            f"| {name} | {p1['ops_per_sec']:,.0f} | {p16['ops_per_sec']:,.0f} | "
            f"{vs(p16, set_p16, 'ops_per_sec')} | {vs(p16, set_px, 'ops_per_sec')} | {p16['usec_per_call']:.2f} | "
            f"{vs(p16, set_px, 'usec_per_call')} |")
    if results.get("floor_ratios"):
        lines += ["", "Ratio to the floor, same run: the floor module's commands (bench/floor) do only what the "
                  "module API imposes on a bucket command. usec/call at pipeline 16; instructions per call "
                  "from callgrind where counted. \"(over)\": above the target.", "",
                  "| workload | vs | usec/call ratio | instructions ratio | target |", "|---|---|---:|---:|---:|"]
        for row in results["floor_ratios"]:
            target = f"<= {row['target']:.2f}x" if row["target"] is not None else ""
            lines.append(f"| {row['workload']} | {row['vs']} | {ratio_cell(row['usec_ratio'], row['target'])} | "
                         f"{ratio_cell(row['instructions_ratio'], row['target'])} | {target} |")
    lines += ["", "Latency, 4 clients, pipeline 1 (ms):", "", "| workload | p50 | p99 | p99.9 |", "|---|---:|---:|---:|"]
    for name, row in results["latency"].items():
        lines.append(f"| {name} | {row['p50']:.3f} | {row['p99']:.3f} | {row['p99.9']:.3f} |")
    lines += ["", "Memory per key:", "", "| key | bytes/key | value encoding |", "|---|---:|---|"]
    for name, row in results["memory"].items():
        lines.append(f"| {name} | {row['bytes_per_key']} | {row['encoding']} |")
    if results.get("node"):
        lines += ["", "From Node.js (50 in flight, ops/s): " +
                  ", ".join(f"{k} {v:,}" for k, v in results["node"].items())]
    if results.get("cluster"):
        lines += ["", "Cluster, pipeline 16, one client process (ops/s): " +
                  ", ".join(f"{k} {v:,.0f}" for k, v in results["cluster"].items()) +
                  ". Two cores run the client and every server, so this does not show scaling."]
    if results.get("instructions"):
        base = results["instructions"].get("SET PX")
        lines += ["", "Instructions the server runs per call (callgrind, inclusive, the command's handler): " +
                  ", ".join(f"{k} {v:,}" + (f" ({v / base:.2f}x SET PX)" if base else "")
                            for k, v in results["instructions"].items())]
    if results.get("core"):
        lines += ["", "Core alone (Google Benchmark, ns): " +
                  ", ".join(f"{k} {v}" for k, v in results["core"].items())]
    path.write_text("\n".join(lines) + "\n")


def draw_chart(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    t = results["throughput"]
    if "SET PX" not in t:
        return False
    names = list(t)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [2, 1]})
    width = 0.38
    for i, pipeline in enumerate(("P1", "P16")):
        base = t["SET PX"][pipeline]["ops_per_sec"]
        xs = [j + (i - 0.5) * width for j in range(len(names))]
        left.bar(xs, [t[n][pipeline]["ops_per_sec"] / base for n in names], width, label=f"pipeline {pipeline[1:]}")
    left.axhline(1.0, color="grey", linewidth=0.8)
    left.set_xticks(range(len(names)))
    left.set_xticklabels(names, rotation=30, ha="right")
    left.set_ylabel("throughput / SET PX")
    left.set_title("Throughput relative to SET k v PX 60000")
    left.legend()
    lat = results["latency"]
    pcts = ["p50", "p99", "p99.9"]
    for i, name in enumerate(lat):
        right.bar([j + (i - 0.5) * width for j in range(3)], [lat[name][p] for p in pcts], width, label=name)
    right.set_xticks(range(3))
    right.set_xticklabels(pcts)
    right.set_ylabel("ms")
    right.set_title("Latency, 4 clients")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--memory-keys", type=int, default=1_000_000)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--module", default=os.environ.get("SHIELD_MODULE", str(REPO / "build" / "libredis_shield.so")))
    parser.add_argument("--floor", default=None,
                        help="the floor module (default: bench/floor/libshield_floor.so in --module's build folder, "
                             "or $SHIELD_FLOOR_MODULE)")
    parser.add_argument("--only", default=None,
                        help="comma-separated workloads to run for throughput and callgrind (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round, 2,000 requests, 20,000 memory keys; no Node, cluster, core "
                             "benchmark or callgrind")
    args = parser.parse_args()
    floor = os.path.abspath(args.floor or default_floor(args.module))
    names = list(WORKLOADS)
    if args.only:
        names = [n.strip() for n in args.only.split(",")]
        unknown = [n for n in names if n not in WORKLOADS]
        if unknown:
            parser.error(f"unknown workloads {unknown}; known: {', '.join(WORKLOADS)}")
    if args.quick:
        args.rounds, args.requests, args.memory_keys = 1, 2_000, 20_000
    binary = shutil.which("redis-server")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # The floor module (built only with -DSHIELD_BUILD_BENCH=ON, as bench/run.sh does) when a workload calls it.
    floor_args = ["--loadmodule", floor] if needs_floor(names) else []
    server = Server(binary, module=args.module, extra_args=["--appendonly", "no", *floor_args]).start()
    try:
        version = server.client().info("server")["redis_version"]
        results = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "server": f"redis-server {version}",
            "rounds": args.rounds,
        }
        print("throughput ...", flush=True)
        results["throughput"] = throughput(server, args.rounds, args.requests, names)
        print("latency ...", flush=True)
        results["latency"] = latencies(server, args.rounds, args.requests // 2)
        print("memory ...", flush=True)
        results["memory"] = memory(server, args.memory_keys)
        if not args.quick:
            print("node ...", flush=True)
            results["node"] = node_compare(server, args.requests // 2)
    finally:
        server.cleanup()
    if not args.quick:
        print("cluster ...", flush=True)
        results["cluster"] = cluster_compare(binary, args.module, args.requests * 3)
        results["core"] = core_bench()
        if shutil.which("valgrind"):
            print("instructions (callgrind) ...", flush=True)
            counted = [n for n in MEASURED if n in names]
            results["instructions"] = measure(str(Path(args.module).resolve()), counted, floor=floor)
    results["floor_ratios"] = floor_ratios(results)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, out / "results.md")
    draw_chart(results, out / "chart.png")
    print((out / "results.md").read_text())


if __name__ == "__main__":
    main()
