import datetime
import glob
import json
import os
import platform
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

from shield_cluster import Cluster  # noqa: E402
from shield_servers import MODULE, each_started, find_server, missing_server_reason, require  # noqa: E402

# The server the clusters run: a kind of the matrix (tests/support/shield_servers.py), named by
# SHIELD_CLUSTER_SERVER (redis7, redis8.6, valkey9.1, ...); Debian's redis-server (redis7) unless set.
SERVER_KIND = os.environ.get("SHIELD_CLUSTER_SERVER", "redis7")
SERVER = find_server(SERVER_KIND)

# Numbers the tests measure (failover time, redirects, tokens granted against the bound),
# printed at the end of the run and, only when SHIELD_CLUSTER_RESULTS names a file (as
# bench/cluster-results.sh does) and the run covered every test file here and none failed,
# written there; docs/cluster.md quotes bench/results/cluster-<server kind>.json. A plain test run
# writes nothing: tests never write tracked files.
MEASURED = {}
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RESULTS = os.environ.get("SHIELD_CLUSTER_RESULTS")
COMMAND = "bash bench/cluster-results.sh"
_started = time.time()
_collected_files = set()
_durations = {}


def pytest_report_header(config):
    where = (f"{RESULTS} (when every test file ran and none failed)" if RESULTS
             else "nowhere (bench/cluster-results.sh writes them)")
    return [f"shield module: {MODULE}", f"cluster server: {SERVER_KIND} {SERVER}",
            f"measurements go to: {where}"]


def pytest_collection_finish(session):
    _collected_files.update(os.path.basename(item.nodeid.split("::")[0]) for item in session.items)


def pytest_runtest_logreport(report):
    # Wall time per test file, setup (where the clusters start) and teardown included.
    name = os.path.basename(report.nodeid.split("::")[0])
    _durations[name] = _durations.get(name, 0.0) + report.duration


def _output(*command):
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10, cwd=REPO).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _write_results(terminalreporter, exitstatus):
    if not RESULTS:
        return
    stats = terminalreporter.stats
    every_file = {os.path.basename(f) for f in glob.glob(os.path.join(HERE, "test_*.py"))}
    missing = sorted(every_file - _collected_files)
    if exitstatus != 0 or stats.get("failed") or stats.get("error") or missing or stats.get("deselected"):
        why = f"files not run: {', '.join(missing)}" if missing else "not every test ran and passed"
        terminalreporter.write_line(f"cluster measurements not written to {RESULTS}: {why}")
        return
    results = {
        "command": COMMAND + (f" (SHIELD_CLUSTER_SERVER={SERVER_KIND})"
                              if "SHIELD_CLUSTER_SERVER" in os.environ else ""),
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "server_kind": SERVER_KIND,
        "server": _output(SERVER, "--version") if SERVER else "",
        "commit": _output("git", "rev-parse", "--short", "HEAD")
                  + (" (with uncommitted changes)" if _output("git", "status", "--porcelain", "--", "src") else ""),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "tests": {"passed": len(stats.get("passed", [])), "skipped": len(stats.get("skipped", []))},
        "skipped": sorted({r.nodeid for r in stats.get("skipped", [])}),
        "run seconds": round(time.time() - _started, 1),
        "seconds per test file": {name: round(s, 1) for name, s in sorted(_durations.items())},
        "measured": MEASURED,
    }
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS + ".tmp", "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    os.replace(RESULTS + ".tmp", RESULTS)
    terminalreporter.write_line(f"cluster measurements written to {RESULTS}")


def pytest_terminal_summary(terminalreporter, exitstatus):
    if MEASURED:
        terminalreporter.write_sep("-", "cluster measurements")
        for name, value in MEASURED.items():
            terminalreporter.write_line(f"{name}: {json.dumps(value)}")
    _write_results(terminalreporter, exitstatus)


@pytest.fixture(scope="session")
def measured():
    return MEASURED


@pytest.fixture(scope="module")
def make_cluster():
    """Starts clusters for one test module and kills all their nodes by PID afterwards."""
    require(SERVER is not None, missing_server_reason(SERVER_KIND))
    with each_started(lambda **kwargs: Cluster(SERVER, **kwargs), Cluster.start, Cluster.stop) as make:
        yield make
