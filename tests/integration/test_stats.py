"""SHIELD.stats and INFO shield: the node's counters. Each test starts its own server, so the
counters start at zero."""

import uuid

import pytest
import redis
from shield_servers import RespClient

# The totals every command shares; each command's own count of calls follows them.
TOTALS = ["calls", "allowed", "denied", "errors", "tokens_absorbed", "tokens_refunded", "buckets_reset",
          "propagation_errors", "waited", "granted_after_wait", "wait_timeouts", "wait_time_ms"]
MAX = 2**63 - 1


def as_map(reply):
    """SHIELD.stats in RESP2: field/value pairs; values may come as integers or decimal strings."""
    assert isinstance(reply, list) and len(reply) % 2 == 0, reply
    return {field: int(value) for field, value in zip(reply[::2], reply[1::2])}


def command_counters(r):
    """Each Shield command's own counter, `<name after the dot>_calls`, for the commands the server
    lists as the module's (the command table is the only list of them)."""
    with RespClient(r.connection_pool.connection_kwargs["port"]) as c:  # redis-py 4 misreads COMMAND LIST
        listed = c.call("COMMAND", "LIST", "FILTERBY", "MODULE", "SHIELD")
    return [f"{name.split('.', 1)[1].lower()}_calls" for name in listed]


def fields(r):
    return TOTALS + command_counters(r)


def info_counters(r):
    info = r.info("shield")
    return {field: int(info[f"SHIELD_{field}"]) for field in fields(r)}


def test_stats_lists_the_totals_then_each_commands_calls_named_after_it(r):
    reply = r.execute_command("SHIELD.stats")
    assert reply[::2][:len(TOTALS)] == TOTALS
    assert sorted(reply[::2][len(TOTALS):]) == sorted(command_counters(r))
    assert list(r.info("shield")) == [f"SHIELD_{field}" for field in reply[::2]]


def key():
    return f"stats:{uuid.uuid4().hex}"


def run_known_sequence(r):
    """Every command once or more, with known outcomes. Returns the counters it must produce."""
    a, b, c = key(), key(), key()
    assert r.execute_command("SHIELD.absorb", a, 10, 60, 3) == 7  # allowed, 3 tokens
    assert r.execute_command("SHIELD.absorb", a, 10, 60, 8) == -1  # denied
    assert r.execute_command("SHIELD.absorb_multi", b, 10, 60, 2, c, 10, 60, 2) == [8, 8]  # allowed, 4 tokens
    assert r.execute_command("SHIELD.absorb_multi", b, 10, 60, 9, c, 10, 60, 1) == [-1, 8]  # denied
    assert r.execute_command("SHIELD.inspect", a, 10, 60)[1] == 1
    assert r.execute_command("SHIELD.inspect", a, 10, 60, 100)[1] == 0  # inspect decides nothing
    assert r.execute_command("SHIELD.refund", a, 10, 60, 2) == 9  # 2 tokens back
    assert r.execute_command("SHIELD.reset", a, b, key()) == 2
    with pytest.raises(redis.ResponseError):
        r.execute_command("SHIELD.absorb", a, 0, 60)  # an error from the module
    r.rpush(c + ":list", "x")
    with pytest.raises(redis.ResponseError):
        r.execute_command("SHIELD.inspect", c + ":list", 10, 60)  # WRONGTYPE
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("SHIELD.absorb", a, 10)  # refused by the server: not counted
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("SHIELD.reset")  # refused by the server: not counted
    return {**dict.fromkeys(fields(r), 0),
            "calls": 10, "allowed": 2, "denied": 2, "errors": 2, "tokens_absorbed": 7, "tokens_refunded": 2,
            "buckets_reset": 2, "absorb_calls": 3, "inspect_calls": 3, "absorb_multi_calls": 2,
            "refund_calls": 1, "reset_calls": 1}


def test_stats_of_a_fresh_server_are_zero(make_server):
    r = make_server().client()
    assert info_counters(r) == dict.fromkeys(fields(r), 0)


def test_info_shield_counts_a_known_sequence_of_calls(make_server):
    r = make_server().client()
    expected = run_known_sequence(r)
    assert info_counters(r) == expected


def test_stats_replies_the_counters_as_pairs_in_resp2(make_server):
    r = make_server().client()
    expected = run_known_sequence(r)
    reply = r.execute_command("SHIELD.stats")
    assert sorted(reply[::2]) == sorted(fields(r))
    stats = as_map(reply)
    # A SHIELD.stats call counts itself (docs/commands.md), in `calls` and `stats_calls`.
    assert stats == {**expected, "calls": expected["calls"] + 1, "stats_calls": 1}
    assert info_counters(r) == {**expected, "calls": expected["calls"] + 1, "stats_calls": 1}


def test_stats_replies_a_map_in_resp3(make_server):
    server = make_server()
    expected = run_known_sequence(server.client())
    with RespClient(server.port, protocol=3) as c:
        reply = c.call("SHIELD.stats")
        lower = c.call("shield.STATS")
    assert isinstance(reply, dict), reply
    assert sorted(reply) == sorted(fields(server.client()))
    assert {k: int(v) for k, v in reply.items()} == {**expected, "calls": expected["calls"] + 1,
                                                     "stats_calls": 1}
    assert int(lower["stats_calls"]) == 2


def test_stats_reset_zeroes_the_counters_and_then_counts_itself(make_server):
    r = make_server().client()
    run_known_sequence(r)
    assert r.execute_command("SHIELD.stats_reset") == "OK"
    # Nothing survives but the reset itself, so a dashboard sees that one happened.
    assert info_counters(r) == {**dict.fromkeys(fields(r), 0), "calls": 1, "stats_reset_calls": 1}
    assert r.execute_command("SHIELD.absorb", key(), 10, 60, 4) == 6
    assert info_counters(r)["tokens_absorbed"] == 4
    assert r.execute_command("shield.STATS_RESET") == "OK"  # case-insensitive
    assert info_counters(r)["tokens_absorbed"] == 0


@pytest.mark.parametrize("args", [("RESET",), ("reset",), ("RESET", "now")], ids=lambda a: " ".join(a))
def test_stats_reset_as_a_subcommand_is_an_error_that_names_stats_reset(make_server, args):
    r = make_server().client()
    r.execute_command("SHIELD.absorb", key(), 10, 60, 4)
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command("SHIELD.stats", *args)
    assert "SHIELD.stats_reset" in str(raised.value)
    assert info_counters(r)["tokens_absorbed"] == 4  # nothing was reset


def test_stats_reset_with_an_argument_is_an_arity_error(make_server):
    r = make_server().client()
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("SHIELD.stats_reset", "now")


def test_command_info_declares_stats_reset_a_write_admin_command(make_server):
    r = make_server().client()
    r.set_response_callback("COMMAND", lambda response, **options: response)
    name, arity, flags, first, last, step = r.execute_command("COMMAND", "INFO", "SHIELD.stats_reset")[0][:6]
    assert (name, arity, first, last, step) == ("SHIELD.stats_reset", 1, 0, 0, 0)
    assert {"write", "admin"} <= set(flags)


def test_tokens_absorbed_saturates_at_two_to_the_63_minus_one(make_server):
    server = make_server()
    r = server.client()
    for _ in range(3):
        assert r.execute_command("SHIELD.absorb", key(), MAX, 1, MAX) == 0
    assert int(r.info("shield")["SHIELD_tokens_absorbed"]) == 2**63 - 1
    assert as_map(r.execute_command("SHIELD.stats"))["tokens_absorbed"] == 2**63 - 1
    with RespClient(server.port, protocol=3) as c:
        assert int(c.call("SHIELD.stats")["tokens_absorbed"]) == 2**63 - 1
    assert r.execute_command("SHIELD.absorb", key(), 10, 60, 1) == 9  # stays saturated
    assert int(r.info("shield")["SHIELD_tokens_absorbed"]) == 2**63 - 1


def test_tokens_refunded_saturates_at_two_to_the_63_minus_one(make_server):
    r = make_server().client()
    century = 100 * 365 * 24 * 3600  # slow enough that the refill between the calls is negligible
    for _ in range(3):
        k = key()
        assert r.execute_command("SHIELD.absorb", k, MAX, century, MAX) == 0
        assert r.execute_command("SHIELD.refund", k, MAX, century, MAX) == MAX
    assert int(r.info("shield")["SHIELD_tokens_refunded"]) == 2**63 - 1


def test_multi_call_counts_once_and_sums_its_tokens(make_server):
    r = make_server().client()
    a, b, c = key(), key(), key()
    assert r.execute_command("SHIELD.absorb_multi", a, 10, 60, 1, b, 10, 60, 2, c, 10, 60, 3) == [9, 8, 7]
    counters = info_counters(r)
    assert (counters["allowed"], counters["denied"], counters["absorb_multi_calls"]) == (1, 0, 1)
    assert counters["tokens_absorbed"] == 6


def test_stats_cluster_outside_a_cluster_is_an_error(r):
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command("SHIELD.stats", "CLUSTER")
    assert str(raised.value) == "SHIELD.stats CLUSTER needs cluster mode"


@pytest.mark.parametrize("args", [("nope",), ("RESETS",), ("CLUSTERS",)], ids=lambda a: " ".join(a))
def test_stats_with_an_unknown_subcommand_is_a_syntax_error(r, args):
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command("SHIELD.stats", *args)
    assert str(raised.value) == "syntax error"


def test_stats_runs_inside_multi(r):
    with r.pipeline(transaction=True) as tx:
        tx.execute_command("SHIELD.stats")
        (reply,) = tx.execute()
    assert sorted(reply[::2]) == sorted(fields(r))


def test_stats_is_declared_readonly_without_keys(r):
    r.set_response_callback("COMMAND", lambda response, **options: response)
    name, arity, flags, first, last, step = r.execute_command("COMMAND", "INFO", "SHIELD.stats")[0][:6]
    assert "readonly" in flags and "write" not in flags
    assert (first, last, step) == (0, 0, 0)


def test_info_latencystats_lists_every_shield_command(make_server):
    r = make_server().client()
    assert r.config_get("latency-tracking")["latency-tracking"] == "yes"
    k = key()
    r.execute_command("SHIELD.absorb", k, 10, 60)
    r.execute_command("SHIELD.inspect", k, 10, 60)
    r.execute_command("SHIELD.absorb_multi", k, 10, 60, 1)
    r.execute_command("SHIELD.refund", k, 10, 60, 1)
    r.execute_command("SHIELD.reset", k)
    r.execute_command("SHIELD.stats")
    stats = r.info("latencystats")
    for command in ("SHIELD.absorb", "SHIELD.inspect", "SHIELD.absorb_multi", "SHIELD.refund", "SHIELD.reset",
                    "SHIELD.stats"):
        # The server names a module command as the module registered it.
        assert f"latency_percentiles_usec_{command}" in stats, sorted(stats)


def test_cl_throttle_counts_only_takes_as_decisions_and_give_backs_as_refunds(make_server):
    r = make_server().client()
    k = key()
    assert r.execute_command("CL.THROTTLE", k, 4, 1, 60, 3)[0] == 0  # takes 3
    assert r.execute_command("CL.THROTTLE", k, 4, 1, 60, 0)[0] == 0  # a peek: no decision
    assert r.execute_command("CL.THROTTLE", k, 4, 1, 60, -1)[0] == 0  # gives 1 back
    assert r.execute_command("CL.THROTTLE", k, 4, 1, 60, -10)[0] == 0  # gives back the other 2
    assert r.execute_command("CL.THROTTLE", k, 0, 1, 60, 2)[0] == 1  # denied
    counters = info_counters(r)
    assert {name: counters[name] for name in ("allowed", "denied", "tokens_absorbed", "tokens_refunded",
                                              "throttle_calls")} == {
        "allowed": 1, "denied": 1, "tokens_absorbed": 3, "tokens_refunded": 3, "throttle_calls": 5}


def test_a_command_getkeys_request_for_shield_limit_is_not_counted_as_a_call(r):
    before = as_map(r.execute_command("SHIELD.stats"))
    with RespClient(r.connection_pool.connection_kwargs["port"]) as c:
        keys = c.call("COMMAND", "GETKEYS", "SHIELD.limit", 2, "a", "b", "p", "BUCKET", 10, 60, "q", "QUOTA", 5,
                      "DAY")
    assert keys == ["a", "b"]
    after = as_map(r.execute_command("SHIELD.stats"))
    assert after["limit_calls"] == before["limit_calls"]
    assert after["calls"] == before["calls"] + 1  # the second SHIELD.stats
