"""Every write reaches replicas and the AOF as its effect (SET key n PXAT ms), never as the command."""

import glob
import os
import select
import subprocess
import uuid

import pytest
import redis
from shield_servers import cli_binary


class LineReader:
    """Reads a process's output line by line, waiting at most `timeout` seconds for each line."""

    def __init__(self, process):
        self.fd = process.stdout.fileno()
        self.buffer = b""

    def lines(self, timeout):
        while True:
            while b"\n" not in self.buffer:
                ready, _, _ = select.select([self.fd], [], [], timeout)
                chunk = os.read(self.fd, 65536) if ready else b""
                if not chunk:
                    return
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\n", 1)
            yield line.decode()


def aof_text(server):
    """All incremental AOF files of a server (Redis 7 multi-part AOF), as text."""
    paths = sorted(glob.glob(os.path.join(server.dir, "appendonlydir", "*.incr.aof")))
    return "".join(open(p, "rb").read().decode("latin-1") for p in paths)


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


def test_replication_stream_carries_set_pxat_and_nothing_for_denials(make_server):
    """What a replica receives, read with `redis-cli --replica` (the habit of Redis's propagate tests)."""
    primary = make_server()
    watcher = subprocess.Popen([cli_binary(), "-h", "127.0.0.1", "-p", str(primary.port), "--replica"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        reader = LineReader(watcher)
        synced = any("Logging commands from master" in line for line in reader.lines(timeout=15))
        assert synced, "redis-cli --replica did not finish its sync"
        r = primary.client()
        assert r.execute_command("SHIELD.absorb", "stream:a", 2, 60, 2) == 0
        assert r.execute_command("SHIELD.absorb", "stream:a", 2, 60, 1) == -1  # denied
        assert r.eval("return redis.call('SHIELD.absorb', KEYS[1], 5, 60)", 1, "stream:b") == 4
        with pytest.raises(redis.ResponseError):
            r.execute_command("SHIELD.absorb", "stream:c", 0, 60)  # error
        r.set("stream:marker", 1)
        received = []
        for line in reader.lines(timeout=15):
            if "stream:marker" in line:
                break
            if line.startswith('"'):
                received.append(line.strip())
        expected = [
            f'"SET","stream:a","0","PXAT","{r.pexpiretime("stream:a")}"',
            f'"SET","stream:b","4","PXAT","{r.pexpiretime("stream:b")}"',
        ]
        assert [line for line in received if not line.upper().startswith(('"PING"', '"SELECT"'))] == expected
    finally:
        watcher.kill()
        watcher.wait(timeout=10)
