"""Runs on Dask, time courses as Parquet (pkpd.distributed, issue 13).

The cluster tests start a real LocalCluster of two worker processes; they
are skipped without the optional extra pkpd[distributed].  The messages
for a missing extra are tested by making the imports fail.
"""

import builtins
import dataclasses
import os
import signal
import time

import numpy as np
import pytest

from pkpd import run as prun
from pkpd.cli import main
from pkpd.metrics import METRIC_NAMES
from pkpd.regimen import Dose, Regimen, taper_over
from pkpd.scenario import parse_scenario

pytestmark = pytest.mark.slow  # a real Dask cluster: outside the fast loop

try:
    import distributed  # noqa: F401
    import pyarrow  # noqa: F401
    import pyarrow.parquet as pq

    HAVE_EXTRA = True
except ImportError:
    HAVE_EXTRA = False

needs_extra = pytest.mark.skipif(not HAVE_EXTRA, reason="needs the optional extra pkpd[distributed] "
                                                          "(dask[distributed], pyarrow)")

#: 20,000 varied subjects (5 blocks of 4096), short: the test is about bit identity, not pharmacology.
SCENARIO = """
name = "dask-test"
description = "20,000 subjects, 10 mg every 8 h for a day, then a day off; daily outputs"
duration_h = 48.0
output_step_h = 24.0

[subjects]
n = 20000
seed = 3
variability = true
weight_kg = { mean = 75.0, sd = 15.0, min = 45.0, max = 140.0 }
crcl_ml_min = { mean = 95.0, sd = 25.0, min = 30.0, max = 160.0 }

[[doses]]
route = "oral_ir"
amount_mg = 10.0
at_h = 0.0
every_h = 8.0
count = 3
"""


def _scenario(n=None, text=SCENARIO):
    return parse_scenario(text, n_subjects=n)


def _block_tool(name):
    """An __import__ that fails for ``name`` (and its submodules)."""
    real = builtins.__import__

    def fake(mod, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and (mod == name or mod.startswith(name + ".")):
            raise ImportError(f"No module named {name!r}")
        return real(mod, globals, locals, fromlist, level)

    return fake


# ---------------------------------------------------------------------------
# Without the extra: one line, exit 2 (these run whether or not it is installed)


@pytest.mark.parametrize("missing", ["pyarrow", "distributed"])
@pytest.mark.parametrize("options", [["--format", "parquet"], ["--format", "parquet", "--workers", "2"],
                                     ["--workers", "2"]])
def test_missing_extra_is_one_line_exit_2(monkeypatch, capsys, tmp_path, missing, options):
    monkeypatch.setattr(builtins, "__import__", _block_tool(missing))
    if missing == "distributed" and options == ["--format", "parquet"]:
        pytest.skip("in-process Parquet needs pyarrow only")
    code = main(["run", "drug-free-baseline", "--out", str(tmp_path / "out"), *options])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "pip install 'pkpd[distributed]'" in err, err
    assert missing in err
    assert not (tmp_path / "out").exists()


def test_missing_extra_in_the_api(monkeypatch):
    from pkpd.distributed import MissingExtraError, run_parquet

    monkeypatch.setattr(builtins, "__import__", _block_tool("pyarrow"))
    with pytest.raises(MissingExtraError, match=r"pkpd\[distributed\]"):
        run_parquet(_scenario(10), "unused")


def test_workers_need_parquet(capsys):
    if not HAVE_EXTRA:
        pytest.skip("the extra is checked first")
    assert main(["run", "drug-free-baseline", "--format", "csv", "--workers", "2"]) == 2
    assert "--format parquet" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# Blocks: the work unit


def test_blocks_cover_the_population():
    assert prun.blocks(10000) == [(0, 4096), (4096, 8192), (8192, 10000)]
    assert prun.blocks(1) == [(0, 1)]


@needs_extra
def test_block_population_equals_the_full_draw():
    from pkpd.distributed import block_population

    sc = _scenario(9000)
    full = sc.subjects.population()
    part = block_population(sc, 4096, 8192)
    sub = full.subset(slice(4096, 8192))
    assert np.array_equal(part.subject_ids, sub.subject_ids)
    for k in sub.eta:
        assert np.array_equal(part.eta[k], sub.eta[k])
    assert np.array_equal(part.weight_kg, sub.weight_kg) and np.array_equal(part.crcl_ml_min, sub.crcl_ml_min)


def test_chunk_size_changes_nothing_within_a_block():
    sc = _scenario(300)
    a = prun.run(sc, chunk_size=300)
    b = prun.run(sc, chunk_size=37)
    for k in METRIC_NAMES:
        assert np.array_equal(a.arms[0].metrics[k], b.arms[0].metrics[k], equal_nan=True), k


# ---------------------------------------------------------------------------
# On a cluster


@pytest.fixture(scope="module")
def client():
    if not HAVE_EXTRA:
        pytest.skip("needs the optional extra pkpd[distributed] (dask[distributed], pyarrow)")
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The in-process run of the 20,000 subjects (no Dask), Parquet and metrics."""
    if not HAVE_EXTRA:
        pytest.skip("needs the optional extra pkpd[distributed] (dask[distributed], pyarrow)")
    from pkpd.distributed import run_parquet

    return run_parquet(_scenario(), tmp_path_factory.mktemp("ref") / "out", plot=False)


def _assert_same_dataset(a, b):
    names_a = sorted(os.listdir(a))
    assert names_a == sorted(os.listdir(b))
    assert all(n.startswith("part-") and n.endswith(".parquet") for n in names_a), names_a
    for name in names_a:
        ta, tb = pq.read_table(os.path.join(a, name)), pq.read_table(os.path.join(b, name))
        assert ta.schema.equals(tb.schema, check_metadata=True)
        for col in ta.column_names:  # bit for bit: the float64 bytes, not a tolerance
            assert ta.column(col).equals(tb.column(col)), (name, col)


@needs_extra
def test_in_process_parquet_equals_run(reference):
    """The Parquet path's metrics and figure sample equal run()'s (the CSV path), subject by subject."""
    sc = _scenario()
    res = prun.run(sc, plot=True)
    got = reference.result
    for k in METRIC_NAMES:
        assert np.array_equal(res.arms[0].metrics[k], got.arms[0].metrics[k], equal_nan=True), k
    assert res.summary_rows() == got.summary_rows()
    t = reference.dataset().to_table()
    assert t.num_rows == res.rows == 20000 * 3


@needs_extra
def test_in_process_parquet_equals_simulate(reference):
    """The dataset's readouts equal iter_chunks on the subjects' block, bit for bit (any chunk size).

    The block, not the chunk, must be fixed: iter_chunks plans its integration
    grid from the subjects it is given, and 50 subjects alone differ from the
    same subjects within their block at round-off level (measured ~4e-15,
    relative), which is why both paths simulate the same blocks.
    """
    from pkpd.simulate import iter_chunks

    sc = _scenario()
    arm, grid = sc.arms[0], prun.plan(sc).grids[0]
    pop = sc.subjects.population().subset(slice(8192, 12288))  # block 3: subjects 8193..12288
    want = np.concatenate([r.grids["output"].readouts["plasma_mg_per_l"] for r in iter_chunks(
        arm.regimen, duration_h=sc.duration_h, parameters=arm.parameters, population=pop,
        save=grid.save_at(output=True), chunk_size=1000)])
    table = pq.read_table(os.path.join(reference.dataset_path, "part-a0000-b0000002.parquet"))
    n_t = grid.output_time_h.size
    assert np.array_equal(table.column("subject").to_numpy()[::n_t], np.arange(8193, 12289))
    assert np.array_equal(table.column("plasma_mg_per_l").to_numpy().reshape(4096, n_t), want)


@needs_extra
def test_schema_is_the_documented_one(reference):
    import pyarrow as pa

    from pkpd.distributed import timecourse_schema
    from pkpd.files import TIMECOURSE_COLUMNS

    schema = reference.dataset().schema
    assert tuple(schema.names) == TIMECOURSE_COLUMNS
    assert schema.field("arm").type == pa.dictionary(pa.int32(), pa.string())
    assert schema.field("subject").type == pa.int64()
    for name in TIMECOURSE_COLUMNS[2:]:
        assert schema.field(name).type == pa.float64(), name
    assert schema.field("plasma_mg_per_l").metadata[b"unit"] == b"mg/L"
    assert schema.field("time_h").metadata[b"unit"] == b"h"
    assert schema.equals(timecourse_schema(), check_metadata=True)
    pd = pytest.importorskip("pandas")
    frame = pd.read_parquet(reference.dataset_path)
    assert list(frame.columns) == list(TIMECOURSE_COLUMNS) and len(frame) == 60000
    assert frame["subject"].is_monotonic_increasing  # file order is the CSV's order
    assert set(frame["arm"]) == {"dask-test"}


@needs_extra
def test_two_workers_equal_in_process(client, reference, tmp_path):
    from pkpd.distributed import run_parquet

    out = run_parquet(_scenario(), tmp_path / "out", client=client, plot=False)
    _assert_same_dataset(reference.dataset_path, out.dataset_path)
    assert out.result.summary_rows() == reference.result.summary_rows()
    for k in METRIC_NAMES:
        assert np.array_equal(out.result.arms[0].metrics[k], reference.result.arms[0].metrics[k], equal_nan=True)
    assert sorted(os.listdir(tmp_path / "out")) == ["summary.csv", "timecourse.parquet"]


@needs_extra
def test_a_worker_killed_mid_run_gives_the_same_dataset(client, reference, tmp_path):
    from pkpd.distributed import run_parquet

    pids = client.run(os.getpid)
    killed = []

    def progress(done, total):
        if not killed:  # after the first block: kill a worker busy with the next ones
            victim = sorted(pids.values())[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    out = run_parquet(_scenario(), tmp_path / "out", client=client, plot=False, progress=progress)
    assert killed
    _assert_same_dataset(reference.dataset_path, out.dataset_path)
    assert out.result.summary_rows() == reference.result.summary_rows()
    # the nanny restarted the worker: the cluster still has two
    deadline = time.monotonic() + 30
    while len(client.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert killed[0] not in client.run(os.getpid).values()


@needs_extra
def test_two_arms_and_covariates_on_the_cluster(client, tmp_path):
    """Arms with fixed covariates, more than one block, a figure: equal to run() (the CSV path)."""
    text = SCENARIO.replace("[[doses]]", "[[arms]]\nname = \"a\"\n[[arms.doses]]", 1) + """
[[arms]]
name = "renal"
subjects = { crcl_ml_min = 30.0 }
[[arms.doses]]
route = "oral_ir"
amount_mg = 10.0
at_h = 0.0
every_h = 8.0
count = 3
"""
    from pkpd.distributed import run_parquet

    sc = _scenario(4200, text)
    out = run_parquet(sc, tmp_path / "out", client=client)
    res = prun.run(sc, plot=True)
    assert out.result.summary_rows() == res.summary_rows()
    for a, b in zip(res.arms, out.result.arms):
        for k in METRIC_NAMES:
            assert np.array_equal(a.metrics[k], b.metrics[k], equal_nan=True)
        for k in prun.PLOT_READOUTS:
            assert np.array_equal(a.plot[k], b.plot[k])
    assert sorted(os.listdir(out.dataset_path)) == [
        "part-a0000-b0000000.parquet", "part-a0000-b0000001.parquet",
        "part-a0001-b0000000.parquet", "part-a0001-b0000001.parquet"]
    assert os.path.getsize(out.figure) > 10000
    t = out.dataset().to_table()
    assert t.num_rows == 2 * 4200 * 3
    assert sorted(set(t.column("arm").to_pylist())) == ["a", "renal"]


@needs_extra
def test_an_error_leaves_no_partial_dataset(tmp_path, monkeypatch):
    from pkpd import distributed as dist

    calls = []
    real = dist.run_block

    def failing(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(dist, "run_block", failing)
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        dist.run_parquet(_scenario(5000), out, plot=False)
    assert sorted(os.listdir(out)) == ["summary.csv"]  # no dataset, no temporary directory
    assert (out / "summary.csv").read_text() == "old\n"


@needs_extra
def test_ctrl_c_on_the_cluster_cancels_and_leaves_nothing(client, tmp_path):
    from pkpd.distributed import run_parquet

    def interrupt(done, total):
        raise KeyboardInterrupt

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_parquet(_scenario(9000), out, client=client, plot=False, progress=interrupt)
    assert not out.exists()  # the folder was created by the run: removed with its temporary dataset
    deadline = time.monotonic() + 20
    while client.processing() and any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(client.processing().values())  # the other blocks were cancelled


def test_block_progress_label():
    from pkpd.distributed import BlockProgress

    class Bar:
        label = "x"
        calls = []

        def __call__(self, done, total):
            self.calls.append((self.label, done, total))

    clock = iter([0.0, 2.0, 4.0])
    progress = BlockProgress(Bar(), _scenario(9000), clock=lambda: next(clock))
    progress(4096, 9000)
    progress(8192, 9000)
    assert Bar.calls == [("x 1/3 blocks, 2,048 subjects/s", 4096, 9000), ("x 2/3 blocks, 2,048 subjects/s", 8192, 9000)]


@needs_extra
def test_cli_parquet_with_workers(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "drug-free-baseline", "--subjects", "20", "--format", "parquet", "--workers", "2",
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "timecourse.parquet/" in captured.out
    assert sorted(os.listdir(out)) == ["figure.png", "summary.csv", "timecourse.parquet"]
    csv_out = tmp_path / "csv"
    assert main(["run", "drug-free-baseline", "--subjects", "20", "--out", str(csv_out)]) == 0
    assert (out / "summary.csv").read_text() == (csv_out / "summary.csv").read_text()


# ---------------------------------------------------------------------------
# Sweeps

SWEEP_BASE = """
name = "sweep-test"
duration_h = 288.0
output_step_h = 24.0
[subjects]
n = 300
seed = 5
variability = true
[[doses]]
route = "oral_ir"
amount_mg = 20.0
at_h = 0.0
every_h = 8.0
count = 9
"""


def _with_taper(scenario, *, taper_days, CrCl):
    """The grid point: a taper from 72 h over ``taper_days`` days (7 steps), CrCl fixed."""
    reg = scenario.arms[0].regimen + taper_over(20.0, taper_days, steps=7 if taper_days else 4, every_h=8.0,
                                                start_h=72.0)
    arm = dataclasses.replace(scenario.arms[0], regimen=reg, crcl_ml_min=CrCl)
    return dataclasses.replace(scenario, arms=(arm,))


@needs_extra
def test_sweep_rows_match_separate_runs(client, tmp_path):
    from pkpd.distributed import sweep

    sc = parse_scenario(SWEEP_BASE)
    grid = {"taper_days": [0.0, 7.0], "CrCl": [30.0, 90.0]}
    out = sweep(sc, grid, build=_with_taper, client=client, folder=tmp_path)
    assert len(out.rows) == 4 and out.columns[:3] == ("taper_days", "CrCl", "arm")
    for point, row in zip(out.points, out.rows):
        alone = prun.run(_with_taper(sc, **point))
        want = [v for r in alone.summary_rows() for v in r[3:]]
        assert row[:2] == (point["taper_days"], point["CrCl"])
        assert np.array_equal(np.array(row[3:], float), np.array(want, float), equal_nan=True)
    text = (tmp_path / "sweep.csv").read_text().splitlines()
    assert len(text) == 5 and text[0].startswith("taper_days,CrCl,arm,")
    assert (tmp_path / "sweep.png").stat().st_size > 10000


def test_sweep_in_process_with_parameters():
    """The default build: covariates and typical values, no Dask needed."""
    from pkpd.distributed import apply_point, sweep

    sc = parse_scenario(SWEEP_BASE, n_subjects=20)
    out = sweep(sc, {"CL_r": [3.0, 7.2]})
    for point, res in zip(out.points, out.results):
        alone = prun.run(apply_point(sc, point))
        assert alone.summary_rows() == res.summary_rows()
    assert out.results[0].arms[0].metrics["auc_last_interval"][0] != \
        out.results[1].arms[0].metrics["auc_last_interval"][0]
    with pytest.raises(Exception, match="metric"):
        sweep(sc, {"CL_r": [3.0]}, metric="nope")
