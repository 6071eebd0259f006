"""What docs/production.md tells an operator: upgrading Shield (restarts, never MODULE UNLOAD; the
rolling order across a cluster from Shield 2.0, and what SHIELD.stats CLUSTER shows while versions
are mixed), changing limits on live keys, eviction and OOM, where the counters appear (INFO
sections, redis_exporter) and what resets and counts them, ACL for the reset, and WATCH."""

import re
import shutil
import subprocess
import urllib.request
import uuid

import pytest
import redis
from shield_cluster import Cluster, wait_for_promotion
from shield_servers import (HOST, MODULE, REPO, RespClient, free_port, require, server_environment,
                            wait_until)


def key(prefix="prod"):
    return f"{prefix}:{uuid.uuid4().hex[:12]}"


def absorb(r, *args):
    return r.execute_command("SHIELD.absorb", *args)


def verbose(r, *args):
    reply = r.execute_command("SHIELD.absorb", *args, "VERBOSE")
    return dict(zip(reply[::2], reply[1::2]))


# --- Changing capacity or period on a live key -------------------------------------------------------


def test_lowering_capacity_caps_the_stored_count_at_the_new_capacity(r):
    k = key()
    assert absorb(r, k, 100, 60, 5) == 95
    assert absorb(r, k, 10, 60, 1) == 9  # 95 reads as a full bucket of 10
    assert r.get(k) == "9"


def test_raising_capacity_keeps_the_count_and_refills_at_the_new_rate(r):
    k = key()
    assert absorb(r, k, 10, 60, 5) == 5
    assert absorb(r, k, 100, 60, 1) == 4  # not a full bucket of 100: the 5 left carry over


def test_a_longer_period_refills_a_key_written_with_the_shorter_one_from_its_ttl(r):
    k = key()
    assert absorb(r, k, 10, 10, 10) == 0  # empty, TTL 10 s
    # Read with a 100 s period, a TTL of 10 s means 90 s of it have passed: 9 tokens refilled.
    assert absorb(r, k, 10, 100, 1) == 8


def test_a_shorter_period_makes_the_refill_wait_until_the_ttl_fits_the_new_period(r):
    k = key()
    assert absorb(r, k, 10, 100, 10) == 0  # empty, TTL 100 s
    # With a 10 s period nothing refills until the TTL is down to 10 s, about 90 s from now.
    reply = verbose(r, k, 10, 10, 1)
    assert reply["allowed"] == 0
    assert 90_000 < reply["retry_after_ms"] <= 91_000


# --- Eviction and OOM ----------------------------------------------------------------------------------


def test_an_evicted_bucket_reads_as_full(make_server):
    r = make_server().client()
    r.config_set("maxmemory-policy", "volatile-ttl")
    used = int(r.info("memory")["used_memory"])
    r.config_set("maxmemory", used + 200_000)
    keys = []
    try:
        # Drain buckets until the server evicts some of them to stay under maxmemory.
        while int(r.info("stats")["evicted_keys"]) == 0:
            k = f"evict:{len(keys):06d}:{'x' * 100}"
            assert absorb(r, k, 10, 3600, 10) == 0
            keys.append(k)
            assert len(keys) < 100_000
        gone = next(k for k in keys if not r.exists(k))
        assert absorb(r, gone, 10, 3600, 1) == 9  # a fresh, full bucket
    finally:
        r.config_set("maxmemory", 0)


def assert_oom_on_a_new_key(r):
    """Under maxmemory 1 (noeviction), an absorb on a new key gets the server's OOM error."""
    r.config_set("maxmemory", 1)
    try:
        with pytest.raises(redis.ResponseError, match="^OOM "):
            absorb(r, key(), 10, 60, 1)
    finally:
        r.config_set("maxmemory", 0)


def test_under_noeviction_an_absorb_on_a_new_key_gets_oom(make_server):
    r = make_server().client()
    assert r.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert_oom_on_a_new_key(r)


def test_under_noeviction_a_call_that_would_be_denied_gets_oom_instead_of_minus_one(make_server):
    r = make_server().client()
    k = key()
    assert absorb(r, k, 10, 3600, 10) == 0
    r.config_set("maxmemory", 1)
    try:
        with pytest.raises(redis.ResponseError, match="^OOM "):
            absorb(r, k, 10, 3600, 1)
        # SHIELD.inspect is read-only, so it still answers: the bucket is empty.
        reply = r.execute_command("SHIELD.inspect", k, 10, 3600)
        assert dict(zip(reply[::2], reply[1::2]))["remaining"] == 0
    finally:
        r.config_set("maxmemory", 0)


# --- Where the counters appear, and what resets them ---------------------------------------------------


def info_text(r, *section):
    return r.execute_command("INFO", *section)


INFO_SECTIONS = {
    "INFO shield": (["shield"], True),
    "INFO modules": (["modules"], True),
    "INFO everything": (["everything"], True),
    "INFO": ([], False),
    "INFO all": (["all"], False),
    "INFO default": (["default"], False),
}


@pytest.mark.parametrize("name", list(INFO_SECTIONS))
def test_shield_counters_appear_in_module_sections_only(make_server, name):
    r = make_server().client()
    absorb(r, key(), 10, 60, 1)
    section, listed = INFO_SECTIONS[name]
    text = info_text(r, *section)
    if isinstance(text, dict):  # redis-py parses INFO into a dict
        text = "\n".join(f"{k}:{v}" for k, v in text.items())
    assert ("SHIELD_calls" in text) is listed, text[:300]


def shield_calls(r):
    return int(r.info("shield")["SHIELD_calls"])


def test_config_resetstat_does_not_reset_the_counters_and_shield_stats_reset_does(make_server):
    r = make_server().client()
    for _ in range(3):
        absorb(r, key(), 10, 60, 1)
    assert shield_calls(r) == 3
    assert r.config_resetstat()
    assert shield_calls(r) == 3
    # The server's own statistics did reset.
    assert not [name for name in r.info("commandstats") if "shield" in name.lower()]
    assert r.execute_command("SHIELD.stats_reset") == "OK"
    # Every counter zeroed, then the reset's own call counted.
    stats = r.info("shield")
    assert stats["SHIELD_calls"] == stats["SHIELD_stats_reset_calls"] == 1
    assert stats["SHIELD_absorb_calls"] == stats["SHIELD_allowed"] == 0


def test_shield_stats_reset_answers_an_error_that_names_shield_stats_reset(r):
    with pytest.raises(redis.ResponseError, match="SHIELD.stats_reset"):
        r.execute_command("SHIELD.stats", "RESET")


def test_a_user_without_shield_stats_reset_cannot_reset_the_counters_and_one_with_it_can(make_server):
    server = make_server()
    r = server.client()
    r.execute_command("ACL", "SETUSER", "viewer", "on", ">pw", "~*", "+@all", "-shield.stats_reset")
    r.execute_command("ACL", "SETUSER", "resetter", "on", ">pw", "+shield.stats_reset")
    absorb(r, key(), 10, 60, 1)
    with server.client(username="viewer", password="pw") as viewer:
        with pytest.raises(redis.exceptions.NoPermissionError):
            viewer.execute_command("SHIELD.stats_reset")
    assert int(r.info("shield")["SHIELD_absorb_calls"]) == 1
    with server.client(username="resetter", password="pw") as resetter:
        assert resetter.execute_command("SHIELD.stats_reset") == "OK"
    assert int(r.info("shield")["SHIELD_absorb_calls"]) == 0


# --- Upgrading Shield ------------------------------------------------------------------------------


def test_module_unload_is_refused_and_the_log_says_why(make_server):
    server = make_server(extra_args=["--enable-module-command", "yes"])
    r = server.client()
    assert absorb(r, "kept", 10, 3600, 4) == 6
    with pytest.raises(redis.ResponseError):
        r.execute_command("MODULE", "UNLOAD", "SHIELD")
    assert "SHIELD" in [m["name"] for m in r.module_list()]
    assert absorb(r, "kept", 10, 3600, 1) == 5
    assert "Shield refuses MODULE UNLOAD" in server.log_tail(50)
    assert "restart" in server.log_tail(50)


def test_acl_rules_naming_shield_commands_load_with_the_module_at_a_restart(server_binary, tmp_path):
    # What a restart-based upgrade relies on: `user` lines that name module commands, next to
    # `loadmodule` in the configuration file, are valid when the server starts.
    port = free_port()
    config = tmp_path / "redis.conf"
    config.write_text(f"loadmodule {MODULE}\nuser default on nopass ~* +@all\n"
                      "user app on >pw ~ratelimit:* +shield.absorb -shield.stats_reset\n")
    process = subprocess.Popen([server_binary, str(config), "--port", str(port), "--bind", HOST,
                                "--save", "", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=server_environment())
    try:
        def app():
            return redis.Redis(host=HOST, port=port, username="app", password="pw",
                               decode_responses=True)

        wait_until(lambda: redis.Redis(host=HOST, port=port).ping(),
                   what="the server started from the file")
        with app() as c:
            assert absorb(c, "ratelimit:x", 10, 60, 1) == 9
            with pytest.raises(redis.exceptions.NoPermissionError):
                c.execute_command("SHIELD.stats_reset")
    finally:
        process.kill()
        process.wait(timeout=10)


def test_where_module_commands_have_categories_minus_admin_keeps_a_user_from_resetting(make_server):
    server = make_server()
    r = server.client()
    with RespClient(server.port) as c:
        categories = c.call("COMMAND", "INFO", "SHIELD.stats_reset")[0][6]
    if "@admin" not in categories:
        pytest.skip("this server gives module commands no categories (Redis 7.0): "
                    "test_acl_categories.py tests its rule, -shield.stats_reset")
    r.execute_command("ACL", "SETUSER", "ops", "on", ">pw", "~*", "+@all", "-@admin")
    with server.client(username="ops", password="pw") as ops:
        with pytest.raises(redis.exceptions.NoPermissionError):
            ops.execute_command("SHIELD.stats_reset")


def test_a_cl_throttle_that_only_looks_or_gives_back_is_not_an_allowed_call(make_server):
    # docs/production.md, "What changed in the counters".
    r = make_server().client()
    k = key()
    assert r.execute_command("CL.THROTTLE", k, 5, 5, 60, 2)[0] == 0  # takes 2: allowed
    r.execute_command("CL.THROTTLE", k, 5, 5, 60, 0)  # only looks
    r.execute_command("CL.THROTTLE", k, 5, 5, 60, -1)  # gives one back
    stats = r.info("shield")
    assert stats["SHIELD_throttle_calls"] == 3
    assert stats["SHIELD_allowed"] == 1 and stats["SHIELD_denied"] == 0
    assert stats["SHIELD_tokens_refunded"] == 1


# Shield 2.0 as it was before its counters changed (18 counters, SHIELD.stats RESET): the commit
# the rolling upgrade starts from.
SHIELD_2_0_COMMIT = "7348426"


@pytest.fixture(scope="session")
def shield_2_0_module(tmp_path_factory):
    """The module of SHIELD_2_0_COMMIT, built from `git archive` in a temporary folder."""
    require(shutil.which("git") is not None and (REPO / ".git").exists(), "needs git and the history")
    header = REPO / ".deps" / "redismodule"
    require((header / "redismodule.h").exists(), "no .deps/redismodule/redismodule.h")
    source = tmp_path_factory.mktemp("shield-2.0")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", SHIELD_2_0_COMMIT, "CMakeLists.txt",
                              "src", "bench/floor", "scripts/fetch-redismodule-h.sh"],
                             capture_output=True, check=True, timeout=60)
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True, timeout=60)
    build = source / "build"
    subprocess.run(["cmake", "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                    "-DSHIELD_BUILD_TESTS=OFF", f"-DSHIELD_REDISMODULE_DIR={header}"],
                   capture_output=True, check=True, timeout=300)
    subprocess.run(["cmake", "--build", str(build), "--target", "redis_shield", "-j2"],
                   capture_output=True, check=True, timeout=900)
    return str(build / "libredis_shield.so")


def stats_cluster(node):
    with RespClient(node.port, protocol=3) as c:
        return c.call("SHIELD.stats", "CLUSTER", "TIMEOUT", 1000)


def statuses(reply):
    return {entry["address"].rsplit(":", 1)[-1].split("@")[0]: entry["status"] for entry in reply["nodes"]}


def node_entry(reply, node):
    """The map of `node` in a SHIELD.stats CLUSTER reply."""
    return next(entry for entry in reply["nodes"] if entry["address"].rsplit(":", 1)[-1].split("@")[0]
                == str(node.port))


def restart_on(cluster, node, module):
    node.stop()
    node.module = module
    cluster.restart(node)


def linked(node):
    with node.client() as c:
        return c.info("replication").get("master_link_status") == "up"


def test_a_rolling_upgrade_from_2_0_keeps_every_bucket_and_every_node_reads_every_others_counters(
        server_binary, shield_2_0_module):
    cluster = Cluster(server_binary, primaries=3, replicas=1, module=shield_2_0_module).start()
    try:
        old_primaries = cluster.primaries()
        replicas = [cluster.replica_of(p) for p in old_primaries]
        keys = [k for p in old_primaries for k in cluster.keys_on(p, "roll", 2)]
        with cluster.client() as c:
            assert [absorb(c, k, 10, 3600, 4) for k in keys] == [6] * len(keys)
        for primary in old_primaries:
            with primary.client() as c:
                assert c.execute_command("WAIT", 1, 5000) == 1

        # 1. Replicas first.
        for replica in replicas:
            restart_on(cluster, replica, MODULE)
            wait_until(lambda: linked(replica), timeout=30, what=f"replica {replica.port} linked")
            with replica.client() as c:
                assert "SHIELD" in [m["name"] for m in c.module_list()]
        cluster.wait_healthy()
        # Mixed versions: an upgraded node answers a 2.0 node in 2.0's own form (its 18 counters by
        # position), so the 2.0 node lists every node as `ok`, the upgraded replicas' counts included.
        # (`unreachable` until the cluster bus has linked a restarted node again)
        wait_until(lambda: stats_cluster(old_primaries[0])["nodes_answered"] == 6, timeout=30,
                   what="the 2.0 node to hear from every node, upgraded ones included")
        reply = stats_cluster(old_primaries[0])
        assert set(statuses(reply).values()) == {"ok"}, statuses(reply)
        # An upgraded replica's counts reach the 2.0 node: three SHIELD.stats calls made on it.
        with replicas[1].client() as c:
            for _ in range(3):
                c.execute_command("SHIELD.stats")
        assert node_entry(stats_cluster(old_primaries[0]), replicas[1])["stats_calls"] == 3
        # The other way round, an upgraded node reads 2.0's reply by its counters' names (the
        # counters 2.0 lacks read 0): it lists every node as `ok`.
        wait_until(lambda: stats_cluster(replicas[0])["nodes_answered"] == 6, timeout=30,
                   what="an upgraded replica to hear from every node, 2.0 ones included")
        reply = stats_cluster(replicas[0])
        assert set(statuses(reply).values()) == {"ok"}, statuses(reply)
        old_entry = node_entry(reply, old_primaries[1])
        assert (old_entry["absorb_calls"], old_entry["waited"]) == (2, 0), old_entry

        # 2. Fail over to each upgraded replica.
        for replica in replicas:
            with replica.client() as c:
                assert c.execute_command("CLUSTER", "FAILOVER") == "OK"
            wait_for_promotion(cluster, replica)
        cluster.wait_healthy()

        # 3. The old primaries last, now replicas.
        for node in old_primaries:
            restart_on(cluster, node, MODULE)
            wait_until(lambda: linked(node), timeout=30, what=f"node {node.port} linked")
        cluster.wait_healthy()

        # Every node on the new version: each counts every other again (once the cluster bus has
        # linked the restarted nodes).
        for node in cluster.nodes:
            wait_until(lambda: stats_cluster(node)["nodes_answered"] == 6, timeout=30,
                       what=f"node {node.port} to hear from all six")
        with cluster.client() as c:
            for k in keys:
                assert absorb(c, k, 10, 3600, 1) == 5  # the count written under 2.0 carried over
    finally:
        cluster.stop()


def test_calls_the_server_refuses_before_the_module_runs_are_not_counted(make_server):
    server = make_server()
    r = server.client()
    r.execute_command("ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@all", "-shield.absorb")
    before = r.info("shield")
    # Arity: refused by the server.
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        absorb(r, key())
    # NOPERM: refused by ACL.
    with server.client(username="reader", password="pw") as reader:
        with pytest.raises(redis.exceptions.NoPermissionError):
            absorb(reader, key(), 10, 60, 1)
    # OOM: refused because absorb is deny-oom.
    assert_oom_on_a_new_key(r)
    after = r.info("shield")
    assert after["SHIELD_calls"] == before["SHIELD_calls"]
    assert after["SHIELD_absorb_calls"] == before["SHIELD_absorb_calls"] == 0


def test_calls_a_replica_refuses_as_readonly_are_not_counted(make_server):
    primary = make_server()
    replica = make_server(extra_args=["--replicaof", HOST, str(primary.port)])
    r = replica.client()
    with pytest.raises(redis.exceptions.ReadOnlyError):
        absorb(r, key(), 10, 60, 1)
    assert shield_calls(r) == 0


# --- Prometheus: redis_exporter with a Lua script ------------------------------------------------------

EXPORTER_SCRIPT = REPO / "examples" / "redis_exporter_shield.lua"


def exporter_binary():
    local = REPO / ".deps" / "redis_exporter" / "bin" / "prometheus-redis-exporter"
    return str(local) if local.exists() else shutil.which("prometheus-redis-exporter")


def test_redis_exporter_exports_the_counters_through_the_lua_script_of_the_guide(make_server, tmp_path):
    binary = exporter_binary()
    require(binary is not None, "prometheus-redis-exporter (scripts/install-deps.sh puts it in .deps/)")
    server = make_server()
    r = server.client()
    assert [absorb(r, "exported", 3, 60, 1) for _ in range(4)] == [2, 1, 0, -1]
    port = free_port()
    exporter = subprocess.Popen(
        [binary, "-redis.addr", f"redis://{HOST}:{server.port}",
         "-web.listen-address", f"{HOST}:{port}", "-script", str(EXPORTER_SCRIPT)],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "exporter.log", "wb"))
    try:
        def metrics():
            with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as page:
                return page.read().decode()

        text = wait_until(metrics, timeout=15, what="redis_exporter to serve /metrics")
        values = dict(re.findall(r'^redis_script_values\{[^}]*key="([a-z_]+)"[^}]*\} (\S+)$', text, re.M))
        assert float(values["calls"]) >= 4
        assert float(values["allowed"]) == 3
        assert float(values["denied"]) == 1
        assert float(values["tokens_absorbed"]) == 3
    finally:
        exporter.kill()
        exporter.wait(timeout=10)


# --- WATCH ----------------------------------------------------------------------------------------------


def watched_exec(r, other, k, call):
    """WATCH k on one connection, run `call` on another, then EXEC: the transaction's result."""
    with r.pipeline(transaction=True) as pipe:
        pipe.watch(k)
        call(other)
        pipe.multi()
        pipe.get(k)
        try:
            return pipe.execute()
        except redis.WatchError:
            return None


def test_an_allowed_absorb_fails_a_concurrent_watch_on_its_key(shared_server):
    r, other = shared_server.client(), shared_server.client()
    k = key()
    assert absorb(r, k, 10, 60, 1) == 9
    assert watched_exec(r, other, k, lambda c: absorb(c, k, 10, 60, 1)) is None
    assert absorb(r, k, 10, 60, 1) == 7


def test_an_allowed_absorb_on_a_new_key_fails_a_concurrent_watch_on_it(shared_server):
    r, other = shared_server.client(), shared_server.client()
    k = key()
    assert watched_exec(r, other, k, lambda c: absorb(c, k, 10, 60, 1)) is None


def test_a_denied_absorb_does_not_fail_a_concurrent_watch_on_its_key(shared_server):
    r, other = shared_server.client(), shared_server.client()
    k = key()
    assert absorb(r, k, 10, 60, 10) == 0

    def denied(c):
        assert absorb(c, k, 10, 60, 1) == -1

    assert watched_exec(r, other, k, denied) == ["0"]


def test_an_inspect_does_not_fail_a_concurrent_watch_on_its_key(shared_server):
    r, other = shared_server.client(), shared_server.client()
    k = key()
    assert absorb(r, k, 10, 60, 3) == 7
    assert watched_exec(r, other, k, lambda c: c.execute_command("SHIELD.inspect", k, 10, 60)) == ["7"]
