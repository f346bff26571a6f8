"""Model parameters: typical values, units, meaning and sources in one table.

The table below is the model specification v2 (docs/model.md) transcribed once; nothing else in
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
    ParameterInfo("F_er", 0.70, "1", "oral ER bioavailability", "illustrative: release past the upper-gut absorption window is lost (Lal 2009); ER/IR exposure about 0.95", _FRACTION_OPEN),
    ParameterInfo("D_er", 5.5, "h", "ER release duration (absorption window)", "gastric retention 5.5 h (Gande & Rao 2011); illustrative", _POS),
    ParameterInfo("ka", 1.0, "1/h", "absorption rate", "fitted to Cmax/Tmax of single 10 and 50 mg doses", _NONNEG),
    ParameterInfo("t_lag", 0.0, "h", "absorption lag", "none reported", _NONNEG),
    ParameterInfo("CL_nr", 1.3, "L/h", "non-renal clearance", "about 15 % deaminated (label); total CL/F 11.5 L/h kept", _NONNEG),
    ParameterInfo("CL_r", 7.2, "L/h", "renal clearance at CrCl 100 mL/min", "65-80 % of a dose excreted unchanged / F 0.74 (Wuis 1989, 1990); dose cuts 1/3, 1/2, 2/3 at CrCl band middles (Vlavonou 2014)", _NONNEG),
    ParameterInfo("V_c", 21.3, "L", "central volume", "Vc/F 28.8 L (Kochak 1985) x F", _POS),
    ParameterInfo("Q", 9.5, "L/h", "inter-compartmental clearance", "derived from Kochak 1985 (alpha 1.29, beta 0.191 /h) x F", _NONNEG),
    ParameterInfo("V_p", 14.6, "L", "peripheral volume", "derived as Q", _POS),
    ParameterInfo("Kp", 0.12, "1", "biophase/plasma ratio at steady state (oral)", "CSF ~12 % of plasma after oral dosing (Knutsson 1974)", _NONNEG),
    ParameterInfo("CL_out", 0.030, "L/h", "clearance out of the biophase", "CSF clearance ~30 mL/h (intrathecal label)", _POS),
    ParameterInfo("V_csf", 0.065, "L", "biophase volume", "plasma-biophase equilibration half-life ~1.5 h", _POS),
    ParameterInfo("V_lum", 0.065, "L", "lumbar CSF volume", "with CL_lum: CSF half-life ~1.5 h after an intrathecal bolus (label)", _POS),
    ParameterInfo("CL_lum", 0.030, "L/h", "clearance out of the lumbar CSF (bulk flow)", "CSF clearance ~30 mL/h (label; 13-80 mL/h measured)", _POS),
    ParameterInfo("f_it", 0.04, "1", "fraction of intrathecal drug reaching the biophase", "fitted to the ~100x oral/intrathecal dose ratio (60 mg/day oral ~ 0.3-0.8 mg/day intrathecal)", _FRACTION),
    ParameterInfo("k_sp", 0.552, "1/h", "spinal transfer rate (t1/2 ~ 1.3 h)", "fitted so a 50 ug intrathecal bolus acts most at ~4 h (label); delayed-effect model of Heetla 2016", _POS),
    ParameterInfo("ke0_cns", 0.46, "1/h", "CNS effect-site equilibration rate", "illustrative, same 1.5 h half-life as the biophase", _NONNEG),
    ParameterInfo("EC50_cns", 0.7, "mg/L", "plasma level for half-maximal cns_depression", "coma at ~0.7 mg/L in renal failure (Brvar 2007); none at 10-20 mg oral (Schmitz 2017)", _POS),
    ParameterInfo("n_cns", 4.0, "1", "steepness of cns_depression", "illustrative: coma and seizures only after >= 200 mg ingestions (Leung 2006)", _POS),
    ParameterInfo("Kd", 0.26, "uM", "baclofen (racemate) affinity at GABA-B", "(-)-baclofen against [3H]GABA 0.13 uM (Bowery 1983), doubled for the racemate", _POS),
    ParameterInfo("g", 0.2, "1", "endogenous GABA tone, in units of its own Kd", "illustrative", _NONNEG),
    ParameterInfo("tau", 20.0, "1", "operational efficacy (receptor reserve)", "illustrative", _POS),
    ParameterInfo("k_int", 0.00646, "1/h", "agonist-driven receptor loss rate", "exact fit: R = 0.74 / 0.66 after 3 / 7 days at theta = 1 (Kroin 1993, rat intrathecal)", _NONNEG),
    ParameterInfo("k_rec", 0.01163, "1/h", "receptor recovery rate (t1/2 ~ 2.5 d)", "same fit as k_int (Kroin 1993)", _POS),
    ParameterInfo("k_M", 0.0144, "1/h", "counter-adaptation rate, days (t1/2 ~ 2 d)", "illustrative: withdrawal onset 12-72 h, hallucinations 18-31 h, resolution over days (case series)", _NONNEG),
    ParameterInfo("phi", 0.25, "1", "extent of the fast compensation", "illustrative", _FRACTION),
    ParameterInfo("k_M2", 0.000963, "1/h", "counter-adaptation rate, months (t1/2 30 d)", "illustrative: tolerance and intrathecal dose creep over 12-18 months (Akman 1993; Heetla 2009)", _NONNEG),
    ParameterInfo("phi2", 0.25, "1", "extent of the slow compensation", "illustrative", _FRACTION),
    ParameterInfo("WT", 70.0, "kg", "body weight (covariate)", "typical adult", _POS),
    ParameterInfo("CrCl", 100.0, "mL/min", "creatinine clearance (covariate)", "typical adult", _NONNEG),
)

#: Parameter table keyed by model-spec name, in the spec's order.
PARAMETER_INFO: Mapping[str, ParameterInfo] = {p.name: p for p in _TABLE}

_DEFAULT = {p.name: p.default for p in _TABLE}

#: Names of the covariates (set through ``[subjects]`` in scenario files).
COVARIATES = ("WT", "CrCl")
#: Their keyword in the API and in scenario files.
COVARIATE_KEYWORDS = {"WT": "weight_kg", "CrCl": "crcl_ml_min"}


@dataclass(frozen=True)
class Parameters:
    """Typical values of every model parameter (model-spec v2 names and units).

    Immutable; use :meth:`replace` for a changed copy (validated).  The
    covariates ``WT`` (kg) and ``CrCl`` (mL/min) are not here: they belong to
    the subjects (:class:`pkpd.Population`), so they live in one place.
    """

    def __init__(self, **values: float) -> None:  # noqa: D107 - documented above
        for name in values:
            check_name(name)
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, values.get(f.name, f.default))
        self.__post_init__()

    F_ir: float = _DEFAULT["F_ir"]
    F_er: float = _DEFAULT["F_er"]
    D_er: float = _DEFAULT["D_er"]
    ka: float = _DEFAULT["ka"]
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
    k_sp: float = _DEFAULT["k_sp"]
    ke0_cns: float = _DEFAULT["ke0_cns"]
    EC50_cns: float = _DEFAULT["EC50_cns"]
    n_cns: float = _DEFAULT["n_cns"]
    Kd: float = _DEFAULT["Kd"]
    g: float = _DEFAULT["g"]
    tau: float = _DEFAULT["tau"]
    k_int: float = _DEFAULT["k_int"]
    k_rec: float = _DEFAULT["k_rec"]
    k_M: float = _DEFAULT["k_M"]
    phi: float = _DEFAULT["phi"]
    k_M2: float = _DEFAULT["k_M2"]
    phi2: float = _DEFAULT["phi2"]

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
        return {name: getattr(self, name) for name in _FIELD_NAMES}  # floats: dataclasses.asdict without its deep copy


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Parameters))

#: Parameters of earlier model versions, with what replaced them.
REMOVED = {
    "ka_er": "removed in model v2: extended release is a zero-order release into the gut "
    "over D_er (h) with bioavailability F_er; set D_er instead",
}


def check_name(name: str) -> None:
    """Raise :class:`ParameterError` unless ``name`` is a settable model parameter.

    Covariates (``WT``, ``CrCl``) are refused with a pointer to the population;
    parameters of earlier model versions with what replaced them.
    """
    if name in REMOVED:
        raise ParameterError(f"parameters.{name}: {REMOVED[name]}")
    if name in COVARIATES:
        keyword = COVARIATE_KEYWORDS[name]
        raise ParameterError(
            f"parameters.{name}: {name} is a covariate of the subjects; give it as {keyword} "
            f"to the population (pkpd.Population.typical({keyword}=...) or sample_population)"
        )
    if name not in PARAMETER_INFO:
        import difflib

        close = difflib.get_close_matches(name, PARAMETER_INFO, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ParameterError(f"parameters.{name}: unknown parameter{hint}")


def default_parameters() -> Parameters:
    """The spec's typical values: a 70 kg adult with CrCl 100 mL/min."""
    return Parameters()
