"""Transactions, scripts, concurrency, command metadata, OOM and INFO."""

import time
import uuid

import pytest
import redis
import shield_servers


def test_multi_exec(r):
    key = f"tx:{uuid.uuid4().hex}"
    with r.pipeline(transaction=True) as tx:
        for _ in range(3):
            tx.execute_command("SHIELD.absorb", key, 30, 60, 13)
        assert tx.execute() == [17, 4, -1]


def test_multi_exec_rolls_nothing_back_on_a_bad_argument(r):
    key = f"tx:{uuid.uuid4().hex}"
    with r.pipeline(transaction=True) as tx:
        tx.execute_command("SHIELD.absorb", key, 30, 60, 13)
        tx.execute_command("SHIELD.absorb", key, 0, 60, 13)
        replies = tx.execute(raise_on_error=False)
    assert replies[0] == 17
    assert isinstance(replies[1], redis.ResponseError)


def test_lua_script(r):
    key = f"lua:{uuid.uuid4().hex}"
    script = "return {redis.call('SHIELD.absorb', KEYS[1], 30, 60, 13), redis.call('SHIELD.absorb', KEYS[1], 30, 60, 13)}"
    assert r.eval(script, 1, key) == [17, 4]


def test_lua_pcall_sees_errors(r):
    script = "local ok = redis.pcall('SHIELD.absorb', KEYS[1], 0, 60) return ok['err']"
    assert r.eval(script, 1, f"lua:{uuid.uuid4().hex}") == "ERR capacity must be positive"


def test_twenty_concurrent_clients_get_exactly_capacity(shared_server):
    key = f"race:{uuid.uuid4().hex}"
    capacity = 1000  # refills one token per 36 s: none during the test
    granted = []

    def client_loop():
        with shared_server.client() as c:
            mine = 0
            while c.execute_command("SHIELD.absorb", key, capacity, 36_000, 1) >= 0:
                mine += 1
            for _ in range(5):  # keep pushing after the first denial
                if c.execute_command("SHIELD.absorb", key, capacity, 36_000, 1) >= 0:
                    mine += 1
            granted.append(mine)

    shield_servers.run_threads(client_loop, 20, timeout=60)
    assert len(granted) == 20
    assert sum(granted) == capacity


def test_command_info_declares_flags_and_key_positions(raw_command):
    info = raw_command.execute_command("COMMAND", "INFO", "SHIELD.absorb")
    name, arity, flags, first, last, step = info[0][:6]
    assert name.lower() == "shield.absorb"
    assert arity == -4
    assert {"write", "denyoom", "fast"} <= set(flags)
    assert (first, last, step) == (1, 1, 1)
    key_specs = info[0][8]
    spec = dict(zip(key_specs[0][::2], key_specs[0][1::2]))
    assert set(spec["flags"]) == {"RW", "access", "update"}


@pytest.mark.parametrize("name", ["SHIELD.absorb", "shield.absorb", "Shield.Absorb"])
@pytest.mark.parametrize("args", [("k",), ("k", 1), ("k", 1, 2, 3, 4), ("k", 1, 2, 3, 4, 5)])
def test_arity_error_names_the_command_as_registered(r, name, args):
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command(name, *args)
    assert str(raised.value) == "wrong number of arguments for 'SHIELD.absorb' command"


def test_acl_user_without_read_rights_cannot_absorb(shared_server):
    """The reply reveals the stored count, so the key spec asks for read as well as write rights."""
    admin = shared_server.client()
    admin.execute_command("ACL", "SETUSER", "writer", "on", ">pw", "%W~*", "+@all")
    with shared_server.client(username="writer", password="pw") as writer:
        with pytest.raises(redis.exceptions.NoPermissionError):
            writer.execute_command("SHIELD.absorb", "acl:bucket", 10, 60)
    admin.execute_command("ACL", "SETUSER", "reader-writer", "on", ">pw", "~*", "+@all")
    with shared_server.client(username="reader-writer", password="pw") as both:
        assert both.execute_command("SHIELD.absorb", "acl:bucket", 10, 60) == 9


def test_command_getkeys_finds_the_key(raw_command):
    assert raw_command.execute_command("COMMAND", "GETKEYS", "SHIELD.absorb", "user:1", "10", "60") == ["user:1"]
    assert raw_command.execute_command("COMMAND", "GETKEYS", "SHIELD.absorb", "user:2", "10", "60", "3") == ["user:2"]


def test_refused_under_oom(make_server):
    server = make_server()
    r = server.client()
    r.config_set("maxmemory", 1)
    try:
        with pytest.raises(redis.ResponseError, match="^OOM command not allowed when used memory"):
            r.execute_command("SHIELD.absorb", "oom", 10, 60)
        assert r.exists("oom") == 0
    finally:
        r.config_set("maxmemory", 0)
    assert r.execute_command("SHIELD.absorb", "oom", 10, 60) == 9


def test_info_section_counts_calls(make_server):
    r = make_server().client()
    r.execute_command("SHIELD.absorb", "info", 3, 60, 2)
    r.execute_command("SHIELD.absorb", "info", 3, 60, 2)
    with pytest.raises(redis.ResponseError):
        r.execute_command("SHIELD.absorb", "info", 0, 60)
    info = r.info("shield")
    assert info["SHIELD_calls"] == 3
    assert info["SHIELD_allowed"] == 1
    assert info["SHIELD_denied"] == 1
    assert info["SHIELD_errors"] == 1
    assert info["SHIELD_tokens_absorbed"] == 2


def test_module_list_names_shield(r):
    names = [m["name"] for m in r.module_list()]
    assert "SHIELD" in names


def test_module_refuses_arguments(make_server):
    r = make_server(module=None, extra_args=["--enable-module-command", "yes"]).client()
    with pytest.raises(redis.ResponseError):
        r.execute_command("MODULE", "LOAD", shield_servers.MODULE, "unexpected")
    assert r.execute_command("MODULE", "LOAD", shield_servers.MODULE) == "OK"
    assert r.execute_command("SHIELD.absorb", "k", 2, 60) == 1


def test_writes_emit_set_and_expire_keyspace_events(make_server):
    server = make_server(extra_args=["--notify-keyspace-events", "KEA"])
    r = server.client()
    with r.pubsub() as sub:
        sub.subscribe("__keyspace@0__:events", "__keyspace@0__:marker")
        confirmed = 0
        while confirmed < 2:  # both subscriptions are in place before anything is written
            message = sub.get_message(timeout=5)
            assert message is not None, "no subscribe confirmation"
            confirmed += message["type"] == "subscribe"
        r.execute_command("SHIELD.absorb", "events", 1, 60)
        r.execute_command("SHIELD.absorb", "events", 1, 60)  # denied: no events
        r.set("marker", 1)  # a plain write after them: its event ends the reading
        events = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = sub.get_message(timeout=1)
            if message is None or message["type"] != "message":
                continue
            if message["channel"].endswith(":marker"):
                break
            events.append(message["data"])
    assert events == ["set", "expire"]

