"""ACL categories: where the server lets modules set them (Redis 7.2+, Valkey), each Shield command
is in the categories its flags imply and in @shield; Redis 7.0 cannot, and the log says so."""

import pytest

from shield_servers import RespClient


def categories_supported(server):
    log = open(server.log_path).read()
    if "are in the ACL categories their flags imply" in log:
        return True
    assert "are in no ACL category: this server cannot set them" in log
    return False


@pytest.fixture(scope="module")
def acl_server(shared_server):
    admin = shared_server.client()
    admin.execute_command("ACL", "SETUSER", "nowrite", "on", "nopass", "~*", "+@all", "-@write")
    admin.execute_command("ACL", "SETUSER", "fastonly", "on", "nopass", "~*", "-@all", "+@fast")
    admin.execute_command("ACL", "SETUSER", "noadmin", "on", "nopass", "~*", "+@all", "-@dangerous", "-@admin")
    # The rule docs/production.md gives for Redis 7.0, where module commands have no category.
    admin.execute_command("ACL", "SETUSER", "nostatsreset", "on", "nopass", "~*", "+@all",
                          "-shield.stats_reset")
    if categories_supported(shared_server):
        admin.execute_command("ACL", "SETUSER", "limiter", "on", "nopass", "~*", "-@all", "+@shield")
    return shared_server


def dryrun(server, user, *command):
    return server.client().execute_command("ACL", "DRYRUN", user, *command)


COMMANDS = [
    # (command, categories it must be in)
    (("SHIELD.absorb", "k", 10, 60), {"@write", "@fast", "@shield"}),
    (("SHIELD.inspect", "k", 10, 60), {"@read", "@fast", "@shield"}),
    (("SHIELD.absorb_multi", "k", 10, 60, 1), {"@write", "@slow", "@shield"}),
    (("SHIELD.refund", "k", 10, 60, 1), {"@write", "@fast", "@shield"}),
    (("SHIELD.reset", "k"), {"@write", "@slow", "@shield"}),
    (("SHIELD.stats",), {"@slow", "@shield"}),
    (("SHIELD.stats_reset",), {"@write", "@admin", "@dangerous", "@shield"}),
    (("SHIELD.window", "k", 10, 60), {"@write", "@fast", "@shield"}),
    (("SHIELD.quota", "k", 10, "DAY"), {"@write", "@fast", "@shield"}),
    (("CL.THROTTLE", "k", 10, 10, 60), {"@write", "@fast", "@shield"}),
    (("SHIELD.gcra", "k", 10, 60), {"@write", "@fast", "@shield"}),
    (("SHIELD.settle", "k", 10, 60, 1, 2), {"@write", "@fast", "@shield"}),
    (("SHIELD.limit", 1, "k", "p", "BUCKET", 10, 60), {"@write", "@slow", "@shield"}),
    (("SHIELD.limit_ro", 1, "k", "p", "BUCKET", 10, 60), {"@read", "@slow", "@shield"}),
]


def test_every_command_the_server_lists_for_the_module_has_its_categories_checked(acl_server):
    with RespClient(acl_server.port) as c:
        listed = c.call("COMMAND", "LIST", "FILTERBY", "MODULE", "SHIELD")
    names = {name.decode() if isinstance(name, bytes) else name for name in listed}
    assert {name.lower() for name in names} == {command[0].lower() for command, _ in COMMANDS}


@pytest.mark.parametrize("command,categories", COMMANDS, ids=[c[0][0] for c in COMMANDS])
def test_command_info_lists_the_categories_its_flags_imply(acl_server, command, categories):
    with RespClient(acl_server.port) as c:
        info = c.call("COMMAND", "INFO", command[0])[0]
    listed = {category.decode() if isinstance(category, bytes) else category for category in info[6]}
    if categories_supported(acl_server):
        assert categories <= listed
    else:
        assert listed == set()  # Redis 7.0: no category can be set (documented)


def test_a_user_without_write_rights_cannot_drain_a_bucket(acl_server):
    if categories_supported(acl_server):
        assert "no permissions" in dryrun(acl_server, "nowrite", "SHIELD.absorb", "k", 10, 60)
        assert dryrun(acl_server, "nowrite", "SHIELD.inspect", "k", 10, 60) == "OK"
    else:
        # Redis 7.0: the command is in no category, so -@write does not cover it (documented).
        assert dryrun(acl_server, "nowrite", "SHIELD.absorb", "k", 10, 60) == "OK"


def test_fast_and_shield_categories_grant_the_commands(acl_server):
    if not categories_supported(acl_server):
        assert "no permissions" in dryrun(acl_server, "fastonly", "SHIELD.absorb", "k", 10, 60)
        return
    assert dryrun(acl_server, "fastonly", "SHIELD.absorb", "k", 10, 60) == "OK"
    assert "no permissions" in dryrun(acl_server, "fastonly", "SHIELD.reset", "k")
    for command, _ in COMMANDS:
        assert dryrun(acl_server, "limiter", *command) == "OK"
    assert "no permissions" in dryrun(acl_server, "limiter", "GET", "k")


@pytest.mark.parametrize("user", ["nowrite", "noadmin"])
def test_a_read_only_or_non_admin_user_cannot_reset_the_counters(acl_server, user):
    if not categories_supported(acl_server):
        # Redis 7.0: module commands are in no category; -@write and -@admin do not cover
        # SHIELD.stats_reset there (documented: name it, as the nostatsreset user does).
        assert dryrun(acl_server, user, "SHIELD.stats_reset") == "OK"
        return
    assert "no permissions" in dryrun(acl_server, user, "SHIELD.stats_reset")
    assert dryrun(acl_server, user, "SHIELD.stats") == "OK"


def test_the_rule_minus_shield_stats_reset_refuses_the_reset_on_every_server(acl_server):
    assert "no permissions" in dryrun(acl_server, "nostatsreset", "SHIELD.stats_reset")
    assert dryrun(acl_server, "nostatsreset", "SHIELD.stats") == "OK"
