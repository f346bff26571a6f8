"""The reference GABA-B model (model-spec v1) written once for the peer engines.

This file is deliberately independent of ``pkpd.model``: it transcribes
``model-spec.md`` again, so that the peer engines (and the high-accuracy
reference) check pkpd rather than repeat it.  Only the per-subject parameter
values come from pkpd (``pkpd.model.individual_parameters``), so every engine
solves the same subjects.

Units: h, mg, L, L/h, mg/L.  State order (8 states per subject)::

    A_gut, A_er, A_c, A_p, A_csf, R, M, A_lum
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATES = ("A_gut", "A_er", "A_c", "A_p", "A_csf", "R", "M", "A_lum")
N_STATES = len(STATES)
IDX = {name: i for i, name in enumerate(STATES)}

#: Micromolar per mg/L of baclofen (molar mass 213.66 g/mol).
UM_PER_MG_PER_L = 1000.0 / 213.66

#: Parameters the equations read, per subject (model-spec names plus 'CL').
MODEL_PARAMETERS = (
    "F_ir", "F_er", "ka", "ka_er", "t_lag", "CL", "V_c", "Q", "V_p", "Kp",
    "CL_out", "V_csf", "V_lum", "CL_lum", "f_it", "Kd", "g", "tau",
    "k_int", "k_rec", "k_M", "phi",
)

#: Dose routes and the state each bolus enters.
BOLUS_TARGET = {"oral_ir": "A_gut", "oral_er": "A_er", "iv_bolus": "A_c", "intrathecal_bolus": "A_lum"}

READOUTS = ("plasma_mg_per_l", "csf_mg_per_l", "occupancy", "receptor_density",
            "adaptation", "inhibition", "effect", "excitability")


def initial_state() -> np.ndarray:
    """State at t = 0: everything zero except R = 1, shape (8,)."""
    y = np.zeros(N_STATES)
    y[IDX["R"]] = 1.0
    return y


def subject_parameters(params: dict, i: int) -> dict:
    """Subject ``i``'s parameters as plain floats (from a dict of (N,) arrays)."""
    return {k: float(np.asarray(params[k]).reshape(-1)[i] if np.ndim(params[k]) else params[k])
            for k in MODEL_PARAMETERS}


def make_rhs(p: dict):
    """Right-hand side ``f(t, y, r_iv, r_it)`` for one subject, scalar Python.

    Written as a Python user would write it from the spec.  ``r_iv`` and
    ``r_it`` are the infusion rates (mg/h) constant over the current segment.
    """
    ka, ka_er, CL, V_c, Q, V_p = p["ka"], p["ka_er"], p["CL"], p["V_c"], p["Q"], p["V_p"]
    CL_out, V_csf, V_lum, CL_lum, f_it = p["CL_out"], p["V_csf"], p["V_lum"], p["CL_lum"], p["f_it"]
    CL_in = p["Kp"] * CL_out
    kd_scale = UM_PER_MG_PER_L / p["Kd"]
    g, tau, k_int, k_rec, k_M, phi = p["g"], p["tau"], p["k_int"], p["k_rec"], p["k_M"], p["phi"]
    s0 = tau * g / (1.0 + g)
    I0 = s0 / (1.0 + s0)

    def rhs(t, y, r_iv, r_it):
        A_gut, A_er, A_c, A_p, A_csf, R, M, A_lum = y
        C_p = A_c / V_c
        C_csf = A_csf / V_csf
        C_lum = A_lum / V_lum
        c = max(C_csf, 0.0) * kd_scale
        denom = 1.0 + c + g
        theta = c / denom
        s = tau * R * (c + g) / denom
        I = s / (1.0 + s)
        to_p = Q * (C_p - A_p / V_p)
        lum_out = CL_lum * C_lum
        exch = CL_in * C_p - CL_out * C_csf
        return [
            -ka * A_gut,
            -ka_er * A_er,
            ka * A_gut + ka_er * A_er + r_iv - CL * C_p - to_p - exch + (1.0 - f_it) * lum_out,
            to_p,
            exch + f_it * lum_out,
            k_rec * (1.0 - R) - k_int * theta * R,
            k_M * (phi * (I - I0) - M),
            r_it - lum_out,
        ]

    return rhs


def readouts(y: np.ndarray, p: dict, names=READOUTS) -> dict:
    """Readouts from states.

    Parameters
    ----------
    y : ndarray, shape (8, ...)
        States in :data:`STATES` order (any trailing shape, e.g. times).
    p : dict
        Parameters, scalars or arrays broadcasting against ``y[0]``.
    """
    A_c, A_csf, R, M, A_lum = y[IDX["A_c"]], y[IDX["A_csf"]], y[IDX["R"]], y[IDX["M"]], y[IDX["A_lum"]]
    g, tau = p["g"], p["tau"]
    C_p = A_c / p["V_c"]
    C_csf = A_csf / p["V_csf"]
    C_lum = A_lum / p["V_lum"]
    c = np.maximum(C_csf, 0.0) * UM_PER_MG_PER_L / p["Kd"]
    denom = 1.0 + c + g
    theta = c / denom
    s = tau * R * (c + g) / denom
    I = s / (1.0 + s)
    s0 = tau * g / (1.0 + g)
    I0 = s0 / (1.0 + s0)
    out = {
        "plasma_mg_per_l": C_p,
        "csf_mg_per_l": C_lum + C_csf,
        "occupancy": theta,
        "receptor_density": R,
        "adaptation": M,
        "inhibition": I,
        "effect": (I - I0) - M,
        "excitability": (1.0 - I + M) / (1.0 - I0),
    }
    return {k: np.asarray(out[k], dtype=float) for k in names}


@dataclass(frozen=True)
class Schedule:
    """One subject's events, ready for a piecewise integration.

    ``breaks`` are the segment boundaries 0 = b_0 < ... < b_m = duration.
    ``boluses[j]`` lists (state index, amount mg) applied at ``breaks[j]``
    (bioavailability included); ``r_iv[j]``, ``r_it[j]`` are the infusion
    rates (mg/h) on [b_j, b_{j+1}).  ``boluses[m]`` are doses at exactly the
    end time (they count for an output there: right-continuous).
    """

    breaks: np.ndarray
    boluses: tuple
    r_iv: np.ndarray
    r_it: np.ndarray


def schedule(problem, p: dict) -> Schedule:
    """Build one subject's :class:`Schedule` from a problem's event lists.

    ``problem.doses`` is a sequence of (route, time_h, amount_mg) and
    ``problem.infusions`` of (route, rate_mg_per_h, start_h, stop_h);
    ``p`` the subject's parameters (floats).
    """
    duration = float(problem.duration_h)
    events = []  # (time, state index, amount)
    for route, t, amount in problem.doses:
        if route == "oral_ir":
            t, amount = t + p["t_lag"], amount * p["F_ir"]
        elif route == "oral_er":
            t, amount = t + p["t_lag"], amount * p["F_er"]
        if t <= duration:
            events.append((float(t), IDX[BOLUS_TARGET[route]], float(amount)))
    cuts = {0.0, duration}
    for t, _, _ in events:
        cuts.add(t)
    for _, _, start, stop in problem.infusions:
        for t in (start, stop):
            if 0.0 <= t <= duration:
                cuts.add(float(t))
    breaks = np.array(sorted(cuts))
    where = {t: j for j, t in enumerate(breaks)}
    boluses = [[] for _ in breaks]
    for t, k, amount in events:
        boluses[where[t]].append((k, amount))
    mids = 0.5 * (breaks[:-1] + breaks[1:])
    r_iv = np.zeros(mids.size)
    r_it = np.zeros(mids.size)
    for route, rate, start, stop in problem.infusions:
        on = (mids >= start) & (mids < stop)
        (r_iv if route == "iv_infusion" else r_it)[on] += rate
    return Schedule(breaks, tuple(tuple(b) for b in boluses), r_iv, r_it)


def segment_outputs(times_h: np.ndarray, breaks: np.ndarray) -> list:
    """Output indices per segment: times in [b_j, b_{j+1}); the last one closed.

    Returns a list of m + 1 index arrays; the extra last entry holds the
    outputs at exactly the end time (reported after end-time doses).
    """
    m = breaks.size - 1
    seg = np.searchsorted(breaks, times_h, side="right") - 1
    seg = np.clip(seg, 0, m)
    return [np.flatnonzero(seg == j) for j in range(m + 1)]


def integrate_piecewise(problem, p: dict, segment) -> np.ndarray:
    """Integrate one subject event by event; states at ``problem.times_h``.

    ``segment(t0, t1, y0, r_iv, r_it, t_eval)`` integrates one segment with
    constant infusion rates and returns ``(states at t_eval (8, k), y(t1))``.
    Boluses are jumps applied between segments (restart at each dose: an
    adaptive step could otherwise jump over one).  Returns shape (8, T).
    """
    sch = schedule(problem, p)
    times = np.asarray(problem.times_h, dtype=float)
    per_seg = segment_outputs(times, sch.breaks)
    out = np.empty((N_STATES, times.size))
    y = initial_state()
    m = sch.breaks.size - 1
    for j in range(m):
        for k, amount in sch.boluses[j]:
            y[k] += amount
        idx = per_seg[j]
        t0, t1 = sch.breaks[j], sch.breaks[j + 1]
        ys, y = segment(t0, t1, y, sch.r_iv[j], sch.r_it[j], times[idx])
        out[:, idx] = ys
        y = np.array(y, dtype=float)
    for k, amount in sch.boluses[m]:
        y[k] += amount
    out[:, per_seg[m]] = y[:, None]
    return out
