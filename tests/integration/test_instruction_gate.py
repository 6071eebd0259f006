"""The callgrind instruction gate's rule (bench/instructions.py --check, run by scripts/test.sh):
a Shield command's workload that costs more than 3% above its recorded baseline fails, with the
figure printed; anything up to exactly 3% above passes, and so does a decrease. These call the
comparison with made-up figures: no server, no valgrind."""

import json

import shield_instructions as instructions
from shield_servers import REPO


def test_a_workload_costing_more_than_three_percent_above_its_baseline_fails_with_its_figure():
    rows, failed = instructions.compare({"absorb allowed": 10_000}, {"absorb allowed": 10_301})
    assert failed == ["absorb allowed"]
    assert rows[0][4] == "over"
    text = instructions.report(rows, failed)
    assert "FAILED: absorb allowed costs +3.01% (10,000 -> 10,301 instructions per call)" in text
    assert "--write-baseline" in text


def test_a_workload_at_exactly_three_percent_above_its_baseline_or_below_passes():
    baseline = {"a": 10_000, "b": 10_000, "c": 10_000, "d": 10_000}
    rows, failed = instructions.compare(baseline, {"a": 10_300, "b": 10_000, "c": 10_299, "d": 9_950})
    assert failed == []
    assert [row[4] for row in rows] == ["ok", "ok", "ok", "ok"]
    assert "ok: no workload costs more than 3% above its baseline." in instructions.report(rows, failed)


def test_a_decrease_passes_and_the_report_suggests_recording_it():
    rows, failed = instructions.compare({"inspect": 11_000}, {"inspect": 9_900})
    assert failed == [] and rows[0][4] == "lower"
    text = instructions.report(rows, failed)
    assert "inspect now costs 10.00% less (11,000 -> 9,900 instructions per call)." in text
    assert instructions.REGENERATE in text


def test_a_workload_without_a_baseline_fails():
    rows, failed = instructions.compare({}, {"quota allowed": 8_000})
    assert failed == ["quota allowed"]
    assert "FAILED: quota allowed has no baseline." in instructions.report(rows, failed)


def test_the_baseline_holds_every_shield_workload_measured_on_redis_7_and_the_default_build():
    baseline = json.loads(instructions.BASELINE.read_text())
    assert list(baseline["instructions"]) == instructions.gated_workloads()
    assert all(isinstance(v, int) and v > 0 for v in baseline["instructions"].values())
    assert "SET PX" not in baseline["instructions"] and "floor write" not in baseline["instructions"]
    assert baseline["server"].startswith("redis-server 7.0.")
    assert baseline["build_type"] == "RelWithDebInfo"  # scripts/build.sh's default
    assert baseline["threshold_percent"] == instructions.THRESHOLD_PERCENT == 3
    assert baseline["regenerate"] == instructions.REGENERATE
    assert "same commit" in baseline["about"] and "commit message" in baseline["about"]


def test_the_full_test_run_runs_the_gate_and_the_benchmarks_page_names_its_rule():
    script = (REPO / "scripts" / "test.sh").read_text()
    assert "bench/instructions.py\" --check" in script
    assert script.index("bench/instructions.py\" --check") < script.index("== ctest")
    page = (REPO / "docs" / "benchmarks.md").read_text()
    assert "`" + instructions.REGENERATE + "`" in page
    assert "more than 3%" in page
