"""Runs on Dask (``dask.distributed``), time courses as a partitioned Parquet dataset.

:func:`run_parquet` writes ``timecourse.parquet/`` (a directory of Parquet
files, one per arm and block of subjects), ``summary.csv`` and
``figure.png``; :func:`sweep` runs a grid of parameter values and settings
as one job and writes ``sweep.csv`` and ``sweep.png``.  Both need the
optional extra ``pkpd[distributed]`` (``dask[distributed]``, ``pyarrow``).

Design
------
* **Work unit.**  A *block* of :data:`pkpd.run.BLOCK_SUBJECTS` subjects of
  one arm (subjects 1..4096, 4097..8192, ...).  A task draws its block of
  the population by counter (:func:`pkpd.population.sample_population`
  with ``first_subject``), simulates it with
  :func:`pkpd.run.iter_blocks`, exactly as the in-process run does, and
  writes ``part-a<arm>-b<block>.parquet``.  Every subject's numbers are
  therefore bit-identical to ``python -m pkpd run`` (CSV or Parquet, one
  process), whatever the number of workers, the order in which blocks
  finish, or a worker lost mid-run (Dask reruns its tasks elsewhere: a
  task is a pure function of the scenario and the block, and writes its
  file under a temporary name then renames it, so a rerun overwrites a
  whole file with the same bytes of data).
* **Memory.**  A worker holds one chunk of one block at a time (at most
  4096 subjects; the chunk follows the memory plan) and writes it as one
  row group.  The driver never sees a time course: it receives each
  block's per-subject metrics (about 20 numbers per subject) and, for the
  blocks holding the first :data:`pkpd.run.PLOT_SUBJECTS` subjects, their
  summary curves for the figure.  At most ``2 x workers + 2`` tasks are in
  flight.
* **Summary.**  The per-subject metrics of every subject are gathered to the
  driver, so the medians and 5th/95th percentiles of ``summary.csv`` are
  exact (equal to the in-process run's).
* **Figure.**  The median and 90 % band of ``figure.png`` are those of the
  first 500 subjects, exactly as in the in-process run (a subject depends
  only on the seed and its number, so they are a random sample).  Error
  bound, as a statement about the whole population: at each time, with
  probability >= 95 %, the sample's empirical distribution is within
  ``sqrt(ln(2/0.05) / (2 x 500)) = 0.061`` of the population's
  (Dvoretzky-Kiefer-Wolfowitz), so the drawn 5th, 50th and 95th percentiles
  lie between the population's 0th-11th, 44th-56th and 89th-100th
  percentiles.  It is the sampling error of a 500-subject figure, whatever
  the population size.
* **Files.**  The dataset is written into a temporary directory beside the
  output (``.timecourse.parquet.<random>``) and renamed into place at the
  end, together with ``summary.csv`` and ``figure.png``; an error or Ctrl-C
  cancels the outstanding tasks and removes the temporary directory, so no
  partial dataset is ever left.

Schema of ``timecourse.parquet`` (:func:`timecourse_schema`): ``arm``
dictionary<int32, string>; ``subject`` int64; ``time_h`` and every readout
float64, in the order and with the names of ``timecourse.csv``; each field's
unit in its metadata (``unit``).  Rows are ordered as in the CSV within each
file, and the file names sort in CSV order.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import files as pio
from . import metrics
from . import run as prun
from .errors import PkpdError
from .model import READOUT_INFO
from .population import sample_population
from .scenario import Scenario

#: The extra to install, named by every message about a missing dependency.
EXTRA = "pkpd[distributed]"
#: The dataset's directory name.
DATASET_DIR = "timecourse.parquet"
#: The sweep's files.
SWEEP_FILE = "sweep.csv"
SWEEP_FIGURE = "sweep.png"


class MissingExtraError(PkpdError):
    """The optional extra ``pkpd[distributed]`` is not installed."""


def missing_extra_message(what: str, module: str) -> str:
    return (f"{what} needs the optional extra {EXTRA} (dask[distributed], pyarrow): "
            f"pip install '{EXTRA}' (missing: {module})")


def require(what: str = "--format parquet", *, dask: bool = False) -> None:
    """Raise :class:`MissingExtraError` (one line) unless pyarrow (and dask.distributed) import."""
    names = ["pyarrow"] + (["dask", "distributed"] if dask else [])
    for name in names:
        try:
            __import__(name)
        except ImportError:
            raise MissingExtraError(missing_extra_message(what, name)) from None


# ---------------------------------------------------------------------------
# Schema


def timecourse_schema():
    """The Arrow schema of ``timecourse.parquet`` (units in each field's metadata)."""
    import pyarrow as pa

    fields = [
        pa.field("arm", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("subject", pa.int64(), nullable=False, metadata={"unit": "1"}),
        pa.field("time_h", pa.float64(), nullable=False, metadata={"unit": "h"}),
    ]
    for name in pio.TIMECOURSE_READOUTS:
        fields.append(pa.field(name, pa.float64(), nullable=False, metadata={"unit": READOUT_INFO[name][0]}))
    return pa.schema(fields, metadata={"pkpd": "timecourse, columns of timecourse.csv (scenario-format.md)"})


def _table(arm: str, subjects: np.ndarray, time_h: np.ndarray, readouts: Mapping[str, np.ndarray], schema):
    import pyarrow as pa

    n, t = len(subjects), len(time_h)
    rows = n * t
    columns = [
        pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), pa.array([arm], pa.string())),
        pa.array(np.repeat(np.asarray(subjects, dtype=np.int64), t)),
        pa.array(np.tile(np.asarray(time_h, dtype=np.float64), n)),
    ]
    for name in pio.TIMECOURSE_READOUTS:
        columns.append(pa.array(np.ascontiguousarray(readouts[name], dtype=np.float64).reshape(rows)))
    return pa.Table.from_arrays(columns, schema=schema)


# ---------------------------------------------------------------------------
# One task: one block of one arm


@dataclass(frozen=True)
class BlockResult:
    """What a task returns to the driver (small: no time course)."""

    arm: int
    block: int
    subjects: int
    metrics: Mapping[str, np.ndarray]
    plot: Mapping[str, np.ndarray] | None
    warnings: tuple[str, ...]
    rows: int
    bytes: int


def part_name(arm: int, block: int) -> str:
    """``part-a<arm>-b<block>.parquet``: sorts in the CSV's row order."""
    return f"part-a{arm:04d}-b{block:07d}.parquet"


def block_population(scenario: Scenario, start: int, stop: int):
    """Subjects ``start + 1 .. stop`` of the scenario's population, drawn by counter (no full draw)."""
    s = scenario.subjects
    return sample_population(stop - start, seed=s.seed, variability=s.variability, weight_kg=s.weight_kg,
                             crcl_ml_min=s.crcl_ml_min, omega=dict(s.omega) or None,
                             correlation=dict(s.correlation) or None, first_subject=start + 1)


def run_block(scenario: Scenario, arm_index: int, block: int, grid: prun.EvaluationGrid, chunk: int,
              folder: str | None, plot: bool) -> BlockResult:
    """Simulate block ``block`` of arm ``arm_index``; write its Parquet file into ``folder`` (None: no file).

    Deterministic: the same arguments give the same numbers and the same file
    (written under a temporary name, then renamed over any earlier attempt).
    """
    arm = scenario.arms[arm_index]
    start, stop = block * prun.BLOCK_SUBJECTS, min((block + 1) * prun.BLOCK_SUBJECTS, scenario.subjects.n)
    pop = prun.arm_population(arm, block_population(scenario, start, stop))
    last_dose = prun._last_dose(arm, scenario.duration_h)
    warnings: list[str] = []
    values: dict[str, list[np.ndarray]] = {name: [] for name in metrics.METRIC_NAMES}
    keep = max(0, min(prun.PLOT_SUBJECTS - start, stop - start)) if plot else 0
    sample: dict[str, list[np.ndarray]] = {name: [] for name in prun.PLOT_READOUTS}
    kept = rows = 0
    writer = path = tmp = None
    try:
        if folder is not None:
            import pyarrow.parquet as pq

            schema = timecourse_schema()
            path = os.path.join(folder, part_name(arm_index, block))
            # a dot-name (readers skip it), unique per attempt: a task rerun after a lost worker never
            # shares it, and the rename puts a whole file in place
            tmp = os.path.join(folder, f".{part_name(arm_index, block)}.{uuid.uuid4().hex}.tmp")
            floats = [f.name for f in schema if f.name not in ("arm", "subject")]
            # byte-stream-split floats compress ~40 % better with zstd (measured on this model's output)
            writer = pq.ParquetWriter(tmp, schema, compression="zstd", use_dictionary=["arm", "subject"],
                                      use_byte_stream_split=floats)
        try:
            for res in prun.iter_blocks(scenario, arm, grid, pop, chunk, output=writer is not None):
                if writer is not None:
                    out = res.grids["output"]
                    table = _table(arm.name, res.subject_ids, out.time_h, out.readouts, schema)
                    writer.write_table(table, row_group_size=table.num_rows)
                    rows += table.num_rows
                    del table
                got = prun._chunk_metrics(arm.name, grid, res, last_dose, warnings)
                for name in metrics.METRIC_NAMES:
                    values[name].append(np.asarray(got[name], dtype=float))
                if kept < keep:
                    take = min(keep - kept, res.n_subjects)
                    for name in prun.PLOT_READOUTS:
                        sample[name].append(res.grids["summary"].readouts[name][:take].astype(np.float32))
                    kept += take
                del res
        except PkpdError as exc:
            where = scenario.source if len(scenario.arms) == 1 else f"{scenario.source}: arm '{arm.name}'"
            raise type(exc)(f"{where}: {exc}") from None
        if writer is not None:
            writer.close()
            writer = None
            os.replace(tmp, path)
            tmp = None
    finally:
        if writer is not None:
            writer.close()
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return BlockResult(
        arm=arm_index, block=block, subjects=stop - start,
        metrics={k: np.concatenate(v) for k, v in values.items()},
        plot={k: np.concatenate(v) for k, v in sample.items()} if keep else None,
        warnings=tuple(warnings), rows=rows, bytes=os.path.getsize(path) if path else 0,
    )


# ---------------------------------------------------------------------------
# Executing tasks: in process, or on a Dask client


class _Cluster:
    """The Dask client of a run: given, started (``workers``) or connected (``scheduler``); None in process."""

    def __init__(self, client=None, workers: int | None = None, scheduler: str | None = None):
        self.client, self._own, self._cluster = client, False, None
        if client is not None and (workers or scheduler):
            raise PkpdError("give a Dask client, or workers, or a scheduler address; not several")
        if workers and scheduler:
            raise PkpdError("--workers and --scheduler: give one of them (a running cluster has its own workers)")
        if workers:
            require("--workers", dask=True)
            from distributed import Client, LocalCluster

            self._cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                         dashboard_address=":0")
            self.client, self._own = Client(self._cluster), True
        elif scheduler:
            require("--scheduler", dask=True)
            from distributed import Client

            try:
                self.client, self._own = Client(scheduler, timeout="10s"), True
            except (OSError, TimeoutError) as exc:
                raise PkpdError(f"--scheduler {scheduler}: cannot connect ({type(exc).__name__}: {exc})") from None

    @property
    def workers(self) -> int:
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def close(self) -> None:
        if self._own:
            self.client.close()
            if self._cluster is not None:
                self._cluster.close()


def _execute(cluster: _Cluster, tasks: Sequence[tuple], on_result: Callable[[Any], None],
             progress: Callable[[int, int], None] | None, weight: Sequence[int], fn: Callable = None) -> None:
    """Run ``fn(*task)`` (default :func:`run_block`) for every task; ``on_result`` gets each result, in
    any order; ``progress(done, total)`` counts the tasks' weights.

    On a client, at most ``2 x workers + 2`` tasks are in flight (the
    driver's memory stays bounded); each may be retried twice (a lost
    worker); on any error or Ctrl-C the outstanding ones are cancelled.
    """
    fn = run_block if fn is None else fn
    total, done = sum(weight), 0
    if cluster.client is None:
        for task, w in zip(tasks, weight):
            on_result(fn(*task))
            done += w
            if progress is not None:
                progress(done, total)
        return
    from distributed import as_completed

    client = cluster.client
    limit = 2 * cluster.workers + 2
    todo = iter(zip(tasks, weight))
    sizes: dict[str, int] = {}
    inflight: dict[str, Any] = {}

    def submit(item):
        task, w = item
        fut = client.submit(fn, *task, pure=False, retries=2)
        sizes[fut.key] = w
        inflight[fut.key] = fut
        return fut

    queue = as_completed([submit(item) for item in itertools.islice(todo, limit)])
    try:
        for fut in queue:
            on_result(fut.result())
            inflight.pop(fut.key, None)
            done += sizes.pop(fut.key)
            fut.release()
            nxt = next(todo, None)
            if nxt is not None:
                queue.add(submit(nxt))
            if progress is not None:
                progress(done, total)
    except BaseException:
        try:
            client.cancel(list(inflight.values()))
        except Exception:  # pragma: no cover - cancelling must not hide the error
            pass
        raise


class BlockProgress:
    """``progress(done, total)`` for a terminal: a :class:`pkpd.progress.ProgressBar` whose label counts
    blocks done and the rate in subjects per second (the bar gives the time left)."""

    def __init__(self, bar, scenario: Scenario, clock=time.monotonic):
        self.bar, self.label, self.clock = bar, bar.label, clock
        self.total_blocks = len(prun.blocks(scenario.subjects.n)) * len(scenario.arms)
        self.blocks, self.start = 0, clock()

    def __call__(self, done: int, total: int) -> None:
        self.blocks += 1
        rate = done / max(self.clock() - self.start, 1e-9)
        self.bar.label = f"{self.label} {self.blocks}/{self.total_blocks} blocks, {rate:,.0f} subjects/s"
        self.bar(done, total)


# ---------------------------------------------------------------------------
# A run


@dataclass(frozen=True)
class ParquetRun:
    """What :func:`run_parquet` returns.

    Attributes
    ----------
    result : pkpd.run.RunResult
        The summary (per-subject metrics of every subject, figure sample);
        ``result.summary_rows()`` are the rows of ``summary.csv``.
    folder, dataset_path, summary, figure : str
        Where the files are (``figure`` None without a figure).
    bytes : int
        Size of the dataset on disk.
    seconds : float
        Wall time of the run.
    """

    result: prun.RunResult
    folder: str
    dataset_path: str
    summary: str
    figure: str | None
    bytes: int
    seconds: float

    def dataset(self):
        """The time courses as a :class:`pyarrow.dataset.Dataset` (lazy: nothing read yet)."""
        import pyarrow.dataset as ds

        return ds.dataset(self.dataset_path, format="parquet")


def _assemble(scenario: Scenario, p: prun.Plan, results: Mapping[tuple[int, int], BlockResult], plot: bool):
    """A RunResult from the blocks' results, in block order (metrics as in the in-process run)."""
    outcomes, warnings = [], []
    nb = len(prun.blocks(scenario.subjects.n))
    for a, (arm, grid) in enumerate(zip(scenario.arms, p.grids)):
        parts = [results[(a, b)] for b in range(nb)]
        for part in parts:
            for w in part.warnings:
                if w not in warnings:
                    warnings.append(w)
        sample = [part.plot for part in parts if part.plot is not None]
        outcomes.append(prun.ArmOutcome(
            name=arm.name, n_subjects=scenario.subjects.n,
            metrics={k: np.concatenate([part.metrics[k] for part in parts]) for k in metrics.METRIC_NAMES},
            last_dose_h=prun._last_dose(arm, scenario.duration_h), interval=grid.interval,
            plot={k: np.concatenate([s[k] for s in sample]) for k in prun.PLOT_READOUTS} if plot else None,
        ))
    return prun.RunResult(scenario, tuple(outcomes), p.grids[0].summary_time_h, p.rows, tuple(warnings))


def _tasks(scenario: Scenario, p: prun.Plan, folder: str | None, plot: bool):
    chunk = min(p.chunk, prun.BLOCK_SUBJECTS)
    tasks, weight = [], []
    for a, grid in enumerate(p.grids):
        for b, (start, stop) in enumerate(prun.blocks(scenario.subjects.n)):
            tasks.append((scenario, a, b, grid, chunk, folder, plot))
            weight.append(stop - start)
    return tasks, weight


def run_parquet(
    scenario: Scenario,
    folder: str | os.PathLike | None = None,
    *,
    client=None,
    workers: int | None = None,
    scheduler: str | None = None,
    plot: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> ParquetRun:
    """Run ``scenario``; write ``timecourse.parquet/``, ``summary.csv`` and ``figure.png`` into ``folder``.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario.
    folder : path, optional
        Output folder (default :func:`pkpd.run.default_output_folder`).
    client : distributed.Client, optional
        Run on this client's cluster.
    workers : int, optional
        Start a local Dask cluster of this many worker processes for the run
        (closed after it).
    scheduler : str, optional
        Address of a running scheduler (``tcp://HOST:PORT``).  The workers
        write the dataset's files themselves: ``folder`` must be a path they
        can all write (the same machine, or a shared file system).
    plot : bool
        Draw ``figure.png``.
    progress : callable, optional
        ``progress(done, total)`` in subject-arms, as each block finishes.

    Without ``client``, ``workers`` or ``scheduler`` the blocks run one after
    the other in this process (pyarrow only).  The numbers are the same in
    every case (see the module's notes).

    Raises
    ------
    MissingExtraError
        pyarrow (or dask.distributed, for a cluster) is not installed.
    ResourceError, PkpdError
        As :func:`pkpd.run.run_to_folder`.
    """
    require("--format parquet", dask=bool(client is not None or workers or scheduler))
    t0 = time.perf_counter()
    folder = prun.default_output_folder(scenario) if folder is None else os.fspath(folder)
    p = prun.plan(scenario, plot=plot)
    prun.check_disk(folder, p.csv_bytes / 4, DATASET_DIR)  # Parquet (zstd) is several times smaller than CSV
    created = prun._make_folder(folder)
    tmp_dir = None
    cluster = None
    try:
        tmp_dir = tempfile.mkdtemp(prefix=f".{DATASET_DIR}.", dir=folder)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_dir, 0o777 & ~umask)
        cluster = _Cluster(client, workers, scheduler)
        tasks, weight = _tasks(scenario, p, os.path.abspath(tmp_dir), plot)
        results: dict[tuple[int, int], BlockResult] = {}
        size = [0]

        def keep(r: BlockResult):
            results[(r.arm, r.block)] = r
            size[0] += r.bytes

        _execute(cluster, tasks, keep, progress, weight)
        result = _assemble(scenario, p, results, plot)
        for name in os.listdir(tmp_dir):  # what a lost worker left half-written
            if name.startswith("."):
                os.unlink(os.path.join(tmp_dir, name))
        paths = _commit(folder, tmp_dir, result, plot)
        tmp_dir = None
    except OSError as exc:
        raise PkpdError(prun._os_message(exc, folder)) from None
    finally:
        if cluster is not None:
            cluster.close()
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            if created:
                prun._remove_empty(folder)
    return ParquetRun(result, folder, paths[0], paths[1], paths[2], size[0], time.perf_counter() - t0)


def _commit(folder: str, tmp_dir: str, result: prun.RunResult, plot: bool) -> tuple[str, str, str | None]:
    """Write summary.csv and figure.png under temporary names, then put all three in place."""
    dataset = os.path.join(folder, DATASET_DIR)
    summary = os.path.join(folder, pio.SUMMARY_FILE)
    figure = os.path.join(folder, pio.FIGURE_FILE)
    pending = []
    try:
        f = pio.AtomicFile(summary, "w", autocommit=False)
        pending.append(f)
        f.write(pio.format_summary(result.summary_rows()))
        if plot:
            from . import plotting

            f = pio.AtomicFile(figure, "wb", autocommit=False)
            pending.append(f)
            plotting.plot_run(result, f.file)
        old = None
        if os.path.lexists(dataset):
            old = tempfile.mkdtemp(prefix=f".{DATASET_DIR}.old.", dir=folder)
            os.replace(dataset, os.path.join(old, DATASET_DIR))
        os.replace(tmp_dir, dataset)
        for f in pending:
            f.commit()
        pending = []
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        if not plot:
            pio.remove_file(figure)
    except BaseException:
        for f in pending:
            try:
                f.abort()
            except OSError:
                pass
        raise
    return dataset, summary, figure if plot else None


# ---------------------------------------------------------------------------
# Sweeps

#: Grid keys that set a fixed covariate in every arm (and their arm field).
COVARIATE_KEYS = {"CrCl": "crcl_ml_min", "crcl_ml_min": "crcl_ml_min", "WT": "weight_kg", "weight_kg": "weight_kg"}


def apply_point(scenario: Scenario, point: Mapping[str, float]) -> Scenario:
    """``scenario`` at one grid point: covariates (``CrCl``, ``WT``) fixed in every arm, other
    names as typical parameter values of every arm (:meth:`pkpd.Parameters.replace`)."""
    arms = []
    for arm in scenario.arms:
        cov = {COVARIATE_KEYS[k]: float(v) for k, v in point.items() if k in COVARIATE_KEYS}
        par = {k: float(v) for k, v in point.items() if k not in COVARIATE_KEYS}
        arms.append(replace(arm, parameters=arm.parameters.replace(**par) if par else arm.parameters, **cov))
    return replace(scenario, arms=tuple(arms))


@dataclass(frozen=True)
class SweepResult:
    """What :func:`sweep` returns.

    ``rows`` hold, per grid point and arm, the point's values, the arm, and
    the median, p05 and p95 of every metric (the columns of ``sweep.csv``).
    ``results`` are the points' RunResults, in grid order.
    """

    keys: tuple[str, ...]
    points: tuple[Mapping[str, Any], ...]
    results: tuple[prun.RunResult, ...]
    metric: str
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    files: tuple[str, ...]
    seconds: float


def sweep(
    scenario: Scenario,
    grid: Mapping[str, Sequence[Any]],
    *,
    build: Callable[..., Scenario] | None = None,
    metric: str = "peak_rebound_excitability",
    folder: str | os.PathLike | None = None,
    client=None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Run ``scenario`` at every point of ``grid`` (the product of its value lists) as one job.

    Parameters
    ----------
    grid : mapping of str to list
        E.g. ``{"CrCl": [30, 60, 90], "taper_days": [0, 7, 14]}``.
    build : callable, optional
        ``build(scenario, **point) -> Scenario`` makes the scenario of one
        point (regimen settings such as a taper length need it); default
        :func:`apply_point` (covariates and typical parameter values).
    metric : str
        The metric of ``sweep.png`` (:data:`pkpd.metrics.METRIC_NAMES`).
    folder : path, optional
        Write ``sweep.csv`` (one row per point and arm) and ``sweep.png``.
    client, workers, scheduler, progress
        As :func:`run_parquet`.  No time course is written: only the
        per-subject metrics travel back.

    Every point's summary equals ``run(build(scenario, **point))``'s.
    """
    if metric not in metrics.METRIC_NAMES:
        raise PkpdError(f"metric: must be one of {', '.join(metrics.METRIC_NAMES)}; got {metric!r}")
    keys = tuple(grid)
    if not keys or any(len(grid[k]) == 0 for k in keys):
        raise PkpdError("grid: give at least one name with at least one value")
    make = build or (lambda sc, **pt: apply_point(sc, pt))
    points = tuple(dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys)))
    scenarios = [make(scenario, **pt) for pt in points]
    plans = [prun.plan(sc, plot=False) for sc in scenarios]
    t0 = time.perf_counter()
    tasks, weight = [], []
    for i, (sc, p) in enumerate(zip(scenarios, plans)):
        t, w = _tasks(sc, p, None, False)
        tasks += [(i, *task) for task in t]  # tagged with the point
        weight += w
    by_point: list[dict] = [{} for _ in points]

    def keep(item):
        i, r = item
        by_point[i][(r.arm, r.block)] = r

    cluster = _Cluster(client, workers, scheduler)
    try:
        _execute(cluster, tasks, keep, progress, weight, _run_tagged)
    finally:
        cluster.close()
    results = tuple(_assemble(sc, p, by_point[i], False) for i, (sc, p) in enumerate(zip(scenarios, plans)))
    columns = keys + ("arm",) + tuple(f"{m}_{s}" for m in metrics.METRIC_NAMES for s in ("median", "p05", "p95"))
    rows = []
    for pt, res in zip(points, results):
        for arm in res.arms:
            stats = []
            for m in metrics.METRIC_NAMES:
                stats += list(metrics.population_summary(arm.metrics[m]))
            rows.append(tuple(pt[k] for k in keys) + (arm.name,) + tuple(stats))
    out = SweepResult(keys, points, results, metric, columns, tuple(rows), (), time.perf_counter() - t0)
    if folder is not None:
        out = replace(out, files=_write_sweep(os.fspath(folder), out))
    return out


def _run_tagged(point: int, *task):
    """:func:`run_block`, its result tagged with the sweep's grid point."""
    return point, run_block(*task)


def _format_cell(v) -> str:
    if isinstance(v, str):
        return pio._csv_text(v)
    if isinstance(v, float):
        return "" if not math.isfinite(v) else pio.NUMBER_FORMAT % v
    return str(v)


def _write_sweep(folder: str, out: SweepResult) -> tuple[str, str]:
    prun._make_folder(folder)
    csv_path = os.path.join(folder, SWEEP_FILE)
    png_path = os.path.join(folder, SWEEP_FIGURE)
    text = ",".join(out.columns) + "\n" + "".join(",".join(_format_cell(v) for v in row) + "\n" for row in out.rows)

    def figure(f):
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        info = next(m for m in metrics.METRICS if m.name == out.metric)
        fig = Figure(figsize=(7, 4.5))
        ax = fig.add_subplot()
        first = out.keys[0]
        xs = sorted({pt[first] for pt in out.points}, key=lambda v: (isinstance(v, str), v))
        others = out.keys[1:]
        arms = [a.name for a in out.results[0].arms]
        groups = sorted({tuple(pt[k] for k in others) for pt in out.points})
        for arm_i, arm in enumerate(arms):
            for g in groups:
                med, lo, hi = [], [], []
                for x in xs:
                    i = next(i for i, pt in enumerate(out.points) if pt[first] == x and tuple(pt[k] for k in others) == g)
                    m, p5, p95 = metrics.population_summary(out.results[i].arms[arm_i].metrics[out.metric])
                    med.append(m), lo.append(p5), hi.append(p95)
                label = ", ".join([*(f"{k}={v}" for k, v in zip(others, g)), *([arm] if len(arms) > 1 else [])])
                line, = ax.plot(xs, med, marker="o", label=label or None)
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set_xlabel(first)
        ax.set_ylabel(f"{info.label} ({info.unit})" if info.unit not in ("", "1") else info.label)
        ax.set_title(f"{out.metric}: median and 5th-95th percentiles across the grid", fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        fig.text(0.01, 0.01, "Teaching model only: not dosing advice.", fontsize=7)
        fig.savefig(f, format="png", dpi=110)

    prun.write_together(folder, [(csv_path, "w", lambda f: f.write(text)), (png_path, "wb", lambda f: figure(f.file))])
    return csv_path, png_path
