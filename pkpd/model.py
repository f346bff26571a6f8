"""The reference GABA-B model (model-spec v1): every equation in one place.

The model splits into two parts that the solver treats differently:

* a **linear part**, the drug amounts, with constant coefficients between
  events: ``dx/dt = A x + B u`` where ``u`` holds the two infusion rates.
  Its states (mg) are ``A_gut, A_er, A_c, A_p, A_csf, A_lum`` plus ``A_elim``,
  the cumulative amount eliminated from the body (for mass balance).
* a **slow part**, receptor loss ``L = 1 - R`` and adaptation ``M``, each
  linear in itself given the drug level: ``dy/dt = p - q y``.  Writing the
  receptor state as a loss keeps the drug-free solution exactly at baseline.

Units: h, mg, L, L/h, mg/L; receptor quantities are dimensionless.
Arrays carry subjects on the last axis inside the core.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .parameters import Parameters
from .population import Population
from .units import UM_PER_MG_PER_L

#: Linear (amount) states, mg, in solver order.
LINEAR_STATES = ("A_gut", "A_er", "A_c", "A_p", "A_csf", "A_lum", "A_elim")
#: Zero-order inputs, mg/h, in solver order.
INPUTS = ("iv_infusion", "intrathecal_infusion")
#: Slow states, dimensionless: receptor loss (1 - R) and adaptation M.
SLOW_STATES = ("receptor_loss", "adaptation")

GUT, ER, C, P, CSF, LUM, ELIM = range(len(LINEAR_STATES))
#: Linear states the readouts need.
OBSERVED_STATES = (C, CSF, LUM)

#: Where each dose route puts its amount, and which bioavailability applies.
DOSE_TARGETS = {
    "oral_ir": (GUT, "F_ir", True),  # (state, bioavailability or None, lagged)
    "oral_er": (ER, "F_er", True),
    "iv_bolus": (C, None, False),
    "intrathecal_bolus": (LUM, None, False),
}
#: The state each infusion route feeds.
INFUSION_TARGETS = {"iv_infusion": C, "intrathecal_infusion": LUM}

_VARIED = ("ka", "V_c", "Kd", "k_M", "k_int")  # log-normal etas besides CL


def individual_parameters(parameters: Parameters, population: Population) -> dict[str, np.ndarray]:
    """Per-subject parameter values after covariates and random effects.

    Returns every :class:`Parameters` field as an array of shape (n,), with
    ``WT`` and ``CrCl`` taken from the population, ``V_c``, ``V_p`` and ``Q``
    scaled for weight, ``ka``, ``V_c``, ``Kd``, ``k_M`` and ``k_int`` times
    ``exp(eta)``, and ``CL`` (L/h), the total clearance::

        CL = (CL_nr * (WT/70)**0.75 + CL_r * CrCl/100) * exp(eta_CL)
    """
    n = population.n
    ind = {k: np.full(n, v) for k, v in parameters.as_dict().items()}
    wt = np.asarray(population.weight_kg, float)
    crcl = np.asarray(population.crcl_ml_min, float)
    ind["WT"], ind["CrCl"] = wt.copy(), crcl.copy()
    size = wt / 70.0
    allometric = size**0.75
    ind["V_c"] = ind["V_c"] * size
    ind["V_p"] = ind["V_p"] * size
    ind["Q"] = ind["Q"] * allometric
    for name in _VARIED:
        ind[name] = ind[name] * np.exp(population.eta[name])
    ind["CL"] = (ind["CL_nr"] * allometric + ind["CL_r"] * crcl / 100.0) * np.exp(population.eta["CL"])
    return ind


def linear_system(ind: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rate matrix ``A`` (n_lin, n_lin, n) in 1/h and input matrix ``B`` (n_lin, 2, n).

    ``dx/dt = A x + B u`` with ``x`` the amounts of :data:`LINEAR_STATES` (mg)
    and ``u`` the infusion rates of :data:`INPUTS` (mg/h).
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
    A[ER, ER] = -ind["ka_er"]
    A[C, GUT] = ind["ka"]
    A[C, ER] = ind["ka_er"]
    A[C, C] = -(k10 + k12 + k_in)
    A[C, P] = k21
    A[C, CSF] = k_out
    A[C, LUM] = (1.0 - f_it) * k_lum
    A[P, C] = k12
    A[P, P] = -k21
    A[CSF, C] = k_in
    A[CSF, CSF] = -k_out
    A[CSF, LUM] = f_it * k_lum
    A[LUM, LUM] = -k_lum
    A[ELIM, C] = k10
    B[C, 0] = 1.0
    B[LUM, 1] = 1.0
    return A, B


def baseline_inhibition(ind: dict[str, np.ndarray]) -> np.ndarray:
    """I0 = s0 / (1 + s0) with s0 = tau * g / (1 + g): drug-free inhibition, shape (n,)."""
    s0 = ind["tau"] * (ind["g"] / (1.0 + ind["g"]))
    return s0 / (1.0 + s0)


def drug_in_kd_units(a_csf: np.ndarray, ind: dict[str, np.ndarray]) -> np.ndarray:
    """c = C_csf * (1000 / 213.66) / Kd: biophase drug in units of Kd, from A_csf (mg).

    Tiny negative amounts from round-off are clipped to zero first.
    """
    return np.maximum(a_csf, 0.0) * (UM_PER_MG_PER_L / (ind["V_csf"] * ind["Kd"]))


def occupancy(a_csf: np.ndarray, ind: dict[str, np.ndarray]) -> np.ndarray:
    """Receptor occupancy by baclofen, theta = c / (1 + c + g), from A_csf (mg)."""
    c = drug_in_kd_units(a_csf, ind)
    return c / (1.0 + c + ind["g"])


def inhibition(a_csf: np.ndarray, receptor_loss: np.ndarray, ind: dict[str, np.ndarray]) -> np.ndarray:
    """Fractional inhibition I = s / (1 + s), s = tau * R * (theta + theta_e)."""
    c = drug_in_kd_units(a_csf, ind)
    bound = (c + ind["g"]) / (1.0 + c + ind["g"])  # theta + theta_e
    s = ind["tau"] * (1.0 - receptor_loss) * bound
    return s / (1.0 + s)


def slow_coefficients(i: int, linear: np.ndarray, slow: np.ndarray, ind: dict[str, np.ndarray]):
    """Coefficients (p, q) of slow state ``i`` in ``dy_i/dt = p - q * y_i``.

    Parameters
    ----------
    i : int
        0 for receptor loss L = 1 - R, 1 for adaptation M.
    linear : ndarray, shape (n_lin, 3, n)
        Linear states at the evaluation points (only A_csf is read).
    slow : ndarray, shape (i, 3, n)
        Slow states 0..i-1 at the same points (the system is triangular).

    Returns ``p`` (3, n) and ``q`` (3, n), or ``q`` (n,) when constant.

    Equations (model-spec)::

        dR/dt = k_rec (1 - R) - k_int theta R   ->  dL/dt = k_int theta - (k_rec + k_int theta) L
        dM/dt = k_M (phi (I - I0) - M)
    """
    if i == 0:
        loss_rate = ind["k_int"] * occupancy(linear[CSF], ind)
        return loss_rate, ind["k_rec"] + loss_rate
    drive = inhibition(linear[CSF], slow[0], ind) - baseline_inhibition(ind)
    return (ind["k_M"] * ind["phi"]) * drive, ind["k_M"]


#: The states each readout is computed from.
READOUT_STATES = {
    "plasma_mg_per_l": ("A_c",),
    "csf_mg_per_l": ("A_lum", "A_csf"),
    "occupancy": ("A_csf",),
    "receptor_density": ("receptor_loss",),
    "adaptation": ("adaptation",),
    "inhibition": ("A_csf", "receptor_loss"),
    "effect": ("A_csf", "receptor_loss", "adaptation"),
    "excitability": ("A_csf", "receptor_loss", "adaptation"),
}


def readout(name: str, states: Mapping[str, np.ndarray], ind: Mapping[str, np.ndarray]) -> np.ndarray:
    """One readout of the spec from the states at output times.

    ``states`` maps state names (amounts A_c, A_csf, A_lum in mg;
    ``receptor_loss`` = 1 - R and ``adaptation`` = M, dimensionless) to
    arrays of any one shape; parameters broadcast against it.
    """
    if name == "plasma_mg_per_l":
        return states["A_c"] / ind["V_c"]
    if name == "csf_mg_per_l":
        return states["A_lum"] / ind["V_lum"] + states["A_csf"] / ind["V_csf"]
    if name == "occupancy":
        return occupancy(states["A_csf"], ind)
    if name == "receptor_density":
        return 1.0 - states["receptor_loss"]
    if name == "adaptation":
        return np.array(states["adaptation"], copy=True)
    inh = inhibition(states["A_csf"], states["receptor_loss"], ind)
    if name == "inhibition":
        return inh
    i0 = baseline_inhibition(ind)
    if name == "effect":
        return (inh - i0) - states["adaptation"]
    if name == "excitability":
        return (1.0 - inh + states["adaptation"]) / (1.0 - i0)
    raise KeyError(name)


#: Readout names, units and meanings, in output-file order.
READOUT_INFO = {
    "plasma_mg_per_l": ("mg/L", "plasma concentration C_p"),
    "csf_mg_per_l": ("mg/L", "lumbar CSF concentration C_lum + C_csf"),
    "occupancy": ("1", "receptor occupancy by baclofen"),
    "receptor_density": ("1", "functional GABA-B receptor density R (baseline 1)"),
    "adaptation": ("1", "homeostatic counter-adaptation M"),
    "inhibition": ("1", "fractional inhibition of motor output I"),
    "effect": ("1", "net inhibition above baseline (I - I0) - M; < 0 is rebound"),
    "excitability": ("1", "(1 - I + M) / (1 - I0): 1 baseline, < 1 relief, > 1 rebound"),
}
READOUTS = tuple(READOUT_INFO)
