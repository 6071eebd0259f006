"""scripts/cluster.sh brings up, reports on and takes down its six-node cluster (here on free ports)."""

import os
import signal
import subprocess

import pytest
import redis
from redis.cluster import RedisCluster
from shield_servers import HOST, MODULE, REPO, free_port, pid_alive

SCRIPT = REPO / "scripts" / "cluster.sh"


class ScriptCluster:
    pass


def pids_in(run_dir):
    pids = []
    for root, _, files in os.walk(run_dir):
        if "redis.pid" in files:
            with open(os.path.join(root, "redis.pid")) as f:
                pids.append(int(f.read().strip()))
    return pids


@pytest.fixture(scope="module")
def script_cluster(tmp_path_factory):
    s = ScriptCluster()
    s.ports = [free_port(with_bus=True) for _ in range(6)]
    s.dir = str(tmp_path_factory.mktemp("cluster-sh") / "run")
    s.env = dict(os.environ, SHIELD_CLUSTER_PORTS=" ".join(map(str, s.ports)),
                 SHIELD_CLUSTER_DIR=s.dir, SHIELD_MODULE=MODULE)

    def run(*args, timeout=120):
        return subprocess.run([str(SCRIPT), *args], env=s.env, capture_output=True, text=True,
                              timeout=timeout)

    s.run = run
    s.up = run("up")
    s.pids = pids_in(s.dir)
    try:
        s.up_again = run("up")
        s.status = run("status")
        s.settings = {}
        for port in s.ports:
            with redis.Redis(host=HOST, port=port, decode_responses=True) as c:
                s.settings[port] = {**c.config_get("cluster-node-timeout"),
                                    **c.config_get("appendonly"),
                                    **c.config_get("cluster-enabled")}
        # `stop` keeps the data, and the next `up` starts the same cluster on it.
        with RedisCluster(host=HOST, port=s.ports[0], decode_responses=True) as c:
            s.absorbed = c.execute_command("SHIELD.absorb", "kept", 10, 3600, 4)
            c.wait(1, 5000)  # the replica has it too, so a restart cannot lose it either way
        s.stop = run("stop")
        s.after_stop = [pid for pid in s.pids if pid_alive(pid)]
        s.files_after_stop = sorted(name for port in s.ports for name in os.listdir(os.path.join(s.dir, str(port))))
        s.resumed = run("up")
        with RedisCluster(host=HOST, port=s.ports[0], decode_responses=True) as c:
            s.after_resume = c.execute_command("SHIELD.inspect", "kept", 10, 3600)
        s.down = run("down")
        s.after_down = [pid for pid in s.pids if pid_alive(pid)]
    finally:
        for pid in pids_in(s.dir):  # only if `down` failed: the PIDs the script wrote
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    return s


def test_up_starts_six_nodes_and_reports_the_cluster_up(script_cluster):
    assert script_cluster.up.returncode == 0, script_cluster.up.stdout + script_cluster.up.stderr
    assert "up - 3 primaries + 3 replicas" in script_cluster.up.stdout
    assert len(script_cluster.pids) == 6


def test_up_on_a_running_cluster_reports_it_and_starts_nothing(script_cluster):
    assert script_cluster.up_again.returncode == 0
    assert "already up" in script_cluster.up_again.stdout


def test_status_shows_every_node_with_the_module_and_cluster_state_ok(script_cluster):
    status = script_cluster.status
    assert status.returncode == 0, status.stdout + status.stderr
    rows = {}
    for line in status.stdout.splitlines():
        fields = line.split()
        if fields and fields[0].isdigit() and int(fields[0]) in script_cluster.ports:
            rows[int(fields[0])] = fields
    assert sorted(rows) == sorted(script_cluster.ports)
    assert sorted(row[2] for row in rows.values()) == ["primary"] * 3 + ["replica"] * 3
    assert all(row[3] == "loaded" and row[4] == "ok" for row in rows.values())
    assert "cluster_state:ok" in status.stdout
    assert "All 16384 slots covered" in status.stdout


def test_down_stops_every_process_it_started_and_removes_the_data(script_cluster):
    assert script_cluster.down.returncode == 0, script_cluster.down.stderr
    assert script_cluster.down.stdout.count("stopped node") == 6
    assert script_cluster.after_down == []
    assert not os.path.exists(script_cluster.dir)


def test_up_gives_every_node_the_guides_settings(script_cluster):
    for port, settings in script_cluster.settings.items():
        assert settings == {"cluster-node-timeout": "5000", "appendonly": "yes",
                            "cluster-enabled": "yes"}, port


def test_up_splits_the_slots_over_the_first_three_ports_as_the_guide_shows(script_cluster):
    primaries = {}
    for line in script_cluster.status.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 9 and "master" in fields[2]:
            primaries[int(fields[1].split("@")[0].rsplit(":", 1)[1])] = fields[8]
    first, second, third = script_cluster.ports[:3]
    assert primaries == {first: "0-5460", second: "5461-10922", third: "10923-16383"}


def test_stop_stops_every_process_and_keeps_the_data(script_cluster):
    assert script_cluster.stop.returncode == 0, script_cluster.stop.stderr
    assert script_cluster.stop.stdout.count("stopped node") == 6
    assert script_cluster.after_stop == []
    for name in ("nodes.conf", "redis.log"):
        assert script_cluster.files_after_stop.count(name) == 6, script_cluster.files_after_stop


def test_up_after_stop_starts_the_same_cluster_on_its_data(script_cluster):
    assert script_cluster.absorbed == 6
    assert script_cluster.resumed.returncode == 0, script_cluster.resumed.stdout + script_cluster.resumed.stderr
    assert "starting the stopped nodes" in script_cluster.resumed.stdout
    fields = dict(zip(script_cluster.after_resume[::2], script_cluster.after_resume[1::2]))
    assert fields["remaining"] == 6 - 1  # what an absorb of one token would leave
