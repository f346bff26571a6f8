"""Peer engine: a plain per-subject ``scipy.integrate.solve_ivp`` loop.

The baseline a Python user writes first: the spec's equations as a scalar
Python function, LSODA at rtol 1e-6 (atol 1e-9 mg, i.e. 1 ng, so that the
small CSF amounts are resolved), one subject after another, restarting the
solver at every dose and at every release or infusion change.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from . import spec_model as sm

NAME = "scipy_loop"
#: Loop engines are timed on a subset of subjects and scaled linearly.
SUBSET = 20
RTOL = 1e-6
ATOL = 1e-9
SETTINGS = f"LSODA rtol {RTOL:g} atol {ATOL:g}, restart at each event"


def available() -> tuple[bool, str]:
    return True, ""


def prepare(problem):
    return None


def solve_subject(problem, p: dict) -> np.ndarray:
    """States of one subject at ``problem.times_h``, shape (10, T)."""
    rhs = sm.make_rhs(p)

    def segment(t0, t1, y0, rates, t_eval):
        sol = solve_ivp(rhs, (t0, t1), y0, method="LSODA", rtol=RTOL, atol=ATOL,
                        t_eval=np.append(t_eval, t1), args=(rates,))
        if not sol.success:
            raise RuntimeError(f"LSODA failed on [{t0}, {t1}]: {sol.message}")
        return sol.y[:, :-1], sol.y[:, -1]

    return sm.integrate_piecewise(problem, p, segment)


def solve(problem, params: dict, outputs=sm.READOUTS, context=None) -> dict:
    """Readouts of every subject in ``problem``, each shape (N, T)."""
    n = problem.n_subjects
    res = {k: np.empty((n, len(problem.times_h))) for k in outputs}
    for i in range(n):
        p = sm.subject_parameters(params, i)
        y = solve_subject(problem, p)
        for k, v in sm.readouts(y, p, outputs).items():
            res[k][i] = v
    return res
