"""The reference GABA-B model (``model-spec.md`` v2), transcribed once.

This is the project's *independent* writing of the specification, shared by
the high-accuracy reference (``benchmarks/engines/reference.py``), the peer
benchmark engines and the tests (``tests/reference_model.py``).  It is
written from the spec alone and deliberately imports nothing from pkpd (not
even the default parameters), so that it can catch the package's mistakes.

Units: h, mg, L, L/h, mg/L; receptor quantities dimensionless.

State order (10 states per subject): the seven linear states in the spec's
numbering (CMT = index + 1), then the slow states::

    A_gut, A_c, A_p, A_csf, A_lum, A_sp, C_cns, R, M, M2

``C_cns`` is a concentration (mg/L) and carries no mass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

STATES = ("A_gut", "A_c", "A_p", "A_csf", "A_lum", "A_sp", "C_cns", "R", "M", "M2")
N_STATES = len(STATES)
IDX = {name: i for i, name in enumerate(STATES)}
#: States that hold drug (mg): the body's content is their sum.
AMOUNT_STATES = ("A_gut", "A_c", "A_p", "A_csf", "A_lum", "A_sp")

#: Baclofen molar mass, g/mol; micromolar per mg/L is 1000 / 213.66.
MOLAR_MASS = 213.66
UM_PER_MG_PER_L = 1000.0 / MOLAR_MASS

#: The spec's parameter table: name -> (default, unit).
PARAMETER_TABLE = {
    "F_ir": (0.74, "1"),
    "F_er": (0.70, "1"),
    "D_er": (5.5, "h"),
    "ka": (1.0, "1/h"),
    "t_lag": (0.0, "h"),
    "CL_nr": (1.3, "L/h"),
    "CL_r": (7.2, "L/h"),
    "V_c": (21.3, "L"),
    "Q": (9.5, "L/h"),
    "V_p": (14.6, "L"),
    "Kp": (0.12, "1"),
    "CL_out": (0.030, "L/h"),
    "V_csf": (0.065, "L"),
    "V_lum": (0.065, "L"),
    "CL_lum": (0.030, "L/h"),
    "f_it": (0.04, "1"),
    "k_sp": (0.552, "1/h"),
    "ke0_cns": (0.46, "1/h"),
    "EC50_cns": (0.7, "mg/L"),
    "n_cns": (4.0, "1"),
    "Kd": (0.26, "uM"),
    "g": (0.2, "1"),
    "tau": (20.0, "1"),
    "k_int": (0.00646, "1/h"),
    "k_rec": (0.01163, "1/h"),
    "k_M": (0.0144, "1/h"),
    "phi": (0.25, "1"),
    "k_M2": (0.000963, "1/h"),
    "phi2": (0.25, "1"),
    "WT": (70.0, "kg"),
    "CrCl": (100.0, "mL/min"),
}

#: Parameters the equations read, per subject ('CL' is the subject's total
#: clearance; CL_nr, CL_r, WT and CrCl enter only through it).
MODEL_PARAMETERS = (
    "F_ir", "F_er", "D_er", "ka", "t_lag", "CL", "V_c", "Q", "V_p", "Kp",
    "CL_out", "V_csf", "V_lum", "CL_lum", "f_it", "k_sp", "ke0_cns",
    "EC50_cns", "n_cns", "Kd", "g", "tau", "k_int", "k_rec", "k_M", "phi",
    "k_M2", "phi2",
)

#: Names with a log-normal between-subject factor by default (spec).
ETA_NAMES = ("ka", "CL", "V_c", "Kd", "k_M", "k_int")

READOUTS = ("plasma_mg_per_l", "csf_mg_per_l", "occupancy", "receptor_density",
            "adaptation", "inhibition", "effect", "excitability", "cns_depression")

#: Where each dose route enters (oral doses after bioavailability and lag).
BOLUS_TARGET = {"oral_ir": "A_gut", "iv_bolus": "A_c", "intrathecal_bolus": "A_lum"}
#: Zero-order inputs: the states they feed (columns of ``Schedule.rates``).
RATE_TARGETS = ("A_gut", "A_c", "A_lum")
RATE_COLUMN = {"oral_er": 0, "iv_infusion": 1, "intrathecal_infusion": 2}


def typical_params(**overrides: float) -> dict[str, float]:
    """The spec's defaults (including ``WT`` kg and ``CrCl`` mL/min), with overrides.

    Raises ``KeyError`` for a name the spec does not have (``ka_er`` was
    removed in v2: extended release is now a zero-order release over D_er).
    """
    p = {name: default for name, (default, _) in PARAMETER_TABLE.items()}
    for name, value in overrides.items():
        if name not in p:
            hint = " (removed in model v2: oral_er is a zero-order release over D_er)" if name == "ka_er" else ""
            raise KeyError(f"unknown parameter {name!r}{hint}")
        p[name] = float(value)
    return p


def individual_values(params: Mapping[str, float], eta: Mapping[str, float] | None = None) -> dict:
    """What the equations use for one subject (or, with arrays, for several).

    CL = CL_nr (WT/70)^0.75 + CL_r CrCl/100; V_c and V_p scale with WT/70,
    Q with (WT/70)^0.75.  Every ``eta[name]`` multiplies that parameter by
    exp(eta): on ``CL`` after the covariates (both terms), on any other
    parameter of the table (before or after the covariate scaling is the
    same, both being factors).

    Parameters
    ----------
    params : mapping
        Typical values by spec name (see :func:`typical_params`), scalars or
        arrays of shape (n,).
    eta : mapping, optional
        Log-normal deviations by name, scalars or (n,) arrays.

    Returns
    -------
    dict
        Every input name plus ``CL`` (L/h), with the subject's values.
    """
    eta = dict(eta or {})
    allowed = (set(PARAMETER_TABLE) - {"WT", "CrCl"}) | {"CL"}
    unknown = set(eta) - allowed
    if unknown:
        raise KeyError(f"no between-subject variability possible on {sorted(unknown)}")
    q = {k: np.exp(eta[k]) * v if k in eta else v for k, v in params.items()}
    w = np.asarray(q["WT"], dtype=float) / 70.0
    q["CL"] = (q["CL_nr"] * w**0.75 + q["CL_r"] * q["CrCl"] / 100.0) * np.exp(eta.get("CL", 0.0))
    q["V_c"] = q["V_c"] * w
    q["V_p"] = q["V_p"] * w
    q["Q"] = q["Q"] * w**0.75
    return {k: (float(v) if np.ndim(v) == 0 else np.asarray(v, dtype=float)) for k, v in q.items()}


def subject_parameters(params: Mapping, i: int) -> dict[str, float]:
    """Subject ``i``'s :data:`MODEL_PARAMETERS` as floats (from scalars or (N,) arrays)."""
    return {k: float(np.asarray(params[k]).reshape(-1)[i] if np.ndim(params[k]) else params[k])
            for k in MODEL_PARAMETERS}


def initial_state() -> np.ndarray:
    """State at t = 0: everything zero except R = 1, shape (10,)."""
    y = np.zeros(N_STATES)
    y[IDX["R"]] = 1.0
    return y


def baseline_inhibition(p: Mapping) -> float:
    """I0 = s0 / (1 + s0), s0 = tau g / (1 + g): drug-free inhibition at R = 1."""
    s0 = p["tau"] * p["g"] / (1.0 + p["g"])
    return s0 / (1.0 + s0)


def make_rhs(p: Mapping[str, float]):
    """Right-hand side ``f(t, y, rates)`` for one subject, scalar Python.

    ``rates`` = (r_er, r_iv, r_it), mg/h, constant over the current segment:
    the extended-release input into A_gut and the infusions into A_c and
    A_lum.  Returns the derivatives of :data:`STATES` as a list.
    """
    ka, CL, V_c, Q, V_p = p["ka"], p["CL"], p["V_c"], p["Q"], p["V_p"]
    CL_out, V_csf, V_lum, CL_lum, f_it = p["CL_out"], p["V_csf"], p["V_lum"], p["CL_lum"], p["f_it"]
    k_sp, ke0 = p["k_sp"], p["ke0_cns"]
    CL_in = p["Kp"] * CL_out
    kd_scale = UM_PER_MG_PER_L / p["Kd"]
    g, tau = p["g"], p["tau"]
    k_int, k_rec, k_M, phi, k_M2, phi2 = p["k_int"], p["k_rec"], p["k_M"], p["phi"], p["k_M2"], p["phi2"]
    I0 = baseline_inhibition(p)

    def rhs(t, y, rates):
        A_gut, A_c, A_p, A_csf, A_lum, A_sp, C_cns, R, M, M2 = y
        r_er, r_iv, r_it = rates
        C_p = A_c / V_c
        C_csf = A_csf / V_csf
        C_lum = A_lum / V_lum
        c = max(C_csf, 0.0) * kd_scale
        den = 1.0 + c + g
        theta = c / den
        s = tau * R * (c + g) / den
        I = s / (1.0 + s)
        to_p = Q * (C_p - A_p / V_p)
        exch = CL_in * C_p - CL_out * C_csf
        lum_out = CL_lum * C_lum
        return [
            r_er - ka * A_gut,
            ka * A_gut + r_iv - CL * C_p - to_p - exch + (1.0 - f_it) * lum_out,
            to_p,
            exch + k_sp * A_sp,
            r_it - lum_out,
            f_it * lum_out - k_sp * A_sp,
            ke0 * (C_p - C_cns),
            k_rec * (1.0 - R) - k_int * theta * R,
            k_M * (phi * (I - I0) - M),
            k_M2 * (phi2 * (I - I0) - M2),
        ]

    return rhs


def make_jacobian(p: Mapping[str, float]):
    """Analytic Jacobian ``J(t, y, rates)`` of :func:`make_rhs`, shape (10, 10)."""
    G, C, P, S, L, SP, N, R_, M_, M2_ = range(N_STATES)
    V_c, V_p, Q, CL = p["V_c"], p["V_p"], p["Q"], p["CL"]
    CL_out, V_csf, V_lum, CL_lum, f_it = p["CL_out"], p["V_csf"], p["V_lum"], p["CL_lum"], p["f_it"]
    CL_in = p["Kp"] * CL_out
    kd_scale = UM_PER_MG_PER_L / p["Kd"]
    g, tau = p["g"], p["tau"]
    k_int, k_rec, k_M, phi, k_M2, phi2 = p["k_int"], p["k_rec"], p["k_M"], p["phi"], p["k_M2"], p["phi2"]
    J0 = np.zeros((N_STATES, N_STATES))
    J0[G, G] = -p["ka"]
    J0[C, G] = p["ka"]
    J0[C, C] = -(CL + Q + CL_in) / V_c
    J0[C, P] = Q / V_p
    J0[C, S] = CL_out / V_csf
    J0[C, L] = (1.0 - f_it) * CL_lum / V_lum
    J0[P, C], J0[P, P] = Q / V_c, -Q / V_p
    J0[S, C], J0[S, S], J0[S, SP] = CL_in / V_c, -CL_out / V_csf, p["k_sp"]
    J0[L, L] = -CL_lum / V_lum
    J0[SP, L], J0[SP, SP] = f_it * CL_lum / V_lum, -p["k_sp"]
    J0[N, C], J0[N, N] = p["ke0_cns"] / V_c, -p["ke0_cns"]
    J0[M_, M_] = -k_M
    J0[M2_, M2_] = -k_M2

    def jac(t, y, rates):
        J = J0.copy()
        A_csf, R = y[S], y[R_]
        c = max(A_csf / V_csf, 0.0) * kd_scale
        dc = kd_scale / V_csf if A_csf > 0 else 0.0  # dc/dA_csf
        den = 1.0 + c + g
        theta = c / den
        J[R_, R_] = -k_rec - k_int * theta
        J[R_, S] = -k_int * R * (1.0 + g) / den**2 * dc
        s = tau * R * (c + g) / den
        dI = 1.0 / (1.0 + s) ** 2
        dI_dR = dI * tau * (c + g) / den
        dI_dA = dI * tau * R / den**2 * dc  # d[(c+g)/(1+c+g)]/dc = 1/den^2
        J[M_, R_], J[M_, S] = k_M * phi * dI_dR, k_M * phi * dI_dA
        J[M2_, R_], J[M2_, S] = k_M2 * phi2 * dI_dR, k_M2 * phi2 * dI_dA
        return J

    return jac


def readouts(y: np.ndarray, p: Mapping, names=READOUTS) -> dict[str, np.ndarray]:
    """The spec's readouts from states.

    Parameters
    ----------
    y : ndarray, shape (10, ...)
        States in :data:`STATES` order (any trailing shape, e.g. times).
    p : mapping
        Subject parameters, scalars or arrays broadcasting against ``y[0]``.
    names : sequence of str
        Which readouts to return (default all, spec order).
    """
    A_c, A_csf, A_lum, C_cns = y[IDX["A_c"]], y[IDX["A_csf"]], y[IDX["A_lum"]], y[IDX["C_cns"]]
    R, M, M2 = y[IDX["R"]], y[IDX["M"]], y[IDX["M2"]]
    g, tau = p["g"], p["tau"]
    C_csf = A_csf / p["V_csf"]
    c = np.maximum(C_csf, 0.0) * UM_PER_MG_PER_L / p["Kd"]
    den = 1.0 + c + g
    s = tau * R * (c + g) / den
    I = s / (1.0 + s)
    I0 = baseline_inhibition(p)
    cn = np.maximum(C_cns, 0.0) ** p["n_cns"]
    out = {
        "plasma_mg_per_l": A_c / p["V_c"],
        "csf_mg_per_l": A_lum / p["V_lum"] + C_csf,
        "occupancy": c / den,
        "receptor_density": R,
        "adaptation": M + M2,
        "inhibition": I,
        "effect": (I - I0) - M - M2,
        "excitability": (1.0 - I + M + M2) / (1.0 - I0),
        "cns_depression": cn / (cn + p["EC50_cns"] ** p["n_cns"]),
    }
    return {k: np.asarray(out[k], dtype=float) for k in names}


@dataclass(frozen=True)
class Events:
    """What one run gives, as plain lists (the protocol :func:`schedule` reads).

    ``doses``: (route, time_h, amount_mg) before bioavailability and lag;
    ``infusions``: (route, rate_mg_per_h, start_h, stop_h); ``duration_h``
    the end of the run; ``times_h`` the output times, shape (T,).
    """

    doses: tuple
    infusions: tuple
    duration_h: float
    times_h: np.ndarray


@dataclass(frozen=True)
class Schedule:
    """One subject's events, ready for a piecewise integration.

    ``breaks`` are the segment boundaries 0 = b_0 < ... < b_m = duration.
    ``boluses[j]`` lists (state index, amount mg) applied at ``breaks[j]``
    (bioavailability included); ``rates[j]`` = (r_er, r_iv, r_it), mg/h, on
    [b_j, b_{j+1}), shape (m, 3).  ``boluses[m]`` are doses at exactly the
    end time (they count for an output there: right-continuous).
    """

    breaks: np.ndarray
    boluses: tuple
    rates: np.ndarray


def inputs(events, p: Mapping) -> tuple[list, list]:
    """Boluses (time, state index, mg) and zero-order pieces (column, mg/h, start, stop).

    Oral IR: F_ir x dose into A_gut at t + t_lag.  Oral ER: F_er x dose / D_er
    mg/h into A_gut on [t + t_lag, t + t_lag + D_er).
    """
    boluses, pieces = [], []
    for route, t, amount in events.doses:
        t, amount = float(t), float(amount)
        if route == "oral_ir":
            boluses.append((t + p["t_lag"], IDX["A_gut"], p["F_ir"] * amount))
        elif route == "oral_er":
            start = t + p["t_lag"]
            pieces.append((RATE_COLUMN["oral_er"], p["F_er"] * amount / p["D_er"], start, start + p["D_er"]))
        else:
            boluses.append((t, IDX[BOLUS_TARGET[route]], amount))
    for route, rate, start, stop in events.infusions:
        pieces.append((RATE_COLUMN[route], float(rate), float(start), float(stop)))
    return boluses, pieces


def schedule(events, p: Mapping, *, extra_breaks=()) -> Schedule:
    """One subject's :class:`Schedule` from an :class:`Events`-like object.

    Every dose (after lag), release start and stop and infusion start and
    stop within [0, duration] is a break; later ones have no effect.
    ``extra_breaks`` (h, within [0, duration]) are added as breaks too.
    """
    duration = float(events.duration_h)
    boluses, pieces = inputs(events, p)
    boluses = [b for b in boluses if b[0] <= duration]
    cuts = {0.0, duration, *map(float, extra_breaks)}
    cuts.update(t for t, _, _ in boluses)
    for _, _, start, stop in pieces:
        cuts.update(t for t in (start, stop) if t <= duration)
    breaks = np.array(sorted(cuts))
    where = {t: j for j, t in enumerate(breaks)}
    at = [[] for _ in breaks]
    for t, k, amount in boluses:
        at[where[t]].append((k, amount))
    mids = 0.5 * (breaks[:-1] + breaks[1:])
    rates = np.zeros((mids.size, len(RATE_TARGETS)))
    for col, rate, start, stop in pieces:
        rates[(mids >= start) & (mids < stop), col] += rate
    return Schedule(breaks, tuple(tuple(b) for b in at), rates)


def segment_outputs(times_h: np.ndarray, breaks: np.ndarray) -> list:
    """Output indices per segment: times in [b_j, b_{j+1}); the last one closed.

    Returns a list of m + 1 index arrays; the extra last entry holds the
    outputs at exactly the end time (reported after end-time doses).
    """
    m = breaks.size - 1
    seg = np.clip(np.searchsorted(breaks, times_h, side="right") - 1, 0, m)
    return [np.flatnonzero(seg == j) for j in range(m + 1)]


def integrate_piecewise(events, p: Mapping, segment, *, y0=None, break_at_outputs: bool = False) -> np.ndarray:
    """Integrate one subject event by event; states at ``events.times_h``.

    ``segment(t0, t1, y0, rates, t_eval)`` integrates one segment with
    constant input rates and returns ``(states at t_eval (n, k), y(t1))``.
    Boluses are jumps applied between segments (restart at each dose: an
    adaptive step could otherwise jump over one).  ``y0`` (n,) defaults to
    :func:`initial_state` (a caller may append accumulators after the 10
    states); with ``break_at_outputs`` every output time is a segment end,
    so ``t_eval`` only ever holds ``t0``.  Returns shape (n, T).
    """
    times = np.asarray(events.times_h, dtype=float)
    sch = schedule(events, p, extra_breaks=times if break_at_outputs else ())
    per_seg = segment_outputs(times, sch.breaks)
    y = initial_state() if y0 is None else np.array(y0, dtype=float)
    out = np.empty((y.size, times.size))
    m = sch.breaks.size - 1
    for j in range(m + 1):
        for k, amount in sch.boluses[j]:
            y[k] += amount
        idx = per_seg[j]
        if j == m:
            out[:, idx] = y[:, None]
            break
        ys, y = segment(sch.breaks[j], sch.breaks[j + 1], y, tuple(sch.rates[j]), times[idx])
        out[:, idx] = ys
        y = np.array(y, dtype=float)
    return out
