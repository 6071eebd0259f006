"""Real redis-server / valkey-server processes for Shield's tests.

Each server runs on a free loopback port in its own temporary folder, is waited for by polling
a condition (never a fixed sleep), and is stopped by the PID we started.
"""

import contextlib
import csv
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parents[2]
MODULE = os.path.abspath(os.environ.get("SHIELD_MODULE", str(REPO / "build" / "libredis_shield.so")))
HOST = "127.0.0.1"


# The server matrix: every kind scripts/install-servers.sh puts under .deps/servers/<kind>/bin/,
# with the name of its server binary. Test ids and ctest entries use these kind names.
SERVER_KINDS = {
    "redis7": "redis-server",      # Debian bookworm's Redis 7.0
    "redict7": "redict-server",    # Redict 7.3 (bookworm-backports)
    "valkey8": "valkey-server",    # Valkey 8.0 (bookworm-backports)
    "redis8.0": "redis-server",    # built from Debian trixie's redis source
    "redis8.6": "redis-server",    # built from Debian experimental's redis source
    "valkey8.1": "valkey-server",  # built from Debian trixie's valkey source
    "valkey9.1": "valkey-server",  # built from Debian sid's valkey source
}
SERVERS_DIR = REPO / ".deps" / "servers"


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def find_server(kind):
    """The server binary of one kind, or None when it is not installed."""
    overrides = {"redis7": "SHIELD_REDIS_SERVER", "valkey8": "SHIELD_VALKEY_SERVER"}
    if os.environ.get(overrides.get(kind, "-")):
        return os.environ[overrides[kind]]
    if kind not in SERVER_KINDS:
        return None
    path = SERVERS_DIR / kind / "bin" / SERVER_KINDS[kind]
    if os.access(path, os.X_OK):
        return str(path)
    # Before scripts/install-servers.sh ran: Debian's redis-server, and Valkey 8 where
    # scripts/install-deps.sh puts it.
    if kind == "redis7":
        return shutil.which("redis-server")
    if kind == "valkey8" and os.access(REPO / ".deps/valkey/bin/valkey-server", os.X_OK):
        return str(REPO / ".deps/valkey/bin/valkey-server")
    return None


def requested_kinds():
    """The kinds a run asks for: SHIELD_SERVERS (comma-separated kinds) when set; otherwise every
    kind of the matrix in CI, and the installed ones on a developer's machine."""
    only = os.environ.get("SHIELD_SERVERS")
    if only:
        return [k.strip() for k in only.split(",") if k.strip()]
    if in_ci():
        return list(SERVER_KINDS)
    return [kind for kind in SERVER_KINDS if find_server(kind)]


def server_binaries():
    """{kind: binary} for every requested kind that is installed (see requested_kinds)."""
    found = {kind: find_server(kind) for kind in requested_kinds()}
    return {kind: path for kind, path in found.items() if path}


def missing_server_reason(kind):
    return f"no {kind} server: run scripts/install-servers.sh {kind}"


def cli_binary():
    cli = shutil.which("redis-cli")
    if cli:
        return cli
    for kind, server in SERVER_KINDS.items():
        path = SERVERS_DIR / kind / "bin" / server.replace("-server", "-cli")
        if os.access(path, os.X_OK):
            return str(path)
    return str(REPO / ".deps/valkey/bin/valkey-cli")


class ServerExited(RuntimeError):
    """A server we wait for has exited: waiting longer cannot help."""


def server_version(client):
    """The name and version of the server `client` talks to, as INFO says it: "Redis 7.0.15",
    "Valkey 9.1.2", "Redict 7.3.6" (Valkey and Redict report a redis_version too)."""
    info = client.info("server")
    for name in ("valkey", "redict"):
        if f"{name}_version" in info:
            return f"{name.capitalize()} {info[f'{name}_version']}"
    return f"Redis {info['redis_version']}"


def wait_until(condition, timeout=15.0, interval=0.02, what="condition"):
    """Polls `condition` until it returns a truthy value; returns that value."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except ServerExited:
            raise
        except Exception as error:  # the condition may raise while a server is starting
            last_error = error
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what} (last error: {last_error!r})")


def port_free(port):
    """True when nothing listens on (or holds) `port` on the loopback address now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


# Ports 11000-21999 (cluster bus ports 21000-31999) stay below the kernel's ephemeral range
# (32768 and up), so no outgoing connection can take one between our check and the server's bind.
FIRST_PORT, PORT_COUNT = 11000, 11000
_next_port = [FIRST_PORT + (os.getpid() * 37) % PORT_COUNT]


def free_port(with_bus=False):
    """A loopback port that is free now (and whose cluster bus port, +10000, is too)."""
    for _ in range(5000):
        _next_port[0] = FIRST_PORT + (_next_port[0] - FIRST_PORT + 1) % PORT_COUNT
        port = _next_port[0]
        if port_free(port) and (not with_bus or port_free(port + 10000)):
            return port
    raise RuntimeError("no free port")


def server_environment():
    """The environment a test server runs in: this one, plus the sanitizer runtime the module was
    built against when SHIELD_SERVER_PRELOAD names one (scripts/test.sh's sanitizer pass). Every
    test that starts a server itself passes it, so an ASan-built module loads there too."""
    env = dict(os.environ)
    preload = os.environ.get("SHIELD_SERVER_PRELOAD")
    if preload:
        env["LD_PRELOAD"] = preload
        # verify_asan_link_order=0: tests/support/nodeepbind.c may come first (servers that load
        # modules with RTLD_DEEPBIND)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1:verify_asan_link_order=0")
    return env


class Server:
    """One server process with the Shield module loaded."""

    def __init__(self, binary, *, extra_args=(), module=MODULE, port=None, cluster=False, workdir=None,
                 launcher=()):
        self.binary = binary
        # e.g. a valgrind command line the server runs under; SHIELD_SERVER_LAUNCHER gives one to
        # every server (scripts/valgrind.sh)
        self.launcher = list(launcher) or shlex.split(os.environ.get("SHIELD_SERVER_LAUNCHER", ""))
        self.port = port or free_port(with_bus=cluster)
        self.extra_args = list(extra_args)
        self.module = os.path.abspath(module) if module else None
        self.cluster = cluster
        self.dir = workdir or tempfile.mkdtemp(prefix=f"shield-{self.port}-")
        self.process = None

    @property
    def log_path(self):
        return os.path.join(self.dir, "server.log")

    def args(self):
        args = [*self.launcher, self.binary, "--port", str(self.port), "--bind", HOST, "--dir", self.dir,
                "--save", "", "--logfile", self.log_path, "--enable-debug-command", "yes",
                "--repl-diskless-sync-delay", "0"]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        if self.module:
            args += ["--loadmodule", self.module]
        return args + self.extra_args

    def start(self, timeout=15.0):
        stderr = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.process = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL, stderr=stderr,
                                        env=server_environment())
        stderr.close()
        wait_until(self._ready, timeout=timeout, what=f"server on port {self.port} to answer PING")
        return self

    def _ready(self):
        if self.process.poll() is not None:
            raise ServerExited(f"server exited with {self.process.returncode}: {self.log_tail()}")
        with self.client(socket_timeout=1) as c:
            return c.ping()

    def log_tail(self, lines=20):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def client(self, **kwargs):
        kwargs.setdefault("decode_responses", True)
        return redis.Redis(host=HOST, port=self.port, **kwargs)

    @property
    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        """Graceful stop (SIGTERM) of the process we started."""
        self._signal(signal.SIGTERM)

    def kill(self):
        """Hard kill (SIGKILL), as a crash would."""
        self._signal(signal.SIGKILL)

    def _signal(self, sig):
        if self.alive:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def cleanup(self):
        if self.launcher:  # a graceful exit, so that valgrind writes its report
            self.stop()
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def pid_alive(pid):
    """True while a process of that PID exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def each_started(create, start, stop):
    """For a fixture that starts several of something: yields `make(**kwargs)`, which creates one
    with `create(**kwargs)`, keeps it and returns `start(it)`; on leaving, stops every one kept with
    `stop` (kept before it starts, so that one whose start fails is stopped too)."""
    started = []

    def make(**kwargs):
        thing = create(**kwargs)
        started.append(thing)
        return start(thing)

    try:
        yield make
    finally:
        for thing in started:
            stop(thing)


def run_threads(target, count, timeout):
    """Runs `target` on `count` threads at once and waits for each, at most `timeout` seconds."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)


def require(condition, reason):
    """Skips a test whose tool is missing on a developer's machine; in CI (CI=true), where
    scripts/install-deps.sh installed everything, a missing tool fails the test instead."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"missing in CI: {reason}")
    pytest.skip(reason)


def bucket_states(client, keys):
    """Each bucket's (value, absolute expiry in ms): what must survive a move, a restart or a failover."""
    return {key: (client.get(key), client.pexpiretime(key)) for key in keys}


def wait_for_replica_link(replica):
    """Waits until a replica's link to its primary is up."""

    def link_up():
        with replica.client() as c:
            return c.info("replication")["master_link_status"] == "up"

    wait_until(link_up, what=f"replica on port {replica.port} to link to its primary")


def original_reading(value, pttl_ms, capacity, period_s):
    """What the original Rust module reads from a bucket key (its documented formula)."""
    period_ms = period_s * 1000
    ttl = min(max(pttl_ms, 0), period_ms)  # PTTL -1 (no expiry) / -2 (missing) count as 0
    elapsed = period_ms - ttl
    refilled = elapsed * capacity // period_ms
    return min(capacity, max(0, int(value)) + refilled)


class RespError(Exception):
    """An error reply read by RespClient."""


class RespClient:
    """One bare connection that returns replies as the server sent them, in RESP2 or RESP3.

    redis-py 4 cannot read RESP3; this reads it: a map becomes a dict in the server's order, a set
    a Python set, a big number an int, an error a RespError (returned, not raised), strings str.
    """

    def __init__(self, port, protocol=2, timeout=10):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        if protocol == 3:
            hello = self.call("HELLO", "3")
            assert isinstance(hello, dict) and hello["proto"] == 3, hello

    def call(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))
        return self._read()

    def _line(self):
        line = self.file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed mid-reply")
        return line[:-2]

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+",):
            return rest.decode()
        if kind in (b"-", b"!"):
            text = self._bulk(int(rest)) if kind == b"!" else rest.decode()
            return RespError(text)
        if kind in (b":", b"("):
            return int(rest)
        if kind == b",":
            return float(rest)
        if kind == b"#":
            return rest == b"t"
        if kind == b"_":
            return None
        if kind in (b"$", b"="):
            length = int(rest)
            return None if length < 0 else self._bulk(length)
        if kind in (b"*", b"~", b">"):
            count = int(rest)
            if count < 0:
                return None
            items = [self._read() for _ in range(count)]
            return set(items) if kind == b"~" else items
        if kind in (b"%", b"|"):
            pairs = [(self._read(), self._read()) for _ in range(int(rest))]
            if kind == b"|":  # an attribute: skip it, the reply follows
                return self._read()
            return dict(pairs)
        raise ConnectionError(f"unknown RESP type in {line!r}")

    def _bulk(self, length):
        data = self.file.read(length + 2)
        return data[:-2].decode(errors="surrogateescape")

    def close(self):
        self.file.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ReplicationStream:
    """What a server sends its replicas, read with `redis-cli --replica` (as test_replication.py
    does): `commands_until(marker)` writes the key `marker` and returns every command propagated
    before it, each as a list of strings, without the PINGs and SELECTs the server adds."""

    def __init__(self, server):
        self.server = server
        self.process = None
        self.buffer = b""

    def __enter__(self):
        self.process = subprocess.Popen([cli_binary(), "-h", HOST, "-p", str(self.server.port), "--replica"],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        synced = any("Logging commands from master" in line for line in self._lines(timeout=15))
        assert synced, "redis-cli --replica did not finish its sync"
        # redis-cli takes the first line the server sends after the sync for the reply to its
        # REPLCONF ACK and does not print it: let that be a write of our own.
        self.commands_until(f"replication-stream-warmup:{os.getpid()}:{time.monotonic_ns()}")
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait(timeout=10)

    def _lines(self, timeout):
        fd = self.process.stdout.fileno()
        while True:
            while b"\n" not in self.buffer:
                ready, _, _ = select.select([fd], [], [], timeout)
                chunk = os.read(fd, 65536) if ready else b""
                if not chunk:
                    return
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\n", 1)
            yield line.decode(errors="replace")

    def commands_until(self, marker, timeout=15):
        with self.server.client() as c:
            c.set(marker, 1)
        commands = []
        for line in self._lines(timeout):
            line = line.strip()
            if not line.startswith('"'):
                continue
            command = next(csv.reader([line]))
            if command[0].upper() == "SET" and command[1:2] == [marker]:
                return commands
            if command[0].upper() not in ("PING", "SELECT"):
                commands.append(command)
        raise TimeoutError(f"the marker {marker!r} never reached the replication stream; got {commands}")
