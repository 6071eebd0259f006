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
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
MODULE_IN_IMAGE = "/usr/lib/redis/modules/libredis_shield.so"
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


def test_every_compose_node_runs_the_guides_cluster_settings_with_the_image_loading_shield(compose):
    with open(DOCKERFILE) as f:
        dockerfile = f.read()
    with open(ENTRYPOINT) as f:
        entrypoint = f.read()
    # The image's entrypoint adds --loadmodule (a second one would make Redis exit).
    assert re.search(r'^ENTRYPOINT \["shield-entrypoint"\]', dockerfile, re.M)
    assert MODULE_IN_IMAGE in dockerfile and MODULE_IN_IMAGE in entrypoint
    for name, service in redis_services(compose).items():
        command = [str(arg) for arg in service["command"]]
        assert "--loadmodule" not in command, name
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


def test_dockerfile_builds_on_bookworm_and_runs_debians_redis_server():
    with open(DOCKERFILE) as f:
        text = f.read()
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["debian:bookworm", "debian:bookworm"]
    assert "SHIELD_DEPS=run scripts/install-deps.sh" in text
    assert "cmake --build" in text
    assert "apt-get install -y --no-install-recommends redis-server" in text
