"""Doses, infusions and regimens, with builders for titrations and tapers.

Times in hours (h), amounts in mg, infusion rates in mg/day at the interface
(the unit the clinic uses) and mg/h inside the core.  A regimen is immutable
and says nothing about who receives it: bioavailability and absorption lag
are the subject's, applied by the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .errors import RegimenError
from .units import HOURS_PER_DAY

#: Routes of discrete doses and the depot each one fills.
DOSE_ROUTES = ("oral_ir", "oral_er", "iv_bolus", "intrathecal_bolus")
#: Routes of zero-order infusions.
INFUSION_ROUTES = ("iv_infusion", "intrathecal_infusion")


def _check(field_name: str, value, rule: str, ok) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise RegimenError(f"{field_name}: must be a number; got {value!r}")
    if not (math.isfinite(value) and ok(value)):
        raise RegimenError(f"{field_name}: must be finite and {rule}; got {value!r}")


def _check_route(value, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise RegimenError(
            f"route: unknown route {value!r} (expected one of {', '.join(allowed)})"
        )


@dataclass(frozen=True)
class Dose:
    """A dose, or a block of equal doses at a fixed interval.

    Parameters
    ----------
    route : str
        One of :data:`DOSE_ROUTES`.
    amount_mg : float
        Amount per dose, mg, > 0 (before bioavailability).
    at_h : float
        Time of the first dose, h, >= 0.
    every_h : float or None
        Interval between doses, h, > 0.  Without ``count`` the dose repeats
        until the end of the run.
    count : int or None
        Total number of doses including the first (default 1, or "until the
        end" when ``every_h`` is given).
    """

    route: str
    amount_mg: float
    at_h: float = 0.0
    every_h: float | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        _check_route(self.route, DOSE_ROUTES)
        _check("amount_mg", self.amount_mg, "> 0", lambda v: v > 0)
        _check("at_h", self.at_h, ">= 0", lambda v: v >= 0)
        if self.every_h is not None:
            _check("every_h", self.every_h, "> 0", lambda v: v > 0)
        if self.count is not None:
            if isinstance(self.count, bool) or not isinstance(self.count, (int, np.integer)):
                raise RegimenError(f"count: must be an integer; got {self.count!r}")
            if self.count < 1:
                raise RegimenError(f"count: must be >= 1; got {self.count!r}")
            if self.count > 1 and self.every_h is None:
                raise RegimenError(f"count: {self.count} doses need every_h (the interval)")

    def times_h(self, duration_h: float) -> np.ndarray:
        """Dose times, h, up to and including ``duration_h``.

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
                n = min(n, int(self.count))
        times = (
            self.at_h + self.every_h * np.arange(n, dtype=float)
            if n > 1
            else np.full(n, float(self.at_h))
        )
        return times[times <= duration_h]


@dataclass(frozen=True)
class Infusion:
    """A zero-order infusion running on [start_h, stop_h).

    Parameters
    ----------
    route : str
        One of :data:`INFUSION_ROUTES`.
    rate_mg_per_day : float
        Infusion rate, mg/day, > 0.
    start_h, stop_h : float
        Start (>= 0) and stop (> start) times, h.
    """

    route: str
    rate_mg_per_day: float
    start_h: float
    stop_h: float

    def __post_init__(self) -> None:
        _check_route(self.route, INFUSION_ROUTES)
        _check("rate_mg_per_day", self.rate_mg_per_day, "> 0", lambda v: v > 0)
        _check("start_h", self.start_h, ">= 0", lambda v: v >= 0)
        _check("stop_h", self.stop_h, "> start_h", lambda v: v > self.start_h)

    @property
    def rate_mg_per_h(self) -> float:
        """Infusion rate, mg/h."""
        return self.rate_mg_per_day / HOURS_PER_DAY


@dataclass(frozen=True)
class Regimen:
    """What one subject receives: any number of doses and infusions."""

    doses: tuple[Dose, ...] = ()
    infusions: tuple[Infusion, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "doses", tuple(self.doses))
        object.__setattr__(self, "infusions", tuple(self.infusions))
        for d in self.doses:
            if not isinstance(d, Dose):
                raise RegimenError(f"doses: expected Dose objects; got {d!r}")
        for i in self.infusions:
            if not isinstance(i, Infusion):
                raise RegimenError(f"infusions: expected Infusion objects; got {i!r}")

    def __add__(self, other: "Regimen") -> "Regimen":
        return Regimen(self.doses + other.doses, self.infusions + other.infusions)

    def dose_events(self, duration_h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every dose as three arrays: time (h), route index, amount (mg).

        Route index counts into :data:`DOSE_ROUTES`.  Doses after
        ``duration_h`` are dropped; the subject's lag is not applied here.
        """
        times, routes, amounts = [], [], []
        for d in self.doses:
            t = d.times_h(duration_h)
            times.append(t)
            routes.append(np.full(t.size, DOSE_ROUTES.index(d.route)))
            amounts.append(np.full(t.size, float(d.amount_mg)))
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

        What the resource estimate reads before any dose array is built (a
        dose every microsecond for a month is refused, not allocated).
        """
        total = 2 * len(self.infusions)
        for d in self.doses:
            if d.at_h > duration_h:
                continue
            n = 1 if d.every_h is None else math.floor((duration_h - d.at_h) / d.every_h + 1e-9) + 1
            total += n if d.count is None else min(n, d.count)
        return total


def stepped(
    amounts_mg: Iterable[float],
    *,
    every_h: float,
    step_h: float,
    start_h: float = 0.0,
    route: str = "oral_ir",
) -> Regimen:
    """Doses that change in steps: ``amounts_mg[i]`` every ``every_h`` for ``step_h``.

    Step i starts at ``start_h + i * step_h``.  Each step holds
    ``round(step_h / every_h)`` doses.  The building block of titrations and
    tapers.
    """
    _check("every_h", every_h, "> 0", lambda v: v > 0)
    _check("step_h", step_h, ">= every_h", lambda v: v >= every_h)
    per_step = int(round(step_h / every_h))
    doses = tuple(
        Dose(route, float(a), at_h=start_h + i * step_h, every_h=every_h, count=per_step)
        for i, a in enumerate(amounts_mg)
        if a > 0
    )
    return Regimen(doses)


def _levels(first_mg: float, last_mg: float, step_mg: float) -> list[float]:
    _check("step_mg", step_mg, "> 0", lambda v: v > 0)
    n = int(math.floor(abs(last_mg - first_mg) / step_mg + 1e-9))
    sign = 1.0 if last_mg >= first_mg else -1.0
    return [first_mg + sign * k * step_mg for k in range(n + 1)]


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

    The label titration (5 mg three times a day, +5 mg per dose every three
    days to 20 mg) is ``titration(5, 20)``; ``hold_days=12`` keeps 20 mg for
    12 more days after its own three-day step.
    """
    levels = _levels(from_mg, to_mg, step_mg)
    reg = stepped(levels, every_h=every_h, step_h=step_days * HOURS_PER_DAY, start_h=start_h, route=route)
    if hold_days > 0:
        hold_start = start_h + len(levels) * step_days * HOURS_PER_DAY
        reg = reg + stepped([levels[-1]], every_h=every_h, step_h=hold_days * HOURS_PER_DAY, start_h=hold_start, route=route)
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
    """
    levels = [a for a in _levels(from_mg, 0.0, step_mg)[1:] if a > 1e-12]
    return stepped(levels, every_h=every_h, step_h=step_days * HOURS_PER_DAY, start_h=start_h, route=route)


def taper_over(
    from_mg: float,
    days: float,
    *,
    steps: int = 4,
    every_h: float = 8.0,
    start_h: float,
    route: str = "oral_ir",
) -> Regimen:
    """Taper from ``from_mg`` to zero over ``days`` days in ``steps`` equal steps.

    The dose per administration falls linearly: with ``steps=4`` it is 4/5,
    3/5, 2/5 and 1/5 of ``from_mg``, each for ``days / steps`` days from
    ``start_h``, then nothing.  One line per taper length makes comparisons
    easy; ``days=0`` is an abrupt stop.
    """
    if days == 0:
        return Regimen()
    _check("days", days, ">= 0", lambda v: v >= 0)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise RegimenError(f"steps: must be an integer >= 1; got {steps!r}")
    levels = [from_mg * (steps - k) / (steps + 1) for k in range(steps)]
    return stepped(levels, every_h=every_h, step_h=days * HOURS_PER_DAY / steps, start_h=start_h, route=route)
