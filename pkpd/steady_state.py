"""Periodic steady states of a dosing regimen, for event tables (SS = 1 and 2).

The linear part is solved exactly: over one dosing interval ``II`` the state
obeys ``x(t + II) = E x(t) + g`` with ``E = exp(A II)`` and ``g`` the response
of a drug-free subject to one interval's inputs (the boluses and the pieces of
every infusion copy that overlap it, propagated exactly by the matrix
exponential of the augmented matrix ``[[A, B], [0, 0]]``), so the periodic
state is ``x_ss = (I - E)^-1 g``, restricted to the states the dose reaches
(the cumulative ``A_elim`` never settles and is left alone).  A constant
infusion gives ``x_ss = -A^-1 B u``.

The slow states (receptor loss and the two adaptations) are not linear: their
periodic state is the fixed point of the period map (one interval integrated
with the periodic linear solution by :func:`pkpd.solver.integrate`), found by
Newton's method with a finite-difference Jacobian computed in one batch (the
base point and its three perturbations side by side), to 1e-9 absolute or
better.  Under a constant infusion the slow equations are solved directly.

Times in h, amounts in mg, rates in mg/h.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy.linalg import expm

from . import events, model
from .errors import SolverError
from .solver import SemiLinearSystem, fastest_rate, integrate, node_of, time_grid

NL = len(model.LINEAR_STATES)
NS = len(model.SLOW_STATES)
NIN = len(model.INPUTS)
#: Convergence of the slow states: the period map's residual (the fixed
#: point then lies within residual / (1 - contraction) of the iterate).
SLOW_RESIDUAL = 1e-13
_FD_STEP = 1e-6
_MAX_NEWTON = 30


@dataclass(frozen=True)
class Dosing:
    """One dose as the regimen repeats it: what enters which state, and when.

    ``amount`` is after bioavailability (mg); ``rate`` is 0 for a bolus, else
    mg/h with ``duration`` h; ``lag`` h; ``state`` indexes
    :data:`pkpd.model.LINEAR_STATES` (the input of the same number feeds it).
    """

    state: int
    amount: float
    lag: float
    rate: float = 0.0
    duration: float = 0.0

    @property
    def is_infusion(self) -> bool:
        return self.rate > 0


def period_inputs(dose: Dosing, ii: float) -> tuple[list, list]:
    """Boluses ``(phase, state, amount)`` and windows ``(start, stop, input, rate)``
    of one interval ``[0, II]`` of the periodic regimen (the interval ending at
    the time of the next dose)."""
    phi0 = dose.lag % ii
    if not dose.is_infusion:
        return ([(phi0, dose.state, dose.amount)] if dose.amount > 0 else []), []
    windows = []
    j = -int(np.ceil((dose.duration + phi0) / ii)) - 1
    while phi0 + j * ii < ii:
        start, stop = max(phi0 + j * ii, 0.0), min(phi0 + j * ii + dose.duration, ii)
        if stop > start:
            windows.append((start, stop, dose.state, dose.rate))
        j += 1
    return [], windows


def tails(dose: Dosing, ii: float) -> list[tuple[float, float]]:
    """Infusion copies of the past regimen still running at the dose time 0:
    ``(stop, rate)`` for each, the copies that started at ``-k II + lag <= 0``
    (k >= 1) and stop after 0."""
    out = []
    if not dose.is_infusion:
        return out
    k = 1
    while True:
        start = -k * ii + dose.lag
        if start + dose.duration <= 1e-12:
            break
        if start <= 1e-12:
            out.append((start + dose.duration, dose.rate))
        k += 1
    return out


def linear_response(A: np.ndarray, B: np.ndarray, x0: np.ndarray, t0: float, t1: float,
                    boluses, windows) -> np.ndarray:
    """Exact linear state at ``t1`` from ``x0`` at ``t0`` (one subject: A (nl, nl), B (nl, m))."""
    nl, m = B.shape
    aug = np.zeros((nl + m, nl + m))
    aug[:nl, :nl], aug[:nl, nl:] = A, B
    marks = sorted({t0, t1, *(b[0] for b in boluses), *(w[0] for w in windows), *(w[1] for w in windows)})
    marks = [t for t in marks if t0 <= t <= t1]
    z = np.zeros(nl + m)
    z[:nl] = x0
    for a, b in zip(marks[:-1], marks[1:]):
        for (tb, s, amt) in boluses:
            if abs(tb - a) <= 1e-12:
                z[s] += amt
        u = np.zeros(m)
        for (start, stop, j, r) in windows:
            if start <= a + 1e-12 and stop > a + 1e-12:
                u[j] += r
        z[nl:] = u
        z = expm(aug * (b - a)) @ z
    return z[:nl]  # a bolus at t1 itself belongs to the next interval


def _reached(A: np.ndarray, state: int) -> np.ndarray:
    """States the drug can reach from ``state`` (A_elim excluded)."""
    flows = A != 0
    reached = np.zeros(A.shape[0], bool)
    reached[state] = True
    while True:
        grown = reached | np.any(flows[:, reached], axis=1)
        if np.array_equal(grown, reached):
            break
        reached = grown
    reached[model.ELIM] = False
    return reached


def periodic_linear(A: np.ndarray, B: np.ndarray, dose: Dosing, ii: float) -> np.ndarray:
    """Linear states at the time of a dose of the regimen at steady state (just before it)."""
    boluses, windows = period_inputs(dose, ii)
    g = linear_response(A, B, np.zeros(A.shape[0]), 0.0, ii, boluses, windows)
    keep = _reached(A, dose.state)
    E = expm(A * ii)
    sub = np.eye(int(keep.sum())) - E[np.ix_(keep, keep)]
    x = np.zeros(A.shape[0])
    try:
        x[keep] = np.linalg.solve(sub, g[keep])
    except np.linalg.LinAlgError:
        raise SolverError("steady state: the dosed drug is never eliminated (no steady state exists)") from None
    if not np.all(np.isfinite(x)):
        raise SolverError("steady state: no finite steady state exists for these parameters")
    return x


def constant_linear(A: np.ndarray, B: np.ndarray, state: int, rate: float) -> np.ndarray:
    """Linear states at the steady state of a constant infusion ``rate`` into ``state``."""
    keep = _reached(A, state)
    x = np.zeros(A.shape[0])
    u = np.zeros(B.shape[1])
    u[state] = rate
    try:
        x[keep] = -np.linalg.solve(A[np.ix_(keep, keep)], (B @ u)[keep])
    except np.linalg.LinAlgError:
        raise SolverError("steady state: the infused drug is never eliminated (no steady state exists)") from None
    return x


def constant_slow(x: np.ndarray, ind: Mapping[str, np.ndarray]) -> np.ndarray:
    """Slow states at equilibrium with constant linear states ``x`` (nl,) of one subject."""
    lin = x[:, None, None]
    y = np.zeros((NS, 1, 1))
    memo: dict = {}
    for i in range(NS):
        p, q = model.slow_coefficients(i, lin, y[:i], ind, memo)
        y[i] = np.asarray(p) / np.asarray(q)
    return y[:, 0, 0]


def periodic_slow(ind: Mapping[str, np.ndarray], x_start: np.ndarray, dose: Dosing, ii: float,
                  max_step_h: float) -> np.ndarray:
    """Slow states at the dose time of the periodic regimen (fixed point of the period map).

    One subject: ``ind`` arrays of shape (1,), ``x_start`` (nl,) the periodic
    linear state at the start of the interval.  See :func:`periodic_slow_batch`.
    """
    return periodic_slow_batch(ind, x_start[:, None], [dose], ii, max_step_h)[:, 0]


def periodic_slow_batch(ind: Mapping[str, np.ndarray], x_start: np.ndarray, doses, ii: float,
                        max_step_h: float) -> np.ndarray:
    """Periodic slow states (NS, m) of ``m`` subjects at once.

    ``ind`` arrays (m,), ``x_start`` (nl, m), ``doses`` one :class:`Dosing` per
    subject, all with the same timing (state, lag, duration; amounts and rates
    may differ), every ``ii`` h.  Newton's method on the period map, with the
    finite-difference Jacobian of every subject computed in the same batch
    (each subject's base point and its three perturbations side by side).
    """
    m = len(doses)
    batch = (NS + 1) * m
    ind4 = {k: np.repeat(np.asarray(v, float), NS + 1) for k, v in ind.items()}
    A, B = model.linear_system(ind4)
    b_sub, b_state, b_time, b_amt = [], [], [], []
    w_sub, w_in, w_start, w_stop, w_rate = [], [], [], [], []
    for s_, dose in enumerate(doses):
        boluses, windows = period_inputs(dose, ii)
        for sys_ in range(s_ * (NS + 1), (s_ + 1) * (NS + 1)):
            for (t, st, a) in boluses:
                b_sub.append(sys_), b_state.append(st), b_time.append(t), b_amt.append(a)
            for (t0, t1, j, r) in windows:
                w_sub.append(sys_), w_in.append(j), w_start.append(t0), w_stop.append(t1), w_rate.append(r)
    sched = events.Schedule(batch, np.array(b_sub, int), np.array(b_state, int), np.array(b_time, float),
                            np.array(b_amt, float), np.array(w_sub, int), np.array(w_in, int),
                            np.array(w_start, float), np.array(w_stop, float), np.array(w_rate, float))
    nodes, _ = time_grid(np.array([0.0, ii]), sched.times(), max_step_h, fastest_rate(A))
    jumps, inputs = sched.solver_input(nodes, node_of)
    memo: dict = {}
    system = SemiLinearSystem(A=A, B=B, n_slow=NS,
                              coefficients=lambda i, x, y: model.slow_coefficients(i, x, y, ind4, memo),
                              coupled_rows=model.COUPLED_STATES)
    x0 = np.repeat(np.asarray(x_start, float), NS + 1, axis=1)
    y = np.zeros((NS, m))
    perturb = np.concatenate([np.zeros((NS, 1)), _FD_STEP * np.eye(NS)], axis=1)  # (NS, NS + 1)
    for _ in range(_MAX_NEWTON):
        y0 = (y[:, :, None] + perturb[:, None, :]).reshape(NS, batch)
        _, y_rec = integrate(system, nodes, jumps=jumps, inputs=inputs, record_index=np.array([nodes.size - 1]),
                             record_rows=(model.CSF,), y0=y0, x0=x0)
        p = y_rec[:, 0, :].reshape(NS, m, NS + 1)
        residual = p[:, :, 0] - y  # (NS, m)
        if np.max(np.abs(residual)) < SLOW_RESIDUAL:
            return y
        jac = (p[:, :, 1:] - p[:, :, :1]) / _FD_STEP  # (NS out, m, NS in)
        jac = np.moveaxis(jac, 1, 0) - np.eye(NS)[None]  # (m, NS, NS)
        step = np.linalg.solve(jac, -residual.T[:, :, None])[:, :, 0].T
        y = y + step
        if np.max(np.abs(step)) < 1e-14:
            return y
    raise SolverError("steady state: the slow states did not converge (Newton on the period map)")
