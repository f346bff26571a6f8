"""Peer engine (optional): jax + diffrax, ``vmap`` over subjects.

The spec's equations in jax; one ``diffeqsolve`` per segment between
events (doses are jumps applied between segments), vmapped over subjects
and jit-compiled once per segment length (untimed warm-up).  Tsit5 with a PID
step-size controller at rtol 1e-6, atol 1e-9, float64.  Skips cleanly when
jax or diffrax does not import (``pip install jax diffrax``).
"""

from __future__ import annotations

import numpy as np

from . import spec_model as sm

NAME = "diffrax_vmap"
#: Beyond this many subjects the time is scaled (vmap cost is linear in n).
SUBSET = 10000
#: Left out of --quick by default: tracing and compiling take longer than the run.
IN_QUICK = False
RTOL = 1e-6
ATOL = 1e-9
SETTINGS = f"diffrax Tsit5 rtol {RTOL:g} atol {ATOL:g}, vmap over subjects, segments between events"


def available() -> tuple[bool, str]:
    try:
        import diffrax  # noqa: F401
        import jax  # noqa: F401
    except Exception as exc:
        return False, f"jax/diffrax not importable ({type(exc).__name__}: {exc}); pip install jax diffrax"
    return True, ""


def _vector_field():
    import jax.numpy as jnp

    def f(t, y, args):
        p, rates = args  # rates (3,): r_er, r_iv, r_it in mg/h
        A_gut, A_c, A_p, A_csf, A_lum, A_sp, C_cns, R, M, M2 = (y[i] for i in range(sm.N_STATES))
        C_p = A_c / p["V_c"]
        C_csf = A_csf / p["V_csf"]
        C_lum = A_lum / p["V_lum"]
        c = jnp.maximum(C_csf, 0.0) * sm.UM_PER_MG_PER_L / p["Kd"]
        den = 1.0 + c + p["g"]
        theta = c / den
        s = p["tau"] * R * (c + p["g"]) / den
        I = s / (1.0 + s)
        s0 = p["tau"] * p["g"] / (1.0 + p["g"])
        I0 = s0 / (1.0 + s0)
        CL_in = p["Kp"] * p["CL_out"]
        to_p = p["Q"] * (C_p - A_p / p["V_p"])
        lum_out = p["CL_lum"] * C_lum
        exch = CL_in * C_p - p["CL_out"] * C_csf
        return jnp.stack([
            rates[0] - p["ka"] * A_gut,
            p["ka"] * A_gut + rates[1] - p["CL"] * C_p - to_p - exch + (1.0 - p["f_it"]) * lum_out,
            to_p,
            exch + p["k_sp"] * A_sp,
            rates[2] - lum_out,
            p["f_it"] * lum_out - p["k_sp"] * A_sp,
            p["ke0_cns"] * (C_p - C_cns),
            p["k_rec"] * (1.0 - R) - p["k_int"] * theta * R,
            p["k_M"] * (p["phi"] * (I - I0) - M),
            p["k_M2"] * (p["phi2"] * (I - I0) - M2),
        ])

    return f


class _Solver:
    """Jitted, vmapped segment solves, cached by the number of save points."""

    def __init__(self):
        import jax

        jax.config.update("jax_enable_x64", True)
        import diffrax

        self.jax, self.dfx = jax, diffrax
        self.term = diffrax.ODETerm(_vector_field())
        self.cache = {}

    def segment(self, n_save: int):
        if n_save in self.cache:
            return self.cache[n_save]
        jax, dfx, term = self.jax, self.dfx, self.term

        def one(y0, p, rates, t0, t1, ts):
            sol = dfx.diffeqsolve(
                term, dfx.Tsit5(), t0, t1, None, y0, args=(p, rates),
                saveat=dfx.SaveAt(ts=ts),
                stepsize_controller=dfx.PIDController(rtol=RTOL, atol=ATOL),
                max_steps=100_000,
            )
            return sol.ys

        fn = jax.jit(jax.vmap(one, in_axes=(0, 0, 0, None, None, None)))
        self.cache[n_save] = fn
        return fn


def prepare(problem):
    """Trace and compile for this problem's shapes (number of subjects and
    outputs per segment) by solving it once; untimed, as compilation is."""
    solver = _Solver()
    solve(problem, problem.individual_parameters(), problem.outputs, solver)
    return solver


def solve(problem, params: dict, outputs=sm.READOUTS, context=None) -> dict:
    """Readouts of every subject, each (N, T).  Subjects share the segment
    boundaries (the union of everyone's events); each applies its own doses."""
    import jax.numpy as jnp

    solver = _Solver() if context is None else context
    n = problem.n_subjects
    plist = [sm.subject_parameters(params, i) for i in range(n)]
    scheds = [sm.schedule(problem, p) for p in plist]
    breaks = np.unique(np.concatenate([s.breaks for s in scheds]))
    times = np.asarray(problem.times_h, dtype=float)
    per_seg = sm.segment_outputs(times, breaks)
    m = breaks.size - 1
    mids = 0.5 * (breaks[:-1] + breaks[1:])
    jumps = np.zeros((m + 1, n, sm.N_STATES))
    rates = np.zeros((m, n, len(sm.RATE_TARGETS)))
    for i, s in enumerate(scheds):
        where = np.searchsorted(breaks, s.breaks)
        for j, b in enumerate(s.boluses):
            for k, amount in b:
                jumps[where[j], i, k] += amount
        seg = np.clip(np.searchsorted(s.breaks, mids, side="right") - 1, 0, max(len(s.rates) - 1, 0))
        rates[:, i] = s.rates[seg]
    p = {k: jnp.asarray(np.asarray(params[k], dtype=float).reshape(-1)[:n]) for k in sm.MODEL_PARAMETERS}
    pa = {k: np.asarray(params[k], dtype=float).reshape(-1)[:n, None] for k in sm.MODEL_PARAMETERS}
    res = {k: np.empty((n, times.size)) for k in outputs}

    def store(idx, states):  # states (10, n, k): readouts straight into the result
        for k, v in sm.readouts(states, pa, outputs).items():
            res[k][:, idx] = v

    y = np.tile(sm.initial_state(), (n, 1))
    for j in range(m):
        y = y + jumps[j]
        idx = per_seg[j]
        ts = np.append(times[idx], breaks[j + 1])
        ys = np.asarray(solver.segment(ts.size)(jnp.asarray(y), p, jnp.asarray(rates[j]),
                                                breaks[j], breaks[j + 1], jnp.asarray(ts)))
        if idx.size:
            store(idx, np.transpose(ys[:, :-1, :], (2, 0, 1)))
        y = ys[:, -1, :]
    y = y + jumps[m]
    if per_seg[m].size:
        store(per_seg[m], np.broadcast_to(y.T[:, :, None], (sm.N_STATES, n, per_seg[m].size)))
    return res
