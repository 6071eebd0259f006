"""Every write reaches replicas and the AOF as its effect (SET key n PXAT ms), never as the command."""

import glob
import os
import uuid

import pytest
import redis
from shield_servers import wait_for_replica_link


def aof_text(server):
    """All incremental AOF files of a server (Redis 7 multi-part AOF), as text."""
    paths = sorted(glob.glob(os.path.join(server.dir, "appendonlydir", "*.incr.aof")))
    return "".join(open(p, "rb").read().decode("latin-1") for p in paths)


@pytest.fixture
def primary_and_replica(make_server):
    primary = make_server()
    replica = make_server(extra_args=["--replicaof", "127.0.0.1", str(primary.port)])
    wait_for_replica_link(replica)
    return primary, replica


def test_replica_holds_the_same_value_and_expiry(primary_and_replica):
    primary, replica = primary_and_replica
    p, rep = primary.client(), replica.client()
    keys = [f"repl:{i}:{uuid.uuid4().hex[:6]}" for i in range(50)]
    for i, key in enumerate(keys):
        for _ in range(i % 7 + 1):
            p.execute_command("SHIELD.absorb", key, 5, 60, 1)  # some of these are denied
    # From a transaction and from a script too.
    with p.pipeline(transaction=True) as tx:
        tx.execute_command("SHIELD.absorb", "repl:tx", 10, 60, 3)
        tx.execute_command("SHIELD.absorb", "repl:tx", 10, 60, 3)
        assert tx.execute() == [7, 4]
    assert p.eval("return redis.call('SHIELD.absorb', KEYS[1], 10, 60, 4)", 1, "repl:lua") == 6
    keys += ["repl:tx", "repl:lua"]

    assert p.wait(1, 5000) == 1
    for key in keys:
        assert rep.get(key) == p.get(key), key
        assert rep.pexpiretime(key) == p.pexpiretime(key), key


def test_replica_refuses_absorb(primary_and_replica):
    _, replica = primary_and_replica
    with pytest.raises(redis.ReadOnlyError):
        replica.client().execute_command("SHIELD.absorb", "ro", 5, 60)


def test_aof_records_the_effect_and_denials_record_nothing(make_server):
    server = make_server(extra_args=["--appendonly", "yes", "--appendfsync", "always"])
    r = server.client()
    assert r.execute_command("SHIELD.absorb", "aof:key", 2, 60, 2) == 0
    text = aof_text(server)
    expire_at = r.pexpiretime("aof:key")
    assert "SHIELD" not in text.upper().replace("AOF:KEY", "")
    assert f"SET\r\n$7\r\naof:key\r\n$1\r\n0\r\n$4\r\nPXAT\r\n${len(str(expire_at))}\r\n{expire_at}\r\n" in text
    size = len(text)
    assert r.execute_command("SHIELD.absorb", "aof:key", 2, 60, 1) == -1
    assert len(aof_text(server)) == size
