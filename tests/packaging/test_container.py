"""docker/Dockerfile and docker-compose.cluster.yml, run for real with rootful podman.

No image registry is reachable here, so the base image `debian:bookworm` is made with debootstrap
from the Debian archive (conftest.py) and the Dockerfile users read is the one built. The compose
file runs with Debian's docker-compose 1.29 against podman's Docker API."""

import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis
from shield_packaging import SHIELD_IMAGE, TIMINGS, PodmanService, remove_container, require_root_and, run
from shield_servers import HOST, REPO, free_port, port_free, wait_until

COMPOSE_FILE = REPO / "docker-compose.cluster.yml"
COMPOSE_PROJECT = "shield-compose-test"
CLUSTER_PORTS = list(range(7001, 7007))  # the compose file's, fixed: what users connect to


class Container:
    """`podman run -d --network host IMAGE ARGS...` on a free port, removed at the end."""

    def __init__(self, env, args, port, volumes=()):
        self.env = env
        self.port = port
        self.name = f"shield-test-{port}"
        self.args = list(args)
        self.volumes = list(volumes)

    def __enter__(self):
        remove_container(self.name, self.env)
        cmd = ["podman", "run", "-d", "--name", self.name, "--network", "host"]
        for volume in self.volumes:
            cmd += ["-v", volume]
        try:
            run(cmd + [SHIELD_IMAGE, *self.args], env=self.env, timeout=60)
            wait_until(self._answers, timeout=30, what=f"the container's server on port {self.port}")
        except BaseException:
            remove_container(self.name, self.env)
            raise
        return self

    def _answers(self):
        state = run(["podman", "inspect", "-f", "{{.State.Running}}", self.name], env=self.env).stdout.strip()
        if state != "true":
            raise AssertionError(f"container stopped: {self.logs()}")
        with redis.Redis(host=HOST, port=self.port, socket_timeout=1) as c:
            return c.ping()

    def logs(self):
        return run(["podman", "logs", self.name], check=False, env=self.env, stderr=subprocess.STDOUT).stdout

    def client(self):
        return redis.Redis(host=HOST, port=self.port, decode_responses=True, socket_timeout=5)

    def __exit__(self, *exc):
        remove_container(self.name, self.env)


def module_names(client):
    return [dict(zip(m[::2], m[1::2]))["name"].lower() for m in client.execute_command("MODULE", "LIST")]


def test_docker_run_with_server_arguments_still_loads_the_module(podman, shield_image):
    port = free_port()
    with Container(podman, ["--port", port, "--bind", HOST, "--save", ""], port) as node:
        with node.client() as c:
            assert module_names(c) == ["shield"]
            assert c.execute_command("SHIELD.absorb", "user123", 100, 60, 5) == 95
            assert c.config_get("port")["port"] == str(port)


def test_docker_run_with_a_config_file_first_loads_it_and_the_module(podman, shield_image, tmp_path):
    port = free_port()
    (tmp_path / "shield.conf").write_text(f"port {port}\nbind {HOST}\nsave \"\"\nmaxmemory 64mb\n")
    tmp_path.chmod(0o755)
    (tmp_path / "shield.conf").chmod(0o644)
    with Container(podman, ["/conf/shield.conf", "--appendonly", "no"], port,
                   volumes=[f"{tmp_path}:/conf:ro"]) as node:
        with node.client() as c:
            assert module_names(c) == ["shield"]
            assert c.config_get("maxmemory")["maxmemory"] == str(64 * 1024 * 1024)
            assert c.execute_command("SHIELD.absorb", "k", 10, 60, 3) == 7


def test_the_image_runs_other_commands_as_they_are(podman, shield_image):
    result = run(["podman", "run", "--rm", "--network", "host", SHIELD_IMAGE, "redis-cli", "--version"],
                 env=podman, timeout=60)
    assert result.stdout.startswith("redis-cli ")


def test_the_image_runs_the_server_as_the_redis_user_on_debians_redis_7(podman, shield_image):
    result = run(["podman", "run", "--rm", "--network", "host", SHIELD_IMAGE, "sh", "-c",
                  "id -un; redis-server --version; ls /usr/lib/redis/modules"], env=podman, timeout=60)
    user, version, modules = result.stdout.splitlines()[:3]
    assert user == "redis"
    assert "v=7.0." in version
    assert modules == "libredis_shield.so"


@pytest.fixture
def podman_service(podman):
    require_root_and("docker-compose")
    with tempfile.TemporaryDirectory(prefix="shield-podman-") as workdir:
        service = PodmanService(workdir, podman).start()
        try:
            yield service
        finally:
            service.stop()


def compose(service, *args, timeout=300, check=True):
    env = dict(service.env)
    env["DOCKER_HOST"] = service.docker_host
    env["COMPOSE_PROJECT_NAME"] = COMPOSE_PROJECT
    return run(["docker-compose", "--no-ansi", "-f", COMPOSE_FILE, *args], env=env, timeout=timeout, check=check)


def project_containers(env):
    out = run(["podman", "ps", "-a", "--filter", f"label=com.docker.compose.project={COMPOSE_PROJECT}",
               "--format", "{{.Names}}"], env=env).stdout
    return out.split()


def run_healthchecks_until(stop, env):
    """Podman runs a container's healthcheck from a systemd timer; without systemd (here) nothing
    runs it, so compose's `condition: service_healthy` would wait forever. Run them ourselves."""
    while not stop.is_set():
        for name in project_containers(env):
            if "cluster-init" not in name:
                run(["podman", "healthcheck", "run", name], check=False, env=env, timeout=30)
        stop.wait(1)


def cluster_formed():
    for port in CLUSTER_PORTS:
        with redis.Redis(host=HOST, port=port, decode_responses=True, socket_timeout=2) as c:
            info = c.execute_command("CLUSTER", "INFO")
            if isinstance(info, str):
                info = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
            if info.get("cluster_state") != "ok" or str(info.get("cluster_known_nodes")) != "6":
                return False
            if str(info.get("cluster_size")) != "3":
                return False
    return True


def test_compose_file_forms_the_six_node_cluster_and_absorbs_through_7001(podman, shield_image, podman_service):
    taken = [p for p in CLUSTER_PORTS + [p + 10000 for p in CLUSTER_PORTS] if not port_free(p)]
    if taken:
        pytest.fail(f"ports {taken} are in use on {HOST}: docker-compose.cluster.yml needs 7001-7006 and their "
                    f"cluster bus ports 17001-17006 (is scripts/run.sh --cluster running?)")
    env = podman
    stop = threading.Event()
    checker = threading.Thread(target=run_healthchecks_until, args=(stop, env), daemon=True)
    start = time.monotonic()
    try:
        checker.start()
        compose(podman_service, "up", "-d", timeout=240)
        wait_until(cluster_formed, timeout=90, interval=0.5, what="the compose cluster to form (cluster_state:ok)")
        TIMINGS["compose up until the cluster formed"] = f"{time.monotonic() - start:.1f}s"
        result = run(["redis-cli", "-c", "-p", "7001", "SHIELD.absorb", "user123", "100", "60", "5"], timeout=30)
        assert result.stdout.strip() == "95"
        with redis.Redis(host=HOST, port=7001, decode_responses=True) as c:
            assert module_names(c) == ["shield"]
            assert c.config_get("appendonly")["appendonly"] == "yes"
    finally:
        stop.set()
        checker.join(timeout=60)
        down = compose(podman_service, "down", "-v", "--timeout", "5", timeout=180, check=False)
        left = project_containers(env)
        for name in left:
            remove_container(name, env)
        volumes = run(["podman", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={COMPOSE_PROJECT}"],
                      env=env, check=False).stdout.split()
        for volume in volumes:
            run(["podman", "volume", "rm", "-f", volume], env=env, check=False)
    assert down.returncode == 0, down.stderr
    assert not left, f"docker-compose down left {left}"
    assert not [p for p in CLUSTER_PORTS if not port_free(p)], "ports still taken after docker-compose down"


def test_the_compose_nodes_and_the_image_agree_on_where_the_module_is():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    entrypoint = (REPO / "docker" / "entrypoint.sh").read_text()
    assert "/usr/lib/redis/modules/libredis_shield.so" in dockerfile
    assert "/usr/lib/redis/modules/libredis_shield.so" in entrypoint
    assert "--loadmodule" not in COMPOSE_FILE.read_text()  # the entrypoint loads it (twice would fail)
    assert Path(REPO / ".dockerignore").exists()
