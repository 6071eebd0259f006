"""Atomic slot migration moves Shield's buckets intact, under load, on both servers that have it.

Valkey 9.0+: `CLUSTER MIGRATESLOTS SLOTSRANGE <first> <last> NODE <target-id>` sent to the slots'
owner, then `CLUSTER GETSLOTMIGRATIONS` until the job's state is `success`. Valkey refuses it
unless every loaded module declares that it handles atomic slot migration; Shield declares it
there (src/module/module.cpp). The source forks a snapshot of the slots in AOF form (SET and
PEXPIREAT: the absolute deadline), then streams what is written to them meanwhile (Shield's
SET ... PXAT), pauses writes for the hand-over and gives the slots to the target.

Redis 8.4+: `CLUSTER MIGRATION IMPORT <first> <last>` sent to the target, which answers a task id,
then `CLUSTER MIGRATION STATUS ID <id>` until the task's state is `completed`. Redis asks nothing
of modules (a module with state outside its keys may follow the move through server events; Shield
has none). The source's snapshot sends string keys in AOF form too (SET and PEXPIREAT), streams
the writes to the moved slots from its replication stream, pauses writes for the hand-over, and the
target takes the slots; the source drops its copies afterwards (in the background).

Either way clients see MOVED once per slot, no error. Client threads (unmodified redis-py
RedisCluster clients) keep absorbing from a few dozen buckets in the moved slots while they move.
Runs where the cluster server has atomic slot migration (SHIELD_CLUSTER_SERVER=valkey9.1 or
redis8.6) and skips, saying why, where it has none (Redis 7.0, the default); in CI a missing server
binary fails it.
"""

import os
import re
import subprocess
import time

import pytest
from redis.crc import key_slot
from shield_cluster import AbsorbLoad, cluster_redirects
from shield_servers import bucket_states, find_server, wait_until

KIND = os.environ.get("SHIELD_CLUSTER_SERVER", "redis7")


def server_release(kind):
    """('redis' or 'valkey' or ..., (major, minor)) of the kind's binary: its --version when it is
    installed, the kind's name (redis8.6, valkey9.1, redis7) otherwise."""
    binary = find_server(kind)
    if binary:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
        found = re.match(r"(\w+) server v=(\d+)\.(\d+)", out)
        if found:
            return found[1].lower(), (int(found[2]), int(found[3]))
    found = re.match(r"([a-z]+)(\d+)(?:\.(\d+))?", kind)
    return found[1], (int(found[2]), int(found[3] or 0))


SERVER_NAME, SERVER_VERSION = server_release(KIND)
if SERVER_NAME == "valkey" and SERVER_VERSION >= (9, 0):
    MECHANISM = "valkey"   # CLUSTER MIGRATESLOTS, sent to the source
elif SERVER_NAME == "redis" and SERVER_VERSION >= (8, 4):
    MECHANISM = "redis"    # CLUSTER MIGRATION IMPORT, sent to the target
else:
    MECHANISM = None
pytestmark = pytest.mark.skipif(
    MECHANISM is None,
    reason=f"this run's cluster server is {KIND} ({SERVER_NAME} "
           f"{'.'.join(map(str, SERVER_VERSION))}), which has no atomic slot migration: it came "
           "with Valkey 9.0 (CLUSTER MIGRATESLOTS) and Redis 8.4 (CLUSTER MIGRATION)")

SLOTS_MOVED = 8
BUSY, BUSY_PERIOD = 1000, 36_000  # 1000 per 10 hours: under 1 token of refill in a run
BUSY_PER_SLOT = 3
DRY, DRY_PERIOD_MS = 50, 1000    # 50 a second, one token every 20 ms: emptied before the load
IDLE_PER_SLOT = 2                # absorbed once before the move, then left alone
THREADS = 3
# Microseconds the source's snapshot waits after each key (rdb-key-save-delay, a test knob of both
# servers): about 0.15 s for the 48 keys, so the load's writes land while the snapshot is being
# sent and must be streamed after it, not only before the fork or after the hand-over.
SNAPSHOT_KEY_DELAY_US = 3000


class SlotMigration:
    """One server's way to move slots low..high from source to target atomically."""

    def __init__(self, cluster, source, target, low, high):
        self.cluster, self.source, self.target, self.slots = cluster, source, target, (low, high)

    def extra(self, job):
        return {}


class ValkeyMigration(SlotMigration):
    """CLUSTER MIGRATESLOTS on the source, followed with CLUSTER GETSLOTMIGRATIONS there."""
    name = "Valkey 9"
    measured_as = "atomic slot migration (Valkey 9)"
    move_entry = "move seconds (MIGRATESLOTS to success)"
    succeeded = "success"

    def start(self):
        target_id = self.cluster.node_id(self.target)
        with self.source.client() as s:
            assert s.execute_command("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", *self.slots,
                                     "NODE", target_id) == "OK"

    def job(self):
        """The source's export job, as a dict."""
        with self.source.client() as s:
            jobs = s.execute_command("CLUSTER", "GETSLOTMIGRATIONS")
        jobs = [dict(zip(j[::2], j[1::2])) if isinstance(j, list) else j for j in jobs]
        exports = [j for j in jobs if j["operation"] == "EXPORT"]
        return exports[0] if exports else None

    def finished(self):
        job = self.job()
        return job if job and job["state"] in ("success", "failed", "cancelled") else None


class RedisMigration(SlotMigration):
    """CLUSTER MIGRATION IMPORT on the target, followed with CLUSTER MIGRATION STATUS ID there.
    A failed import is retried by the target itself, so only `completed` and `canceled` end it."""
    name = "Redis 8.4+"
    measured_as = "atomic slot migration (Redis 8.4+)"
    move_entry = "move seconds (MIGRATION IMPORT to completed)"
    succeeded = "completed"

    def __init__(self, cluster, source, target, low, high):
        super().__init__(cluster, source, target, low, high)
        self.task_id = None

    def start(self):
        with self.target.client() as t:
            self.task_id = t.execute_command("CLUSTER", "MIGRATION", "IMPORT", *self.slots)
        assert isinstance(self.task_id, str) and self.task_id, self.task_id

    def task(self, node):
        with node.client() as c:
            tasks = c.execute_command("CLUSTER", "MIGRATION", "STATUS", "ID", self.task_id)
        return {k: v for k, v in zip(tasks[0][::2], tasks[0][1::2])} if tasks else None

    def job(self):
        return self.task(self.target)

    def finished(self):
        job = self.job()
        return job if job and job["state"] in ("completed", "canceled") else None

    def extra(self, job):
        migrate = self.task(self.source) or {}
        # What the source wrote to the slots while its snapshot was sent, as the target logs it.
        streamed = re.findall(r"stream accumulated buffer for the import task \((\d+) bytes\)",
                              open(self.target.log_path).read())
        return {"write pause on the source (write_pause_ms)": migrate.get("write_pause_ms"),
                "import retries": job.get("retries"),
                "bytes streamed after the snapshot (target's log)": int(streamed[-1]) if streamed else None}


MIGRATIONS = {"valkey": ValkeyMigration, "redis": RedisMigration}


def redirects(nodes):
    """MOVED, ASK and TRYAGAIN replies the nodes have sent so far (INFO errorstats)."""
    return cluster_redirects(nodes, ("MOVED", "ASK", "TRYAGAIN"))


def tags_in_slots(low, high):
    """One hash tag for each slot in [low, high]: {slot: tag}."""
    found, i = {}, 0
    while len(found) < high - low + 1:
        tag = f"asm{i}"
        i += 1
        slot = key_slot(tag.encode())
        if low <= slot <= high:
            found.setdefault(slot, tag)
    return found


def whole_tokens(ms, capacity, period_ms):
    return int(ms * capacity // period_ms) if ms > 0 else 0


class Run:
    """What one migration under load did: the record the tests below check."""


@pytest.fixture(scope="module")
def run(make_cluster, measured):
    cluster = make_cluster(primaries=3, replicas=1, node_timeout=5000)
    source, target, _ = cluster.primaries()
    source_slots = sorted(next(r for r in cluster.table() if r["port"] == source.port)["slots"])
    low = source_slots[len(source_slots) // 2]
    high = low + SLOTS_MOVED - 1
    assert all(cluster.owner(s) is source for s in (low, high))
    tags = tags_in_slots(low, high)
    migration = MIGRATIONS[MECHANISM](cluster, source, target, low, high)

    run = Run()
    run.cluster, run.source, run.target, run.slots = cluster, source, target, (low, high)
    run.migration = migration
    buckets, idle = {}, []
    for slot, tag in tags.items():
        buckets.update({f"{{{tag}}}:busy:{j}": (BUSY, BUSY_PERIOD) for j in range(BUSY_PER_SLOT)})
        buckets[f"{{{tag}}}:dry"] = (DRY, DRY_PERIOD_MS // 1000)
        idle += [f"{{{tag}}}:idle:{j}" for j in range(IDLE_PER_SLOT)]
    run.buckets, run.idle = buckets, idle
    run.keys_per_slot = BUSY_PER_SLOT + 1 + IDLE_PER_SLOT
    dry = [k for k in buckets if buckets[k][0] == DRY]
    run.emptied = {}  # dry bucket -> (sent, answered) of the call that took all its tokens
    with source.client() as s:
        for key in idle:
            assert s.execute_command("SHIELD.absorb", key, 100, 600, 3) == 97
        run.idle_before = bucket_states(s, idle)
        for key in dry:
            sent = time.monotonic()
            assert s.execute_command("SHIELD.absorb", key, DRY, DRY_PERIOD_MS // 1000, DRY) == 0
            run.emptied[key] = (sent, time.monotonic())

    redirects_before = redirects(cluster.nodes)
    load = AbsorbLoad(cluster, buckets, threads=THREADS).start()
    try:
        wait_until(lambda: all(any(r < 0 for r in load.replies(k)) for k in dry) or load.errors,
                   timeout=60, what="the load to find every dry bucket dry")
        with source.client() as s:
            s.config_set("rdb-key-save-delay", SNAPSHOT_KEY_DELAY_US)
        run.move_started = time.monotonic()
        migration.start()
        try:
            run.job = wait_until(migration.finished, timeout=120, interval=0.01,
                                 what="the slot migration to finish")
        except TimeoutError as error:
            raise AssertionError(f"{error}; last state: {migration.job()}") from None
        run.move_ended = time.monotonic()
        with source.client() as s:
            s.config_set("rdb-key-save-delay", 0)
        wait_until(lambda: all(cluster.owner(s) is target for s in range(low, high + 1)),
                   timeout=30, what="every node to see the target own the slots")
        wait_until(lambda: all(load.calls_since(k, run.move_ended) >= 10 for k in buckets)
                   or load.errors, timeout=30, what="load to go on after the move")
    finally:
        load.stop()
    run.load = load
    run.redirects = tuple(a - b for a, b in zip(redirects(cluster.nodes), redirects_before))
    cluster.wait_healthy()

    dry_granted = {k: sum(1 for r in load.replies(k) if r >= 0) for k in dry}
    during = sum(1 for k in dry for sent, answered, r in load.calls[k]
                 if r >= 0 and sent >= run.move_started and answered <= run.move_ended)
    measured[migration.measured_as] = {
        "slots moved": SLOTS_MOVED,
        "buckets under load / idle": [len(buckets), len(idle)],
        migration.move_entry: round(run.move_ended - run.move_started, 3),
        **migration.extra(run.job),
        "absorb calls": sum(len(v) for v in load.calls.values()),
        "client errors": len(load.errors),
        "redirects sent by servers (MOVED, ASK, TRYAGAIN)": run.redirects,
        "dry buckets: tokens granted while the slots moved": during,
        "dry buckets: tokens granted over the run, all refill (fewest, most)": [
            min(dry_granted.values()), max(dry_granted.values())],
        "slowest absorb call, redirects included (ms)": round(
            max(answered - sent for calls in load.calls.values() for sent, answered, _ in calls) * 1000, 1),
    }
    run.granted_while_moving = during
    return run


def test_the_slot_migration_succeeds_with_shield_loaded(run):
    assert run.job["state"] == run.migration.succeeded, run.job


def test_clients_see_no_error_but_redirects_while_their_buckets_slots_move(run):
    assert run.load.errors == []
    moved, ask, tryagain = run.redirects
    assert moved > 0  # each client learned the new owner
    assert all(len(calls) >= 20 for calls in run.load.calls.values())


def test_every_key_of_the_moved_slots_is_on_the_target_and_none_left_on_the_source(run):
    low, high = run.slots
    with run.target.client() as t:
        for slot in range(low, high + 1):
            assert t.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == run.keys_per_slot
    # Redis drops the source's copies after the hand-over, in the background.
    with run.source.client() as s:
        wait_until(lambda: all(s.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
                               for slot in range(low, high + 1)),
                   timeout=30, what="the source to hold no key of the moved slots")


def test_idle_buckets_keep_their_tokens_and_expiry_to_the_millisecond(run, measured):
    drift = []
    with run.target.client() as t:
        for key, (tokens, expire_at) in run.idle_before.items():
            assert t.get(key) == tokens == "97", key
            drift.append(abs(t.pexpiretime(key) - expire_at))
    measured["atomic slot migration: largest PEXPIRETIME change of an idle bucket (ms)"] = max(drift)
    # The snapshot carries the absolute deadline (PEXPIREAT), not the time left.
    assert max(drift) <= 2


def test_the_targets_replica_holds_the_moved_buckets_too(run):
    replica = run.cluster.replica_of(run.target)
    with run.target.client() as t:
        t.execute_command("WAIT", 1, 5000)
        expected = bucket_states(t, run.idle + sorted(run.buckets))
    with replica.client(single_connection_client=True) as r:
        r.execute_command("READONLY")  # a replica redirects reads of a cluster client otherwise
        assert bucket_states(r, run.idle + sorted(run.buckets)) == expected


def test_busy_buckets_go_down_by_one_per_call_across_the_move(run):
    for key, (capacity, _) in run.buckets.items():
        if capacity != BUSY:
            continue
        replies = run.load.replies(key)
        # Under 1 token of refill in a run: exactly one less per call, never a step up.
        assert replies == list(range(BUSY - 1, BUSY - 1 - len(replies), -1)), key


def test_each_moved_bucket_holds_its_last_reply_on_the_target(run):
    with run.target.client() as t:
        for key in run.buckets:
            last = [reply for reply in run.load.replies(key) if reply >= 0][-1]
            assert t.get(key) == str(last), key
            assert t.pttl(key) > 0, key


def test_a_dry_bucket_is_granted_exactly_its_refill_through_the_move(run):
    """A bucket emptied before the load and absorbed non-stop since grants exactly the whole tokens
    refilled from its emptying to the last call (20 ms a token: no rounding), less what it still
    holds then, whichever node served which call. The server reads each call's time between its
    sent and answered times, in whole milliseconds (up to 1 ms early), so the refill is known to
    within those round trips and a millisecond at each end; a fresh bucket would add 50."""
    assert run.granted_while_moving > 0
    for key, (sent, answered) in run.emptied.items():
        calls = run.load.calls[key]
        granted = sum(1 for _, _, reply in calls if reply >= 0)
        left = max(calls[-1][2], 0)  # -1: no whole token left
        last_sent, last_answered, _ = calls[-1]
        fewest = whole_tokens((last_sent - answered) * 1000 - 1, DRY, DRY_PERIOD_MS)
        most = whole_tokens((last_answered - sent) * 1000 + 1, DRY, DRY_PERIOD_MS)
        assert fewest <= granted + left <= most, (key, granted, left, fewest, most)
