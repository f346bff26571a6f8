"""An event table through the command line: table.csv, summary.csv and figure.png written together."""

import csv
import subprocess
import sys

import numpy as np
import pytest

import pkpd
from pkpd.event_table import read_event_table
from pkpd.run import table_summary_rows
from pkpd.table_engine import simulate_table

pytestmark = pytest.mark.slow  # outside the fast loop (pytest -m 'not slow'); CI runs it

TABLE = """ID,TIME,EVID,AMT,CMT,II,ADDL,CRCL
1,0,1,20,1,8,5,100
1,0,0,,,,,
{obs1}
2,0,1,20,1,8,5,15
2,0,0,,,,,
{obs2}
"""


def _write(tmp_path):
    times = np.arange(0.5, 72.5, 0.5)
    obs = lambda i: "\n".join(f"{i},{t:g},0,,,,," for t in times)  # noqa: E731
    path = tmp_path / "two.csv"
    path.write_text(TABLE.format(obs1=obs(1), obs2=obs(2)))
    return path, times


def test_table_run_writes_three_files_and_a_summary_that_matches_the_rows(tmp_path):
    path, times = _write(tmp_path)
    res = subprocess.run([sys.executable, "-m", "pkpd", "run", str(path), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["figure.png", "summary.csv", "table.csv"]
    with open(tmp_path / "out" / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    peak_cns = next(r for r in rows if r["metric"] == "peak_cns_depression")
    # two subjects: the median of two values is their mean; CrCl 15 accumulates
    result = simulate_table(read_event_table(path))
    per_subject = [result.readouts["cns_depression"][result.number == k].max() for k in (1, 2)]
    # the summary refines each peak between samples, so it is at or just above the sampled one
    assert np.mean(per_subject) <= float(peak_cns["median"]) <= np.mean(per_subject) * 1.001
    assert per_subject[1] > 5 * per_subject[0]
    assert {r["metric"] for r in rows} >= {"peak_occupancy", "lowest_excitability", "hours_plasma_above_0.7_mg_per_l"}
    assert not any(r["metric"].startswith("cmax_last") for r in rows)  # needs a regimen structure


def test_table_summary_uses_the_last_row_at_a_repeated_time(tmp_path):
    path, _ = _write(tmp_path)
    result = simulate_table(read_event_table(path))
    rows = {r[1]: r for r in table_summary_rows(result, "two")}
    assert rows["lowest_excitability"][3] < 1.0
    assert rows["peak_occupancy"][0] == "two"


def test_no_plot_writes_no_figure(tmp_path):
    path, _ = _write(tmp_path)
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "pkpd", "run", str(path), "--out", str(out), "--no-plot"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["summary.csv", "table.csv"]


def test_a_parquet_table_runs_to_the_same_table_csv_as_the_csv_file(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet input needs pyarrow (pip install 'pkpd[tables]')")
    import pyarrow.csv as pc

    path, _ = _write(tmp_path)
    pq.write_table(pc.read_csv(path), tmp_path / "two.parquet")
    outs = {}
    for name in ("two.csv", "two.parquet"):
        out = tmp_path / f"out-{name}"
        res = subprocess.run([sys.executable, "-m", "pkpd", "run", name, "--out", str(out), "--no-plot"],
                             capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        outs[name] = (out / "table.csv").read_text()
    assert outs["two.csv"] == outs["two.parquet"]
    bad = tmp_path / "bad.parquet"
    pq.write_table(pc.read_csv(path).set_column(1, "TIME", [[0.0] * 145 + [-1.0] + [0.5] * 146]), bad)
    res = subprocess.run([sys.executable, "-m", "pkpd", "run", str(bad), "--out", str(tmp_path / "bad")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2 and "row 146, TIME: must be >= 0 (h); got -1" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "bad").exists()
