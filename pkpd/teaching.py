"""Helpers for the teaching notebooks in ``notebooks/``.

The notebooks define no functions of their own: anything they compute
beyond a line of arithmetic, and every figure a slider redraws, lives here
with a test (``tests/test_teaching.py``).  Three kinds of helper:

* **window statistics** on a :class:`~pkpd.simulate.SimulationResult`
  (:func:`over_window`, :func:`daily_mean`, :func:`percentile_bands`,
  :func:`fraction_reaching`, :func:`exposure_table`,
  :func:`rebound_summary`) and a plain-text :func:`format_table`;
* **small model questions** answered by simulation or by the model's own
  equations (:func:`typical_subjects`, :func:`occupancy_at`,
  :func:`concentration_for_occupancy`, :func:`matching_infusion_rate`);
* **explorers**: ``explore_*`` functions that simulate and return a
  :class:`matplotlib.figure.Figure`, and :func:`interactive`, which puts
  sliders on an explorer when ipywidgets is installed and otherwise draws
  it once with its defaults.

Units are the package's: h, mg, L, mg/L; infusion rates in mg/day.  Arrays
of readouts are shaped (N, T), one row per subject.  Figures are built
without :mod:`matplotlib.pyplot`, so a notebook shows each one exactly once
(as the cell's value or inside a widget) and nothing is left open.

For teaching and research only; never for dosing decisions.
"""

from __future__ import annotations

import inspect
import textwrap
import math
from typing import Callable, Mapping, Sequence

import numpy as np

from . import metrics, plotting
from .errors import ParameterError, RegimenError
from .model import individual_parameters, occupancy as _model_occupancy
from .parameters import Parameters, default_parameters
from .population import Population, sample_population
from .regimen import Dose, Infusion, Regimen, taper_over, titration
from .simulate import SimulationResult, simulate
from .units import HOURS_PER_DAY, TIME_TOLERANCE_H, UM_PER_MG_PER_L

__all__ = [
    "STATISTICS",
    "concentration_for_occupancy",
    "daily_mean",
    "explore_high_dose",
    "explore_kidneys",
    "explore_occupancy",
    "explore_oral",
    "explore_taper",
    "explore_tolerance",
    "exposure_table",
    "format_table",
    "fraction_reaching",
    "interactive",
    "matching_infusion_rate",
    "occupancy_at",
    "over_window",
    "percentile_bands",
    "rebound_summary",
    "typical_subjects",
]

#: Statistics :func:`over_window` knows.
STATISTICS = ("mean", "max", "min")

#: Plasma level reported as toxic in renal failure, mg/L (Brvar 2007).
TOXIC_PLASMA_MG_PER_L = metrics.TOXIC_PLASMA_MG_PER_L


# ---------------------------------------------------------------------------
# Window statistics


def _window(result: SimulationResult, start_h: float | None, end_h: float | None) -> tuple[float, float]:
    t = result.time_h
    a = float(t[0]) if start_h is None else float(start_h)
    b = float(t[-1]) if end_h is None else float(end_h)
    if not (b > a):
        raise ParameterError(f"end_h: must be > start_h; got start_h={a!r}, end_h={b!r}")
    if a < t[0] - TIME_TOLERANCE_H or b > t[-1] + TIME_TOLERANCE_H:
        raise ParameterError(
            f"start_h/end_h: the window [{a:g}, {b:g}] h must lie inside the run "
            f"[{t[0]:g}, {t[-1]:g}] h"
        )
    return a, b


def over_window(
    result: SimulationResult,
    readout: str,
    *,
    start_h: float | None = None,
    end_h: float | None = None,
    statistic: str = "mean",
) -> np.ndarray:
    """One number per subject: a readout's mean, maximum or minimum over a window.

    Parameters
    ----------
    result : SimulationResult
        A run with ``readout`` among its outputs.
    readout : str
        Readout name, e.g. ``"occupancy"`` (unit of that readout).
    start_h, end_h : float, optional
        The window, h; default the whole run.  Window ends between output
        times are interpolated linearly (:func:`pkpd.metrics.on_window`).
    statistic : {"mean", "max", "min"}
        ``"mean"`` is the time average (:func:`pkpd.metrics.time_average`:
        Simpson's rule on a uniform grid, trapezoid otherwise); ``"max"`` and
        ``"min"`` are :func:`pkpd.metrics.peak` / :func:`~pkpd.metrics.trough`
        refined between samples, as the summary's Cmax and Cmin.

    Returns
    -------
    ndarray (N,)
        In the unit of the readout.
    """
    if statistic not in STATISTICS:
        raise ParameterError(f"statistic: must be one of {', '.join(STATISTICS)}; got {statistic!r}")
    a, b = _window(result, start_h, end_h)
    tt, yy = metrics.on_window(result.time_h, result.readout(readout), a, b)
    if statistic == "mean":
        return metrics.time_average(tt, yy)
    return (metrics.peak if statistic == "max" else metrics.trough)(tt, yy, refine=True)[0]


def daily_mean(result: SimulationResult, readout: str) -> tuple[np.ndarray, np.ndarray]:
    """Time-averaged readout over each whole day of the run.

    Averaging over a day removes the ripple of oral dosing, which hides the
    slow drift of tolerance.

    Parameters
    ----------
    result : SimulationResult
        A run with ``readout`` among its outputs, at least one day long.
    readout : str
        Readout name.

    Returns
    -------
    day : ndarray (D,)
        Day numbers 1..D (day k covers [24(k-1), 24k] h).
    values : ndarray (N, D)
        Daily means, unit of the readout.
    """
    n_days = int(math.floor(result.time_h[-1] / HOURS_PER_DAY + 1e-9))
    if n_days < 1:
        raise ParameterError(f"result: needs a run of at least one day; got {result.time_h[-1]:g} h")
    values = np.stack(
        [
            over_window(result, readout, start_h=k * HOURS_PER_DAY, end_h=(k + 1) * HOURS_PER_DAY)
            for k in range(n_days)
        ],
        axis=1,
    )
    return np.arange(1, n_days + 1), values


def percentile_bands(result: SimulationResult, readout: str, percentiles: Sequence[float] = (5, 50, 95)) -> np.ndarray:
    """Percentiles across subjects at every output time (:func:`pkpd.metrics.percentile_bands`,
    the function the run figure draws its bands with).

    Parameters
    ----------
    result : SimulationResult
        A population run.
    readout : str
        Readout name.
    percentiles : sequence of float
        In [0, 100].

    Returns
    -------
    ndarray (P, T)
        One row per percentile, unit of the readout.
    """
    try:
        return metrics.percentile_bands(result.readout(readout), percentiles)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None


def fraction_reaching(
    result: SimulationResult,
    readout: str,
    threshold: float,
    *,
    start_h: float | None = None,
    end_h: float | None = None,
    statistic: str = "mean",
    above: bool = True,
) -> float:
    """Share of subjects whose readout reaches a level over a window.

    Parameters
    ----------
    result : SimulationResult
        A population run.
    readout : str
        Readout name.
    threshold : float
        The level, unit of the readout.
    start_h, end_h : float, optional
        The window, h (default the whole run).
    statistic : {"mean", "max", "min"}
        What of each subject's curve is compared (see :func:`over_window`):
        ``"mean"`` asks for the time average to reach the level, ``"min"``
        for the whole window to stay there (e.g. trough occupancy).
    above : bool
        Count subjects with statistic >= threshold (default), or <= it.

    Returns
    -------
    float
        Fraction in [0, 1].
    """
    v = over_window(result, readout, start_h=start_h, end_h=end_h, statistic=statistic)
    return float(np.mean(v >= threshold if above else v <= threshold))


def exposure_table(
    result: SimulationResult,
    *,
    start_h: float | None = None,
    end_h: float | None = None,
) -> dict[str, np.ndarray]:
    """Plasma exposure and mean occupancy of each subject over a window.

    The plasma numbers are :func:`pkpd.metrics.nca` of the samples on the
    window, the function ``summary.csv`` uses: on the same times (the
    summary's grid is :func:`pkpd.metrics.nca_times` over the window, e.g.
    ``pkpd.simulate(..., times_h=metrics.nca_times(a, b))``) they are the
    summary's numbers; on a coarser output grid they differ by that grid's
    sampling error only (for oral dosing at 0.25 h: Cmax about 0.1 %, AUC
    about 1e-5).

    Parameters
    ----------
    result : SimulationResult
        A run with ``plasma_mg_per_l`` and ``occupancy`` among its outputs.
    start_h, end_h : float, optional
        The window, h (default the whole run); for a steady-state dosing
        interval pass its start and end (the summary's
        ``*_last_interval`` metrics use the last one,
        :func:`pkpd.metrics.last_dosing_interval`).

    Returns
    -------
    dict of str to ndarray (N,)
        ``cmax_mg_per_l`` (highest plasma level, refined between samples),
        ``tmax_h`` (its time after ``start_h``), ``cmin_mg_per_l`` (lowest),
        ``auc_mg_h_per_l`` (area under the plasma curve, Simpson's rule on a
        uniform grid, mg*h/L), ``mean_occupancy`` (time average, 1).
    """
    a, b = _window(result, start_h, end_h)
    tt, cc = metrics.on_window(result.time_h, result.plasma_mg_per_l, a, b)
    r = metrics.nca(tt, cc)
    return {
        "cmax_mg_per_l": r["cmax"],
        "tmax_h": r["tmax_h"] - a,
        "cmin_mg_per_l": r["cmin"],
        "auc_mg_h_per_l": r["auc"],
        "mean_occupancy": over_window(result, "occupancy", start_h=a, end_h=b),
    }


def rebound_summary(result: SimulationResult, *, stop_h: float, threshold: float = metrics.REBOUND_THRESHOLD) -> dict[str, np.ndarray]:
    """Withdrawal rebound of each subject after the last dose or infusion stop.

    :func:`pkpd.metrics.rebound`, as in ``summary.csv``: the peak is the
    highest excitability after the low that follows ``stop_h`` and must be
    reached before the end of the run; a subject still rising at the end
    gets nan (run longer), never the end-of-run value.

    Parameters
    ----------
    result : SimulationResult
        A run with ``excitability`` among its outputs, continuing after
        ``stop_h``.
    stop_h : float
        Time of the last dose or infusion stop, h.
    threshold : float
        Excitability counted as a marked rebound (default
        :data:`pkpd.metrics.REBOUND_THRESHOLD`; 1 is the untreated baseline).

    Returns
    -------
    dict of str to ndarray (N,)
        ``peak_excitability`` (1), ``peak_time_h`` (h after ``stop_h``),
        ``onset_h`` (h after ``stop_h`` at which excitability first rises
        above 1, nan if never), ``hours_above_threshold`` (h after
        ``stop_h`` with excitability above ``threshold``).
    """
    a, _ = _window(result, stop_h, None)
    r = metrics.rebound(result.time_h, result.excitability, stop_h=a, threshold=threshold)
    return {
        "peak_excitability": r["peak"],
        "peak_time_h": r["peak_time_h"],
        "onset_h": r["onset_h"],
        "hours_above_threshold": r["hours_above"],
    }


def format_table(columns: Mapping[str, Sequence], *, formats: Mapping[str, str] | None = None) -> str:
    """A plain-text table, one column per entry, for ``print`` in a notebook.

    Parameters
    ----------
    columns : mapping of str to sequence
        Column name to values (all the same length); strings are shown as
        they are, numbers with ``formats[name]`` (default ``".3g"``).
    formats : mapping of str to str, optional
        Format specifications per column, e.g. ``{"auc": ".1f"}``.

    Returns
    -------
    str
        The table, header first, columns right-aligned.
    """
    formats = dict(formats or {})
    names = list(columns)
    lengths = {len(columns[k]) for k in names}
    if len(lengths) > 1:
        raise ParameterError(f"columns: must all have the same length; got lengths {sorted(lengths)}")
    cells = []
    for k in names:
        spec = formats.get(k, ".3g")
        cells.append([v if isinstance(v, str) else format(v, spec) for v in columns[k]])
    widths = [max([len(k)] + [len(c) for c in col]) for k, col in zip(names, cells)]
    lines = ["  ".join(k.rjust(w) for k, w in zip(names, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for row in zip(*cells):
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Small model questions


def typical_subjects(*, crcl_ml_min=100.0, weight_kg=70.0) -> Population:
    """Typical subjects (no variability) that differ only in their covariates.

    Parameters
    ----------
    crcl_ml_min : float or sequence of float
        Creatinine clearance, mL/min, one per subject (a scalar is repeated).
    weight_kg : float or sequence of float
        Body weight, kg, likewise.

    Returns
    -------
    Population
        ``n`` = the longer of the two sequences; subject i has the i-th values.
    """
    crcl = np.atleast_1d(np.asarray(crcl_ml_min, dtype=float))
    wt = np.atleast_1d(np.asarray(weight_kg, dtype=float))
    try:
        crcl, wt = np.broadcast_arrays(crcl, wt)
    except ValueError:
        raise ParameterError(
            f"crcl_ml_min/weight_kg: lengths must match (or one be a scalar); got {crcl.size} and {wt.size}"
        ) from None
    n = crcl.size
    base = sample_population(n)
    return Population(dict(base.eta), wt.copy(), crcl.copy(), base.subject_ids)


def occupancy_at(csf_mg_per_l, parameters: Parameters | None = None) -> np.ndarray:
    """Receptor occupancy by baclofen at a spinal biophase concentration.

    The model's own equation, theta = c / (1 + c + g) with c the
    concentration in units of Kd, for a typical subject.

    Parameters
    ----------
    csf_mg_per_l : float or array
        Biophase concentration C_csf, mg/L (>= 0).
    parameters : Parameters, optional
        Typical values (default :func:`default_parameters`).

    Returns
    -------
    ndarray
        Occupancy (1), the shape of ``csf_mg_per_l``.
    """
    p = parameters or default_parameters()
    ind = individual_parameters(p, sample_population(1))
    c = np.asarray(csf_mg_per_l, dtype=float)
    ind1 = {k: v[0] for k, v in ind.items()}
    return _model_occupancy(c * ind1["V_csf"], ind1)


def concentration_for_occupancy(occupancy, parameters: Parameters | None = None) -> np.ndarray:
    """Biophase concentration that gives an occupancy (inverse of :func:`occupancy_at`).

    Solving theta = c / (1 + c + g) for c gives c = theta (1 + g) / (1 - theta)
    (in units of Kd), so half occupancy needs c = 1 + g: endogenous GABA
    competes for the site.

    Parameters
    ----------
    occupancy : float or array
        Target occupancy, in [0, 1).
    parameters : Parameters, optional
        Typical values (default :func:`default_parameters`).

    Returns
    -------
    ndarray
        C_csf, mg/L.
    """
    p = parameters or default_parameters()
    th = np.asarray(occupancy, dtype=float)
    if np.any((th < 0) | (th >= 1)) or not np.all(np.isfinite(th)):
        raise ParameterError(f"occupancy: must be in [0, 1); got {occupancy!r}")
    c = th * (1.0 + p.g) / (1.0 - th)
    return c * p.Kd / UM_PER_MG_PER_L


def matching_infusion_rate(
    target: float,
    *,
    readout: str = "occupancy",
    route: str = "intrathecal_infusion",
    parameters: Parameters | None = None,
    days: float = 5.0,
    bracket_mg_per_day: tuple[float, float] = (1e-4, 5e3),
    rtol: float = 1e-6,
) -> float:
    """Constant infusion rate whose steady-state level of a readout equals ``target``.

    The infusion runs for ``days`` days in a typical subject; the mean of the
    readout over the last day is matched to ``target`` by bisection on the
    logarithm of the rate (the readout must rise with the rate, as plasma,
    CSF and occupancy do).

    Parameters
    ----------
    target : float
        Level to match, unit of ``readout`` (e.g. the mean occupancy of an
        oral regimen at steady state).
    readout : str
        Readout name (default ``"occupancy"``).
    route : {"intrathecal_infusion", "iv_infusion"}
        Where the infusion goes.
    parameters : Parameters, optional
        Typical values (default :func:`default_parameters`).
    days : float
        Length of the infusion, days (>= 2; long enough to reach steady state).
    bracket_mg_per_day : (float, float)
        Search interval of the rate, mg/day.
    rtol : float
        Relative tolerance on the rate.

    Returns
    -------
    float
        Infusion rate, mg/day.
    """
    if days < 2:
        raise ParameterError(f"days: must be >= 2 (one day to settle, one to average); got {days!r}")
    duration = days * HOURS_PER_DAY

    def level(rate: float) -> float:
        reg = Regimen(infusions=(Infusion(route, rate_mg_per_day=rate, start_h=0.0, stop_h=duration),))
        res = simulate(reg, duration_h=duration, parameters=parameters, output_step_h=1.0, outputs=(readout,))
        return float(over_window(res, readout, start_h=duration - HOURS_PER_DAY, end_h=duration)[0])

    lo, hi = (math.log(v) for v in bracket_mg_per_day)
    f_lo, f_hi = level(math.exp(lo)) - target, level(math.exp(hi)) - target
    if f_lo > 0 or f_hi < 0:
        raise ParameterError(
            f"target: {target!r} is outside the levels reached with rates in "
            f"{bracket_mg_per_day} mg/day ({f_lo + target:.4g} to {f_hi + target:.4g})"
        )
    while hi - lo > rtol:
        mid = 0.5 * (lo + hi)
        if level(math.exp(mid)) < target:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


# ---------------------------------------------------------------------------
# Figures and sliders


def _figure(nrows: int = 1, ncols: int = 1, *, width: float = 8.0, height: float = 3.2):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes.ravel()


def _legend_outside(ax, *, below: bool = False) -> None:
    """The axes' legend outside the panel (right of it, or under it), never over a curve."""
    if below:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize="small", frameon=False)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)


def interactive(fn: Callable, **sliders):
    """Sliders on an explorer when ipywidgets is installed; a static figure otherwise.

    Parameters
    ----------
    fn : callable
        An explorer (e.g. :func:`explore_taper`) whose keyword arguments all
        have defaults and which returns a figure.
    **sliders
        One entry per argument to vary, in ipywidgets' short form:
        ``(min, max, step)`` for a slider, a list for a drop-down.  The
        starting value is ``fn``'s default.

    Returns
    -------
    ipywidgets.interactive or matplotlib.figure.Figure
        The widget (the notebook shows it with its figure), or, without
        ipywidgets, ``fn()`` drawn once with its defaults.
    """
    sig = inspect.signature(fn)
    for name in sliders:
        if name not in sig.parameters:
            raise ParameterError(f"{name}: {fn.__name__} has no argument of this name")
        if sig.parameters[name].default is inspect.Parameter.empty:
            raise ParameterError(f"{name}: {fn.__name__} gives no default for it")
    try:
        import ipywidgets
    except ImportError:
        return fn()
    return ipywidgets.interactive(fn, **sliders)


def explore_oral(dose_mg: float = 10.0, every_h: float = 8.0, days: float = 3.0, route: str = "oral_ir"):
    """Plasma level on repeated oral dosing, against the first dose alone.

    Parameters
    ----------
    dose_mg : float
        Amount per dose, mg.
    every_h : float
        Dosing interval, h.
    days : float
        Length of the run, days.
    route : {"oral_ir", "oral_er"}
        Immediate or extended release.

    Returns
    -------
    matplotlib.figure.Figure
        Plasma (mg/L) against time (h); the title gives the accumulation
        ratio (peak in the last interval over peak after the first dose).
    """
    duration = days * HOURS_PER_DAY
    regs = [Regimen((Dose(route, dose_mg, every_h=every_h),)), Regimen((Dose(route, dose_mg),))]
    res = simulate(regs, duration_h=duration, output_step_h=0.1, outputs=("plasma_mg_per_l",))
    c = res.plasma_mg_per_l
    last = regs[0].doses[0].times_h(duration)[-1]
    first = over_window(res, "plasma_mg_per_l", start_h=0.0, end_h=min(every_h, duration), statistic="max")[0]
    if last >= duration - TIME_TOLERANCE_H:  # the last dose lands at the end: use the interval before it
        last = max(last - every_h, 0.0)
    ss = over_window(res, "plasma_mg_per_l", start_h=last, end_h=min(last + every_h, duration), statistic="max")[0]
    fig, (ax,) = _figure()
    ax.plot(res.time_h, c[0], label=f"{dose_mg:g} mg every {every_h:g} h ({route})")
    ax.plot(res.time_h, c[1], "--", color="grey", label="first dose alone")
    ax.set_xlabel("time (h)")
    ax.set_ylabel("plasma (mg/L)")
    ax.set_ylim(bottom=0)
    plotting.toxic_line(ax)
    _legend_outside(ax)
    ax.set_title(f"peak in last interval / first peak = {ss / first:.2f}")
    return fig


def explore_occupancy(oral_mg_per_day: float = 60.0, intrathecal_mg_per_day: float = 0.4):
    """Oral dosing (three times a day) against an intrathecal infusion, for 3 days.

    Parameters
    ----------
    oral_mg_per_day : float
        Oral immediate-release daily amount, mg/day, given as three doses.
    intrathecal_mg_per_day : float
        Intrathecal infusion rate, mg/day.

    Returns
    -------
    matplotlib.figure.Figure
        Plasma and CSF (mg/L, log scale) and receptor occupancy (1) against
        time (h) for the two routes; the title gives the mean occupancy on
        day 3 of each.
    """
    duration = 3 * HOURS_PER_DAY
    regs = [
        Regimen((Dose("oral_ir", oral_mg_per_day / 3.0, every_h=8.0),)),
        Regimen(infusions=(Infusion("intrathecal_infusion", rate_mg_per_day=intrathecal_mg_per_day, start_h=0.0, stop_h=duration),)),
    ]
    res = simulate(regs, duration_h=duration, output_step_h=0.25, outputs=("plasma_mg_per_l", "csf_mg_per_l", "occupancy"))
    occ = over_window(res, "occupancy", start_h=duration - HOURS_PER_DAY, end_h=duration)
    fig, (ax1, ax2) = _figure(1, 2, width=10.0, height=3.6)
    for i, (label, colour) in enumerate(((f"oral {oral_mg_per_day:g} mg/day", "C0"), (f"intrathecal {intrathecal_mg_per_day:g} mg/day", "C3"))):
        ax1.plot(res.time_h, res.plasma_mg_per_l[i], color=colour, label=f"{label}: plasma")
        ax1.plot(res.time_h, res.csf_mg_per_l[i], "--", color=colour, label=f"{label}: CSF")
        ax2.plot(res.time_h, res.occupancy[i], color=colour, label=label)
    ax1.set_yscale("log")
    ax1.set_ylim(1e-4, 10)
    ax1.set_xlabel("time (h)")
    ax1.set_ylabel("concentration (mg/L)")
    plotting.toxic_line(ax1, float(np.max(res.plasma_mg_per_l)), label=False)
    ax2.set_xlabel("time (h)")
    ax2.set_ylabel("receptor occupancy")
    ax2.set_ylim(0, 1)
    handles, labels = ax1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize="small", frameon=False)
    ax2.set_title(f"mean occupancy on day 3: oral {occ[0]:.2f}, intrathecal {occ[1]:.2f}", fontsize="medium")
    return fig


def explore_tolerance(dose_mg: float = 20.0, days: float = 60.0, every_h: float = 8.0):
    """Months of steady oral dosing: relief fades as receptors and adaptation drift.

    Parameters
    ----------
    dose_mg : float
        Amount per dose, mg (oral immediate release, from day 0).
    days : float
        Length of the run, days (>= 2).
    every_h : float
        Dosing interval, h.

    Returns
    -------
    matplotlib.figure.Figure
        Daily mean excitability (1 = untreated), and daily mean receptor
        density R and counter-adaptation M + M2, against day.
    """
    duration = days * HOURS_PER_DAY
    res = simulate(
        Regimen((Dose("oral_ir", dose_mg, every_h=every_h),)),
        duration_h=duration,
        output_step_h=1.0,
        outputs=("excitability", "receptor_density", "adaptation"),
    )
    day, exc = daily_mean(res, "excitability")
    _, rd = daily_mean(res, "receptor_density")
    _, ad = daily_mean(res, "adaptation")
    fig, (ax1, ax2) = _figure(1, 2, width=10.0, height=3.6)
    ax1.plot(day, exc[0], "o-", ms=3)
    ax1.axhline(1.0, color="grey", lw=0.8)
    ax1.set_xlabel("day")
    ax1.set_ylabel("daily mean excitability")
    ax1.set_title(f"day 1: {exc[0, 0]:.3f}   day {day[-1]}: {exc[0, -1]:.3f}", fontsize="medium")
    ax2.plot(day, rd[0], label="receptor density R")
    ax2.plot(day, ad[0], label="counter-adaptation M + M2")
    ax2.set_xlabel("day")
    ax2.set_ylabel("relative to baseline")
    _legend_outside(ax2, below=True)
    fig.suptitle(f"{dose_mg:g} mg every {every_h:g} h")
    return fig


def explore_taper(taper_days: float = 14.0, steps: int = 7, dose_mg: float = 20.0):
    """Stopping after the label titration: a taper against an abrupt stop.

    Label titration to ``dose_mg`` every 8 h (5 mg steps every 3 days),
    held to day 21, then :func:`pkpd.taper_over` over ``taper_days``.

    Parameters
    ----------
    taper_days : float
        Taper length, days (0 is an abrupt stop).
    steps : int
        Number of equal taper steps.
    dose_mg : float
        Maintenance amount per dose, mg (a multiple of 5).

    Returns
    -------
    matplotlib.figure.Figure
        Excitability (1 = untreated, > 1 rebound) against day, abrupt stop in
        grey; the title gives the peak after the last dose of each.
    """
    start = 21 * HOURS_PER_DAY
    held = titration(5.0, dose_mg, hold_days=max(21.0 - 3.0 * dose_mg / 5.0, 0.0))
    try:
        regs = [held + taper_over(dose_mg, taper_days, steps=int(steps), start_h=start), held]
    except RegimenError as exc:  # a slider position that does not fit whole dosing intervals: say so
        fig, (ax,) = _figure(height=3.6)
        ax.axis("off")
        ax.text(0.5, 0.5, "\n".join(textwrap.wrap(str(exc), 90)), ha="center", va="center", fontsize="medium")
        return fig
    duration = start + (taper_days + 14.0) * HOURS_PER_DAY
    res = simulate(regs, duration_h=duration, output_step_h=1.0, outputs=("excitability",))
    peaks = [rebound_summary(res, stop_h=r.last_dose_h)["peak_excitability"][i] for i, r in enumerate(regs)]
    fig, (ax,) = _figure(height=3.6)
    ax.plot(res.time_h / HOURS_PER_DAY, res.excitability[1], color="grey", lw=1, label="abrupt stop on day 21")
    ax.plot(res.time_h / HOURS_PER_DAY, res.excitability[0], color="C2", label=f"taper over {taper_days:g} days ({int(steps)} steps)")
    ax.axhline(1.0, color="black", lw=0.6)
    ax.set_xlabel("day")
    ax.set_ylabel("excitability")
    _legend_outside(ax)
    ax.set_title(f"peak after last dose: taper {peaks[0]:.3f}, abrupt stop {peaks[1]:.3f}", fontsize="medium")
    return fig


def explore_kidneys(crcl_ml_min: float = 30.0, dose_mg: float = 10.0, every_h: float = 8.0, days: float = 7.0):
    """Plasma level with reduced kidney function against normal kidneys.

    Parameters
    ----------
    crcl_ml_min : float
        Creatinine clearance, mL/min.
    dose_mg : float
        Oral immediate-release amount per dose, mg.
    every_h : float
        Dosing interval, h.
    days : float
        Length of the run, days.

    Returns
    -------
    matplotlib.figure.Figure
        Plasma (mg/L) against day for the chosen CrCl and for 100 mL/min, with
        the 0.7 mg/L level reported as toxic in renal failure (Brvar 2007);
        the title gives the steady-state AUC ratio.
    """
    duration = days * HOURS_PER_DAY
    reg = Regimen((Dose("oral_ir", dose_mg, every_h=every_h),))
    res = simulate(reg, duration_h=duration, population=typical_subjects(crcl_ml_min=[crcl_ml_min, 100.0]), output_step_h=0.25, outputs=("plasma_mg_per_l", "occupancy"))
    last = reg.doses[0].times_h(duration)
    last = last[last <= duration - every_h + TIME_TOLERANCE_H][-1]
    auc = exposure_table(res, start_h=last, end_h=last + every_h)["auc_mg_h_per_l"]
    fig, (ax,) = _figure(height=3.6)
    ax.plot(res.time_h / HOURS_PER_DAY, res.plasma_mg_per_l[1], color="grey", label="CrCl 100 mL/min")
    ax.plot(res.time_h / HOURS_PER_DAY, res.plasma_mg_per_l[0], color="C3", label=f"CrCl {crcl_ml_min:g} mL/min")
    ax.set_xlabel("day")
    ax.set_ylabel("plasma (mg/L)")
    ax.set_ylim(bottom=0)
    plotting.toxic_line(ax)
    _legend_outside(ax)
    ax.set_title(f"{dose_mg:g} mg every {every_h:g} h: steady-state AUC ratio {auc[0] / auc[1]:.2f}", fontsize="medium")
    return fig


def explore_high_dose(mg_per_day: float = 180.0, omega_cl: float = 0.25, crcl_ml_min: float = 100.0, n_subjects: int = 200):
    """A population on an oral daily dose (three doses a day) at steady state.

    Parameters
    ----------
    mg_per_day : float
        Daily amount, mg/day, as three immediate-release doses every 8 h.
    omega_cl : float
        Between-subject standard deviation of log clearance (0.25 is the
        spec's default; AUD studies report 21-56 %).
    crcl_ml_min : float
        Creatinine clearance of every subject, mL/min.
    n_subjects : int
        Population size (seed 7).

    Returns
    -------
    matplotlib.figure.Figure
        5th-95th percentile bands and medians of plasma (mg/L, with the
        0.7 mg/L line) and occupancy on day 5; the title gives the share of
        subjects whose plasma exceeds 0.7 mg/L on that day.
    """
    duration = 5 * HOURS_PER_DAY
    pop = sample_population(int(n_subjects), seed=7, variability=True, crcl_ml_min=crcl_ml_min, omega={"CL": omega_cl})
    reg = Regimen((Dose("oral_ir", mg_per_day / 3.0, every_h=8.0),))
    res = simulate(reg, duration_h=duration, population=pop, times_h=np.arange(96.0, 120.0 + 1e-9, 0.25), outputs=("plasma_mg_per_l", "occupancy"))
    above = fraction_reaching(res, "plasma_mg_per_l", TOXIC_PLASMA_MG_PER_L, statistic="max")
    fig, (ax1, ax2) = _figure(1, 2, width=10.0, height=3.6)
    for ax, name, label in ((ax1, "plasma_mg_per_l", "plasma (mg/L)"), (ax2, "occupancy", "receptor occupancy")):
        lo, mid, hi = percentile_bands(res, name)
        ax.fill_between(res.time_h - 96.0, lo, hi, alpha=0.3, label="5th-95th percentile")
        ax.plot(res.time_h - 96.0, mid, label="median")
        ax.set_xlabel("hours into day 5")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
    plotting.toxic_line(ax1)
    handles, labels = ax1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize="small", frameon=False)
    ax2.set_ylim(0, 1)
    fig.suptitle(f"{mg_per_day:g} mg/day, CL variability {omega_cl:g}: {100 * above:.0f} % of subjects above 0.7 mg/L")
    return fig
