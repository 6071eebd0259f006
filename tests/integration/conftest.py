import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

from shield_servers import (MODULE, Server, each_started, find_server, missing_server_reason, require,  # noqa: E402
                            requested_kinds, wait_for_replica_link)

# The kinds this run tests (SHIELD_SERVERS, or the whole matrix in CI), installed or not: a missing
# one skips its tests on a developer's machine and fails them in CI.
SERVERS = {kind: find_server(kind) for kind in requested_kinds()}


def pytest_report_header(config):
    return [f"shield module: {MODULE}", f"servers: {SERVERS}"]


@pytest.fixture(scope="session", params=list(SERVERS))
def server_kind(request):
    """Every test that starts servers runs once per server kind (redis7, valkey9.1, ...)."""
    require(SERVERS[request.param] is not None, missing_server_reason(request.param))
    return request.param


@pytest.fixture(scope="session")
def server_binary(server_kind):
    return SERVERS[server_kind]


@pytest.fixture(scope="module")
def shared_server(server_binary):
    """One server per test module and server kind, for tests that use their own keys."""
    server = Server(server_binary).start()
    yield server
    server.cleanup()


@pytest.fixture
def r(shared_server):
    client = shared_server.client()
    yield client
    client.close()


@pytest.fixture
def raw_command(shared_server):
    """A client that leaves COMMAND replies as the server sent them (redis-py 4 reshapes them)."""
    client = shared_server.client()
    client.set_response_callback("COMMAND", lambda response, **options: response)
    yield client
    client.close()


@pytest.fixture
def make_server(server_binary):
    """Starts servers for one test and stops every one of them afterwards."""
    with each_started(lambda **kwargs: Server(kwargs.pop("binary", server_binary), **kwargs), Server.start,
                      Server.cleanup) as make:
        yield make


@pytest.fixture
def primary_and_replica(make_server):
    """A primary and a replica linked to it, both with Shield, stopped after the test."""
    primary = make_server()
    replica = make_server(extra_args=["--replicaof", "127.0.0.1", str(primary.port)])
    wait_for_replica_link(replica)
    return primary, replica
