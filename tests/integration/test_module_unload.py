"""MODULE UNLOAD is refused on every server: Shield's cluster-bus receivers cannot be removed
(an unloaded cluster node crashed on the next SHIELD.stats CLUSTER message), so upgrades and
removals are restarts (docs/production.md)."""

import pytest
import redis


def test_module_unload_is_refused_and_shield_keeps_working(make_server):
    server = make_server(extra_args=["--enable-module-command", "yes"])
    r = server.client()
    assert r.execute_command("SHIELD.absorb", "unload:k", 10, 60) == 9
    with pytest.raises(redis.ResponseError, match="(?i)unload"):
        r.execute_command("MODULE", "UNLOAD", "SHIELD")
    assert "SHIELD" in [m["name"] for m in r.module_list()]
    assert r.execute_command("SHIELD.absorb", "unload:k", 10, 60) == 8
    log = open(server.log_path).read()
    assert "Shield refuses MODULE UNLOAD" in log and "restart the server" in log
