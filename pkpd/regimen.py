"""Doses, infusions and regimens, with builders for titrations and tapers.

Times in hours (h), amounts in mg; an infusion rate is given with its unit,
``rate_mg_per_day`` (the clinic's unit) or ``rate_mg_per_h`` (the core's).  A
regimen is immutable and says nothing about who receives it: bioavailability
and absorption lag are the subject's, applied by the model.

Every rule lives here, in the constructors and builders: a scenario file is
read by calling them, so a file and a Python script are refused alike.
Messages read ``field: rule; got value`` with the caller's argument names.

Bounds (far beyond any real regimen; they refuse values that would only
overflow, never a plausible one):

- an amount per dose is at most :data:`MAX_AMOUNT_MG` (10 g: twenty times the
  largest doses used in alcohol use disorder, above reported overdoses);
- an infusion rate is at most :data:`MAX_RATE_MG_PER_DAY` (10 g/day);
- a time is at most :data:`MAX_TIME_H` (100 years);
- a dosing interval is at least :data:`MIN_INTERVAL_H` (3.6 s: closer doses
  are one bolus for any absorption or distribution rate of the model);
- a titration or taper has at most :data:`MAX_LEVELS` dose levels.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .errors import OverlapWarning, RegimenError, show
from .units import HOURS_PER_DAY

#: Routes of discrete doses and the depot each one fills.
DOSE_ROUTES = ("oral_ir", "oral_er", "iv_bolus", "intrathecal_bolus")
#: Routes of zero-order infusions.
INFUSION_ROUTES = ("iv_infusion", "intrathecal_infusion")

#: Largest amount per dose, mg (10 g).
MAX_AMOUNT_MG = 10_000.0
#: Largest infusion rate, mg/day (10 g/day).
MAX_RATE_MG_PER_DAY = 10_000.0
#: Latest time and longest interval, h (100 years).
MAX_TIME_H = 876_000.0
#: Shortest dosing interval, h (3.6 s).
MIN_INTERVAL_H = 1e-3
#: Most dose levels one titration or taper may have.
MAX_LEVELS = 1000


def _fmt(x: float) -> str:
    """A number quoted in a rule: 48.0 -> '48'."""
    return f"{x:.6g}"


def _invalid(name: str, rule: str, value) -> RegimenError:
    return RegimenError(f"{name}: {rule}; got {show(value)}")


def _number(name: str, value, rule: str, ok, high: float | None = None, why: str = "") -> float:
    """``value`` as a finite float satisfying ``ok`` (``rule`` in words) and <= ``high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _invalid(name, "must be a number", value)
    try:
        x = float(value)
    except OverflowError:  # an integer beyond the float range
        x = math.inf if value > 0 else -math.inf
    if not (math.isfinite(x) and ok(x)):
        raise _invalid(name, f"must be finite and {rule}", value)
    if high is not None and x > high:
        raise _invalid(name, f"must be <= {_fmt(high)} ({why})", value)
    return x


def _amount(name: str, value) -> float:
    return _number(name, value, "> 0", lambda v: v > 0, MAX_AMOUNT_MG, "10 g, pkpd's largest dose")


def _time(name: str, value, rule: str = ">= 0", ok=lambda v: v >= 0) -> float:
    return _number(name, value, rule, ok, MAX_TIME_H, "100 years")


def _interval(name: str, value) -> float:
    x = _time(name, value, "> 0", lambda v: v > 0)
    if x < MIN_INTERVAL_H:
        raise _invalid(name, f"must be >= {_fmt(MIN_INTERVAL_H)} (3.6 s, pkpd's shortest dosing interval)", value)
    return x


def _days(name: str, value, rule: str, ok) -> float:
    return _number(name, value, rule, ok, MAX_TIME_H / HOURS_PER_DAY, "100 years")


def _integer(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise _invalid(name, f"must be an integer >= {low}", value)
    if high is not None and value > high:
        raise _invalid(name, f"must be an integer <= {high}", value)
    return int(value)


def _route(value, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        hint = ""
        if value in INFUSION_ROUTES:
            hint = f"; {value} belongs in an Infusion ([[infusions]])"
        elif value in DOSE_ROUTES:
            hint = f"; {value} belongs in a Dose ([[doses]])"
        raise RegimenError(f"route: unknown route {show(value)} (expected one of {', '.join(allowed)}){hint}")
    return value


@dataclass(frozen=True)
class Dose:
    """A dose, or a block of equal doses at a fixed interval.

    Parameters
    ----------
    route : str
        One of :data:`DOSE_ROUTES`.
    amount_mg : float
        Amount per dose, mg, in (0, :data:`MAX_AMOUNT_MG`] (before
        bioavailability).
    at_h : float
        Time of the first dose, h, in [0, :data:`MAX_TIME_H`].
    every_h : float or None
        Interval between doses, h, in [:data:`MIN_INTERVAL_H`,
        :data:`MAX_TIME_H`].  Without ``count`` the dose repeats until the
        end of the run.
    count : int or None
        Total number of doses including the first, >= 1 (default 1, or
        "until the end" when ``every_h`` is given).
    steady_state : bool
        The subject arrives at ``at_h`` at the steady state of this block's
        regimen (``amount_mg`` every ``every_h``, for ever), then the
        block's doses follow from ``at_h`` (a chronic patient).  Needs
        ``every_h``.  The rules are those of SS = 1 in docs/event-tables.md:
        every state, the slow receptor and adaptation states included, is
        set to the periodic steady state (the trough before the dose at
        ``at_h``, with any lag applied as for ordinary doses); what came
        before is forgotten (infusions running at ``at_h`` stop), while doses
        of other blocks at or after ``at_h`` still come.  Default False.
    """

    route: str
    amount_mg: float
    at_h: float = 0.0
    every_h: float | None = None
    count: int | None = None
    steady_state: bool = False

    def __post_init__(self) -> None:
        _route(self.route, DOSE_ROUTES)
        object.__setattr__(self, "amount_mg", _amount("amount_mg", self.amount_mg))
        object.__setattr__(self, "at_h", _time("at_h", self.at_h))
        if self.every_h is not None:
            object.__setattr__(self, "every_h", _interval("every_h", self.every_h))
        if self.count is not None:
            object.__setattr__(self, "count", _integer("count", self.count, 1))
            if self.count > 1 and self.every_h is None:
                raise _invalid("count", f"{self.count} doses need every_h (the interval)", self.count)
        if not isinstance(self.steady_state, (bool, np.bool_)):
            raise _invalid("steady_state", "must be true or false", self.steady_state)
        object.__setattr__(self, "steady_state", bool(self.steady_state))
        if self.steady_state and self.every_h is None:
            raise _invalid("steady_state", "a steady state needs every_h (the interval of the regimen the subject "
                           "has been on)", self.steady_state)

    def times_h(self, duration_h: float) -> np.ndarray:
        """Dose times, h, up to and including ``duration_h``, shape (k,).

        Computed as ``at_h + k * every_h`` (multiplication, never repeated
        addition, so the 270th dose of an 8-hourly regimen is at 2152 h
        exactly).
        """
        if self.every_h is None:
            n = 1
        else:
            # only the doses that can land in the run (a huge count must not
            # allocate a huge array)
            n = max(int(math.floor((duration_h - self.at_h) / self.every_h + 1e-9)) + 2, 0)
            if self.count is not None:
                n = min(n, self.count)
        times = self.at_h + self.every_h * np.arange(n, dtype=float) if n > 1 else np.full(n, self.at_h)
        return times[times <= duration_h]


@dataclass(frozen=True, init=False)
class Infusion:
    """A zero-order infusion running on [start_h, stop_h).

    ``Infusion(route, rate_mg_per_day=0.3, start_h=0, stop_h=240)`` or, the
    same, ``rate_mg_per_h=0.0125``: exactly one rate, by keyword, so its
    unit is always written.

    Parameters
    ----------
    route : str
        One of :data:`INFUSION_ROUTES`.
    rate_mg_per_day, rate_mg_per_h : float
        Infusion rate, > 0 and at most :data:`MAX_RATE_MG_PER_DAY` mg/day;
        both attributes are set, the one not given being converted.
    start_h, stop_h : float
        Start (>= 0, default 0) and stop (> start_h) times, h, at most
        :data:`MAX_TIME_H`.
    """

    route: str
    rate_mg_per_day: float
    rate_mg_per_h: float
    start_h: float
    stop_h: float

    def __init__(self, route: str, *positional, rate_mg_per_day: float | None = None,
                 rate_mg_per_h: float | None = None, start_h: float = 0.0, stop_h: float | None = None) -> None:
        if positional:
            raise _invalid("rate", "give the rate by keyword with its unit, rate_mg_per_day=... or "
                           "rate_mg_per_h=..., and start_h=..., stop_h=... by keyword", positional)
        _route(route, INFUSION_ROUTES)
        if (rate_mg_per_day is None) == (rate_mg_per_h is None):
            given = "both" if rate_mg_per_day is not None else "neither"
            raise RegimenError(f"rate_mg_per_day: give exactly one of rate_mg_per_day and rate_mg_per_h; got {given}")
        top = MAX_RATE_MG_PER_DAY
        if rate_mg_per_day is not None:
            per_day = _number("rate_mg_per_day", rate_mg_per_day, "> 0", lambda v: v > 0, top, "10 g/day")
            per_h = per_day / HOURS_PER_DAY
        else:
            why = f"{_fmt(top)} mg/day"
            per_h = _number("rate_mg_per_h", rate_mg_per_h, "> 0", lambda v: v > 0, top / HOURS_PER_DAY, why)
            per_day = per_h * HOURS_PER_DAY
        start = _time("start_h", start_h)
        if stop_h is None:
            raise RegimenError("stop_h: required (the time the infusion stops, h); got None")
        stop = _time("stop_h", stop_h, f"> start_h ({_fmt(start)})", lambda v: v > start)
        for name, value in (("route", route), ("rate_mg_per_day", per_day), ("rate_mg_per_h", per_h),
                            ("start_h", start), ("stop_h", stop)):
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class Span:
    """The time a builder's doses cover: [start_h, end_h), end one interval after the last dose."""

    label: str
    route: str
    start_h: float
    end_h: float

    def __str__(self) -> str:
        return f"{self.label} ({self.route} on [{_fmt(self.start_h)}, {_fmt(self.end_h)}) h)"


def overlaps(spans: Sequence[Span], others: Sequence[Span]) -> list[tuple[Span, Span]]:
    """Pairs (a from ``spans``, b from ``others``) on one route whose times overlap."""
    return [(a, b) for a in spans for b in others
            if a.route == b.route and a.start_h < b.end_h and b.start_h < a.end_h]


@dataclass(frozen=True)
class Regimen:
    """What one subject receives: any number of doses and infusions.

    ``spans`` records what the builders (:func:`titration`, :func:`taper`,
    :func:`taper_over`, :func:`stepped`) made; adding two regimens whose
    builders' doses overlap on one route warns (:class:`OverlapWarning`).
    """

    doses: tuple[Dose, ...] = ()
    infusions: tuple[Infusion, ...] = ()
    spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, kind in (("doses", Dose), ("infusions", Infusion), ("spans", Span)):
            items = getattr(self, name)
            if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
                raise RegimenError(f"{name}: must be a sequence of {kind.__name__} objects; got {show(items)}")
            items = tuple(items)
            for i, item in enumerate(items):
                if not isinstance(item, kind):
                    raise RegimenError(f"{name}[{i}]: expected a pkpd.{kind.__name__}; got {type(item).__name__}")
            object.__setattr__(self, name, items)

    def __add__(self, other: "Regimen") -> "Regimen":
        if not isinstance(other, Regimen):
            return NotImplemented
        for a, b in overlaps(self.spans, other.spans):
            warnings.warn(f"{a} overlaps {b}: their doses add", OverlapWarning, stacklevel=2)
        return Regimen(self.doses + other.doses, self.infusions + other.infusions, self.spans + other.spans)

    def dose_events(self, duration_h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every dose as three arrays of shape (k,): time (h), route index, amount (mg).

        Route index counts into :data:`DOSE_ROUTES`.  Doses after
        ``duration_h`` are dropped; the subject's lag is not applied here.
        """
        times, routes, amounts = [], [], []
        for d in self.doses:
            t = d.times_h(duration_h)
            times.append(t)
            routes.append(np.full(t.size, DOSE_ROUTES.index(d.route)))
            amounts.append(np.full(t.size, d.amount_mg))
        if not times:
            return np.zeros(0), np.zeros(0, int), np.zeros(0)
        return np.concatenate(times), np.concatenate(routes), np.concatenate(amounts)

    @property
    def last_dose_h(self) -> float | None:
        """Time of the last dose or infusion stop, h (None for an empty regimen).

        Open-ended repeats (``every_h`` without ``count``) have no last dose.
        """
        ends = []
        for d in self.doses:
            if d.every_h is not None and d.count is None:
                return None
            ends.append(d.at_h + (d.every_h or 0.0) * ((d.count or 1) - 1))
        ends += [i.stop_h for i in self.infusions]
        return max(ends) if ends else None

    def event_count(self, duration_h: float) -> int:
        """Doses and infusion changes up to ``duration_h``, counted without expanding them.

        What the resource estimate reads before any dose array is built.
        """
        total = 2 * len(self.infusions)
        for d in self.doses:
            if d.at_h > duration_h:
                continue
            n = 1 if d.every_h is None else math.floor((duration_h - d.at_h) / d.every_h + 1e-9) + 1
            total += n if d.count is None else min(n, d.count)
        return total


# ---------------------------------------------------------------------------
# Builders.  Each level lasts a whole number of dosing intervals, or the
# builder refuses: rounding would move doses (0.5-day steps of an 8-hourly
# dose used to put doses 4 h apart).


def _doses_per_level(name: str, value, level_h: float, every_h: float, formula: str, hint=lambda: "") -> int:
    """``level_h / every_h`` as a whole number >= 1, else an error on ``name``
    (``hint()`` adds what would fit)."""
    ratio = level_h / every_h
    k = round(ratio)
    if k >= 1 and abs(ratio - k) <= 1e-9 * ratio:
        return int(k)
    raise _invalid(name, f"must last a whole number of every_h = {_fmt(every_h)} h dosing intervals "
                         f"({formula} is {ratio:.6g}){hint()}", value)


def _levels(name: str, value, count: float) -> None:
    if count > MAX_LEVELS:
        raise _invalid(name, f"gives more than {MAX_LEVELS} dose levels", value)


def _build(label: str, route: str, amounts: Sequence[float], every_h: float, per_level: int,
           level_h: float, start_h: float) -> Regimen:
    doses = tuple(
        Dose(route, a, at_h=start_h + i * level_h, every_h=every_h, count=per_level)
        for i, a in enumerate(amounts)
    )
    if not doses:
        return Regimen()
    end_h = start_h + (len(doses) - 1) * level_h + per_level * every_h
    return Regimen(doses, spans=(Span(label, route, start_h, end_h),))


def stepped(
    amounts_mg: Iterable[float],
    *,
    every_h: float,
    step_h: float,
    start_h: float = 0.0,
    route: str = "oral_ir",
) -> Regimen:
    """Doses that change in steps: ``amounts_mg[i]`` every ``every_h`` for ``step_h``.

    Step i starts at ``start_h + i * step_h`` and holds ``step_h / every_h``
    doses, which must be a whole number.  The building block of titrations
    and tapers.
    """
    _route(route, DOSE_ROUTES)
    every_h = _interval("every_h", every_h)
    step = _time("step_h", step_h, "> 0", lambda v: v > 0)
    start_h = _time("start_h", start_h)
    amounts = [_amount(f"amounts_mg[{i}]", a) for i, a in enumerate(amounts_mg)]
    _levels("amounts_mg", f"{len(amounts)} amounts", len(amounts))
    per = _doses_per_level("step_h", step_h, step, every_h, "step_h / every_h")
    return _build("stepped doses", route, amounts, every_h, per, step, start_h)


def titration(
    from_mg: float = 5.0,
    to_mg: float = 20.0,
    *,
    step_mg: float = 5.0,
    every_h: float = 8.0,
    step_days: float = 3.0,
    hold_days: float = 0.0,
    start_h: float = 0.0,
    route: str = "oral_ir",
) -> Regimen:
    """Up-titration, then an optional hold at the target.

    Levels ``from_mg, from_mg + step_mg, ..., to_mg`` mg per dose (``to_mg``
    must be a whole number of steps above ``from_mg``), each every
    ``every_h`` hours for ``step_days`` days from ``start_h``, then ``to_mg``
    for ``hold_days`` more days.  ``step_days`` and ``hold_days`` must hold
    a whole number of dosing intervals.  The label titration (5 mg three
    times a day, +5 mg per dose every three days to 20 mg) is
    ``titration(5, 20)``; ``hold_days=9`` keeps 20 mg to day 21.
    """
    _route(route, DOSE_ROUTES)
    low = _amount("from_mg", from_mg)
    high = _amount("to_mg", to_mg)
    if high < low:
        raise _invalid("to_mg", f"must be >= from_mg ({_fmt(low)})", to_mg)
    step = _amount("step_mg", step_mg)
    every = _interval("every_h", every_h)
    step_d = _days("step_days", step_days, "> 0", lambda v: v > 0)
    hold_d = _days("hold_days", hold_days, ">= 0", lambda v: v >= 0)
    start = _time("start_h", start_h)
    steps = (high - low) / step
    _levels("step_mg", step_mg, steps + 1)
    if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
        raise _invalid("to_mg", f"must be from_mg ({_fmt(low)}) plus a whole number of step_mg ({_fmt(step)}) steps", to_mg)
    level_h = step_d * HOURS_PER_DAY
    per = _doses_per_level("step_days", step_days, level_h, every, "step_days * 24 / every_h")
    levels = [low + k * step for k in range(round(steps) + 1)]
    label = f"titration({_fmt(low)} -> {_fmt(high)} mg)"
    reg = _build(label, route, levels, every, per, level_h, start)
    if hold_d > 0:
        hold_h = hold_d * HOURS_PER_DAY
        n_hold = _doses_per_level("hold_days", hold_days, hold_h, every, "hold_days * 24 / every_h")
        hold = Dose(route, high, at_h=start + len(levels) * level_h, every_h=every, count=n_hold)
        span = Span(label, route, start, hold.at_h + n_hold * every)
        reg = Regimen(reg.doses + (hold,), spans=(span,))
    return reg


def taper(
    from_mg: float,
    *,
    step_mg: float = 5.0,
    every_h: float = 8.0,
    step_days: float = 3.0,
    start_h: float,
    route: str = "oral_ir",
) -> Regimen:
    """Down-taper that starts at ``start_h`` one step below ``from_mg``, then stops.

    ``taper(20, step_mg=5, step_days=3, start_h=t)`` gives 15, 10 and 5 mg per
    dose for three days each from ``t`` and nothing after ``t + 9 days``.
    ``step_mg`` must be below ``from_mg`` and ``step_days`` hold a whole
    number of dosing intervals.
    """
    _route(route, DOSE_ROUTES)
    top = _amount("from_mg", from_mg)
    step = _number("step_mg", step_mg, f"> 0 and < from_mg ({_fmt(top)})", lambda v: 0 < v < top)
    every = _interval("every_h", every_h)
    step_d = _days("step_days", step_days, "> 0", lambda v: v > 0)
    start = _time("start_h", start_h)
    _levels("step_mg", step_mg, top / step)
    level_h = step_d * HOURS_PER_DAY
    per = _doses_per_level("step_days", step_days, level_h, every, "step_days * 24 / every_h")
    levels = [top - k * step for k in range(1, int(top / step + 1e-9) + 1)]
    levels = [a for a in levels if a > 1e-12 * top]
    return _build(f"taper({_fmt(top)} mg by {_fmt(step)} mg)", route, levels, every, per, level_h, start)


def _fitting(over_days: float, steps: int, every_h: float) -> str:
    """What would fit: other step counts for these days, other days for these steps."""
    total = over_days * HOURS_PER_DAY / every_h
    ideas = []
    if abs(total - round(total)) <= 1e-9 * total and round(total) >= 1:
        n = round(total)
        divisors = [d for d in range(1, min(n, MAX_LEVELS) + 1) if n % d == 0]
        near = sorted(sorted(divisors, key=lambda d: (abs(d - steps), -d))[:4])
        words = ", ".join(map(str, near[:-1])) + (" or " if len(near) > 1 else "") + str(near[-1])
        ideas.append(f"steps = {words} fit{'s' * (len(near) == 1)} over_days = {_fmt(over_days)}")
    unit_h = steps * every_h  # over_days * 24 must be a multiple of this; prefer whole days
    mult = next((k for k in range(1, 1001) if abs(k * unit_h / 24 - round(k * unit_h / 24)) <= 1e-9), 1)
    unit_d = mult * unit_h / HOURS_PER_DAY
    fits = sorted({d for d in (math.floor(over_days / unit_d) * unit_d, math.ceil(over_days / unit_d) * unit_d) if d > 0})
    if fits:
        ideas.append(f"over_days = {' or '.join(_fmt(d) for d in fits)} fit{'s' * (len(fits) == 1)} steps = {steps}")
    return ": " + ", or ".join(ideas) if ideas else ""


def taper_over(
    from_mg: float,
    over_days: float,
    *,
    steps: int = 4,
    every_h: float = 8.0,
    start_h: float,
    route: str = "oral_ir",
) -> Regimen:
    """Taper from ``from_mg`` to zero over ``over_days`` days in ``steps`` equal steps.

    The dose per administration falls linearly: with ``steps=4`` it is 4/5,
    3/5, 2/5 and 1/5 of ``from_mg``, each for ``over_days / steps`` days from
    ``start_h``, then nothing.  Each step must hold a whole number of dosing
    intervals (the error says which steps or days would).  One line per
    taper length makes comparisons easy; ``over_days=0`` is an abrupt stop.
    """
    _route(route, DOSE_ROUTES)
    top = _amount("from_mg", from_mg)
    days = _days("over_days", over_days, ">= 0", lambda v: v >= 0)
    n = _integer("steps", steps, 1, MAX_LEVELS)
    every = _interval("every_h", every_h)
    start = _time("start_h", start_h)
    if days == 0:
        return Regimen()
    level_h = days * HOURS_PER_DAY / n
    per = _doses_per_level("over_days", over_days, level_h, every, "over_days * 24 / steps / every_h",
                           hint=lambda: _fitting(days, n, every))
    levels = [top * (n - k) / (n + 1) for k in range(n)]
    return _build(f"taper_over({_fmt(top)} mg over {_fmt(days)} days)", route, levels, every, per, level_h, start)
