"""The benchmark workloads, as data.

Each :class:`Workload` is one question a user asks before choosing a
simulator; :func:`build` turns it into a :class:`Problem` (pkpd objects plus
the plain event lists the peer engines read) for a number of subjects.

Every workload uses the same subjects: variability on with the spec's
omegas, a fixed seed, and the covariate distributions of the built-in
scenario ``pkpd/scenarios/standard-population.toml`` (when that file is
absent, the fallback below is used and the JSON says so).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pkpd.parameters import Parameters, default_parameters
from pkpd.population import Covariate, Population, sample_population
from pkpd.regimen import Dose, Infusion, Regimen

from .engines import spec_model

#: Readouts the timed runs return (what a population study plots: the PK and
#: the PD endpoint).  Accuracy runs always ask for every readout.
TIMED_OUTPUTS = ("plasma_mg_per_l", "excitability")
ALL_OUTPUTS = spec_model.READOUTS

SCENARIO_FILE = Path(__file__).resolve().parent.parent / "pkpd" / "scenarios" / "standard-population.toml"

#: Used only when the scenario file is absent (recorded in the results).
FALLBACK_SEED = 20261125
FALLBACK_WEIGHT = Covariate(mean=75.0, sd=15.0, min=40.0, max=150.0)
FALLBACK_CRCL = Covariate(mean=95.0, sd=25.0, min=30.0, max=150.0)



# Regimens as data: (route, amount_mg, at_h, every_h, count) and
# (route, rate_mg_per_day, start_h, stop_h).
STANDARD_DOSES = (
    ("oral_ir", 5.0, 0.0, 8.0, 9),
    ("oral_ir", 10.0, 72.0, 8.0, 9),
    ("oral_ir", 15.0, 144.0, 8.0, 9),
    ("oral_ir", 20.0, 216.0, 8.0, 36),  # to day 21 (last dose at 496 h), then abrupt stop
)
YEAR_DOSES = (("oral_ir", 20.0, 0.0, 8.0, 1095),)  # 0 .. 8752 h
INTRATHECAL_DOSES = (("intrathecal_bolus", 0.05, 0.0, None, 1),)  # 50 µg test bolus
INTRATHECAL_INFUSIONS = (("intrathecal_infusion", 0.4, 24.0, 336.0),)  # days 1-14, then stop


@dataclass(frozen=True)
class Workload:
    """One benchmark question.

    ``sizes`` are the numbers of subjects of the full run; ``quick_sizes``
    and ``quick_duration_h`` make the tiny version the tests run.
    """

    name: str
    question: str
    duration_h: float
    output_step_h: float
    doses: tuple = ()
    infusions: tuple = ()
    sizes: tuple = (1000,)
    quick_sizes: tuple = (1, 10)
    quick_duration_h: float = 96.0
    in_quick: bool = True

    def regimen(self) -> Regimen:
        """The workload's regimen as a :class:`pkpd.Regimen`."""
        return Regimen(
            tuple(Dose(r, a, at_h=t, every_h=e, count=c) for r, a, t, e, c in self.doses),
            tuple(Infusion(r, rate_mg_per_day=rate, start_h=start, stop_h=stop) for r, rate, start, stop in self.infusions),
        )


WORKLOADS = {
    w.name: w
    for w in (
        Workload(
            "standard",
            "The standard population problem (28-day titration, abrupt stop, outputs every 0.5 h): "
            "how does wall time grow with the number of subjects?",
            duration_h=672.0, output_step_h=0.5, doses=STANDARD_DOSES,
            sizes=(1, 100, 1000, 10000, 100000),
        ),
        Workload(
            "standard_daily",
            "The same problem with one output a day: the cost of the solver without the cost of outputs.",
            duration_h=672.0, output_step_h=24.0, doses=STANDARD_DOSES,
            sizes=(10000,), in_quick=False,
        ),
        Workload(
            "year",
            "A year of 20 mg every 8 h, daily outputs: long horizons (1095 doses) and tolerance.",
            duration_h=8760.0, output_step_h=24.0, doses=YEAR_DOSES,
            sizes=(1000,), in_quick=False,
        ),
        Workload(
            "intrathecal",
            "Intrathecal 50 µg bolus, 0.4 mg/day on days 1-14, observed to day 21: "
            "the stiffer CSF kinetics and infusion switches.",
            duration_h=504.0, output_step_h=0.5, doses=INTRATHECAL_DOSES,
            infusions=INTRATHECAL_INFUSIONS, sizes=(1000,), quick_duration_h=72.0,
        ),
    )
}


@dataclass(frozen=True)
class Subjects:
    """Who is simulated: seed and covariates, and where they came from.

    ``parameters`` are pkpd's typical values (for the pkpd engine),
    ``overrides`` the scenario's ``[parameters]`` by spec name (for the
    spec's own table, :func:`Problem.individual_parameters`).
    """

    seed: int
    weight_kg: object
    crcl_ml_min: object
    parameters: Parameters
    source: str
    overrides: dict


def _covariate(value):
    if isinstance(value, dict):
        return Covariate(mean=float(value["mean"]), sd=float(value["sd"]),
                         min=float(value["min"]), max=float(value["max"]))
    return float(value)


def scenario_subjects(path: Path = SCENARIO_FILE) -> Subjects:
    """Seed, covariates and parameter overrides of the standard population.

    Read through ``pkpd.scenario.load_scenario`` when it exists, otherwise
    straight from the TOML (the format of ``scenario-format.md``); the
    fallback constants when the file is absent.
    """
    if not path.exists():
        return Subjects(FALLBACK_SEED, FALLBACK_WEIGHT, FALLBACK_CRCL, default_parameters(),
                        f"fallback (no {path.name}): WT {FALLBACK_WEIGHT}, CrCl {FALLBACK_CRCL}", {})
    try:  # the library's own reader validates the file
        from pkpd.scenario import load_scenario

        load_scenario(path)
        how = "pkpd.scenario.load_scenario"
    except ImportError:
        how = "tomllib"
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    sub = data.get("subjects", {})
    note = ""
    if data.get("doses"):
        in_file = tuple((d["route"], float(d["amount_mg"]), float(d.get("at_h", 0.0)),
                         d.get("every_h"), d.get("count", 1)) for d in data["doses"])
        if in_file != tuple((r, a, t, e, c) for r, a, t, e, c in STANDARD_DOSES):
            note = "; its [[doses]] differ from the issue's standard regimen, which the benchmark uses"
    overrides = {k: float(v) for k, v in data.get("parameters", {}).items()}
    params = default_parameters().replace(**overrides) if overrides else default_parameters()
    return Subjects(
        int(sub.get("seed", 0)),
        _covariate(sub.get("weight_kg", 70.0)),
        _covariate(sub.get("crcl_ml_min", 100.0)),
        params,
        f"{path.name} (validated by {how}): seed {int(sub.get('seed', 0))}, "
        f"WT {sub.get('weight_kg', 70.0)}, CrCl {sub.get('crcl_ml_min', 100.0)}{note}",
        overrides,
    )


@dataclass(frozen=True)
class Problem:
    """One workload at one size: everything an engine needs.

    ``doses`` lists every dose as (route, time_h, amount_mg) before
    bioavailability and lag; ``infusions`` as (route, rate_mg_per_h,
    start_h, stop_h).  ``times_h`` is the output grid (T,).  (The peer
    engines read it as a :class:`spec_model.Events`.)  ``overrides`` are
    the scenario's parameter overrides by spec name.
    """

    workload: str
    regimen: Regimen
    duration_h: float
    output_step_h: float
    times_h: np.ndarray
    parameters: Parameters
    population: Population
    doses: tuple
    infusions: tuple
    source: str = ""
    outputs: tuple = TIMED_OUTPUTS
    overrides: dict = field(default_factory=dict)

    @property
    def n_subjects(self) -> int:
        return self.population.n

    def subset(self, k: int) -> "Problem":
        """The first ``k`` subjects (same draws as in the full population)."""
        return replace(self, population=self.population.subset(slice(0, k)))

    def individual_parameters(self) -> dict:
        """Per-subject values of :data:`spec_model.MODEL_PARAMETERS`, dict of (N,) arrays.

        What the peer engines and the reference solve: the spec's own table
        with the scenario's overrides, then the population's covariates and
        etas (``spec_model.individual_values``), independently of pkpd.model,
        so the comparison also checks pkpd's covariate and variability model.
        """
        typical = spec_model.typical_params(**self.overrides)
        typical["WT"], typical["CrCl"] = self.population.weight_kg, self.population.crcl_ml_min
        q = spec_model.individual_values(typical, self.population.eta)
        n = self.n_subjects
        return {k: np.broadcast_to(np.asarray(q[k], dtype=float), (n,)).copy()
                for k in spec_model.MODEL_PARAMETERS}


def output_grid(duration_h: float, step_h: float) -> np.ndarray:
    """``k * step`` while below ``duration - 1e-9``, then ``duration`` (scenario-format)."""
    n = int(np.floor((duration_h - 1e-9) / step_h)) + 1
    t = step_h * np.arange(n, dtype=float)
    t = t[t < duration_h - 1e-9]
    return np.append(t, duration_h)


def build(workload: str | Workload, n_subjects: int, *, quick: bool = False,
          outputs: tuple = TIMED_OUTPUTS, subjects: Subjects | None = None) -> Problem:
    """The :class:`Problem` for ``workload`` with ``n_subjects`` subjects."""
    w = WORKLOADS[workload] if isinstance(workload, str) else workload
    s = scenario_subjects() if subjects is None else subjects
    duration = w.quick_duration_h if quick else w.duration_h
    regimen = w.regimen()
    pop = sample_population(int(n_subjects), seed=s.seed, variability=True,
                            weight_kg=s.weight_kg, crcl_ml_min=s.crcl_ml_min)
    t, route_idx, amount = regimen.dose_events(duration)
    from pkpd.regimen import DOSE_ROUTES

    doses = tuple(sorted((DOSE_ROUTES[r], float(ti), float(a)) for ti, r, a in zip(t, route_idx, amount)))
    infusions = tuple((i.route, i.rate_mg_per_h, float(i.start_h), float(i.stop_h)) for i in regimen.infusions)
    return Problem(w.name, regimen, duration, w.output_step_h, output_grid(duration, w.output_step_h),
                   s.parameters, pop, doses, infusions, s.source, tuple(outputs), dict(s.overrides))
