"""What Shield picked at load on each server of the matrix, read from its log and INFO modules.

Shield looks its optional APIs up at load (the command's cached time, ACL categories, a category of
its own) and tells Valkey 9 it handles atomic slot migration. Each server kind below names what the
module must pick there, so a server release that changes one of those APIs fails here, by name.
"""

from collections import namedtuple

import pytest

Expected = namedtuple("Expected", "server clock acl atomic_slot_migration")

CACHED_TIME = "the command's cached time (CachedMicroseconds)"
WALL_CLOCK = "the wall clock (Milliseconds; microseconds for GCRA)"
OWN_CATEGORY = "Shield's commands are in the ACL categories their flags imply, and in @shield"
NO_OWN_CATEGORY = ("Shield's commands are in the ACL categories their flags imply (this server has "
                   "no module categories)")  # Redis 7.2 and 7.3: none in the matrix
NO_CATEGORY = "Shield's commands are in no ACL category"

EXPECTED = {
    # Redis 7.0 has neither RedisModule_CachedMicroseconds nor SetCommandACLCategories (7.2+).
    "redis7": Expected("Redis 7.0.", WALL_CLOCK, NO_CATEGORY, False),
    # Redict 7.3 is Redis 7.2 with the 7.4 module API additions, AddACLCategory among them.
    "redict7": Expected("Redict 7.3.", CACHED_TIME, OWN_CATEGORY, False),
    "valkey8": Expected("Valkey 8.0.", CACHED_TIME, OWN_CATEGORY, False),
    "redis8.0": Expected("Redis 8.0.", CACHED_TIME, OWN_CATEGORY, False),
    # Redis 8.4+ has an atomic slot migration of its own (CLUSTER MIGRATION), with no module opt-in.
    "redis8.6": Expected("Redis 8.6.", CACHED_TIME, OWN_CATEGORY, False),
    "valkey8.1": Expected("Valkey 8.1.", CACHED_TIME, OWN_CATEGORY, False),
    # Valkey 9.0+ refuses CLUSTER MIGRATESLOTS unless every module declares it handles it.
    "valkey9.1": Expected("Valkey 9.1.", CACHED_TIME, OWN_CATEGORY, True),
}


@pytest.fixture(scope="module")
def expected(server_kind):
    assert server_kind in EXPECTED, f"say in EXPECTED what Shield must pick on {server_kind}"
    return EXPECTED[server_kind]


@pytest.fixture(scope="module")
def shield_log(shared_server):
    """Shield's own lines of the server log, from its load."""
    with open(shared_server.log_path) as log:
        return [line.rstrip("\n").split("<SHIELD> ", 1)[1] for line in log if "<SHIELD> " in line]


def only_line(lines, start):
    found = [line for line in lines if line.startswith(start)]
    assert len(found) == 1, (start, lines)
    return found[0]


def test_the_module_names_the_server_and_version_it_runs_on(shared_server, shield_log, expected):
    line = only_line(shield_log, "Shield runs on ")
    assert line.startswith(f"Shield runs on {expected.server}"), line
    # The server's own version, as INFO gives it (valkey_version: Valkey's redis_version is 7.2.4).
    name = expected.server.split()[0]
    own_version = shared_server.client().info("server")[f"{name.lower()}_version"]
    assert line.split()[4] == own_version, (line, own_version)


def test_the_module_reads_the_clock_this_server_offers(shield_log, expected):
    assert only_line(shield_log, "Shield reads time from ") == f"Shield reads time from {expected.clock}"


def test_the_module_puts_its_commands_in_the_acl_categories_this_server_offers(shield_log, expected):
    line = only_line(shield_log, "Shield's commands are in ")
    assert line.startswith(expected.acl), line
    if expected.acl == OWN_CATEGORY:
        assert line == OWN_CATEGORY


def test_the_module_declares_atomic_slot_migration_only_where_the_server_has_it(shared_server, shield_log,
                                                                                 expected):
    line = only_line(shield_log, "Shield runs on ")
    # INFO modules lists the options a module set, by name, on Redis and Valkey alike.
    shield = next(m for m in shared_server.client().info("modules")["modules"] if m["name"] == "SHIELD")
    if expected.atomic_slot_migration:
        assert line.endswith(" and handles atomic slot migration (CLUSTER MIGRATESLOTS)"), line
        assert "handle-atomic-slot-migration" in shield["options"]
    else:
        assert "atomic slot migration" not in line
        assert "atomic-slot-migration" not in shield["options"]
    assert "no-implicit-signal-modified" in shield["options"]
