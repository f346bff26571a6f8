"""The reference GABA-B model (model-spec v2): every equation in one place.

The model splits into two parts that the solver treats differently:

* a **linear part** with constant coefficients between events:
  ``dx/dt = A x + B u``.  Its states are the spec's numbered states
  ``A_gut, A_c, A_p, A_csf, A_lum, A_sp`` (mg) and ``C_cns`` (mg/L, the CNS
  effect site, which carries no mass), plus ``A_elim``, the cumulative amount
  eliminated from the body (mg, for mass balance).  ``u`` holds one
  zero-order input (mg/h) per dosable state: extended-release release into
  the gut, intravenous and intrathecal infusions, and any infusion an event
  table sends to a compartment.
* a **slow part**, receptor loss ``L = 1 - R`` and the two counter-adaptations
  ``M`` (days) and ``M2`` (months).  Writing the receptor state as a loss
  keeps the drug-free solution exactly at baseline.

The solver's contract for the slow part (:data:`SLOW_CONTRACT`): each slow
state ``y_i`` obeys ``dy_i/dt = p_i - q_i y_i`` where ``p_i`` and ``q_i`` depend
only on the linear states and on slow states ``y_j`` with ``j < i`` (linear in
itself, triangular).  The solver exploits it to solve the collocation
equations exactly, without Newton iterations.  ``tests/test_model.py``
checks that the equations here honour it.

Units: h, mg, L, L/h, mg/L; receptor quantities are dimensionless.
Arrays carry subjects on the last axis inside the core.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .parameters import Parameters
from .population import Population
from .units import UM_PER_MG_PER_L

#: Linear states in solver order: the spec's numbered states 1-7 (CMT in
#: event tables is the position + 1), then the eliminated amount.
LINEAR_STATES = ("A_gut", "A_c", "A_p", "A_csf", "A_lum", "A_sp", "C_cns", "A_elim")
GUT, C, P, CSF, LUM, SP, CNS, ELIM = range(len(LINEAR_STATES))
#: States a dose may enter (CMT 1-6); C_cns is a concentration, not dosable.
DOSABLE_STATES = LINEAR_STATES[:CNS]
#: States holding drug amounts (mg): what mass balance adds up (C_cns excluded).
AMOUNT_STATES = DOSABLE_STATES
#: Zero-order inputs, mg/h: one per dosable state, in the same order.
INPUTS = DOSABLE_STATES
#: Slow states, dimensionless: receptor loss (1 - R) and the two adaptations.
SLOW_STATES = ("receptor_loss", "adaptation_days", "adaptation_months")
#: The solver's assumption about the slow part, checked by the tests.
SLOW_CONTRACT = "each slow state linear in itself; the slow part triangular (state i reads states < i)"
#: Slow states each slow state's coefficients read (a subset of the states
#: below it): receptor loss reads none, both adaptations read receptor loss
#: only.  Steady states use it: the period map of the slow part is solved in
#: one pass per level of this graph (:mod:`pkpd.steady_state`).
SLOW_READS = ((), (0,), (0,))
#: Linear states the slow part reads.
COUPLED_STATES = (CSF,)

#: Where each dose route puts its amount, which bioavailability applies, and
#: whether the subject's absorption lag applies.  ``oral_er`` is released at
#: a constant rate over ``D_er`` hours rather than given as a bolus.
DOSE_TARGETS = {
    "oral_ir": (GUT, "F_ir", True),
    "oral_er": (GUT, "F_er", True),
    "iv_bolus": (C, None, False),
    "intrathecal_bolus": (LUM, None, False),
}
#: Dose routes given as a zero-order release over ``D_er`` hours.
RELEASED_ROUTES = ("oral_er",)
#: The state each infusion route feeds.
INFUSION_TARGETS = {"iv_infusion": C, "intrathecal_infusion": LUM}


def individual_parameters(parameters: Parameters, population: Population) -> dict[str, np.ndarray]:
    """Per-subject parameter values after covariates and random effects.

    Returns every :class:`Parameters` field as an array of shape (n,), plus
    ``WT`` (kg) and ``CrCl`` (mL/min) from the population and ``CL`` (L/h),
    the total clearance.  ``V_c`` and ``V_p`` scale with ``WT/70``, ``Q``
    with ``(WT/70)**0.75``; then each parameter with a random effect in the
    population is multiplied by ``exp(eta)``::

        CL = (CL_nr * (WT/70)**0.75 + CL_r * CrCl/100) * exp(eta_CL)
    """
    n = population.n
    values = parameters.as_dict()
    if isinstance(parameters, Parameters):  # every value a float: one (k, n) array, a row per parameter
        rows = np.empty((len(values), n))
        rows[...] = np.array(list(values.values()), float)[:, None]
        ind = dict(zip(values, rows))
    else:
        ind = {k: np.full(n, v) for k, v in values.items()}
    wt = np.asarray(population.weight_kg, float)
    crcl = np.asarray(population.crcl_ml_min, float)
    ind["WT"], ind["CrCl"] = wt.copy(), crcl.copy()
    size = wt / 70.0
    allometric = size**0.75
    ind["V_c"] = ind["V_c"] * size
    ind["V_p"] = ind["V_p"] * size
    ind["Q"] = ind["Q"] * allometric
    for name, eta in population.eta.items():
        if name != "CL":  # a parameter's own eta first: CL_nr and CL_r feed CL
            ind[name] = ind[name] * np.exp(eta)
    ind["CL"] = ind["CL_nr"] * allometric + ind["CL_r"] * crcl / 100.0
    if "CL" in population.eta:
        ind["CL"] = ind["CL"] * np.exp(population.eta["CL"])
    return ind


def typical_values_with_eta(parameters: Parameters, population: Population) -> dict[str, np.ndarray]:
    """Per-subject values before covariates: each typical value times ``exp(eta)``.

    What an event table writes as parameter columns (the engine applies the
    covariate model to a column's value as to a typical value, so the
    subject is the same as in :func:`individual_parameters`).  Every
    :class:`Parameters` field, shape (n,); a random effect on ``CL``
    multiplies both ``CL_nr`` and ``CL_r`` (the same total clearance).
    """
    n = population.n
    out = {k: np.full(n, v) for k, v in parameters.as_dict().items()}
    for name, eta in population.eta.items():
        for k in (("CL_nr", "CL_r") if name == "CL" else (name,)):
            out[k] = out[k] * np.exp(eta)
    return out


def linear_system(ind: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rate matrix ``A`` (n_lin, n_lin, n) in 1/h and input matrix ``B`` (n_lin, n_inputs, n).

    ``dx/dt = A x + B u`` with ``x`` the states of :data:`LINEAR_STATES` and
    ``u`` the zero-order inputs of :data:`INPUTS` (mg/h)::

        dA_gut/dt = u_gut - ka A_gut
        dA_c/dt   = ka A_gut + u_c - CL C_p - Q (C_p - A_p/V_p) - CL_in C_p
                    + CL_out C_csf + (1 - f_it) CL_lum C_lum
        dA_p/dt   = u_p + Q (C_p - A_p/V_p)
        dA_csf/dt = u_csf + CL_in C_p - CL_out C_csf + k_sp A_sp
        dA_lum/dt = u_lum - CL_lum C_lum
        dA_sp/dt  = u_sp + f_it CL_lum C_lum - k_sp A_sp
        dC_cns/dt = ke0_cns (C_p - C_cns)
        dA_elim/dt = CL C_p

    with ``CL_in = Kp * CL_out``.
    """
    n = ind["CL"].shape[0]
    nl = len(LINEAR_STATES)
    A = np.zeros((nl, nl, n))
    B = np.zeros((nl, len(INPUTS), n))
    k10 = ind["CL"] / ind["V_c"]  # elimination
    k12 = ind["Q"] / ind["V_c"]  # central -> peripheral
    k21 = ind["Q"] / ind["V_p"]  # peripheral -> central
    k_in = ind["Kp"] * ind["CL_out"] / ind["V_c"]  # plasma -> biophase (CL_in = Kp * CL_out)
    k_out = ind["CL_out"] / ind["V_csf"]  # biophase -> plasma
    k_lum = ind["CL_lum"] / ind["V_lum"]  # lumbar CSF bulk flow
    f_it = ind["f_it"]

    A[GUT, GUT] = -ind["ka"]
    A[C, GUT] = ind["ka"]
    A[C, C] = -(k10 + k12 + k_in)
    A[C, P] = k21
    A[C, CSF] = k_out
    A[C, LUM] = (1.0 - f_it) * k_lum
    A[P, C] = k12
    A[P, P] = -k21
    A[CSF, C] = k_in
    A[CSF, CSF] = -k_out
    A[CSF, SP] = ind["k_sp"]
    A[LUM, LUM] = -k_lum
    A[SP, LUM] = f_it * k_lum
    A[SP, SP] = -ind["k_sp"]
    A[CNS, C] = ind["ke0_cns"] / ind["V_c"]
    A[CNS, CNS] = -ind["ke0_cns"]
    A[ELIM, C] = k10
    for j, state in enumerate(INPUTS):
        B[LINEAR_STATES.index(state), j] = 1.0
    return A, B


def baseline_inhibition(ind: Mapping[str, np.ndarray]) -> np.ndarray:
    """I0 = s0 / (1 + s0) with s0 = tau * g / (1 + g): drug-free inhibition, shape (n,)."""
    s0 = ind["tau"] * (ind["g"] / (1.0 + ind["g"]))
    return s0 / (1.0 + s0)


# --- The slow part's equations, elementwise ------------------------------
# Written once, as plain arithmetic on scalars or arrays: numpy broadcasts
# them (the reference path below) and pkpd.kernel compiles the very same
# functions with numba.  They read no module-level constant, so a compiled
# copy can never hold a stale value.


def kd_units(a_csf, scale):
    """Drug in the biophase in units of Kd, ``max(A_csf, 0) * scale`` with
    ``scale = (1000 / 213.66) / (V_csf * Kd)`` (:func:`kd_scale`)."""
    return np.maximum(a_csf, 0.0) * scale


def occupancy_of(c, g):
    """Receptor occupancy by baclofen, theta = c / (1 + c + g), from c in Kd units."""
    return c / (1.0 + c + g)


def inhibition_of(c, loss, g, tau):
    """Fractional inhibition I = s / (1 + s), s = tau * (1 - L) * (theta + theta_e)."""
    bound = (c + g) / (1.0 + c + g)  # theta + theta_e
    s = tau * (1.0 - loss) * bound
    return s / (1.0 + s)


def receptor_loss_coefficients(c, g, k_int, k_rec):
    """(p, q) of receptor loss: dL/dt = k_int theta - (k_rec + k_int theta) L."""
    loss_rate = k_int * occupancy_of(c, g)
    return loss_rate, k_rec + loss_rate


def adaptation_coefficients(drive, rate, extent):
    """(p, q) of a counter-adaptation: dM/dt = rate (extent (I - I0) - M), ``drive = I - I0``."""
    return (rate * extent) * drive, rate


def kd_scale(ind: Mapping[str, np.ndarray]) -> np.ndarray:
    """(1000 / 213.66) / (V_csf * Kd): mg of A_csf to units of Kd, shape (n,)."""
    return UM_PER_MG_PER_L / (ind["V_csf"] * ind["Kd"])


def drug_in_kd_units(a_csf: np.ndarray, ind: Mapping[str, np.ndarray]) -> np.ndarray:
    """c = C_csf * (1000 / 213.66) / Kd: biophase drug in units of Kd, from A_csf (mg).

    Tiny negative amounts from round-off are clipped to zero first.
    """
    return kd_units(a_csf, kd_scale(ind))


def occupancy(a_csf: np.ndarray, ind: Mapping[str, np.ndarray]) -> np.ndarray:
    """Receptor occupancy by baclofen, theta = c / (1 + c + g), from A_csf (mg)."""
    return occupancy_of(drug_in_kd_units(a_csf, ind), ind["g"])


def inhibition(a_csf: np.ndarray, receptor_loss: np.ndarray, ind: Mapping[str, np.ndarray]) -> np.ndarray:
    """Fractional inhibition I = s / (1 + s), s = tau * R * (theta + theta_e)."""
    return inhibition_of(drug_in_kd_units(a_csf, ind), receptor_loss, ind["g"], ind["tau"])


#: Rate and extent of each counter-adaptation (slow states 1 and 2).
_ADAPTATIONS = {1: ("k_M", "phi"), 2: ("k_M2", "phi2")}

#: Per-subject values the slow part reads, in the order of :func:`slow_parameters`
#: (what a compiled engine receives instead of the parameter mapping).
SLOW_PARAMETERS = ("kd_scale", "g", "k_int", "k_rec", "tau", "I0", "k_M", "phi", "k_M2", "phi2")


def slow_parameters(ind: Mapping[str, np.ndarray]) -> np.ndarray:
    """The values of :data:`SLOW_PARAMETERS`, shape (len(SLOW_PARAMETERS), n)."""
    with np.errstate(all="ignore"):  # an extreme value gives inf here; the solver then names the subject
        extra = {"kd_scale": kd_scale(ind), "I0": baseline_inhibition(ind)}
    return np.ascontiguousarray(np.stack([np.asarray(extra[k] if k in extra else ind[k], float)
                                          for k in SLOW_PARAMETERS]))


def slow_coefficients(i: int, linear: np.ndarray, slow: np.ndarray, ind: Mapping[str, np.ndarray],
                      memo: dict | None = None):
    """Coefficients (p, q) of slow state ``i`` in ``dy_i/dt = p - q * y_i``.

    Parameters
    ----------
    i : int
        0 for receptor loss L = 1 - R, 1 for adaptation M, 2 for M2.
    linear : ndarray, shape (n_lin, k, n)
        Linear states at ``k`` evaluation points (only A_csf is read).
    slow : ndarray, shape (>= i, k, n)
        Slow states 0..i-1 at the same points (the system is triangular).
    memo : dict, optional
        Scratch space reused across calls for one set of points, in order
        i = 0, 1, 2: M and M2 share one drive ``I - I0`` (computed at i = 1).

    Returns ``p`` (k, n) and ``q`` (k, n), or ``q`` (n,) when constant.

    Equations (model-spec)::

        dR/dt  = k_rec (1 - R) - k_int theta R  ->  dL/dt = k_int theta - (k_rec + k_int theta) L
        dM/dt  = k_M  (phi  (I - I0) - M)
        dM2/dt = k_M2 (phi2 (I - I0) - M2)
    """
    if i == 0:
        return receptor_loss_coefficients(drug_in_kd_units(linear[CSF], ind), ind["g"], ind["k_int"], ind["k_rec"])
    rate, extent = _ADAPTATIONS[i]
    if memo is None or i == 1 or "drive" not in memo:
        if memo is not None and "I0" not in memo:
            memo["I0"] = baseline_inhibition(ind)
        i0 = memo["I0"] if memo is not None else baseline_inhibition(ind)
        drive = inhibition(linear[CSF], slow[0], ind) - i0
        if memo is not None:
            memo["drive"] = drive
    else:
        drive = memo["drive"]
    return adaptation_coefficients(drive, ind[rate], ind[extent])


def cns_depression(c_cns: np.ndarray, ind: Mapping[str, np.ndarray]) -> np.ndarray:
    """C_cns^n / (C_cns^n + EC50^n): illustrative supraspinal depression index, 0..1."""
    x = np.maximum(c_cns, 0.0) / ind["EC50_cns"]
    xn = x ** ind["n_cns"]
    return xn / (1.0 + xn)


#: The states each readout is computed from.
READOUT_STATES = {
    "plasma_mg_per_l": ("A_c",),
    "csf_mg_per_l": ("A_lum", "A_csf"),
    "occupancy": ("A_csf",),
    "receptor_density": ("receptor_loss",),
    "adaptation": ("adaptation_days", "adaptation_months"),
    "inhibition": ("A_csf", "receptor_loss"),
    "effect": ("A_csf", "receptor_loss", "adaptation_days", "adaptation_months"),
    "excitability": ("A_csf", "receptor_loss", "adaptation_days", "adaptation_months"),
    "cns_depression": ("C_cns",),
    # API-only readouts (EXTRA_READOUTS): not columns of timecourse.csv
    "lumbar_csf_mg_per_l": ("A_lum",),
    "biophase_mg_per_l": ("A_csf",),
}


def readout(name: str, states: Mapping[str, np.ndarray], ind: Mapping[str, np.ndarray]) -> np.ndarray:
    """One readout of the spec from the states at output times.

    ``states`` maps state names (amounts A_c, A_csf, A_lum in mg; C_cns in
    mg/L; ``receptor_loss`` = 1 - R, ``adaptation_days`` = M and
    ``adaptation_months`` = M2, dimensionless) to arrays of any one shape;
    parameters broadcast against it.
    """
    if name == "plasma_mg_per_l":
        return states["A_c"] / ind["V_c"]
    if name == "lumbar_csf_mg_per_l":
        return states["A_lum"] / ind["V_lum"]
    if name == "biophase_mg_per_l":
        return states["A_csf"] / ind["V_csf"]
    if name == "csf_mg_per_l":
        return states["A_lum"] / ind["V_lum"] + states["A_csf"] / ind["V_csf"]
    if name == "occupancy":
        return occupancy(states["A_csf"], ind)
    if name == "receptor_density":
        return 1.0 - states["receptor_loss"]
    if name == "cns_depression":
        return cns_depression(states["C_cns"], ind)
    adaptation = states["adaptation_days"] + states["adaptation_months"]
    if name == "adaptation":
        return adaptation
    inh = inhibition(states["A_csf"], states["receptor_loss"], ind)
    if name == "inhibition":
        return inh
    i0 = baseline_inhibition(ind)
    if name == "effect":
        return (inh - i0) - adaptation
    if name == "excitability":
        return (1.0 - inh + adaptation) / (1.0 - i0)
    raise KeyError(name)


#: Readout names, units and meanings, in output-file order (the one list).
READOUT_INFO = {
    "plasma_mg_per_l": ("mg/L", "plasma concentration C_p"),
    "csf_mg_per_l": ("mg/L", "lumbar CSF concentration C_lum + C_csf"),
    "occupancy": ("1", "receptor occupancy by baclofen"),
    "receptor_density": ("1", "functional GABA-B receptor density R (baseline 1)"),
    "adaptation": ("1", "homeostatic counter-adaptation M + M2"),
    "inhibition": ("1", "fractional inhibition of motor output I"),
    "effect": ("1", "net inhibition above baseline (I - I0) - M - M2; < 0 is rebound"),
    "excitability": ("1", "(1 - I + M + M2) / (1 - I0): 1 baseline, < 1 relief, > 1 rebound"),
    "cns_depression": ("1", "illustrative supraspinal depression C_cns^n / (C_cns^n + EC50^n)"),
}
READOUTS = tuple(READOUT_INFO)

#: Readouts for the API and the figure only (the two terms of
#: ``csf_mg_per_l``, drawn separately): a list apart from :data:`READOUTS`,
#: so ``timecourse.csv`` keeps its columns.  Same units convention.
EXTRA_READOUT_INFO = {
    "lumbar_csf_mg_per_l": ("mg/L", "lumbar CSF concentration C_lum = A_lum / V_lum"),
    "biophase_mg_per_l": ("mg/L", "spinal biophase (CSF at the receptors) concentration C_csf = A_csf / V_csf"),
}
EXTRA_READOUTS = tuple(EXTRA_READOUT_INFO)
