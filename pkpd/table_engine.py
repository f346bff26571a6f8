"""The event-table engine: simulate an :class:`~pkpd.records.EventTable`.

Rules are those of docs/event-tables.md (NONMEM's).  Design:

* **Segments.**  Each subject's timeline is cut at every record where
  something other than an additive input happens: a reset (EVID 3, 4, or
  SS = 1), a steady state (SS = 1, 2), a change of a value that enters the
  equations (a parameter, WT or CRCL), and a dose record that follows an
  output record at the same TIME (the output must see the state before it).
  Within a segment the subject's coefficients are constant and everything is
  additive, so a segment is one call of :func:`pkpd.solver.integrate` from an
  initial state (linear ``x0``, slow ``y0``) with a :class:`pkpd.events.Schedule`
  of the boluses and rate windows that fall in it.  Pending inputs (lagged
  doses, ADDL copies, infusions and steady-state tails) belong to the
  subject, not the segment: what a segment does not reach carries over.
* **Batching.**  Subjects without any cut (no reset, no steady state, no
  value change, no dose after an output at the same time) form one segment
  each from time 0 and are integrated together in one batch on one shared
  grid, as :func:`pkpd.simulate` does.  Subjects with cuts are grouped by
  record structure (the same TIME, EVID and SS on every record and value
  changes on the same records; amounts, rates, II, ADDL, lags and values
  may differ) and each group runs its segments in lock step, one batch per
  segment.
* **Steady states** (:mod:`pkpd.steady_state`): linear part exact from the
  matrix exponential; slow part the exact fixed point of the period map
  (affine in each slow state), with no iteration.  An SS = 1 record resets
  the subject, so its steady state depends on the record and the values in
  force only: all of them are solved first, in batches of records with the
  same dose timing.  A subject whose *first* record is an SS = 1 dose of a
  periodic regimen needs no cut: it joins a batch that starts from each
  subject's steady state at that time (the chronic patient of a dataset).
* **Engine.**  Segments are integrated by the engine chosen as for
  :func:`pkpd.simulate` (``engine=``, ``$PKPD_ENGINE``); steady states by
  the numpy path.

A value that changes on a record takes effect after the record's own event
(rule 10): the readouts of an output row use the values in force before it.
Dose parameters (F, ALAG, R, D of the dose's compartment) are those of the
dose record itself; F1 defaults to F_ir and ALAG1 to t_lag, other Fn to 1
and ALAGn to 0.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from dataclasses import dataclass
from itertools import chain
from typing import Mapping

import numpy as np

from . import events, kernel, model, resources, steady_state
from .errors import ParameterError, RegimenError, SolverError
from .parameters import PARAMETER_INFO, Parameters, default_parameters
from .population import Population
from .records import DOSABLE_CMTS, DOSE, RESET, RESET_DOSE, Columns, EventTable, Record, TextColumn
from .solver import NonFiniteError, SemiLinearSystem, fastest_rate, integrate, node_of, time_grid
from .steady_state import NL, NS, Dosing
from .units import TIME_TOLERANCE_H

READOUTS = model.READOUTS
_PARAM_NAMES = tuple(f.name for f in dataclasses.fields(Parameters))
#: Values that enter the equations: a change of one cuts a segment.
_EQUATION_KEYS = _PARAM_NAMES + ("WT", "CRCL")
#: States the readouts read.
_READ_STATES = tuple(dict.fromkeys(s for r in READOUTS for s in model.READOUT_STATES[r]))
_READ_ROWS = tuple(i for i, s in enumerate(model.LINEAR_STATES) if s in _READ_STATES)
_TOL = TIME_TOLERANCE_H
#: Individual parameters the readouts read, and the covariates reported.
_ROW_KEYS = ("V_c", "V_lum", "V_csf", "Kd", "g", "tau", "EC50_cns", "n_cns", "WT", "CrCl")
#: Every readout of an output row: the CSV's, then the API-only ones.
_ALL_READOUTS = READOUTS + model.EXTRA_READOUTS
#: Subjects per block when the readouts are computed (keeps the temporaries in cache).
_SUBJECT_BLOCK = 256
#: Most subjects integrated together (bounds the recorded states: 4 x outputs x subjects x 8 bytes).
_BATCH_SUBJECTS = 4096


@dataclass(frozen=True)
class TableResult:
    """The output rows of a simulated event table (EVID 0 and 2), in file order.

    Attributes
    ----------
    subject_id : ndarray of object
        ID as written in the table.
    number : ndarray of int
        Subject position in the table, from 1.
    row : ndarray of int
        Data row number of the record (first row after the header is 1).
    time_h, evid : ndarray
        TIME (h) and EVID of the record.
    readouts : mapping of str to ndarray
        Every readout of :data:`pkpd.model.READOUTS`, in spec order.
    covariates : mapping of str to ndarray
        ``WT`` (kg) and ``CRCL`` (mL/min) in force for the readouts.
    carried : mapping of str to ndarray of object (or a coded :class:`pkpd.records.TextColumn`)
        Carried columns, as text.
    """

    subject_id: np.ndarray
    number: np.ndarray
    row: np.ndarray
    time_h: np.ndarray
    evid: np.ndarray
    readouts: Mapping[str, np.ndarray]
    covariates: Mapping[str, np.ndarray]
    carried: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.time_h.size)

    def to_columns(self) -> "OrderedDict[str, np.ndarray]":
        """Columns ID, TIME, EVID, the readouts, WT, CRCL, then the carried columns."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        out["ID"] = self.subject_id
        out["TIME"] = self.time_h
        out["EVID"] = self.evid
        for name in READOUTS:
            out[name] = self.readouts[name]
        out["WT"] = self.covariates["WT"]
        out["CRCL"] = self.covariates["CRCL"]
        for name, col in self.carried.items():
            out[name] = col
        return out


class _Individuals:
    """Individual parameters from the values in force, for many subjects in one vectorised call."""

    def __init__(self, base: Parameters):
        self._base = base

    @staticmethod
    def key(values: Mapping[str, float]) -> tuple:
        return tuple(values.get(k) for k in _EQUATION_KEYS)

    def batch(self, values_list) -> dict[str, np.ndarray]:
        """Individual parameters, arrays (n,), one subject per mapping of values.

        One call of :func:`pkpd.model.individual_parameters` for all of them:
        the typical values it reads are arrays where the subjects' values differ.
        """
        keys = [k for k in _PARAM_NAMES if any(k in v for v in values_list)]
        typical = self._base.as_dict()
        for k in keys:
            col = np.array([float(v.get(k, math.nan)) for v in values_list])
            given = ~np.isnan(col)
            for x in np.unique(col[given]).tolist():  # the reader checked them; a table made by hand may not be
                PARAMETER_INFO[k].check(x)
            typical[k] = np.where(given, col, typical[k])
        pop = Population(weight_kg=np.array([float(v.get("WT", 70.0)) for v in values_list]),
                         crcl_ml_min=np.array([float(v.get("CRCL", 100.0)) for v in values_list]))
        return model.individual_parameters(_Typical(typical), pop)


class _Typical:
    """Typical values for :func:`pkpd.model.individual_parameters`, some of them one per subject."""

    def __init__(self, values: dict):
        self._values = values

    def as_dict(self) -> dict:
        return dict(self._values)


def _dosing(rec: Record, ind: Mapping[str, np.ndarray]) -> Dosing:
    """The dose of a record with its compartment's F, ALAG, R, D (read at the record)."""
    c = rec.cmt
    v = rec.values
    f = float(v.get(f"F{c}", ind["F_ir"][0] if c == 1 else 1.0))
    lag = float(v.get(f"ALAG{c}", ind["t_lag"][0] if c == 1 else 0.0))
    amount = f * rec.amt
    rate = duration = 0.0
    if rec.rate > 0:
        rate, duration = rec.rate, amount / rec.rate
    elif rec.rate == -1:
        rate = float(v.get(f"R{c}", math.nan))
        if not rate > 0:
            raise RegimenError(f"row {rec.row}: RATE -1 needs R{c} > 0; got {rate!r}")
        duration = amount / rate
    elif rec.rate == -2:
        duration = float(v.get(f"D{c}", math.nan))
        if not duration >= 0:
            raise RegimenError(f"row {rec.row}: RATE -2 needs D{c} >= 0; got {duration!r}")
        rate = amount / duration if duration > 0 else 0.0  # a zero duration is a bolus
    return Dosing(state=c - 1, amount=amount, lag=lag, rate=rate, duration=duration)


def _expand(rec: Record, dose: Dosing, boluses: list, windows: list) -> None:
    """Add a dose record's dose and its ADDL copies to the pending inputs."""
    for k in range(int(rec.addl) + 1):
        t = rec.time + k * rec.ii + dose.lag
        if dose.is_infusion:
            if dose.duration > 0:
                windows.append([t, t + dose.duration, dose.state, dose.rate])
        elif dose.amount > 0:
            boluses.append([t, dose.state, dose.amount, False])


def _schedule(n, boluses, windows) -> events.Schedule:
    """``boluses``: (subject, state, time, amount); ``windows``: (subject, input, start, stop, rate)."""
    b = np.asarray(boluses, float).reshape(-1, 4)
    w = np.asarray(windows, float).reshape(-1, 5)
    return events.Schedule(n, b[:, 0].astype(int), b[:, 1].astype(int), b[:, 2], b[:, 3],
                           w[:, 0].astype(int), w[:, 1].astype(int), w[:, 2], w[:, 3], w[:, 4])


@dataclass(frozen=True)
class _How:
    """How segments are integrated: the largest step of the slow part (h) and the engine."""

    max_step_h: float
    engine: str = "numpy"
    may_compile: bool = False  # see pkpd.kernel.may_compile


def _integrate(ind, t0, t1, x0, y0, schedule, out_times, record_rows, how: _How, who=""):
    """One segment for a batch: states at ``marks`` (sorted union of out_times, t0, t1).

    Returns (marks, x_rec (len(record_rows), T, n), y_rec (NS, T, n)).
    """
    marks = np.unique(np.concatenate([np.asarray(out_times, float), [t0, t1]]))
    if marks.size > 1:
        marks = marks[np.concatenate([[True], np.diff(marks) > _TOL])]
    A, B = model.linear_system(ind)
    ev = schedule.times()
    ev = ev[(ev >= t0 - _TOL) & (ev <= t1 + _TOL)]
    nodes, idx = time_grid(marks, ev, how.max_step_h, fastest_rate(A))
    jumps, inputs = schedule.solver_input(nodes, node_of)
    memo: dict = {}
    system = SemiLinearSystem(A=A, B=B, n_slow=NS,
                              coefficients=lambda i, x, y: model.slow_coefficients(i, x, y, ind, memo),
                              coupled_rows=model.COUPLED_STATES)
    try:
        args = dict(jumps=jumps, inputs=inputs, record_index=idx, record_rows=record_rows, y0=y0, x0=x0)
        if how.engine == "numba":
            x_rec, y_rec = kernel.integrate(system, nodes, slow_parameters=model.slow_parameters(ind),
                                            may_compile=how.may_compile, **args)
        else:
            x_rec, y_rec = integrate(system, nodes, **args)
    except NonFiniteError as exc:
        raise SolverError(f"{who}the solution became non-finite on [{t0:g}, {t1:g}] h "
                          f"(system {int(exc.systems[0])})") from None
    return marks, x_rec, y_rec


class _Outputs:
    """The readouts and covariates of the output rows, filled batch by batch as the states come."""

    def __init__(self, n_rows: int):
        with resources.ordinary_pages(8.0 * n_rows * (len(_ALL_READOUTS) + 2)):  # 1.2 GB for 10,000 subjects
            self.readouts = {name: np.empty(n_rows) for name in _ALL_READOUTS}
            self.covariates = {"WT": np.empty(n_rows), "CRCL": np.empty(n_rows)}
        self.n = n_rows
        self.filled = 0  # rows put so far: every row exactly once (checked by simulate_table)

    def put(self, pos, states: Mapping[str, np.ndarray], ind: Mapping[str, np.ndarray]) -> None:
        """Rows ``pos`` (positions, or a slice) from states of one shape and parameters that broadcast to it.

        The states' elements, flattened in C order, are the rows of ``pos`` in order.
        """
        shape = np.shape(states[_READ_STATES[0]])
        self.filled += int(np.prod(shape))
        for name in _ALL_READOUTS:
            self.readouts[name][pos] = np.broadcast_to(model.readout(name, states, ind), shape).reshape(-1)
        for column, key in (("WT", "WT"), ("CRCL", "CrCl")):
            self.covariates[column][pos] = np.broadcast_to(ind[key], shape).reshape(-1)


def _columns_of(table: EventTable, subjects) -> Columns:
    """The table's records as columns: the reader's, or built from the records of a table made by hand."""
    data = table.data
    if data is not None and len(subjects) == len(table.subjects) and all(
            s.data is data for s in subjects) and [s.span for s in subjects] == list(
            zip(data.starts[:-1].tolist(), data.starts[1:].tolist())):
        return data
    recs = list(chain.from_iterable(s.records for s in subjects))
    lengths = [len(s.records) for s in subjects]
    keys = dict.fromkeys(k for r in recs for k in r.values)
    nan = math.nan
    return Columns(
        starts=np.concatenate([[0], np.cumsum(lengths)]).astype(int),
        row=np.array([r.row for r in recs], int), time=np.array([r.time for r in recs], float),
        evid=np.array([r.evid for r in recs], int), amt=np.array([r.amt for r in recs], float),
        cmt=np.array([r.cmt for r in recs], int), rate=np.array([r.rate for r in recs], float),
        ii=np.array([r.ii for r in recs], float), addl=np.array([r.addl for r in recs], int),
        ss=np.array([r.ss for r in recs], int),
        values={k: np.array([float(r.values.get(k, nan)) for r in recs], float) for k in keys},
        carried={c: [r.carried.get(c, "") for r in recs] for c in table.carried})


def _changes(data: Columns, same: np.ndarray) -> np.ndarray:
    """Records where a value that enters the equations differs from the subject's previous record."""
    changed = np.zeros(len(data), bool)
    for k in _EQUATION_KEYS:
        v = data.values.get(k)
        if v is None:
            continue
        at = data.written.get(k)  # a value changes only where one is written (when the reader says where)
        at = np.arange(1, len(data)) if at is None else at[at > 0]
        a, b = v[at], v[at - 1]
        changed[at] |= ~((a == b) | (np.isnan(a) & np.isnan(b)))
    return changed & same


@dataclass(frozen=True)
class _RowIndex:
    """The dose rows and the output rows of a table, and where each subject's begin in them."""

    dose_rows: np.ndarray  # ascending
    dose_start: np.ndarray  # (subjects + 1,): subject k's dose rows are dose_rows[dose_start[k]:dose_start[k + 1]]
    out_rows: np.ndarray  # ascending; the output row of rank r is out_rows[r]
    out_start: np.ndarray

    @classmethod
    def of(cls, data: Columns, is_dose: np.ndarray, is_out: np.ndarray) -> "_RowIndex":
        dose_rows, out_rows = np.flatnonzero(is_dose), np.flatnonzero(is_out)
        return cls(dose_rows, np.searchsorted(dose_rows, data.starts), out_rows, np.searchsorted(out_rows, data.starts))

    @staticmethod
    def _take(start: np.ndarray, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions (into the row list) of subjects ``sel``'s rows, in order, and the batch subject of each."""
        counts = start[sel + 1] - start[sel]
        total = int(counts.sum())
        offset = np.repeat(start[sel] - (np.cumsum(counts) - counts), counts)
        return offset + np.arange(total), np.repeat(np.arange(sel.size), counts)

    def doses(self, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dose rows of subjects ``sel``, and the batch subject of each."""
        k, who = self._take(self.dose_start, sel)
        return self.dose_rows[k], who

    def outputs(self, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Output rows of subjects ``sel``, their ranks among the table's outputs, and the batch subject of each."""
        k, who = self._take(self.out_start, sel)
        return self.out_rows[k], k, who


def _run_batch(data: Columns, sel: np.ndarray, rows: _RowIndex, cache: _Individuals, outputs: _Outputs,
               how: _How, steady: bool = False) -> None:
    """Subjects ``sel`` (without cuts): one batch, one shared grid, from time 0 (or the earliest record).

    Everything from the columns: the dose records expand into a
    :class:`pkpd.events.Schedule` in one vectorised step, and the states
    are recorded at the output records only.  With ``steady``, every
    subject's first record is an SS = 1 dose of a periodic regimen at the
    same time: the batch starts there, from each subject's steady state
    (:func:`_steady_start`), with the infusion copies still running.
    """
    n = sel.size
    first = data.starts[sel]
    last = data.starts[sel + 1] - 1
    eq = [(k, data.values[k][first].tolist()) for k in _EQUATION_KEYS if k in data.values]
    ind = cache.batch([{k: col[i] for k, col in eq if col[i] == col[i]} for i in range(n)])
    idx, i = rows.doses(sel)
    c = data.cmt[idx]
    f = np.where(c == 1, ind["F_ir"][i], 1.0)
    lag = np.where(c == 1, ind["t_lag"][i], 0.0)
    rate_in = {"R": np.full(idx.size, np.nan), "D": np.full(idx.size, np.nan)}
    for cc in DOSABLE_CMTS:
        at = c == cc
        if not at.any():
            continue
        for name, target in ((f"F{cc}", f), (f"ALAG{cc}", lag), (f"R{cc}", rate_in["R"]), (f"D{cc}", rate_in["D"])):
            col = data.values.get(name)
            if col is not None:
                v = col[idx[at]]
                target[at] = np.where(np.isnan(v), target[at], v)
    amount = f * data.amt[idx]
    code = data.rate[idx]
    rate = np.zeros(idx.size)
    duration = np.zeros(idx.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = code > 0
        rate[pos] = code[pos]
        duration[pos] = amount[pos] / code[pos]
        broken = ((code == -1) & ~(rate_in["R"] > 0)) | ((code == -2) & ~(rate_in["D"] >= 0))
        if broken.any():
            j = int(np.argmax(broken))
            what = f"R{c[j]} > 0" if code[j] == -1 else f"D{c[j]} >= 0"
            got = rate_in["R" if code[j] == -1 else "D"][j]
            raise RegimenError(f"row {int(data.row[idx[j]])}: RATE {int(code[j])} needs {what}; got {float(got)!r}")
        for value, prefix in ((-1.0, "R"), (-2.0, "D")):
            at = code == value
            if not at.any():
                continue
            given = rate_in[prefix][at]
            if prefix == "R":
                rate[at] = given
                duration[at] = amount[at] / given
            else:
                duration[at] = given
                rate[at] = np.where(given > 0, amount[at] / np.where(given > 0, given, 1.0), 0.0)
    t0 = min(0.0, float(data.time[first].min()))
    x0, y0, tails = None, np.zeros((NS, n)), None
    if steady:
        t0 = float(data.time[first[0]])
        x0, y0, tails = _steady_start(data, idx, i, c - 1, amount, lag, rate, duration, ind, n, how.max_step_h)
    copies = data.addl[idx] + 1
    k = np.arange(copies.sum()) - np.repeat(np.cumsum(copies) - copies, copies)  # copy number 0..ADDL
    rep = lambda a: np.repeat(a, copies)  # noqa: E731
    start = rep(data.time[idx]) + k * rep(data.ii[idx]) + rep(lag)
    e_rate, e_amount, e_dur, e_who, e_state = rep(rate), rep(amount), rep(duration), rep(i), rep(c - 1)
    infusion = e_rate > 0
    bol = ~infusion & (e_amount > 0)
    win = infusion & (e_dur > 0)
    t1 = float(data.time[last].max())
    keep = bol & (start <= t1 + _TOL)  # inputs after the last record matter to nothing
    live = win & (start < t1)
    w_who, w_state, w_start, w_stop, w_rate = (e_who[live], e_state[live], start[live],
                                               np.minimum(start[live] + e_dur[live], t1), e_rate[live])
    if tails is not None:
        w_who, w_state, w_start, w_stop, w_rate = (np.concatenate([a, b]) for a, b in zip(
            (w_who, w_state, w_start, w_stop, w_rate), (tails[0], tails[1], np.full(tails[0].size, t0),
                                                        np.minimum(t0 + tails[2], t1), tails[3])))
    sched = events.Schedule(n, e_who[keep], e_state[keep], start[keep], e_amount[keep],
                            w_who, w_state, w_start, w_stop, w_rate)
    oidx, out_pos, who = rows.outputs(sel)
    if oidx.size == 0:
        return
    out_times = data.time[oidx]
    counts = np.bincount(who, minlength=n)
    m = int(counts[0])
    if np.all(counts == m) and m and np.array_equal(
            out_times.reshape(n, m), np.broadcast_to(out_times[:m], (n, m))):
        # every subject has the same output times (a scenario written as a table): a transpose, no gather
        grid = out_times[:m]
        marks, x_rec, y_rec = _integrate(ind, t0, t1, x0, y0, sched, grid, _READ_ROWS, how)
        kk = np.searchsorted(marks, grid - _TOL, side="left")
        if kk.size == marks.size and np.array_equal(kk, np.arange(marks.size)):
            kk = slice(None)  # every mark is an output time, once
        pos = out_pos.reshape(n, m)
        runs = bool(np.all(np.diff(out_pos) == 1))  # the batch's rows are one run of the output
        for a in range(0, n, _SUBJECT_BLOCK):  # subject by subject (file order), in cache-sized blocks
            b = min(n, a + _SUBJECT_BLOCK)
            states = {model.LINEAR_STATES[r]: np.ascontiguousarray(x_rec[j][kk, a:b].T) for j, r in enumerate(_READ_ROWS)}
            states.update({s: np.ascontiguousarray(y_rec[j][kk, a:b].T) for j, s in enumerate(model.SLOW_STATES)})
            where = slice(int(pos[a, 0]), int(pos[a, 0]) + (b - a) * m) if runs else pos[a:b].reshape(-1)
            outputs.put(where, states, {key: ind[key][a:b, None] for key in _ROW_KEYS})
        return
    marks, x_rec, y_rec = _integrate(ind, t0, t1, x0, y0, sched, out_times, _READ_ROWS, how)
    kk = np.searchsorted(marks, out_times - _TOL, side="left")
    states = {model.LINEAR_STATES[r]: x_rec[j][kk, who] for j, r in enumerate(_READ_ROWS)}
    states.update({s: y_rec[j][kk, who] for j, s in enumerate(model.SLOW_STATES)})
    outputs.put(out_pos, states, {key: ind[key][who] for key in _ROW_KEYS})


def _steady_start(data: Columns, idx, who, state, amount, lag, rate, duration, ind, n, max_step_h):
    """Steady states of the SS = 1 first records of a batch, grouped by dose timing and solved together.

    ``idx`` the batch's dose rows, ``who`` their subject in the batch and
    ``state``, ``amount``, ``lag``, ``rate``, ``duration`` their doses (after
    F, ALAG, R, D).  Returns ``x0`` (NL, n), ``y0`` (NS, n) and the infusion
    copies of the past regimen still running at the record, as arrays
    (subject, input, time left (h), rate).
    """
    x0, y0 = np.zeros((NL, n)), np.zeros((NS, n))
    firsts = np.flatnonzero(data.ss[idx] == 1)  # one per subject: its first record
    ii = data.ii[idx[firsts]]
    timing = np.stack([ii, state[firsts], lag[firsts], rate[firsts] > 0, duration[firsts]], axis=1)
    _, group = np.unique(timing, axis=0, return_inverse=True)
    tails: list = [[], [], [], []]
    for g in range(int(group.max()) + 1):
        rows = firsts[group.reshape(-1) == g]
        subj = who[rows]
        doses = [Dosing(state=int(state[r]), amount=float(amount[r]), lag=float(lag[r]), rate=float(rate[r]),
                        duration=float(duration[r])) for r in rows.tolist()]
        sub = {k: v[subj] for k, v in ind.items()}
        A, B = model.linear_system(sub)
        period = float(ii[group.reshape(-1) == g][0])
        x0[:, subj] = steady_state.periodic_linear_batch(A, B, doses, period)
        y0[:, subj] = steady_state.periodic_slow_batch(sub, x0[:, subj], doses, period, max_step_h)
        for stop, _ in steady_state.tails(doses[0], period):  # same timing: the same copies, each at its rate
            tails[0].append(subj), tails[1].append(np.full(subj.size, doses[0].state))
            tails[2].append(np.full(subj.size, stop)), tails[3].append(rate[rows])
    cat = [np.concatenate(t) if t else np.zeros(0) for t in tails]
    return x0, y0, (cat[0].astype(int), cat[1].astype(int), cat[2], cat[3])


class _Group:
    """Subjects with the same record structure, run segment by segment in lock step.

    The subjects of a group have the same TIME, EVID and SS on every record
    and change equation values on the same records, so they share their
    segments (amounts, rates, II, ADDL, lags and values may differ).
    """

    def __init__(self, subjects, positions, cache: _Individuals, outputs: _Outputs, how: _How, changes, slow_ss):
        self.subjects, self.positions, self.cache, self.outputs = subjects, positions, cache, outputs
        self.slow_ss = slow_ss  # per subject: record index -> periodic (linear, slow) states and dose
        self.changes = changes  # records whose new equation values take effect after their event
        self.how = how
        self.n = len(subjects)
        self.boluses: list = []  # [time, state, amount, applied, subject]
        self.windows: list = []  # [start, stop, input, rate, subject]
        ids = [s.id for s in subjects]
        self.who = f"subject {ids[0]}: " if self.n == 1 else f"subjects {', '.join(ids[:5])}{'...' * (self.n > 5)}: "

    def _records(self, j: int) -> list:
        return [s.record(j) for s in self.subjects]

    def run(self) -> None:
        recs = self.subjects[0].records
        self.ind = self.cache.batch([r.values for r in self._records(0)])
        self.t0 = min(0.0, recs[0].time)
        self.x0 = np.zeros((NL, self.n))
        self.y0 = np.zeros((NS, self.n))
        self.seg_out: list[int] = []
        for j, rec in enumerate(recs):
            t = rec.time
            cut = rec.evid in (RESET, RESET_DOSE) or (rec.is_dose and rec.ss) or (
                rec.is_dose and any(abs(recs[o].time - t) <= _TOL for o in self.seg_out))
            if cut:
                self._close(t)
                if rec.evid in (RESET, RESET_DOSE) or (rec.is_dose and rec.ss == 1):
                    self._reset(t)
                if rec.is_dose and rec.ss:
                    for i, r in enumerate(self._records(j)):
                        self._steady_state(i, r, j)
            if rec.is_output:
                self.seg_out.append(j)
            if rec.is_dose:
                group = self._records(j)
                ind_j = self.cache.batch([r.values for r in group])
                for i, r in enumerate(group):
                    if r.ss == 1 and r.ii == 0:  # rule 7: the constant infusion stops here
                        continue
                    b: list = []
                    w: list = []
                    _expand(r, _dosing(r, {"F_ir": ind_j["F_ir"][i : i + 1], "t_lag": ind_j["t_lag"][i : i + 1]}), b, w)
                    self.boluses += [x + [i] for x in b]
                    self.windows += [x + [i] for x in w]
            if j in self.changes:
                self._close(t)
                self.ind = self.cache.batch([r.values for r in self._records(j)])
        self._close(recs[-1].time)

    def _close(self, t1: float) -> None:
        """Integrate the open segment up to ``t1``: record its outputs, carry the state."""
        t0 = self.t0
        due = [b for b in self.boluses if not b[3] and b[0] <= t1 + _TOL]
        for b in due:
            b[3] = True
        wins = [(max(w[0], t0), min(w[1], t1), w[2], w[3], w[4]) for w in self.windows]
        wins = [w for w in wins if w[1] > w[0] + _TOL]
        out = self.seg_out
        if t1 - t0 <= _TOL:  # nothing to integrate: only the boluses landing now
            x = self.x0.copy()
            for b in due:
                x[b[1], b[4]] += b[2]
            self._record(out, {model.LINEAR_STATES[r]: np.broadcast_to(x[r], (len(out), self.n)) for r in range(NL)},
                         {s: np.broadcast_to(self.y0[i], (len(out), self.n)) for i, s in enumerate(model.SLOW_STATES)})
            self.x0 = x
        else:
            sched = _schedule(self.n, [(b[4], b[1], max(b[0], t0), b[2]) for b in due],
                              [(w[4], w[2], w[0], w[1], w[3]) for w in wins])
            times = [self.subjects[0].records[o].time for o in out]
            marks, x_rec, y_rec = _integrate(self.ind, t0, t1, self.x0, self.y0, sched, times,
                                             tuple(range(NL)), self.how, self.who)
            k = np.searchsorted(marks, np.asarray(times, float) - _TOL, side="left")
            self._record(out, {s: x_rec[r][k] for r, s in enumerate(model.LINEAR_STATES)},
                         {s: y_rec[i][k] for i, s in enumerate(model.SLOW_STATES)})
            self.x0 = x_rec[:, -1, :].copy()
            self.y0 = y_rec[:, -1, :].copy()
        self.t0 = t1
        self.seg_out = []

    def _record(self, out, lin, slow) -> None:
        """Store the states (len(out), n) of the segment's output records."""
        if not out:
            return
        states = {k: np.asarray(v).reshape(-1) for k, v in {**lin, **slow}.items()}
        pos = np.array([[self.positions[i][o] for i in range(self.n)] for o in out]).reshape(-1)
        ind = {k: np.broadcast_to(self.ind[k], (len(out), self.n)).reshape(-1) for k in _ROW_KEYS}
        self.outputs.put(pos, states, ind)

    def _reset(self, t: float) -> None:
        """Rule 9: every state to its t = 0 value; infusions running at t stop; later inputs still come."""
        self.x0 = np.zeros((NL, self.n))
        self.y0 = np.zeros((NS, self.n))
        for w in self.windows:
            if w[0] <= t + _TOL and w[1] > t:
                w[1] = t

    def _steady_state(self, i: int, rec: Record, j: int) -> None:
        """Rules 5-8: the steady state of subject ``i``'s record at its time."""
        found = self.slow_ss[i].get(j) if rec.ss == 1 and rec.ii > 0 else None
        if found is not None:  # solved in a batch beforehand (:func:`_periodic_slow_states`)
            x, y, dose = found
            self.x0[:, i] = x
            self.y0[:, i] = y
            for stop, rate in steady_state.tails(dose, rec.ii):
                self.windows.append([rec.time, rec.time + stop, dose.state, rate, i])
            return
        ind = {k: v[i : i + 1] for k, v in self.ind.items()}
        A, B = model.linear_system(ind)
        A, B = A[..., 0], B[..., 0]
        dose = _dosing(rec, self.cache.batch([rec.values]))
        if rec.ii == 0:  # rule 7: constant infusion at RATE
            rate = dose.rate if dose.rate > 0 else rec.rate
            x = steady_state.constant_linear(A, B, dose.state, rate)
            if rec.ss == 1:
                self.x0[:, i] = x
                self.y0[:, i] = steady_state.constant_slow(x, ind)
            else:
                self.x0[:, i] += x
            return
        x = steady_state.periodic_linear(A, B, dose, rec.ii)
        if rec.ss == 1:
            self.x0[:, i] = x
            self.y0[:, i] = steady_state.periodic_slow(ind, x, dose, rec.ii, self.how.max_step_h)
        else:  # rule 8: linear states add; the slow states keep their values
            x[model.ELIM] = 0.0
            self.x0[:, i] += x
        for stop, rate in steady_state.tails(dose, rec.ii):
            self.windows.append([rec.time, rec.time + stop, dose.state, rate, i])


def _periodic_slow_states(subjects, cache: _Individuals, max_step_h) -> dict:
    """The steady state of every SS = 1 record of a periodic regimen, computed in batches.

    ``subjects``: pairs (subject, positions of its SS = 1 dose records with II > 0).

    An SS = 1 record resets the subject, so its steady state depends only on
    the record and the values in force before it: all of them are found
    first, grouped by dose timing, and solved together.  Returns
    ``{subject number: {record index: (linear states (NL,), slow states (NS,), Dosing)}}``.
    """
    items = []
    for subj, where in subjects:
        for j in where.tolist():
            rec = subj.record(j)
            items.append((subj.number, j, subj.record(j - 1).values if j else rec.values, rec))
    if not items:
        return {}
    ind_all = cache.batch([it[2] for it in items])
    ind_rec = cache.batch([it[3].values for it in items])
    doses = [_dosing(rec, {"F_ir": ind_rec["F_ir"][c : c + 1], "t_lag": ind_rec["t_lag"][c : c + 1]})
             for c, (_, _, _, rec) in enumerate(items)]
    jobs: dict = {}
    for c, ((_, _, _, rec), dose) in enumerate(zip(items, doses)):
        jobs.setdefault((rec.ii, dose.state, dose.lag, dose.is_infusion, dose.duration), []).append(c)
    out: dict = {}
    for (ii, *_), members in jobs.items():
        idx = np.asarray(members)
        ind = {k: v[idx] for k, v in ind_all.items()}
        A, B = model.linear_system(ind)
        group = [doses[c] for c in members]
        xs = steady_state.periodic_linear_batch(A, B, group, ii)
        y = steady_state.periodic_slow_batch(ind, xs, group, ii, max_step_h)
        for col, c in enumerate(members):
            number, j = items[c][0], items[c][1]
            out.setdefault(number, {})[j] = (xs[:, col], y[:, col], group[col])
    return out


def _output_rows(column, rows: np.ndarray):
    """A carried column at the output rows: still coded when it came coded (a :class:`TextColumn`)."""
    if isinstance(column, TextColumn):
        return TextColumn(column.codes[rows], column.texts)
    return np.asarray(column, dtype=object)[rows]


def _blocks(subjects: np.ndarray) -> list[np.ndarray]:
    """``subjects`` in batches of at most :data:`_BATCH_SUBJECTS`, of near-equal sizes (none when empty)."""
    return np.array_split(subjects, -(-subjects.size // _BATCH_SUBJECTS)) if subjects.size else []


def simulate_table(table: EventTable, parameters: Parameters | None = None, *, max_step_h: float = 0.5,
                   engine: str | None = None) -> TableResult:
    """Simulate every subject of an event table; one output row per EVID 0 and 2 record.

    Parameters
    ----------
    table : EventTable
        Normalised records (from :mod:`pkpd.event_table`, or built directly).
    parameters : Parameters, optional
        Typical values (default :func:`default_parameters`); a column of the
        same name in the table overrides it for that subject from that record on.
    max_step_h : float
        Largest integration step of the slow states, h (the linear part is exact).
    engine : {"auto", "numpy", "numba"}, optional
        As for :func:`pkpd.simulate` (default ``$PKPD_ENGINE``, else
        ``"auto"``): the compiled kernel integrates the segments when chosen;
        steady states are always solved by the numpy path.

    Returns
    -------
    TableResult
    """
    base = default_parameters() if parameters is None else parameters
    if not isinstance(base, Parameters):
        raise ParameterError(f"parameters: expected a pkpd.Parameters; got {type(base).__name__}")
    if isinstance(max_step_h, bool) or not isinstance(max_step_h, (int, float)) or not (
            math.isfinite(max_step_h) and max_step_h > 0):
        raise ParameterError(f"max_step_h: must be finite and > 0; got {max_step_h!r}")
    if not isinstance(table, EventTable):
        raise ParameterError(f"table: expected a pkpd.records.EventTable; got {type(table).__name__}")
    cache = _Individuals(base)
    subjects = [subj for subj in table.subjects if len(subj)]
    data = _columns_of(table, subjects) if subjects else None
    if data is None or len(data) == 0:
        return _empty(table.carried)
    how = _How(float(max_step_h), kernel.choose(engine, float(len(data))), kernel.may_compile(engine, len(data)))
    n = len(data)
    starts = data.starts[:-1]
    subject_at = lambda r: np.searchsorted(data.starts, r, side="right") - 1  # noqa: E731  (rows -> subjects)
    evid, times = data.evid, data.time
    is_out = (evid == 0) | (evid == 2)
    is_dose = (evid == DOSE) | (evid == RESET_DOSE)
    same = np.ones(n, bool)  # the row's subject is the previous row's
    same[starts] = False
    changed = _changes(data, same)
    # a subject needs segments when anything but additive inputs from one start happens
    cut = np.zeros(len(subjects), bool)
    periodic = is_dose & (data.ss == 1) & (data.ii > 0)
    # an SS = 1 dose as a subject's first record only sets where the subject starts: no cut
    steady = periodic[starts]
    steady_first = np.zeros(n, bool)
    steady_first[starts[steady]] = True
    cut[subject_at(np.flatnonzero((evid == RESET) | (evid == RESET_DOSE) | (is_dose & (data.ss != 0) & ~steady_first)
                                  | changed))] = True
    rows_of = _RowIndex.of(data, is_dose, is_out)
    out_rows, dose_rows = rows_of.out_rows, rows_of.dose_rows
    last = np.searchsorted(out_rows, dose_rows) - 1  # each dose row's last output row before it
    prev = out_rows[np.maximum(last, 0)] if out_rows.size else np.zeros(0, int)
    dose_subject = subject_at(dose_rows)
    after_out = (last >= 0) & (prev >= starts[dose_subject]) & (np.abs(times[prev] - times[dose_rows]) <= _TOL)
    cut[dose_subject[after_out]] = True
    counts = np.diff(rows_of.out_start)
    rows, times_out, evids = data.row[out_rows], times[out_rows], evid[out_rows]
    carried = {c: _output_rows(data.carried[c], out_rows) for c in table.carried}
    outputs = _Outputs(int(out_rows.size))
    simple = np.flatnonzero(~cut & ~steady)
    for block in _blocks(simple):
        _run_batch(data, block, rows_of, cache, outputs, how)
    from_ss = np.flatnonzero(~cut & steady)
    starts_at = data.time[data.starts[:-1][from_ss]]
    for t in np.unique(starts_at).tolist():  # one batch per start time
        same_start = from_ss[starts_at == t]
        for block in _blocks(same_start):
            _run_batch(data, block, rows_of, cache, outputs, how, steady=True)
    segmented = []
    for k in np.flatnonzero(cut).tolist():
        a, b = int(data.starts[k]), int(data.starts[k + 1])
        rank = np.arange(rows_of.out_start[k], rows_of.out_start[k + 1])  # output ranks of the subject's rows
        segmented.append((subjects[k], dict(zip((out_rows[rank] - a).tolist(), rank.tolist())), a, b))
    slow_ss = _periodic_slow_states([(s, np.flatnonzero(periodic[a:b])) for s, _, a, b in segmented], cache,
                                    max_step_h)
    groups: dict = {}
    for subj, positions, a, b in segmented:
        changes = frozenset((np.flatnonzero(changed[a:b])).tolist())
        key = (times[a:b].tobytes(), evid[a:b].tobytes(), data.ss[a:b].tobytes(), changes)
        groups.setdefault(key, []).append((subj, positions))
    for (_, _, _, changes), members in groups.items():
        _Group([m[0] for m in members], [m[1] for m in members], cache, outputs, how, changes,
               [slow_ss.get(m[0].number, {}) for m in members]).run()
    if outputs.filled != outputs.n:
        raise SolverError(f"internal: {outputs.filled} output rows computed for {outputs.n} in the table")
    return TableResult(
        subject_id=np.repeat(np.array([subj.id for subj in subjects], dtype=object), counts),
        number=np.repeat(np.array([subj.number for subj in subjects], dtype=int), counts),
        row=rows,
        time_h=times_out,
        evid=evids,
        readouts=outputs.readouts,  # the API-only readouts too (the figure's CSV split); to_columns writes READOUTS
        covariates=outputs.covariates,
        carried=carried,
    )


def _empty(carried) -> TableResult:
    """The result of a table without output rows."""
    z = np.zeros(0)
    return TableResult(subject_id=np.zeros(0, dtype=object), number=np.zeros(0, int), row=np.zeros(0, int),
                       time_h=z, evid=np.zeros(0, int), readouts={name: z.copy() for name in READOUTS},
                       covariates={"WT": z.copy(), "CRCL": z.copy()},
                       carried={c: np.zeros(0, dtype=object) for c in carried})
