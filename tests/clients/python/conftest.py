"""Fixtures of the Python client's tests: real servers with Shield loaded (tests/support), started
per test on free loopback ports, and the client package on sys.path (clients/python)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pyclient_support import CLIENT  # noqa: E402  (puts tests/support and clients/python on sys.path)

from shield_servers import (MODULE, Server, each_started, find_server, missing_server_reason, require,  # noqa: E402
                            requested_kinds)

# The server these tests run on: the first kind SHIELD_SERVERS names (redis7 by default).
KIND = (requested_kinds() or ["redis7"])[0]
BINARY = find_server(KIND)


def pytest_report_header(config):
    return [f"shield module: {MODULE}", f"server: {KIND} {BINARY}", f"client package: {CLIENT}"]


@pytest.fixture
def make_server():
    """Starts servers with Shield for one test and stops each by its PID afterwards."""
    require(BINARY is not None, missing_server_reason(KIND))
    with each_started(lambda **kwargs: Server(BINARY, **kwargs), Server.start, Server.cleanup) as make:
        yield make


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def url(server):
    return f"redis://127.0.0.1:{server.port}"


@pytest.fixture(scope="module")
def cluster():
    """A small cluster (3 primaries, no replicas) for the tests of one module."""
    require(BINARY is not None, missing_server_reason(KIND))
    from shield_cluster import Cluster
    running = Cluster(BINARY, primaries=3, replicas=0).start()
    yield running
    running.stop()


@pytest.fixture
def make_cluster():
    """Small clusters for one test (a test that kills nodes), each stopped by its PIDs afterwards."""
    require(BINARY is not None, missing_server_reason(KIND))
    from shield_cluster import Cluster
    started = []

    def make(primaries=3):
        running = Cluster(BINARY, primaries=primaries, replicas=0)
        started.append(running)
        return running.start()

    yield make
    for running in started:
        running.stop()
