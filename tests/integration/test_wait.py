"""WAIT <ms> on SHIELD.absorb and SHIELD.gcra: the server holds a caller until its tokens are there,
first come first served per key, and grants it as a plain call would (SET ... PXAT propagated).
Waiting is observed through the server (INFO clients' blocked_clients, the replication stream),
never through sleeps or elapsed times."""

import os
import signal
import threading
import uuid

import pytest
import redis
from shield_servers import ReplicationStream, RespClient, RespError, wait_until, wait_for_replica_link


def key(prefix="wait"):
    return f"{prefix}:{uuid.uuid4().hex}"


def blocked_clients(server):
    with server.client() as c:
        return int(c.info("clients")["blocked_clients"])


def wait_for_blocked(server, count):
    wait_until(lambda: blocked_clients(server) == count, timeout=10, what=f"{count} blocked clients")


def counters(server):
    with server.client() as c:
        reply = c.execute_command("SHIELD.stats")
    return {field: int(value) for field, value in zip(reply[::2], reply[1::2])}


class Waiter:
    """A connection that sends one command and reads its reply on a thread, so that the test can
    go on while the server holds it. `order` (shared) records the order in which replies came."""

    def __init__(self, server, *command, order=None, name=None):
        self.connection = RespClient(server.port, timeout=60)
        self.client_id = self.connection.call("CLIENT", "ID")
        self.name = name
        self.order = order
        self.reply = None
        self.thread = threading.Thread(target=self._run, args=(command,), daemon=True)
        self.thread.start()

    def _run(self, command):
        try:
            self.reply = self.connection.call(*command)
        except (ConnectionError, OSError) as error:
            self.reply = error
        if self.order is not None:
            self.order.append(self.name)

    def result(self, timeout=30):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "no reply"
        return self.reply

    def close(self):
        self.connection.close()


def queue_waiters(server, count, *command, already_blocked=0):
    """`count` waiters sending `command`, each blocked before the next is sent (a known order)."""
    order = []
    waiters = []
    for i in range(count):
        waiters.append(Waiter(server, *command, order=order, name=i))
        wait_for_blocked(server, already_blocked + i + 1)
    return waiters, order


def set_commands(commands, name):
    return [command for command in commands if command[0].upper() == "SET" and command[1] == name]


def pxat(command):
    assert [word.upper() for word in command[3:4]] == ["PXAT"], command
    return int(command[4])


def test_five_waiters_on_a_one_per_second_bucket_are_granted_in_arrival_order_at_the_models_times(
        make_server):
    server = make_server()
    k = key()
    with ReplicationStream(server) as stream, server.client() as r:
        assert r.execute_command("SHIELD.absorb", k, 1, 1) == 0
        waiters, order = queue_waiters(server, 5, "SHIELD.absorb", k, 1, 1, "WAIT", 10000)
        assert [w.result() for w in waiters] == [0] * 5
        assert order == [0, 1, 2, 3, 4]
        sets = set_commands(stream.commands_until(key("marker")), k)
    # The exact model: the first take empties the bucket until P0; waiter i is granted when the
    # bucket holds its token again, P0 + (i - 1) s, and empties it until P0 + i s.
    assert len(sets) == 6, sets
    first = pxat(sets[0])
    assert [pxat(s) for s in sets[1:]] == [first + 1000 * i for i in range(1, 6)]
    assert all(s[2] == "0" for s in sets)
    stats = counters(server)
    assert stats["waited"] == 5 and stats["granted_after_wait"] == 5 and stats["wait_timeouts"] == 0
    assert stats["wait_time_ms"] > 0
    for w in waiters:
        w.close()


def test_gcra_waiters_are_granted_in_order_with_the_models_theoretical_arrival_times(make_server):
    server = make_server()
    k = key()
    with ReplicationStream(server) as stream, server.client() as r:
        assert r.execute_command("SHIELD.gcra", k, 2, 1, 2) == 0  # the burst of 2 is gone
        waiters, order = queue_waiters(server, 3, "SHIELD.gcra", k, 2, 1, "WAIT", 10000)
        assert [w.result() for w in waiters] == [0] * 3
        assert order == [0, 1, 2]
        sets = set_commands(stream.commands_until(key("marker")), k)
    # Each grant comes when the TAT is one tolerance ahead, and moves it by one interval (0.5 s).
    tats = [int(s[2]) for s in sets]
    assert tats[1:] == [tats[0] + 500_000_000 * i for i in range(1, 4)]
    assert [pxat(s) for s in sets] == [-(-tat // 1_000_000) for tat in tats]
    for w in waiters:
        w.close()


def test_a_waiter_that_would_need_longer_than_its_wait_gets_minus_one_at_once(shared_server, r):
    k = key()
    before = counters(shared_server)["waited"]
    assert r.execute_command("SHIELD.absorb", k, 1, 60) == 0
    assert r.execute_command("SHIELD.absorb", k, 1, 60, "WAIT", 1000) == -1
    reply = dict(zip(*[iter(r.execute_command("SHIELD.absorb", k, 1, 60, "WAIT", 1000, "VERBOSE"))] * 2))
    assert reply["allowed"] == 0 and 59_000 < reply["retry_after_ms"] <= 60_000
    # More tokens than the bucket holds: never.
    reply = dict(zip(*[iter(r.execute_command("SHIELD.absorb", k, 1, 60, 2, "WAIT", 1000, "VERBOSE"))] * 2))
    assert reply["allowed"] == 0 and reply["retry_after_ms"] == -1
    assert counters(shared_server)["waited"] == before


def test_wait_0_and_a_bucket_with_tokens_reply_at_once_as_a_plain_call(shared_server, r):
    k = key()
    assert r.execute_command("SHIELD.absorb", k, 5, 60, "WAIT", 5000) == 4
    assert r.execute_command("SHIELD.absorb", k, 5, 60, 4, "WAIT", 0) == 0
    assert r.execute_command("SHIELD.absorb", k, 5, 60, "WAIT", 0) == -1
    assert r.execute_command("SHIELD.gcra", k + "g", 5, 60, "WAIT", 5000) == 4


def test_a_call_without_wait_while_others_wait_is_refused_with_the_queue_in_its_retry_after(make_server):
    server = make_server()
    k = key()
    with server.client() as r:
        assert r.execute_command("SHIELD.absorb", k, 1, 1) == 0
        waiters, _ = queue_waiters(server, 2, "SHIELD.absorb", k, 1, 1, "WAIT", 10000)
        # The bucket refills a token before the second waiter is served: without the queue, a
        # plain call would take it from them.
        reply = dict(zip(*[iter(r.execute_command("SHIELD.absorb", k, 1, 1, "VERBOSE"))] * 2))
        assert reply["allowed"] == 0
        assert 2000 < reply["retry_after_ms"] <= 3000  # behind two waiters: the third token
        assert r.execute_command("SHIELD.absorb", k, 1, 1) == -1
        assert r.execute_command("SHIELD.absorb", k, 1, 1, "WAIT", 0) == -1
        assert [w.result() for w in waiters] == [0, 0]
    for w in waiters:
        w.close()


def test_a_disconnect_in_the_middle_of_the_queue_does_not_delay_the_others(make_server):
    server = make_server()
    k = key()
    with ReplicationStream(server) as stream, server.client() as r:
        assert r.execute_command("SHIELD.absorb", k, 1, 1) == 0
        waiters, order = queue_waiters(server, 3, "SHIELD.absorb", k, 1, 1, "WAIT", 10000)
        assert r.execute_command("CLIENT", "KILL", "ID", waiters[1].client_id) == 1
        wait_for_blocked(server, 2)
        assert waiters[0].result() == 0 and waiters[2].result() == 0
        assert isinstance(waiters[1].result(), (ConnectionError, OSError))
        sets = set_commands(stream.commands_until(key("marker")), k)
    first = pxat(sets[0])
    # The third waiter takes the second waiter's place: granted one token after the first.
    assert [pxat(s) for s in sets[1:]] == [first + 1000, first + 2000]
    assert [name for name in order if name != 1] == [0, 2]
    for w in waiters:
        w.close()


def test_client_unblock_timeout_refuses_the_waiter_and_error_gives_the_servers_error(make_server):
    server = make_server()
    k = key()
    with ReplicationStream(server) as stream, server.client() as r:
        assert r.execute_command("SHIELD.absorb", k, 1, 1) == 0
        waiters, order = queue_waiters(server, 3, "SHIELD.absorb", k, 1, 1, "WAIT", 10000)
        assert r.execute_command("CLIENT", "UNBLOCK", waiters[0].client_id, "TIMEOUT") == 1
        assert waiters[0].result() == -1
        assert r.execute_command("CLIENT", "UNBLOCK", waiters[1].client_id, "ERROR") == 1
        error = waiters[1].result()
        assert isinstance(error, RespError) and str(error).startswith("UNBLOCKED"), error
        assert waiters[2].result() == 0
        sets = set_commands(stream.commands_until(key("marker")), k)
    # Nothing was taken for the two unblocked calls: the third is granted the first token back.
    first = pxat(sets[0])
    assert [pxat(s) for s in sets[1:]] == [first + 1000]
    assert counters(server)["wait_timeouts"] == 1
    for w in waiters:
        w.close()


def test_multi_and_lua_cannot_wait_and_behave_as_wait_0(shared_server, r):
    k = key()
    assert r.execute_command("SHIELD.absorb", k, 1, 60) == 0
    pipe = r.pipeline(transaction=True)
    pipe.execute_command("SHIELD.absorb", k, 1, 60, "WAIT", 60000)
    pipe.execute_command("SHIELD.absorb", k + "b", 1, 60, "WAIT", 60000)
    assert pipe.execute() == [-1, 0]
    script = "return redis.call('SHIELD.absorb', KEYS[1], 1, 60, 'WAIT', 60000)"
    assert r.eval(script, 1, k) == -1
    assert r.eval(script, 1, k + "c") == 0
    assert blocked_clients(shared_server) == 0


def test_bad_wait_arguments_are_refused_and_change_nothing(shared_server, r):
    k = key()
    for bad in (["WAIT", -1], ["WAIT", "soon"], ["WAIT", 86_400_001], ["WAIT", "1.5"]):
        with pytest.raises(redis.ResponseError, match="WAIT must be an integer of milliseconds"):
            r.execute_command("SHIELD.absorb", k, 1, 60, *bad)
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SHIELD.absorb", k, 1, 60, "WAIT", 1, "WAIT", 2)
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("SHIELD.absorb", k, 1, 60, "WAIT")
    with pytest.raises(redis.ResponseError, match="WAIT cannot be combined with DRYRUN"):
        r.execute_command("SHIELD.gcra", k, 1, 60, "DRYRUN", "WAIT", 100)
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("SHIELD.inspect", k, 1, 60, "WAIT", 100)
    assert r.exists(k) == 0


def test_replicas_equal_the_primary_after_a_run_with_waiters(primary_and_replica):
    primary, replica = primary_and_replica
    k, g = key(), key()
    with primary.client() as r:
        assert r.execute_command("SHIELD.absorb", k, 4, 1, 4) == 0
        assert r.execute_command("SHIELD.gcra", g, 4, 1, 4) == 0
        bucket_waiters, _ = queue_waiters(primary, 3, "SHIELD.absorb", k, 4, 1, "WAIT", 10000)
        gcra_waiters, _ = queue_waiters(primary, 3, "SHIELD.gcra", g, 4, 1, 2, "WAIT", 10000,
                                        already_blocked=3)
        assert [w.result() for w in bucket_waiters + gcra_waiters] == [0] * 6
        r.execute_command("WAIT", 1, 5000)
        with replica.client() as rr:
            wait_until(lambda: rr.execute_command("DEBUG", "DIGEST") == r.execute_command("DEBUG", "DIGEST"),
                       what="the replica's digest to equal the primary's")
            assert rr.get(k) == r.get(k) and rr.pexpiretime(k) == r.pexpiretime(k)
    for w in bucket_waiters + gcra_waiters:
        w.close()


def test_flushall_while_waiting_decides_again_at_once(make_server):
    server = make_server()
    k = key()
    with server.client() as r:
        assert r.execute_command("SHIELD.absorb", k, 1, 60) == 0
        waiter = Waiter(server, "SHIELD.absorb", k, 1, 60, "WAIT", 120_000)
        wait_for_blocked(server, 1)
        r.flushall()
        # The key is gone, so the bucket is full: the waiter is granted now, not in a minute.
        assert waiter.result(timeout=20) == 0
        assert r.get(k) == "0"
    waiter.close()


def test_the_bound_per_key_refuses_waiters_beyond_it_at_once(make_server):
    server = make_server()
    k = key()
    with server.client() as r:
        r.config_set("shield.wait-max-per-key", 1)
        assert r.execute_command("SHIELD.absorb", k, 1, 1) == 0
        waiter = Waiter(server, "SHIELD.absorb", k, 1, 1, "WAIT", 10000)
        wait_for_blocked(server, 1)
        assert r.execute_command("SHIELD.absorb", k, 1, 1, "WAIT", 10000) == -1
        assert r.execute_command("SHIELD.absorb", key(), 1, 1, "WAIT", 10000) == 0
        assert waiter.result() == 0
    waiter.close()


def test_in_a_cluster_waiters_are_granted_in_arrival_order_as_on_a_single_server(make_server):
    server = make_server(cluster=True)
    with server.client() as r:
        r.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        wait_until(lambda: "cluster_state:ok" in r.execute_command("CLUSTER", "INFO"),
                   what="the one-node cluster to be up")
        k = "{w}" + key()
        assert r.execute_command("SHIELD.absorb", k, 1, 1) == 0
        waiters, order = queue_waiters(server, 3, "SHIELD.absorb", k, 1, 1, "WAIT", 10000)
        assert [w.result() for w in waiters] == [0, 0, 0]
        assert order == [0, 1, 2]
        assert counters(server)["granted_after_wait"] == 3
    for w in waiters:
        w.close()


@pytest.fixture
def two_node_cluster(make_server):
    """Node `a` serves every slot (and stays up when one has no node); node `b` has joined and
    serves none."""
    a = make_server(cluster=True, extra_args=["--cluster-require-full-coverage", "no"])
    b = make_server(cluster=True)
    with a.client() as ra, b.client() as rb:
        ra.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        rb.execute_command("CLUSTER", "MEET", "127.0.0.1", a.port)
        for client in (ra, rb):
            wait_until(lambda client=client: all(
                field in client.execute_command("CLUSTER", "INFO")
                for field in ("cluster_state:ok", "cluster_known_nodes:2")),
                what="the two-node cluster to be up")
    return a, b


def node_id(server):
    with server.client() as r:
        return r.execute_command("CLUSTER", "MYID")


def digest(server):
    with server.client() as r:
        return r.execute_command("DEBUG", "DIGEST")


def test_in_a_cluster_a_waiter_whose_slot_is_no_longer_served_here_gets_tryagain_and_nothing_is_written(
        two_node_cluster):
    a, _ = two_node_cluster
    k = "{moved}" + key()
    with a.client() as r:
        slot = r.execute_command("CLUSTER", "KEYSLOT", k)
        # Empty: the next token comes in 5 s; the key expires (full again) in 10 s, after the reply.
        assert r.execute_command("SHIELD.absorb", k, 2, 10, 2) == 0
        waiter = Waiter(a, "SHIELD.absorb", k, 2, 10, "WAIT", 60_000)
        wait_for_blocked(a, 1)
        # The slot leaves node a; its key stays here, as a slot taken away with keys leaves them.
        r.execute_command("CLUSTER", "DELSLOTS", slot)
        before = digest(a)
        reply = waiter.result()
        assert isinstance(reply, RespError) and str(reply).startswith("TRYAGAIN"), reply
        assert digest(a) == before
        assert counters(a)["granted_after_wait"] == 0
    waiter.close()


def test_in_a_cluster_a_waiter_whose_key_migrated_away_gets_tryagain_and_nothing_is_written_here(
        two_node_cluster):
    a, b = two_node_cluster
    k = "{migrated}" + key()
    with a.client() as ra, b.client() as rb:
        slot = ra.execute_command("CLUSTER", "KEYSLOT", k)
        assert ra.execute_command("SHIELD.absorb", k, 1, 5) == 0
        waiter = Waiter(a, "SHIELD.absorb", k, 1, 5, "WAIT", 60_000)
        wait_for_blocked(a, 1)
        # A classic reshard of the slot: b imports it, a migrates it, MIGRATE moves the key. Node
        # a still owns the slot, but a plain call on the key would now be sent to b (ASK).
        rb.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", node_id(a))
        ra.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", node_id(b))
        assert ra.execute_command("MIGRATE", "127.0.0.1", b.port, k, 0, 5000) == "OK"
        before = digest(a)
        reply = waiter.result()
        assert isinstance(reply, RespError) and str(reply).startswith("TRYAGAIN"), reply
        assert digest(a) == before
        assert ra.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        assert counters(a)["granted_after_wait"] == 0
    waiter.close()


def test_in_a_cluster_a_waiter_on_a_key_still_here_in_a_migrating_slot_is_granted_here(two_node_cluster):
    a, b = two_node_cluster
    k = "{staying}" + key()
    with a.client() as ra, b.client() as rb:
        slot = ra.execute_command("CLUSTER", "KEYSLOT", k)
        # Empty: the next token comes in 1 s, the key expires (full again) in 2 s.
        assert ra.execute_command("SHIELD.absorb", k, 2, 2, 2) == 0
        rb.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", node_id(a))
        ra.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", node_id(b))
        # The key has not moved: the server serves it here, and so does the grant.
        waiter = Waiter(a, "SHIELD.absorb", k, 2, 2, "WAIT", 10_000)
        assert waiter.result() == 0
        assert ra.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 1
    waiter.close()


def test_in_a_cluster_that_goes_down_a_waiter_gets_clusterdown_or_at_its_grant_tryagain_and_nothing_is_written(
        make_server, server_kind):
    # Redis and Redict unblock every blocked client with CLUSTERDOWN from their cron; Valkey leaves
    # a module's blocked client alone, and its grant then finds the key not served (TRYAGAIN).
    expected = "TRYAGAIN" if server_kind.startswith("valkey") else "CLUSTERDOWN"
    server = make_server(cluster=True)
    k = "{down}" + key()
    with server.client() as r:
        r.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        wait_until(lambda: "cluster_state:ok" in r.execute_command("CLUSTER", "INFO"),
                   what="the one-node cluster to be up")
        # Empty: the grant comes in 5 s, well after the server's cron has seen the cluster down;
        # the key expires (full again) in 10 s, after the reply.
        assert r.execute_command("SHIELD.absorb", k, 2, 10, 2) == 0
        waiter = Waiter(server, "SHIELD.absorb", k, 2, 10, "WAIT", 60_000)
        wait_for_blocked(server, 1)
        # A slot without a node takes the cluster down (cluster-require-full-coverage yes).
        r.execute_command("CLUSTER", "DELSLOTS", r.execute_command("CLUSTER", "KEYSLOT", "{other}"))
        before = digest(server)
        reply = waiter.result()
        assert isinstance(reply, RespError) and str(reply).startswith(expected), reply
        assert blocked_clients(server) == 0
        assert digest(server) == before
        assert counters(server)["granted_after_wait"] == 0
    waiter.close()


def test_a_key_overwritten_with_another_type_while_waiting_gives_the_waiter_wrongtype(make_server):
    server = make_server()
    k = key()
    with server.client() as r:
        assert r.execute_command("SHIELD.absorb", k, 1, 1) == 0
        waiter = Waiter(server, "SHIELD.absorb", k, 1, 1, "WAIT", 10000)
        wait_for_blocked(server, 1)
        r.delete(k)
        r.rpush(k, "x")
        reply = waiter.result()
        assert isinstance(reply, RespError) and str(reply).startswith("WRONGTYPE"), reply
        assert r.lrange(k, 0, -1) == ["x"]
    waiter.close()


def test_tokens_taken_by_another_command_move_the_grant_and_past_its_wait_refuse_it(make_server):
    server = make_server()
    k = key()
    with server.client() as r:
        assert r.execute_command("SHIELD.absorb", k, 1, 1) == 0
        waiter = Waiter(server, "SHIELD.absorb", k, 1, 1, "WAIT", 1500, "VERBOSE")
        wait_for_blocked(server, 1)
        # SHIELD.settle takes a token the bucket does not have: a second of debt, so the token the
        # waiter expected comes a second later than planned, past its 1.5 s.
        assert r.execute_command("SHIELD.settle", k, 1, 1, 0, 1) == -1
        reply = waiter.result()
        reply = dict(zip(reply[::2], reply[1::2]))
        assert reply["allowed"] == 0 and reply["retry_after_ms"] > 0, reply
        assert counters(server)["wait_timeouts"] == 1
    waiter.close()


def test_a_primary_turned_replica_unblocks_its_waiters_with_the_servers_error_and_writes_nothing(make_server):
    primary = make_server()
    other = make_server()
    k = key()
    with primary.client() as r:
        assert r.execute_command("SHIELD.absorb", k, 1, 60) == 0
        before = r.pexpiretime(k)
        waiter = Waiter(primary, "SHIELD.absorb", k, 1, 60, "WAIT", 100_000)
        wait_for_blocked(primary, 1)
        r.execute_command("REPLICAOF", "127.0.0.1", other.port)
        reply = waiter.result()
        assert isinstance(reply, (RespError, ConnectionError, OSError)), reply
        if isinstance(reply, RespError):
            assert str(reply).startswith("UNBLOCKED"), reply
        assert blocked_clients(primary) == 0
        assert counters(primary)["granted_after_wait"] == 0
        assert before > 0
    waiter.close()


def test_a_grant_due_while_the_server_is_over_maxmemory_gets_the_oom_error_and_writes_nothing(make_server):
    server = make_server()
    k = key()
    with server.client() as r:
        # Empty: the next token comes in 0.5 s, the key expires in 2 s (when full again).
        assert r.execute_command("SHIELD.absorb", k, 4, 2, 4) == 0
        stored, expire_at = r.get(k), r.pexpiretime(k)
        waiter = Waiter(server, "SHIELD.absorb", k, 4, 2, "WAIT", 10000)
        wait_for_blocked(server, 1)
        r.config_set("maxmemory-policy", "noeviction")
        r.config_set("maxmemory", 1)  # far below what the server holds: every write is refused
        try:
            reply = waiter.result()
        finally:
            r.config_set("maxmemory", 0)
        assert isinstance(reply, RespError) and str(reply).startswith("OOM"), reply
        assert (r.get(k), r.pexpiretime(k)) == (stored, expire_at)
        assert counters(server)["granted_after_wait"] == 0
    waiter.close()


class ClientPauseWrite:
    """CLIENT PAUSE WRITE, ended by CLIENT UNPAUSE."""

    def __init__(self, make_server):
        self.server = make_server()

    def start(self, r):
        r.execute_command("CLIENT", "PAUSE", 100_000, "WRITE")

    def end(self, r):
        r.execute_command("CLIENT", "UNPAUSE")


class FailoverToAStoppedReplica:
    """FAILOVER: the primary pauses writes until its replica has caught up. Its replica is stopped
    (SIGSTOP) after the primary wrote past it, so the pause lasts until FAILOVER ABORT."""

    def __init__(self, make_server):
        self.server = make_server()
        self.replica = make_server(extra_args=["--replicaof", "127.0.0.1", str(self.server.port)])
        wait_for_replica_link(self.replica)

    def start(self, r):
        os.kill(self.replica.process.pid, signal.SIGSTOP)
        r.set(key("behind"), 1)
        r.execute_command("FAILOVER", "TIMEOUT", 100_000)
        wait_until(lambda: r.info("replication")["master_failover_state"] == "waiting-for-sync",
                   what="the failover to wait for the replica")

    def end(self, r):
        try:
            r.execute_command("FAILOVER", "ABORT")
        finally:
            os.kill(self.replica.process.pid, signal.SIGCONT)


@pytest.mark.parametrize("pause", [
    pytest.param(ClientPauseWrite, id="under CLIENT PAUSE WRITE"),
    pytest.param(FailoverToAStoppedReplica, id="during a FAILOVER"),
])
def test_a_grant_due_while_writes_are_paused_waits_for_the_pause_and_one_whose_wait_ends_in_it_gets_minus_one(
        make_server, pause):
    # A write while writes are paused would reach the replication stream, which the servers assert
    # cannot happen (they abort): the grant waits for the pause to end.
    pause = pause(make_server)
    server = pause.server
    held, late = key(), key()
    with server.client() as r:
        # Both buckets empty: each one's next token comes in 2 s, and its key expires in 4 s.
        assert r.execute_command("SHIELD.absorb", held, 2, 4, 2) == 0
        assert r.execute_command("SHIELD.absorb", late, 2, 4, 2) == 0
        held_waiter = Waiter(server, "SHIELD.absorb", held, 2, 4, "WAIT", 100_000)
        wait_for_blocked(server, 1)
        late_waiter = Waiter(server, "SHIELD.absorb", late, 2, 4, "WAIT", 2500)
        wait_for_blocked(server, 2)
        stored, expire_at = r.get(held), r.pexpiretime(held)
        try:
            pause.start(r)
            # `late` arrived after `held` and waits 0.5 s past its grant time: when its -1 comes,
            # held's grant time has passed inside the pause (its key has not yet expired), and
            # held is still waiting, unwritten.
            assert late_waiter.result() == -1
            assert blocked_clients(server) == 1
            assert (r.get(held), r.pexpiretime(held)) == (stored, expire_at)
        finally:
            pause.end(r)
        assert held_waiter.result() == 0
        assert r.pexpiretime(held) > expire_at
        stats = counters(server)
        assert stats["granted_after_wait"] == 1 and stats["wait_timeouts"] == 1, stats
    held_waiter.close()
    late_waiter.close()


def test_a_waiter_in_resp3_is_granted_its_verbose_map_as_a_map(make_server):
    server = make_server()
    k = key()
    with server.client() as r:
        assert r.execute_command("SHIELD.absorb", k, 1, 1) == 0
        connection = RespClient(server.port, protocol=3, timeout=30)
        result = {}
        thread = threading.Thread(
            target=lambda: result.update(reply=connection.call("SHIELD.absorb", k, 1, 1, "WAIT", 10000, "VERBOSE")),
            daemon=True)
        thread.start()
        wait_for_blocked(server, 1)
        thread.join(30)
        reply = result["reply"]
        assert isinstance(reply, dict), reply
        assert reply["allowed"] == 1 and reply["remaining"] == 0 and reply["retry_after_ms"] == 0
        assert reply["reset_after_ms"] == 1000
        connection.close()
