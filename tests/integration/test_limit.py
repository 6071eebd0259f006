"""SHIELD.limit and SHIELD.limit_ro on real servers: several policies of any algorithm in one
atomic call, the reply map in RESP2 and RESP3, the RateLimit headers, DRYRUN, REFUND, COST 0, bad
input that names the policy and writes nothing, key positions, and what reaches the replicas."""

import re
import uuid

import pytest
from shield_servers import ReplicationStream, RespClient, RespError

POLICY_FIELDS = ["name", "algorithm", "allowed", "remaining", "limit", "window", "reset_after_ms",
                 "retry_after_ms"]
LONG = 1_000_000  # seconds: no test crosses a window this long


def tag():
    """A hash tag so that a call's keys share a slot (as they must in a cluster)."""
    return "{" + uuid.uuid4().hex + "}"


def as_map(flat):
    assert isinstance(flat, list) and len(flat) % 2 == 0, flat
    return dict(zip(flat[::2], flat[1::2]))


def limit(r, *words):
    """SHIELD.limit's RESP2 reply as a dict, its policies as dicts in order (field order checked)."""
    reply = as_map(r.execute_command("SHIELD.limit", *words))
    assert list(reply)[:4] == ["allowed", "retry_after_ms", "violated", "policies"]
    for policy in reply["policies"]:
        assert policy[::2] == POLICY_FIELDS
    reply["policies"] = [as_map(policy) for policy in reply["policies"]]
    if "headers" in reply:
        reply["headers"] = as_map(reply["headers"])
    return reply


def parse_list(value):
    """A structured-field list of strings with integer parameters (RFC 8941), strictly: each item
    `"<name>";k=<int>;...`, items separated by `, `. Returns [(name, {k: int})]."""
    items = []
    for item in value.split(", "):
        m = re.fullmatch(r'"([A-Za-z0-9_-]{1,64})"((?:;[a-z]+=-?\d+)+)', item)
        assert m, f"not a structured-field item: {item!r} in {value!r}"
        params = dict((k, int(v)) for k, v in re.findall(r";([a-z]+)=(-?\d+)", m.group(2)))
        items.append((m.group(1), params))
    return items


def test_a_bucket_with_a_burst_and_a_daily_quota_are_decided_together(r):
    t = tag()
    ip, user = f"ip:{t}", f"user:{t}"
    reply = limit(r, 2, ip, user, "ip", "BUCKET", 5, 1, "BURST", 10, "day", "QUOTA", 1000, "DAY")
    assert reply["allowed"] == 1 and reply["retry_after_ms"] == 0 and reply["violated"] == []
    bucket, day = reply["policies"]
    assert (bucket["name"], bucket["algorithm"], bucket["remaining"], bucket["limit"], bucket["window"]) == \
        ("ip", "bucket", 9, 10, 2)
    assert (day["name"], day["algorithm"], day["remaining"], day["limit"], day["window"]) == \
        ("day", "quota", 999, 1000, 86400)
    assert r.get(ip) == "9" and r.get(user) == "1"


def test_when_one_policy_refuses_nothing_is_taken_from_any(r):
    t = tag()
    a, b = f"a:{t}", f"b:{t}"
    assert limit(r, 2, a, b, "small", "BUCKET", 1, LONG, "big", "WINDOW", 100, LONG)["allowed"] == 1
    reply = limit(r, 2, a, b, "small", "BUCKET", 1, LONG, "big", "WINDOW", 100, LONG)
    assert reply["allowed"] == 0 and reply["violated"] == ["small"]
    assert reply["retry_after_ms"] == reply["policies"][0]["retry_after_ms"] > 0
    big = reply["policies"][1]
    assert big["allowed"] == 1 and big["remaining"] == 99  # shown as it stays: nothing was taken
    assert r.get(b).endswith(":0:1")


def test_headers_are_structured_field_lists_with_remaining_never_above_the_quota(r):
    t = tag()
    for _ in range(3):
        reply = limit(r, 2, f"h1:{t}", f"h2:{t}", "second", "BUCKET", 5, 1, "BURST", 10, "minute", "GCRA",
                      60, 60, "HEADERS")
    policy = dict(parse_list(reply["headers"]["RateLimit-Policy"]))
    state = dict(parse_list(reply["headers"]["RateLimit"]))
    assert policy == {"second": {"q": 10, "w": 2}, "minute": {"q": 60, "w": 60}}
    for name in policy:
        assert 0 <= state[name]["r"] <= policy[name]["q"]
        assert state[name]["t"] >= 0
    assert "Retry-After" not in reply["headers"]


def test_a_refused_call_with_headers_says_when_to_retry_in_whole_seconds(r):
    t = tag()
    limit(r, 1, f"r:{t}", "once", "BUCKET", 1, 100)
    reply = limit(r, 1, f"r:{t}", "once", "BUCKET", 1, 100, "HEADERS")
    assert reply["allowed"] == 0
    assert reply["headers"]["Retry-After"] == -(-reply["retry_after_ms"] // 1000)


def test_the_reply_is_a_map_in_resp3(shared_server):
    with RespClient(shared_server.port, protocol=3) as c:
        reply = c.call("SHIELD.limit", 1, f"m:{tag()}", "p", "QUOTA", 10, "HOUR", "HEADERS")
    assert isinstance(reply, dict) and list(reply) == ["allowed", "retry_after_ms", "violated", "policies",
                                                       "headers"]
    assert isinstance(reply["policies"][0], dict) and list(reply["policies"][0]) == POLICY_FIELDS
    assert isinstance(reply["headers"], dict) and reply["allowed"] == 1


def test_dryrun_and_limit_ro_decide_and_write_nothing(r):
    key = f"d:{tag()}"
    for command, words in (("SHIELD.limit", ["DRYRUN"]), ("SHIELD.limit_ro", []), ("SHIELD.limit_ro", ["DRYRUN"])):
        reply = as_map(r.execute_command(command, 1, key, "p", "BUCKET", 3, 60, *words))
        assert reply["allowed"] == 1
        assert r.exists(key) == 0


def test_refund_gives_every_policys_cost_back_never_past_its_limit(r):
    t = tag()
    keys = [f"b:{t}", f"w:{t}", f"q:{t}"]
    policies = ["b", "BUCKET", 10, LONG, "COST", 4, "w", "WINDOW", 10, LONG, "COST", 4, "q", "QUOTA", 10,
                "MONTH", "COST", 4]
    limit(r, 3, *keys, *policies)
    reply = limit(r, 3, *keys, *policies, "REFUND")
    assert [p["remaining"] for p in reply["policies"]] == [10, 10, 10]
    reply = limit(r, 3, *keys, *policies, "REFUND")
    assert [p["remaining"] for p in reply["policies"]] == [10, 10, 10]


def test_a_policy_of_cost_zero_is_reported_and_never_written(r):
    key = f"z:{tag()}"
    reply = limit(r, 1, key, "seen", "WINDOW", 5, 60, "COST", 0)
    assert reply["allowed"] == 1 and reply["policies"][0]["remaining"] == 5
    assert r.exists(key) == 0


@pytest.mark.parametrize("words, error", [
    ([0, "k", "p", "BUCKET", 1, 1], "ERR numkeys must be a positive integer"),
    ([1, "k", "p", "BUCKET", 0, 1], "ERR policy 'p': capacity must be positive"),
    ([1, "k", "day", "QUOTA", 10, "WEEK"], "ERR policy 'day': period must be HOUR, DAY or MONTH"),
    ([1, "k", "p", "SLIDING", 10, 1], "ERR policy 'p': algorithm must be BUCKET, GCRA, WINDOW or QUOTA"),
    ([1, "k", "p", "WINDOW", 10, 1, "COST", -1], "ERR policy 'p': cost must be zero or positive"),
    ([1, "k", "p", "BUCKET", 10, 1, "FAST"], "ERR syntax error"),
    ([1, "k", "cost", "BUCKET", 10, 1], "ERR a policy name must be"),
    ([1, "k", "bad name", "BUCKET", 10, 1], "ERR a policy name must be"),
    ([2, "k{t}", "k{t}", "a", "BUCKET", 1, 1, "b", "BUCKET", 1, 1], "ERR key appears more than once in SHIELD.limit"),
    ([2, "k{t}", "j{t}", "a", "BUCKET", 1, 1, "a", "BUCKET", 1, 1], "ERR policy names must be unique in SHIELD.limit"),
    ([2, "k{t}", "j{t}", "a", "BUCKET", 1, 1], "ERR wrong number of arguments"),
], ids=["numkeys of zero", "a capacity of zero names its policy", "an unknown period names its policy",
        "an unknown algorithm names its policy", "a negative cost names its policy",
        "an unknown option is a syntax error", "a keyword as a name", "a name with a space",
        "the same key twice", "the same name twice", "fewer policies than keys"])
def test_bad_input_is_refused_with_an_error_that_names_the_policy_and_writes_nothing(shared_server, r, words,
                                                                                   error):
    before = r.dbsize()
    with RespClient(shared_server.port) as c:
        reply = c.call("SHIELD.limit", *words)
    assert isinstance(reply, RespError) and str(reply).startswith(error), reply
    assert r.dbsize() == before


def test_command_getkeys_finds_the_keys_by_numkeys(shared_server):
    with RespClient(shared_server.port) as c:
        assert c.call("COMMAND", "GETKEYS", "SHIELD.limit", 2, "a", "b", "x", "BUCKET", 1, 1, "y", "QUOTA", 1,
                      "DAY") == ["a", "b"]
        assert c.call("COMMAND", "GETKEYS", "SHIELD.limit_ro", 1, "a", "x", "BUCKET", 1, 1) == ["a"]


def test_an_allowed_call_reaches_replicas_as_its_writes_in_one_transaction(make_server):
    primary = make_server()
    r = primary.client()
    t = tag()
    a, b = f"a:{t}", f"b:{t}"
    with ReplicationStream(primary) as stream:
        limit(r, 2, a, b, "x", "BUCKET", 2, LONG, "y", "QUOTA", 5, "MONTH")
        limit(r, 2, a, b, "x", "BUCKET", 2, LONG, "y", "QUOTA", 5, "MONTH", "COST", 9)  # refused
        commands = stream.commands_until(f"marker:{uuid.uuid4().hex}")
    words = [[w.upper() if i == 0 else w for i, w in enumerate(cmd)] for cmd in commands]
    assert words == [
        ["MULTI"],
        ["SET", a, "1", "PXAT", str(r.pexpiretime(a))],
        ["SET", b, "1", "PXAT", str(r.pexpiretime(b))],
        ["EXEC"],
    ]


def test_stats_count_limit_calls_and_their_decisions(make_server):
    r = make_server().client()
    key = f"s:{tag()}"
    limit(r, 1, key, "p", "BUCKET", 1, LONG)
    limit(r, 1, key, "p", "BUCKET", 1, LONG)
    r.execute_command("SHIELD.limit_ro", 1, key, "p", "BUCKET", 1, LONG)
    stats = as_map(r.execute_command("SHIELD.stats"))
    assert (stats["limit_calls"], stats["limit_ro_calls"], stats["allowed"], stats["denied"]) == (2, 1, 1, 1)
