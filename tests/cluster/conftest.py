import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

from shield_cluster import Cluster  # noqa: E402
from shield_servers import MODULE, require, server_binaries  # noqa: E402

# The server the clusters run: Debian's redis-server unless SHIELD_CLUSTER_SERVER=valkey.
SERVER_KIND = os.environ.get("SHIELD_CLUSTER_SERVER", "redis")
SERVER = server_binaries().get(SERVER_KIND)

# Numbers the tests measure (failover time, redirects, tokens granted against the bound),
# printed at the end of the run; docs/cluster.md quotes them.
MEASURED = {}


def pytest_report_header(config):
    return [f"shield module: {MODULE}", f"cluster server: {SERVER_KIND} {SERVER}"]


def pytest_terminal_summary(terminalreporter):
    if MEASURED:
        terminalreporter.write_sep("-", "cluster measurements")
        for name, value in MEASURED.items():
            terminalreporter.write_line(f"{name}: {json.dumps(value)}")


@pytest.fixture(scope="session")
def measured():
    return MEASURED


@pytest.fixture(scope="module")
def make_cluster():
    """Starts clusters for one test module and kills all their nodes by PID afterwards."""
    require(SERVER is not None, f"no {SERVER_KIND} server binary")
    started = []

    def make(**kwargs):
        cluster = Cluster(SERVER, **kwargs)
        started.append(cluster)
        return cluster.start()

    yield make
    for cluster in started:
        cluster.stop()
