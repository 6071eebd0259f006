"""What tests/packaging needs besides servers: commands with bounded time and readable failures,
rootful podman with the settings this machine needs, and the debian:bookworm base image made with
debootstrap from the machine's own Debian mirror (no image registry is reachable)."""

import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from shield_servers import REPO, require, wait_until

DEPS = REPO / ".deps" / "packaging"
BASE_IMAGE = "docker.io/library/debian:bookworm"  # what `FROM debian:bookworm` resolves to
BASE_TARBALL = DEPS / "debian-bookworm-minbase.tar"  # kept: a second run does not debootstrap
SHIELD_IMAGE = "redis-shield:local"  # the tag docker-compose.cluster.yml uses
TIMINGS = {}  # how long the slow steps took in this run, printed at the end (conftest.py)

# runc (Debian's podman would pick crun), cgroupfs (no systemd here), logs and events in files (no
# journald), and the limits redis-server asks for.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=10000:10000", "nproc=10000:10000"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def require_root_and(*tools):
    """Skips (fails in CI) unless we are root and every tool is on PATH."""
    require(os.geteuid() == 0, "the packaging tests install packages and run rootful podman: run as root")
    for tool in tools:
        require(shutil.which(tool) is not None,
                f"{tool} is missing (scripts/install-packaging-deps.sh installs it)")


def run(cmd, timeout=120, check=True, **kwargs):
    """Runs a command to completion within `timeout` seconds; on failure, the error shows its output."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    result = subprocess.run([str(c) for c in cmd], text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {result.returncode}\n"
                             f"--- stdout (end)\n{(result.stdout or '')[-3000:]}\n"
                             f"--- stderr (end)\n{(result.stderr or '')[-3000:]}")
    return result


def podman_env():
    """The environment for podman, docker-compose and the podman service: CONTAINERS_CONF set."""
    DEPS.mkdir(parents=True, exist_ok=True)
    conf = DEPS / "containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        conf.write_text(CONTAINERS_CONF)
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(conf)
    return env


def debian_mirror():
    """The Debian mirror this machine's apt uses for bookworm, read from its apt sources."""
    lists = Path("/etc/apt/sources.list.d")
    for path in [lists / "debian.sources", *sorted(lists.glob("*.sources"))]:
        if not path.is_file():
            continue
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
            if ("deb" in fields.get("Types", "").split() and "bookworm" in fields.get("Suites", "").split()
                    and "main" in fields.get("Components", "").split() and fields.get("URIs")):
                return fields["URIs"].split()[0]
    for path in [Path("/etc/apt/sources.list"), *sorted(lists.glob("*.list"))]:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s+.*\bmain\b", line)
            if m:
                return m.group(1)
    raise AssertionError("no `deb ... bookworm main` source in /etc/apt: cannot debootstrap")


def image_exists(name, env):
    return run(["podman", "image", "exists", name], check=False, env=env).returncode == 0


def ensure_base_image(env):
    """Makes `debian:bookworm` from the Debian archive unless podman has it: debootstrap (minbase)
    into .deps/packaging once, a tarball of it kept there, and `podman import`."""
    if image_exists(BASE_IMAGE, env):
        return "present"
    how = "imported the cached rootfs"
    if not BASE_TARBALL.exists():
        rootfs = DEPS / "rootfs.tmp"
        shutil.rmtree(rootfs, ignore_errors=True)
        run(["debootstrap", "--variant=minbase", "bookworm", rootfs, debian_mirror()], timeout=900)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = BASE_TARBALL.with_suffix(".tar.tmp")
        run(["tar", "--numeric-owner", "-C", rootfs, "-cf", partial, "."], timeout=300)
        partial.rename(BASE_TARBALL)
        shutil.rmtree(rootfs, ignore_errors=True)
        how = "debootstrapped"
    run(["podman", "import", "--change", 'CMD ["bash"]', BASE_TARBALL, BASE_IMAGE], timeout=300, env=env)
    return how


def build_shield_image(env):
    """`podman build` of docker/Dockerfile as the README shows it, with the host's network for apt."""
    run(["podman", "build", "--network", "host", "-f", REPO / "docker" / "Dockerfile", "-t", SHIELD_IMAGE,
         REPO], timeout=1200, env=env)


def remove_container(name, env):
    run(["podman", "rm", "-f", "-t", "2", name], check=False, env=env, timeout=60)



class PodmanService:
    """`podman system service` on a socket of our own (podman's Docker API), stopped by its PID."""

    def __init__(self, workdir, env):
        self.socket = Path(workdir) / "podman.sock"
        self.log = Path(workdir) / "podman-service.log"
        self.env = env
        self.process = None

    @property
    def docker_host(self):
        return f"unix://{self.socket}"

    def start(self):
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(["podman", "system", "service", "--time=0", self.docker_host],
                                            stdout=log, stderr=subprocess.STDOUT, env=self.env)
        wait_until(self._answers, timeout=30, what="podman's Docker API to answer /_ping")
        return self

    def _answers(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"podman system service exited: {self.log.read_text()[-2000:]}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(self.socket))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return b"200 OK" in s.recv(4096)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
