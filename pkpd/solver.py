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
* The slow part is integrated with the 3-stage **Gauss-Legendre collocation**
  method (order 6, A-stable), with ``x`` evaluated exactly at the stage
  times.  Because each slow equation is linear in its own state and the
  system is triangular, the stage equations are solved exactly, component
  by component, with no Newton iteration.
* Jumps happen only at grid nodes and are applied before the node is
  recorded (right-continuous); steps never cross a jump, so a bolus is never
  spread over a step.

Shapes: state arrays carry the batch on the last axis, ``(rows, n)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import scipy.linalg

from .errors import SolverError

# 3-stage Gauss-Legendre tableau.
_S15 = np.sqrt(15.0)
GAUSS_C = np.array([0.5 - _S15 / 10.0, 0.5, 0.5 + _S15 / 10.0])
GAUSS_A = np.array(
    [
        [5 / 36, 2 / 9 - _S15 / 15, 5 / 36 - _S15 / 30],
        [5 / 36 + _S15 / 24, 2 / 9, 5 / 36 - _S15 / 24],
        [5 / 36 + _S15 / 30, 2 / 9 + _S15 / 15, 5 / 36],
    ]
)
GAUSS_B = np.array([5 / 18, 4 / 9, 5 / 18])

#: Nodes closer than this (h) are merged into one.
NODE_TOLERANCE_H = 1e-9


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
        of shape (nl, k, n) (only ``coupled_rows`` filled) and ``y`` of shape
        (i, k, n); returns arrays broadcastable to (k, n).
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


def time_grid(output_times: np.ndarray, event_times: np.ndarray, max_step: float):
    """Integration nodes: every output and event time, no step above ``max_step``.

    Returns
    -------
    nodes : ndarray (K,)
        Sorted node times.
    output_index : ndarray (T,)
        Index of each output time in ``nodes``.
    """
    t_out = np.asarray(output_times, float)
    marks = np.unique(np.concatenate([t_out, np.asarray(event_times, float)]))
    if marks.size > 1:  # merge near-duplicates (an event 1e-15 h from an output)
        keep = np.concatenate([[True], np.diff(marks) > NODE_TOLERANCE_H])
        marks = marks[keep]
    gaps = np.diff(marks)
    pieces = np.maximum(np.ceil(gaps / max_step - 1e-9).astype(int), 1)
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


class _Propagators:
    """Exact propagators of the augmented linear system, one set per step length."""

    def __init__(self, system: SemiLinearSystem):
        nl, m, n = system.B.shape
        aug = np.zeros((n, nl + m, nl + m))
        aug[:, :nl, :nl] = np.moveaxis(system.A, -1, 0)
        aug[:, :nl, nl:] = np.moveaxis(system.B, -1, 0)
        self._aug = aug
        self._nl = nl
        self._rows = list(system.coupled_rows)
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def get(self, h: float) -> tuple[np.ndarray, np.ndarray]:
        """(full-step rows (nl, na, n), stage rows (3, r, na, n)) for step ``h``."""
        key = float(np.float64(h).round(12))
        hit = self._cache.get(key)
        if hit is None:
            # Two exponentials, then products: E(c2 h) = E(c1 h) E(d h),
            # E(c3 h) = E(c2 h) E(d h), E(h) = E(h/2)^2.
            e1 = scipy.linalg.expm(self._aug * (GAUSS_C[0] * h))
            ed = scipy.linalg.expm(self._aug * ((GAUSS_C[1] - GAUSS_C[0]) * h))
            e2 = e1 @ ed
            e3 = e2 @ ed
            full = e2 @ e2
            stages = np.stack([e[:, self._rows, :] for e in (e1, e2, e3)])  # (3, n, r, na)
            hit = (
                np.ascontiguousarray(np.moveaxis(full[:, : self._nl, :], 0, -1)),
                np.ascontiguousarray(np.moveaxis(stages, 1, -1)),
            )
            self._cache[key] = hit
        return hit


def _collocate(y_a: np.ndarray, p: np.ndarray, q: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """One Gauss step of ``dy/dt = p(t) - q(t) y`` given p, q at the 3 stages.

    Solves ``(I + h A diag(q)) Y = y_a + h A p`` exactly (Cramer's rule, per
    system) and returns (stage values (3, n), end value (n,)).
    """
    a = GAUSS_A
    hq = h * q
    m = [[(1.0 if i == j else 0.0) + a[i, j] * hq[j] for j in range(3)] for i in range(3)]
    r = [y_a + h * (a[i, 0] * p[0] + a[i, 1] * p[1] + a[i, 2] * p[2]) for i in range(3)]
    c0 = m[1][1] * m[2][2] - m[1][2] * m[2][1]
    c1 = m[1][0] * m[2][2] - m[1][2] * m[2][0]
    c2 = m[1][0] * m[2][1] - m[1][1] * m[2][0]
    det = m[0][0] * c0 - m[0][1] * c1 + m[0][2] * c2
    y0 = (r[0] * c0 - m[0][1] * (r[1] * m[2][2] - m[1][2] * r[2]) + m[0][2] * (r[1] * m[2][1] - m[1][1] * r[2])) / det
    y1 = (m[0][0] * (r[1] * m[2][2] - m[1][2] * r[2]) - r[0] * c1 + m[0][2] * (m[1][0] * r[2] - r[1] * m[2][0])) / det
    y2 = (m[0][0] * (m[1][1] * r[2] - r[1] * m[2][1]) - m[0][1] * (m[1][0] * r[2] - r[1] * m[2][0]) + r[0] * c2) / det
    stages = np.stack([y0, y1, y2])
    b = GAUSS_B
    slope = p - q * stages
    return stages, y_a + h * (b[0] * slope[0] + b[1] * slope[1] + b[2] * slope[2])


def integrate(
    system: SemiLinearSystem,
    nodes: np.ndarray,
    *,
    jumps: Mapping[int, np.ndarray],
    inputs: Mapping[int, np.ndarray],
    record_index: np.ndarray,
    record_rows: tuple[int, ...],
    y0: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate the batch over ``nodes`` and record states at ``record_index``.

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

    Returns
    -------
    x_rec : ndarray (len(record_rows), T, n)
    y_rec : ndarray (n_slow, T, n)
    """
    nl, m, n = system.B.shape
    props = _Propagators(system)
    z = np.zeros((nl + m, n))
    y = np.array(y0, dtype=float, copy=True)
    x_stage = np.zeros((nl, 3, n))
    rows = list(system.coupled_rows)
    n_rec = len(record_index)
    x_rec = np.empty((len(record_rows), n_rec, n))
    y_rec = np.empty((system.n_slow, n_rec, n))
    rec_rows = list(record_rows)
    steps = np.diff(nodes)
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
                x_rec[:, rec_pos] = z[rec_rows]
                y_rec[:, rec_pos] = y
                rec_pos += 1
            if k == len(nodes) - 1:
                break
            h = steps[k]
            full, stage = props.get(h)
            # x at the three Gauss points, only the rows the slow part reads
            x_stage[rows] = np.einsum("sran,an->rsn", stage, z)
            y_stages = np.empty((system.n_slow, 3, n))
            for i in range(system.n_slow):
                p, q = system.coefficients(i, x_stage, y_stages[:i])
                p = np.broadcast_to(p, (3, n))
                q = np.broadcast_to(q, (3, n))
                y_stages[i], y[i] = _collocate(y[i], p, q, h)
            z[:nl] = np.einsum("ian,an->in", full, z)
    if not (np.all(np.isfinite(x_rec)) and np.all(np.isfinite(y_rec))):
        bad = np.unique(np.nonzero(~np.isfinite(np.concatenate([x_rec, y_rec])))[2])
        raise NonFiniteError(bad)
    return x_rec, y_rec


class NonFiniteError(SolverError):
    """Raised with the indices of the systems whose solution is not finite."""

    def __init__(self, systems: np.ndarray):
        self.systems = systems
        super().__init__(f"non-finite solution for systems {systems.tolist()[:10]}")
