"""Output files: exact number formatting, atomic writes, no partial output."""

import csv
import io as stdio
import math
import os

import numpy as np

import pkpd
import pytest

from pkpd import files as pio
from pkpd import run as prun
from pkpd.errors import PkpdError
from pkpd.scenario import parse_scenario

SMALL = """
name = "small"
duration_h = 24.0
output_step_h = 2.0
[subjects]
n = 3
variability = true
[[arms]]
name = "a"
[[arms.doses]]
route = "oral_ir"
amount_mg = 10.0
at_h = 0.0
every_h = 8.0
count = 2
[[arms]]
name = "b"
[[arms.doses]]
route = "iv_bolus"
amount_mg = 5.0
at_h = 1.0
"""


def test_timecourse_rows_match_a_plain_python_writer():
    rng = np.random.default_rng(1)
    n, t = 7, 5
    time_h = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    readouts = {name: rng.normal(size=(n, t)) * 10.0 ** rng.integers(-18, 3, (n, t)) for name in pio.TIMECOURSE_READOUTS}
    readouts["plasma_mg_per_l"][0, 0] = 0.0
    body = b"".join(pio.format_timecourse("arm-1", np.arange(1, n + 1), time_h, readouts)).decode()
    expected = []
    for i in range(n):
        for j in range(t):
            cells = ["arm-1", str(i + 1), "%.10g" % time_h[j]]
            cells += ["%.10g" % readouts[name][i, j] for name in pio.TIMECOURSE_READOUTS]
            expected.append(",".join(cells))
    assert body == "\n".join(expected) + "\n"


def test_timecourse_falls_back_for_non_finite_values():
    readouts = {name: np.array([[1.0, np.nan]]) for name in pio.TIMECOURSE_READOUTS}
    body = b"".join(pio.format_timecourse("x", [1], np.array([0.0, 1.0]), readouts)).decode()
    assert body.splitlines()[1] == "x,1,1," + ",".join(["nan"] * 9)


def test_summary_cells_are_empty_when_not_applicable():
    text = pio.format_summary([("a", "cmax", "mg/L", 1.5, math.nan, None), ("b", "x", "1", math.nan, 1.0, 2.0)])
    rows = list(csv.reader(stdio.StringIO(text)))
    assert rows[0] == list(pio.SUMMARY_COLUMNS)
    assert rows[1] == ["a", "cmax", "mg/L", "1.5", "", ""]
    assert rows[2] == ["b", "x", "1", "", "1", "2"]


def test_atomic_file_commits_whole_or_leaves_the_old_file(tmp_path):
    target = tmp_path / "f.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with pio.AtomicFile(target) as f:
            f.write("half a fi")
            raise RuntimeError("disk on fire")
    assert target.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["f.csv"]  # no temporary left
    with pio.AtomicFile(target) as f:
        f.write("new\n")
    assert target.read_text() == "new\n"
    assert sorted(os.listdir(tmp_path)) == ["f.csv"]


def _scenario(**kw):
    return parse_scenario(SMALL, source="small.toml", **kw)


def test_run_to_folder_writes_the_documented_files(tmp_path):
    result, files = prun.run_to_folder(_scenario(), tmp_path / "out", plot=False)
    header, rows = pio.read_csv_columns(files.timecourse)
    assert header == list(pio.TIMECOURSE_COLUMNS)
    assert len(rows) == 2 * 3 * 13  # arms x subjects x times (0, 2, ..., 24)
    assert [r[0] for r in rows[:: 3 * 13]] == ["a", "b"]
    assert [int(r[1]) for r in rows[:13 * 3 : 13]] == [1, 2, 3]
    assert [float(r[2]) for r in rows[:13]] == [2.0 * k for k in range(13)]
    header, rows = pio.read_csv_columns(files.summary)
    assert header == list(pio.SUMMARY_COLUMNS)
    assert len(rows) == 2 * len(prun.metrics.METRICS)
    assert sorted(os.listdir(tmp_path / "out")) == ["summary.csv", "timecourse.csv"]


def test_metrics_do_not_depend_on_the_output_step(tmp_path):
    coarse, _ = prun.run_to_folder(_scenario(), tmp_path / "c", plot=False)
    fine_text = SMALL.replace("output_step_h = 2.0", "output_step_h = 0.1")
    fine = prun.run(parse_scenario(fine_text, source="fine.toml"))
    for a, b in zip(coarse.summary_rows(), fine.summary_rows()):
        assert a[:3] == b[:3]
        for x, y in zip(a[3:], b[3:]):
            assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-7, abs=1e-9), a


def test_a_failure_mid_write_leaves_no_partial_file(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "timecourse.csv").write_text("previous run\n")
    (out / "figure.png").write_bytes(b"previous figure")
    real = pio.format_timecourse
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second arm: the first one's rows are already on disk
            raise OSError(28, "No space left on device")
        yield from real(*args, **kwargs)

    monkeypatch.setattr(pio, "format_timecourse", failing)
    with pytest.raises(PkpdError, match="No space left on device"):
        prun.run_to_folder(_scenario(), out, plot=False)
    assert sorted(os.listdir(out)) == ["figure.png", "timecourse.csv"]  # old files, no temporaries
    assert (out / "timecourse.csv").read_text() == "previous run\n"
    assert (out / "figure.png").read_bytes() == b"previous figure"


def test_a_failure_removes_a_folder_it_created(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pio, "format_summary", boom)
    with pytest.raises(KeyboardInterrupt):
        prun.run_to_folder(_scenario(), tmp_path / "new" / "out", plot=False)
    assert not (tmp_path / "new" / "out").exists()


def test_no_plot_removes_an_old_figure(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "figure.png").write_bytes(b"old")
    prun.run_to_folder(_scenario(), out, plot=False)
    assert not (out / "figure.png").exists()


def test_a_run_that_cannot_fit_in_memory_is_refused_with_the_estimate():
    sc = _scenario(n_subjects=10)
    with pytest.raises(prun.ResourceError, match=r"small.toml: this run needs about .* of memory .* more than the 819 KiB it may use"):
        prun.plan(sc, available_bytes=2**20)


def test_summary_failure_never_fails_the_run(monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(prun.metrics, "subject_metrics", broken)
    result = prun.run(_scenario())
    assert result.warnings and "oops" in result.warnings[0]
    assert all(math.isnan(r[3]) for r in result.summary_rows())


def test_evaluation_grid_keeps_the_output_times_exactly():
    grid = prun.evaluation_grid(672.0, 24.0, (496.0, 504.0))
    save = grid.save_at(output=True)
    times, where = save.union()
    assert np.array_equal(times[where["output"]], grid.output_time_h)
    assert np.array_equal(grid.output_time_h, 24.0 * np.arange(29))
    assert np.all(np.diff(times) > 1e-9)
    np.testing.assert_allclose(times[where["interval"]], grid.interval_time_h, atol=1e-9)
    np.testing.assert_allclose(grid.summary_time_h, 0.5 * np.arange(1345), atol=1e-9)
    assert set(save.grids["output"].readouts) == set(pkpd.READOUTS)
