"""Smoke test of the benchmark suite: ``python -m benchmarks.run --quick`` must
run and its numbers must make sense (so the benchmarks cannot rot).

No timing is asserted (speed lives in benchmarks/), only that times are
finite and positive, and that the engines agree with the high-accuracy
reference: pkpd within the accuracy goals, the peer engines within what
their tolerances allow (which also shows they solve the same model).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # deselected by the fast loop: pytest -m 'not slow'


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--json", str(out / "results.json"),
           "--figure", str(out / "scaling.png"), "--markdown", str(out / "results.md")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "results.json") as fh:
        return json.load(fh), proc.stdout, out


def _rows(result, engine):
    return [r for r in result["rows"] if r["engine"] == engine]


@pytest.mark.parametrize("engine", ["pkpd", "scipy_loop"])
def test_rows_have_finite_times(quick_run, engine):
    result, _, _ = quick_run
    rows = _rows(result, engine)
    assert {r["n"] for r in rows if r["workload"] == "standard"} == {1, 10}
    for r in rows:
        assert r["status"] == "ok", r
        assert math.isfinite(r["wall_s"]) and r["wall_s"] > 0, r
        assert math.isfinite(r["ms_per_subject"]) and r["ms_per_subject"] > 0, r
        assert r["peak_mb"] > 10, r  # a Python process with numpy holds more than this
        assert r["n_times"] > 100, r


def test_ratios_are_against_the_baseline_measured_in_the_same_run(quick_run):
    result, _, _ = quick_run
    for r in _rows(result, "scipy_loop"):
        assert r["ratio"] == pytest.approx(1.0)
    base = {(r["workload"], r["n"]): r["wall_s"] for r in _rows(result, "scipy_loop")}
    for r in _rows(result, "pkpd"):
        assert r["ratio"] == pytest.approx(base[(r["workload"], r["n"])] / r["wall_s"])


@pytest.mark.parametrize("workload", ["standard", "intrathecal"])
def test_pkpd_meets_the_accuracy_goals(quick_run, workload):
    acc = quick_run[0]["accuracy"][f"{workload}/pkpd"]
    assert acc["status"] == "ok", acc
    assert acc["plasma_rel"] <= 1e-5
    for k in ("occupancy_abs", "receptor_density_abs", "adaptation_abs", "excitability_abs"):
        assert acc[k] <= 1e-6, (k, acc[k])


def test_peer_engines_solve_the_same_model(quick_run):
    # LSODA / CVODE at rtol 1e-6: errors of order 1e-6 .. 1e-5; a misread
    # equation or parameter would show as errors of 1e-2 or more.
    result, _, _ = quick_run
    checked = 0
    for key, acc in result["accuracy"].items():
        if acc["status"] == "skipped":
            continue
        assert acc["status"] == "ok", (key, acc)
        assert acc["plasma_rel"] < 1e-3, (key, acc)
        assert acc["receptor_abs"] < 1e-4, (key, acc)
        checked += 1
    assert checked >= 4


def test_outputs_and_machine_info(quick_run):
    result, stdout, out = quick_run
    for key in ("platform", "cpu_count", "numpy", "scipy", "date"):
        assert key in result["machine"]
    assert result["baseline"] == "scipy_loop"
    assert "ms/subject" in stdout and "pkpd" in stdout
    assert (out / "scaling.png").stat().st_size > 10_000
    md = (out / "results.md").read_text()
    assert md.count("| pkpd |") >= 2 and "Machine:" in md
