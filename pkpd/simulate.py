"""The front door: validate, build the batch, call the solver, package the result."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import model
from .errors import ParameterError, RegimenError, ResourceError, SolverError
from .parameters import Parameters, default_parameters
from .population import Population
from .regimen import DOSE_ROUTES, Regimen
from .solver import NonFiniteError, SemiLinearSystem, fastest_rate, integrate, node_of, time_grid

READOUTS = model.READOUTS

#: Subjects integrated together; bounds working memory (about 1 kB per
#: subject per output time at most).
DEFAULT_CHUNK = 4096
#: Below this many subjects a chunk is not split further for threading.
MIN_CHUNK = 256
#: Threads used by default.  One: on the 2-core reference machine a second
#: thread measured slower (the work is memory-bound numpy loops).
MAX_THREADS = 1
#: Default bound on the integration step, h.  With 3-stage Radau collocation
#: and exact PK this keeps the receptor readouts within about 1e-7 of the
#: exact solution for oral dosing (tests/test_accuracy.py).
DEFAULT_MAX_STEP_H = 0.5
_TIME_BLOCK = 32


def output_times(duration_h: float, output_step_h: float) -> np.ndarray:
    """The output grid of the scenario format, h.

    ``t_k = k * output_step_h`` while ``t_k < duration_h - 1e-9``, then
    ``duration_h`` itself.
    """
    k = np.arange(int(math.floor(duration_h / output_step_h)) + 2)
    t = k * output_step_h
    return np.concatenate([t[t < duration_h - 1e-9], [duration_h]])


class Readouts(Mapping):
    """The readouts of a run: a read-only ``{name: ndarray (N, T)}`` mapping.

    Either computed already (the default), or, when the run kept its states
    (``simulate(..., keep_states=True)``), computed from them when first
    asked for and cached.  :meth:`at` gives a readout at some output times
    only, without computing it everywhere (what a summary over a fine grid
    and a CSV over a coarse one need).
    """

    def __init__(self, names, states: Mapping[str, np.ndarray], parameters: Mapping[str, np.ndarray],
                 computed: Mapping[str, np.ndarray] | None = None):
        self._names = tuple(names)
        self._states = states  # name -> (N, T)
        self._columns = {k: np.asarray(v)[:, None] for k, v in parameters.items()}  # (N, 1)
        self._cache: dict[str, np.ndarray] = dict(computed or {})
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        with self._lock:
            value = self._cache.get(name)
            if value is None:
                value = self._cache[name] = model.readout(name, self._states, self._columns)
        return value

    def at(self, name: str, time_index) -> np.ndarray:
        """Readout ``name`` at the output times ``time_index`` only, shape (N, len)."""
        if name not in self._names:
            raise KeyError(name)
        if name in self._cache:
            return self._cache[name][:, time_index]
        states = {k: self._states[k][:, time_index] for k in model.READOUT_STATES[name]}
        return model.readout(name, states, self._columns)

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate` returns.

    Attributes
    ----------
    time_h : ndarray (T,)
        Output times, h.
    readouts : mapping of str to ndarray (N, T)
        The readouts asked for (see :data:`READOUTS` and
        :data:`pkpd.model.READOUT_INFO` for units), computed on first access.
    parameters : dict of str to ndarray (N,)
        Individual parameter values used (after covariates and variability),
        every model-spec name plus ``CL`` (L/h).
    subject_ids : ndarray (N,)
        0-based index of each subject in its sampled population.
    amounts : dict of str to ndarray (N, T) or None
        State amounts (mg) when asked for with ``amounts=True``, including
        ``A_elim`` (cumulative amount eliminated) and ``A_input`` (cumulative
        amount that entered the body, after bioavailability).
    """

    time_h: np.ndarray
    readouts: Mapping[str, np.ndarray]
    parameters: Mapping[str, np.ndarray]
    subject_ids: np.ndarray
    amounts: Mapping[str, np.ndarray] | None = None

    def __getattr__(self, name: str):
        readouts = object.__getattribute__(self, "readouts")
        if name in readouts:
            return readouts[name]
        if name in READOUTS:
            raise AttributeError(f"readout {name!r} was not requested (outputs=...)")
        raise AttributeError(name)

    @property
    def n_subjects(self) -> int:
        return int(self.subject_ids.shape[0])

    def readout(self, name: str, time_index=None) -> np.ndarray:
        """One readout, shape (N, T), or (N, len(time_index)) at some output times."""
        if time_index is None:
            return getattr(self, name)
        if isinstance(self.readouts, Readouts):
            return self.readouts.at(name, time_index)
        return np.asarray(self.readouts[name])[:, time_index]

    def to_table(self, arm: str | None = None) -> dict[str, np.ndarray]:
        """Long format: one row per subject and time, as a dict of 1-D columns.

        Columns: ``arm`` (when given), ``subject`` (1-based), ``time_h`` and
        each readout, ordered by subject then time.
        """
        n, t = self.n_subjects, self.time_h.size
        table: dict[str, np.ndarray] = {}
        if arm is not None:
            table["arm"] = np.full(n * t, arm, dtype=object)
        table["subject"] = np.repeat(self.subject_ids + 1, t)
        table["time_h"] = np.tile(self.time_h, n)
        for name in self.readouts:
            table[name] = np.asarray(self.readouts[name]).reshape(-1)
        return table

    def to_dataframe(self, arm: str | None = None):
        """:meth:`to_table` as a pandas DataFrame (needs the optional pandas)."""
        import pandas as pd

        return pd.DataFrame(self.to_table(arm))


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        math.isfinite(value) and value > 0
    ):
        raise ParameterError(f"{name}: must be finite and > 0; got {value!r}")
    return float(value)


def _check_times(times_h, duration_h: float) -> np.ndarray:
    t = np.asarray(times_h, dtype=float)
    if t.ndim != 1 or t.size == 0:
        raise ParameterError(f"times_h: must be a non-empty 1-D sequence; got shape {t.shape}")
    if not np.all(np.isfinite(t)) or t[0] < 0 or t[-1] > duration_h or np.any(np.diff(t) <= 0):
        raise ParameterError(
            f"times_h: must be finite, strictly increasing and within [0, {duration_h:g}]"
        )
    return t


@dataclass
class _Events:
    """Doses and infusions of one chunk of subjects, on the shared grid."""

    dose_subject: np.ndarray
    dose_state: np.ndarray
    dose_time: np.ndarray
    dose_amount: np.ndarray  # mg entering the state (after bioavailability)
    inf_subject: np.ndarray
    inf_input: np.ndarray
    inf_start: np.ndarray
    inf_stop: np.ndarray
    inf_rate: np.ndarray  # mg/h


def _events(regimens: Sequence[Regimen], ind: Mapping[str, np.ndarray], duration_h: float) -> _Events:
    """Expand each subject's regimen into dose and infusion arrays."""
    by_regimen: dict[int, list[int]] = {}
    for i, reg in enumerate(regimens):
        by_regimen.setdefault(id(reg), []).append(i)
    ds, dst, dt, da = [], [], [], []
    isub, iinp, ist, isp, irt = [], [], [], [], []
    for members in by_regimen.values():
        reg = regimens[members[0]]
        subj = np.asarray(members)
        t, route, amount = reg.dose_events(duration_h)
        for r_idx, name in enumerate(DOSE_ROUTES):
            sel = route == r_idx
            if not np.any(sel):
                continue
            state, f_name, lagged = model.DOSE_TARGETS[name]
            shape = (subj.size, int(sel.sum()))
            times = np.broadcast_to(t[sel][None, :] + (ind["t_lag"][subj][:, None] if lagged else 0.0), shape)
            amounts = np.broadcast_to(amount[sel][None, :] * (ind[f_name][subj][:, None] if f_name else 1.0), shape)
            keep = times <= duration_h
            ds.append(np.broadcast_to(subj[:, None], times.shape)[keep])
            dst.append(np.full(int(keep.sum()), state))
            dt.append(times[keep])
            da.append(amounts[keep])
        for inf in reg.infusions:
            if inf.start_h >= duration_h:
                continue
            isub.append(subj)
            iinp.append(np.full(subj.size, model.INPUTS.index(inf.route)))
            ist.append(np.full(subj.size, inf.start_h))
            isp.append(np.full(subj.size, min(inf.stop_h, duration_h)))
            irt.append(np.full(subj.size, inf.rate_mg_per_h))

    def cat(parts, dtype=float):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return _Events(
        dose_subject=cat(ds, int), dose_state=cat(dst, int), dose_time=cat(dt), dose_amount=cat(da),
        inf_subject=cat(isub, int), inf_input=cat(iinp, int), inf_start=cat(ist), inf_stop=cat(isp),
        inf_rate=cat(irt),
    )


def _event_times(regimens: Sequence[Regimen], t_lag: np.ndarray, duration_h: float) -> np.ndarray:
    """Every time (h) at which some subject's doses land or infusions change.

    ``t_lag`` holds one lag per regimen in ``regimens``, or, for a single
    regimen, the distinct lags of the subjects receiving it.
    """
    lagged_routes = [DOSE_ROUTES.index(r) for r, (_, _, lagged) in model.DOSE_TARGETS.items() if lagged]
    if len(regimens) == 1:
        pairs = {(id(regimens[0]), float(lag)): regimens[0] for lag in t_lag}
    else:
        pairs = {(id(r), float(lag)): r for r, lag in zip(regimens, t_lag)}
    times = [np.zeros(0)]
    for (_, lag), reg in pairs.items():
        t, route, _ = reg.dose_events(duration_h)
        times.append(np.where(np.isin(route, lagged_routes), t + lag, t))
        for inf in reg.infusions:
            times.append(np.array([inf.start_h, inf.stop_h]))
    all_times = np.unique(np.concatenate(times))
    return all_times[all_times < duration_h + 1e-9]


def _schedule(ev: _Events, nodes: np.ndarray, n: int):
    """Jumps and inputs keyed by node index, in the solver's format."""
    jumps = {}
    if ev.dose_time.size:
        at = node_of(nodes, ev.dose_time)
        order = np.argsort(at, kind="stable")
        at_sorted = at[order]
        bounds = np.flatnonzero(np.diff(at_sorted)) + 1
        for grp in np.split(order, bounds):
            jumps[int(at[grp[0]])] = (ev.dose_state[grp], ev.dose_subject[grp], ev.dose_amount[grp])
    inputs = {}
    if ev.inf_rate.size:
        changes = node_of(nodes, np.unique(np.concatenate([ev.inf_start, ev.inf_stop])))
        for k in np.unique(changes[changes < nodes.size]):  # later changes reach no output
            t = nodes[k]
            on = (ev.inf_start <= t + 1e-9) & (ev.inf_stop > t + 1e-9)
            u = np.zeros((len(model.INPUTS), n))
            np.add.at(u, (ev.inf_input[on], ev.inf_subject[on]), ev.inf_rate[on])
            inputs[int(k)] = u
    return jumps, inputs


def available_memory_bytes() -> float:
    """Memory a run may use, bytes (MemAvailable on Linux; else a guess)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024.0
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4.0 * 2**30


def simulate(
    regimen: Regimen | Sequence[Regimen],
    *,
    duration_h: float,
    parameters: Parameters | None = None,
    population: Population | None = None,
    output_step_h: float = 0.5,
    times_h: Sequence[float] | None = None,
    outputs: Sequence[str] = READOUTS,
    amounts: bool = False,
    max_step_h: float = DEFAULT_MAX_STEP_H,
    chunk_size: int = DEFAULT_CHUNK,
    threads: int | None = None,
    keep_states: bool = False,
    progress=None,
) -> SimulationResult:
    """Simulate the reference model for every subject of a population.

    Parameters
    ----------
    regimen : Regimen or sequence of Regimen
        What every subject receives, or one regimen per subject.
    duration_h : float
        End of the run, h (> 0).  The run starts at 0 h.
    parameters : Parameters, optional
        Typical values (default: :func:`default_parameters`).  Between-subject
        variability and covariates from ``population`` act on these.
    population : Population, optional
        The subjects; default one typical subject with the covariates in
        ``parameters`` (or one per regimen when a sequence is given).
    output_step_h : float
        Output grid step, h (see :func:`output_times`).
    times_h : sequence of float, optional
        Explicit output times in [0, duration_h], strictly increasing; replace
        the grid.
    outputs : sequence of str
        Readouts to keep (default all of :data:`READOUTS`); fewer saves memory.
    amounts : bool
        Also return the amount in every compartment (mg), for mass balance.
    max_step_h : float
        Largest integration step, h (accuracy; the PK is exact regardless).
    chunk_size : int
        Most subjects integrated together (memory); results do not depend
        on it.
    threads : int, optional
        Threads integrating chunks side by side (default: up to
        :data:`MAX_THREADS`, at most the number of cores); results do not
        depend on it.
    keep_states : bool
        Keep the states at every output time and compute each readout when
        first read (cheaper when only some readouts are read at only some
        times, e.g. with :meth:`SimulationResult.readout`'s ``time_index``);
        by default the readouts asked for are computed chunk by chunk and
        only they are kept.
    progress : callable, optional
        Called as ``progress(done, total)`` after each chunk of subjects.

    Returns
    -------
    SimulationResult
        Readouts shaped (subjects, times).

    Raises
    ------
    ParameterError, RegimenError
        Invalid input, naming the argument and the value received.
    ResourceError
        The outputs asked for would not fit in memory.
    SolverError
        The solution became non-finite (names the subject and its parameters).
    """
    duration_h = _positive("duration_h", duration_h)
    params = default_parameters() if parameters is None else parameters
    if not isinstance(params, Parameters):
        raise ParameterError(f"parameters: expected a pkpd.Parameters; got {type(params).__name__}")
    if isinstance(regimen, Regimen):
        regimens = None
    else:
        regimens = list(regimen)
        for i, r in enumerate(regimens):
            if not isinstance(r, Regimen):
                raise RegimenError(f"regimen[{i}]: expected a pkpd.Regimen; got {type(r).__name__}")
    if population is None:
        n_sub = 1 if regimens is None else len(regimens)
        population = Population.typical(n_sub, weight_kg=params.WT, crcl_ml_min=params.CrCl)
    if not isinstance(population, Population):
        raise ParameterError(f"population: expected a pkpd.Population; got {type(population).__name__}")
    if regimens is not None and len(regimens) != population.n:
        raise RegimenError(f"regimen: {len(regimens)} regimens for {population.n} subjects")
    unknown = [o for o in outputs if o not in READOUTS]
    if unknown:
        raise ParameterError(f"outputs: unknown readout {unknown[0]!r} (expected some of {', '.join(READOUTS)})")
    max_step_h = _positive("max_step_h", max_step_h)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ParameterError(f"chunk_size: must be an integer >= 1; got {chunk_size!r}")
    if times_h is None:
        t_out = output_times(duration_h, _positive("output_step_h", output_step_h))
    else:
        t_out = _check_times(times_h, duration_h)

    n, n_t = population.n, t_out.size
    n_amounts = len(model.LINEAR_STATES) + 1 if amounts else 0
    n_states = len(model.OBSERVED_STATES) + len(model.SLOW_STATES) if keep_states else 0
    need = 8.0 * n * n_t * (n_states + len(outputs) + n_amounts)
    if need > 0.8 * available_memory_bytes():
        raise ResourceError(
            f"this run needs about {need / 2**30:.1f} GiB for its outputs ({n} subjects x {n_t} times x "
            f"{len(outputs)} readouts) but {available_memory_bytes() / 2**30:.1f} GiB is available; "
            "use fewer subjects, a coarser output step or fewer outputs"
        )
    ind_all = model.individual_parameters(params, population)
    # One grid for the whole population, so that results do not depend on
    # how the subjects are chunked.
    all_regs = [regimen] if regimens is None else regimens
    lags = ind_all["t_lag"] if regimens is not None else np.unique(ind_all["t_lag"])
    nodes, out_index = time_grid(
        t_out, _event_times(all_regs, lags, duration_h), max_step_h, fastest_rate(model.linear_system(ind_all)[0])
    )
    # States at the output times are recorded time-major (rows, T, n), as the
    # solver records them.  With keep_states they are kept for the whole
    # population (the solver writes straight into its chunk's columns) and
    # readouts are computed from them on demand; otherwise each chunk's
    # readouts are computed at once and its states dropped, so that only
    # what was asked for is held.
    record_rows = tuple(range(len(model.LINEAR_STATES))) if amounts else model.OBSERVED_STATES
    row = {state: j for j, state in enumerate(record_rows)}
    keep = keep_states or amounts
    lin_store = np.empty((len(record_rows), n_t, n)) if keep else None
    slow_store = np.empty((len(model.SLOW_STATES), n_t, n)) if keep else None
    out_store = {} if keep else {name: np.empty((n_t, n)) for name in outputs}
    input_store = np.empty((n_t, n)) if amounts else None

    def state_views(lin, slow):
        return {"A_c": lin[row[model.C]], "A_csf": lin[row[model.CSF]], "A_lum": lin[row[model.LUM]],
                "receptor_loss": slow[0], "adaptation": slow[1]}

    def run_chunk(sl: slice) -> int:
        ind = {k: v[sl] for k, v in ind_all.items()}
        chunk_regs = [regimen] * (sl.stop - sl.start) if regimens is None else regimens[sl]
        if keep:
            lin, slow = lin_store[:, :, sl], slow_store[:, :, sl]
        else:
            lin = np.empty((len(record_rows), n_t, sl.stop - sl.start))
            slow = np.empty((len(model.SLOW_STATES), n_t, sl.stop - sl.start))
        total_in = _solve_chunk(chunk_regs, ind, duration_h, t_out, nodes, out_index, record_rows,
                                population.subject_ids[sl], lin, slow)
        if amounts:
            input_store[:, sl] = total_in
        if not keep:
            # in blocks of output times: small temporaries are recycled by the
            # allocator instead of being mapped (and page-faulted) afresh
            for tb in range(0, n_t, _TIME_BLOCK):
                b = slice(tb, tb + _TIME_BLOCK)
                block = {k: v[b] for k, v in state_views(lin, slow).items()}
                for name in outputs:
                    out_store[name][b, sl] = model.readout(name, block, ind)
        return sl.stop - sl.start

    # Chunks are independent (one grid for all), so they can run on several
    # threads: numpy releases the GIL inside its loops.
    workers = max(1, min(os.cpu_count() or 1, MAX_THREADS if threads is None else int(threads)))
    size = min(chunk_size, max(MIN_CHUNK, -(-n // workers)))
    chunks = [slice(s, min(s + size, n)) for s in range(0, n, size)]
    done = 0
    if workers == 1 or len(chunks) == 1:
        for sl in chunks:
            done += run_chunk(sl)
            if progress is not None:
                progress(done, n)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for count in pool.map(run_chunk, chunks):
                done += count
                if progress is not None:
                    progress(done, n)
    amount_out = None
    if amounts:
        amount_out = {name: lin_store[j].T for j, name in enumerate(model.LINEAR_STATES)}
        amount_out["A_input"] = input_store.T
    if keep:
        states = {k: v.T for k, v in state_views(lin_store, slow_store).items()}
        readouts = Readouts(outputs, states, ind_all)
    else:
        readouts = Readouts(outputs, {}, ind_all, computed={k: v.T for k, v in out_store.items()})
    return SimulationResult(t_out, readouts, ind_all, population.subject_ids.copy(), amount_out)


def _solve_chunk(regimens, ind, duration_h, t_out, nodes, out_index, record_rows, subject_ids, x_out, y_out):
    """Integrate one chunk, recording into ``x_out`` (rows, T, n) and ``y_out`` (2, T, n).

    Returns the cumulative input (T, n) when all amounts are recorded, else None.
    """
    n = len(regimens)
    ev = _events(regimens, ind, duration_h)
    A, B = model.linear_system(ind)
    amounts = len(record_rows) == len(model.LINEAR_STATES)
    if not amounts:  # the eliminated amount (last state) feeds nothing: leave it out
        A, B = A[: model.ELIM, : model.ELIM], B[: model.ELIM]
    jumps, inputs = _schedule(ev, nodes, n)
    system = SemiLinearSystem(
        A=A, B=B, n_slow=len(model.SLOW_STATES),
        coefficients=lambda i, x, y: model.slow_coefficients(i, x, y, ind),
        coupled_rows=(model.CSF,),
    )
    try:
        integrate(system, nodes, jumps=jumps, inputs=inputs, record_index=out_index, record_rows=record_rows,
                  y0=np.zeros((len(model.SLOW_STATES), n)), x_out=x_out, y_out=y_out)
    except NonFiniteError as exc:
        i = int(exc.systems[0])
        values = ", ".join(f"{k}={v[i]:.6g}" for k, v in ind.items())
        raise SolverError(
            f"subject {int(subject_ids[i]) + 1}: the solution became non-finite on [0, {duration_h:g}] h "
            f"with {values}"
        ) from None
    return _cumulative_input(ev, t_out, n) if amounts else None


def _cumulative_input(ev: _Events, t_out: np.ndarray, n: int) -> np.ndarray:
    """Amount that has entered the body by each output time, mg, shape (T, n)."""
    total = np.zeros((t_out.size + 1, n))
    first = np.searchsorted(t_out, ev.dose_time - 1e-9, side="left")  # first output that includes it
    np.add.at(total, (first, ev.dose_subject), ev.dose_amount)
    total = np.cumsum(total[:-1], axis=0)
    for s, t0, t1, r in zip(ev.inf_subject, ev.inf_start, ev.inf_stop, ev.inf_rate):
        total[:, s] += r * np.clip(t_out - t0, 0.0, t1 - t0)
    return total
