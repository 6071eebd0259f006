"""The sync and asyncio limiters on a real Redis Cluster (3 primaries): every policy of one key
lands in one slot (the key is a hash tag), so one SHIELD.limit call reaches one node."""

import asyncio

import redis.asyncio.cluster
from redis.cluster import ClusterNode, RedisCluster

from redis_shield import AsyncLimiter, Limiter, Policy
from sfparse import ratelimit

POLICIES = [Policy.bucket("per-second", 5, 1, burst=10), Policy.window("per-minute", 100, 60),
            Policy.quota("daily", 1000, "DAY")]


def test_the_sync_limiter_limits_keys_spread_over_every_primary(cluster):
    client = cluster.client()
    limiter = Limiter(client, POLICIES)
    keys = [f"user:{n}" for n in range(30)]
    for key in keys:
        decisions = [limiter.consume(key) for _ in range(11)]
        assert [d.allowed for d in decisions] == [True] * 10 + [False]
        state = ratelimit(decisions[0].headers()["RateLimit"])
        assert {name: params["r"] for name, params in state.items()} == {
            "per-second": 9, "per-minute": 99, "daily": 999}
    owners = {cluster.owner(cluster.keyslot(f"shield:{{{key}}}:daily")).port for key in keys}
    assert len(owners) == 3  # the keys reached every primary
    for key in keys[:3]:
        slots = {cluster.keyslot(f"shield:{{{key}}}:{p.name}") for p in POLICIES}
        assert len(slots) == 1
    client.close()


def test_a_call_refused_on_a_cluster_node_takes_nothing_from_the_other_policies(cluster):
    client = cluster.client()
    limiter = Limiter(client, [Policy.bucket("tokens", 10, 60), Policy.window("sliding", 1, 60),
                               Policy.quota("daily", 1000, "DAY")], deny_cache=None)
    assert limiter.consume("atomic").allowed
    refused = limiter.consume("atomic")
    assert refused.violated == ("sliding",) and [r.remaining for r in refused.results] == [9, 0, 999]
    assert client.get("shield:{atomic}:tokens") == "9" and client.get("shield:{atomic}:daily") == "1"
    client.close()


def test_the_asyncio_limiter_works_on_the_cluster_client(cluster):
    async def scenario():
        nodes = [redis.asyncio.cluster.ClusterNode("127.0.0.1", port) for port in cluster.startup_ports()]
        client = redis.asyncio.cluster.RedisCluster(startup_nodes=nodes, socket_timeout=2)
        limiter = AsyncLimiter(client, POLICIES)
        results = {}
        for n in range(12):
            key = f"async:{n}"
            results[key] = [(await limiter.consume(key)).allowed for _ in range(11)]
        bucket = AsyncLimiter(client, [Policy.bucket("tokens", 10, 60), Policy.window("sliding", 1, 60)],
                              deny_cache=None)
        await bucket.consume("async-atomic")
        refused = await bucket.consume("async-atomic")
        await client.close()
        return results, refused

    results, refused = asyncio.run(scenario())
    assert all(r == [True] * 10 + [False] for r in results.values())
    assert refused.results[0].remaining == 9
    sync = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in cluster.startup_ports()],
                        decode_responses=True)
    assert sync.get("shield:{async-atomic}:tokens") == "9"
    sync.close()


def test_from_url_with_cluster_builds_a_cluster_client(cluster):
    limiter = Limiter.from_url(f"redis://127.0.0.1:{cluster.startup_ports()[0]}", POLICIES, cluster=True)
    assert isinstance(limiter.client, RedisCluster)
    assert [limiter.consume(f"from-url:{n}").source for n in range(6)] == ["redis"] * 6
    limiter.close()


def test_a_killed_primary_fails_open_for_its_keys_and_closed_where_a_policy_says_so(make_cluster):
    own = make_cluster()
    url = f"redis://127.0.0.1:{own.startup_ports()[0]}"
    open_policies = [Policy.bucket("b", 10, 60)]
    closed_policies = [Policy.bucket("b", 10, 60, on_failure="closed")]
    victim = own.primaries()[1]
    lost = set(own.keys_on(victim, "lost", 3))
    kept = set(own.keys_on(own.primaries()[0], "kept", 3))
    sync_open = Limiter.from_url(url, open_policies, cluster=True, timeout=0.2)
    sync_closed = Limiter.from_url(url, closed_policies, cluster=True, timeout=0.2)
    for key in lost | kept:
        assert sync_open.consume(key).source == "redis"
    victim.kill()
    assert {sync_open.consume(key).source for key in lost} == {"fail-open"}
    assert {sync_open.consume(key).source for key in kept} == {"redis"}
    assert {sync_closed.consume(key).source for key in lost} == {"fail-closed"}

    async def scenario():
        limiter = AsyncLimiter.from_url(url, closed_policies, cluster=True, timeout=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        sources = [(await limiter.consume(key)).source for key in sorted(lost)]
        took = loop.time() - started
        kept_sources = {(await limiter.consume(key)).source for key in kept}
        await limiter.close()
        return sources, took, kept_sources

    sources, took, kept_sources = asyncio.run(scenario())
    assert set(sources) == {"fail-closed"} and kept_sources == {"redis"}
    assert took < 3 * 1.0  # one attempt each (from_url's cluster_error_retry_attempts=1)
    sync_open.close()
    sync_closed.close()
