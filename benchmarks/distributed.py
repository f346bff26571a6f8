"""Benchmark (not a test) of runs on Dask: wall time, peak memory per worker, dataset size.

The standard problem (``standard-population``: label titration to 20 mg
every 8 h to day 21, abrupt stop, 28 days, varied subjects) with daily
outputs (``output_step_h = 24``), on a local Dask cluster of 1 and 2 worker
processes (one thread each), written as ``timecourse.parquet/``.

    PYTHONPATH=. python benchmarks/distributed.py                  # 100,000 subjects, 1 and 2 workers
    PYTHONPATH=. python benchmarks/distributed.py --subjects 100000 1000000 --workers 1 2

Peak memory per worker is the worker process's peak resident set
(``VmHWM`` of ``/proc/<pid>/status``, read at the end of the row; each row
starts a fresh cluster); "CPU s/worker" is the CPU time a worker spent,
which on a shared machine tells how much of the wall time it actually ran.
Measured on the 2-core reference machine (shared with other jobs; the
load average is printed with each table), 29 output times per subject:

| subjects | workers | wall s | subjects/s | peak MB/worker | CPU s/worker | dataset MB | files |
|---|---|---|---|---|---|---|---|
| 100,000 | 1 | 86.4 | 1,158 | 491 | 87.2 | 161 | 25 |
| 100,000 | 2 | 44.1 | 2,266 | 492 | 41.7 | 161 | 25 |
| 1,000,000 | 2 | 532.5 | 1,878 | 507 | 436.1 | 1,612 | 245 |

(the million-subject row ran under a load average of 2-5 from other jobs;
the peak per worker does not grow with the population: one chunk of one
block at a time; the driver peaked at 475 MB, mostly the gathered
per-subject metrics, 18 numbers per subject).

Teaching model only: not dosing advice.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time

# run as a script, this file's folder comes first on sys.path and its name would hide the
# ``distributed`` package: drop that folder
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def row(n: int, workers: int, folder: str) -> dict:
    from distributed import Client, LocalCluster

    from pkpd.distributed import run_parquet
    from pkpd.scenario import load_scenario

    sc = dataclasses.replace(load_scenario("standard-population", n_subjects=n), output_step_h=24.0)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(cluster)
    try:
        t0 = time.perf_counter()
        out = run_parquet(sc, folder, client=client, plot=True)
        wall = time.perf_counter() - t0
        peaks = client.run(_peak_rss_mb)
        cpu = client.run(_cpu_s)
    finally:
        client.close()
        cluster.close()
    return {"subjects": n, "workers": workers, "wall_s": wall, "peak_mb": max(peaks.values()),
            "cpu_s": sum(cpu.values()) / len(cpu), "dataset_mb": out.bytes / 1e6,
            "rows": out.result.rows, "files": len(os.listdir(out.dataset_path)),
            "driver_peak_mb": _peak_rss_mb()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, nargs="+", default=[100_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--keep", metavar="DIR", help="write the outputs under DIR (default: a temporary folder)")
    args = parser.parse_args(argv)
    header = (f"{'subjects':>9} {'workers':>7} {'wall s':>8} {'subj/s':>7} {'peak MB/worker':>14} "
              f"{'CPU s/worker':>12} {'dataset MB':>10} {'rows':>11} {'files':>5} {'driver MB':>9}")
    print(f"standard-population, daily outputs, {os.cpu_count()} cores; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(header)
    for n in args.subjects:
        for k in args.workers:
            base = args.keep or tempfile.mkdtemp(prefix="pkpd-bench-")
            folder = os.path.join(base, f"n{n}-w{k}")
            try:
                r = row(n, k, folder)
            finally:
                if not args.keep:
                    shutil.rmtree(base, ignore_errors=True)
            print(f"{r['subjects']:>9,} {r['workers']:>7} {r['wall_s']:>8.1f} {n / r['wall_s']:>7.0f} "
                  f"{r['peak_mb']:>14.0f} {r['cpu_s']:>12.1f} {r['dataset_mb']:>10.1f} {r['rows']:>11,} "
                  f"{r['files']:>5} {r['driver_peak_mb']:>9.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
