"""Seeded sampling of subjects: between-subject variability and covariates.

Random numbers come from a counter-based generator: the draw for (seed,
stream, subject, attempt) is a SplitMix64 hash of those integers mapped to
(0, 1) and then through the normal quantile function.  So subject i's values
depend only on the seed and i (``n=10`` gives the first 10 subjects of
``n=1000``), whatever the chunking, and integer arithmetic makes them the
same on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
from scipy.special import ndtri

from .errors import ParameterError

#: Default between-subject standard deviations of log-parameters (model-spec).
DEFAULT_OMEGA: Mapping[str, float] = {
    "ka": 0.4,
    "CL": 0.25,
    "V_c": 0.25,
    "Kd": 0.3,
    "k_M": 0.3,
    "k_int": 0.3,
}

# Fixed stream numbers: adding a new random quantity must never change the
# draws of existing ones.
_STREAMS = {"ka": 1, "CL": 2, "V_c": 3, "Kd": 4, "k_M": 5, "k_int": 6, "WT": 101, "CrCl": 102}
_MAX_ATTEMPTS = 10_000

_U64 = np.uint64


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wraps modulo 2**64)."""
    x = x + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def standard_normal(seed: int, stream: int, subjects: np.ndarray, attempt: int = 0) -> np.ndarray:
    """Standard normal draws, one per subject index, reproducible everywhere.

    Parameters
    ----------
    seed, stream, attempt : int
        Non-negative integers that select the draw.
    subjects : ndarray of int, shape (n,)
        Subject indices (0-based).
    """
    with np.errstate(over="ignore"):
        key = _splitmix64(np.array([seed], dtype=_U64))
        key = _splitmix64(key ^ _U64(stream))
        key = _splitmix64(key ^ _U64(attempt))
        bits = _splitmix64(key ^ np.asarray(subjects, dtype=_U64))
    u = ((bits >> _U64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)
    return ndtri(u)


@dataclass(frozen=True)
class Covariate:
    """A covariate drawn per subject from a normal distribution truncated to [min, max].

    Truncation is by redrawing, not clipping.  Units are those of the
    covariate (kg for weight, mL/min for creatinine clearance).
    """

    mean: float
    sd: float
    min: float
    max: float

    def __post_init__(self) -> None:
        for name in ("mean", "sd", "min", "max"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ParameterError(f"{name}: must be a finite number; got {v!r}")
        if self.sd < 0:
            raise ParameterError(f"sd: must be >= 0; got {self.sd!r}")
        if not (0 < self.min <= self.mean <= self.max):
            raise ParameterError(
                f"min/mean/max: must satisfy 0 < min <= mean <= max; got "
                f"min={self.min!r}, mean={self.mean!r}, max={self.max!r}"
            )

    def sample(self, seed: int, stream: int, subjects: np.ndarray) -> np.ndarray:
        """Values for the given subject indices, shape (n,)."""
        out = np.full(subjects.shape, float(self.mean))
        if self.sd == 0 or self.min == self.max:
            return np.clip(out, self.min, self.max)
        todo = np.arange(subjects.size)
        for attempt in range(_MAX_ATTEMPTS):
            x = self.mean + self.sd * standard_normal(seed, stream, subjects[todo], attempt)
            ok = (x >= self.min) & (x <= self.max)
            out[todo[ok]] = x[ok]
            todo = todo[~ok]
            if todo.size == 0:
                return out
        raise ParameterError(
            f"covariate range [{self.min:g}, {self.max:g}] is too narrow for sd {self.sd:g}: "
            f"no value landed in it after {_MAX_ATTEMPTS} draws"
        )


def _covariate(value, name: str, seed: int, subjects: np.ndarray) -> np.ndarray:
    if isinstance(value, Covariate):
        return value.sample(seed, _STREAMS[name], subjects)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParameterError(f"{name}: must be a finite number or a Covariate; got {value!r}")
    return np.full(subjects.shape, float(value))


@dataclass(frozen=True)
class Population:
    """Who is simulated: random effects and covariates per subject.

    Attributes
    ----------
    eta : dict of str to ndarray, shape (n,)
        Log-scale random effects on ka, CL, V_c, Kd, k_M and k_int
        (zeros without variability).
    weight_kg : ndarray, shape (n,)
        Body weight, kg.
    crcl_ml_min : ndarray, shape (n,)
        Creatinine clearance, mL/min.
    """

    eta: Mapping[str, np.ndarray]
    weight_kg: np.ndarray
    crcl_ml_min: np.ndarray
    subject_ids: np.ndarray = field(default=None)  # 0-based indices in the sampled population

    def __post_init__(self) -> None:
        n = np.shape(self.weight_kg)[0]
        if self.subject_ids is None:
            object.__setattr__(self, "subject_ids", np.arange(n))
        for name, arr in [("weight_kg", self.weight_kg), ("crcl_ml_min", self.crcl_ml_min), *self.eta.items()]:
            if np.shape(arr) != (n,):
                raise ParameterError(f"population.{name}: expected shape ({n},); got {np.shape(arr)}")
        if np.any(~np.isfinite(self.weight_kg)) or np.any(self.weight_kg <= 0):
            raise ParameterError("population.weight_kg: every value must be finite and > 0")
        if np.any(~np.isfinite(self.crcl_ml_min)) or np.any(self.crcl_ml_min < 0):
            raise ParameterError("population.crcl_ml_min: every value must be finite and >= 0")

    @property
    def n(self) -> int:
        """Number of subjects."""
        return int(np.shape(self.weight_kg)[0])

    @classmethod
    def typical(cls, n: int = 1, *, weight_kg: float = 70.0, crcl_ml_min: float = 100.0) -> "Population":
        """``n`` identical typical subjects (no random effects)."""
        return sample_population(n, weight_kg=weight_kg, crcl_ml_min=crcl_ml_min)

    def with_covariates(self, *, weight_kg: float | None = None, crcl_ml_min: float | None = None) -> "Population":
        """The same subjects (same random effects) with fixed covariate values."""
        wt = self.weight_kg if weight_kg is None else np.full(self.n, float(weight_kg))
        cr = self.crcl_ml_min if crcl_ml_min is None else np.full(self.n, float(crcl_ml_min))
        return Population(self.eta, wt, cr, self.subject_ids)

    def subset(self, index) -> "Population":
        """Some of the subjects (a slice or an index array), keeping their ids."""
        return Population(
            {k: v[index] for k, v in self.eta.items()},
            self.weight_kg[index],
            self.crcl_ml_min[index],
            self.subject_ids[index],
        )


def sample_population(
    n: int,
    *,
    seed: int = 0,
    variability: bool = False,
    weight_kg: float | Covariate = 70.0,
    crcl_ml_min: float | Covariate = 100.0,
    omega: Mapping[str, float] | None = None,
    first_subject: int = 0,
) -> Population:
    """Draw ``n`` subjects.

    Parameters
    ----------
    n : int
        Number of subjects, >= 1.
    seed : int
        Seed, >= 0.  Same seed, same subjects, on every machine.
    variability : bool
        Draw log-normal random effects with standard deviations ``omega``
        (default :data:`DEFAULT_OMEGA`); otherwise every eta is 0.
    weight_kg, crcl_ml_min : float or Covariate
        Fixed value, or a truncated normal sampled per subject (always
        sampled, whatever ``variability`` says).
    omega : mapping, optional
        Overrides of :data:`DEFAULT_OMEGA` (standard deviations, >= 0).
    first_subject : int
        Index of the first subject: ``sample_population(5, first_subject=10)``
        gives subjects 10..14 of a larger population.
    """
    for name, v, lo in (("n", n, 1), ("seed", seed, 0), ("first_subject", first_subject, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ParameterError(f"{name}: must be an integer >= {lo}; got {v!r}")
    om = dict(DEFAULT_OMEGA)
    for k, v in (omega or {}).items():
        if k not in DEFAULT_OMEGA:
            raise ParameterError(f"omega.{k}: no variability on this parameter (expected one of {', '.join(DEFAULT_OMEGA)})")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ParameterError(f"omega.{k}: must be finite and >= 0; got {v!r}")
        om[k] = float(v)
    subjects = np.arange(first_subject, first_subject + n)
    eta = {
        k: (om[k] * standard_normal(seed, _STREAMS[k], subjects) if variability else np.zeros(n))
        for k in DEFAULT_OMEGA
    }
    return Population(
        eta,
        _covariate(weight_kg, "WT", seed, subjects),
        _covariate(crcl_ml_min, "CrCl", seed, subjects),
        subjects,
    )
