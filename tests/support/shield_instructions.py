"""Instructions the server executes per call, counted by callgrind: repeatable whatever else the
machine is doing, so it shows small changes that throughput on a shared two-core box hides.

Runs redis-server with the module under valgrind, sends each workload (tests/support's
shield_workloads, the throughput benchmark's), and reads the inclusive instruction count of the
command's handler (setCommand, the module command dispatcher, evalShaCommand). The floor module
(bench/floor, built only with -DSHIELD_BUILD_BENCH=ON) is loaded too when a measured workload
calls it. Each workload sends the same calls in the same order on every run, to a server whose
hash seed is fixed (bench/fixed_seed.c), so a figure repeats to within a fraction of an instruction.

The command is bench/instructions.py. Its `--check` is the CI gate on these figures
(scripts/test.sh): it measures every Shield command's workload and fails when one costs more than
3% above bench/results/instructions-baseline.json. `--write-baseline` rewrites that file; a change
that is meant to cost more updates it in the same commit and says why in the commit message.
Here, so that tests (tests/integration/test_instruction_gate.py) import the gate's rule without
reaching into bench/.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from shield_servers import Server
from shield_workloads import PREPARE, WORKLOADS, default_floor, needs_floor, prepare_keys

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"

CALLS = 20_000

# The workloads of the throughput benchmark (same commands, same prepared keys) that are counted.
MEASURED = ["SET PX", "SET PX new", "absorb new", "absorb allowed", "absorb denied", "Lua bucket",
            "floor write", "floor read", "floor read ro", "floor call read", "absorb VERBOSE", "inspect", "absorb_multi 2",
            "refund", "absorb BURST", "CL.THROTTLE allowed", "CL.THROTTLE denied", "gcra allowed",
            "window allowed", "quota allowed", "limit 1", "limit 2", "limit 2 HEADERS", "settle"]

# Valkey renamed the module command dispatcher.
DISPATCHERS = {"redis": "RedisModuleCommandDispatcher", "valkey": "ValkeyModuleCommandDispatcher"}

# The function whose inclusive count is a call's cost, by the INFO commandstats name bench.py uses.
HANDLERS = {"set": "setCommand", "evalsha": "evalShaCommand"}

# The gate: a workload fails when it costs more than THRESHOLD_PERCENT above its baseline; a
# decrease of LOWER_PERCENT or more is named, with the command that records it.
THRESHOLD_PERCENT = 3
LOWER_PERCENT = 1
BASELINE = BENCH / "results" / "instructions-baseline.json"
REGENERATE = "/usr/bin/python3 bench/instructions.py --write-baseline"
DEFAULT_MODULE = REPO / "build" / "libredis_shield.so"  # what scripts/build.sh builds (RelWithDebInfo)


def key_numbers(prep, keyspace, calls):
    """The numbers put in place of __rand_int__: warm-up calls, then measured calls. A fixed
    sequence rather than redis-benchmark's random draws, so that two runs send the same calls and
    count the same instructions: every key of the prepared space in turn, or for the "new"
    workloads a fresh key on every call."""
    if prep == "new":
        return range(2 * keyspace), range(2 * keyspace, 2 * keyspace + calls)
    return [i % keyspace for i in range(2 * keyspace)], [i % keyspace for i in range(calls)]


def send(server, words, numbers, pipeline=16):
    """Sends the command once per number from one client, `pipeline` calls at a time, each reply
    read before the next batch: the server reads each batch at once, run after run."""
    with server.client() as client:
        for start in range(0, len(numbers), pipeline):
            pipe = client.pipeline(transaction=False)
            for number in numbers[start:start + pipeline]:
                pipe.execute_command(*[w.replace("__rand_int__", f"{number:012d}") for w in words])
            pipe.execute()


def fixed_seed_library(folder):
    """Builds bench/fixed_seed.c into `folder`: preloaded, it gives the server the same hash seed
    in every run (see the file)."""
    library = Path(folder) / "fixed_seed.so"
    subprocess.run([os.environ.get("CC", "cc"), "-shared", "-fPIC", "-O2", "-o", str(library),
                    str(BENCH / "fixed_seed.c"), "-ldl"], check=True)
    return library


def measure(module, names=MEASURED, calls=CALLS, keyspace=1000, server_binary=None, kind="redis", floor=None):
    """Instructions per call of each workload of `names`, each on its own server. The floor module
    (`floor`, default: next to `module`) is loaded only when one of `names` needs it, so the gate's
    workloads run on a build without it."""
    extra_args = []
    if needs_floor(names):
        floor = os.path.abspath(floor or default_floor(module))
        if not os.path.exists(floor):
            raise FileNotFoundError(f"no floor module at {floor}: it is built only with -DSHIELD_BUILD_BENCH=ON "
                                    "(bench/run.sh), or pass --floor")
        extra_args = ["--loadmodule", floor]
    results = {}
    with tempfile.TemporaryDirectory(prefix="shield-instructions-") as scratch:
        preload = fixed_seed_library(scratch)
        for name in names:
            words, stat, prep = WORKLOADS[name]
            symbol = HANDLERS.get(stat, DISPATCHERS[kind])
            out_file = os.path.join(scratch, "callgrind.out")
            server = Server(server_binary or shutil.which("redis-server"), module=module,
                            extra_args=extra_args,
                            launcher=["env", f"LD_PRELOAD={preload}", "valgrind", "--tool=callgrind",
                                      f"--callgrind-out-file={out_file}", "--toggle-collect=call"])
            server.start(timeout=60)
            try:
                client = server.client()
                sha = client.script_load((BENCH / "lua" / "token_bucket.lua").read_text())
                words = [sha if w == "{bucket}" else w for w in words]
                if prep in PREPARE:
                    prepare_keys(client, prep, keyspace)
                warm_up, measured = key_numbers(prep, keyspace, calls)
                # Warm-up (creates the keys), then the measured calls: the difference of two dumps.
                send(server, words, warm_up)
                before = handler_instructions(server, out_file, symbol)
                send(server, words, measured)
                after = handler_instructions(server, out_file, symbol)
                results[name] = round((after - before) / calls)
            finally:
                server.cleanup()
                for path in Path(scratch).glob("callgrind.out*"):
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


def gated_workloads():
    """The workloads of MEASURED that call a Shield command (not SET, Lua or the floor module)."""
    return [name for name in MEASURED
            if WORKLOADS[name][0][0].upper().startswith("SHIELD.") or WORKLOADS[name][0][0].upper() == "CL.THROTTLE"]


def compare(baseline, now, threshold=THRESHOLD_PERCENT):
    """The gate's rule. Returns one row per workload of `now`, (name, baseline, now, change in %,
    verdict), and the names that fail: a workload costing more than `threshold` percent above its
    baseline ("over"), or with no baseline at all ("no baseline"). "lower": at least LOWER_PERCENT
    below; "ok": anything else, up to exactly `threshold` percent above."""
    rows, failed = [], []
    for name, count in now.items():
        base = baseline.get(name)
        if not base:
            rows.append((name, None, count, None, "no baseline"))
            failed.append(name)
            continue
        change = (count - base) * 100 / base
        if count * 100 > base * (100 + threshold):  # integers: exactly +3% passes
            verdict = "over"
            failed.append(name)
        elif count * 100 <= base * (100 - LOWER_PERCENT):
            verdict = "lower"
        else:
            verdict = "ok"
        rows.append((name, base, count, change, verdict))
    return rows, failed


def report(rows, failed, threshold=THRESHOLD_PERCENT):
    """The table and verdict the gate prints."""
    lines = ["| workload | baseline | now | change |", "|---|---:|---:|---:|"]
    for name, base, count, change, verdict in rows:
        mark = "" if verdict == "ok" else f" ({verdict})"
        lines.append(f"| {name} | {f'{base:,}' if base else '-'} | {count:,} | "
                     f"{f'{change:+.2f}%' if change is not None else '-'}{mark} |")
    lower = [row for row in rows if row[4] == "lower"]
    if lower:
        lines.append("")
        lines += [f"{name} now costs {-change:.2f}% less ({base:,} -> {count:,} instructions per call)."
                  for name, base, count, change, _ in lower]
        lines.append(f"Record the gain so that the gate holds it: `{REGENERATE}`, committed with the change.")
    lines.append("")
    if failed:
        for name, base, count, change, verdict in rows:
            if verdict == "over":
                lines.append(f"FAILED: {name} costs {change:+.2f}% ({base:,} -> {count:,} instructions per call), "
                             f"more than {threshold}% above the baseline.")
            elif verdict == "no baseline":
                lines.append(f"FAILED: {name} has no baseline.")
        lines.append(f"If the cost is meant: `{REGENERATE}` and commit {BASELINE.relative_to(REPO)} in the same "
                     "commit as the change, saying why in its message.")
    else:
        lines.append(f"ok: no workload costs more than {threshold}% above its baseline.")
    return "\n".join(lines)


def server_version(binary):
    out = subprocess.run([binary, "--version"], check=True, capture_output=True, text=True).stdout
    kind = "valkey-server" if "valkey" in out.lower() else "redis-server"
    return f"{kind} {re.search(r'v=([0-9.]+)', out).group(1)}"


def build_description(module):
    """The build type and compiler recorded in the CMake cache next to the module."""
    cache = Path(module).parent / "CMakeCache.txt"
    text = cache.read_text() if cache.exists() else ""
    build_type = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", text, re.M)
    compiler = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.*)$", text, re.M)
    version = ""
    if compiler:
        version = subprocess.run([compiler.group(1), "--version"], capture_output=True, text=True).stdout
    return {"build_type": build_type.group(1) if build_type else "unknown",
            "compiler": version.splitlines()[0] if version else "unknown"}


def default_server():
    """Redis 7.0: the matrix's redis7 (Debian's redis-server), else redis-server on PATH."""
    matrix = REPO / ".deps" / "servers" / "redis7" / "bin" / "redis-server"
    return str(matrix) if matrix.exists() else shutil.which("redis-server")


def write_baseline(path, module, server, names):
    path = Path(path)
    old = json.loads(path.read_text()) if path.exists() else {}
    counts = measure(module, names, calls=CALLS, server_binary=server)
    if set(names) != set(gated_workloads()):  # --only: keep the other workloads' figures
        counts = {name: counts.get(name, old.get("instructions", {}).get(name)) for name in gated_workloads()}
    baseline = {
        "about": "Instructions per call (callgrind, inclusive, the module command dispatcher) of every Shield "
                 "command's workload of bench/instructions.py. scripts/test.sh fails when one costs more than "
                 f"{THRESHOLD_PERCENT}% above its figure here. A change meant to cost more updates this file with "
                 "the command below, in the same commit as the change, and says why in the commit message.",
        "regenerate": REGENERATE,
        "threshold_percent": THRESHOLD_PERCENT,
        "server": server_version(server),
        **build_description(module),
        "calls": CALLS,
        "instructions": counts,
    }
    path.write_text(json.dumps(baseline, indent=2) + "\n")
    print(json.dumps(baseline, indent=2))


def check(path, module, server, names):
    """The gate: 0 when every workload is within THRESHOLD_PERCENT of the baseline, 1 when one is over,
    2 when the baseline was measured on another server or build type (the figures would not compare)."""
    started = time.monotonic()
    baseline = json.loads(Path(path).read_text())
    here = {"server": server_version(server), **build_description(module)}
    for field in ("server", "build_type"):
        if baseline[field] != here[field]:
            print(f"instruction gate: the baseline was measured on {field} {baseline[field]!r}, this run has "
                  f"{here[field]!r}; measure the same (scripts/build.sh's build/ and Redis 7.0), or record a new "
                  f"baseline with `{REGENERATE}`.")
            return 2
    print(f"callgrind instruction gate: {here['server']}, {here['build_type']} build, {baseline['calls']:,} calls per "
          f"workload, {len(names)} workloads; fails above +{THRESHOLD_PERCENT}%", flush=True)
    if baseline["compiler"] != here["compiler"]:
        print(f"note: the baseline was built with {baseline['compiler']!r}, this module with {here['compiler']!r}")
    now = measure(module, names, calls=baseline["calls"], server_binary=server)
    rows, failed = compare(baseline["instructions"], now)
    print(report(rows, failed))
    print(f"({time.monotonic() - started:.0f} s)")
    return 1 if failed else 0
