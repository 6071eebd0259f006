"""A server that cannot propagate Shield's writes (SET or DEL renamed away) gets an error, never
a silent local write that replicas and the AOF would not see."""

import uuid

import pytest
import redis

REFUSED = ("Shield cannot propagate its write to replicas and the AOF (is SET or DEL renamed?); "
           "nothing was written")


@pytest.fixture
def renamed(make_server):
    """A server on which SET and DEL are renamed, as some hardening guides suggest."""
    return make_server(extra_args=["--rename-command", "SET", "SET_RENAMED",
                                   "--rename-command", "DEL", "DEL_RENAMED"])


@pytest.mark.parametrize("args", [
    ("SHIELD.absorb", "{k}a", 10, 60),
    ("SHIELD.absorb", "{k}a", 10, 60, 1, "VERBOSE"),
    ("SHIELD.absorb_multi", "{k}a", 10, 60, 1, "{k}b", 5, 60, 1),
], ids=["absorb", "absorb verbose", "absorb_multi"])
def test_an_allowed_call_fails_and_writes_nothing(renamed, args):
    r = renamed.client()
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command(*args)
    assert str(raised.value) == REFUSED
    assert r.dbsize() == 0
    assert int(r.info("shield")["SHIELD_propagation_errors"]) == 1
    assert "cannot propagate its writes as SET" in renamed.log_tail(50)


def test_refund_and_reset_fail_and_change_nothing(renamed):
    r = renamed.client()
    key = f"bucket:{uuid.uuid4().hex}"
    r.execute_command("SET_RENAMED", key, 3, "PX", 60_000)
    before = (r.dump(key), r.pexpiretime(key))
    for args in [("SHIELD.refund", key, 10, 60, 2), ("SHIELD.reset", key)]:
        with pytest.raises(redis.ResponseError) as raised:
            r.execute_command(*args)
        assert str(raised.value) == REFUSED
        assert (r.dump(key), r.pexpiretime(key)) == before


def test_denied_calls_and_inspect_still_answer(renamed):
    r = renamed.client()
    key = f"bucket:{uuid.uuid4().hex}"
    r.execute_command("SET_RENAMED", key, 0, "PX", 60_000)
    assert r.execute_command("SHIELD.absorb", key, 10, 60) == -1
    fields = r.execute_command("SHIELD.inspect", key, 10, 60)
    assert fields[:2] == ["allowed", 0]
