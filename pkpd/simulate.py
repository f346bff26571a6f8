"""The front door: validate, build the batch, call the solver, package the result.

``simulate`` runs one population through one regimen (or one regimen per
subject); ``simulate_arms`` runs the same population through several named
regimens; ``iter_chunks`` yields the same results chunk by chunk of subjects,
for callers that stream them (the command line writes each chunk and keeps
only its metrics).  What is saved is declared up front with :class:`SaveAt`:
named time grids, each with the readouts wanted on it.

A chunk in which any subject's regimen has a steady-state dose
(``Dose(..., steady_state=True)``) is simulated by the event-table engine
(:func:`pkpd.table_engine.simulate_table`, rules SS = 1 of
docs/event-tables.md): every subject of the chunk becomes event records
(:func:`pkpd.records.regimen_rows`, with its individual values and an EVID 2
row at every output time, after the doses at that time), and the readouts
come back on the grids.  Other chunks take the direct path below.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Sequence

import numpy as np

from . import events, kernel, model, resources, table_engine
from .errors import ParameterError, RegimenError, SolverError
from .parameters import Parameters, default_parameters
from .population import Population, ResidualError
from .records import DOSE, OTHER, EventTable, Record, Subject, regimen_rows
from .regimen import Dose, Infusion, Regimen
from .solver import NonFiniteError, SemiLinearSystem, fastest_rate, integrate, node_of, time_grid
from .units import TIME_TOLERANCE_H

READOUTS = model.READOUTS

#: Subjects integrated together; bounds working memory.
DEFAULT_CHUNK = 4096
#: Default bound on the integration step, h.  With 3-stage Radau collocation
#: and exact PK this keeps the receptor readouts within about 1e-7 of the
#: exact solution for oral dosing (tests/test_accuracy.py).
DEFAULT_MAX_STEP_H = 0.5
#: Output times per block when readouts are computed from states (small
#: temporaries are recycled instead of page-faulted afresh).
_TIME_BLOCK = 32
#: Name of the grid built from ``output_step_h`` / ``times_h``.
MAIN_GRID = "output"


def output_times(duration_h: float, output_step_h: float) -> np.ndarray:
    """The output grid of the scenario format, h.

    ``t_k = k * output_step_h`` while ``t_k < duration_h - 1e-9``, then
    ``duration_h`` itself.
    """
    k = np.arange(int(math.floor(duration_h / output_step_h)) + 2)
    t = k * output_step_h
    return np.concatenate([t[t < duration_h - TIME_TOLERANCE_H], [duration_h]])


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        math.isfinite(value) and value > 0
    ):
        raise ParameterError(f"{name}: must be finite and > 0; got {value!r}")
    return float(value)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    a.setflags(write=False)
    return a


def _parameter_copies(ind: Mapping[str, np.ndarray]) -> MappingProxyType:
    """Read-only copies of a chunk's individual parameters (one copy of them all when they are all floats)."""
    values = list(ind.values())
    if all(v.dtype == np.float64 and v.ndim == 1 for v in values):
        rows = _readonly(np.array(values))
        return MappingProxyType(dict(zip(ind, rows)))
    return MappingProxyType({k: _readonly(np.array(v)) for k, v in ind.items()})


@dataclass(frozen=True)
class Grid:
    """One named grid of :class:`SaveAt`: output times and the readouts saved on them.

    Parameters
    ----------
    times_h : sequence of float
        Strictly increasing times in [0, duration_h], h.
    readouts : sequence of str
        Names from :data:`READOUTS` (default all).
    """

    times_h: np.ndarray
    readouts: tuple[str, ...] = READOUTS

    def __post_init__(self) -> None:
        t = np.array(self.times_h, dtype=float)
        if t.ndim != 1 or t.size == 0:
            raise ParameterError(f"times_h: must be a non-empty 1-D sequence; got shape {t.shape}")
        if not np.all(np.isfinite(t)) or t[0] < 0 or np.any(np.diff(t) <= 0):
            raise ParameterError("times_h: must be finite, >= 0 and strictly increasing")
        if isinstance(self.readouts, str):
            raise ParameterError(f"readouts: expected a sequence of names; got the string {self.readouts!r}")
        names = tuple(self.readouts)
        unknown = [o for o in names if o not in READOUTS and o not in model.EXTRA_READOUTS]
        if unknown:
            raise ParameterError(f"outputs: unknown readout {unknown[0]!r} (expected some of {', '.join(READOUTS)})")
        object.__setattr__(self, "times_h", _readonly(t))
        object.__setattr__(self, "readouts", names)


@dataclass(frozen=True)
class SaveAt:
    """What to save: named grids (``SaveAt(output=Grid(...), summary=Grid(...))``).

    The run integrates through the union of the grids (each time exactly) and
    saves, on each grid, only the readouts it names.
    """

    grids: Mapping[str, Grid]

    def __init__(self, **grids: Grid) -> None:
        if not grids:
            raise ParameterError("save: name at least one grid, e.g. SaveAt(output=Grid(times_h))")
        for name, grid in grids.items():
            if not isinstance(grid, Grid):
                raise ParameterError(f"save.{name}: expected a pkpd.Grid; got {type(grid).__name__}")
        object.__setattr__(self, "grids", MappingProxyType(dict(grids)))

    def union(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """All times (sorted; times within the tolerance merged) and where each grid sits in them (read-only)."""
        known = self.__dict__.get("_union")  # the grids are immutable: computed once
        if known is None:
            if len(self.grids) == 1:
                (k, g), = self.grids.items()  # one grid: its times are sorted, increasing and far apart
                all_t = g.times_h
                if all_t.size > 1 and not np.all(np.diff(all_t) > TIME_TOLERANCE_H):
                    all_t = None
            else:
                all_t = None
            if all_t is None:
                all_t = np.unique(np.concatenate([g.times_h for g in self.grids.values()]))
                if all_t.size > 1:
                    all_t = all_t[np.concatenate([[True], np.diff(all_t) > TIME_TOLERANCE_H])]
            where = {k: _readonly(np.searchsorted(all_t, g.times_h - TIME_TOLERANCE_H, side="left"))
                     for k, g in self.grids.items()}
            known = (_readonly(all_t), where)
            object.__setattr__(self, "_union", known)
        return known[0], dict(known[1])


@dataclass(frozen=True)
class Saved:
    """The readouts saved on one grid: ``time_h`` (T,) and ``{name: (N, T)}``, read-only."""

    time_h: np.ndarray
    readouts: Mapping[str, np.ndarray]

    def __getattr__(self, name: str):
        readouts = object.__getattribute__(self, "readouts")
        if name in readouts:
            return readouts[name]
        raise AttributeError(name)


@dataclass(frozen=True)
class SolverStats:
    """What the integration took, as scipy's ``OdeResult`` reports it.

    Attributes
    ----------
    nodes : int
        Integration nodes on the shared grid (steps + 1).
    exponentials : int
        Distinct step propagators computed (matrix exponentials or squarings).
    chunks : int
        Chunks of subjects integrated.
    """

    nodes: int
    exponentials: int
    chunks: int


@dataclass(frozen=True, repr=False)
class SimulationResult:
    """What :func:`simulate` returns; every array is read-only.

    Attributes
    ----------
    time_h : ndarray (T,)
        Times of the main grid, h.
    readouts : mapping of str to ndarray (N, T)
        The readouts saved on the main grid (units: :data:`pkpd.model.READOUT_INFO`);
        also reachable as attributes (``result.plasma_mg_per_l``).
    parameters : mapping of str to ndarray (N,)
        Individual parameter values used (after covariates and variability):
        every model-spec name, ``WT`` (kg), ``CrCl`` (mL/min) and ``CL`` (L/h).
    subject_ids : ndarray (N,)
        Subject numbers, counting from 1, as everywhere in pkpd.
    grids : mapping of str to Saved
        Every grid of the :class:`SaveAt` (the main one included).
    amounts : mapping of str to ndarray (N, T) or None
        With ``amounts=True``: every linear state (mg; ``C_cns`` in mg/L),
        ``A_elim`` (cumulative amount eliminated) and ``A_input`` (cumulative
        amount that entered the body, after bioavailability).
    observed : ndarray (N, T) or None
        Simulated measurements of ``residual_error.readout`` on the main grid.
    stats : SolverStats
        Nodes, exponentials and chunks of the integration.
    """

    time_h: np.ndarray
    readouts: Mapping[str, np.ndarray]
    parameters: Mapping[str, np.ndarray]
    subject_ids: np.ndarray
    grids: Mapping[str, Saved] = field(default_factory=dict)
    amounts: Mapping[str, np.ndarray] | None = None
    observed: np.ndarray | None = None
    observed_readout: str | None = None
    stats: SolverStats | None = None
    main_grid: str = MAIN_GRID

    def __getattr__(self, name: str):
        readouts = object.__getattribute__(self, "readouts")
        if name in readouts:
            return readouts[name]
        if name in READOUTS:
            raise AttributeError(f"readout {name!r} was not saved (ask for it with outputs=... or a SaveAt grid)")
        raise AttributeError(name)

    def __repr__(self) -> str:
        t = self.time_h
        span = f"{t[0]:g}-{t[-1]:g} h" if t.size else "no times"
        return (
            f"SimulationResult({self.n_subjects} subject{'s' * (self.n_subjects != 1)}, {t.size} times {span}, "
            f"readouts: {', '.join(self.readouts)})"
        )

    @property
    def n_subjects(self) -> int:
        return int(self.subject_ids.shape[0])

    def readout(self, name: str) -> np.ndarray:
        """One readout of the main grid, shape (N, T)."""
        if name not in self.readouts:
            return getattr(self, name)  # the clear AttributeError
        return self.readouts[name]

    #: Units of the columns of :meth:`to_table`.
    @property
    def units(self) -> dict[str, str]:
        out = {"arm": "", "subject": "", "time_h": "h", "weight_kg": "kg", "crcl_ml_min": "mL/min"}
        out.update({k: model.READOUT_INFO[k][0] for k in self.readouts})
        if self.observed is not None:
            out["observed"] = model.READOUT_INFO[self.observed_readout][0]
        return out

    def to_table(self, arm: str | None = None) -> dict[str, np.ndarray]:
        """Long format: one row per subject and time, as a dict of 1-D columns.

        Columns: ``arm`` (when given), ``subject`` (from 1), ``time_h`` (h),
        each readout (units in :attr:`units`), ``observed`` (with a residual
        error), then the covariates in force, ``weight_kg`` and
        ``crcl_ml_min``; ordered by subject then time.
        """
        n, t = self.n_subjects, self.time_h.size
        table: dict[str, np.ndarray] = {}
        if arm is not None:
            table["arm"] = np.full(n * t, arm, dtype=object)
        table["subject"] = np.repeat(self.subject_ids, t)
        table["time_h"] = np.tile(self.time_h, n)
        for name in self.readouts:
            table[name] = self.readouts[name].reshape(-1)
        if self.observed is not None:
            table["observed"] = self.observed.reshape(-1)
        table["weight_kg"] = np.repeat(self.parameters["WT"], t)
        table["crcl_ml_min"] = np.repeat(self.parameters["CrCl"], t)
        return table

    def to_dataframe(self, arm: str | None = None):
        """:meth:`to_table` as a pandas DataFrame (needs the optional extra ``pkpd[pandas]``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_dataframe needs pandas: pip install 'pkpd[pandas]'") from None
        return pd.DataFrame(self.to_table(arm))

    def plot(self, readouts: Sequence[str] | None = None, *, percentiles=(5, 50, 95), ax=None):
        """Median and percentile band of each readout against time; returns the matplotlib axes.

        One panel per readout (default: plasma and excitability where saved).
        """
        from .plotting import plot_bands

        names = readouts or [k for k in ("plasma_mg_per_l", "excitability") if k in self.readouts] or list(self.readouts)
        return plot_bands(self.time_h, {k: self.readout(k) for k in names}, percentiles=percentiles, ax=ax)


def _regimen_error(value, where: str = "regimen") -> RegimenError:
    if isinstance(value, (Dose, Infusion)):
        hint = f"wrap it in a regimen: pkpd.Regimen({'doses' if isinstance(value, Dose) else 'infusions'}=[...])"
    elif isinstance(value, str):
        hint = "a route name is not a regimen; build one, e.g. pkpd.Regimen(doses=[pkpd.Dose('oral_ir', 10)])"
    elif isinstance(value, Mapping):
        hint = "for named arms use pkpd.simulate_arms({name: regimen, ...})"
    else:
        hint = "expected a pkpd.Regimen or a sequence of them, one per subject"
    return RegimenError(f"{where}: not a regimen ({type(value).__name__}); {hint}")


def _regimens(regimen, population: Population | None) -> tuple[list[Regimen], Population]:
    """One regimen per subject, and the population (default: typical subjects)."""
    if isinstance(regimen, Regimen):
        regs = None
    elif isinstance(regimen, (str, bytes, Mapping, Dose, Infusion)) or not isinstance(regimen, Sequence):
        raise _regimen_error(regimen)
    else:
        regs = list(regimen)
        for i, r in enumerate(regs):
            if not isinstance(r, Regimen):
                raise _regimen_error(r, f"regimen[{i}]")
    if population is None:
        population = Population.typical(1 if regs is None else max(len(regs), 1))
    if not isinstance(population, Population):
        raise ParameterError(f"population: expected a pkpd.Population; got {type(population).__name__}")
    if regs is None:
        regs = [regimen] * population.n
    elif len(regs) != population.n:
        raise RegimenError(f"regimen: {len(regs)} regimens for {population.n} subjects")
    return regs, population


#: The SaveAt of the last few (duration, output step, readouts) (immutable: shared by the runs that ask for it).
_SAVES: dict = {}


def _save(duration_h: float, save, output_step_h, times_h, outputs) -> SaveAt:
    if save is not None:
        if not isinstance(save, SaveAt):
            raise ParameterError(f"save: expected a pkpd.SaveAt; got {type(save).__name__}")
    elif times_h is None:
        step = _positive("output_step_h", output_step_h)
        names = tuple(outputs)
        key = (duration_h, step, names) if all(type(x) is str for x in names) else None
        save = None if key is None else _SAVES.get(key)
        if save is None:
            save = SaveAt(**{MAIN_GRID: Grid(output_times(duration_h, step), names)})
            if key is not None:
                if len(_SAVES) >= 8:
                    _SAVES.pop(next(iter(_SAVES), None), None)  # another thread may have evicted it
                _SAVES[key] = save
    else:
        save = SaveAt(**{MAIN_GRID: Grid(times_h, tuple(outputs))})
    for name, grid in save.grids.items():
        if grid.times_h[-1] > duration_h + TIME_TOLERANCE_H:
            raise ParameterError(f"times_h: must be within [0, {duration_h:g}] h (grid '{name}' ends at {grid.times_h[-1]:g})")
    return save


@dataclass(frozen=True)
class _Plan:
    """Everything decided once for the whole population (so chunks agree)."""

    duration_h: float
    save: SaveAt
    times: np.ndarray  # union of the grids, h
    where: dict  # grid -> indices into times
    nodes: np.ndarray
    record_index: np.ndarray
    amounts: bool
    chunk: int
    main: str  # name of the main grid
    max_step_h: float = DEFAULT_MAX_STEP_H
    engine: str = "numpy"  # "numpy" or "numba" (resolved once, see pkpd.kernel.choose)
    may_compile: bool = False  # the numba engine may compile an entry point for the system's size (see kernel)


_GRIDS: dict = {}


def _time_grid(times: np.ndarray, event_times: np.ndarray, max_step_h: float, fast_rate: float):
    """:func:`pkpd.solver.time_grid`, remembered (read-only) for the last few inputs (re-runs of one problem)."""
    event_times = np.asarray(event_times, float)
    if event_times.size > 1 << 14:  # a large population's own times: not worth keeping
        return time_grid(times, event_times, max_step_h, fast_rate)
    key = (times.tobytes(), event_times.tobytes(), float(max_step_h), float(fast_rate))
    hit = _GRIDS.get(key)
    if hit is None:
        if len(_GRIDS) >= 8:
            _GRIDS.pop(next(iter(_GRIDS), None), None)  # another thread may have evicted it
        hit = _GRIDS[key] = tuple(_readonly(a) for a in time_grid(times, event_times, max_step_h, fast_rate))
    return hit


def _plan(regimens, ind, duration_h, save, max_step_h, amounts, chunk_size, hold_all, engine=None) -> _Plan:
    times, where = save.union()
    n = len(regimens)
    per_subject_events = max((r.event_count(duration_h) for r in {id(r): r for r in regimens}.values()), default=0)
    saved = sum(g.times_h.size * len(g.readouts) for g in save.grids.values())
    saved += times.size * (len(model.LINEAR_STATES) + 1) if amounts else 0
    crude_nodes = duration_h / max_step_h + times.size + 40 * per_subject_events
    grids = ", ".join(f"{g.times_h.size} times x {len(g.readouts)} readouts" for g in save.grids.values())
    available = resources.available_memory_bytes()  # read once for both
    est = resources.estimate(n_subjects=n, kept_values_per_subject=saved if hold_all else 0.0,
                             streamed_values_per_subject=0.0 if hold_all else saved,
                             events_per_subject=per_subject_events, nodes=crude_nodes, chunk=chunk_size,
                             available_bytes=available)
    resources.check(est, detail=f"{n} subjects x ({grids})", available_bytes=available)
    nodes, record_index = _time_grid(times, events.event_times(regimens, ind, duration_h), max_step_h,
                                     fastest_rate(model.linear_system(ind)[0]))
    main = MAIN_GRID if MAIN_GRID in save.grids else next(iter(save.grids))
    work = float(n) * nodes.size
    return _Plan(duration_h, save, times, where, nodes, record_index, amounts, est.chunk, main, max_step_h,
                 kernel.choose(engine, work, nodes.size), kernel.may_compile(engine, work))


def iter_chunks(
    regimen: Regimen | Sequence[Regimen],
    *,
    duration_h: float,
    parameters: Parameters | None = None,
    population: Population | None = None,
    output_step_h: float = 0.5,
    times_h: Sequence[float] | None = None,
    outputs: Sequence[str] = READOUTS,
    save: SaveAt | None = None,
    amounts: bool = False,
    residual_error: ResidualError | None = None,
    max_step_h: float = DEFAULT_MAX_STEP_H,
    chunk_size: int = DEFAULT_CHUNK,
    engine: str | None = None,
    _hold_all: bool = False,
    _outputs: dict | None = None,
) -> Iterator[SimulationResult]:
    """As :func:`simulate`, one :class:`SimulationResult` per chunk of subjects, in order.

    Every subject's numbers are the same as in :func:`simulate`, whatever
    ``chunk_size``: the integration grid is built once for the population.
    The caller holds one chunk at a time, so memory is checked per chunk.
    """
    duration_h = _positive("duration_h", duration_h)
    params = default_parameters() if parameters is None else parameters
    if not isinstance(params, Parameters):
        raise ParameterError(f"parameters: expected a pkpd.Parameters; got {type(params).__name__}")
    regimens, population = _regimens(regimen, population)
    save = _save(duration_h, save, output_step_h, times_h, outputs)
    max_step_h = _positive("max_step_h", max_step_h)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ParameterError(f"chunk_size: must be an integer >= 1; got {chunk_size!r}")
    if residual_error is not None:
        if not isinstance(residual_error, ResidualError):
            raise ParameterError(f"residual_error: expected a pkpd.ResidualError; got {type(residual_error).__name__}")
        main = save.grids.get(MAIN_GRID) or next(iter(save.grids.values()))
        if residual_error.readout not in main.readouts:
            raise ParameterError(f"residual_error.readout: {residual_error.readout!r} is not a saved readout")
    if events.shared(regimens):  # a population often shares one regimen object
        steady = [has_steady_state(regimens[0])] * len(regimens)
    else:
        known: dict = {}  # by regimen object
        steady = [known[id(r)] if id(r) in known else known.setdefault(id(r), has_steady_state(r)) for r in regimens]
    if amounts and any(steady):
        raise ParameterError("amounts: not available for a regimen with a steady-state dose (the amounts eliminated "
                             "and given before the steady state are infinite); got True")
    ind_all = model.individual_parameters(params, population)
    plan = _plan(regimens, ind_all, duration_h, save, max_step_h, amounts, int(chunk_size), _hold_all, engine)
    values_all = _table_values(params, population) if any(steady) else None
    full = None
    if _outputs is not None and plan.engine == "numba" and not all(steady):
        # the compiled engine writes every chunk's readouts straight into the final arrays
        full = _outputs
        full.update(_allocate_outputs(plan, population.n))
    for start in range(0, population.n, plan.chunk):
        sl = slice(start, min(start + plan.chunk, population.n))
        ind = {k: v[sl] for k, v in ind_all.items()}
        if any(steady[sl]):
            yield _run_table_chunk(plan, params, regimens[sl], ind, values_all[sl], population.subject_ids[sl],
                                   population.seed, residual_error)
        else:
            yield _run_chunk(plan, regimens[sl], ind, population.subject_ids[sl], population.seed, residual_error,
                             full, sl)


def has_steady_state(regimen: Regimen) -> bool:
    """Does the regimen have a dose block with ``steady_state=True``?"""
    return any(d.steady_state for d in regimen.doses)


def _table_values(params: Parameters, population: Population) -> list[dict[str, float]]:
    """Each subject's values for event records: typical x exp(eta) for the parameters
    with a random effect, and the covariates WT and CRCL (the engine applies the
    covariate model, as :func:`pkpd.model.individual_parameters` does)."""
    values = model.typical_values_with_eta(params, population)
    varied = [k for k in values if k in population.eta or (k in ("CL_nr", "CL_r") and "CL" in population.eta)]
    wt, cr = population.weight_kg, population.crcl_ml_min
    return [{"WT": float(wt[i]), "CRCL": float(cr[i]), **{k: float(values[k][i]) for k in varied}}
            for i in range(population.n)]


def _subject_records(regimen: Regimen, values: Mapping[str, float], ind_i: Mapping[str, float],
                     duration_h: float, times: np.ndarray) -> tuple[Record, ...]:
    """One subject as event records: the regimen's dose rows (:func:`pkpd.records.regimen_rows`),
    then an EVID 2 row at every output time, after the doses at that time."""
    rows = regimen_rows(regimen, duration_h)
    rows += [(float(t), 2, None) for t in times]
    rows.sort(key=lambda e: (e[0], e[1]))
    out = []
    for n, (t, _, f) in enumerate(rows, start=1):
        if f is None:
            out.append(Record(row=n, time=t, evid=OTHER, values=values))
            continue
        v = values
        if "F1" in f:  # the record's own bioavailability (and release time), the subject's values
            v = dict(values, F1=ind_i[f["F1"]], **({"D1": ind_i[f["D1"]]} if "D1" in f else {}))
        out.append(Record(row=n, time=t, evid=DOSE, amt=f["AMT"], cmt=f["CMT"], rate=f["RATE"], ii=f["II"],
                          addl=f["ADDL"], ss=f["SS"], values=v))
    return tuple(out)


def _run_table_chunk(plan: _Plan, params, regimens, ind, values, subject_ids, seed, residual_error) -> SimulationResult:
    """A chunk with a steady-state dose, through the event-table engine (:mod:`pkpd.table_engine`).

    Each subject becomes event records (its doses, SS = 1 on steady-state
    blocks, and EVID 2 rows on the union of the grids), simulated with its
    individual values; the readouts go back into the grids.
    """
    n = len(regimens)
    times = plan.times
    subjects = []
    for i in range(n):
        ind_i = {k: float(ind[k][i]) for k in ("F_ir", "F_er", "D_er")}
        recs = _subject_records(regimens[i], values[i], ind_i, plan.duration_h, times)
        subjects.append(Subject(str(int(subject_ids[i])), i + 1, recs))
    try:
        res = table_engine.simulate_table(EventTable(tuple(subjects), source="<regimen>"), params,
                                          max_step_h=plan.max_step_h, engine=plan.engine)
    except SolverError as exc:
        raise SolverError(f"{exc} (subjects {int(subject_ids[0])}-{int(subject_ids[-1])})") from None
    grids = {}
    for name, grid in plan.save.grids.items():
        idx = plan.where[name]
        out = {r: _readonly(np.ascontiguousarray(res.readouts[r].reshape(n, times.size)[:, idx]))
               for r in grid.readouts}
        grids[name] = Saved(_readonly(grid.times_h.view()), MappingProxyType(out))
    return _chunk_result(plan, grids, ind, subject_ids, seed, residual_error, None, 0)


def _chunk_result(plan: _Plan, grids: dict, ind, subject_ids, seed, residual_error, amounts,
                  exponentials: int) -> SimulationResult:
    """One chunk's :class:`SimulationResult` from its saved grids (observations drawn here)."""
    main = grids[plan.main]
    observed = None
    if residual_error is not None:
        observed = _readonly(residual_error.observe(main.readouts[residual_error.readout], seed, subject_ids))
    return SimulationResult(
        time_h=main.time_h, readouts=main.readouts,
        parameters=_parameter_copies(ind),
        subject_ids=_readonly(np.array(subject_ids)), grids=MappingProxyType(grids), amounts=amounts,
        observed=observed, observed_readout=None if residual_error is None else residual_error.readout,
        stats=SolverStats(plan.nodes.size, exponentials, 1), main_grid=plan.main,
    )


_NO_BOLUS = {k: np.zeros(0, int if k in ("bolus_subject", "bolus_state") else float)
             for k in ("bolus_subject", "bolus_state", "bolus_time", "bolus_amount")}


def _allocate_outputs(plan: _Plan, n: int) -> dict:
    """Every grid's readout arrays (n, T) for ``n`` subjects, views into one buffer (key ``None``)."""
    sizes = [(g, r, grid.times_h.size) for g, grid in plan.save.grids.items() for r in grid.readouts]
    total = n * sum(t for _, _, t in sizes)
    with resources.ordinary_pages(8.0 * total):  # a large fresh buffer: first touched faster (see there)
        base = np.empty(total)
    out: dict = {None: base}
    at = 0
    for g, r, t in sizes:
        out.setdefault(g, {})[r] = base[at : at + n * t].reshape(n, t)
        at += n * t
    return out


def _kernel_readouts(plan: _Plan, outputs: dict, sl: slice) -> list | None:
    """``(name, columns, target)`` for :func:`pkpd.kernel.integrate`, or None when a grid's
    times merge (two grid times on one node: readouts are then taken from the states)."""
    n_rec = plan.record_index.size
    slots = []
    for g, grid in plan.save.grids.items():
        idx = plan.where[g]
        if idx.size > 1 and not np.all(idx[1:] > idx[:-1]):  # increasing unless two times share a node
            return None
        cols = np.full(n_rec, -1, np.int64)
        cols[idx] = np.arange(idx.size)
        slots += [(r, cols, outputs[g][r][sl]) for r in grid.readouts]
    return slots


def _run_chunk(plan: _Plan, regimens, ind, subject_ids, seed, residual_error, outputs=None,
               rows: slice | None = None) -> SimulationResult:
    """Integrate one chunk and compute what its grids save.

    With the compiled engine the readouts are computed by the kernel and
    written into ``outputs`` (from :func:`_allocate_outputs`, rows ``rows``),
    or into arrays of this chunk's own.
    """
    n = len(regimens)
    schedule = events.from_regimens(regimens, ind, plan.duration_h)
    A, B = model.linear_system(ind)  # the solver drops the states that matter to nothing saved
    needed = {s for g in plan.save.grids.values() for r in g.readouts for s in model.READOUT_STATES[r]}
    record_rows = tuple(range(A.shape[0])) if plan.amounts else tuple(
        i for i, s in enumerate(model.LINEAR_STATES) if s in needed
    )
    if plan.engine == "numba":  # boluses as flat arrays: the kernel walks each subject's own
        jumps = kernel.flat_jumps(schedule, plan.nodes)
        inputs = {} if not schedule.rate_value.size else \
            dataclasses.replace(schedule, **_NO_BOLUS).solver_input(plan.nodes, node_of)[1]
    else:
        jumps, inputs = schedule.solver_input(plan.nodes, node_of)
    memo: dict = {}  # the solver asks for slow states 0, 1, 2 in order at each step
    system = SemiLinearSystem(
        A=A, B=B, n_slow=len(model.SLOW_STATES),
        coefficients=lambda i, x, y: model.slow_coefficients(i, x, y, ind, memo),
        coupled_rows=model.COUPLED_STATES,
    )
    stats: dict = {}
    slots = None
    try:
        args = dict(jumps=jumps, inputs=inputs, record_index=plan.record_index, record_rows=record_rows,
                    y0=np.zeros((len(model.SLOW_STATES), n)), stats=stats)
        if plan.engine == "numba":
            if outputs is None:
                outputs, rows = _allocate_outputs(plan, n), slice(0, n)
            slots = _kernel_readouts(plan, outputs, rows)
            x_rec, y_rec = kernel.integrate(
                system, plan.nodes, slow_parameters=model.slow_parameters(ind), readouts=slots or (),
                readout_values=kernel.readout_parameters(ind), out_base=outputs[None],
                record_states=plan.amounts or slots is None, may_compile=plan.may_compile, **args)
        else:
            x_rec, y_rec = integrate(system, plan.nodes, **args)
    except NonFiniteError as exc:
        i = int(exc.systems[0])
        values = ", ".join(f"{k}={v[i]:.6g}" for k, v in ind.items())
        raise SolverError(
            f"subject {int(subject_ids[i])}: the solution became non-finite on [0, {plan.duration_h:g}] h "
            f"with {values}"
        ) from None
    grids = {}
    if slots is not None:
        for name, grid in plan.save.grids.items():
            out = {r: outputs[name][r][rows] for r in grid.readouts}
            grids[name] = Saved(_readonly(grid.times_h.view()), MappingProxyType({k: _readonly(v) for k, v in out.items()}))
    else:
        states = {model.LINEAR_STATES[r]: x_rec[j] for j, r in enumerate(record_rows)}
        states.update({name: y_rec[j] for j, name in enumerate(model.SLOW_STATES)})  # each (T_union, n)
        for name, grid in plan.save.grids.items():
            idx = plan.where[name]
            out = {r: np.empty((n, idx.size)) for r in grid.readouts}
            for tb in range(0, idx.size, _TIME_BLOCK):
                rows_ = idx[tb : tb + _TIME_BLOCK]
                block = {k: v[rows_] for k, v in states.items()}
                for r in grid.readouts:
                    out[r][:, tb : tb + rows_.size] = model.readout(r, block, ind).T
            grids[name] = Saved(_readonly(grid.times_h.view()), MappingProxyType({k: _readonly(v) for k, v in out.items()}))
    amount_out = None
    if plan.amounts:
        idx = plan.where[plan.main]
        amount_out = {s: _readonly(x_rec[j][idx].T.copy()) for j, s in enumerate(model.LINEAR_STATES)}
        amount_out["A_input"] = _readonly(schedule.cumulative_input(grids[plan.main].time_h).T.copy())
        amount_out = MappingProxyType(amount_out)
    return _chunk_result(plan, grids, ind, subject_ids, seed, residual_error, amount_out,
                         int(stats.get("exponentials", 0)))


class _Assembly:
    """The whole population's result, filled chunk by chunk into preallocated arrays.

    Only one chunk's result exists besides the final arrays, so a run holds
    its outputs once (not once per chunk and again for the concatenation).
    """

    def __init__(self, n: int, outputs: dict | None = None):
        self.n = n
        self.outputs = outputs  # readout arrays the compiled engine already writes into
        self.filled = 0
        self.first: SimulationResult | None = None
        self.exponentials = 0
        self.chunks = 0

    def _empty_like(self, a: np.ndarray) -> np.ndarray:
        with resources.ordinary_pages(float(self.n) * a[:1].nbytes):
            return np.empty((self.n,) + a.shape[1:], dtype=a.dtype)

    def add(self, part: SimulationResult) -> None:
        if self.first is None:
            self.first = part
            if self.outputs:
                self.grids = {g: self.outputs[g] for g in part.grids}
            else:
                self.grids = {g: {r: self._empty_like(v) for r, v in s.readouts.items()} for g, s in part.grids.items()}
            self.parameters = {k: self._empty_like(v) for k, v in part.parameters.items()}
            self.amounts = None if part.amounts is None else {k: self._empty_like(v) for k, v in part.amounts.items()}
            self.observed = None if part.observed is None else self._empty_like(part.observed)
            self.ids = self._empty_like(part.subject_ids)
        sl = slice(self.filled, self.filled + part.n_subjects)
        for g, saved in part.grids.items():
            for r, v in saved.readouts.items():
                dst = self.grids[g][r][sl]
                if not np.may_share_memory(dst, v):  # the kernel wrote it in place already
                    dst[...] = v
        for k, v in part.parameters.items():
            self.parameters[k][sl] = v
        if self.amounts is not None:
            for k, v in part.amounts.items():
                self.amounts[k][sl] = v
        if self.observed is not None:
            self.observed[sl] = part.observed
        self.ids[sl] = part.subject_ids
        self.filled = sl.stop
        self.exponentials += part.stats.exponentials
        self.chunks += 1

    def result(self) -> SimulationResult:
        first = self.first
        grids = {g: Saved(first.grids[g].time_h, MappingProxyType({r: _readonly(v) for r, v in rs.items()}))
                 for g, rs in self.grids.items()}
        return SimulationResult(
            time_h=first.time_h, readouts=grids[first.main_grid].readouts,
            parameters=MappingProxyType({k: _readonly(v) for k, v in self.parameters.items()}),
            subject_ids=_readonly(self.ids), grids=MappingProxyType(grids),
            amounts=None if self.amounts is None else MappingProxyType({k: _readonly(v) for k, v in self.amounts.items()}),
            observed=None if self.observed is None else _readonly(self.observed),
            observed_readout=first.observed_readout,
            stats=SolverStats(first.stats.nodes, self.exponentials, self.chunks), main_grid=first.main_grid,
        )


def simulate(
    regimen: Regimen | Sequence[Regimen],
    *,
    duration_h: float,
    parameters: Parameters | None = None,
    population: Population | None = None,
    output_step_h: float = 0.5,
    times_h: Sequence[float] | None = None,
    outputs: Sequence[str] = READOUTS,
    save: SaveAt | None = None,
    amounts: bool = False,
    residual_error: ResidualError | None = None,
    max_step_h: float = DEFAULT_MAX_STEP_H,
    chunk_size: int = DEFAULT_CHUNK,
    progress=None,
    engine: str | None = None,
) -> SimulationResult:
    """Simulate the reference model for every subject of a population.

    Parameters
    ----------
    regimen : Regimen or sequence of Regimen
        What every subject receives, or one regimen per subject.  A dose
        block with ``steady_state=True`` starts the subject at the steady
        state of that block's regimen (see :class:`pkpd.regimen.Dose`); such
        a chunk of subjects runs through the event-table engine.
    duration_h : float
        End of the run, h (> 0).  The run starts at 0 h.
    parameters : Parameters, optional
        Typical values (default: :func:`default_parameters`).  Between-subject
        variability and covariates from ``population`` act on these.
    population : Population, optional
        The subjects and their covariates; default one typical subject (70 kg,
        CrCl 100 mL/min), or one per regimen when a sequence is given.
    output_step_h : float
        Step of the main output grid, h (see :func:`output_times`).
    times_h : sequence of float, optional
        Explicit output times in [0, duration_h], strictly increasing; replace
        the grid.
    outputs : sequence of str
        Readouts saved on the main grid (default all of :data:`READOUTS`).
    save : SaveAt, optional
        Several named grids instead of ``output_step_h``/``times_h``/``outputs``;
        the grid named ``"output"`` (or the first) is the main one.
    amounts : bool
        Also return every linear state on the main grid, for mass balance
        (refused with a steady-state dose: the amounts before it are infinite).
    residual_error : ResidualError, optional
        Simulated measurements of one readout (``result.observed``).
    max_step_h : float
        Largest integration step, h (accuracy of the slow states; the PK is exact).
    chunk_size : int
        Most subjects integrated together (fewer when a chunk would not fit
        its memory budget); results do not depend on it.
    progress : callable, optional
        Called as ``progress(done, total)`` after each chunk of subjects.
    engine : {"auto", "numpy", "numba"}, optional
        How to integrate: ``"numpy"`` is the reference, ``"numba"`` the
        compiled kernel (needs ``pip install 'pkpd[fast]'``; agrees with
        numpy to 1e-12), ``"auto"`` picks numba when it is installed and the
        run is large enough to pay for loading or compiling it (see
        :func:`pkpd.kernel.choose`).  Default: ``$PKPD_ENGINE``, else ``"auto"``.
        Results never depend on the choice beyond round-off.

    Returns
    -------
    SimulationResult
        Read-only readouts shaped (subjects, times).

    Raises
    ------
    ParameterError, RegimenError
        Invalid input, naming the argument and the value received.
    ResourceError
        The run would not fit in memory, or schedules absurdly many events.
    SolverError
        The solution became non-finite (names the subject and its parameters).
    """
    assembly = None
    buffers: dict = {}  # filled by iter_chunks when the compiled engine writes in place
    for part in iter_chunks(regimen, duration_h=duration_h, parameters=parameters, population=population,
                            output_step_h=output_step_h, times_h=times_h, outputs=outputs, save=save,
                            amounts=amounts, residual_error=residual_error, max_step_h=max_step_h,
                            chunk_size=chunk_size, engine=engine, _hold_all=True, _outputs=buffers):
        if assembly is None:  # iter_chunks has validated the inputs by now
            n = population.n if population is not None else 1 if isinstance(regimen, Regimen) else len(regimen)
            if part.n_subjects == n:  # one chunk: its result is the whole result (read-only already)
                if progress is not None:
                    progress(n, n)
                return part
            assembly = _Assembly(n, buffers)
        assembly.add(part)
        del part
        if progress is not None:
            progress(assembly.filled, assembly.n)
    return assembly.result()


def simulate_arms(arms: Mapping[str, Regimen], **kwargs) -> dict[str, SimulationResult]:
    """Several named regimens for the same subjects: ``{name: SimulationResult}``.

    ``arms`` maps an arm name to the regimen every subject receives in that
    arm; the other arguments are those of :func:`simulate` and apply to every
    arm, so differences between arms come from the regimens alone.
    """
    if not isinstance(arms, Mapping) or not arms:
        raise RegimenError("arms: expected a non-empty mapping of arm name to pkpd.Regimen")
    out = {}
    for name, reg in arms.items():
        if not isinstance(reg, Regimen):
            raise _regimen_error(reg, f"arms[{name!r}]")
        out[name] = simulate(reg, **kwargs)
    return out
