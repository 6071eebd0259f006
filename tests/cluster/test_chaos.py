"""The short form of bench/chaos.py: load on a six-node cluster while primaries are killed, failed
over, restarted from their AOF and slots move, with the history checked against the model.

Each test runs one mode for SHIELD_CHAOS_DURATION seconds of load (default 50) on its own cluster,
with a random seed that a failure prints (set SHIELD_CHAOS_SEED to replay one). They take about
a minute each, so they run only when SHIELD_CHAOS=1 (ctest's `chaos` entry sets it), not as part of
the `cluster` entries that run this folder. The long form, with its results file, is
`/usr/bin/python3 bench/chaos.py` (see its docstring).
"""

import os
import tempfile

import pytest

import shield_chaos as chaos

pytestmark = pytest.mark.skipif(os.environ.get("SHIELD_CHAOS") != "1",
                                reason="the chaos run takes minutes: set SHIELD_CHAOS=1 (ctest -L chaos)")

DURATION = os.environ.get("SHIELD_CHAOS_DURATION", "50")
SEED = os.environ.get("SHIELD_CHAOS_SEED")


def run(mode, measured):
    out = tempfile.mkdtemp(prefix="shield-chaos-test-")
    args = chaos.parse_args(["--duration", DURATION, "--out", out, "--no-results"]
                            + (["--server", os.environ["SHIELD_CLUSTER_SERVER"]]
                               if os.environ.get("SHIELD_CLUSTER_SERVER") else []))
    seed = int(SEED) if SEED else chaos.random.SystemRandom().randrange(1, 10**9)
    print(f"chaos {mode}: seed {seed}")
    result = chaos.run_mode(args, mode, seed, out)
    measured[f"chaos {mode} (seed {seed})"] = {
        k: result.get(k) for k in ("calls", "granted_calls", "faults", "redirects_followed",
                                   "retries_by_driver", "lost_tokens_acknowledged",
                                   "lost_tokens_confirmed_by_wait", "over_admission_tokens")}
    return result


def test_without_wait_every_reply_is_a_number_or_a_handled_error_and_only_hard_failovers_over_admit(measured):
    result = run("nowait", measured)
    assert not result["failures"], chaos.failure_text(result)
    assert result["over_admission_tokens"].get("unexplained", 0) == 0
    assert result["faults"].get("hard_failover", 0) >= 1, result["faults"]


def test_with_wait_after_each_grant_no_grant_a_replica_confirmed_is_lost(measured):
    result = run("wait", measured)
    assert not result["failures"], chaos.failure_text(result)
    assert result["lost_tokens_confirmed_by_wait"] == 0
    assert result["wait"].get("returned_1", 0) > 0, result["wait"]
    assert result["faults"].get("hard_failover", 0) >= 1, result["faults"]
