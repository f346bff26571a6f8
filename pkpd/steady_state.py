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
with the periodic linear solution by :func:`pkpd.solver.integrate`).  Each is
affine in its own state, so the fixed point is found exactly, one pass per
level of their dependency graph, with no iteration (see
:func:`periodic_slow_batch`).  Under a constant infusion the slow equations
are solved directly.

Times in h, amounts in mg, rates in mg/h.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from . import events, model
from .errors import SolverError
from .solver import SemiLinearSystem, expm_batch, fastest_rate, integrate, node_of, prepare, time_grid

NL = len(model.LINEAR_STATES)
NS = len(model.SLOW_STATES)
NIN = len(model.INPUTS)


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


def _period_response(A: np.ndarray, B: np.ndarray, doses, ii: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Linear states (m, nl) at ``II`` of drug-free subjects given one interval of inputs,
    and ``exp(A II)`` (m, nl, nl) when it came out on the way (else None).

    ``A`` (nl, nl, m), ``B`` (nl, nin, m); the doses share their timing.  Exact:
    the augmented matrix ``[[A, B], [0, 0]]`` carries the input as a constant
    state, propagated piece by piece between the times where an input
    starts, stops or lands (:func:`pkpd.solver.expm_batch`).
    """
    nl, _, m = B.shape
    boluses, windows = period_inputs(doses[0], ii)
    amount = np.array([d.amount for d in doses], float)
    rate = np.array([d.rate for d in doses], float)
    used = sorted({w[2] for w in windows})  # only the inputs that run are carried
    nin = len(used)
    aug = np.zeros((m, nl + nin, nl + nin))
    aug[:, :nl, :nl] = np.moveaxis(A, -1, 0)
    aug[:, :nl, nl:] = np.moveaxis(B[:, used], -1, 0)
    marks = sorted({0.0, ii, *(t for t, _, _ in boluses), *(w[0] for w in windows), *(w[1] for w in windows)})
    marks = [t for t in marks if 0.0 <= t <= ii]
    z = np.zeros((m, nl + nin))
    props: dict = {}
    for a, b in zip(marks[:-1], marks[1:]):
        for (tb, s, _) in boluses:
            if abs(tb - a) <= 1e-12:
                z[:, s] += amount
        z[:, nl:] = 0.0
        for (start, stop, j, _) in windows:
            if start <= a + 1e-12 and stop > a + 1e-12:
                z[:, nl + used.index(j)] += rate
        key = round(b - a, 12)
        if key not in props:
            props[key] = expm_batch(aug * (b - a))
        z = np.einsum("mij,mj->mi", props[key], z)
    whole = props.get(round(ii, 12))  # one piece of length II (a bolus regimen): exp(A II) is its corner
    return z[:, :nl], (None if whole is None else whole[:, :nl, :nl])  # a bolus at II belongs to the next interval


def _reached_batch(A: np.ndarray, state: int) -> np.ndarray:
    """States (nl, m) the drug can reach from ``state`` in each subject (A_elim excluded)."""
    flows = A != 0  # flows[i, j, c]: j feeds i
    reached = np.zeros(A.shape[::2], bool)
    reached[state] = True
    while True:
        grown = reached | np.any(flows & reached[None, :, :], axis=1)
        if np.array_equal(grown, reached):
            break
        reached = grown
    reached[model.ELIM] = False
    return reached


def periodic_linear_batch(A: np.ndarray, B: np.ndarray, doses, ii: float) -> np.ndarray:
    """Linear states (nl, m) at the time of a dose of the regimen at steady state (just before it).

    ``A`` (nl, nl, m), ``B`` (nl, nin, m), ``doses`` one :class:`Dosing` per
    subject with the same timing (state, lag, duration; amounts and rates
    may differ).  ``x = (I - E)^-1 g`` on the states the dose reaches, with
    ``E = exp(A II)`` and ``g`` the response to one interval's inputs.
    """
    m = len(doses)
    g, E = _period_response(A, B, doses, ii)
    if E is None:
        E = expm_batch(np.moveaxis(A, -1, 0) * ii)
    reach = _reached_batch(A, doses[0].state)
    x = np.zeros((m, A.shape[0]))
    patterns, which = np.unique(reach.T, axis=0, return_inverse=True)
    for p, keep in enumerate(patterns):
        sel = np.flatnonzero(which.reshape(-1) == p)
        k = np.flatnonzero(keep)
        sub = np.eye(k.size) - E[sel][:, k[:, None], k[None, :]]
        try:
            x[np.ix_(sel, k)] = np.linalg.solve(sub, g[sel][:, k, None])[..., 0]
        except np.linalg.LinAlgError:
            raise SolverError("steady state: the dosed drug is never eliminated (no steady state exists)") from None
    if not np.all(np.isfinite(x)):
        raise SolverError("steady state: no finite steady state exists for these parameters")
    return x.T


def periodic_linear(A: np.ndarray, B: np.ndarray, dose: Dosing, ii: float) -> np.ndarray:
    """:func:`periodic_linear_batch` of one subject: ``A`` (nl, nl), ``B`` (nl, nin); returns (nl,)."""
    return periodic_linear_batch(A[..., None], B[..., None], [dose], ii)[:, 0]


def _reached(A: np.ndarray, state: int) -> np.ndarray:
    """States the drug can reach from ``state`` in one subject (A_elim excluded)."""
    return _reached_batch(A[..., None], state)[:, 0]


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


def _period_schedule(doses, ii: float) -> events.Schedule:
    """One interval ``[0, II]`` of the periodic inputs of ``m`` subjects whose doses share their timing."""
    m = len(doses)
    boluses, windows = period_inputs(doses[0], ii)
    who = np.arange(m)
    amount = np.array([d.amount for d in doses], float)
    rate = np.array([d.rate for d in doses], float)
    b = [(np.full(m, st), np.full(m, t), amount) for (t, st, _) in boluses]
    w = [(np.full(m, j), np.full(m, t0), np.full(m, t1), rate) for (t0, t1, j, _) in windows]
    cat = lambda parts, k, dtype=float: (np.concatenate([p[k] for p in parts]).astype(dtype)  # noqa: E731
                                        if parts else np.zeros(0, dtype))
    return events.Schedule(m, np.tile(who, len(b)), cat(b, 0, int), cat(b, 1), cat(b, 2),
                           np.tile(who, len(w)), cat(w, 0, int), cat(w, 1), cat(w, 2), cat(w, 3))


def _levels(reads) -> list[list[int]]:
    """Slow states grouped by depth in the graph of :data:`pkpd.model.SLOW_READS`."""
    depth: list[int] = []
    for i, r in enumerate(reads):
        depth.append(1 + max((depth[j] for j in r), default=-1))
    return [[i for i, d in enumerate(depth) if d == k] for k in range(max(depth, default=-1) + 1)]


def periodic_slow_batch(ind: Mapping[str, np.ndarray], x_start: np.ndarray, doses, ii: float,
                        max_step_h: float) -> np.ndarray:
    """Periodic slow states (NS, m) of ``m`` subjects at once.

    ``ind`` arrays (m,), ``x_start`` (nl, m) the periodic linear state at the
    dose time, ``doses`` one :class:`Dosing` per subject, all with the same
    timing (state, lag, duration; amounts and rates may differ), every
    ``ii`` h.

    Method (exact, no iteration).  Each slow state obeys
    ``dy_i/dt = p_i - q_i y_i`` with ``p_i``, ``q_i`` reading the linear
    states and the slow states :data:`pkpd.model.SLOW_READS` ``[i]`` only
    (:data:`pkpd.model.SLOW_CONTRACT`).  Once those are on their periodic
    trajectory, the collocation solution over one interval is an affine map
    of ``y_i(0)`` (the method is linear in ``y_i``):
    ``y_i(II) = Phi_i y_i(0) + psi_i``.  ``Phi_i`` is the same method applied
    to ``ds_i/dt = -q_i s_i`` from ``s_i(0) = 1``, integrated alongside as
    extra slow states, so one interval gives both, and the periodic value is
    ``psi_i / (1 - Phi_i)``, the fixed point of the discrete period map to
    round-off.  One pass per level of the dependency graph (two for the
    reference model: receptor loss, then both adaptations).
    """
    m = len(doses)
    A, B = model.linear_system(ind)
    sched = _period_schedule(doses, ii)
    nodes, _ = time_grid(np.array([0.0, ii]), sched.times(), max_step_h, fastest_rate(A))
    jumps, inputs = sched.solver_input(nodes, node_of)
    memo: dict = {}

    def coefficients(i, x, y):
        if i < NS:
            return model.slow_coefficients(i, x, y, ind, memo)
        p, q = model.slow_coefficients(i - NS, x, y[: i - NS], ind, memo)
        return np.zeros(np.shape(p)), q  # the sensitivity: ds/dt = -q s

    system = SemiLinearSystem(A=A, B=B, n_slow=2 * NS, coefficients=coefficients,
                              coupled_rows=model.COUPLED_STATES)
    y = np.zeros((NS, m))
    x0 = np.asarray(x_start, float)
    pre = prepare(system, nodes, jumps=jumps, inputs=inputs, record_rows=(model.CSF,), x0=x0)  # once for every pass
    for level in _levels(model.SLOW_READS):
        _, y_rec = integrate(system, nodes, jumps=jumps, inputs=inputs, record_index=np.array([nodes.size - 1]),
                             record_rows=(model.CSF,), y0=np.concatenate([y, np.ones((NS, m))]), x0=x0,
                             prepared=pre)
        for i in level:
            end, phi = y_rec[i, 0], y_rec[NS + i, 0]
            gap = 1.0 - phi
            with np.errstate(divide="ignore", invalid="ignore"):
                y[i] = (end - phi * y[i]) / gap
            if not np.all(np.isfinite(y[i])) or np.any(gap <= 0):
                raise SolverError(f"steady state: {model.SLOW_STATES[i]} has no periodic state "
                                  "(it neither recovers nor decays over a dosing interval)")
    return y
