"""docker-compose.cluster.yml describes the same cluster as scripts/cluster.sh (no Docker needed)."""

import re

import pytest
from shield_servers import REPO, require

try:
    import yaml
except ImportError:  # python3-yaml; scripts/install-deps.sh installs it
    yaml = None

COMPOSE = REPO / "docker-compose.cluster.yml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
PORTS = [7001, 7002, 7003, 7004, 7005, 7006]


@pytest.fixture(scope="module")
def compose():
    require(yaml is not None, "python3-yaml is not installed")
    with open(COMPOSE) as f:
        return yaml.safe_load(f)


def option(command, name):
    """The value after `--name` in an argument list."""
    i = command.index(f"--{name}")
    return str(command[i + 1])


def redis_services(compose):
    return {name: s for name, s in compose["services"].items()
            if s.get("command") and s["command"][0] == "redis-server"}


def test_compose_has_six_redis_services_on_ports_7001_to_7006(compose):
    services = redis_services(compose)
    assert len(services) == 6
    assert sorted(int(option(s["command"], "port")) for s in services.values()) == PORTS


def test_every_compose_node_loads_shield_with_the_guides_cluster_settings(compose):
    with open(DOCKERFILE) as f:
        dockerfile = f.read()
    for name, service in redis_services(compose).items():
        command = [str(arg) for arg in service["command"]]
        module = option(command, "loadmodule")
        assert module.endswith("/libredis_shield.so"), name
        assert module in dockerfile, "the image must put the module where compose loads it"
        assert option(command, "cluster-enabled") == "yes", name
        assert option(command, "cluster-node-timeout") == "5000", name
        assert option(command, "appendonly") == "yes", name
        assert option(command, "bind") == "127.0.0.1", name
        assert service["network_mode"] == "host", name  # nodes announce reachable addresses
        assert service["build"]["dockerfile"] == "docker/Dockerfile", name
        assert any(v.endswith(":/data") for v in service["volumes"]), name


def test_compose_init_service_creates_three_primaries_and_three_replicas(compose):
    services = redis_services(compose)
    init = [s for name, s in compose["services"].items() if name not in services]
    assert len(init) == 1
    script = " ".join(str(part) for part in init[0]["command"])
    assert "redis-cli --cluster create" in script
    assert sorted(int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", script)) == PORTS
    assert "--cluster-replicas 1" in script and "--cluster-yes" in script
    assert set(init[0]["depends_on"]) == set(services)
    assert all(d["condition"] == "service_healthy" for d in init[0]["depends_on"].values())


def test_dockerfile_builds_with_the_run_dependencies_and_cmake_on_bookworm():
    with open(DOCKERFILE) as f:
        text = f.read()
    assert re.search(r"^FROM debian:bookworm", text, re.M)
    assert "SHIELD_DEPS=run scripts/install-deps.sh" in text
    assert "cmake --build" in text
    assert re.search(r"^FROM redis:", text, re.M)
