"""Summary metrics of a run: pure functions, arrays in, numbers out.

Every function here takes times in hours and readouts as arrays shaped
``(..., T)`` (one row per subject, usually ``(N, T)``) and returns one value
per row.  Nothing here simulates, reads files or prints; :mod:`pkpd.run`
chooses the evaluation grid (independent of the scenario's output step) and
calls these functions, and :mod:`pkpd.io` writes what they return.

A value that cannot be computed (no repeated dosing, no stop, too short a
run after the stop) is ``nan``; ``summary.csv`` writes it as an empty cell.

The metrics of ``summary.csv``, per subject (see :data:`METRICS`):

========================================  ======  ==========================================
name                                      unit    meaning
========================================  ======  ==========================================
cmax_last_interval                        mg/L    highest plasma level in the last dosing
                                                  interval (see :func:`last_dosing_interval`)
tmax_last_interval                        h       its time after the dose opening the interval
cmin_last_interval                        mg/L    lowest plasma level in that interval
auc_last_interval                         mg*h/L  area under the plasma curve over it
terminal_half_life                        h       log-linear terminal slope of plasma after
                                                  the last dose or infusion stop
peak_occupancy                            1       highest receptor occupancy by baclofen
receptor_density_nadir                    1       lowest receptor density (baseline 1)
lowest_excitability                       1       best relief (baseline 1)
peak_rebound_excitability                 1       highest excitability after the last dose
                                                  (> 1 is a withdrawal rebound)
peak_rebound_time_after_last_dose         h       when it happens, after the last dose
hours_excitability_above_1.2              h       time spent with excitability > 1.2
hours_plasma_above_0.7_mg_per_l           h       time spent with plasma > 0.7 mg/L
========================================  ======  ==========================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

#: Excitability above which a rebound is counted (1 is the untreated baseline).
REBOUND_THRESHOLD = 1.2
#: Plasma level reported as toxic in renal failure, mg/L (literature.md).
TOXIC_PLASMA_MG_PER_L = 0.7


@dataclass(frozen=True)
class MetricInfo:
    """One row of the metric table: machine name, unit and meaning."""

    name: str
    unit: str
    meaning: str
    label: str = ""


#: The metrics of ``summary.csv``, in the order written.
METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("cmax_last_interval", "mg/L", "highest plasma level in the last dosing interval",
               "Cmax, last dosing interval"),
    MetricInfo("tmax_last_interval", "h", "time of that peak after the dose opening the interval",
               "Tmax, after that dose"),
    MetricInfo("cmin_last_interval", "mg/L", "lowest plasma level in the last dosing interval",
               "Cmin, last dosing interval"),
    MetricInfo("auc_last_interval", "mg*h/L", "area under the plasma curve over the last dosing interval",
               "AUC, last dosing interval"),
    MetricInfo("terminal_half_life", "h", "plasma half-life from the terminal log-linear slope after the last dose",
               "terminal half-life"),
    MetricInfo("peak_occupancy", "1", "highest receptor occupancy by baclofen", "peak receptor occupancy"),
    MetricInfo("receptor_density_nadir", "1", "lowest functional receptor density (baseline 1)",
               "receptor density nadir"),
    MetricInfo("lowest_excitability", "1", "lowest excitability: best relief (baseline 1)", "lowest excitability"),
    MetricInfo("peak_rebound_excitability", "1", "highest excitability after the last dose (> 1 is rebound)",
               "peak excitability after last dose"),
    MetricInfo("peak_rebound_time_after_last_dose", "h", "time of that peak after the last dose",
               "  reached, after last dose"),
    MetricInfo(f"hours_excitability_above_{REBOUND_THRESHOLD:g}", "h", "hours with excitability above the rebound line",
               f"hours with excitability > {REBOUND_THRESHOLD:g}"),
    MetricInfo(f"hours_plasma_above_{TOXIC_PLASMA_MG_PER_L:g}_mg_per_l", "h",
               "hours with plasma above the level reported as toxic in renal failure",
               f"hours with plasma > {TOXIC_PLASMA_MG_PER_L:g} mg/L"),
)

METRIC_NAMES = tuple(m.name for m in METRICS)


# ---------------------------------------------------------------------------
# Windows


def last_dosing_interval(dose_times_h, duration_h: float) -> tuple[float, float] | None:
    """The last dosing interval before any stop, as ``(start_h, end_h)``.

    With distinct dose times ``d_0 < ... < d_m`` (every route, doses after
    ``duration_h`` ignored) and ``tau = d_m - d_(m-1)``, the interval is
    ``[d_m, d_m + tau]``: the last dose and the interval it would have
    opened had dosing continued (so after a stop it is the last interval of
    the regimen, and at steady state it is a steady-state interval).  When
    the run ends before ``d_m + tau``, it is ``[d_(m-1), d_m]``.

    Returns ``None`` with fewer than two distinct dose times (no repeated
    dosing), in h.
    """
    d = np.unique(np.asarray(dose_times_h, dtype=float))
    d = d[d <= duration_h + 1e-9]
    if d.size >= 2:  # merge doses closer than the node tolerance
        d = d[np.concatenate([[True], np.diff(d) > 1e-9])]
    if d.size < 2:
        return None
    tau = float(d[-1] - d[-2])
    if d[-1] + tau <= duration_h + 1e-9:
        return float(d[-1]), float(min(d[-1] + tau, duration_h))
    return float(d[-2]), float(d[-1])


def window(t_h, start_h: float, end_h: float) -> slice:
    """The slice of the sorted times ``t_h`` (h) that lie in [start_h, end_h]."""
    t = np.asarray(t_h, dtype=float)
    i0 = int(np.searchsorted(t, start_h - 1e-9, side="left"))
    i1 = int(np.searchsorted(t, end_h + 1e-9, side="right"))
    return slice(i0, i1)


# ---------------------------------------------------------------------------
# Areas, extremes, time above a level


def auc_trapezoid(t_h, y) -> np.ndarray:
    """Area under ``y`` by the trapezoidal rule.

    Parameters
    ----------
    t_h : array (T,)
        Sorted times, h.
    y : array (..., T)
        Values (e.g. mg/L).

    Returns
    -------
    array (...)
        Area in the unit of ``y`` times h (e.g. mg*h/L); 0 for a single point.
    """
    t = np.asarray(t_h, dtype=float)
    y = np.asarray(y, dtype=float)
    if t.size < 2:
        return np.zeros(y.shape[:-1])
    dt = np.diff(t)
    return np.sum(0.5 * dt * (y[..., 1:] + y[..., :-1]), axis=-1)


def auc_simpson(t_h, y) -> np.ndarray:
    """Area under ``y`` by composite Simpson's rule on a uniform grid.

    Exact for cubics; error O(h**4) for smooth curves.  Falls back to
    :func:`auc_trapezoid` when the grid is not uniform or has an odd number
    of intervals.  Units as :func:`auc_trapezoid` (e.g. mg*h/L).
    """
    t = np.asarray(t_h, dtype=float)
    y = np.asarray(y, dtype=float)
    n_int = t.size - 1
    if n_int < 2 or n_int % 2:
        return auc_trapezoid(t, y)
    h = np.diff(t)
    if np.max(np.abs(h - h.mean())) > 1e-9 * max(1.0, abs(h.mean())):
        return auc_trapezoid(t, y)
    hm = (t[-1] - t[0]) / n_int
    return hm / 3.0 * (
        y[..., 0] + y[..., -1] + 4.0 * np.sum(y[..., 1:-1:2], axis=-1) + 2.0 * np.sum(y[..., 2:-1:2], axis=-1)
    )


def _refine(t, y, i, sign):
    """Vertex of the parabola through the samples around index ``i`` (per row).

    ``sign`` is +1 for a maximum and -1 for a minimum.  The refined value is
    used only when the sample is an interior local extremum and the vertex
    lies between its neighbours; otherwise the sample itself is returned.
    """
    rows = np.arange(y.shape[0])
    val = y[rows, i].copy()
    at = t[i].copy()
    inner = (i > 0) & (i < t.size - 1)
    if not np.any(inner):
        return val, at
    r = rows[inner]
    j = i[inner]
    t0, t1, t2 = t[j - 1], t[j], t[j + 1]
    y0, y1, y2 = y[r, j - 1], y[r, j], y[r, j + 1]
    # Newton form of the interpolating parabola
    d01 = (y1 - y0) / (t1 - t0)
    d12 = (y2 - y1) / (t2 - t1)
    a = (d12 - d01) / (t2 - t0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tv = 0.5 * (t0 + t1) - d01 / (2.0 * a)
        yv = y0 + d01 * (tv - t0) + a * (tv - t0) * (tv - t1)
    ok = (sign * a < 0) & (tv > t0) & (tv < t2) & np.isfinite(yv) & (sign * (yv - y1) >= 0)
    # An exact parabola never lifts its vertex by more than a quarter of the
    # larger neighbour difference; more means a kink or jump (a dose) nearby.
    ok &= sign * (yv - y1) <= 0.25 * np.maximum(np.abs(y1 - y0), np.abs(y2 - y1))
    val[np.flatnonzero(inner)[ok]] = yv[ok]
    at[np.flatnonzero(inner)[ok]] = tv[ok]
    return val, at


def peak(t_h, y, *, refine: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Highest value of each row and when it happens.

    Parameters
    ----------
    t_h : array (T,)
        Sorted times, h.
    y : array (N, T)
        Values.
    refine : bool
        Place the peak at the vertex of the parabola through the sample and
        its two neighbours (error O(h**3) instead of O(h**2) for a smooth
        curve).  Use only for continuous readouts (not plasma after an IV
        bolus).

    Returns
    -------
    value : array (N,)
        Peak value, unit of ``y``; nan for a row without finite values.
    time_h : array (N,)
        Time of the peak, h.
    """
    return _extreme(t_h, y, refine, +1)


def trough(t_h, y, *, refine: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Lowest value of each row and when it happens (as :func:`peak`)."""
    return _extreme(t_h, y, refine, -1)


def _extreme(t_h, y, refine: bool, sign: int):
    t = np.asarray(t_h, dtype=float)
    y2 = np.atleast_2d(np.asarray(y, dtype=float))
    n = y2.shape[0]
    if t.size == 0:
        return np.full(n, np.nan), np.full(n, np.nan)
    bad = None if np.isfinite(y2).all() else ~np.isfinite(y2)  # readouts are finite: one cheap check
    if bad is not None:
        y2 = np.where(bad, -np.inf if sign > 0 else np.inf, y2)
    i = np.argmax(y2, axis=-1) if sign > 0 else np.argmin(y2, axis=-1)
    if refine:
        val, at = _refine(t, y2, i, sign)
    else:
        val, at = y2[np.arange(n), i], t[i]
    if bad is not None:
        allbad = bad.all(axis=-1)
        val = np.where(allbad | ~np.isfinite(val), np.nan, val)
        at = np.where(allbad, np.nan, at)
    return val, at


def hours_above(t_h, y, threshold: float) -> np.ndarray:
    """Time each row spends strictly above ``threshold``, h.

    The curve is taken as linear between samples, so a crossing is placed
    where the straight line between two samples meets the threshold; the
    result is exact for piecewise-linear curves and converges as O(h**2)
    otherwise.

    Parameters
    ----------
    t_h : array (T,)
        Sorted times, h.
    y : array (..., T)
        Values, in the unit of ``threshold``.
    threshold : float
        The level.

    Returns
    -------
    array (...)
        Hours above the level.
    """
    t = np.asarray(t_h, dtype=float)
    y = np.asarray(y, dtype=float)
    if t.size < 2:
        return np.zeros(y.shape[:-1])
    dt = np.diff(t)
    above = y > threshold
    # segments wholly above the level, then the few that cross it
    inside = above[..., :-1] & above[..., 1:]
    if np.all(np.abs(dt - dt[0]) <= 1e-12 * max(1.0, abs(dt[0]))):  # uniform grid: count
        total = np.count_nonzero(inside, axis=-1) * float(dt[0])
    else:
        total = inside @ dt
    total = np.asarray(total, dtype=float)
    cross = np.nonzero(above[..., :-1] != above[..., 1:])
    if cross[0].size:
        j = cross[-1]
        y0 = y[cross[:-1] + (j,)] - threshold
        y1 = y[cross[:-1] + (j + 1,)] - threshold
        frac = np.where(y1 > 0, y1, y0) / np.abs(y1 - y0)  # the part above, linearly
        np.add.at(total, cross[:-1], np.clip(frac, 0.0, 1.0) * dt[j])
    return total


# ---------------------------------------------------------------------------
# Terminal half-life


def terminal_half_life(
    t_h,
    c,
    *,
    after_h: float = 0.0,
    upper_fraction: float = 0.1,
    lower_fraction: float = 1e-4,
    min_points: int = 3,
) -> np.ndarray:
    """Terminal half-life from a log-linear fit of the decline, h.

    For each row, after ``after_h`` (the last dose or infusion stop), take
    the peak ``C_pk`` and the samples after it with ``lower_fraction * C_pk
    <= C <= upper_fraction * C_pk`` (the default drops the first 3.3
    half-lives, where absorption and distribution still shape the curve,
    and stops at four decades below the peak); fit ``ln C = a - lambda_z t``
    by least squares and return ``ln 2 / lambda_z``.

    Parameters
    ----------
    t_h : array (T,)
        Sorted times, h.
    c : array (N, T)
        Concentrations, mg/L (any positive unit).
    after_h : float
        Start of the post-dose window, h.
    upper_fraction, lower_fraction : float
        The window in fractions of the post-dose peak.
    min_points : int
        Fewer samples in the window give nan.

    Returns
    -------
    array (N,)
        Half-life, h; nan where the window holds too few points or the
        curve does not decline.
    """
    t = np.asarray(t_h, dtype=float)
    c2 = np.atleast_2d(np.asarray(c, dtype=float))
    n = c2.shape[0]
    sl = window(t, after_h, t[-1] if t.size else after_h)
    t, c2 = t[sl], c2[:, sl]
    if t.size < min_points:
        return np.full(n, np.nan)
    finite = np.isfinite(c2)
    cf = np.where(finite, c2, -np.inf)
    ipk = np.argmax(cf, axis=1)
    cpk = cf[np.arange(n), ipk]
    after_peak = np.arange(t.size)[None, :] > ipk[:, None]
    with np.errstate(invalid="ignore"):
        mask = (
            finite
            & after_peak
            & (c2 > 0)
            & (c2 <= upper_fraction * cpk[:, None])
            & (c2 >= lower_fraction * cpk[:, None])
        )
    mask &= (cpk > 0)[:, None]
    w = mask.astype(float)
    k = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        logc = np.where(mask, np.log(np.where(mask, c2, 1.0)), 0.0)
        tc = t[None, :] - t[0]  # centre for conditioning
        st, sy = (w * tc).sum(1), logc.sum(1)
        stt, sty = (w * tc * tc).sum(1), (tc * logc).sum(1)
        slope = (k * sty - st * sy) / (k * stt - st * st)
        half = math.log(2.0) / -slope
    return np.where((k >= min_points) & np.isfinite(half) & (half > 0), half, np.nan)


# ---------------------------------------------------------------------------
# Per-subject metrics and population summaries


def subject_metrics(
    t_h,
    readouts: Mapping[str, np.ndarray],
    *,
    interval: tuple[float, float] | None,
    stop_h: float | None,
    interval_t_h=None,
    interval_plasma=None,
) -> dict[str, np.ndarray]:
    """Every metric of :data:`METRICS` for each subject.

    Parameters
    ----------
    t_h : array (T,)
        Sorted evaluation times covering the run, h.
    readouts : mapping
        ``plasma_mg_per_l``, ``occupancy``, ``receptor_density`` and
        ``excitability``, each (N, T), at ``t_h``.
    interval : (float, float) or None
        The last dosing interval, h (:func:`last_dosing_interval`); None
        leaves the four interval metrics nan.
    stop_h : float or None
        Time of the last dose or infusion stop, h, when it falls before the
        end of the run; None leaves the half-life and rebound metrics nan.
    interval_t_h, interval_plasma : arrays (Ti,) and (N, Ti), optional
        A finer, uniform grid over ``interval`` (even number of steps) for
        the interval metrics; default: the samples of ``t_h`` inside it.

    Returns
    -------
    dict of str to array (N,)
        Keyed by :data:`METRIC_NAMES`, units as in :data:`METRICS`.
    """
    t = np.asarray(t_h, dtype=float)
    plasma = np.asarray(readouts["plasma_mg_per_l"], dtype=float)
    n = plasma.shape[0]
    nan = np.full(n, np.nan)
    out = {name: nan.copy() for name in METRIC_NAMES}

    if interval is not None:
        if interval_t_h is None:
            sl = window(t, *interval)
            ti, ci = t[sl], plasma[:, sl]
        else:
            ti, ci = np.asarray(interval_t_h, float), np.asarray(interval_plasma, float)
        if ti.size >= 2:
            cmax, tmax = peak(ti, ci)
            out["cmax_last_interval"] = cmax
            out["tmax_last_interval"] = tmax - interval[0]
            out["cmin_last_interval"] = trough(ti, ci)[0]
            out["auc_last_interval"] = auc_simpson(ti, ci)

    out["peak_occupancy"] = peak(t, readouts["occupancy"], refine=True)[0]
    out["receptor_density_nadir"] = trough(t, readouts["receptor_density"], refine=True)[0]
    exc = np.asarray(readouts["excitability"], dtype=float)
    out["lowest_excitability"] = trough(t, exc, refine=True)[0]
    out[METRIC_NAMES[10]] = hours_above(t, exc, REBOUND_THRESHOLD)
    out[METRIC_NAMES[11]] = hours_above(t, plasma, TOXIC_PLASMA_MG_PER_L)

    if stop_h is not None and stop_h < t[-1]:
        out["terminal_half_life"] = terminal_half_life(t, plasma, after_h=stop_h)
        sl = window(t, stop_h, t[-1])
        if sl.stop - sl.start >= 2:
            val, at = peak(t[sl], exc[:, sl], refine=True)
            out["peak_rebound_excitability"] = val
            out["peak_rebound_time_after_last_dose"] = at - stop_h
    return out


def percentiles(values) -> tuple[float, float, float]:
    """Median, 5th and 95th percentiles of the finite values (linear interpolation).

    Returns nan for all three when no value is finite, and nan for the two
    percentiles when there is a single subject (no population spread).
    """
    v = np.asarray(values, dtype=float).ravel()
    n_all = v.size
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    med = float(np.median(v))
    if n_all <= 1:
        return med, math.nan, math.nan
    p05, p95 = np.percentile(v, [5.0, 95.0])
    return med, float(p05), float(p95)
