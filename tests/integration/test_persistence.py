"""Buckets survive a crash (AOF, appendfsync always), a restart and DEBUG RELOAD."""

import uuid

from shield_servers import Server, bucket_states


def fill_buckets(r, count=40):
    """Buckets with different token counts; returns their states."""
    keys = [f"persist:{i}:{uuid.uuid4().hex[:6]}" for i in range(count)]
    for i, key in enumerate(keys):
        r.execute_command("SHIELD.absorb", key, 100, 3600, i + 1)
    return bucket_states(r, keys)


def test_kill_9_with_aof_always_keeps_every_bucket(make_server):
    server = make_server(extra_args=["--appendonly", "yes", "--appendfsync", "always"])
    state = fill_buckets(server.client())
    server.kill()
    restarted = Server(server.binary, port=server.port, workdir=server.dir, extra_args=server.extra_args).start()
    try:
        assert bucket_states(restarted.client(), state) == state
        # And they go on from there: bucket 0 held 99 tokens.
        first = next(iter(state))
        assert restarted.client().execute_command("SHIELD.absorb", first, 100, 3600, 1) == 98
    finally:
        restarted.kill()


def test_aof_replays_without_the_module(make_server):
    """The AOF holds plain SET ... PXAT, so even a server without Shield restores the buckets."""
    server = make_server(extra_args=["--appendonly", "yes", "--appendfsync", "always"])
    state = fill_buckets(server.client(), count=10)
    server.kill()
    plain = Server(server.binary, port=server.port, workdir=server.dir, extra_args=server.extra_args, module=None)
    plain.start()
    try:
        assert bucket_states(plain.client(), state) == state
    finally:
        plain.kill()


def test_debug_reload_keeps_buckets(make_server):
    server = make_server()
    r = server.client()
    state = fill_buckets(r, count=20)
    assert r.execute_command("DEBUG", "RELOAD")
    assert bucket_states(r, state) == state
