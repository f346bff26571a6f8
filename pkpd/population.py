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
import zlib
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .errors import ParameterError
from .parameters import COVARIATES, PARAMETER_INFO

#: Default between-subject standard deviations of log-parameters (model-spec):
#: ``CL`` is the total clearance (one eta on both terms, after covariates).
DEFAULT_OMEGA: Mapping[str, float] = {
    "ka": 0.4,
    "CL": 0.25,
    "V_c": 0.25,
    "Kd": 0.3,
    "k_M": 0.3,
    "k_int": 0.3,
}

#: Parameters that may take a log-normal random effect: ``CL`` and every
#: parameter whose allowed range is unbounded above (``P exp(eta)`` must stay
#: in range; fractions such as F_ir are refused).
VARIABLE = ("CL",) + tuple(
    name for name, info in PARAMETER_INFO.items() if name not in COVARIATES and info.bounds[1] == math.inf
)

# Fixed stream numbers: adding a new random quantity must never change the
# draws of existing ones.  Names without a fixed number get one from a CRC32
# of the name (stable across machines and versions).
_STREAMS = {"ka": 1, "CL": 2, "V_c": 3, "Kd": 4, "k_M": 5, "k_int": 6, "WT": 101, "CrCl": 102}
#: Stream of the residual errors (proportional, additive), per observation.
RESIDUAL_STREAMS = (201, 202)


def stream_of(name: str) -> int:
    """The random stream of a named quantity (eta or covariate)."""
    return _STREAMS.get(name, 1000 + zlib.crc32(name.encode()))
_MAX_ATTEMPTS = 10_000

_U64 = np.uint64


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wraps modulo 2**64)."""
    x = x + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))

# Coefficients of Wichura's PPND16 (AS 241), lowest order first; the
# denominators' constant term is 1.
_AS241_A = (3.3871328727963666080e0, 1.3314166789178437745e2, 1.9715909503065514427e3, 1.3731693765509461125e4,
            4.5921953931549871457e4, 6.7265770927008700853e4, 3.3430575583588128105e4, 2.5090809287301226727e3)
_AS241_B = (1.0, 4.2313330701600911252e1, 6.8718700749205790830e2, 5.3941960214247511077e3,
            2.1213794301586595867e4, 3.9307895800092710610e4, 2.8729085735721942674e4, 5.2264952788528545610e3)
_AS241_C = (1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0, 3.64784832476320460504e0,
            1.27045825245236838258e0, 2.41780725177450611770e-1, 2.27238449892691845833e-2, 7.74545014278341407640e-4)
_AS241_D = (1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
            1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4, 1.05075007164441684324e-9)
_AS241_E = (6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0, 2.96560571828504891230e-1,
            2.65321895265761230930e-2, 1.24266094738807843860e-3, 2.71155556874348757815e-5, 2.01033439929228813265e-7)
_AS241_F = (1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
            7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7, 2.04426310338993978564e-15)


def _horner(x: np.ndarray, coefficients) -> np.ndarray:
    # One numpy multiply and one add per step, each rounded on its own (no
    # fused multiply-add), so the result is the same on every IEEE machine.
    value = x * coefficients[-1]
    value += coefficients[-2]
    for c in coefficients[-3::-1]:
        value *= x
        value += c
    return value


def _ndtri(u: np.ndarray) -> np.ndarray:
    """Inverse of the standard normal CDF, for u strictly inside (0, 1).

    Wichura's algorithm AS 241, PPND16 (M. J. Wichura, "Algorithm AS 241: The
    percentage points of the normal distribution", Applied Statistics
    37(3):477-484, 1988): rational approximations of degree 7 in three ranges
    whose own error is about 1 part in 1e16.  Evaluated in double precision
    the result is within about 7e-16 relative of the exact quantile (3 ulp;
    ``scipy.special.ndtri`` is within about the same, so the two differ by up
    to about 1.1e-15; see tests/test_population.py).  Above 0.5 the tail uses
    1 - u, which is exact there, so the upper tail is as accurate as the
    lower one and ``_ndtri(1 - u) == -_ndtri(u)`` whenever 1 - u is exact.
    Not defined at 0 or 1 (the draws never are).
    """
    u = np.asarray(u, dtype=np.float64)
    shape = u.shape
    u = u.ravel()
    q = u - 0.5
    # Central range |q| <= 0.425, computed for every element (cheaper than
    # selecting); the tail elements are then overwritten.
    r = 0.180625 - q * q
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = q * _horner(r, _AS241_A)
        out /= _horner(r, _AS241_B)

    tail = np.flatnonzero(np.abs(q) > 0.425)
    if tail.size:
        ut = u[tail]
        p = np.minimum(ut, 1.0 - ut)  # 1 - u is exact for u >= 0.5
        # Determinism: numpy's np.log may dispatch to different SIMD
        # implementations by CPU (AVX512 or not) that differ by an ulp, so the
        # logarithm of the tail elements (about 15% of draws) is taken by the C
        # library, element by element, through math.log.  Everything else here
        # is +, -, *, / and sqrt, which IEEE 754 rounds exactly everywhere.
        r = np.sqrt(-np.fromiter(map(math.log, p.tolist()), dtype=np.float64, count=p.size))
        far = np.flatnonzero(r > 5.0)  # p < exp(-25), about 1 draw in 1e11
        rf = r[far] - 5.0
        r -= 1.6
        z = _horner(r, _AS241_C)
        z /= _horner(r, _AS241_D)
        z[far] = _horner(rf, _AS241_E) / _horner(rf, _AS241_F)
        out[tail] = np.where(ut < 0.5, -z, z)
    return out.reshape(shape)


def standard_normal(seed: int, stream: int, subjects: np.ndarray, attempt=0) -> np.ndarray:
    """Standard normal draws, one per subject index, reproducible everywhere.

    Parameters
    ----------
    seed, stream : int
        Non-negative integers that select the draw.
    subjects : ndarray of int
        Subject indices (0-based), any shape.
    attempt : int or ndarray of int
        A further counter (redraws, or the observation number), broadcast
        against ``subjects``.
    """
    with np.errstate(over="ignore"):
        key = _splitmix64(np.array([seed], dtype=_U64))
        key = _splitmix64(key ^ _U64(stream))
        key = _splitmix64(key ^ np.asarray(attempt, dtype=_U64))
        bits = _splitmix64(key ^ np.asarray(subjects, dtype=_U64))
    u = ((bits >> _U64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)
    return _ndtri(u)


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
        return value.sample(seed, stream_of(name), subjects)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParameterError(f"{name}: must be a finite number or a Covariate; got {value!r}")
    return np.full(subjects.shape, float(value))


def _finite_number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
        raise ParameterError(f"{where}: must be a finite number; got {value!r}")
    return float(value)


def _check_variable(name, where: str) -> None:
    if name not in VARIABLE:
        if name in PARAMETER_INFO and name not in COVARIATES:
            lo, hi, _, _ = PARAMETER_INFO[name].bounds
            why = f"its range is bounded above ({PARAMETER_INFO[name].rule()}), which P*exp(eta) would cross"
        else:
            why = "not a model parameter (expected CL or a positive model parameter such as ka, V_c, Kd)"
        raise ParameterError(f"{where}: no log-normal variability on {name!r}: {why}")


@dataclass(frozen=True, eq=False)
class Omega:
    """Covariance of the log-scale random effects (NONMEM's OMEGA block).

    Parameters
    ----------
    names : tuple of str
        Parameters with a random effect (``CL`` or positive model parameters).
    covariance : ndarray, shape (k, k)
        Symmetric positive semi-definite covariance of the etas; a zero row
        and column (omega 0) switches that eta off, the other rows must form
        a positive-definite block.

    Build it from standard deviations and correlations with
    :meth:`from_sd`; :data:`DEFAULT_OMEGA` is the spec's diagonal default.
    """

    names: tuple
    covariance: np.ndarray

    def __post_init__(self) -> None:
        names = tuple(self.names)
        for name in names:
            _check_variable(name, f"omega.{name}")
        if len(set(names)) != len(names):
            raise ParameterError(f"omega: a parameter is named twice in {list(names)}")
        cov = np.array(self.covariance, dtype=float)
        if cov.shape != (len(names), len(names)):
            raise ParameterError(
                f"omega: covariance must be a {len(names)}x{len(names)} matrix for {list(names)}; got shape {cov.shape}"
            )
        if not np.all(np.isfinite(cov)):
            raise ParameterError("omega: every covariance entry must be finite")
        if not np.allclose(cov, cov.T, rtol=1e-12, atol=0.0):
            raise ParameterError("omega: the covariance matrix must be symmetric")
        on = np.diag(cov) > 0
        if np.any(np.diag(cov) < 0):
            raise ParameterError("omega: variances (diagonal) must be >= 0")
        off = ~on
        if np.any(cov[off][:, on] != 0):
            bad = names[int(np.flatnonzero(off)[0])]
            raise ParameterError(f"omega.{bad}: a correlation with an eta whose omega is 0 is impossible")
        try:
            chol = np.linalg.cholesky(cov[np.ix_(on, on)]) if np.any(on) else np.zeros((0, 0))
        except np.linalg.LinAlgError:
            raise ParameterError(
                "omega: the covariance matrix must be positive definite (check that the correlations are "
                "between -1 and 1 and consistent with each other)"
            ) from None
        cov.setflags(write=False)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "covariance", cov)
        object.__setattr__(self, "_chol", chol)
        object.__setattr__(self, "_on", np.flatnonzero(on))

    @classmethod
    def from_sd(cls, sd: Mapping[str, float] | None = None, correlation: Mapping | None = None) -> "Omega":
        """Standard deviations (overriding :data:`DEFAULT_OMEGA`) and correlations.

        ``sd`` maps a name to the standard deviation of its eta (>= 0; 0
        switches it off); ``correlation`` maps a pair, ``("CL", "V_c")`` or
        ``"CL,V_c"``, to a correlation coefficient in (-1, 1).
        """
        sds = dict(DEFAULT_OMEGA)
        for name, value in (sd or {}).items():
            _check_variable(name, f"omega.{name}")
            value = _finite_number(value, f"omega.{name}")
            if value < 0:
                raise ParameterError(f"omega.{name}: must be >= 0 (a standard deviation); got {value!r}")
            sds[name] = value
        names = tuple(sds)
        cov = np.diag([sds[k] ** 2 for k in names])
        for pair, rho in (correlation or {}).items():
            key = ",".join(pair) if isinstance(pair, tuple) else str(pair)
            where = f"correlation.{key}"
            parts = [p.strip() for p in key.split(",")]
            if len(parts) != 2 or parts[0] == parts[1]:
                raise ParameterError(f"{where}: expected two different parameter names like 'CL,V_c'")
            for p in parts:
                if p not in sds:
                    _check_variable(p, where)
                    raise ParameterError(f"{where}: {p} has no omega; give omega.{p} first")
            rho = _finite_number(rho, where)
            if not -1.0 < rho < 1.0:
                raise ParameterError(f"{where}: a correlation must be in (-1, 1); got {rho!r}")
            i, j = names.index(parts[0]), names.index(parts[1])
            if sds[parts[0]] == 0 or sds[parts[1]] == 0:
                raise ParameterError(f"{where}: both etas need an omega > 0 to be correlated")
            cov[i, j] = cov[j, i] = rho * sds[parts[0]] * sds[parts[1]]
        return cls(names, cov)

    @property
    def sd(self) -> dict[str, float]:
        """Standard deviation of each eta."""
        return {k: float(math.sqrt(v)) for k, v in zip(self.names, np.diag(self.covariance))}

    def sample(self, seed: int, subjects: np.ndarray) -> dict[str, np.ndarray]:
        """Etas of the given subjects: ``L z`` with ``L`` the Cholesky factor.

        ``z`` holds one counter-based standard normal per name (its own
        stream), so subject i's etas depend only on the seed and i.
        """
        etas = {k: np.zeros(subjects.shape) for k in self.names}
        on = [self.names[i] for i in self._on]
        z = np.stack([standard_normal(seed, stream_of(k), subjects) for k in on]) if on else None
        for row, name in enumerate(on):
            l_row = self._chol[row, : row + 1]
            if row == 0 or not np.any(l_row[:-1]):
                etas[name] = math.sqrt(self.covariance[self._on[row], self._on[row]]) * z[row]
            else:
                etas[name] = l_row @ z[: row + 1]
        return etas


@dataclass(frozen=True)
class ResidualError:
    """Residual error of simulated observations: ``y = f (1 + eps_prop) + eps_add``.

    Parameters
    ----------
    readout : str
        The readout observed (e.g. ``"plasma_mg_per_l"``).
    proportional : float
        Standard deviation of ``eps_prop`` (dimensionless, >= 0).
    additive : float
        Standard deviation of ``eps_add``, in the readout's unit (>= 0).

    Draws come from the subject's seed, per subject and observation number,
    so they are the same whatever the chunking.
    """

    readout: str
    proportional: float = 0.0
    additive: float = 0.0

    def __post_init__(self) -> None:
        for name in ("proportional", "additive"):
            value = _finite_number(getattr(self, name), f"residual_error.{name}")
            if value < 0:
                raise ParameterError(f"residual_error.{name}: must be >= 0 (a standard deviation); got {value!r}")
            object.__setattr__(self, name, value)
        if not isinstance(self.readout, str):
            raise ParameterError(f"residual_error.readout: must be a readout name; got {self.readout!r}")

    def observe(self, values: np.ndarray, seed: int, subjects: np.ndarray) -> np.ndarray:
        """Simulated measurements of ``values`` (subjects, observations)."""
        obs = np.arange(values.shape[-1])[None, :]
        subj = np.asarray(subjects)[:, None]
        prop = self.proportional * standard_normal(seed, RESIDUAL_STREAMS[0], subj, obs)
        add = self.additive * standard_normal(seed, RESIDUAL_STREAMS[1], subj, obs)
        return values * (1.0 + prop) + add


@dataclass(frozen=True)
class Population:
    """Who is simulated: random effects and covariates per subject.

    Attributes
    ----------
    eta : dict of str to ndarray, shape (n,)
        Log-scale random effects (``P_i = P exp(eta_i)``) by parameter name;
        parameters without one are at their typical value.
    weight_kg : ndarray, shape (n,)
        Body weight, kg.
    crcl_ml_min : ndarray, shape (n,)
        Creatinine clearance, mL/min.
    subject_ids : ndarray, shape (n,)
        Subject numbers, counting from 1 (``sample_population`` numbers its
        subjects 1..n; a subset keeps them).
    seed : int
        The seed the subjects were drawn with (residual errors use it too).
    """

    eta: Mapping[str, np.ndarray] = field(default_factory=dict)
    weight_kg: np.ndarray = None
    crcl_ml_min: np.ndarray = None
    subject_ids: np.ndarray = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.eta, Mapping):
            raise ParameterError(f"population.eta: must map parameter names to arrays; got {type(self.eta).__name__}")
        given = [np.shape(a) for a in (self.weight_kg, self.crcl_ml_min, *self.eta.values()) if a is not None]
        if not given or not given[0]:
            raise ParameterError(
                "population: give weight_kg and/or crcl_ml_min with one value per subject, "
                "or use pkpd.Population.typical(n) or pkpd.sample_population(n)"
            )
        n = given[0][0]
        wt = np.full(n, 70.0) if self.weight_kg is None else np.array(self.weight_kg, dtype=float)
        cr = np.full(n, 100.0) if self.crcl_ml_min is None else np.array(self.crcl_ml_min, dtype=float)
        ids = np.arange(1, n + 1) if self.subject_ids is None else np.array(self.subject_ids)
        eta = {}
        for name, arr in self.eta.items():
            _check_variable(name, f"population.eta.{name}")
            eta[name] = np.array(arr, dtype=float)
        for name, arr in [("weight_kg", wt), ("crcl_ml_min", cr), ("subject_ids", ids), *eta.items()]:
            if arr.shape != (n,):
                raise ParameterError(f"population.{name}: expected one value per subject, shape ({n},); got shape {arr.shape}")
        for name, arr in eta.items():
            if not np.all(np.isfinite(arr)):
                raise ParameterError(f"population.eta.{name}: every value must be finite")
        if np.any(~np.isfinite(wt)) or np.any(wt <= 0):
            raise ParameterError("population.weight_kg: every value must be finite and > 0")
        if np.any(~np.isfinite(cr)) or np.any(cr < 0):
            raise ParameterError("population.crcl_ml_min: every value must be finite and >= 0")
        for arr in (wt, cr, ids, *eta.values()):
            arr.setflags(write=False)
        object.__setattr__(self, "eta", eta)
        object.__setattr__(self, "weight_kg", wt)
        object.__setattr__(self, "crcl_ml_min", cr)
        object.__setattr__(self, "subject_ids", ids)

    def __repr__(self) -> str:
        varied = ", ".join(self.eta) or "none"
        return f"Population(n={self.n}, seed={self.seed}, random effects on: {varied})"

    @property
    def n(self) -> int:
        """Number of subjects."""
        return int(self.weight_kg.shape[0])

    @classmethod
    def typical(cls, n: int = 1, *, weight_kg: float = 70.0, crcl_ml_min: float = 100.0) -> "Population":
        """``n`` identical typical subjects (no random effects)."""
        return sample_population(n, weight_kg=weight_kg, crcl_ml_min=crcl_ml_min)

    def with_covariates(self, *args, weight_kg=None, crcl_ml_min=None) -> "Population":
        """The same subjects (same random effects) with other covariates.

        ``weight_kg`` (kg) and ``crcl_ml_min`` (mL/min): one value for every
        subject, or one per subject; by keyword.
        """
        if args:
            raise ParameterError(
                "with_covariates: give the covariates by keyword, e.g. with_covariates(crcl_ml_min=30)"
            )
        wt = self.weight_kg if weight_kg is None else np.broadcast_to(np.asarray(weight_kg, float), (self.n,))
        cr = self.crcl_ml_min if crcl_ml_min is None else np.broadcast_to(np.asarray(crcl_ml_min, float), (self.n,))
        return Population(self.eta, wt, cr, self.subject_ids, self.seed)

    def subset(self, index) -> "Population":
        """Some of the subjects (a slice or an index array), keeping their ids."""
        return Population(
            {k: v[index] for k, v in self.eta.items()},
            self.weight_kg[index],
            self.crcl_ml_min[index],
            self.subject_ids[index],
            self.seed,
        )


def sample_population(
    n: int,
    *,
    seed: int = 0,
    variability: bool = False,
    weight_kg: float | Covariate = 70.0,
    crcl_ml_min: float | Covariate = 100.0,
    omega: Mapping[str, float] | Omega | None = None,
    correlation: Mapping | None = None,
    first_subject: int = 1,
) -> Population:
    """Draw ``n`` subjects.

    Parameters
    ----------
    n : int
        Number of subjects, >= 1.
    seed : int
        Seed, >= 0.  Same seed, same subjects, on every machine.
    variability : bool
        Draw log-normal random effects (``omega``, default
        :data:`DEFAULT_OMEGA`); otherwise there are none.
    weight_kg, crcl_ml_min : float or Covariate
        Fixed value, or a truncated normal sampled per subject (always
        sampled, whatever ``variability`` says).
    omega : mapping or Omega, optional
        Standard deviations overriding :data:`DEFAULT_OMEGA` for any
        parameter in :data:`VARIABLE` (0 switches one off), or a whole
        :class:`Omega` block.
    correlation : mapping, optional
        Correlations between etas, e.g. ``{("CL", "V_c"): 0.5}`` (with a
        mapping ``omega`` only); the resulting matrix must be positive definite.
    first_subject : int
        Number of the first subject (subjects count from 1):
        ``sample_population(5, first_subject=11)`` gives subjects 11..15 of a
        larger population, identical to theirs.
    """
    for name, v, lo in (("n", n, 1), ("seed", seed, 0), ("first_subject", first_subject, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ParameterError(f"{name}: must be an integer >= {lo}; got {v!r}")
    if isinstance(omega, Omega):
        if correlation:
            raise ParameterError("correlation: give correlations inside the Omega block, not beside it")
        block = omega
    elif omega is None or isinstance(omega, Mapping):
        block = Omega.from_sd(omega, correlation)
    else:
        raise ParameterError(f"omega: expected a mapping of standard deviations or an Omega; got {type(omega).__name__}")
    subjects = np.arange(first_subject, first_subject + n)
    counters = subjects - 1  # the random streams count subjects from 0
    eta = {k: v for k, v in block.sample(seed, counters).items() if np.any(v)} if variability else {}
    return Population(
        eta,
        _covariate(weight_kg, "WT", seed, counters),
        _covariate(crcl_ml_min, "CrCl", seed, counters),
        subjects,
        int(seed),
    )


#: Covariate columns of a per-subject parameter table, and their keyword.
_TABLE_COVARIATES = {"WT": "weight_kg", "CRCL": "crcl_ml_min"}


def population_from_estimates(table, typical) -> Population:
    """Subjects with their own parameter values, as mrgsolve's ``idata_set``.

    Parameters
    ----------
    table : mapping of str to sequence, a pandas DataFrame, or a CSV path
        One row per subject: ``ID``, optionally ``WT`` (kg) and ``CRCL``
        (mL/min), and any positive model parameter by its spec name (or
        ``CL``, the total clearance after covariates), each subject's own
        estimate (e.g. post-hoc values from NONMEM).
    typical : pkpd.Parameters
        The typical values the estimates are expressed against.

    Returns
    -------
    Population
        Subject i's random effect on parameter P is ``log(P_i / P)``, so
        :func:`pkpd.model.individual_parameters` gives back exactly the
        table's values (before the covariate scaling of V_c, V_p and Q,
        which then applies as for any subject: give estimates for a 70 kg
        subject, or give WT). Subject numbers are the table's IDs when they
        are integers, else 1..n.
    """
    import csv

    if isinstance(table, (str, bytes)) or hasattr(table, "__fspath__"):
        with open(table, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        if len(rows) < 2:
            raise ParameterError(f"{table}: a per-subject parameter table needs a header and at least one row")
        columns = {name: [r[j] for r in rows[1:]] for j, name in enumerate(rows[0])}
    elif hasattr(table, "to_dict") and hasattr(table, "columns"):
        columns = {str(k): list(table[k]) for k in table.columns}
    elif isinstance(table, Mapping):
        columns = {str(k): list(v) for k, v in table.items()}
    else:
        raise ParameterError(f"table: expected a mapping of columns, a DataFrame or a CSV path; got {type(table).__name__}")
    ids = columns.pop("ID", None)
    n = len(next(iter(columns.values()), ids or []))
    if n == 0:
        raise ParameterError("table: no subjects (no rows)")
    values = {}
    for name, col in columns.items():
        if len(col) != n:
            raise ParameterError(f"table.{name}: {len(col)} values for {n} subjects")
        try:
            arr = np.array([float(v) for v in col])
        except (TypeError, ValueError):
            bad = next(v for v in col if not _is_number(v))
            raise ParameterError(f"table.{name}: not a number; got {bad!r}") from None
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0) and name != "CRCL":
            raise ParameterError(f"table.{name}: every value must be finite and > 0")
        values[name] = arr
    eta = {}
    for name, arr in values.items():
        if name in _TABLE_COVARIATES:
            continue
        _check_variable(name, f"table.{name}")
        if name == "CL":
            raise ParameterError("table.CL: give CL_nr and CL_r (the clearance's parts) rather than the total")
        eta[name] = np.log(arr / float(getattr(typical, name)))
    numbers = None
    if ids is not None:
        try:
            numbers = np.array([int(float(v)) for v in ids])
        except (TypeError, ValueError):
            numbers = None
    return Population(eta, values.get("WT"), values.get("CRCL"), numbers if numbers is not None else None)


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
