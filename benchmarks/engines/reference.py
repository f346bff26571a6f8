"""High-accuracy reference: scipy Radau at rtol 1e-11, piecewise between events.

Independent of pkpd's solver: it integrates the spec's equations
(:mod:`benchmarks.engines.spec_model`) one subject at a time, restarting at
every dose and infusion change, with an analytic Jacobian.  Slow on purpose;
used on a few subjects to measure every engine's error.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import block_diag

from . import spec_model as sm

NAME = "reference"
RTOL = 1e-11
ATOL = 1e-14


def _jacobian(p: dict):
    ka, ka_er, CL, V_c, Q, V_p = p["ka"], p["ka_er"], p["CL"], p["V_c"], p["Q"], p["V_p"]
    CL_out, V_csf, V_lum, CL_lum, f_it = p["CL_out"], p["V_csf"], p["V_lum"], p["CL_lum"], p["f_it"]
    CL_in = p["Kp"] * CL_out
    kd_scale = sm.UM_PER_MG_PER_L / p["Kd"]
    g, tau, k_int, k_rec, k_M, phi = p["g"], p["tau"], p["k_int"], p["k_rec"], p["k_M"], p["phi"]
    J0 = np.zeros((8, 8))
    G, E, C, P, S, R_, M_, L = range(8)
    J0[G, G] = -ka
    J0[E, E] = -ka_er
    J0[C, G], J0[C, E] = ka, ka_er
    J0[C, C] = -(CL + Q + CL_in) / V_c
    J0[C, P] = Q / V_p
    J0[C, S] = CL_out / V_csf
    J0[C, L] = (1.0 - f_it) * CL_lum / V_lum
    J0[P, C], J0[P, P] = Q / V_c, -Q / V_p
    J0[S, C], J0[S, S], J0[S, L] = CL_in / V_c, -CL_out / V_csf, f_it * CL_lum / V_lum
    J0[L, L] = -CL_lum / V_lum
    J0[M_, M_] = -k_M

    def jac(t, y, r_iv, r_it):
        J = J0.copy()
        A_csf, R = y[S], y[R_]
        c = max(A_csf / V_csf, 0.0) * kd_scale
        dc = kd_scale / V_csf if A_csf > 0 else 0.0
        den = 1.0 + c + g
        theta = c / den
        dtheta = (1.0 + g) / den**2
        J[R_, R_] = -k_rec - k_int * theta
        J[R_, S] = -k_int * R * dtheta * dc
        s = tau * R * (c + g) / den
        dI = 1.0 / (1.0 + s) ** 2
        J[M_, R_] = k_M * phi * dI * tau * (c + g) / den
        J[M_, S] = k_M * phi * dI * tau * R / den**2 * dc
        return J

    return jac


def solve_states(problem, plist: list) -> np.ndarray:
    """States of several subjects at ``problem.times_h``, shape (n, 8, T).

    The subjects are integrated together as one block-diagonal system (one
    Radau run shares the Python overhead); every subject's events are
    segment boundaries, so no step crosses a dose.
    """
    n = len(plist)
    rhss = [sm.make_rhs(p) for p in plist]
    jacs = [_jacobian(p) for p in plist]
    scheds = [sm.schedule(problem, p) for p in plist]
    breaks = np.unique(np.concatenate([s.breaks for s in scheds]))
    times = np.asarray(problem.times_h, dtype=float)
    per_seg = sm.segment_outputs(times, breaks)
    m = breaks.size - 1
    # Per subject: boluses at each union break, rates on each union segment.
    bol = [[[] for _ in range(m + 1)] for _ in range(n)]
    r_iv = np.zeros((n, max(m, 1)))
    r_it = np.zeros((n, max(m, 1)))
    mids = 0.5 * (breaks[:-1] + breaks[1:])
    for i, s in enumerate(scheds):
        where = np.searchsorted(breaks, s.breaks)
        for j, b in enumerate(s.boluses):
            bol[i][where[j]].extend(b)
        seg = np.clip(np.searchsorted(s.breaks, mids, side="right") - 1, 0, s.r_iv.size - 1)
        r_iv[i, :m] = s.r_iv[seg]
        r_it[i, :m] = s.r_it[seg]

    def f(t, y, j):
        Y = y.reshape(n, sm.N_STATES)
        return np.concatenate([rhss[i](t, Y[i], r_iv[i, j], r_it[i, j]) for i in range(n)])

    def jac(t, y, j):
        Y = y.reshape(n, sm.N_STATES)
        return block_diag(*[jacs[i](t, Y[i], r_iv[i, j], r_it[i, j]) for i in range(n)])

    out = np.empty((n, sm.N_STATES, times.size))
    y = np.tile(sm.initial_state(), (n, 1))
    for j in range(m):
        for i in range(n):
            for k, amount in bol[i][j]:
                y[i, k] += amount
        idx = per_seg[j]
        t0, t1 = breaks[j], breaks[j + 1]
        # Outputs lie in [t0, t1); t1 is appended to carry the state on.
        sol = solve_ivp(f, (t0, t1), y.ravel(), method="Radau", rtol=RTOL, atol=ATOL,
                        t_eval=np.append(times[idx], t1), args=(j,), jac=jac)
        if not sol.success:
            raise RuntimeError(f"reference Radau failed on [{t0}, {t1}]: {sol.message}")
        out[:, :, idx] = sol.y[:, :-1].reshape(n, sm.N_STATES, -1)
        y = sol.y[:, -1].reshape(n, sm.N_STATES).copy()
    for i in range(n):
        for k, amount in bol[i][m]:
            y[i, k] += amount
    out[:, :, per_seg[m]] = y[:, :, None]
    return out


def solve(problem, params: dict, outputs=sm.READOUTS) -> dict:
    """Readouts of every subject in ``problem``, each (N, T)."""
    n = problem.n_subjects
    plist = [sm.subject_parameters(params, i) for i in range(n)]
    states = solve_states(problem, plist)
    res = {k: np.empty((n, len(problem.times_h))) for k in outputs}
    for i, p in enumerate(plist):
        for k, v in sm.readouts(states[i], p, outputs).items():
            res[k][i] = v
    return res
