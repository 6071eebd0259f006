"""The README's scripts: what scripts/install-deps.sh writes into apt's configuration, and how
scripts/run.sh starts, refuses to restart, stops and keeps its server.

install-deps.sh runs in its --sources-only mode against sample files in a temporary folder
(SHIELD_APT_DIR), so nothing here touches /etc/apt or needs the network. run.sh runs with
SHIELD_SKIP_DEPS=1 (no apt-get) and SHIELD_MODULE (no build), on a free port and a temporary data
folder, never on 6379; its cluster part is pointed at an empty temporary folder.
"""

import os
import socket
import subprocess
import textwrap

import pytest
from shield_servers import HOST, MODULE, REPO, cli_binary, free_port, require

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


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_starts_a_server_with_shield_on_the_port_it_is_given(run_script):
    done = run_script()
    assert done.returncode == 0, done.stderr
    assert f"redis-server with Shield on {HOST}:{run_script.port}" in done.stdout
    assert "SHIELD" in run_script.cli("MODULE", "LIST").split()
    # The demo's three calls of 13 tokens from a bucket of 30: 17, 4, -1.
    lines = done.stdout.splitlines()
    replies = [lines[i + 1] for i, line in enumerate(lines) if line.startswith("> SHIELD.absorb")]
    assert replies == ["17", "4", "-1"]


def test_run_again_says_the_server_runs_and_leaves_it_alone(run_script):
    assert run_script().returncode == 0
    pid = run_script.pid()
    run_script.cli("SHIELD.absorb", "kept", "10", "3600", "4")
    again = run_script()
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout and f"pid {pid}" in again.stdout
    assert run_script.pid() == pid and alive(pid)
    assert run_script.cli("GET", "kept") == "6"


def test_run_refuses_a_port_that_another_process_holds(run_script):
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind((HOST, run_script.port))
        other.listen()
        done = run_script()
    assert done.returncode == 1
    assert f"port {run_script.port} on {HOST} is in use" in done.stderr
    assert "SHIELD_PORT" in done.stderr
    assert run_script.pid() is None


def test_stop_stops_the_server_and_keeps_its_data_for_the_next_start(run_script):
    assert run_script().returncode == 0
    pid = run_script.pid()
    assert run_script.cli("SHIELD.absorb", "kept", "10", "3600", "4") == "6"
    stop = run_script("--stop")
    assert stop.returncode == 0, stop.stderr
    assert f"stopped redis-server (pid {pid})" in stop.stdout
    assert not alive(pid)
    assert any(run_script.dir.glob("appendonly*")), list(run_script.dir.iterdir())
    start = run_script()
    assert start.returncode == 0, start.stderr
    assert run_script.cli("GET", "kept") == "6"


def test_stop_with_purge_deletes_the_data(run_script):
    assert run_script().returncode == 0
    pid = run_script.pid()
    done = run_script("--stop", "--purge")
    assert done.returncode == 0, done.stderr
    assert not alive(pid)
    assert not run_script.dir.exists()


def test_run_rejects_unknown_arguments(run_script):
    for args in (["--stpo"], ["--stop", "--purg"], ["--cluster", "extra"]):
        done = run_script(*args)
        assert done.returncode == 2 and "usage:" in done.stderr, args
