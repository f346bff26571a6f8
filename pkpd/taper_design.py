"""Design a taper: the shortest taper whose rebound percentile stays under a threshold.

A modelling question about the illustrative model of docs/model.md, never
dosing advice: *in this model*, after a given treatment, how long must a
taper of a given shape be so that the chosen percentile (default the 95th)
of the withdrawal rebound across a population stays at or under a
threshold excitability?

The rebound of one subject is :func:`pkpd.metrics.rebound`'s ``peak``: the
highest excitability after the last dose (the lowest point that follows it
first), measured on [last dose, end of run].  A subject whose run ended
before its peak (censored) counts as above any threshold (its rebound is
unknown, and the designer must not pass it); a subject whose excitability
never rises again after the last dose has no rebound and counts as 1, the
untreated baseline.  Both are counted in the result.

Taper lengths are whole numbers of dosing intervals per step: a shape with
``steps`` levels is tried at lengths ``m * steps * every_h`` (m = 0, 1, ...,
up to ``max_days``), m = 0 being the abrupt stop.  Two shapes are built in:

- ``linear``: :func:`pkpd.taper_over`, levels ``n/(n+1), ..., 1/(n+1)`` of
  the maintenance dose;
- ``exponential``: :func:`pkpd.stepped`, levels ``q, q**2, ..., q**n`` with
  ``q = (1/(n+1))**(1/n)``: the same last level as the linear taper,
  reached by equal *proportional* cuts (larger cuts first, smaller ones
  last, as in "hyperbolic" tapering).

Search.  For a shape the rebound percentile falls (nearly) monotonically with
taper length, so the shortest passing length is found by a k-ary bisection
over m: every round simulates the candidate lengths of every shape still
searching together, as one batch (one regimen per subject copy), with only
the excitability saved on a coarse grid after the treatment.  The first
round holds the abrupt stop, the longest taper and a few evenly spaced
lengths (the coarse curve); each later round splits the bracket
(last failing, first passing) into ``points_per_round + 1`` parts.  The
answer is the shortest passing length over the shapes.  If even the longest
taper fails for every shape there is no answer (``found`` False), never a
wrong one.  ``scan=True`` evaluates every length instead (brute force).

Times in h (days where the name says so), amounts in mg.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .errors import ParameterError, RegimenError
from .metrics import percentile_bands, rebound
from .population import Population
from .regimen import Dose, Regimen, stepped, taper_over
from .simulate import Grid, SaveAt, simulate
from .units import HOURS_PER_DAY

#: The one line every output of the designer carries.
DISCLAIMER = "pkpd is a teaching and research model: not for dosing decisions."
#: What the answer is, in words (printed with it).
CAVEAT = ("A modelling answer about pkpd's illustrative model (docs/model.md), "
          "not a recommended taper, dose or product.")
#: Built-in taper shapes.
SHAPES = ("linear", "exponential")
#: Rebound counted for a censored subject: above any threshold.
CENSORED_REBOUND = math.inf
#: Rebound counted for a subject whose excitability never rises after the last dose.
NO_REBOUND = 1.0
_BIG = 1e12  # stands for inf inside the percentile interpolation


@dataclass(frozen=True)
class TaperShape:
    """A taper shape: ``kind`` (one of :data:`SHAPES`) in ``steps`` equal-length levels."""

    kind: str = "linear"
    steps: int = 4

    def __post_init__(self) -> None:
        if self.kind not in SHAPES:
            raise ParameterError(f"shapes: unknown shape {self.kind!r} (expected one of {', '.join(SHAPES)})")
        s = self.steps
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 1 <= s <= 100:
            raise ParameterError(f"steps: must be an integer in [1, 100]; got {s!r}")
        object.__setattr__(self, "steps", int(s))

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.steps}"

    def fractions(self) -> np.ndarray:
        """The levels as fractions of the maintenance dose, first to last, shape (steps,)."""
        n = self.steps
        if self.kind == "linear":
            return np.array([(n - k) / (n + 1) for k in range(n)])
        q = (1.0 / (n + 1)) ** (1.0 / n)
        return q ** np.arange(1, n + 1)

    def regimen(self, dose_mg: float, every_h: float, length_h: float, *, start_h: float,
                route: str = "oral_ir") -> Regimen:
        """The taper alone, from ``start_h`` over ``length_h`` (0: nothing, the abrupt stop)."""
        if length_h == 0:
            return Regimen()
        if self.kind == "linear":
            return taper_over(dose_mg, length_h / HOURS_PER_DAY, steps=self.steps, every_h=every_h,
                              start_h=start_h, route=route)
        return stepped(dose_mg * self.fractions(), every_h=every_h, step_h=length_h / self.steps,
                       start_h=start_h, route=route)


def _shape(value) -> TaperShape:
    if isinstance(value, TaperShape):
        return value
    if isinstance(value, str):
        kind, _, steps = value.partition("-")
        if steps:
            try:
                return TaperShape(kind, int(steps))
            except ValueError:
                raise ParameterError(f"shapes: expected KIND or KIND-STEPS, e.g. linear-4; got {value!r}") from None
        return TaperShape(kind)
    if isinstance(value, tuple) and len(value) == 2:
        return TaperShape(*value)
    raise ParameterError(f"shapes: expected 'linear', 'exponential-6', ('linear', 4) or a TaperShape; got {value!r}")


@dataclass(frozen=True)
class Maintenance:
    """The treatment before the taper: its regimen, and what the taper starts from.

    ``start_h`` is one interval after the last maintenance dose (where the
    next dose would have been); ``dose_mg``, ``every_h`` and ``route`` are
    those of the last dose block.
    """

    regimen: Regimen
    dose_mg: float
    every_h: float
    route: str
    start_h: float

    @classmethod
    def of(cls, value) -> "Maintenance":
        if isinstance(value, Maintenance):
            return value
        if isinstance(value, Regimen):
            blocks = [d for d in value.doses if d.count is not None or d.every_h is None]
            if value.last_dose_h is None or not value.doses or len(blocks) != len(value.doses):
                raise RegimenError("maintenance: the regimen must end (every repeated dose needs a count)")
            last = max(value.doses, key=lambda d: d.at_h + (d.every_h or 0.0) * ((d.count or 1) - 1))
            if last.every_h is None:
                raise RegimenError("maintenance: the last dose must repeat (every_h), to give the taper its interval")
            end = last.at_h + last.every_h * (last.count - 1)
            return cls(value, last.amount_mg, last.every_h, last.route, end + last.every_h)
        if isinstance(value, (tuple, list)) and len(value) == 3:
            dose_mg, every_h, days = value
            for name, v in (("dose_mg", dose_mg), ("every_h", every_h), ("treatment_days", days)):
                if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not (
                        math.isfinite(v) and v > 0):
                    raise ParameterError(f"{name}: must be finite and > 0; got {v!r}")
            ratio = days * HOURS_PER_DAY / every_h
            k = round(ratio)
            if k < 1 or abs(ratio - k) > 1e-9 * ratio:
                raise RegimenError(f"treatment_days: must last a whole number of every_h = {every_h:g} h dosing "
                                   f"intervals (treatment_days * 24 / every_h is {ratio:.6g}); got {days!r}")
            reg = Regimen((Dose("oral_ir", dose_mg, every_h=every_h, count=k),))
            return cls(reg, float(dose_mg), float(every_h), "oral_ir", k * float(every_h))
        raise RegimenError("maintenance: expected a pkpd.Regimen or (dose_mg, every_h, treatment_days); "
                           f"got {type(value).__name__}")


@dataclass(frozen=True)
class TaperCurve:
    """Rebound against taper length for one shape, at the lengths evaluated (sorted).

    Arrays of shape (L,): ``lengths_days``, ``p5``, ``median``, ``p95`` and
    ``value`` (the design percentile) of the rebound peak (1 = untreated),
    ``censored`` (subjects whose run ended before the peak).
    """

    shape: TaperShape
    lengths_days: np.ndarray
    p5: np.ndarray
    median: np.ndarray
    p95: np.ndarray
    value: np.ndarray
    censored: np.ndarray


@dataclass(frozen=True)
class TaperDesign:
    """What :func:`design_taper` returns.

    Attributes
    ----------
    found : bool
        Whether some taper length (0 included) passes.
    length_days, shape : float and TaperShape, or None
        The shortest passing length and its shape (None when not found).
    value : float
        The design percentile of the rebound at the answer (nan when not found).
    regimen : Regimen or None
        Maintenance followed by the chosen taper.
    curves : dict of shape name -> TaperCurve
        Every length evaluated, per shape (the abrupt stop in each).
    threshold, percentile : float
        The question asked.
    n_subjects, runs : int
        Population size, and subject-runs simulated in all.
    seconds : float
        Wall time of the search.
    """

    found: bool
    length_days: float | None
    shape: TaperShape | None
    value: float
    regimen: Regimen | None
    curves: Mapping[str, TaperCurve]
    threshold: float
    percentile: float
    n_subjects: int
    runs: int
    seconds: float
    maintenance: Maintenance = field(repr=False, default=None)
    max_days: float = math.nan

    def answer(self) -> str:
        """The answer in one sentence (with the modelling caveat)."""
        q = f"{self.percentile:g}th-percentile rebound"
        if not self.found:
            return (f"No taper of the shapes tried, up to {self.max_days:g} days, keeps the {q} at or under "
                    f"{self.threshold:g} in this model: no answer. {CAVEAT}")
        if self.length_days == 0:
            return (f"In this model the abrupt stop already keeps the {q} at {self.value:.4g} "
                    f"(<= {self.threshold:g}). {CAVEAT}")
        return (f"In this model the shortest taper keeping the {q} at or under {self.threshold:g} is "
                f"{self.length_days:g} days, {self.shape.kind} in {self.shape.steps} steps "
                f"({self.value:.4g}). {CAVEAT}")

    def rows(self) -> list[tuple]:
        """The curves as rows: (shape, steps, length_days, p5, median, p95, value, censored, passes)."""
        out = []
        for c in self.curves.values():
            for i in range(c.lengths_days.size):
                out.append((c.shape.kind, c.shape.steps, float(c.lengths_days[i]), float(c.p5[i]),
                            float(c.median[i]), float(c.p95[i]), float(c.value[i]), int(c.censored[i]),
                            bool(c.value[i] <= self.threshold)))
        return out


def _tile(population: Population, k: int) -> Population:
    return Population({n: np.tile(v, k) for n, v in population.eta.items()}, np.tile(population.weight_kg, k),
                      np.tile(population.crcl_ml_min, k), np.tile(population.subject_ids, k), population.seed)


def _percentile(values: np.ndarray, q: Sequence[float]) -> np.ndarray:
    v = np.where(np.isinf(values), _BIG, values)
    out = percentile_bands(v, q)
    return np.where(out >= 1e6, math.inf, out)


class _Evaluator:
    """Simulates candidate (shape, m) pairs in batches and caches their rebound statistics."""

    def __init__(self, maint: Maintenance, population: Population, parameters, percentile: float,
                 follow_h: float, output_step_h: float, max_step_h: float):
        self.maint, self.pop, self.parameters = maint, population, parameters
        self.q, self.follow_h, self.step = percentile, follow_h, output_step_h
        self.max_step_h = max_step_h
        self.cache: dict[tuple, dict] = {}  # (shape name, length h) -> stats
        self.runs = 0

    def unit_h(self, shape: TaperShape) -> float:
        return shape.steps * self.maint.every_h

    def regimen(self, shape: TaperShape, length_h: float) -> Regimen:
        m = self.maint
        return m.regimen + shape.regimen(m.dose_mg, m.every_h, length_h, start_h=m.start_h, route=m.route)

    def key(self, shape: TaperShape, length_h: float):
        return ("abrupt", 0.0) if length_h == 0 else (shape.name, round(length_h, 9))

    def evaluate(self, wanted: Sequence[tuple[TaperShape, float]]) -> None:
        todo, seen = [], set()
        for shape, length_h in wanted:
            k = self.key(shape, length_h)
            if k not in self.cache and k not in seen:
                seen.add(k)
                todo.append((k, shape, length_h))
        if not todo:
            return
        regs = [self.regimen(s, L) for _, s, L in todo]
        stops = [r.last_dose_h for r in regs]
        end = max(stops) + self.follow_h
        first = self.maint.start_h - self.maint.every_h
        t = np.arange(math.floor(first / self.step), math.floor(end / self.step) + 1) * self.step
        t = np.concatenate([t[(t >= 0) & (t < end - 1e-9)], [end]])
        n = self.pop.n
        res = simulate([r for r in regs for _ in range(n)], duration_h=end, parameters=self.parameters,
                       population=_tile(self.pop, len(regs)), save=SaveAt(output=Grid(t, ("excitability",))),
                       max_step_h=self.max_step_h)
        self.runs += n * len(regs)
        for i, ((k, _, _), stop) in enumerate(zip(todo, stops)):
            r = rebound(res.time_h, res.excitability[i * n:(i + 1) * n], stop_h=stop)
            peak = np.where(r["censored"], CENSORED_REBOUND, np.where(np.isnan(r["peak"]), NO_REBOUND, r["peak"]))
            p5, med, p95, val = _percentile(peak, (5.0, 50.0, 95.0, self.q))
            self.cache[k] = {"p5": p5, "median": med, "p95": p95, "value": val, "censored": int(r["censored"].sum())}

    def stats(self, shape: TaperShape, length_h: float) -> dict:
        return self.cache[self.key(shape, length_h)]


def _number(name: str, value, low: float, high: float | None = None, *, strict_low: bool = True) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(value) and (value > low if strict_low else value >= low)
          and (high is None or value <= high))
    if not ok:
        rule = f"{'>' if strict_low else '>='} {low:g}" + (f" and <= {high:g}" if high is not None else "")
        raise ParameterError(f"{name}: must be finite and {rule}; got {value!r}")
    return float(value)


def design_taper(
    maintenance,
    *,
    population: Population | None = None,
    threshold: float = 1.2,
    percentile: float = 95.0,
    shapes: Sequence = ("linear", "exponential"),
    max_days: float = 28.0,
    follow_days: float = 10.0,
    points_per_round: int = 2,
    scan: bool = False,
    parameters=None,
    output_step_h: float = 2.0,
    max_step_h: float = 1.0,
) -> TaperDesign:
    """The shortest taper whose ``percentile`` of rebound stays at or under ``threshold``.

    A question about the illustrative model, not dosing advice (see the
    module docstring for the rebound statistic and the search).

    Parameters
    ----------
    maintenance : Regimen or (dose_mg, every_h, treatment_days)
        The treatment before the taper, simulated in full (the slow
        adaptations are not at steady state after weeks, and the rebound
        depends on how long the treatment lasted).  A tuple means oral
        immediate-release ``dose_mg`` every ``every_h`` h for
        ``treatment_days`` days (a whole number of intervals).  The taper
        starts one interval after the last dose, from its amount.
    population : Population, optional
        The subjects (default one typical subject).
    threshold : float
        Rebound excitability (1 = untreated) the percentile must not exceed.
    percentile : float
        In [0, 100] (default 95).
    shapes : sequence
        ``"linear"``, ``"exponential"``, ``"linear-6"`` (6 steps), ``(kind, steps)``
        or :class:`TaperShape` (default 4 steps).
    max_days : float
        Longest taper tried, days.
    follow_days : float
        Run length after the last dose, days (the rebound peaks within a few days).
    points_per_round : int
        Lengths per shape simulated per bisection round (>= 1).
    scan : bool
        Evaluate every whole-interval length (brute force) instead of bisecting.
    parameters : Parameters, optional
        Typical values (default :func:`pkpd.default_parameters`).
    output_step_h, max_step_h : float
        Excitability grid after the treatment, and the integration bound, h
        (1 h moves the rebound by about 1e-6 against pkpd's default 0.5 h:
        the pharmacokinetics are exact and the adaptations take days).
    """
    t0 = time.perf_counter()
    maint = Maintenance.of(maintenance)
    if population is None:
        population = Population.typical(1)
    if not isinstance(population, Population):
        raise ParameterError(f"population: expected a pkpd.Population; got {type(population).__name__}")
    threshold = _number("threshold", threshold, 0.0)
    percentile = _number("percentile", percentile, 0.0, 100.0, strict_low=False)
    max_days = _number("max_days", max_days, 0.0, 3650.0, strict_low=False)
    follow_days = _number("follow_days", follow_days, 0.0, 3650.0)
    if isinstance(points_per_round, bool) or not isinstance(points_per_round, (int, np.integer)) or points_per_round < 1:
        raise ParameterError(f"points_per_round: must be an integer >= 1; got {points_per_round!r}")
    if isinstance(shapes, (str, TaperShape)):
        shapes = (shapes,)
    shapes = list(dict.fromkeys(_shape(s) for s in shapes))
    if not shapes:
        raise ParameterError("shapes: name at least one shape")
    ev = _Evaluator(maint, population, parameters, percentile, follow_days * HOURS_PER_DAY,
                    _number("output_step_h", output_step_h, 0.0), _number("max_step_h", max_step_h, 0.0))
    top = {s.name: int(math.floor(max_days * HOURS_PER_DAY / ev.unit_h(s) + 1e-9)) for s in shapes}

    def length(s: TaperShape, m: int) -> float:
        return m * ev.unit_h(s)

    def passes(s: TaperShape, m: int) -> bool:
        return ev.stats(s, length(s, m))["value"] <= threshold

    if scan:
        ev.evaluate([(s, length(s, m)) for s in shapes for m in range(top[s.name] + 1)])
        best = {}
        for s in shapes:
            ok = [m for m in range(top[s.name] + 1) if passes(s, m)]
            best[s.name] = ok[0] if ok else None
    else:
        # round 0: abrupt stop, the longest taper and evenly spaced lengths
        first = []
        for s in shapes:
            M = top[s.name]
            ms = {0, M} | {round(M * (j + 1) / (points_per_round + 1)) for j in range(points_per_round)}
            first += [(s, length(s, m)) for m in sorted(ms)]
        ev.evaluate(first)
        bracket = {}
        for s in shapes:
            M = top[s.name]
            done = sorted({m for m in range(M + 1) if ev.key(s, length(s, m)) in ev.cache})
            if passes(s, 0):
                bracket[s.name] = (None, 0)
                continue
            if not passes(s, M):
                bracket[s.name] = (None, None)
                continue
            hi = min(m for m in done if passes(s, m))
            lo = max(m for m in done if m < hi and not passes(s, m))
            bracket[s.name] = (lo, hi)
        while True:
            wanted = []
            for s in shapes:
                lo, hi = bracket[s.name]
                if lo is None or hi - lo <= 1:
                    continue
                gap = hi - lo
                ms = sorted({lo + max(1, round(gap * (j + 1) / (points_per_round + 1))) for j in range(points_per_round)})
                wanted += [(s, length(s, m)) for m in ms if lo < m < hi]
            if not wanted:
                break
            ev.evaluate(wanted)
            for s in shapes:
                lo, hi = bracket[s.name]
                if lo is None or hi - lo <= 1:
                    continue
                inside = [m for m in range(lo + 1, hi) if ev.key(s, length(s, m)) in ev.cache]
                for m in inside:
                    if passes(s, m):
                        hi = min(hi, m)
                lo = max([lo] + [m for m in inside if m < hi and not passes(s, m)])
                bracket[s.name] = (lo, hi)
        best = {s.name: bracket[s.name][1] for s in shapes}

    curves = {}
    for s in shapes:
        ms = [m for m in range(top[s.name] + 1) if ev.key(s, length(s, m)) in ev.cache]
        st = [ev.stats(s, length(s, m)) for m in ms]
        curves[s.name] = TaperCurve(
            s, np.array([length(s, m) / HOURS_PER_DAY for m in ms]),
            *(np.array([x[k] for x in st], dtype=float) for k in ("p5", "median", "p95", "value")),
            np.array([x["censored"] for x in st], dtype=int))
    cands = [(length(s, best[s.name]), i, s) for i, s in enumerate(shapes) if best[s.name] is not None]
    if cands:
        L, _, s = min(cands, key=lambda c: (c[0], ev.stats(c[2], c[0])["value"], c[1]))
        value = ev.stats(s, L)["value"]
        return TaperDesign(True, L / HOURS_PER_DAY, s, value, ev.regimen(s, L), curves, threshold, percentile,
                           population.n, ev.runs, time.perf_counter() - t0, maint, max_days)
    return TaperDesign(False, None, None, math.nan, None, curves, threshold, percentile, population.n, ev.runs,
                       time.perf_counter() - t0, maint, max_days)


# ---------------------------------------------------------------------------
# Outputs


CSV_COLUMNS = ("shape", "steps", "length_days", "rebound_p5", "rebound_median", "rebound_p95",
               "rebound_percentile", "censored", "passes")


def format_csv(design: TaperDesign) -> str:
    """The curves as ``taper.csv`` (one row per shape and length evaluated)."""
    lines = [",".join(CSV_COLUMNS)]
    for kind, steps, L, p5, med, p95, val, cens, ok in design.rows():
        cells = [kind, str(steps)] + [f"{x:.10g}" for x in (L, p5, med, p95, val)] + [str(cens), str(ok).lower()]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def format_table(design: TaperDesign) -> str:
    """A short plain-text table of the curves (length, shape, percentile, median)."""
    q = f"p{design.percentile:g}"
    head = ("length_days", "shape", q, "median", "passes")
    rows = [(f"{L:g}", f"{k}-{n}" if L > 0 else "abrupt stop", f"{v:.4g}", f"{m:.4g}", "yes" if ok else "no")
            for k, n, L, _, m, _, v, _, ok in design.rows()]
    seen, uniq = set(), []
    for r in rows:
        if r[1] == "abrupt stop":
            if "abrupt" in seen:
                continue
            seen.add("abrupt")
        uniq.append(r)
    widths = [max(len(x) for x in col) for col in zip(head, *uniq)]
    fmt = lambda r: "  ".join(x.rjust(w) if i != 1 else x.ljust(w) for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(head)] + [fmt(r) for r in uniq])


def figure(design: TaperDesign):
    """Rebound percentile against taper length, with the 5th-95th band and the threshold line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.0), layout="constrained")
    ax = fig.subplots()
    for i, c in enumerate(design.curves.values()):
        color = f"C{i}"
        ax.fill_between(c.lengths_days, c.p5, np.minimum(c.p95, 10.0), color=color, alpha=0.15,
                        label=f"{c.shape.name}: 5th-95th percentile")
        ax.plot(c.lengths_days, c.median, color=color, ls="--", lw=1)
        ax.plot(c.lengths_days, np.minimum(c.value, 10.0), color=color, marker="o", ms=3,
                label=f"{c.shape.name}: {design.percentile:g}th percentile")
    ax.axhline(design.threshold, color="black", ls=":", label=f"threshold {design.threshold:g}")
    if design.found:
        ax.axvline(design.length_days, color="grey", lw=0.8)
    ax.set_xlabel("taper length (days)")
    ax.set_ylabel("rebound peak excitability (1 = untreated)")
    ax.legend(fontsize="small")
    title = (f"shortest passing: {design.length_days:g} days ({design.shape.name})" if design.found
             else "no taper length passes")
    ax.set_title(f"{title}; illustrative model, not for dosing decisions", fontsize="medium")
    return fig


def write_files(design: TaperDesign, folder: str) -> tuple[str, str]:
    """``taper.csv`` and ``taper.png`` in ``folder``, written together (atomically)."""
    import os

    from .run import write_together

    csv_path, png_path = os.path.join(folder, "taper.csv"), os.path.join(folder, "taper.png")
    text = format_csv(design)
    write_together(folder, [
        (csv_path, "w", lambda f: f.write(text)),
        (png_path, "wb", lambda f: figure(design).savefig(f.file, format="png", dpi=100)),
    ])
    return csv_path, png_path


def explore_design(dose_mg: float = 20.0, treatment_days: float = 28.0, threshold: float = 1.2,
                   percentile: float = 95.0, subjects: int = 100, steps: int = 4):
    """The designer on 8-hourly oral dosing, drawn (an explorer for :func:`pkpd.teaching.interactive`).

    ``subjects`` drawn with seed 1 and the default variability; both shapes
    with ``steps`` levels; returns :func:`figure` of the design.
    """
    from .population import sample_population

    pop = sample_population(int(subjects), seed=1, variability=True)
    design = design_taper((dose_mg, 8.0, treatment_days), population=pop, threshold=threshold,
                          percentile=percentile, shapes=[("linear", int(steps)), ("exponential", int(steps))])
    return figure(design)
