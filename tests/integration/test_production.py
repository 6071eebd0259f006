"""What docs/production.md tells an operator: changing limits on live keys, eviction and OOM, where
the counters appear (INFO sections, redis_exporter) and what resets and counts them, and WATCH."""

import re
import shutil
import subprocess
import urllib.request
import uuid

import pytest
import redis
from shield_servers import HOST, REPO, free_port, require, wait_until


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


def test_under_noeviction_an_absorb_on_a_new_key_gets_oom(make_server):
    r = make_server().client()
    assert r.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    r.config_set("maxmemory", 1)
    try:
        with pytest.raises(redis.ResponseError, match="^OOM "):
            absorb(r, key(), 10, 60, 1)
    finally:
        r.config_set("maxmemory", 0)


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
    assert r.execute_command("SHIELD.stats", "RESET") == "OK"
    assert shield_calls(r) == 0  # RESET zeroes everything, its own call included


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
    r.config_set("maxmemory", 1)
    try:
        with pytest.raises(redis.ResponseError, match="^OOM "):
            absorb(r, key(), 10, 60, 1)
    finally:
        r.config_set("maxmemory", 0)
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
