"""High-accuracy reference solution of model-spec v2, one subject at a time.

Independent of pkpd's solver: it integrates the spec's equations as
transcribed in :mod:`benchmarks.engines.spec_model` with
``scipy.integrate.solve_ivp`` (DOP853 at rtol 1e-13 by default; Radau at
rtol 1e-11 with the analytic Jacobian, as the shared reference CSVs were
made, on request),
restarted at every event: each dose (after lag), each release or infusion
start and stop and each output time ends a segment, so boluses are exact
jumps and no output is interpolated.  Values are right-continuous: a bolus
at an output time is included in that output.

Besides the 10 model states it carries ``A_elim`` (mg), the amount removed
by CL, and reports ``A_in`` (mg), the amount that has entered the body
(bioavailable oral input, boluses, infusions), so mass balance can be
checked: sum of :data:`spec_model.AMOUNT_STATES` + A_elim = A_in.

Slow on purpose; used by the tests and on a few benchmark subjects to
measure every engine's error.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy.integrate import solve_ivp

from . import spec_model as sm

NAME = "reference"
#: Default integrator.  The model is only mildly stiff (fastest rate about
#: 1.5 /h, slowest 0.001 /h) and the segments are short, so the explicit
#: 8th-order DOP853 is ~20x faster than Radau at these tolerances; both
#: reproduce the shared CSVs to their 12 printed digits.
METHOD = "DOP853"
RTOL = 1e-13
ATOL = 1e-15
#: Tolerances for ``method="Radau"`` (as the shared CSVs were made).
RADAU_RTOL = 1e-11
RADAU_ATOL = 1e-14

_ELIM = sm.N_STATES  # index of the A_elim accumulator


def _with_elimination(p: Mapping[str, float]):
    """Right-hand side and Jacobian of the 10 states plus A_elim (11,)."""
    rhs, jac = sm.make_rhs(p), sm.make_jacobian(p)
    k_el = p["CL"] / p["V_c"]
    c = sm.IDX["A_c"]

    def f(t, y, rates):
        return [*rhs(t, y[:_ELIM], rates), k_el * y[c]]

    def J(t, y, rates):
        out = np.zeros((_ELIM + 1, _ELIM + 1))
        out[:_ELIM, :_ELIM] = jac(t, y[:_ELIM], rates)
        out[_ELIM, c] = k_el
        return out

    return f, J


def solve_states(events, p: Mapping[str, float], *, method: str = METHOD,
                 rtol: float | None = None, atol: float | None = None) -> np.ndarray:
    """States and A_elim of one subject at ``events.times_h``, shape (11, T).

    Parameters
    ----------
    events : :class:`spec_model.Events`-like
        Doses, infusions, ``duration_h`` and sorted ``times_h`` in [0, duration].
    p : mapping
        The subject's values (:func:`spec_model.individual_values`).
    method : str
        ``"DOP853"`` (default) or ``"Radau"`` (analytic Jacobian).
    rtol, atol : float, optional
        Tolerances (default RTOL/ATOL, or RADAU_RTOL/RADAU_ATOL for Radau).
    """
    stiff = method in ("Radau", "BDF", "LSODA")
    rtol = rtol if rtol is not None else (RADAU_RTOL if stiff else RTOL)
    atol = atol if atol is not None else (RADAU_ATOL if stiff else ATOL)
    f, J = _with_elimination(p)
    extra = {"jac": J} if stiff else {}

    def segment(t0, t1, y0, rates, t_eval):
        # every output is a break, so outputs in [t0, t1) are at t0 exactly
        sol = solve_ivp(f, (t0, t1), y0, method=method, rtol=rtol, atol=atol, args=(rates,),
                        first_step=min(1e-3, t1 - t0), **extra)
        if not sol.success:
            raise RuntimeError(f"reference {method} failed on [{t0}, {t1}]: {sol.message}")
        return np.repeat(np.asarray(y0)[:, None], len(t_eval), axis=1), sol.y[:, -1]

    return sm.integrate_piecewise(events, p, segment, y0=np.append(sm.initial_state(), 0.0),
                                  break_at_outputs=True)


def cumulative_input(events, p: Mapping[str, float]) -> np.ndarray:
    """Amount that has entered the body by each of ``events.times_h``, mg, shape (T,).

    Exact: bioavailable oral boluses and boluses at or before t (right-
    continuous), plus every zero-order piece's rate times its overlap with
    [0, t].  Inputs after ``duration_h`` never count.
    """
    t = np.asarray(events.times_h, dtype=float)
    duration = float(events.duration_h)
    boluses, pieces = sm.inputs(events, p)
    total = np.zeros(t.size)
    for tb, _, amount in boluses:
        if tb <= duration:
            total += np.where(t >= tb, amount, 0.0)
    for _, rate, start, stop in pieces:
        total += rate * np.clip(np.minimum(t, stop) - start, 0.0, None)
    return total


def solve(problem, params: dict, outputs=sm.READOUTS, context=None) -> dict:
    """Readouts of every subject in ``problem``, each shape (N, T)."""
    n = problem.n_subjects
    res = {k: np.empty((n, len(problem.times_h))) for k in outputs}
    for i in range(n):
        p = sm.subject_parameters(params, i)
        y = solve_states(problem, p)[:_ELIM]
        for k, v in sm.readouts(y, p, outputs).items():
            res[k][i] = v
    return res
