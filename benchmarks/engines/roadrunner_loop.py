"""Peer engine: libroadrunner (SBML compiled by LLVM, CVODE), one subject at a time.

The model is built as SBML from the spec's equations (rate rules on amounts,
assignment rules for the intermediate quantities) through roadrunner's own
model-editing API, so neither antimony nor tellurium is needed.  Doses are
applied the way mrgsolve and NONMEM do it: simulate up to the dose, add the
amount to the state, restart CVODE (piecewise runs); extended release and infusions are input
rates set per segment.  Each subject: reset,
set its parameters, run every segment.  CVODE tolerances: rtol 1e-6,
atol 1e-9 (as the scipy loop).

Optional: the engine reports itself unavailable when ``roadrunner`` does
not import (``pip install libroadrunner``).
"""

from __future__ import annotations

import numpy as np

from . import spec_model as sm

NAME = "roadrunner_loop"
SUBSET = 50
RTOL = 1e-6
ATOL = 1e-9
SETTINGS = f"CVODE rtol {RTOL:g} atol {ATOL:g}, piecewise runs between events"

_EMPTY_SBML = """<?xml version="1.0" encoding="UTF-8"?>
<sbml xmlns="http://www.sbml.org/sbml/level3/version1/core" level="3" version="1">
  <model id="baclofen_gabab_v2"/>
</sbml>"""

#: Intermediate quantities (assignment rules), in dependency order.
_ASSIGNMENTS = (
    ("C_p", "A_c / V_c"),
    ("C_csf", "A_csf / V_csf"),
    ("C_lum", "A_lum / V_lum"),
    ("CL_in", "Kp * CL_out"),
    # (C + abs(C)) / 2 clips undershoot; a piecewise() would add a root function
    # that CVODE then hunts at every zero crossing.
    ("c_rel", "0.5 * (C_csf + abs(C_csf)) * um_per_mg_per_l / Kd"),
    ("theta", "c_rel / (1 + c_rel + g)"),
    ("s_stim", "tau * R * (c_rel + g) / (1 + c_rel + g)"),
    ("I_inh", "s_stim / (1 + s_stim)"),
    ("s0", "tau * g / (1 + g)"),
    ("I0", "s0 / (1 + s0)"),
)

#: Rate rules, one per state (the spec's equations).  r_er, r_iv and r_it
#: are the zero-order inputs (mg/h) of the current segment.
_RATES = (
    ("A_gut", "r_er - ka * A_gut"),
    ("A_c", "ka * A_gut + r_iv - CL * C_p - Q * (C_p - A_p / V_p)"
            " - CL_in * C_p + CL_out * C_csf + (1 - f_it) * CL_lum * C_lum"),
    ("A_p", "Q * (C_p - A_p / V_p)"),
    ("A_csf", "CL_in * C_p - CL_out * C_csf + k_sp * A_sp"),
    ("A_lum", "r_it - CL_lum * C_lum"),
    ("A_sp", "f_it * CL_lum * C_lum - k_sp * A_sp"),
    ("C_cns", "ke0_cns * (C_p - C_cns)"),
    ("R", "k_rec * (1 - R) - k_int * theta * R"),
    ("M", "k_M * (phi * (I_inh - I0) - M)"),
    ("M2", "k_M2 * (phi2 * (I_inh - I0) - M2)"),
)

#: Parameters the rate rules read (the others act through the schedule, or
#: only in readouts).
_FREE = tuple(k for k in sm.MODEL_PARAMETERS if k not in ("F_ir", "F_er", "D_er", "t_lag", "EC50_cns", "n_cns"))
_INPUTS = ("r_er", "r_iv", "r_it")


def available() -> tuple[bool, str]:
    try:
        import roadrunner  # noqa: F401
    except Exception as exc:  # ImportError, or a broken binary
        return False, f"libroadrunner not importable ({type(exc).__name__}: {exc}); pip install libroadrunner"
    return True, ""


def build_model():
    """A RoadRunner instance holding the reference model, compiled once."""
    import roadrunner

    rr = roadrunner.RoadRunner(_EMPTY_SBML)
    for name in _FREE:
        rr.addParameter(name, 1.0, False)
    rr.addParameter("um_per_mg_per_l", sm.UM_PER_MG_PER_L, False)
    for name in _INPUTS:
        rr.addParameter(name, 0.0, False)
    for name in sm.STATES:
        rr.addParameter(name, 1.0 if name == "R" else 0.0, False)
    for name, formula in _ASSIGNMENTS:
        rr.addParameter(name, 0.0, False)
        rr.addAssignmentRule(name, formula, False)
    for name, formula in _RATES:
        rr.addRateRule(name, formula, False)
    rr.regenerateModel(True, True)
    integ = rr.getIntegrator()
    integ.setValue("relative_tolerance", RTOL)
    integ.setValue("absolute_tolerance", ATOL)
    integ.setValue("variable_step_size", False)
    rr.timeCourseSelections = ["time", *sm.STATES]
    return rr


def prepare(problem):
    """Compile the model (LLVM), once per process; not part of the timing."""
    return build_model()


def sbml() -> str:
    """The model as SBML (level 3), for anyone who wants to load it elsewhere."""
    return build_model().getCurrentSBML()


def solve(problem, params: dict, outputs=sm.READOUTS, context=None) -> dict:
    """Readouts of every subject in ``problem``, each shape (N, T)."""
    rr = build_model() if context is None else context
    n = problem.n_subjects
    times = np.asarray(problem.times_h, dtype=float)
    res = {k: np.empty((n, times.size)) for k in outputs}
    state_ids = list(sm.STATES)
    for i in range(n):
        p = sm.subject_parameters(params, i)
        sch = sm.schedule(problem, p)
        per_seg = sm.segment_outputs(times, sch.breaks)
        rr.resetAll()
        rr.setValues(list(_FREE), [p[k] for k in _FREE])
        y = np.zeros((sm.N_STATES, times.size))
        m = sch.breaks.size - 1
        for j in range(m):
            for k, amount in sch.boluses[j]:
                name = state_ids[k]
                rr.setValue(name, rr.getValue(name) + amount)
            rr.setValues(list(_INPUTS), list(sch.rates[j]))
            idx = per_seg[j]
            t0, t1 = sch.breaks[j], sch.breaks[j + 1]
            grid = np.concatenate(([t0], times[idx][times[idx] > t0], [t1]))
            data = np.asarray(rr.simulate(times=grid))
            # Rows: t0 (post-dose), the outputs strictly inside, t1.
            seg = data[:-1, 1:] if (idx.size and times[idx[0]] == t0) else data[1:-1, 1:]
            y[:, idx] = seg.T
        for k, amount in sch.boluses[m]:
            name = state_ids[k]
            rr.setValue(name, rr.getValue(name) + amount)
        if per_seg[m].size:
            y[:, per_seg[m]] = np.array([rr.getValue(s) for s in state_ids])[:, None]
        for k, v in sm.readouts(y, p, outputs).items():
            res[k][i] = v
    return res
