"""COMMAND DOCS on every server of the matrix: each Shield command's arguments carry their own
names and display texts (servers from Redis 7.2 on, Valkey and Redict read a display_text field that
Redis 7.0's redismodule.h lacks; built against it, they showed `key` as "capacity" and `HOUR` as
"DAY"). The commands come from the server (COMMAND LIST FILTERBY MODULE), not from a list here."""

from shield_servers import RespClient

# The value a token argument names, as the docs write it (`BURST <n>`, `TIMEOUT <ms>`).
TOKEN_VALUES = {"BURST": "n", "TIMEOUT": "ms", "WAIT": "ms"}


def shield_commands(c):
    return sorted(c.call("COMMAND", "LIST", "FILTERBY", "MODULE", "SHIELD"))


def walk(arguments, path=()):
    """Every argument of a COMMAND DOCS reply (RESP3 maps), depth first, with its path."""
    for argument in arguments:
        yield path + (argument["name"],), argument
        yield from walk(argument.get("arguments", []), path + (argument["name"],))


def expected_display_texts(argument):
    """What an argument may show: servers from Redis 7.2 on show its name where Shield sets no
    display text (pure tokens, one-of and block groups); Redis 7.0 shows none at all."""
    if argument["type"] in ("pure-token", "oneof", "block"):
        return {None, argument["name"]}
    if "token" in argument:
        return {None, TOKEN_VALUES[argument["token"]]}
    return {None, argument["name"]}


def test_every_argument_of_every_command_shows_its_own_display_text(shared_server):
    with RespClient(shared_server.port, protocol=3) as c:
        commands = shield_commands(c)
        assert len(commands) >= 11 and "SHIELD.absorb" in commands, commands
        docs = c.call("COMMAND", "DOCS", *commands)
    checked = 0
    for name in commands:
        for path, argument in walk(docs[name].get("arguments", [])):
            assert argument.get("display_text") in expected_display_texts(argument), (name, path, argument)
            checked += 1
    assert checked > 30


def test_quota_lists_hour_day_and_month_under_its_period(shared_server):
    with RespClient(shared_server.port, protocol=3) as c:
        docs = c.call("COMMAND", "DOCS", "SHIELD.quota")["SHIELD.quota"]
    names = [argument["name"] for argument in docs["arguments"]]
    assert names == ["key", "limit", "period", "tokens", "VERBOSE", "DRYRUN"]
    period = docs["arguments"][2]
    assert [a["name"] for a in period["arguments"]] == ["HOUR", "DAY", "MONTH"]
    # Each shows its own name or nothing: never its neighbour's.
    assert all(a.get("display_text") in (None, a["name"]) for a in period["arguments"])
    assert docs["arguments"][0].get("display_text") in (None, "key")
