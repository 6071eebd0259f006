"""MODULE UNLOAD on a cluster node is refused, so the node keeps its cluster-bus receivers and
SHIELD.stats CLUSTER from any other node finds it alive (an unloaded Redis 7.0 node crashed with
SIGSEGV in moduleCallClusterReceivers on the next such message)."""

import pytest
import redis


def test_a_refused_unload_leaves_every_node_answering_stats_cluster(make_cluster):
    cluster = make_cluster(primaries=3, replicas=0, extra_args=["--enable-module-command", "yes"])
    target, caller = cluster.primaries()[0], cluster.primaries()[1]
    with target.client() as c:
        with pytest.raises(redis.ResponseError, match="(?i)unload"):
            c.execute_command("MODULE", "UNLOAD", "SHIELD")
    with caller.client(socket_timeout=10) as c:
        reply = c.execute_command("SHIELD.stats", "CLUSTER", "TIMEOUT", 5000)
    fields = dict(zip(reply[0::2], reply[1::2]))
    assert fields["nodes_total"] == fields["nodes_answered"] == 3
    assert target.process.poll() is None  # still running
    with target.client() as c:
        assert c.ping()
