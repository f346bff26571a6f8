"""The independent solution of ``model-spec.md`` (v2) as the tests use it.

A thin layer over the one transcription of the spec,
``benchmarks/engines/spec_model.py`` (parameters, equations, readouts,
events), and its high-accuracy solver ``benchmarks/engines/reference.py``.
Neither imports ``pkpd.model``, ``pkpd.solver``, ``pkpd.simulate`` or
``pkpd.parameters``: this is the "same model written twice" against which
the package is checked.  This layer only borrows ``pkpd.regimen`` (plain
data: the expansion of repeated doses into dose times) and reads the shared
reference scenarios (TOML + CSV).

Units: h, mg, L, L/h, mg/L (as in the spec).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np

from benchmarks.engines import reference as _solver
from benchmarks.engines import spec_model as sm
from benchmarks.engines.spec_model import (  # noqa: F401  (re-exported for the tests)
    AMOUNT_STATES,
    ETA_NAMES,
    MOLAR_MASS,
    PARAMETER_TABLE,
    READOUTS,
    STATES,
    individual_values,
    typical_params,
)
from pkpd.regimen import DOSE_ROUTES, Dose, Infusion, Regimen

METHOD = _solver.METHOD


def _reference_dir() -> Path | None:
    """Where the shared reference solutions are: $PKPD_REFERENCE_DIR, or the
    copy in tests/data/reference-solutions; None if absent."""
    candidates = [os.environ.get("PKPD_REFERENCE_DIR"), Path(__file__).parent / "data" / "reference-solutions"]
    for c in candidates:
        if c and Path(c).is_dir() and any(Path(c).glob("*.toml")):
            return Path(c)
    return None


REFERENCE_DIR = _reference_dir()


def output_grid(duration_h: float, output_step_h: float) -> np.ndarray:
    """The scenario-format grid, h: k*step while < duration - 1e-9, then duration."""
    k = np.arange(int(np.ceil(duration_h / output_step_h)) + 2, dtype=float)
    t = k * output_step_h
    t = t[t < duration_h - 1e-9]
    return np.append(t, float(duration_h))


def events(regimen: Regimen, duration_h: float, times_h) -> sm.Events:
    """A :class:`pkpd.regimen.Regimen` as the spec model's plain event lists."""
    t, route, amount = regimen.dose_events(duration_h)
    doses = tuple((DOSE_ROUTES[r], float(ti), float(a)) for ti, r, a in zip(t, route, amount))
    infusions = tuple((i.route, float(i.rate_mg_per_h), float(i.start_h), float(i.stop_h))
                      for i in regimen.infusions)
    return sm.Events(doses, infusions, float(duration_h), np.asarray(times_h, dtype=float))


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
) -> dict:
    """Solve the spec's model for one subject.

    Parameters
    ----------
    regimen : Regimen
        What the subject receives.
    params : mapping
        Typical values by model-spec name, including ``WT`` (kg) and
        ``CrCl`` (mL/min) (see :func:`typical_params`); covariate scaling is
        applied here.
    duration_h : float
        End of the run, h; doses (after lag) later than this are ignored.
    times_h : array_like, shape (T,)
        Sorted output times in [0, duration_h], h.
    eta : mapping, optional
        Log-normal deviations by parameter name (``CL`` after covariates).
    rtol, atol : float, optional
        Tolerances (defaults: the solver's for ``method``).
    method : str
        ``"DOP853"`` (default) or ``"Radau"`` (analytic Jacobian).

    Returns
    -------
    dict
        ``time_h`` (T,); every readout of :data:`READOUTS` (T,); every state
        of :data:`STATES` (T,) (amounts mg, ``C_cns`` mg/L, R, M, M2
        dimensionless); ``A_elim`` (T,), mg eliminated by CL; ``A_in`` (T,),
        mg that has entered the body; ``params``, the individual values.
    """
    times = np.asarray(times_h, dtype=float)
    if times.ndim != 1 or np.any(np.diff(times) < 0) or times[0] < 0 or times[-1] > duration_h:
        raise ValueError("times_h must be sorted and within [0, duration_h]")
    q = individual_values(params, eta)
    ev = events(regimen, duration_h, times)
    Y = _solver.solve_states(ev, q, method=method, rtol=rtol, atol=atol)
    out: dict = {"time_h": times.copy()}
    out.update(sm.readouts(Y[: sm.N_STATES], q))
    for i, name in enumerate(STATES):
        out[name] = Y[i]
    out["A_elim"] = Y[sm.N_STATES]
    out["A_in"] = _solver.cumulative_input(ev, q)
    out["params"] = q
    return out


# --------------------------------------------------------------------------
# Shared reference-solution scenarios (TOML + CSV) for the self-check


@dataclass(frozen=True)
class ReferenceScenario:
    """One shared reference scenario: its regimen, parameters and CSV."""

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


def _infusion(block: dict) -> Infusion:
    """An ``[[infusions]]`` block; the rate in mg/day or mg/h (exactly one)."""
    given = [k for k in ("rate_mg_per_day", "rate_mg_per_h") if k in block]
    if len(given) != 1:
        raise ValueError(f"an infusion needs exactly one of rate_mg_per_day, rate_mg_per_h; got {given}")
    per_day = float(block["rate_mg_per_day"]) if "rate_mg_per_day" in block else 24.0 * float(block["rate_mg_per_h"])
    return Infusion(block["route"], rate_mg_per_day=per_day, start_h=float(block["start_h"]), stop_h=float(block["stop_h"]))


def _dose(block: dict) -> Dose:
    """A ``[[doses]]`` block (steady_state is not supported by this reader)."""
    if block.get("steady_state", False):
        raise ValueError("steady_state dose blocks are not supported by the reference reader")
    return Dose(block["route"], float(block["amount_mg"]), at_h=float(block.get("at_h", 0.0)),
                every_h=block.get("every_h"), count=block.get("count"))


def read_reference_toml(path: str | Path) -> ReferenceScenario:
    """Read one shared reference scenario (top-level doses and infusions, one subject)."""
    path = Path(path)
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    subjects = doc.get("subjects", {})
    wt = float(subjects.get("weight_kg", 70.0))
    crcl = float(subjects.get("crcl_ml_min", 100.0))
    overrides = {k: float(v) for k, v in doc.get("parameters", {}).items()}
    return ReferenceScenario(
        name=doc["name"],
        regimen=Regimen(tuple(_dose(d) for d in doc.get("doses", [])),
                        tuple(_infusion(i) for i in doc.get("infusions", []))),
        params=typical_params(**overrides, WT=wt, CrCl=crcl),
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
                              *, eta: Mapping[str, float] | None = None) -> dict:
    """:func:`reference_solution` with memoisation (several test files share runs).

    The returned arrays must not be modified by the caller.
    """
    return _cached(regimen, tuple(sorted(params.items())), float(duration_h),
                   tuple(float(t) for t in np.asarray(times_h, float)), tuple(sorted((eta or {}).items())))
