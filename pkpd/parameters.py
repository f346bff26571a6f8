"""Model parameters: typical values, units, meaning and sources in one table.

The table below is ``model-spec.md`` (v1) transcribed once; nothing else in
pkpd holds a default.  Rows marked *illustrative* are teaching values chosen
to give realistic time courses, not estimates from patient data.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Mapping

from .errors import ParameterError


@dataclass(frozen=True)
class ParameterInfo:
    """One row of the parameter table."""

    name: str
    default: float
    unit: str
    meaning: str
    basis: str
    #: allowed range as (low, high, low_inclusive, high_inclusive)
    bounds: tuple[float, float, bool, bool]

    def rule(self) -> str:
        """The allowed range in words, e.g. ``'> 0'`` or ``'in (0, 1]'``."""
        lo, hi, lo_in, hi_in = self.bounds
        if hi == math.inf:
            return (">= " if lo_in else "> ") + _fmt(lo)
        return f"in {'[' if lo_in else '('}{_fmt(lo)}, {_fmt(hi)}{']' if hi_in else ')'}"

    def check(self, value: float) -> None:
        """Raise :class:`ParameterError` unless ``value`` is finite and in range."""
        lo, hi, lo_in, hi_in = self.bounds
        ok = math.isfinite(value) and (value >= lo if lo_in else value > lo) and (
            value <= hi if hi_in else value < hi
        )
        if not ok:
            raise ParameterError(
                f"parameters.{self.name}: must be finite and {self.rule()}; got {value!r}"
            )


def _fmt(x: float) -> str:
    return f"{x:g}"


_POS = (0.0, math.inf, False, False)  # > 0
_NONNEG = (0.0, math.inf, True, False)  # >= 0
_FRACTION_OPEN = (0.0, 1.0, False, True)  # (0, 1]
_FRACTION = (0.0, 1.0, True, True)  # [0, 1]

_TABLE = (
    ParameterInfo("F_ir", 0.74, "1", "oral IR bioavailability", "Agarwal 2015 (oral vs IV, n=12)", _FRACTION_OPEN),
    ParameterInfo("F_er", 0.60, "1", "oral ER bioavailability", "illustrative (narrow absorption window)", _FRACTION_OPEN),
    ParameterInfo("ka", 1.0, "1/h", "IR absorption rate", "fitted to Cmax/Tmax of single 10 and 50 mg doses", _NONNEG),
    ParameterInfo("ka_er", 0.20, "1/h", "ER absorption rate", "illustrative", _NONNEG),
    ParameterInfo("t_lag", 0.0, "h", "absorption lag", "none reported", _NONNEG),
    ParameterInfo("CL_nr", 2.3, "L/h", "non-renal clearance", "CL/F 11.5 L/h x F (8.5 L/h) minus the renal part", _NONNEG),
    ParameterInfo("CL_r", 6.2, "L/h", "renal clearance at CrCl 100 mL/min", "renal clearance ~ creatinine clearance (Kochak 1985; Wuis 1989)", _NONNEG),
    ParameterInfo("V_c", 21.3, "L", "central volume", "Vc/F 28.8 L (Kochak 1985) x F", _POS),
    ParameterInfo("Q", 9.5, "L/h", "inter-compartmental clearance", "derived from Kochak 1985 (alpha 1.29, beta 0.191 /h) x F", _NONNEG),
    ParameterInfo("V_p", 14.6, "L", "peripheral volume", "derived as Q", _POS),
    ParameterInfo("Kp", 0.12, "1", "biophase/plasma ratio at steady state (oral)", "CSF ~12 % of plasma after oral dosing (Knutsson 1974)", _NONNEG),
    ParameterInfo("CL_out", 0.030, "L/h", "clearance out of the biophase", "CSF clearance ~30 mL/h (intrathecal label)", _POS),
    ParameterInfo("V_csf", 0.065, "L", "biophase volume", "plasma-biophase equilibration half-life ~1.5 h", _POS),
    ParameterInfo("V_lum", 0.065, "L", "lumbar CSF volume", "with CL_lum: CSF half-life ~1.5 h after an intrathecal bolus (label)", _POS),
    ParameterInfo("CL_lum", 0.030, "L/h", "clearance out of the lumbar CSF (bulk flow)", "CSF clearance ~30 mL/h (label; 13-80 mL/h measured)", _POS),
    ParameterInfo("f_it", 0.04, "1", "fraction of intrathecal drug reaching the biophase", "fitted to the ~100x oral/intrathecal dose ratio", _FRACTION),
    ParameterInfo("Kd", 0.26, "uM", "baclofen (racemate) affinity at GABA-B", "(-)-baclofen 0.13 uM (Bowery 1983), doubled for the racemate", _POS),
    ParameterInfo("g", 0.2, "1", "endogenous GABA tone, in units of its own Kd", "illustrative", _NONNEG),
    ParameterInfo("tau", 20.0, "1", "operational efficacy (receptor reserve)", "illustrative", _POS),
    ParameterInfo("k_int", 0.00675, "1/h", "agonist-driven receptor loss rate", "receptor binding 74 % / 66 % of control after 3 / 7 days (Kroin 1993, rat)", _NONNEG),
    ParameterInfo("k_rec", 0.0117, "1/h", "receptor recovery rate (t1/2 ~ 2.5 d)", "same fit as k_int (Kroin 1993)", _POS),
    ParameterInfo("k_M", 0.0144, "1/h", "counter-adaptation rate (t1/2 ~ 2 d)", "illustrative: withdrawal onset 12-72 h, resolution over days (case series)", _NONNEG),
    ParameterInfo("phi", 0.4, "1", "extent of homeostatic compensation", "illustrative", _FRACTION),
    ParameterInfo("WT", 70.0, "kg", "body weight (covariate)", "typical adult", _POS),
    ParameterInfo("CrCl", 100.0, "mL/min", "creatinine clearance (covariate)", "typical adult", _NONNEG),
)

#: Parameter table keyed by model-spec name, in the spec's order.
PARAMETER_INFO: Mapping[str, ParameterInfo] = {p.name: p for p in _TABLE}

_DEFAULT = {p.name: p.default for p in _TABLE}

#: Names of the covariates (set through ``[subjects]`` in scenario files).
COVARIATES = ("WT", "CrCl")


@dataclass(frozen=True)
class Parameters:
    """Typical values of every model parameter (model-spec v1 names and units).

    Immutable; use :meth:`replace` for a changed copy (validated).  ``WT``
    (kg) and ``CrCl`` (mL/min) are the covariates of the typical subject.
    """

    F_ir: float = _DEFAULT["F_ir"]
    F_er: float = _DEFAULT["F_er"]
    ka: float = _DEFAULT["ka"]
    ka_er: float = _DEFAULT["ka_er"]
    t_lag: float = _DEFAULT["t_lag"]
    CL_nr: float = _DEFAULT["CL_nr"]
    CL_r: float = _DEFAULT["CL_r"]
    V_c: float = _DEFAULT["V_c"]
    Q: float = _DEFAULT["Q"]
    V_p: float = _DEFAULT["V_p"]
    Kp: float = _DEFAULT["Kp"]
    CL_out: float = _DEFAULT["CL_out"]
    V_csf: float = _DEFAULT["V_csf"]
    V_lum: float = _DEFAULT["V_lum"]
    CL_lum: float = _DEFAULT["CL_lum"]
    f_it: float = _DEFAULT["f_it"]
    Kd: float = _DEFAULT["Kd"]
    g: float = _DEFAULT["g"]
    tau: float = _DEFAULT["tau"]
    k_int: float = _DEFAULT["k_int"]
    k_rec: float = _DEFAULT["k_rec"]
    k_M: float = _DEFAULT["k_M"]
    phi: float = _DEFAULT["phi"]
    WT: float = _DEFAULT["WT"]
    CrCl: float = _DEFAULT["CrCl"]

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParameterError(
                    f"parameters.{f.name}: must be a number; got {value!r}"
                )
            PARAMETER_INFO[f.name].check(float(value))
            object.__setattr__(self, f.name, float(value))

    def replace(self, **changes: float) -> "Parameters":
        """A copy with some values changed; unknown names raise ParameterError."""
        for name in changes:
            check_name(name)
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, float]:
        """All values as a plain ``{name: value}`` dict in spec order."""
        return dataclasses.asdict(self)


def check_name(name: str) -> None:
    """Raise :class:`ParameterError` if ``name`` is not a model parameter."""
    if name not in PARAMETER_INFO:
        import difflib

        close = difflib.get_close_matches(name, PARAMETER_INFO, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ParameterError(f"parameters.{name}: unknown parameter{hint}")


def default_parameters() -> Parameters:
    """The spec's typical values: a 70 kg adult with CrCl 100 mL/min."""
    return Parameters()
