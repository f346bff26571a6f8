"""An independent, high-accuracy solution of ``model-spec.md`` (v1) for tests.

This module is written from the specification alone.  It deliberately does
not import ``pkpd.model``, ``pkpd.solver`` or ``pkpd.simulate``: it is the
"same model written twice" against which the package is checked.  It only
borrows ``pkpd.parameters`` (the default values) and ``pkpd.regimen`` (the
expansion of repeated doses into dose times), both of which are plain data.

One subject at a time, with ``scipy.integrate.solve_ivp`` (DOP853 at
rtol 1e-13 by default, or Radau at rtol 1e-11 with an analytic Jacobian),
restarted at every event: each dose, each
infusion start or stop and each output time is a piece boundary, so boluses
are exact jumps and no output is interpolated.  Values are right-continuous:
a bolus at an output time is included in that output.

Units: h, mg, L, L/h, mg/L (as in the spec).
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np
from scipy.integrate import solve_ivp

from pkpd.parameters import default_parameters
from pkpd.regimen import Dose, Infusion, Regimen

#: Baclofen molar mass, g/mol (spec); mg/L -> µM factor is 1000 / MW.
MOLAR_MASS = 213.66

#: State order of this reference (independent of pkpd.model's layout).
STATES = ("A_gut", "A_er", "A_c", "A_p", "A_csf", "R", "M", "A_lum", "A_elim")
_GUT, _ER, _C, _P, _CSF, _R, _M, _LUM, _ELIM = range(len(STATES))

READOUTS = (
    "plasma_mg_per_l",
    "csf_mg_per_l",
    "occupancy",
    "receptor_density",
    "adaptation",
    "inhibition",
    "effect",
    "excitability",
)

#: Names that take a log-normal between-subject factor exp(eta) (spec).
ETA_NAMES = ("ka", "CL", "V_c", "Kd", "k_M", "k_int")

#: Default integrator.  DOP853 (8th order) is used by default because at
#: these tolerances it is ~20x faster than Radau on this mildly stiff model
#: (fastest rate ~1.5 /h, slowest ~0.01 /h); the self-check in
#: test_reference_solutions.py shows both agree with the shared CSVs to their
#: printed precision, so either is an independent reference.
METHOD = "DOP853"
RTOL = 1e-13
ATOL = 1e-15
#: Tolerances used when ``method="Radau"`` (as the shared CSVs were made).
RADAU_RTOL = 1e-11
RADAU_ATOL = 1e-13

def _reference_dir() -> Path | None:
    """Where the shared reference solutions are: $PKPD_REFERENCE_DIR, a copy in
    tests/data/reference-solutions, or the shared workspace; None if absent."""
    candidates = [os.environ.get("PKPD_REFERENCE_DIR"),
                  Path(__file__).parent / "data" / "reference-solutions",
                  "/work/shared/reference-solutions"]
    for c in candidates:
        if c and Path(c).is_dir() and any(Path(c).glob("*.toml")):
            return Path(c)
    return None


REFERENCE_DIR = _reference_dir()


def typical_params(**overrides: float) -> dict[str, float]:
    """Spec defaults (plus WT, CrCl) as a plain dict, with overrides."""
    p = dict(default_parameters().as_dict())
    for k, v in overrides.items():
        if k not in p:
            raise KeyError(k)
        p[k] = float(v)
    return p


def individual_values(params: Mapping[str, float], eta: Mapping[str, float] | None = None) -> dict[str, float]:
    """What the equations use for one subject, written from the spec.

    CL = CL_nr (WT/70)^0.75 + CL_r CrCl/100; V_c, V_p scale with WT/70; Q with
    (WT/70)^0.75; then log-normal factors exp(eta) on ka, CL (both terms,
    after the covariates), V_c (not V_p), Kd, k_M and k_int.
    """
    p = {k: float(v) for k, v in params.items()}
    eta = dict(eta or {})
    unknown = set(eta) - set(ETA_NAMES)
    if unknown:
        raise KeyError(f"no variability on {sorted(unknown)}")
    w = p["WT"] / 70.0
    out = dict(p)
    out["CL"] = (p["CL_nr"] * w**0.75 + p["CL_r"] * p["CrCl"] / 100.0) * math.exp(eta.get("CL", 0.0))
    out["V_c"] = p["V_c"] * w * math.exp(eta.get("V_c", 0.0))
    out["V_p"] = p["V_p"] * w
    out["Q"] = p["Q"] * w**0.75
    for name in ("ka", "Kd", "k_M", "k_int"):
        out[name] = p[name] * math.exp(eta.get(name, 0.0))
    return out


class _Model:
    """Right-hand side and Jacobian of the spec's equations (one subject)."""

    def __init__(self, q: Mapping[str, float]):
        self.q = q
        V_c, V_p, V_csf, V_lum = q["V_c"], q["V_p"], q["V_csf"], q["V_lum"]
        CL, Q, CL_out, CL_lum, f_it = q["CL"], q["Q"], q["CL_out"], q["CL_lum"], q["f_it"]
        CL_in = q["Kp"] * CL_out
        # The PK part is linear: dA/dt = L @ A + input.
        L = np.zeros((len(STATES), len(STATES)))
        L[_GUT, _GUT] = -q["ka"]
        L[_ER, _ER] = -q["ka_er"]
        L[_C, _GUT] = q["ka"]
        L[_C, _ER] = q["ka_er"]
        L[_C, _C] = -(CL + Q + CL_in) / V_c
        L[_C, _P] = Q / V_p
        L[_C, _CSF] = CL_out / V_csf
        L[_C, _LUM] = (1.0 - f_it) * CL_lum / V_lum
        L[_P, _C] = Q / V_c
        L[_P, _P] = -Q / V_p
        L[_CSF, _C] = CL_in / V_c
        L[_CSF, _CSF] = -CL_out / V_csf
        L[_CSF, _LUM] = f_it * CL_lum / V_lum
        L[_LUM, _LUM] = -CL_lum / V_lum
        L[_ELIM, _C] = CL / V_c
        self.L = L
        self.to_kd = (1000.0 / MOLAR_MASS) / q["Kd"] / V_csf  # A_csf -> c
        g, tau = q["g"], q["tau"]
        s0 = tau * g / (1.0 + g)
        self.I0 = s0 / (1.0 + s0)
        self.r_iv = 0.0
        self.r_it = 0.0

    def _pd(self, A_csf, R):
        q = self.q
        g, tau = q["g"], q["tau"]
        c = A_csf * self.to_kd
        den = 1.0 + c + g
        theta = c / den
        theta_e = g / den
        s = tau * R * (theta + theta_e)
        I = s / (1.0 + s)
        return c, den, theta, s, I

    def rhs(self, t, y):
        q = self.q
        dy = self.L @ y
        dy[_C] += self.r_iv
        dy[_LUM] += self.r_it
        R, M = y[_R], y[_M]
        _, _, theta, _, I = self._pd(y[_CSF], R)
        dy[_R] = q["k_rec"] * (1.0 - R) - q["k_int"] * theta * R
        dy[_M] = q["k_M"] * (q["phi"] * (I - self.I0) - M)
        return dy

    def jac(self, t, y):
        q = self.q
        g, tau = q["g"], q["tau"]
        J = self.L.copy()
        R = y[_R]
        c, den, theta, s, I = self._pd(y[_CSF], R)
        dtheta_dc = (1.0 + g) / den**2
        dfrac_dc = 1.0 / den**2  # d/dc of (c + g) / (1 + c + g)
        dI_ds = 1.0 / (1.0 + s) ** 2
        J[_R, _CSF] = -q["k_int"] * R * dtheta_dc * self.to_kd
        J[_R, _R] = -q["k_rec"] - q["k_int"] * theta
        J[_M, _CSF] = q["k_M"] * q["phi"] * dI_ds * tau * R * dfrac_dc * self.to_kd
        J[_M, _R] = q["k_M"] * q["phi"] * dI_ds * tau * (c + g) / den
        J[_M, _M] = -q["k_M"]
        return J

    def readouts(self, Y: np.ndarray) -> dict[str, np.ndarray]:
        """Readouts from states, Y of shape (n_states, T)."""
        q = self.q
        C_p = Y[_C] / q["V_c"]
        C_csf = Y[_CSF] / q["V_csf"]
        C_lum = Y[_LUM] / q["V_lum"]
        R, M = Y[_R], Y[_M]
        _, _, theta, _, I = self._pd(Y[_CSF], R)
        return {
            "plasma_mg_per_l": C_p,
            "csf_mg_per_l": C_lum + C_csf,
            "occupancy": theta,
            "receptor_density": R,
            "adaptation": M,
            "inhibition": I,
            "effect": (I - self.I0) - M,
            "excitability": (1.0 - I + M) / (1.0 - self.I0),
        }


def _events(regimen: Regimen, q: Mapping[str, float], duration_h: float):
    """Bolus events (time, state index, amount entering) and infusion pieces."""
    boluses: list[tuple[float, int, float]] = []
    for d in regimen.doses:
        for t in d.times_h(duration_h):
            t = float(t)
            if d.route == "oral_ir":
                boluses.append((t + q["t_lag"], _GUT, q["F_ir"] * d.amount_mg))
            elif d.route == "oral_er":
                boluses.append((t + q["t_lag"], _ER, q["F_er"] * d.amount_mg))
            elif d.route == "iv_bolus":
                boluses.append((t, _C, float(d.amount_mg)))
            elif d.route == "intrathecal_bolus":
                boluses.append((t, _LUM, float(d.amount_mg)))
            else:  # pragma: no cover
                raise ValueError(d.route)
    boluses = [b for b in boluses if b[0] <= duration_h]
    infusions = [(i.route, float(i.start_h), float(i.stop_h), i.rate_mg_per_day / 24.0) for i in regimen.infusions]
    return boluses, infusions


def _rates(infusions, t_mid: float) -> tuple[float, float]:
    r_iv = r_it = 0.0
    for route, start, stop, rate in infusions:
        if start <= t_mid < stop:
            if route == "iv_infusion":
                r_iv += rate
            else:
                r_it += rate
    return r_iv, r_it


def output_grid(duration_h: float, output_step_h: float) -> np.ndarray:
    """The scenario-format grid: k*step while < duration - 1e-9, then duration."""
    k = np.arange(int(math.ceil(duration_h / output_step_h)) + 2, dtype=float)
    t = k * output_step_h
    t = t[t < duration_h - 1e-9]
    return np.append(t, float(duration_h))


def reference_solution(
    regimen: Regimen,
    params: Mapping[str, float],
    duration_h: float,
    times_h,
    *,
    eta: Mapping[str, float] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    method: str = METHOD,
) -> dict[str, np.ndarray]:
    """Solve the spec's model for one subject.

    Parameters
    ----------
    regimen : Regimen
        What the subject receives.
    params : mapping
        Typical values by model-spec name, including ``WT`` (kg) and
        ``CrCl`` (mL/min); covariate scaling is applied here.
    duration_h : float
        End of the run, h; doses (after lag) later than this are ignored.
    times_h : array_like, shape (T,)
        Sorted output times in [0, duration_h], h.
    eta : mapping, optional
        Between-subject log-normal deviations on ka, CL, V_c, Kd, k_M, k_int.
    rtol, atol : float, optional
        Tolerances (default: RTOL/ATOL, or RADAU_RTOL/RADAU_ATOL for Radau).
    method : str
        ``"DOP853"`` (default) or ``"Radau"`` (with analytic Jacobian).

    Returns
    -------
    dict
        ``time_h`` (T,); every readout of :data:`READOUTS` (T,); every state of
        :data:`STATES` (T,) in mg (R, M dimensionless), ``A_elim`` being the
        cumulative amount eliminated by CL; ``A_in`` (T,), the cumulative
        amount that has entered the body (bioavailable oral doses, boluses,
        infusions); ``params``, the individual values used.
    """
    times = np.asarray(times_h, dtype=float)
    if times.ndim != 1 or np.any(np.diff(times) < 0) or times[0] < 0 or times[-1] > duration_h:
        raise ValueError("times_h must be sorted and within [0, duration_h]")
    if rtol is None:
        rtol = RADAU_RTOL if method == "Radau" else RTOL
    if atol is None:
        atol = RADAU_ATOL if method == "Radau" else ATOL
    q = individual_values(params, eta)
    model = _Model(q)
    boluses, infusions = _events(regimen, q, duration_h)

    # Piece boundaries: events and output times (so nothing is interpolated).
    bounds = {0.0, float(duration_h)}
    bounds.update(t for t, _, _ in boluses)
    for _, start, stop, _ in infusions:
        bounds.update(x for x in (start, stop) if x <= duration_h)
    bounds.update(times.tolist())
    grid = np.array(sorted(bounds))

    by_time: dict[float, list[tuple[int, float]]] = {}
    for t, idx, amt in boluses:
        by_time.setdefault(t, []).append((idx, amt))

    y = np.zeros(len(STATES))
    y[_R] = 1.0
    a_in = 0.0
    snap: dict[float, tuple[np.ndarray, float]] = {}
    for k, t in enumerate(grid):
        if k > 0:
            t0 = grid[k - 1]
            model.r_iv, model.r_it = _rates(infusions, 0.5 * (t0 + t))
            extra = {"jac": model.jac} if method in ("Radau", "BDF", "LSODA") else {}
            sol = solve_ivp(
                model.rhs, (t0, t), y, method=method, rtol=rtol, atol=atol,
                first_step=min(1e-3, t - t0), **extra,
            )
            if not sol.success:  # pragma: no cover
                raise RuntimeError(sol.message)
            y = sol.y[:, -1].copy()
            a_in += (model.r_iv + model.r_it) * (t - t0)
        for idx, amt in by_time.get(float(t), ()):
            y[idx] += amt
            a_in += amt
        snap[float(t)] = (y.copy(), a_in)

    Y = np.stack([snap[float(t)][0] for t in times], axis=1)
    out: dict[str, np.ndarray] = {"time_h": times.copy()}
    out.update(model.readouts(Y))
    for i, name in enumerate(STATES):
        out[name] = Y[i]
    out["A_in"] = np.array([snap[float(t)][1] for t in times])
    out["params"] = q
    return out


# --------------------------------------------------------------------------
# Shared reference-solution scenarios (TOML + CSV) for the self-check


@dataclass(frozen=True)
class ReferenceScenario:
    name: str
    regimen: Regimen
    params: dict
    overrides: dict
    weight_kg: float
    crcl_ml_min: float
    duration_h: float
    output_step_h: float
    csv_path: Path

    @property
    def times_h(self) -> np.ndarray:
        return output_grid(self.duration_h, self.output_step_h)

    def load_csv(self) -> dict[str, np.ndarray]:
        data = np.genfromtxt(self.csv_path, delimiter=",", names=True)
        return {name: np.asarray(data[name], dtype=float) for name in data.dtype.names}


def read_reference_toml(path: str | Path) -> ReferenceScenario:
    """Read one of the shared reference TOML files (only the keys they use)."""
    path = Path(path)
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    doses = tuple(
        Dose(d["route"], float(d["amount_mg"]), at_h=float(d.get("at_h", 0.0)),
             every_h=d.get("every_h"), count=d.get("count"))
        for d in doc.get("doses", [])
    )
    infusions = tuple(
        Infusion(i["route"], float(i["rate_mg_per_day"]), float(i["start_h"]), float(i["stop_h"]))
        for i in doc.get("infusions", [])
    )
    subjects = doc.get("subjects", {})
    wt = float(subjects.get("weight_kg", 70.0))
    crcl = float(subjects.get("crcl_ml_min", 100.0))
    overrides = {k: float(v) for k, v in doc.get("parameters", {}).items()}
    params = typical_params(**overrides, WT=wt, CrCl=crcl)
    return ReferenceScenario(
        name=doc["name"],
        regimen=Regimen(doses, infusions),
        params=params,
        overrides=overrides,
        weight_kg=wt,
        crcl_ml_min=crcl,
        duration_h=float(doc["duration_h"]),
        output_step_h=float(doc.get("output_step_h", 0.5)),
        csv_path=path.with_suffix(".csv"),
    )


def reference_scenarios() -> list[ReferenceScenario]:
    """The shared scenarios (empty list if the directory is not available)."""
    if REFERENCE_DIR is None:
        return []
    return [read_reference_toml(p) for p in sorted(REFERENCE_DIR.glob("*.toml"))]


@lru_cache(maxsize=64)
def _cached(regimen, params_items, duration_h, times, eta_items):
    return reference_solution(regimen, dict(params_items), duration_h, np.array(times), eta=dict(eta_items))


def cached_reference_solution(regimen: Regimen, params: Mapping[str, float], duration_h: float, times_h,
                              *, eta: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """:func:`reference_solution` with memoisation (several test files share runs).

    The returned arrays must not be modified by the caller.
    """
    return _cached(regimen, tuple(sorted(params.items())), float(duration_h),
                   tuple(float(t) for t in np.asarray(times_h, float)), tuple(sorted((eta or {}).items())))
