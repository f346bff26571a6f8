"""Run a scenario: every arm, every subject, in chunks; metrics and files.

:func:`run` simulates a validated :class:`~pkpd.scenario.Scenario` arm by
arm.  The same subjects (one seeded population) go through every arm, with
the arm's fixed covariates, if any, replacing their own.  Subjects are
simulated in chunks so memory stays bounded whatever their number: each
chunk's per-subject metrics are computed as soon as it is simulated, its
time course is then handed on (to be written on another thread), and only
the per-subject metrics and a sample for the figure are kept; the
population summary (medians, percentiles) is computed from those at the end.

Each chunk is evaluated on one time grid that joins three sets of times:

* the scenario's output grid (what ``timecourse.csv`` holds);
* a *summary grid* that depends only on the run's length (every 0.5 h for
  runs of ten days or more, finer for short runs), from which the metrics
  and the figure are computed, so they do not depend on ``output_step_h``
  (it holds :data:`METRIC_READOUTS`, and :data:`PLOT_READOUTS` too only
  where the figure's sample is taken);
* a fine uniform grid (0.05 h or finer, :func:`pkpd.metrics.nca_times`)
  over the NCA window (the last dosing interval, or the window after a
  single dose), for Cmax, Tmax, Cmin and the AUC by Simpson's rule.

Every statistic comes from :mod:`pkpd.metrics`.

:func:`run_to_folder` adds the files of ``scenario-format.md``: it checks
memory and disk space first, writes each file under a temporary name in the
output folder and renames the three together at the end, so a folder never
holds a partial file or a mix of two runs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from . import files as pio
from . import metrics
from .errors import PkpdError, ResourceError
from .scenario import Arm, Scenario
from . import resources
from .resources import check_disk
from .simulate import Grid, SaveAt, iter_chunks, output_times

#: Readouts the metrics read on the summary grid (all a run without a figure saves there).
METRIC_READOUTS = metrics.SUBJECT_READOUTS
#: Readouts the metrics and the figure read on the summary grid.
SUMMARY_READOUTS = ("plasma_mg_per_l", "csf_mg_per_l", "occupancy", "receptor_density", "adaptation",
                    "excitability", "cns_depression", "lumbar_csf_mg_per_l", "biophase_mg_per_l")

#: Readouts kept for the figure.
PLOT_READOUTS = (
    "plasma_mg_per_l",
    "csf_mg_per_l",
    "occupancy",
    "receptor_density",
    "adaptation",
    "excitability",
    "lumbar_csf_mg_per_l",  # the CSF panel draws these two apart (pkpd.model.EXTRA_READOUTS)
    "biophase_mg_per_l",
)
#: Subjects per arm kept for the figure's median and 90 % band (the first
#: ones: subject i depends only on the seed and i, so they are a random
#: sample of the population).
PLOT_SUBJECTS = 500
#: Step of the summary grid, h, for runs long enough (see :func:`summary_step_h`).
SUMMARY_STEP_H = 0.5
#: Points the summary grid has at least (short runs get a finer step).
SUMMARY_MIN_POINTS = 480
#: Points the summary grid has at most (very long runs get a coarser step).
SUMMARY_MAX_POINTS = 200_000
#: Step of the fine NCA grid, h (at most; :func:`pkpd.metrics.nca_times`).
INTERVAL_STEP_H = metrics.NCA_STEP_H
#: Most output times one run may write (an absurd output_step_h is refused).
MAX_OUTPUT_TIMES = 1e8
#: Largest chunk of subjects simulated at once (bigger chunks amortise the
#: solver's per-step overhead; beyond a few thousand nothing is gained).
MAX_CHUNK = 4096
#: Most subjects per chunk with the compiled engine (numba): its time per
#: subject is the same in chunks of 512 as of 4096, and a chunk's arrays (about
#: 30 MB with the summary grid of a 28-day run) are then reused by the
#: allocator instead of page-faulted afresh for every chunk (measured, 10,000
#: subjects of standard-population: 0.90 s of CPU against 1.12 s in chunks of
#: 4096).  The NumPy engine keeps the larger chunks: its per-step overhead is
#: per chunk (5.3 s in chunks of 1024 against 4.2 s in chunks of 4096).
COMPILED_CHUNK = 512
#: Subjects of one work unit (a *block*): subjects 1..4096, 4097..8192, ...
#: of the population.  Each block is simulated by its own
#: :func:`~pkpd.simulate.iter_chunks` call (its own integration grid), in
#: the in-process run as in the distributed one (:mod:`pkpd.distributed`), so
#: a subject's numbers are the same, bit for bit, whichever path runs it and
#: however the blocks are spread over processes.  The integration grid is
#: planned per call from that call's subjects (their lag times, their fastest
#: rate), so the block, not the chunk, must be fixed; within a block the
#: chunk size changes nothing (tested).
BLOCK_SUBJECTS = 4096
#: Expected bytes per number in timecourse.csv (for the disk-space check).
CSV_BYTES_PER_NUMBER = 14


# ---------------------------------------------------------------------------
# Evaluation grid


def summary_step_h(duration_h: float) -> float:
    """Step of the summary grid, h: 0.5 h, finer so a short run gets >= 480 points.

    The steps are 0.5, 0.25, 0.1, 0.05, 0.025, 0.01 h, so that they usually
    coincide with the output grid and add no integration nodes.  Runs longer
    than 100,000 h (11 years) get 1, 2, 4, ... h so the grid stays below
    200,000 points.
    """
    for step in (0.5, 0.25, 0.1, 0.05, 0.025, 0.01):
        if duration_h / step >= SUMMARY_MIN_POINTS:
            break
    while duration_h / step > SUMMARY_MAX_POINTS:
        step *= 2.0
    return step


@dataclass(frozen=True)
class EvaluationGrid:
    """The times at which one arm is evaluated, and which serve what.

    Attributes
    ----------
    output_time_h : ndarray (To,)
        The scenario's output grid, exactly as written to the CSV, h.
    summary_time_h : ndarray (Ts,)
        The summary grid (metrics and figure), h.
    interval : (float, float) or None
        The window of the NCA metrics, h: the last dosing interval, or the
        window after a single dose (:attr:`pkpd.metrics.Dosing.nca_window`).
    interval_time_h : ndarray (Ti,) or None
        :func:`pkpd.metrics.nca_times` over ``interval``, h.
    dosing : pkpd.metrics.Dosing or None
        What of the arm's dosing the metrics need.
    """

    output_time_h: np.ndarray
    summary_time_h: np.ndarray
    interval: tuple[float, float] | None = None
    interval_time_h: np.ndarray | None = None
    dosing: metrics.Dosing | None = None

    def save_at(self, *, output: bool, plot: bool = True) -> SaveAt:
        """What a chunk saves: the CSV readouts on the output grid (when written),
        the metric readouts on the summary grid (and the figure's, with ``plot``),
        plasma on the NCA grid.

        The readouts saved do not change one another's values (each is computed
        from the same states), so a chunk without the figure's readouts has the
        same metrics, bit for bit, and saves about half as much.
        """
        grids = {"summary": Grid(self.summary_time_h, SUMMARY_READOUTS if plot else METRIC_READOUTS)}
        if output:
            grids["output"] = Grid(self.output_time_h, pio.TIMECOURSE_READOUTS)
        if self.interval_time_h is not None:
            grids["interval"] = Grid(self.interval_time_h, ("plasma_mg_per_l",))
        return SaveAt(**grids)

    @property
    def n_times(self) -> int:
        """Distinct evaluation times (an upper bound: the grids overlap)."""
        return sum(g.size for g in (self.output_time_h, self.summary_time_h, self.interval_time_h) if g is not None)


def evaluation_grid(
    duration_h: float, output_step_h: float, interval: "metrics.Dosing | tuple[float, float] | None" = None
) -> EvaluationGrid:
    """The output grid, the summary grid and the fine NCA grid of one arm.

    ``interval`` is the arm's :class:`pkpd.metrics.Dosing` (from
    :func:`_interval`), or just an NCA window ``(start_h, end_h)``.
    """
    dosing = interval if isinstance(interval, metrics.Dosing) else None
    win = dosing.nca_window if dosing is not None else interval
    return EvaluationGrid(
        output_time_h=output_times(duration_h, output_step_h),
        summary_time_h=output_times(duration_h, summary_step_h(duration_h)),
        interval=win,
        interval_time_h=None if win is None else metrics.nca_times(*win, step_h=INTERVAL_STEP_H),
        dosing=dosing,
    )


# ---------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class ArmOutcome:
    """What one arm produced (besides its rows in ``timecourse.csv``).

    Attributes
    ----------
    name : str
        The arm's name.
    n_subjects : int
        Subjects simulated.
    metrics : dict of str to ndarray (N,)
        Per-subject metrics (:data:`pkpd.metrics.METRICS`, their units).
    last_dose_h : float or None
        The last dose or infusion stop when the run continues into a washout
        after it (:attr:`pkpd.metrics.Dosing.washout_h`), h; None when
        dosing runs to the end of the run.
    interval : (float, float) or None
        The window of the NCA metrics, h (last dosing interval or single dose).
    plot : dict of str to ndarray (K, Ts) or None
        :data:`PLOT_READOUTS` of the first K subjects on the summary grid
        (float32), when asked for.
    """

    name: str
    n_subjects: int
    metrics: Mapping[str, np.ndarray]
    last_dose_h: float | None
    interval: tuple[float, float] | None
    plot: Mapping[str, np.ndarray] | None = None


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` returns.

    Attributes
    ----------
    scenario : Scenario
        The scenario run.
    arms : tuple of ArmOutcome
        One per arm, in file order.
    summary_time_h : ndarray (Ts,)
        The summary grid, h (the time axis of ``ArmOutcome.plot``).
    rows : int
        Rows of ``timecourse.csv`` produced.
    warnings : tuple of str
        Problems that did not stop the run (e.g. a metric left empty).
    """

    scenario: Scenario
    arms: tuple[ArmOutcome, ...]
    summary_time_h: np.ndarray
    rows: int
    warnings: tuple[str, ...] = ()

    def table(self) -> str:
        """The summary as a short text table: one row per metric with its unit, the median per arm.

        ``-`` marks a metric that does not apply or is missing for some subjects
        (see :attr:`warnings`).
        """
        names = [a.name for a in self.arms]
        width = [max(len(n), 9) for n in names]
        label_w = max(len(m.label) for m in metrics.METRICS)
        unit_w = max(len(m.unit) for m in metrics.METRICS)
        lines = ["  ".join([" " * label_w, "unit".ljust(unit_w)] + [n.rjust(w) for n, w in zip(names, width)])]
        for info in metrics.METRICS:
            cells = []
            for arm, w in zip(self.arms, width):
                med = metrics.population_summary(arm.metrics[info.name])[0]
                cells.append(("-" if not math.isfinite(med) else f"{med:.4g}").rjust(w))
            lines.append("  ".join([info.label.ljust(label_w), info.unit.ljust(unit_w)] + cells))
        return "\n".join(line.rstrip() for line in lines)

    def summary_rows(self) -> list[tuple[str, str, str, float, float, float]]:
        """Rows of ``summary.csv``: (arm, metric, unit, median, p05, p95).

        :func:`pkpd.metrics.population_summary` of each metric: nan (an empty
        cell) where the metric does not apply or some subject lacks it.
        """
        rows = []
        for arm in self.arms:
            for info in metrics.METRICS:
                rows.append((arm.name, info.name, info.unit, *metrics.population_summary(arm.metrics[info.name])))
        return rows


# ---------------------------------------------------------------------------
# Memory


@dataclass(frozen=True)
class Plan:
    """How a run will be carried out, decided before it starts.

    Attributes
    ----------
    grids : tuple of EvaluationGrid
        One per arm.
    chunk : int
        Subjects simulated at once.
    memory_bytes : float
        Estimated peak memory of the run, bytes.
    rows : int
        Rows of ``timecourse.csv``.
    csv_bytes : float
        Estimated size of ``timecourse.csv``, bytes.
    """

    grids: tuple[EvaluationGrid, ...]
    chunk: int
    memory_bytes: float
    rows: int
    csv_bytes: float


def _interval(arm: Arm, duration_h: float) -> metrics.Dosing:
    """What of the arm's dosing the metrics need: NCA window, washout (:func:`pkpd.metrics.describe_dosing`)."""
    times, _, _ = arm.regimen.dose_events(duration_h)
    return metrics.describe_dosing(times, duration_h, [(i.start_h, i.stop_h) for i in arm.regimen.infusions])


def _last_dose(arm: Arm, duration_h: float) -> float | None:
    """The last dose or infusion stop when a washout follows it, h (None when dosing runs to the end)."""
    return _interval(arm, duration_h).washout_h


def plan(scenario: Scenario, *, plot: bool = True, available_bytes: float | None = None) -> Plan:
    """Grids, chunk size and resource estimates for a run (:mod:`pkpd.resources`).

    Raises
    ------
    ResourceError
        When the run cannot fit in memory even one subject at a time, or
        schedules absurdly many events; the message gives the estimate.
    """
    n = scenario.subjects.n
    n_out_guess = scenario.duration_h / scenario.output_step_h + 2
    if n_out_guess > MAX_OUTPUT_TIMES:  # refuse an absurd output grid before building it
        raise ResourceError(
            f"{scenario.source}: output_step_h {scenario.output_step_h:g} over duration_h {scenario.duration_h:g} "
            f"gives about {n_out_guess:.3g} output times, more than the {MAX_OUTPUT_TIMES:.0e} a run may write; "
            "use a coarser output_step_h"
        )
    grids = tuple(
        evaluation_grid(scenario.duration_h, scenario.output_step_h, _interval(arm, scenario.duration_h))
        for arm in scenario.arms
    )
    n_summary = grids[0].summary_time_h.size
    n_out = max(g.output_time_h.size for g in grids)
    # streamed per subject: every evaluation time's states and readouts, and its CSV rows
    streamed = max(g.n_times for g in grids) * (len(SUMMARY_READOUTS if plot else METRIC_READOUTS) + 8) + n_out * len(pio.TIMECOURSE_READOUTS)
    # kept per subject to the end: metrics of every arm, the population, the figure sample
    kept = len(scenario.arms) * len(metrics.METRICS) + 16
    if plot:
        kept += len(scenario.arms) * n_summary * len(PLOT_READOUTS) * 0.5 * min(1.0, PLOT_SUBJECTS / n)
    events = max(arm.regimen.event_count(scenario.duration_h) for arm in scenario.arms)
    est = resources.estimate(n_subjects=n, kept_values_per_subject=kept, streamed_values_per_subject=streamed,
                             events_per_subject=events, nodes=scenario.duration_h / 0.5 + max(g.n_times for g in grids),
                             chunk=MAX_CHUNK, available_bytes=available_bytes)
    try:
        resources.check(est, available_bytes=available_bytes,
                        detail=f"{n} subjects x {len(scenario.arms)} arms, {n_out} output times")
    except ResourceError as exc:
        raise ResourceError(f"{scenario.source}: {exc}") from None
    chunk = est.chunk
    if _compiled_engine(min(n, BLOCK_SUBJECTS), scenario.duration_h / 0.5 + max(g.n_times for g in grids)):
        chunk = min(chunk, COMPILED_CHUNK)
    rows = len(scenario.arms) * n * n_out
    width = len(max((a.name for a in scenario.arms), key=len)) + len(str(n)) + 3
    csv_bytes = rows * (width + (len(pio.TIMECOURSE_COLUMNS) - 2) * CSV_BYTES_PER_NUMBER)
    return Plan(grids, chunk, est.memory_bytes, rows, float(csv_bytes))


def _compiled_engine(n_block: int, nodes: float) -> bool:
    """Whether the blocks will likely run on the compiled engine (:func:`pkpd.kernel.choose`, as
    :func:`pkpd.simulate.iter_chunks` asks it).  Only the chunk size depends on the answer, and the
    numbers do not depend on the chunk size."""
    from . import kernel

    try:
        return kernel.choose(None, float(n_block) * nodes, int(nodes)) == "numba"
    except PkpdError:  # a bad $PKPD_ENGINE, numba missing: the run says so, naming the scenario
        return False


# ---------------------------------------------------------------------------
# The run


def run(
    scenario: Scenario,
    *,
    timecourse: Callable[[bytes], object] | None = None,
    plot: bool = False,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int | None = None,
    plan_: Plan | None = None,
) -> RunResult:
    """Simulate every arm of ``scenario`` for all its subjects.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario (:func:`pkpd.scenario.load_scenario`).
    timecourse : callable, optional
        Receives the rows of ``timecourse.csv`` (UTF-8 bytes, no header), in
        file order, chunk by chunk; None skips formatting them.
    plot : bool
        Keep a sample of each arm's readouts for the figure.
    progress : callable, optional
        ``progress(done, total)`` after each chunk, counted in subject-arms.
    chunk_size : int, optional
        Most subjects per chunk (default: from the memory plan); each block
        is cut into equal chunks (:func:`even_chunk`).  The numbers do not
        depend on it.
    plan_ : Plan, optional
        A plan already made by :func:`plan`.

    Returns
    -------
    RunResult

    Raises
    ------
    ResourceError
        The run cannot fit in memory (before anything is simulated).
    PkpdError
        Any other problem the inputs cause (e.g. :class:`SolverError`).
    """
    p = plan(scenario, plot=plot) if plan_ is None else plan_
    chunk = p.chunk if chunk_size is None else int(chunk_size)
    subj = scenario.subjects
    n = subj.n
    population = subj.population()
    worker = _ChunkWorker(timecourse)
    try:
        outcomes, warnings = [], []
        for arm, grid in zip(scenario.arms, p.grids):
            outcomes.append(_run_arm(scenario, arm, grid, population, chunk, worker, plot, warnings, progress,
                                     len(outcomes) * n))
    finally:
        worker.close()
    return RunResult(scenario, tuple(outcomes), p.grids[0].summary_time_h, p.rows, tuple(warnings))


def _run_arm(scenario, arm, grid, population, chunk, worker, plot, warnings, progress, done) -> ArmOutcome:
    """All subjects of one arm, chunk by chunk: each chunk's metrics and time-course rows are
    made by ``worker`` while the next chunk is simulated."""
    n = population.n
    total = n * len(scenario.arms)
    pop = arm_population(arm, population)
    last_dose = _last_dose(arm, scenario.duration_h)
    per_chunk = []  # each chunk's metrics (futures, in order)
    sample: dict[str, list[np.ndarray]] = {name: [] for name in PLOT_READOUTS}
    kept = 0
    chunks = iter_blocks(scenario, arm, grid, pop, chunk, output=worker.writes, plot=plot)
    while True:
        try:
            res = next(chunks, None)
        except PkpdError as exc:  # name the file and the arm
            where = scenario.source if len(scenario.arms) == 1 else f"{scenario.source}: arm '{arm.name}'"
            raise type(exc)(f"{where}: {exc}") from None
        if res is None:
            break
        per_chunk.append(worker.submit(arm.name, grid, res, last_dose, warnings))
        if plot and kept < PLOT_SUBJECTS:
            take = min(PLOT_SUBJECTS - kept, res.n_subjects)
            for name in PLOT_READOUTS:
                sample[name].append(res.grids["summary"].readouts[name][:take].astype(np.float32))
            kept += take
        done += res.n_subjects
        del res
        if progress is not None:
            progress(done, total)
    values = worker.results(per_chunk)
    return ArmOutcome(
        name=arm.name,
        n_subjects=n,
        metrics={k: np.concatenate([v[k] for v in values]) for k in metrics.METRIC_NAMES},
        last_dose_h=last_dose,
        interval=grid.interval,
        plot={k: np.concatenate(v) for k, v in sample.items()} if plot else None,
    )


def blocks(n: int) -> list[tuple[int, int]]:
    """The work units of ``n`` subjects: ``(start, stop)`` 0-based index ranges of :data:`BLOCK_SUBJECTS`."""
    return [(start, min(start + BLOCK_SUBJECTS, n)) for start in range(0, n, BLOCK_SUBJECTS)]


def arm_population(arm: Arm, population):
    """``population`` with the arm's fixed covariates, if any, replacing the subjects' own."""
    if arm.weight_kg is not None or arm.crcl_ml_min is not None:
        return population.with_covariates(weight_kg=arm.weight_kg, crcl_ml_min=arm.crcl_ml_min)
    return population


def iter_blocks(scenario: Scenario, arm: Arm, grid: EvaluationGrid, population, chunk: int, *, output: bool,
                plot: bool = True):
    """The chunks of one arm, block by block (:data:`BLOCK_SUBJECTS`): ``population`` is cut at
    the block boundaries of its subject numbers and each block planned on its own.

    The summary grid holds the figure's readouts (:data:`PLOT_READOUTS`) only
    with ``plot`` and only in blocks that begin among the first
    :data:`PLOT_SUBJECTS` subjects of ``population`` (the figure's sample);
    elsewhere just :data:`METRIC_READOUTS`, which are the same either way.
    """
    ids = np.asarray(population.subject_ids)
    cuts = (np.flatnonzero((ids[1:] - 1) % BLOCK_SUBJECTS == 0) + 1).tolist()
    edges = [0, *cuts, ids.size]
    for start, stop in zip(edges[:-1], edges[1:]):
        part = population if (start, stop) == (0, ids.size) else population.subset(slice(start, stop))
        save = grid.save_at(output=output, plot=plot and start < PLOT_SUBJECTS)
        yield from iter_chunks(arm.regimen, duration_h=scenario.duration_h, parameters=arm.parameters,
                               population=part, save=save, chunk_size=even_chunk(stop - start, chunk))


def even_chunk(size: int, chunk: int) -> int:
    """Subjects per chunk for a block of ``size``: at most ``chunk`` (and :data:`BLOCK_SUBJECTS`),
    in as few chunks as that allows, of equal sizes (1808 subjects in chunks of at most 512: 4 of
    452, not 3 of 512 and one of 272).  A small last chunk would cost as much per integration
    step as a full one, and one below :data:`pkpd.kernel.BLOCK` subjects would make the compiled
    engine load another entry point in the middle of the run.  The numbers do not depend on it."""
    most = max(1, min(int(chunk), BLOCK_SUBJECTS))
    count = -(-max(int(size), 1) // most)
    return -(-max(int(size), 1) // count)


class _ChunkWorker:
    """Makes each chunk's metrics and writes its time-course rows on one worker thread, in order.

    The main thread meanwhile simulates the next chunk: the compiled kernel
    and most NumPy work release the GIL, so on two cores the metrics and the
    rows cost little wall time.  At most two chunks wait, which bounds
    memory; a worker's error is raised in the caller at the next
    :meth:`submit` or in :meth:`results`.

    Parameters
    ----------
    sink : callable, optional
        Receives the rows of ``timecourse.csv`` (bytes, in file order); None
        writes none (and the chunks need no output grid: :attr:`writes`).
    """

    def __init__(self, sink: Callable[[bytes], object] | None):
        from concurrent.futures import ThreadPoolExecutor

        self._sink = sink
        self.writes = sink is not None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pkpd-chunks")
        self._pending: list = []
        self._stopped = False

    def _work(self, arm, grid, res, last_dose, warnings) -> dict[str, np.ndarray]:
        values = _chunk_metrics(arm, grid, res, last_dose, warnings)
        if self._sink is not None:
            out = res.grids["output"]
            for piece in pio.format_timecourse(arm, res.subject_ids, out.time_h, out.readouts):
                if self._stopped:  # the run was abandoned (error, Ctrl-C): stop between pieces
                    break
                self._sink(piece)
        return values

    def submit(self, arm: str, grid: EvaluationGrid, res, last_dose: float | None, warnings: list[str]):
        """Queue chunk ``res`` (after waiting while two are queued); returns its future metrics."""
        while len(self._pending) >= 2 or (self._pending and self._pending[0].done()):
            self._pending.pop(0).result()
        future = self._pool.submit(self._work, arm, grid, res, last_dose, warnings)
        self._pending.append(future)
        return future

    @staticmethod
    def results(futures) -> list[dict[str, np.ndarray]]:
        """The metrics of each chunk, in order (waiting for them)."""
        return [f.result() for f in futures]

    def close(self) -> None:
        """Drop what has not started and wait for the worker to stop."""
        if any(not f.done() for f in self._pending):
            self._stopped = True
        for f in self._pending:
            f.cancel()
        self._pool.shutdown(wait=True)
        self._pending.clear()


def _chunk_metrics(arm: str, grid: EvaluationGrid, res, last_dose: float | None, warnings: list[str]):
    """Metrics of one chunk; never raises (a failure leaves the cells empty).

    A metric that applies to the arm but is missing for some subjects (e.g.
    the run ends before the rebound peaks) adds a warning: its cell will be
    empty (:func:`pkpd.metrics.population_summary`).
    """
    n = res.n_subjects
    try:
        summary = res.grids["summary"]
        dosing = grid.dosing
        if dosing is None:  # a grid built from a bare window: the documented fallbacks
            dosing = metrics.Dosing(float(summary.time_h[-1]), interval=grid.interval, washout_h=last_dose)
        with np.errstate(all="ignore"):
            out = metrics.subject_metrics(
                summary.time_h,
                dict(summary.readouts),
                dosing=dosing,
                nca_t_h=grid.interval_time_h,
                nca_plasma=res.grids["interval"].readouts["plasma_mg_per_l"] if "interval" in res.grids else None,
            )
    except Exception as exc:  # the summary must never make a run fail
        message = f"summary: metrics of arm '{arm}' could not be computed ({type(exc).__name__}: {exc}); cells left empty"
        if message not in warnings:
            warnings.append(message)
        return {name: np.full(n, np.nan) for name in metrics.METRIC_NAMES}
    try:
        for info in metrics.METRICS:
            if metrics.applies(info, dosing) and not np.isfinite(out[info.name]).all():
                why = info.missing or "it could not be computed"
                message = (f"summary: arm '{arm}': {info.name} left empty: {why} "
                           f"(for some subjects; run {dosing.duration_h:g} h)")
                if message not in warnings:
                    warnings.append(message)
    except Exception:  # pragma: no cover - a warning must not fail the run either
        pass
    return out


# ---------------------------------------------------------------------------
# Files


@dataclass(frozen=True)
class RunFiles:
    """Where :func:`run_to_folder` put its files."""

    folder: str
    timecourse: str
    summary: str
    figure: str | None


def default_output_folder(scenario: Scenario, cwd: str | None = None) -> str:
    """``./pkpd-output/<scenario name>/`` under ``cwd`` (default: the current folder)."""
    return os.path.join(cwd or os.curdir, "pkpd-output", scenario.name)


def run_to_folder(
    scenario: Scenario,
    folder: str | os.PathLike | None = None,
    *,
    plot: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[RunResult, RunFiles]:
    """Run ``scenario`` and write ``timecourse.csv``, ``summary.csv`` and ``figure.png``.

    Nothing is written before the checks pass (memory, disk space).  Every
    file goes to a temporary name in ``folder`` first; the three are renamed
    together at the end, and on any error (or Ctrl-C) the temporary files
    are removed, so the folder keeps its previous files whole.  With
    ``plot=False`` an old ``figure.png`` is removed.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario.
    folder : path, optional
        Output folder, created if needed (default
        :func:`default_output_folder`).
    plot : bool
        Draw ``figure.png``.
    progress : callable, optional
        As for :func:`run`.

    Raises
    ------
    ResourceError
        Not enough memory or disk space (nothing written).
    PkpdError
        The folder cannot be written, or the inputs make the run fail.
    """
    folder = default_output_folder(scenario) if folder is None else os.fspath(folder)
    p = plan(scenario, plot=plot)
    try:
        check_disk(folder, p.csv_bytes, "timecourse.csv")
    except ResourceError as exc:
        raise ResourceError(f"{scenario.source}: {exc}") from None
    paths = RunFiles(
        folder=folder,
        timecourse=os.path.join(folder, pio.TIMECOURSE_FILE),
        summary=os.path.join(folder, pio.SUMMARY_FILE),
        figure=os.path.join(folder, pio.FIGURE_FILE) if plot else None,
    )
    outcome = {}

    def timecourse(f):
        f.write(pio.timecourse_header().encode("utf-8"))
        outcome["result"] = run(scenario, timecourse=f.write, plot=plot, progress=progress, plan_=p)

    def figure(f):
        from . import plotting  # matplotlib only when a figure is drawn

        plotting.plot_run(outcome["result"], f.file)

    write_together(folder, [
        (paths.timecourse, "wb", timecourse),
        (paths.summary, "w", lambda f: f.write(pio.format_summary(outcome["result"].summary_rows()))),
        *([(paths.figure, "wb", figure)] if plot else []),
    ], remove=() if plot else (os.path.join(folder, pio.FIGURE_FILE),))
    return outcome["result"], paths


def write_together(folder: str, files, *, remove=()) -> None:
    """Write several files of one run so that they appear together or not at all.

    ``files`` lists ``(path, mode, write)``: ``write(atomic_file)`` fills
    each one under a temporary name, in order (a later one may use what an
    earlier one computed).  All are renamed at the end; on any error or
    Ctrl-C every temporary file is removed (and the folder, if this call
    created it), so the folder keeps its previous files whole.  ``remove``
    lists old files to delete once the new ones are in place (a run without
    a figure must not leave an old one beside its new files).
    """
    created = _make_folder(folder)
    pending: list[pio.AtomicFile] = []
    try:
        try:
            for path, mode, write in files:
                f = pio.AtomicFile(path, mode, autocommit=False)
                pending.append(f)
                write(f)
            for f in pending:
                f.commit()
            for path in remove:
                pio.remove_file(path)
        except OSError as exc:
            raise PkpdError(_os_message(exc, folder)) from None
    except BaseException:
        for f in pending:
            try:
                f.abort()
            except OSError:
                pass
        if created:
            _remove_empty(folder)
        raise


def _make_folder(folder: str) -> bool:
    """Create ``folder`` (and parents); True when it did not exist."""
    if os.path.isdir(folder):
        return False
    try:
        os.makedirs(folder)
    except FileExistsError:
        if not os.path.isdir(folder):
            raise PkpdError(f"{folder}: cannot create the output folder (a file of that name exists)") from None
        return False
    except OSError as exc:
        raise PkpdError(_os_message(exc, folder, "cannot create the output folder")) from None
    return True


def _remove_empty(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass


def _os_message(exc: OSError, folder: str, what: str = "cannot write the output") -> str:
    where = exc.filename if isinstance(exc.filename, str) else folder
    return f"{where}: {what} ({exc.strerror or exc})"


# ---------------------------------------------------------------------------
# Event tables

#: Points of the common time axis an event table's figure is drawn on.
TABLE_FIGURE_POINTS = 2000


def table_summary_rows(result, name: str) -> list[tuple[str, str, str, float, float, float]]:
    """``summary.csv`` rows of an event-table run: the metrics that need no dosing structure.

    Each subject's metrics come from its own output rows (sorted by time; at
    one time the last row, which has seen every dose there) through
    :func:`pkpd.metrics.subject_metrics`; the NCA and rebound rows, which
    need a regimen's structure, are left out.
    """
    values: dict[str, list[float]] = {m: [] for m in metrics.METRIC_NAMES}
    for t, readouts in _table_subjects(result):
        row = metrics.subject_metrics(t, {k: v[None, :] for k, v in readouts.items()}, dosing=None)
        for k, v in row.items():
            values[k].append(float(v[0]))
    rows = []
    for info in metrics.METRICS:
        v = np.asarray(values[info.name])
        if v.size and np.all(np.isnan(v)):
            continue  # needs a dosing structure the table does not declare
        rows.append((name, info.name, info.unit, *metrics.population_summary(v)))
    return rows


def _table_subjects(result):
    """(times, {readout: values}) of each subject of a TableResult, by time."""
    number = np.asarray(result.number)
    for k in np.unique(number):
        sel = np.flatnonzero(number == k)
        t = np.asarray(result.time_h, dtype=float)[sel]
        order = np.argsort(t, kind="stable")
        t = t[order]
        last = np.concatenate([np.diff(t) > 0, [True]])  # at one time, the last row
        yield t[last], {name: np.asarray(v, dtype=float)[sel][order][last] for name, v in result.readouts.items()}


def run_table_to_folder(table, parameters=None, folder: str | os.PathLike | None = None, *,
                        plot: bool = True, name: str = "table"):
    """Simulate an event table and write ``table.csv``, ``summary.csv`` and ``figure.png`` together.

    ``table.csv`` follows rule 11 of docs/event-tables.md; the summary holds
    the metrics that need no regimen structure (peaks, lowest excitability,
    hours above the thresholds), per subject then median and 5th-95th
    percentiles; the figure draws every subject on a common time axis
    (each interpolated between its own output rows).  Returns the
    :class:`~pkpd.table_engine.TableResult` and the folder.
    """
    from .event_table import format_output_table
    from .table_engine import simulate_table

    result = simulate_table(table, parameters)
    folder = os.fspath(folder) if folder is not None else os.path.join(os.curdir, "pkpd-output", name)
    check_disk(folder, 200.0 * len(result), "table.csv")

    def figure(f):
        from . import plotting

        subjects = list(_table_subjects(result))
        lo = min(t[0] for t, _ in subjects)
        hi = max(t[-1] for t, _ in subjects)
        axis = np.linspace(lo, hi, TABLE_FIGURE_POINTS)
        curves = {k: np.array([np.interp(axis, t, r[k], left=np.nan, right=np.nan) for t, r in subjects])
                  for k in PLOT_READOUTS if k in subjects[0][1]}
        plotting.plot_arms(f.file, time_h=axis, arms=[plotting.ArmCurves(name, curves)], title=name,
                           description=f"event table {table.source}", n_subjects=len(subjects), duration_h=hi)

    write_together(folder, [
        (os.path.join(folder, "table.csv"), "w", lambda f: f.write(format_output_table(result.to_columns()))),
        (os.path.join(folder, pio.SUMMARY_FILE), "w",
         lambda f: f.write(pio.format_summary(table_summary_rows(result, name)))),
        *([(os.path.join(folder, pio.FIGURE_FILE), "wb", figure)] if plot else []),
    ], remove=() if plot else (os.path.join(folder, pio.FIGURE_FILE),))
    return result, folder
