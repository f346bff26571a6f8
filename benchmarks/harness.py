"""Measuring: one timed run per fresh process, accuracy against the reference.

Everything here is plain functions so that the asv classes
(``bench_workloads.py``), the runner (``run.py``) and a user at a prompt do
the same thing.
"""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing as mp
import os
import platform
import resource
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import engines, problems

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
#: Subjects on which every engine's error is measured.
ACCURACY_SUBJECTS = 3
#: Readouts whose absolute error is reported (plasma gets a relative error).
ABS_READOUTS = ("occupancy", "receptor_density", "adaptation", "excitability")
#: Plasma is compared where the reference is above this fraction of its peak.
PLASMA_FLOOR = 1e-3


# --------------------------------------------------------------------------
# one case: a workload, an engine, a number of subjects


class Case:
    """An engine ready to run a workload for ``n`` subjects (or its subset).

    Loop engines (``SUBSET`` set) run the first ``min(n, SUBSET)`` subjects;
    the caller scales their time to ``n``.  Construction does the untimed
    work: sampling the population, the per-subject parameters, compiling.
    """

    def __init__(self, workload: str, engine: str, n: int, *, quick: bool = False,
                 outputs=problems.TIMED_OUTPUTS, subset: int | None = None):
        self.engine_name = engine
        self.engine = engines.get(engine)
        ok, note = self.engine.available()
        if not ok:
            raise NotImplementedError(note)
        self.n = int(n)
        limit = self.engine.SUBSET if subset is None else subset
        self.k = self.n if limit is None else min(self.n, int(limit))
        self.problem = problems.build(workload, self.k, quick=quick, outputs=outputs)
        self.params = self.problem.individual_parameters()
        self.context = self.engine.prepare(self.problem)

    @property
    def scaled(self) -> bool:
        return self.k < self.n

    def run(self) -> dict:
        """Solve every subject of the (possibly subset) problem; readouts (k, T)."""
        return self.engine.solve(self.problem, self.params, self.problem.outputs, self.context)

    def warm_up(self) -> None:
        """One run on a single subject: imports, caches and JIT paths, untimed."""
        one = self.problem.subset(1)
        params = {k: v[:1] for k, v in self.params.items()}
        self.engine.solve(one, params, one.outputs, self.context)


def _rss_mb(field: str) -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


#: Fewest timed runs of a case (see :func:`measure_case`).
MIN_REPEATS = 3


def measure_case(workload: str, engine: str, n: int, *, quick: bool = False,
              outputs=problems.TIMED_OUTPUTS, min_time_s: float = 1.0, max_repeats: int = 5,
              subset: int | None = None) -> dict:
    """Time one case in this process; a row of the results table.

    Runs the case once, then again while the total stays under
    ``min_time_s`` or fewer than :data:`MIN_REPEATS` runs were made (unless
    they took ten times ``min_time_s``), at most ``max_repeats`` runs, and
    reports the fastest.  A fresh process's first large allocations can cost
    far more than later ones (this VM compacts memory for huge pages on
    their first touch: 10,000 subjects on one thread, 0.53 s twice, then
    0.24 s), hence the minimum.
    Meant to run in a fresh process (see :func:`measure_in_subprocess`):
    the peak resident memory it reports is the process's.
    """
    from .bench_workloads import BENCHMARKS

    row = {"workload": workload, "engine": engine, "n": int(n), "quick": quick}
    bench = BENCHMARKS[workload]()
    bench.quick, bench.outputs, bench.subset = quick, tuple(outputs), subset
    t0 = time.perf_counter()
    try:
        bench.setup(engine, n)  # sampling, parameters, compiling, one warm-up run
    except NotImplementedError as exc:
        row.update(status="skipped", note=str(exc))
        return row
    case = bench.case
    row["setup_s"] = time.perf_counter() - t0
    row["base_mb"] = _rss_mb("VmRSS")
    times = []
    while True:
        t = time.perf_counter()
        bench.time_simulate(engine, n)
        times.append(time.perf_counter() - t)
        gc.collect()
        total = sum(times)
        if len(times) >= max_repeats or total >= 10 * min_time_s or (
                total >= min_time_s and len(times) >= MIN_REPEATS):
            break
    best = min(times)
    row.update(
        status="ok",
        subjects_run=case.k,
        scaled=case.scaled,
        times_s=times,
        run_s=best,
        ms_per_subject=1000.0 * best / case.k,
        wall_s=best * case.n / case.k,
        n_times=int(case.problem.times_h.size),
        outputs=list(case.problem.outputs),
        peak_mb=_rss_mb("VmHWM"),
        settings=case.engine.SETTINGS,
        source=case.problem.source,
        note=f"scaled from {case.k} subjects" if case.scaled else "",
    )
    return row


def _child(conn, args, kwargs):
    try:
        row = measure_case(*args, **kwargs)
    except BaseException as exc:  # report, don't hang the parent
        workload, engine, n = args[:3]
        row = {"workload": workload, "engine": engine, "n": int(n), "status": "error",
               "note": f"{type(exc).__name__}: {exc}"}
    conn.send(row)
    conn.close()


def measure_in_subprocess(*args, timeout_s: float = 3600.0, **kwargs) -> dict:
    """:func:`measure_case` in a fresh spawned process (clean memory high-water mark).

    A child that crashes (a segfault in a compiled engine) or overruns
    ``timeout_s`` gives an error row instead of stopping the run.
    """
    workload, engine, n = args[:3]
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, args, kwargs), daemon=True)
    proc.start()
    send.close()
    row, timed_out = None, False
    try:
        if recv.poll(timeout_s):
            row = recv.recv()
        else:
            timed_out = True
    except EOFError:  # the child died before sending anything
        pass
    finally:
        if timed_out:
            proc.kill()
        proc.join()
    if row is None:
        why = (f"timed out after {timeout_s:g} s" if timed_out
               else f"measuring process died (exit code {proc.exitcode})")
        row = {"workload": workload, "engine": engine, "n": int(n), "status": "error", "note": why}
    return row


# --------------------------------------------------------------------------
# accuracy


def _cache_key(problem) -> str:
    params = problem.individual_parameters()
    h = hashlib.sha256()
    from .engines import reference

    h.update(repr((reference.METHOD, reference.RTOL, reference.ATOL, problem.doses, problem.infusions,
                   problem.duration_h)).encode())
    h.update(np.ascontiguousarray(problem.times_h).tobytes())
    for k in sorted(params):
        h.update(k.encode())
        h.update(np.ascontiguousarray(params[k], dtype=float).tobytes())
    return h.hexdigest()[:20]


def reference_solution(problem, *, use_cache: bool = True) -> dict:
    """The high-accuracy solution (all readouts, each (N, T)), cached on disk."""
    from .engines import reference

    path = CACHE_DIR / f"reference-{problem.workload}-{_cache_key(problem)}.npz"
    if use_cache and path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    sol = reference.solve(problem, problem.individual_parameters(), problems.ALL_OUTPUTS)
    if use_cache:
        CACHE_DIR.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **sol)
        os.replace(tmp, path)
    return sol


def errors(result: dict, ref: dict) -> dict:
    """Max relative plasma error (where ref > 1e-3 of each subject's peak) and
    max absolute errors on the receptor readouts."""
    out = {}
    p, pr = result["plasma_mg_per_l"], ref["plasma_mg_per_l"]
    mask = pr > PLASMA_FLOOR * pr.max(axis=1, keepdims=True)
    out["plasma_rel"] = float(np.max(np.abs(p[mask] / pr[mask] - 1.0))) if mask.any() else 0.0
    for k in ABS_READOUTS:
        out[k + "_abs"] = float(np.max(np.abs(result[k] - ref[k])))
    out["receptor_abs"] = max(out[k + "_abs"] for k in ABS_READOUTS)
    finite = all(np.all(np.isfinite(result[k])) for k in ("plasma_mg_per_l", *ABS_READOUTS))
    if not finite:
        out = {k: float("inf") for k in out}
    return out


def accuracy(workload: str, engine: str, *, quick: bool = False,
             n_subjects: int = ACCURACY_SUBJECTS, use_cache: bool = True) -> dict:
    """One engine's errors against the reference on the first few subjects."""
    eng = engines.get(engine)
    ok, note = eng.available()
    if not ok:
        return {"status": "skipped", "note": note}
    problem = problems.build(workload, n_subjects, quick=quick, outputs=problems.ALL_OUTPUTS)
    ref = reference_solution(problem, use_cache=use_cache)
    res = eng.solve(problem, problem.individual_parameters(), problems.ALL_OUTPUTS, eng.prepare(problem))
    return {"status": "ok", "subjects": n_subjects, **errors(res, ref)}


# --------------------------------------------------------------------------
# machine


def machine_info() -> dict:
    """Where the numbers came from."""
    import scipy

    info = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    info["memory_gb"] = round(int(line.split()[1]) / 1024**2, 1)
                    break
    except OSError:
        pass
    for mod in ("pkpd", "roadrunner", "jax", "diffrax"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:
            pass
    try:  # other work on the machine inflates every time: say how busy it was
        info["load_avg_1m_at_start"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return info


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, default=float)
