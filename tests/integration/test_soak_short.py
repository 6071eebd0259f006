"""The short form of bench/soak.py: 200,000 SHIELD.absorb calls over 20,000 buckets in two rounds
(redis-benchmark, pipelined), every bucket deleted with SHIELD.reset after each round, on Debian's
redis-server (jemalloc). used_memory returns to its baseline, RSS does not grow from round to
round, and the INFO shield counters equal the calls made. About 7 seconds, so it runs once, not
per server kind; the long form (10 million calls over a million buckets, any server with
--server) is `/usr/bin/python3 bench/soak.py`, its results in bench/results/soak.md.
"""

import os
import shutil

import pytest

import shield_servers
import shield_soak as soak
from shield_servers import MODULE, require


def test_after_200k_absorbs_and_resets_memory_is_back_to_baseline_and_counters_equal_the_calls():
    if "redis7" not in os.environ.get("SHIELD_SERVERS", "redis7").split(","):
        pytest.skip("runs once, with the integration suite's redis7 entry")
    if os.environ.get("SHIELD_SERVER_PRELOAD"):
        pytest.skip("memory figures mean nothing under a sanitizer (its quarantine holds freed memory)")
    find = getattr(shield_servers, "find_server", None)
    binary = find("redis7") if find else shutil.which("redis-server")
    require(binary, "redis-server (Debian package redis-server)")
    require(soak.benchmark_binary(), "redis-benchmark (Debian package redis-tools)")
    result = soak.soak(binary, MODULE, calls=200_000, buckets=20_000, rounds=2, log=lambda *_: None)
    failed = [c for c in result["checks"] if not c["ok"]]
    assert not failed, (failed, result["rounds_detail"])
