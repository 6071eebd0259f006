"""Buckets keep their state while their slots move between primaries under load.

Client threads (shield_cluster.AbsorbLoad: unmodified redis-py RedisCluster clients, which follow
MOVED and ASK themselves) keep absorbing from buckets whose slots are being moved, once by hand
(SETSLOT IMPORTING / MIGRATING, MIGRATE ... KEYS in small batches, SETSLOT NODE) and once by
`redis-cli --cluster reshard`. Each bucket is absorbed by one thread only, so its replies form one
sequence.
"""

import math
import subprocess
import time
import uuid

import pytest
from redis.crc import key_slot
from shield_cluster import AbsorbLoad, cluster_redirects
from shield_servers import HOST, bucket_states, cli_binary, wait_until

CAPACITY = 1000  # busy buckets: never run dry during a run
SMALL = 20       # small buckets: run dry before the move, so a reset would show as new grants
PERIOD = 3600    # seconds: refill is 1000/3600 tokens a second, under 3 tokens in a run
BUSY_PER_SLOT, SMALL_PER_SLOT, IDLE_PER_SLOT = 12, 2, 5
THREADS = 3


def slots_with_tags(cluster, owner, count, lowest, highest):
    """`count` hash tags whose slots, in [lowest, highest), belong to `owner`; {tag: slot}."""
    found = {}
    i = 0
    while len(found) < count:
        tag = f"r{uuid.uuid4().hex[:6]}{i}"
        i += 1
        slot = key_slot(tag.encode())
        if lowest <= slot < highest and slot not in found.values():
            assert cluster.keyslot("{" + tag + "}") == slot
            if cluster.owner(slot) is owner:
                found[tag] = slot
    return found


def move_slot_by_hand(cluster, slot, source, target, batch=5):
    source_id, target_id = cluster.node_id(source), cluster.node_id(target)
    with source.client() as s, target.client() as t:
        t.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while True:
            keys = s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            s.execute_command("MIGRATE", HOST, target.port, "", 0, 5000, "KEYS", *keys)
        t.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        s.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    for node in cluster.primaries():
        if node not in (source, target):
            with node.client() as c:
                c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)


def reshard_with_redis_cli(cluster, count, source, target):
    done = subprocess.run(
        [cli_binary(), "--cluster", "reshard", f"{HOST}:{source.port}",
         "--cluster-from", cluster.node_id(source), "--cluster-to", cluster.node_id(target),
         "--cluster-slots", str(count), "--cluster-yes", "--cluster-pipeline", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:]


class Run:
    """What one reshard under load did: the record the tests below check."""


def run_reshard(cluster, how):
    source, target, bystander = cluster.primaries()
    if how == "by hand":
        # Four slots away from the lowest ones (redis-cli reshard, below, takes those).
        tags = slots_with_tags(cluster, source, 4, 1000, 16384)
    else:
        # redis-cli takes the source's lowest slots first: put the buckets in the first 100.
        source = cluster.owner(0)
        target = next(p for p in cluster.primaries() if p is not source)
        tags = slots_with_tags(cluster, source, 4, 0, 100)
    run = Run()
    run.how, run.source, run.target, run.slots = how, source, target, sorted(tags.values())
    buckets, idle = {}, []
    for tag in tags:
        buckets.update({f"{{{tag}}}:busy:{j}": CAPACITY for j in range(BUSY_PER_SLOT)})
        buckets.update({f"{{{tag}}}:small:{j}": SMALL for j in range(SMALL_PER_SLOT)})
        idle += [f"{{{tag}}}:idle:{j}" for j in range(IDLE_PER_SLOT)]
    run.buckets, run.idle = buckets, idle

    with source.client() as s:
        for key in idle:
            assert s.execute_command("SHIELD.absorb", key, 100, 600, 3) == 97
        run.idle_before = bucket_states(s, idle)

    redirects_before = cluster_redirects(cluster.nodes)
    load = AbsorbLoad(cluster, {k: (c, PERIOD) for k, c in buckets.items()}, threads=THREADS).start()
    try:
        # Start moving once every small bucket has run dry (replied -1).
        wait_until(lambda: all(any(r < 0 for r in load.replies(k))
                               for k in buckets if buckets[k] == SMALL) or load.errors,
                   timeout=60, what="the small buckets to run dry")
        run.move_started = time.monotonic()
        if how == "by hand":
            for slot in run.slots:
                move_slot_by_hand(cluster, slot, source, target)
        else:
            reshard_with_redis_cli(cluster, 100, source, target)
        run.move_ended = time.monotonic()
        # Ten calls per bucket sent after the move ended (so answered after it too).
        wait_until(lambda: all(load.calls_since(k, run.move_ended) >= 10 for k in buckets)
                   or load.errors, timeout=30, what="load to go on after the move")
    finally:
        load.stop()
    run.load = load
    run.redirects = tuple(a - b for a, b in zip(cluster_redirects(cluster.nodes), redirects_before))
    cluster.wait_healthy()
    return run


def refill_bound(run, capacity):
    """Whole tokens a bucket can refill over the run (its replies all fall inside it)."""
    duration_ms = (run.load.stopped - run.load.started) * 1000 + 1
    return math.floor(duration_ms * capacity / (PERIOD * 1000))


@pytest.fixture(scope="module")
def cluster(make_cluster):
    # cluster-node-timeout 5000 as in the deployment guide: no failover here.
    return make_cluster(primaries=3, replicas=1, node_timeout=5000)


@pytest.fixture(scope="module", params=["by hand", "redis-cli reshard"])
def run(request, cluster, measured):
    run = run_reshard(cluster, request.param)
    granted = {k: sum(1 for r in run.load.replies(k) if r >= 0) for k in run.buckets}
    calls = sum(len(v) for v in run.load.calls.values())
    measured[f"reshard {run.how}"] = {
        "slots moved": 100 if run.how != "by hand" else len(run.slots),
        "move seconds": round(run.move_ended - run.move_started, 3),
        "absorb calls": calls,
        "redirects (MOVED, ASK) sent by servers": run.redirects,
        "small buckets: most granted / bound": [
            max(granted[k] for k in run.buckets if run.buckets[k] == SMALL),
            SMALL + refill_bound(run, SMALL)],
        "busy buckets: most granted / bound": [
            max(granted[k] for k in run.buckets if run.buckets[k] == CAPACITY),
            CAPACITY + refill_bound(run, CAPACITY)],
    }
    return run


def test_clients_see_no_error_while_their_buckets_slots_move(run):
    assert run.load.errors == []
    assert all(len(calls) >= SMALL + 10 for calls in run.load.calls.values())


def test_clients_were_redirected_and_followed_the_redirects(run):
    moved, ask = run.redirects
    assert moved + ask > 0


def test_moved_slots_and_their_buckets_end_on_the_target_primary(cluster, run):
    keys_per_slot = BUSY_PER_SLOT + SMALL_PER_SLOT + IDLE_PER_SLOT
    for slot in run.slots:
        assert cluster.owner(slot) is run.target
        with run.target.client() as t, run.source.client() as s:
            assert t.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == keys_per_slot
            assert s.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0


def test_no_bucket_grants_more_than_capacity_plus_refill_over_the_run(run):
    for key, capacity in run.buckets.items():
        granted = sum(1 for reply in run.load.replies(key) if reply >= 0)
        assert granted <= capacity + refill_bound(run, capacity), key
    # The small buckets ran dry: every one of their tokens was handed out, once.
    for key, capacity in run.buckets.items():
        if capacity == SMALL:
            granted = sum(1 for reply in run.load.replies(key) if reply >= 0)
            assert SMALL <= granted <= SMALL + refill_bound(run, SMALL)


def test_no_bucket_starts_over_when_its_slot_moves(run):
    for key, capacity in run.buckets.items():
        replies = run.load.replies(key)
        assert replies[0] == capacity - 1, key
        previous = replies[0]
        allowance = refill_bound(run, capacity)
        for reply in replies[1:]:
            if reply >= 0:
                # Each call takes one token; only refill (under 3 tokens a run) may add any.
                assert reply <= previous - 1 + allowance, (key, replies)
                previous = reply


def test_each_moved_bucket_holds_its_last_reply_on_the_new_owner(run):
    with run.target.client() as t:
        for key in run.buckets:
            last = [reply for reply in run.load.replies(key) if reply >= 0][-1]
            assert t.get(key) == str(last), key
            assert t.pttl(key) > 0


def test_idle_buckets_keep_their_tokens_and_expiry_through_the_move(run, measured):
    drift = []
    with run.target.client() as t:
        for key, (tokens, expire_at) in run.idle_before.items():
            assert t.get(key) == tokens == "97"
            drift.append(abs(t.pexpiretime(key) - expire_at))
    measured[f"reshard {run.how}: largest PEXPIRETIME change of a moved bucket (ms)"] = max(drift)
    # MIGRATE carries the time left, so the deadline can shift by the transfer time only.
    assert max(drift) <= 100
