"""The summary streamed chunk by chunk equals the whole-population computation.

:func:`pkpd.run.run` computes each chunk's per-subject metrics as soon as the
chunk is simulated, saves on the summary grid only the readouts the metrics
read (the figure's too only in the block holding its sample) and keeps just
the per-subject values.  These tests check that against simulating each arm
for every subject at once, with every summary readout saved, and computing
the metrics on the whole arrays, on a scenario with several arms, a taper
and an intrathecal infusion that stops.
"""

from __future__ import annotations

import numpy as np
import pytest

import pkpd
from pkpd import metrics
from pkpd import run as prun
from pkpd.scenario import parse_scenario

SCENARIO = """
name = "stream-check"
duration_h = 600.0
output_step_h = 6.0

[subjects]
n = 90
seed = 11
variability = true
weight_kg = { mean = 75.0, sd = 15.0, min = 45.0, max = 140.0 }
crcl_ml_min = { mean = 95.0, sd = 25.0, min = 30.0, max = 160.0 }

[[arms]]
name = "abrupt-stop"

[[arms.titrations]]
from_mg = 5.0
to_mg = 20.0
step_mg = 5.0
every_h = 8.0
step_days = 3.0
hold_days = 3.0

[[arms]]
name = "taper"

[[arms.titrations]]
from_mg = 5.0
to_mg = 20.0
step_mg = 5.0
every_h = 8.0
step_days = 3.0
hold_days = 3.0

[[arms.tapers]]
from_mg = 20.0
over_days = 6.0
steps = 3
every_h = 8.0
start_h = 360.0

[[arms]]
name = "intrathecal-stop"

[[arms.infusions]]
route = "intrathecal_infusion"
rate_mg_per_day = 0.4
start_h = 0.0
stop_h = 336.0

[[arms]]
name = "single-dose"

[[arms.doses]]
route = "oral_ir"
amount_mg = 20.0
at_h = 0.0
"""


@pytest.fixture(scope="module")
def scenario():
    return parse_scenario(SCENARIO, source="stream-check.toml")


def _whole_population(scenario, arm, grid):
    """One arm's per-subject metrics from one simulate() of every subject, all summary readouts saved."""
    pop = prun.arm_population(arm, scenario.subjects.population())
    res = pkpd.simulate(arm.regimen, duration_h=scenario.duration_h, parameters=arm.parameters, population=pop,
                        save=grid.save_at(output=True, plot=True))
    summary = res.grids["summary"]
    assert set(summary.readouts) == set(prun.SUMMARY_READOUTS)
    with np.errstate(all="ignore"):
        return metrics.subject_metrics(summary.time_h, dict(summary.readouts), dosing=grid.dosing,
                                       nca_t_h=grid.interval_time_h,
                                       nca_plasma=res.grids["interval"].readouts["plasma_mg_per_l"]
                                       if "interval" in res.grids else None)


def test_streamed_metrics_equal_the_whole_population_computation(scenario):
    streamed = prun.run(scenario, plot=False, chunk_size=16)  # 6 chunks per arm, metric readouts only
    assert {a.name for a in streamed.arms} == {"abrupt-stop", "taper", "intrathecal-stop", "single-dose"}
    plan = prun.plan(scenario, plot=False)
    applied = 0
    for arm, grid, out in zip(scenario.arms, plan.grids, streamed.arms):
        whole = _whole_population(scenario, arm, grid)
        for name in metrics.METRIC_NAMES:
            np.testing.assert_allclose(out.metrics[name], whole[name], rtol=1e-12, atol=0, equal_nan=True,
                                       err_msg=f"{arm.name}: {name}")
            applied += bool(np.isfinite(whole[name]).any())
        rows = [r for r in streamed.summary_rows() if r[0] == arm.name]
        for (_, name, _, *cells), info in zip(rows, metrics.METRICS):
            assert name == info.name
            np.testing.assert_allclose(cells, metrics.population_summary(whole[name]), rtol=1e-12, atol=0,
                                       equal_nan=True, err_msg=f"{arm.name}: {name}")
    assert applied >= 40  # the rebound, half-life, NCA and single-dose rows are exercised, not only nan


def test_the_figure_readouts_change_no_metric_and_no_time_course_byte(scenario):
    parts = {}
    for plot in (True, False):
        sink = []
        result = prun.run(scenario, plot=plot, timecourse=sink.append, chunk_size=32)
        parts[plot] = (result, b"".join(sink))
    (with_plot, csv_plot), (without, csv_bare) = parts[True], parts[False]
    assert csv_plot == csv_bare and csv_plot
    for a, b in zip(with_plot.arms, without.arms):
        for name in metrics.METRIC_NAMES:
            assert np.array_equal(a.metrics[name], b.metrics[name], equal_nan=True), (a.name, name)
        assert b.plot is None and a.plot is not None
        assert all(v.shape[0] == scenario.subjects.n for v in a.plot.values())


def test_block_boundaries_and_chunks_keep_every_number(scenario, monkeypatch):
    """Blocks of 40 subjects (3 per arm), chunks of 7 or 40: the same numbers; the figure's
    readouts saved only in the first block, its sample whole.  (A block is planned from its own
    subjects, so blocks of 40 differ from one block of 90 by the integration error: not compared.)"""
    monkeypatch.setattr(prun, "BLOCK_SUBJECTS", 40)
    monkeypatch.setattr(prun, "PLOT_SUBJECTS", 30)
    saves = []
    real = prun.iter_chunks

    def spy(*args, save, **kw):
        saves.append(set(save.grids["summary"].readouts))
        return real(*args, save=save, **kw)

    monkeypatch.setattr(prun, "iter_chunks", spy)
    results = [prun.run(scenario, plot=True, chunk_size=c) for c in (7, 40)]
    assert saves[:3] == [set(prun.SUMMARY_READOUTS), set(prun.METRIC_READOUTS), set(prun.METRIC_READOUTS)]
    a, b = results
    for x, y in zip(a.arms, b.arms):
        for name in metrics.METRIC_NAMES:
            assert np.array_equal(x.metrics[name], y.metrics[name], equal_nan=True), (x.name, name)
        assert all(v.shape[0] == 30 for v in x.plot.values())
        for k, v in x.plot.items():
            assert np.array_equal(v, y.plot[k]), k


def test_metric_readouts_are_what_subject_metrics_reads():
    t = np.linspace(0.0, 48.0, 97)
    readouts = {k: np.ones((2, t.size)) for k in metrics.SUBJECT_READOUTS}
    metrics.subject_metrics(t, readouts, dosing=metrics.describe_dosing([0.0, 12.0], 48.0))  # no KeyError
    assert set(prun.METRIC_READOUTS) <= set(prun.SUMMARY_READOUTS)
    assert set(prun.PLOT_READOUTS) <= set(prun.SUMMARY_READOUTS)


@pytest.mark.parametrize("size,most", [(4096, 512), (1808, 512), (3616, 512), (513, 512), (60, 512), (4096, 2018),
                                       (1, 512), (4096, 10_000), (300, 37)])
def test_even_chunks_cover_a_block_in_as_few_equal_chunks_as_allowed(size, most):
    c = prun.even_chunk(size, most)
    count = -(-size // c)
    assert c <= min(most, prun.BLOCK_SUBJECTS)
    assert count == -(-size // min(most, prun.BLOCK_SUBJECTS))  # no more chunks than needed
    assert size - (count - 1) * c >= c - count  # the last one is not a small leftover
