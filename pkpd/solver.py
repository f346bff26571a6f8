"""Integration of semi-linear systems for a whole batch at once.

This module knows nothing of pharmacology.  It solves, for ``n`` independent
systems (subjects) on one shared time grid::

    dx/dt   = A x + B u                    (linear part, exact)
    dy_i/dt = p_i(x, y_<i) - q_i(x, y_<i) y_i,   i = 0 .. n_slow-1   (slow part)

with ``u`` piecewise constant and ``x`` jumping at given nodes.

* The linear part is propagated **exactly** with the matrix exponential of the
  augmented matrix ``[[A, B], [0, 0]]`` (the input is carried as a constant
  state, so infusions need no special case).  One exponential per distinct
  step length is computed for the whole batch and reused.
* The slow part is integrated with the 3-stage **Radau IIA collocation**
  method (order 5, L-stable, as in scipy's ``Radau``), with ``x`` evaluated
  exactly at the stage times.  Because each slow equation is linear in its
  own state and the system is triangular, the stage equations are solved
  exactly, component by component, with no Newton iteration.  The step is
  bounded by the caller (``max_step``); a stiff slow rate needs no smaller
  step for stability.
* Jumps happen only at grid nodes and are applied before the node is
  recorded (right-continuous); steps never cross a jump, so a bolus is never
  spread over a step.

Shapes: state arrays carry the batch on the last axis, ``(rows, n)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from .errors import SolverError
from .units import TIME_TOLERANCE_H

@dataclass(frozen=True)
class Tableau:
    """A 3-stage implicit Runge-Kutta (collocation) method."""

    name: str
    c: np.ndarray  # (3,) stage times as fractions of the step
    a: np.ndarray  # (3, 3)
    b: np.ndarray  # (3,)
    order: int


_S15, _S6 = np.sqrt(15.0), np.sqrt(6.0)

#: Gauss-Legendre: order 6, A-stable but not L-stable (stiff modes ring).
GAUSS3 = Tableau(
    "gauss3",
    np.array([0.5 - _S15 / 10.0, 0.5, 0.5 + _S15 / 10.0]),
    np.array([
        [5 / 36, 2 / 9 - _S15 / 15, 5 / 36 - _S15 / 30],
        [5 / 36 + _S15 / 24, 2 / 9, 5 / 36 - _S15 / 24],
        [5 / 36 + _S15 / 30, 2 / 9 + _S15 / 15, 5 / 36],
    ]),
    np.array([5 / 18, 4 / 9, 5 / 18]),
    6,
)

#: Radau IIA: order 5, L-stable and stiffly accurate (the default: a user may
#: set an adaptation rate of 1000/h and the step must still damp it).
RADAU3 = Tableau(
    "radau3",
    np.array([(4.0 - _S6) / 10.0, (4.0 + _S6) / 10.0, 1.0]),
    np.array([
        [(88 - 7 * _S6) / 360, (296 - 169 * _S6) / 1800, (-2 + 3 * _S6) / 225],
        [(296 + 169 * _S6) / 1800, (88 + 7 * _S6) / 360, (-2 - 3 * _S6) / 225],
        [(16 - _S6) / 36, (16 + _S6) / 36, 1 / 9],
    ]),
    np.array([(16 - _S6) / 36, (16 + _S6) / 36, 1 / 9]),
    5,
)

#: Nodes closer than this are merged into one (the package's coincidence rule).
NODE_TOLERANCE_H = TIME_TOLERANCE_H


@dataclass(frozen=True)
class SemiLinearSystem:
    """The batch to integrate.

    Attributes
    ----------
    A : ndarray, shape (nl, nl, n)
        Linear rate matrix per system (1/time).
    B : ndarray, shape (nl, m, n)
        Input matrix per system.
    n_slow : int
        Number of slow states.
    coefficients : callable
        ``coefficients(i, x, y) -> (p, q)`` for slow state ``i``, with ``x``
        of shape (nl, 3, n) at the stage times (only ``coupled_rows``
        filled) and ``y`` of shape (i, 3, n); returns ``p`` of shape (3, n)
        and ``q`` of shape (3, n), or (n,) when it is constant in time (a
        faster path is then taken).
    coupled_rows : tuple of int
        Rows of ``x`` the slow part depends on.
    """

    A: np.ndarray
    B: np.ndarray
    n_slow: int
    coefficients: Callable
    coupled_rows: tuple[int, ...]

    @property
    def n(self) -> int:
        return self.A.shape[-1]


#: Refinement after each event: the first step is at most ``EVENT_FIRST_STEP``
#: over the fastest rate of the linear part (a power-of-two fraction of the
#: largest step), and steps then double until they reach the largest step.  A jump starts
#: a fast transient (in the linear part) that a uniform step would
#: resolve poorly; this grades the mesh to it, whatever the time unit.
EVENT_FIRST_STEP = 0.02


def fastest_rate(A: np.ndarray) -> float:
    """Largest |A_ii| over states and systems: the fastest first-order rate."""
    return float(np.max(np.abs(np.diagonal(A, axis1=0, axis2=1)), initial=0.0))


def time_grid(output_times: np.ndarray, event_times: np.ndarray, max_step: float, fast_rate: float = 0.0):
    """Integration nodes: every output and event time, no step above ``max_step``.

    After each event, nodes are graded geometrically from
    ``EVENT_FIRST_STEP / fast_rate`` up to ``max_step`` (no grading when
    ``fast_rate`` is 0).

    Returns
    -------
    nodes : ndarray (K,)
        Sorted node times.
    output_index : ndarray (T,)
        Index of each output time in ``nodes``.
    """
    t_out = np.asarray(output_times, float)
    events = np.asarray(event_times, float)
    parts = [t_out, events]
    if fast_rate > 0 and EVENT_FIRST_STEP / fast_rate < max_step and events.size:
        # steps max_step / 2**m, then doubling: offsets max_step * 2**-k
        m = int(np.ceil(np.log2(max_step * fast_rate / EVENT_FIRST_STEP)))
        offsets = max_step * 2.0 ** -np.arange(m, 0, -1)
        graded = (events[:, None] + offsets[None, :]).ravel()
        parts.append(graded[graded < t_out[-1]])
    marks = np.unique(np.concatenate(parts))
    if marks.size > 1:  # merge near-duplicates (an event 1e-15 h from an output)
        keep = np.concatenate([[True], np.diff(marks) > NODE_TOLERANCE_H])
        marks = marks[keep]
    gaps = np.diff(marks)
    pieces = np.maximum(np.ceil(gaps / max_step - TIME_TOLERANCE_H).astype(int), 1)
    if np.all(pieces == 1):
        nodes = marks
    else:
        starts = np.repeat(marks[:-1], pieces)
        frac = np.concatenate([np.arange(k) / k for k in pieces]) if pieces.size else np.zeros(0)
        nodes = np.concatenate([starts + frac * np.repeat(gaps, pieces), marks[-1:]])
    output_index = np.searchsorted(nodes, t_out - NODE_TOLERANCE_H, side="left")
    return nodes, output_index


def node_of(nodes: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the node each time was merged into (times must be nodes)."""
    return np.searchsorted(nodes, np.asarray(times, float) - NODE_TOLERANCE_H, side="left")


_TAYLOR_DEGREE = 18
_TAYLOR_NORM = 0.5


def expm_batch(m: np.ndarray) -> np.ndarray:
    """Matrix exponential of a stack of matrices, shape (n, k, k).

    Scaling and squaring with a degree-18 Taylor polynomial: each matrix is
    scaled by 2**-s so that its 1-norm is at most 0.5 (truncation error below
    1e-25 relative), the polynomial is evaluated by Horner's rule, and the
    result squared s times.  Vectorised over the stack (scipy's ``expm``
    loops over it in Python, which dominates a 10,000-subject run).
    """
    if m.shape[-1] == 0:
        return m.copy()
    norm = np.abs(m).sum(axis=1).max(axis=-1)  # 1-norm per matrix
    s = np.maximum(0, np.ceil(np.log2(np.maximum(norm, 1e-300) / _TAYLOR_NORM))).astype(int)
    x = m * (0.5 ** s)[:, None, None]
    eye = np.eye(m.shape[-1])
    p = eye + x / _TAYLOR_DEGREE
    for j in range(_TAYLOR_DEGREE - 1, 0, -1):
        p = eye + (x @ p) / j
    for level in range(1, int(s.max(initial=0)) + 1):
        sq = s >= level
        if np.all(sq):
            p = p @ p
        else:
            p[sq] = p[sq] @ p[sq]
    return p


#: Most successive squarings before a propagator is recomputed by expm.
_MAX_SQUARINGS = 3


class _Propagators:
    """Exact propagators of the augmented linear system, one set per step length."""

    def __init__(self, system: SemiLinearSystem, tableau: Tableau):
        self._tableau = tableau
        nl, m, n = system.B.shape
        aug = np.zeros((n, nl + m, nl + m))
        aug[:, :nl, :nl] = np.moveaxis(system.A, -1, 0)
        aug[:, :nl, nl:] = np.moveaxis(system.B, -1, 0)
        self._aug = aug
        self._nl = nl
        self._rows = list(system.coupled_rows)
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._raw: dict[float, tuple[np.ndarray, ...]] = {}
        self._depth: dict[float, int] = {}  # squarings since the last exponential

    @staticmethod
    def _key(h: float) -> float:
        return float(np.float64(h).round(12))

    def prepare(self, steps: np.ndarray) -> None:
        """Compute the propagators of every step length, shortest first.

        A step twice as long as one already known is obtained by squaring
        (``E(2 c h) = E(c h)^2``, one matrix product instead of an
        exponential): the graded steps after events are powers of two apart.
        """
        for h in np.unique(np.round(steps, 12)):
            self.get(float(h))

    def get(self, h: float) -> tuple[np.ndarray, np.ndarray]:
        """(full-step rows (nl, na, n), stage rows (3, r, na, n)) for step ``h``."""
        key = self._key(h)
        hit = self._cache.get(key)
        if hit is None:
            half = self._raw.get(self._key(h / 2.0))
            depth = self._depth.get(self._key(h / 2.0), _MAX_SQUARINGS) + 1
            if half is not None and depth <= _MAX_SQUARINGS:
                mats = tuple(e @ e for e in half)
            else:  # squaring doubles the round-off: start afresh now and then
                mats, depth = self._exponentials(h), 0
            self._raw[key] = mats
            self._depth[key] = depth
            e1, e2, e3, full = mats
            stages = np.stack([e[:, self._rows, :] for e in (e1, e2, e3)])  # (3, n, r, na)
            hit = (
                np.ascontiguousarray(np.moveaxis(full[:, : self._nl, :], 0, -1)),
                np.ascontiguousarray(np.moveaxis(stages, 1, -1)),
            )
            self._cache[key] = hit
        return hit

    def _exponentials(self, h: float) -> tuple[np.ndarray, ...]:
        """E(c_1 h), E(c_2 h), E(c_3 h), E(h), each (n, na, na).

        Products of exponentials of the gaps between stage times (equal gaps
        share one exponential).
        """
        gaps = np.diff(np.concatenate([[0.0], self._tableau.c, [1.0]]))
        expms: dict[float, np.ndarray] = {}
        prods, current = [], None
        for gap in gaps:
            if gap == 0.0:
                prods.append(current)
                continue
            e = expms.get(round(gap, 15))
            if e is None:
                e = expms[round(gap, 15)] = expm_batch(self._aug * (gap * h))
            current = e if current is None else current @ e
            prods.append(current)
        return tuple(prods)


def _collocate(y_a: np.ndarray, p: np.ndarray, q: np.ndarray, h: float, tab: Tableau) -> tuple[np.ndarray, np.ndarray]:
    """One collocation step of ``dy/dt = p(t) - q(t) y`` given p, q at the 3 stages.

    Solves ``(I + h A diag(q)) Y = y_a + h A p`` exactly by Cramer's rule,
    per system, and returns (stage values (3, n), end value (n,)).
    """
    ha = h * tab.a
    q0, q1, q2 = q[0], q[1], q[2]
    m00, m01, m02 = 1.0 + ha[0, 0] * q0, ha[0, 1] * q1, ha[0, 2] * q2
    m10, m11, m12 = ha[1, 0] * q0, 1.0 + ha[1, 1] * q1, ha[1, 2] * q2
    m20, m21, m22 = ha[2, 0] * q0, ha[2, 1] * q1, 1.0 + ha[2, 2] * q2
    r0 = y_a + (ha[0, 0] * p[0] + ha[0, 1] * p[1] + ha[0, 2] * p[2])
    r1 = y_a + (ha[1, 0] * p[0] + ha[1, 1] * p[1] + ha[1, 2] * p[2])
    r2 = y_a + (ha[2, 0] * p[0] + ha[2, 1] * p[1] + ha[2, 2] * p[2])
    c0 = m11 * m22 - m12 * m21
    c1 = m10 * m22 - m12 * m20
    c2 = m10 * m21 - m11 * m20
    inv_det = 1.0 / (m00 * c0 - m01 * c1 + m02 * c2)
    d12 = r1 * m22 - m12 * r2
    d21 = r1 * m21 - m11 * r2
    d02 = m10 * r2 - r1 * m20
    stages = np.empty((3,) + y_a.shape)
    stages[0] = (r0 * c0 - m01 * d12 + m02 * d21) * inv_det
    stages[1] = (m00 * d12 - r0 * c1 + m02 * d02) * inv_det
    stages[2] = (-m00 * d21 - m01 * d02 + r0 * c2) * inv_det
    return stages, _end_value(y_a, p, q, stages, h, tab)


def _end_value(y_a, p, q, stages, h, tab):
    if tab.c[-1] == 1.0 and np.array_equal(tab.b, tab.a[-1]):
        return stages[-1]  # stiffly accurate: the last stage is the end point
    hb = h * tab.b
    slope = p - q * stages
    return y_a + (hb[0] * slope[0] + hb[1] * slope[1] + hb[2] * slope[2])


def _constant_q_inverse(q: np.ndarray, h: float, tab: Tableau) -> np.ndarray:
    """Rows of (I + h q A)^-1 per system, shape (3, 3, n), for q constant over a step.

    The adjugate over the determinant, elementwise over the systems (a
    batched LAPACK inverse of many 3 x 3 matrices costs ten times more).
    """
    m = np.eye(3)[:, :, None] + tab.a[:, :, None] * (h * np.asarray(q, float))[None, None, :]
    inv = np.empty_like(m)
    for i in range(3):
        for j in range(3):
            r0, r1 = [r for r in range(3) if r != j]
            c0, c1 = [c for c in range(3) if c != i]
            inv[i, j] = (-1) ** (i + j) * (m[r0, c0] * m[r1, c1] - m[r0, c1] * m[r1, c0])
    det = m[0, 0] * inv[0, 0] + m[0, 1] * inv[1, 0] + m[0, 2] * inv[2, 0]
    inv /= det
    return inv


def _collocate_constant_q(y_a, p, q, h, inverse, tab):
    """As :func:`_collocate` for q constant over the step, with (I + h q A)^-1 given."""
    ha = h * tab.a
    r = [y_a + (ha[i, 0] * p[0] + ha[i, 1] * p[1] + ha[i, 2] * p[2]) for i in range(3)]
    stages = np.empty((3,) + y_a.shape)
    for i in range(3):
        stages[i] = inverse[i, 0] * r[0] + inverse[i, 1] * r[1] + inverse[i, 2] * r[2]
    return stages, _end_value(y_a, p, q, stages, h, tab)


def _reachable(system: SemiLinearSystem, jumps, inputs, observed, x0=None) -> tuple[list[int], list[int]]:
    """States worth integrating, and the inputs that are ever non-zero.

    A state is kept when it can become non-zero (a jump or an active input
    reaches it) and can influence an ``observed`` row (recorded, or read by
    the slow part); the others stay zero or are never looked at.
    """
    nl, m, _ = system.B.shape
    active_inputs = [j for j in range(m) if any(np.any(u[j] != 0) for u in inputs.values())]
    flows = np.any(system.A != 0, axis=-1)  # flows[i, j]: j feeds i in some system
    feeds = np.any(system.B[:, active_inputs] != 0, axis=(1, 2)) if active_inputs else np.zeros(nl, bool)
    reached = feeds.copy()
    for rows_, _, _ in jumps.values():
        reached[np.asarray(rows_)] = True
    if x0 is not None:
        reached |= np.any(x0 != 0, axis=-1)
    influencing = np.zeros(nl, bool)
    influencing[list(observed)] = True
    key = (nl, flows.tobytes(), reached.tobytes(), influencing.tobytes())
    keep = _KEPT.get(key)
    if keep is None:  # a function of the three boolean patterns only: remembered for re-runs
        for closure, edges in ((reached, flows), (influencing, flows.T)):
            while True:
                grown = closure | np.any(edges[:, closure], axis=1)
                if np.array_equal(grown, closure):
                    break
                closure[:] = grown
        keep = tuple(int(i) for i in np.flatnonzero(reached & influencing))
        if len(_KEPT) >= 64:
            _KEPT.pop(next(iter(_KEPT), None), None)  # another thread may have evicted it
        _KEPT[key] = keep
    return list(keep), active_inputs


_KEPT: dict = {}


@dataclass
class Prepared:
    """What both engines need before the first step (see :func:`prepare`).

    ``system``, ``jumps`` and ``inputs`` are reduced to the states that
    matter (:func:`_reachable`); ``keep`` lists the original rows kept, in
    order; ``coupled`` the original rows the slow part reads that were kept;
    ``live`` the positions in ``record_rows`` that are kept and ``rec_rows``
    their rows in the reduced system; ``z0`` the augmented start state
    (reduced x, then the inputs), ``props`` the propagators of every step.
    """

    system: SemiLinearSystem
    keep: list
    jumps: dict
    inputs: dict
    live: list
    rec_rows: list
    z0: np.ndarray
    props: "_Propagators | None"
    tableau: Tableau


def prepare(system: SemiLinearSystem, nodes: np.ndarray, *, jumps, inputs, record_rows, x0=None,
            method: Tableau = None, propagators: bool = True) -> Prepared:
    """Drop what matters to nothing, and compute the propagators of every step length.

    With ``propagators=False`` the propagators are left to the caller
    (``props`` is None): the compiled engine computes them itself.
    """
    nl_full, _, n = system.B.shape
    keep, active_inputs = _reachable(system, jumps, inputs, set(record_rows) | set(system.coupled_rows), x0)
    if len(keep) < nl_full or len(active_inputs) < system.B.shape[1]:
        # States that can never leave zero, or never matter, are dropped:
        # smaller propagators, fewer multiplications per step (an oral-only
        # run has no lumbar CSF; a run that saves no CNS readout skips C_cns).
        position = {state: j for j, state in enumerate(keep)}
        system = SemiLinearSystem(
            A=system.A[np.ix_(keep, keep)],
            B=system.B[np.ix_(keep, active_inputs)],
            n_slow=system.n_slow,
            coefficients=system.coefficients,
            coupled_rows=tuple(position[r] for r in system.coupled_rows if r in position),
        )
        kept_jumps = {}
        new_row = np.full(nl_full, -1)
        new_row[keep] = np.arange(len(keep))
        for k, (rows_, subj, amt) in jumps.items():
            moved = new_row[np.asarray(rows_, int)]
            sel = moved >= 0  # a jump into a state that matters to nothing is dropped with it
            if np.any(sel):
                kept_jumps[k] = (moved[sel], subj[sel], amt[sel])
        jumps = kept_jumps
        inputs = {k: u[active_inputs] for k, u in inputs.items()}
    else:
        position = {state: state for state in range(nl_full)}
    nl, m, _ = system.B.shape
    tab = RADAU3 if method is None else method
    props = None
    if propagators:
        props = _Propagators(system, tab)
        props.prepare(np.diff(nodes))
    z = np.zeros((nl + m, n))
    if x0 is not None:
        z[:nl] = np.asarray(x0, float)[keep]
    live = [j for j, r in enumerate(record_rows) if r in position]
    rec_rows = [position[record_rows[j]] for j in live]
    return Prepared(system, keep, jumps, inputs, live, rec_rows, z, props, tab)


def check_finite(x_rec: np.ndarray, y_rec: np.ndarray) -> None:
    """Raise :class:`NonFiniteError` naming the systems with a non-finite recorded value."""
    if not (np.all(np.isfinite(x_rec)) and np.all(np.isfinite(y_rec))):
        bad = np.unique(np.nonzero(~np.isfinite(np.concatenate([x_rec, y_rec])))[2])
        raise NonFiniteError(bad)


def integrate(
    system: SemiLinearSystem,
    nodes: np.ndarray,
    *,
    jumps: Mapping[int, np.ndarray],
    inputs: Mapping[int, np.ndarray],
    record_index: np.ndarray,
    record_rows: tuple[int, ...],
    y0: np.ndarray,
    method: Tableau = None,
    x_out: np.ndarray | None = None,
    y_out: np.ndarray | None = None,
    stats: dict | None = None,
    x0: np.ndarray | None = None,
    prepared: Prepared | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate the batch over ``nodes`` and record states at ``record_index``.

    ``method`` is the collocation tableau of the slow part (default
    :data:`RADAU3`).

    Parameters
    ----------
    nodes : ndarray (K,)
        Node times, increasing; x starts at zero at ``nodes[0]``.
    jumps : mapping node index -> (rows, systems, amounts)
        Three equal-length arrays: ``amounts`` added to x[rows, systems] at
        that node, before it is recorded (repeated pairs add).
    inputs : mapping node index -> ndarray (m, n)
        Input values in force from that node on (zero before the first).
    record_index : ndarray (T,)
        Node indices to record, increasing.
    record_rows : tuple of int
        Rows of x to record.
    y0 : ndarray (n_slow, n)
        Slow states at ``nodes[0]``.
    x_out, y_out : ndarray, optional
        Where to record (shapes as returned; views into a larger array are
        fine), to spare a copy.
    stats : dict, optional
        Filled with ``exponentials`` (distinct step propagators computed).
    x0 : ndarray (nl, n), optional
        Linear states at ``nodes[0]`` (default zero), before any jump there.
    prepared : Prepared, optional
        The result of :func:`prepare` for the same system, nodes, jumps,
        inputs, record rows and ``x0``, to integrate again from other slow
        states ``y0`` without computing the propagators again.

    Returns
    -------
    x_rec : ndarray (len(record_rows), T, n)
    y_rec : ndarray (n_slow, T, n)
    """
    nl_full, _, n = system.B.shape
    pre = prepared if prepared is not None else prepare(system, nodes, jumps=jumps, inputs=inputs,
                                                         record_rows=record_rows, x0=x0, method=method)
    system, keep, jumps, inputs, props, tab = pre.system, pre.keep, pre.jumps, pre.inputs, pre.props, pre.tableau
    nl, m, _ = system.B.shape
    z = pre.z0.copy()
    y = np.array(y0, dtype=float, copy=True)
    # The slow part sees the full state layout; dropped rows stay zero.
    x_stage = np.zeros((nl_full, 3, n))
    rows = [keep[r] for r in system.coupled_rows]
    n_rec = len(record_index)
    x_rec = np.empty((len(record_rows), n_rec, n)) if x_out is None else x_out
    y_rec = np.empty((system.n_slow, n_rec, n)) if y_out is None else y_out
    live, rec_rows = pre.live, pre.rec_rows
    x_rec[[j for j in range(len(record_rows)) if j not in live]] = 0.0  # rows that never leave zero
    steps = np.diff(nodes)
    inverses: dict = {}
    rec_pos = 0
    with np.errstate(all="ignore"):
        for k in range(len(nodes)):
            jump = jumps.get(k)
            if jump is not None:
                np.add.at(z, (jump[0], jump[1]), jump[2])
            u = inputs.get(k)
            if u is not None:
                z[nl:] = u
            while rec_pos < n_rec and record_index[rec_pos] == k:
                x_rec[live, rec_pos] = z[rec_rows]
                y_rec[:, rec_pos] = y
                rec_pos += 1
            if k == len(nodes) - 1:
                break
            h = steps[k]
            full, stage = props.get(h)
            # x at the three stage times, only the rows the slow part reads
            x_stage[rows] = np.einsum("sran,an->rsn", stage, z)
            y_stages = np.empty((system.n_slow, 3, n))
            for i in range(system.n_slow):
                p, q = system.coefficients(i, x_stage, y_stages[:i])
                if q.ndim == 1:  # rate constant over the step: reuse the inverse
                    key = (i, float(np.float64(h).round(12)))
                    inv = inverses.get(key)
                    if inv is None:
                        inv = inverses[key] = _constant_q_inverse(q, h, tab)
                    y_stages[i], y[i] = _collocate_constant_q(y[i], p, q, h, inv, tab)
                else:
                    y_stages[i], y[i] = _collocate(y[i], p, q, h, tab)
            z[:nl] = np.einsum("ian,an->in", full, z)
    if stats is not None:
        stats["exponentials"] = len(props._raw)
    check_finite(x_rec, y_rec)
    return x_rec, y_rec


class NonFiniteError(SolverError):
    """Raised with the indices of the systems whose solution is not finite."""

    def __init__(self, systems: np.ndarray):
        self.systems = systems
        super().__init__(f"non-finite solution for systems {systems.tolist()[:10]}")
