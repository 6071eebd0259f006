"""The README's scripts: what scripts/install-deps.sh installs and writes into apt's configuration,
and how scripts/run.sh starts, refuses to restart, names what holds its port, stops and keeps its
server and its cluster, on any port.

install-deps.sh runs in its --sources-only, --list and --missing modes, or against sample apt files
in a temporary folder (SHIELD_APT_DIR) with `apt-get` (and `sudo`) on PATH replaced by a script
that only records its arguments: nothing here touches /etc/apt, installs anything or needs the
network. run.sh runs with SHIELD_SKIP_DEPS=1 (or SHIELD_DEPS_SCRIPT, a script of the test's) and
SHIELD_MODULE (no build), on free ports and temporary data folders, never on 6379 or 7001.
"""

import os
import re
import signal
import subprocess
import textwrap

import pytest
from shield_servers import HOST, MODULE, REPO, cli_binary, free_port, pid_alive, port_free, require

INSTALL_DEPS = str(REPO / "scripts" / "install-deps.sh")
RUN = str(REPO / "scripts" / "run.sh")
MIRROR = "http://mirror.invalid/debian"  # a name that cannot resolve: nothing is fetched


# --- install-deps.sh: the apt entries it derives --------------------------------------------------


def derive(apt_dir, deps="all"):
    env = dict(os.environ, SHIELD_APT_DIR=str(apt_dir), SHIELD_DEPS=deps)
    return subprocess.run(["bash", INSTALL_DEPS, "--sources-only"], env=env, capture_output=True,
                          text=True, timeout=30)


def apt_dir_with(tmp_path, sources_list=None, debian_sources=None):
    (tmp_path / "sources.list.d").mkdir()
    if sources_list is not None:
        (tmp_path / "sources.list").write_text(textwrap.dedent(sources_list))
    if debian_sources is not None:
        (tmp_path / "sources.list.d" / "debian.sources").write_text(textwrap.dedent(debian_sources))
    return tmp_path


def added(apt_dir):
    return {p.name: p.read_text() for p in (apt_dir / "sources.list.d").glob("shield-*")}


ONE_LINE_CASES = {
    "plain lines": (
        f"deb {MIRROR} bookworm main\ndeb {MIRROR} bookworm-updates main\n",
        f"deb-src {MIRROR} bookworm main\ndeb-src {MIRROR} bookworm-updates main\n",
        f"deb {MIRROR} bookworm-backports main\n"),
    "lines with options": (
        f"# the mirror\ndeb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] {MIRROR} bookworm main contrib\n"
        f"deb [arch=amd64] {MIRROR}-security bookworm-security main\n",
        f"deb-src [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] {MIRROR} bookworm main contrib\n"
        f"deb-src [arch=amd64] {MIRROR}-security bookworm-security main\n",
        f"deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] {MIRROR} bookworm-backports main\n"),
    "indented line with an option and no components after the suite": (
        f"  deb [trusted=yes] {MIRROR} bookworm\n",
        f"deb-src [trusted=yes] {MIRROR} bookworm\n",
        f"deb [trusted=yes] {MIRROR} bookworm-backports main\n"),
}


@pytest.mark.parametrize("case", list(ONE_LINE_CASES))
def test_install_deps_derives_deb_src_and_backports_from_a_one_line_sources_list(tmp_path, case):
    sources, src, backports = ONE_LINE_CASES[case]
    apt_dir = apt_dir_with(tmp_path, sources_list=sources)
    done = derive(apt_dir)
    assert done.returncode == 0, done.stderr
    assert added(apt_dir) == {"shield-src.list": src, "shield-backports.list": backports}
    assert "added" in done.stdout and "shield-backports.list" in done.stdout


DEB822 = f"""\
    Types: deb
    URIs: {MIRROR}
    Suites: bookworm bookworm-updates
    Components: main
    Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

    Types: deb
    URIs: {MIRROR}-security
    Suites: bookworm-security
    Components: main contrib
    Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
    """


def test_install_deps_derives_deb_src_and_backports_from_debian_sources(tmp_path):
    apt_dir = apt_dir_with(tmp_path, debian_sources=DEB822)
    done = derive(apt_dir)
    assert done.returncode == 0, done.stderr
    files = added(apt_dir)
    assert sorted(files) == ["shield-backports.sources", "shield-src.sources"]
    src = files["shield-src.sources"]
    assert src.count("Types: deb-src") == 2 and "Types: deb\n" not in src
    assert f"URIs: {MIRROR}-security" in src and "Suites: bookworm bookworm-updates" in src
    assert files["shield-backports.sources"] == textwrap.dedent(f"""\
        Types: deb
        URIs: {MIRROR}
        Suites: bookworm-backports
        Components: main
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
        """)


def test_install_deps_adds_backports_only_for_the_full_set_of_dependencies(tmp_path):
    apt_dir = apt_dir_with(tmp_path, sources_list=f"deb {MIRROR} bookworm main\n")
    done = derive(apt_dir, deps="run")
    assert done.returncode == 0, done.stderr
    assert sorted(added(apt_dir)) == ["shield-src.list"]


def test_install_deps_adds_nothing_when_the_machine_already_has_both_entries(tmp_path):
    apt_dir = apt_dir_with(tmp_path, sources_list=(
        f"deb {MIRROR} bookworm main\ndeb-src {MIRROR} bookworm main\n"
        f"deb [arch=amd64] {MIRROR} bookworm-backports main\n"))
    done = derive(apt_dir)
    assert done.returncode == 0, done.stderr
    assert added(apt_dir) == {}
    assert derive(apt_dir).stdout == ""  # and says nothing about it


def test_install_deps_run_twice_writes_its_files_once(tmp_path):
    apt_dir = apt_dir_with(tmp_path, debian_sources=DEB822)
    first = derive(apt_dir)
    before = added(apt_dir)
    second = derive(apt_dir)
    assert first.returncode == second.returncode == 0
    assert added(apt_dir) == before and second.stdout == ""


FAILING_CASES = {
    "no apt configuration at all": {},
    "a sources.list without a bookworm line": {"sources_list": f"deb {MIRROR} sid main\n"},
    "a sources.list with only comments": {"sources_list": f"# deb {MIRROR} bookworm main\n"},
    "a debian.sources without a bookworm stanza": {
        "debian_sources": f"Types: deb\nURIs: {MIRROR}\nSuites: trixie\nComponents: main\n"},
}


@pytest.mark.parametrize("case", list(FAILING_CASES))
def test_install_deps_fails_with_a_message_when_it_cannot_derive_the_entries(tmp_path, case):
    apt_dir = apt_dir_with(tmp_path, **FAILING_CASES[case])
    done = derive(apt_dir)
    assert done.returncode != 0
    assert done.stderr.startswith("install-deps: found no "), done.stderr
    assert "yourself" in done.stderr
    assert "shield-backports.list" not in added(apt_dir)


def packages(deps=None, mode="--list"):
    env = dict(os.environ)
    env.pop("SHIELD_DEPS", None)
    if deps:
        env["SHIELD_DEPS"] = deps
    done = subprocess.run(["bash", INSTALL_DEPS, mode], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_install_deps_by_hand_installs_the_run_set_and_the_test_set_only_when_asked():
    run_set = packages()
    assert run_set == packages("run")
    # What run.sh and the HTTP example need, and ss to name what holds a busy port.
    assert {"build-essential", "cmake", "redis-server", "redis-tools", "python3-redis",
            "iproute2", "curl"} <= set(run_set)
    test_set = packages("test")
    assert set(run_set) < set(test_set)
    assert "libgtest-dev" in test_set and "libgtest-dev" not in run_set
    assert packages("all") == test_set  # the old name


def test_the_test_command_asks_install_deps_for_the_test_set():
    lines = (REPO / "scripts" / "test.sh").read_text().splitlines()
    calls = [ln for ln in lines if "scripts/install-deps.sh" in ln and not ln.lstrip().startswith("#")]
    assert calls == ['SHIELD_DEPS=test "$root/scripts/install-deps.sh"']


FAKE_APT_GET = """#!/bin/sh
echo "$*" >>"$APT_LOG"
"""
FAKE_SUDO = """#!/bin/sh
exec "$@"
"""
# dpkg-query as the real one, except that $FAKE_NOT_INSTALLED reads as not installed.
FAKE_DPKG_QUERY = """#!/bin/sh
for a in "$@"; do last=$a; done
if [ "$last" = "$FAKE_NOT_INSTALLED" ]; then echo "unknown ok not-installed"; exit 0; fi
exec /usr/bin/dpkg-query "$@"
"""


def install_deps_with_recorded_apt(tmp_path, not_installed=None):
    """install-deps.sh (run set) on this machine with apt-get and sudo replaced by recorders, and
    an apt configuration that already has every entry: (result, the apt-get calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fakes = {"apt-get": FAKE_APT_GET, "sudo": FAKE_SUDO}
    if not_installed:
        fakes["dpkg-query"] = FAKE_DPKG_QUERY
    for name, text in fakes.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "apt").mkdir()
    apt_dir = apt_dir_with(tmp_path / "apt",
                           sources_list=f"deb {MIRROR} bookworm main\ndeb-src {MIRROR} bookworm main\n")
    log = tmp_path / "apt.log"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SHIELD_APT_DIR=str(apt_dir),
               APT_LOG=str(log), FAKE_NOT_INSTALLED=not_installed or "")
    env.pop("SHIELD_DEPS", None)
    done = subprocess.run(["bash", INSTALL_DEPS], env=env, capture_output=True, text=True, timeout=120)
    return done, log.read_text().splitlines() if log.exists() else []


def require_run_set_installed():
    require(packages(mode="--missing") == [], "the run set of packages is not all installed here")
    require((REPO / ".deps" / "redismodule" / "redismodule.h").exists(), "no .deps/redismodule/redismodule.h")


def test_install_deps_runs_no_apt_get_when_nothing_is_missing(tmp_path):
    require_run_set_installed()
    done, apt_calls = install_deps_with_recorded_apt(tmp_path)
    assert done.returncode == 0, done.stderr
    assert apt_calls == []
    assert "nothing missing for the run set; no apt-get update" in done.stdout


def test_install_deps_updates_and_installs_only_the_missing_package(tmp_path):
    require_run_set_installed()
    done, apt_calls = install_deps_with_recorded_apt(tmp_path, not_installed="python3-redis")
    assert done.returncode == 0, done.stderr
    assert apt_calls == ["update -qq", "install -y -qq --no-install-recommends python3-redis"]
    assert "installing python3-redis" in done.stdout


def test_install_deps_never_touches_system_services():
    with open(INSTALL_DEPS) as f:
        code = "\n".join(line for line in f if not line.lstrip().startswith("#"))
    for tool in ("systemctl", "service ", "update-rc.d", "invoke-rc.d"):
        assert tool not in code


# --- run.sh: start, run again, a port already taken, stop, purge -----------------------------------


class RunScript:
    def __init__(self, tmp_path, server_binary):
        self.port = free_port()
        self.dir = tmp_path / "standalone"
        self.env = dict(os.environ, SHIELD_PORT=str(self.port), SHIELD_RUN_DIR=str(self.dir),
                        SHIELD_SKIP_DEPS="1", SHIELD_MODULE=MODULE, SHIELD_REDIS_SERVER=server_binary,
                        SHIELD_REDIS_CLI=cli_binary(), SHIELD_CLUSTER_DIR=str(tmp_path / "cluster"),
                        SHIELD_CLUSTER_BASE_PORT=str(free_port(with_bus=True)))

    def __call__(self, *args):
        return subprocess.run(["bash", RUN, *args], env=self.env, capture_output=True, text=True,
                              timeout=60)

    def pid(self):
        path = self.dir / "redis.pid"
        return int(path.read_text()) if path.exists() else None

    def cli(self, *args):
        return subprocess.run([cli_binary(), "-h", HOST, "-p", str(self.port), *args],
                              capture_output=True, text=True, timeout=10).stdout.strip()

    def kill_leftover(self):
        pid = self.pid()
        if pid:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


@pytest.fixture
def run_script(tmp_path, server_binary):
    if os.environ.get("SHIELD_SERVER_PRELOAD"):
        # run.sh starts redis-server itself, without the sanitizer runtime a sanitized module needs.
        pytest.skip("run.sh cannot load a sanitizer build of the module (the ASan pass)")
    require(os.path.exists(MODULE), f"module not built: {MODULE}")
    script = RunScript(tmp_path, server_binary)
    yield script
    script.kill_leftover()


def test_run_starts_a_server_with_shield_on_the_port_it_is_given(run_script):
    done = run_script()
    assert done.returncode == 0, done.stderr
    assert f"redis-server with Shield on {HOST}:{run_script.port}" in done.stdout
    assert "SHIELD" in run_script.cli("MODULE", "LIST").split()
    # The demo's three calls of 13 tokens from a bucket of 30: 17, 4, -1.
    lines = done.stdout.splitlines()
    replies = [lines[i + 1] for i, line in enumerate(lines) if line.startswith("> SHIELD.absorb")]
    assert replies == ["17", "4", "-1"]


def test_run_prints_what_to_do_next_connect_the_http_example_and_stop(run_script):
    done = run_script()
    assert done.returncode == 0, done.stderr
    after = done.stdout.split("\nNext:\n", 1)[1]
    assert f"redis-cli -p {run_script.port}\n" in after
    assert f"REDIS_URL=redis://{HOST}:{run_script.port} python3 " in after
    assert "examples/http_ratelimit.py" in after and "curl -i http://127.0.0.1:8080/" in after
    stop = next(ln for ln in after.splitlines() if ln.lstrip().startswith("stop:"))
    assert f"SHIELD_RUN_DIR={run_script.dir} " in stop and "scripts/run.sh --stop" in stop


def test_run_again_says_the_server_runs_and_leaves_it_alone(run_script):
    assert run_script().returncode == 0
    pid = run_script.pid()
    run_script.cli("SHIELD.absorb", "kept", "10", "3600", "4")
    again = run_script()
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout and f"pid {pid}" in again.stdout
    assert run_script.pid() == pid and pid_alive(pid)
    assert run_script.cli("GET", "kept") == "6"


def test_the_restart_hint_keeps_the_port_the_server_runs_on(run_script):
    assert run_script().returncode == 0
    again = run_script()
    hint = next(ln for ln in again.stdout.splitlines() if ln.startswith("To restart it"))
    restart = hint.split("&&", 1)[1]
    assert f"SHIELD_PORT={run_script.port} " in restart and f"SHIELD_RUN_DIR={run_script.dir} " in restart


LISTENER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("listening", flush=True)
sys.stdin.read() if sys.argv[2:] != ["forever"] else __import__("signal").pause()
"""


def test_a_busy_port_is_named_with_the_process_that_holds_it(run_script):
    require(os.path.exists("/usr/bin/ss") or os.path.exists("/bin/ss"), "no ss (iproute2)")
    holder = subprocess.Popen(["/usr/bin/python3", "-c", LISTENER, str(run_script.port)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "listening\n"
        done = run_script()
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert done.returncode == 1
    assert (f"port {run_script.port} on {HOST} is in use by python3 (pid {holder.pid}), "
            "which this script did not start.") in done.stderr
    assert "Debian" not in done.stderr
    assert f"SHIELD_PORT={run_script.port + 1} " in done.stderr
    assert run_script.pid() is None


# Stands in for scripts/install-deps.sh on a machine where installing redis-server starts Debian's
# service: it leaves a process listening on the port (its PID in $LISTENER_PID_FILE).
INSTALL_THAT_STARTS_A_SERVICE = f"""#!/bin/sh
setsid /usr/bin/python3 -c '{LISTENER}' "$SHIELD_PORT" forever </dev/null >"$LISTENER_PID_FILE.out" 2>&1 &
echo $! >"$LISTENER_PID_FILE"
while ! grep -q listening "$LISTENER_PID_FILE.out"; do sleep 0.05; done
"""


def test_run_installs_first_and_then_names_what_the_install_started_on_its_port(run_script, tmp_path):
    require(os.path.exists("/usr/bin/ss") or os.path.exists("/bin/ss"), "no ss (iproute2)")
    script = tmp_path / "install.sh"
    script.write_text(INSTALL_THAT_STARTS_A_SERVICE)
    script.chmod(0o755)
    pid_file = tmp_path / "listener.pid"
    run_script.env.update(SHIELD_DEPS_SCRIPT=str(script), LISTENER_PID_FILE=str(pid_file))
    try:
        done = run_script()
    finally:
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert done.returncode == 1, done.stdout
    assert f"is in use by python3 (pid {int(pid_file.read_text())})" in done.stderr
    assert "did not start with Shield" not in done.stderr
    assert run_script.pid() is None


def test_stop_stops_the_server_and_keeps_its_data_for_the_next_start(run_script):
    assert run_script().returncode == 0
    pid = run_script.pid()
    assert run_script.cli("SHIELD.absorb", "kept", "10", "3600", "4") == "6"
    stop = run_script("--stop")
    assert stop.returncode == 0, stop.stderr
    assert f"stopped redis-server (pid {pid})" in stop.stdout
    assert not pid_alive(pid)
    assert any(run_script.dir.glob("appendonly*")), list(run_script.dir.iterdir())
    start = run_script()
    assert start.returncode == 0, start.stderr
    assert run_script.cli("GET", "kept") == "6"


def test_stop_with_purge_deletes_the_data(run_script):
    assert run_script().returncode == 0
    pid = run_script.pid()
    done = run_script("--stop", "--purge")
    assert done.returncode == 0, done.stderr
    assert not pid_alive(pid)
    assert not run_script.dir.exists()


def test_run_rejects_unknown_arguments(run_script):
    for args in (["--stpo"], ["--stop", "--purg"], ["--cluster", "extra"]):
        done = run_script(*args)
        assert done.returncode == 2 and "usage:" in done.stderr, args


# --- run.sh --cluster on ports other than 7001-7006 -------------------------------------------------


def six_free_ports():
    """The first of six consecutive free ports whose bus ports (+10000) are free too, below 32768."""
    for _ in range(200):
        base = free_port(with_bus=True)
        if base + 10005 < 32768 and all(port_free(p) and port_free(p + 10000)
                                        for p in range(base, base + 6)):
            return base
    raise RuntimeError("no six consecutive free ports")


def cluster_pids(folder):
    return [int(p.read_text()) for p in folder.glob("*/redis.pid")]


MENTIONS_7001 = re.compile(r"(?<![\w.])7001(?!\w)")


def test_run_cluster_honours_the_base_port_and_stop_without_it_stops_the_nodes(tmp_path, server_binary):
    if os.environ.get("SHIELD_SERVER_PRELOAD"):
        pytest.skip("run.sh cannot load a sanitizer build of the module (the ASan pass)")
    require(os.path.exists(MODULE), f"module not built: {MODULE}")
    base = six_free_ports()
    folder = tmp_path / "cluster"
    env = dict(os.environ, SHIELD_SKIP_DEPS="1", SHIELD_MODULE=MODULE, SHIELD_REDIS_SERVER=server_binary,
               SHIELD_REDIS_CLI=cli_binary(), SHIELD_CLUSTER_DIR=str(folder),
               SHIELD_RUN_DIR=str(tmp_path / "standalone"))
    env.pop("SHIELD_CLUSTER_PORTS", None)
    try:
        up = subprocess.run(["bash", RUN, "--cluster"], env=dict(env, SHIELD_CLUSTER_BASE_PORT=str(base)),
                            capture_output=True, text=True, timeout=180)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"> redis-cli -c -p {base} SHIELD.absorb user123 100 60 5\n95\n" in up.stdout
        assert f"connect:  redis-cli -c -p {base} " in up.stdout
        assert not MENTIONS_7001.search(up.stdout + up.stderr)
        pids = cluster_pids(folder)
        assert len(pids) == 6 and all(pid_alive(pid) for pid in pids)
        assert (folder / "ports").read_text().split() == [str(p) for p in range(base, base + 6)]

        env.pop("SHIELD_CLUSTER_BASE_PORT", None)  # --stop without the variable
        stop = subprocess.run(["bash", RUN, "--stop"], env=env, capture_output=True, text=True,
                              timeout=120)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert not [pid for pid in pids if pid_alive(pid)]
        assert all(f"stopped node {p} " in stop.stdout for p in range(base, base + 6))

        purge = subprocess.run(["bash", RUN, "--stop", "--purge"], env=env, capture_output=True,
                               text=True, timeout=120)
        assert purge.returncode == 0, purge.stderr
        assert not folder.exists()
    finally:
        for pid in cluster_pids(folder) if folder.exists() else []:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
