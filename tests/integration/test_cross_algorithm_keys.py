"""One key, two algorithms: each command refuses a value that cannot be its own, with an error, and
changes nothing (docs/commands.md, "One algorithm per key"). A GCRA key (CL.THROTTLE, SHIELD.gcra)
holds a nanosecond time that lives until it; a bucket or quota key holds a count; a window key holds
its own three-field state. Bucket and quota values cannot be told apart (both a count with an expiry)."""

import uuid

import pytest
import redis

FOREIGN_TAT = ("the key holds a GCRA time (CL.THROTTLE or SHIELD.gcra), not a count: "
               "use one algorithm per key")
CELL_INVALID = "Cell error: Store error: invalid theoretical arrival time in Redis"
GCRA_INVALID = "invalid theoretical arrival time in Redis"
WINDOW_INVALID = "invalid sliding window state in Redis"
BUCKET_INVALID = "invalid token count in Redis"

WRITERS = {
    "CL.THROTTLE": ("CL.THROTTLE", 0, 1, 3600),
    "SHIELD.gcra": ("SHIELD.gcra", 1, 3600),
    "SHIELD.absorb": ("SHIELD.absorb", 5, 3600),
    "SHIELD.quota": ("SHIELD.quota", 5, "DAY"),
    "SHIELD.window": ("SHIELD.window", 5, 3600),
}

READERS = {
    "SHIELD.absorb": ("SHIELD.absorb", 5, 3600),
    "SHIELD.inspect": ("SHIELD.inspect", 5, 3600),
    "SHIELD.refund": ("SHIELD.refund", 5, 3600, 1),
    "SHIELD.quota": ("SHIELD.quota", 5, "DAY"),
    "SHIELD.window": ("SHIELD.window", 5, 3600),
    "CL.THROTTLE": ("CL.THROTTLE", 0, 1, 3600),
    "SHIELD.gcra": ("SHIELD.gcra", 1, 3600),
}

# (writer, reader) -> the error the reader answers. Pairs of one family (a GCRA writer and a GCRA
# reader; a bucket and a quota) share a key by design and are not listed.
REFUSED = {}
for writer in ("CL.THROTTLE", "SHIELD.gcra"):
    for reader in ("SHIELD.absorb", "SHIELD.inspect", "SHIELD.refund", "SHIELD.quota"):
        REFUSED[writer, reader] = FOREIGN_TAT
    REFUSED[writer, "SHIELD.window"] = WINDOW_INVALID
for writer in ("SHIELD.absorb", "SHIELD.quota"):
    REFUSED[writer, "CL.THROTTLE"] = CELL_INVALID
    REFUSED[writer, "SHIELD.gcra"] = GCRA_INVALID
    REFUSED[writer, "SHIELD.window"] = WINDOW_INVALID
for reader, error in [("SHIELD.absorb", BUCKET_INVALID), ("SHIELD.inspect", BUCKET_INVALID),
                      ("SHIELD.refund", BUCKET_INVALID), ("SHIELD.quota", BUCKET_INVALID),
                      ("CL.THROTTLE", CELL_INVALID), ("SHIELD.gcra", GCRA_INVALID)]:
    REFUSED["SHIELD.window", reader] = error


def snapshot(raw, key):
    return raw.dump(key), raw.pexpiretime(key)


@pytest.mark.parametrize("writer,reader", list(REFUSED), ids=[f"{w} then {r}" for w, r in REFUSED])
def test_a_key_written_by_one_algorithm_is_refused_by_another_and_stays(shared_server, writer, reader):
    raw = shared_server.client(decode_responses=False)
    r = shared_server.client()
    key = f"mix:{uuid.uuid4().hex}"
    name, *args = WRITERS[writer]
    r.execute_command(name, key, *args)
    before = snapshot(raw, key)
    name, *args = READERS[reader]
    with pytest.raises(redis.ResponseError) as raised:
        r.execute_command(name, key, *args)
    assert str(raised.value) == REFUSED[writer, reader]
    assert snapshot(raw, key) == before


def test_absorb_multi_refuses_a_gcra_key_among_its_buckets_and_writes_nothing(r):
    tat_key, bucket_key = f"mix:{{t}}:{uuid.uuid4().hex}", f"mix:{{t}}:{uuid.uuid4().hex}"
    r.execute_command("CL.THROTTLE", tat_key, 0, 1, 3600)
    with pytest.raises(redis.ResponseError, match="GCRA time"):
        r.execute_command("SHIELD.absorb_multi", bucket_key, 5, 3600, 1, tat_key, 5, 3600, 1)
    assert r.exists(bucket_key) == 0


def test_alternating_cl_throttle_and_absorb_on_one_key_grants_one_call_an_hour(r):
    # The attack of the issue: a TAT read as a count above capacity (a full bucket), a count read
    # as a TAT in 1970. Now the second algorithm on the key is refused every time.
    key = f"mix:{uuid.uuid4().hex}"
    granted = 0
    for _ in range(5):
        for command in (("CL.THROTTLE", key, 0, 1, 3600), ("SHIELD.absorb", key, 1, 3600)):
            try:
                reply = r.execute_command(*command)
            except redis.ResponseError:
                continue
            granted += (reply[0] == 0) if isinstance(reply, list) else (reply >= 0)
    assert granted == 1


def test_a_bucket_and_a_quota_on_one_key_read_each_others_count(r):
    # Documented: both hold a count with an expiry, so neither can tell the other's apart: the
    # bucket's 3 tokens left read as 3 taken from the quota, which then has 1 left after this call.
    key = f"mix:{uuid.uuid4().hex}"
    assert r.execute_command("SHIELD.absorb", key, 5, 3600, 2) == 3
    assert r.execute_command("SHIELD.quota", key, 5, "DAY") == 1


def test_a_hand_written_tat_without_expiry_is_still_read_by_cl_throttle(r):
    # Keys without an expiry are read as before: a TAT in the past is now.
    key = f"mix:{uuid.uuid4().hex}"
    r.set(key, "1000")
    assert r.execute_command("CL.THROTTLE", key, 4, 1, 1) == [0, 5, 4, -1, 1]
