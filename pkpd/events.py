"""One translation from what subjects receive to what the solver integrates.

Every way of describing doses (regimens built in Python, scenario files,
later event tables) ends here as a :class:`Schedule`: boluses that add to a
linear state at an instant, and zero-order inputs (mg/h) that run on
``[start, stop)``.  Bioavailability, absorption lag and the extended-release
window are the subject's, so they are applied here, per subject, from the
individual parameters.  :meth:`Schedule.solver_input` then places the
schedule on the solver's node grid.

Times in h, amounts in mg, rates in mg/h.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from . import model
from .regimen import DOSE_ROUTES, Regimen
from .units import TIME_TOLERANCE_H


@dataclass(frozen=True)
class Schedule:
    """Boluses and zero-order inputs of ``n`` subjects (indices 0..n-1).

    Attributes
    ----------
    n : int
        Number of subjects.
    bolus_subject, bolus_state : ndarray of int
        Who receives each bolus, and the linear state (index into
        :data:`pkpd.model.LINEAR_STATES`) it enters.
    bolus_time, bolus_amount : ndarray of float
        When (h) and how much (mg, after bioavailability).
    rate_subject, rate_input : ndarray of int
        Who receives each zero-order input, and which input
        (:data:`pkpd.model.INPUTS`).
    rate_start, rate_stop, rate_value : ndarray of float
        It runs at ``rate_value`` mg/h on ``[rate_start, rate_stop)`` h.
    """

    n: int
    bolus_subject: np.ndarray
    bolus_state: np.ndarray
    bolus_time: np.ndarray
    bolus_amount: np.ndarray
    rate_subject: np.ndarray
    rate_input: np.ndarray
    rate_start: np.ndarray
    rate_stop: np.ndarray
    rate_value: np.ndarray

    def times(self) -> np.ndarray:
        """Every time (h) at which a bolus lands or an input starts or stops, sorted, unique."""
        return np.unique(np.concatenate([self.bolus_time, self.rate_start, self.rate_stop]))

    def solver_input(self, nodes: np.ndarray, node_of) -> tuple[dict, dict]:
        """Jumps and inputs keyed by node index, in :func:`pkpd.solver.integrate`'s format.

        ``node_of(nodes, times)`` gives the node each time was merged into.
        Inputs are listed at each node where some input changes, as the full
        input vector (n_inputs, n) in force from that node on.
        """
        jumps = {}
        if self.bolus_time.size:
            at = node_of(nodes, self.bolus_time)
            order = np.argsort(at, kind="stable")
            bounds = np.flatnonzero(np.diff(at[order])) + 1
            for grp in np.split(order, bounds):
                jumps[int(at[grp[0]])] = (self.bolus_state[grp], self.bolus_subject[grp], self.bolus_amount[grp])
        inputs = {}
        if self.rate_value.size:
            changes = node_of(nodes, np.unique(np.concatenate([self.rate_start, self.rate_stop])))
            for k in np.unique(changes[changes < nodes.size]):
                t = nodes[k] + TIME_TOLERANCE_H
                on = (self.rate_start <= t) & (self.rate_stop > t)
                u = np.zeros((len(model.INPUTS), self.n))
                np.add.at(u, (self.rate_input[on], self.rate_subject[on]), self.rate_value[on])
                inputs[int(k)] = u
        return jumps, inputs

    def cumulative_input(self, t_out: np.ndarray) -> np.ndarray:
        """Amount that has entered the body by each output time, mg, shape (T, n)."""
        total = np.zeros((t_out.size + 1, self.n))
        first = np.searchsorted(t_out, self.bolus_time - TIME_TOLERANCE_H, side="left")
        np.add.at(total, (first, self.bolus_subject), self.bolus_amount)
        total = np.cumsum(total[:-1], axis=0)
        for s, t0, t1, r in zip(self.rate_subject, self.rate_start, self.rate_stop, self.rate_value):
            total[:, s] += r * np.clip(t_out - t0, 0.0, t1 - t0)
        return total


def _cat(parts, dtype=float) -> np.ndarray:
    if len(parts) == 1:  # a new array already (each part is made for this schedule alone)
        return parts[0].astype(dtype, copy=False)
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def from_regimens(regimens: Sequence[Regimen], ind: Mapping[str, np.ndarray], duration_h: float) -> Schedule:
    """The schedule of subjects ``0..len(regimens)-1``, subject i receiving ``regimens[i]``.

    Parameters
    ----------
    regimens : sequence of Regimen
        One per subject (the same object may be repeated: it is expanded once).
    ind : mapping of str to ndarray (n,)
        Individual parameters (``t_lag``, ``F_ir``, ``F_er``, ``D_er`` are read).
    duration_h : float
        End of the run, h: what lands after it is dropped, inputs are cut at it.

    Oral doses land at dose time + ``t_lag`` times their bioavailability; an
    extended-release dose is a release of ``F_er * dose / D_er`` mg/h into the
    gut on ``[t + t_lag, t + t_lag + D_er)``; infusions feed their route's state.
    """
    n = len(regimens)
    key = _one_key(regimens, ind, duration_h)
    if key is not None:
        hit = _ONE.get(("schedule",) + key)
        if hit is not None:
            return hit[1]
    groups: dict = {}
    if shared(regimens):
        groups[id(regimens[0])] = np.arange(n)
    else:
        for i, reg in enumerate(regimens):
            groups.setdefault(id(reg), []).append(i)
    bolus = ([], [], [], [])
    rate = ([], [], [], [], [])
    for members in groups.values():
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
            released = name in model.RELEASED_ROUTES
            keep = times < duration_h if released else times <= duration_h + TIME_TOLERANCE_H
            who = np.broadcast_to(subj[:, None], shape)[keep]
            if released:
                width = np.broadcast_to(ind["D_er"][subj][:, None], shape)[keep]
                start = times[keep]
                for part, value in zip(rate, (who, np.full(who.size, model.INPUTS.index(model.LINEAR_STATES[state])),
                                              start, np.minimum(start + width, duration_h), amounts[keep] / width)):
                    part.append(value)
            else:
                for part, value in zip(bolus, (who, np.full(who.size, state), times[keep], amounts[keep])):
                    part.append(value)
        for inf in reg.infusions:
            if inf.start_h >= duration_h:
                continue
            target = model.INPUTS.index(model.LINEAR_STATES[model.INFUSION_TARGETS[inf.route]])
            values = (subj, np.full(subj.size, target), np.full(subj.size, inf.start_h),
                      np.full(subj.size, min(inf.stop_h, duration_h)), np.full(subj.size, inf.rate_mg_per_h))
            for part, value in zip(rate, values):
                part.append(value)
    schedule = Schedule(
        n,
        _cat(bolus[0], int), _cat(bolus[1], int), _cat(bolus[2]), _cat(bolus[3]),
        _cat(rate[0], int), _cat(rate[1], int), _cat(rate[2]), _cat(rate[3]), _cat(rate[4]),
    )
    if key is not None:
        for name in _SCHEDULE_ARRAYS:
            getattr(schedule, name).setflags(write=False)
        _remember(("schedule",) + key, regimens[0], schedule)
    return schedule


_SCHEDULE_ARRAYS = ("bolus_subject", "bolus_state", "bolus_time", "bolus_amount", "rate_subject", "rate_input",
                    "rate_start", "rate_stop", "rate_value")
#: Schedules and event times of the last few single subjects (a re-run of one subject, a notebook
#: slider), by (what, id(regimen), duration, t_lag, F_ir, F_er, D_er); each entry holds its regimen,
#: so the id is not reused while the entry lives.  Regimens are immutable, the arrays read-only.
_ONE: dict = {}


def _one_key(regimens, ind, duration_h) -> tuple | None:
    """The key of a one-subject translation in :data:`_ONE`, or None (several subjects)."""
    if len(regimens) != 1 or not isinstance(regimens[0], Regimen):
        return None
    try:
        values = tuple(float(ind[k][0]) for k in ("t_lag", "F_ir", "F_er", "D_er"))
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if not all(np.shape(ind[k]) == (1,) for k in ("t_lag", "F_ir", "F_er", "D_er")):
        return None
    return (id(regimens[0]), float(duration_h)) + values


def _remember(key: tuple, regimen: Regimen, value) -> None:
    if len(_ONE) >= 16:
        _ONE.pop(next(iter(_ONE), None), None)  # another thread may have evicted it
    _ONE[key] = (regimen, value)


def shared(regimens: Sequence) -> bool:
    """Is every item the same object as the first (a population sharing one regimen)?"""
    return len(regimens) > 0 and all(map(operator.is_, regimens, itertools.repeat(regimens[0])))


def event_times(regimens: Sequence[Regimen], ind: Mapping[str, np.ndarray], duration_h: float) -> np.ndarray:
    """Every time (h) at which some subject's schedule changes, up to ``duration_h``.

    The same translation as :func:`from_regimens`, run once per distinct
    (regimen, lag, release window) rather than once per subject.
    """
    one = _one_key(regimens, ind, duration_h)
    if one is not None:
        hit = _ONE.get(("times",) + one)
        if hit is not None:
            return hit[1]
    if len(regimens) > 1 and shared(regimens):  # one regimen: distinct (lag, window) pairs
        lag, width = np.asarray(ind["t_lag"], float), np.asarray(ind["D_er"], float)
        order = np.lexsort((width, lag))  # stable: each run of equal pairs starts with its first subject
        new = np.ones(order.size, bool)
        new[1:] = (lag[order[1:]] != lag[order[:-1]]) | (width[order[1:]] != width[order[:-1]])
        pick = np.sort(order[new])
    else:
        keys = {}
        for i, reg in enumerate(regimens):
            keys.setdefault((id(reg), float(ind["t_lag"][i]), float(ind["D_er"][i])), i)
        pick = np.fromiter(keys.values(), dtype=int, count=len(keys))
    sub_ind = {k: ind[k][pick] for k in ("t_lag", "D_er", "F_ir", "F_er")}
    times = from_regimens([regimens[i] for i in pick], sub_ind, duration_h).times()
    times = times[times < duration_h + TIME_TOLERANCE_H]
    if one is not None:
        times.setflags(write=False)
        _remember(("times",) + one, regimens[0], times)
    return times
