"""Every statistic of pkpd, in one place: arrays in, numbers out.

The summary (``summary.csv``, :mod:`pkpd.run`), the figure
(:mod:`pkpd.plotting`) and the teaching helpers (:mod:`pkpd.teaching`) all
call these functions, so the same samples give the same numbers wherever
they are printed.  Nothing here simulates, reads files or prints.

Times are in hours; readouts are arrays shaped ``(..., T)`` (one row per
subject, usually ``(N, T)``); each function returns one value per row.  A
value that cannot be computed is ``nan`` (``summary.csv`` writes an empty
cell).

The functions
-------------
Windows
    :func:`last_dosing_interval`, :func:`describe_dosing` (what of a
    regimen the metrics need: NCA window, washout), :func:`window`,
    :func:`on_window` (samples on [a, b], linear at the ends),
    :func:`nca_times` (the fine grid the summary evaluates NCA on).
Areas, extremes, time above a level
    :func:`auc` (Simpson on a uniform grid with an even number of steps,
    trapezoid otherwise), :func:`auc_trapezoid`, :func:`auc_simpson`,
    :func:`time_average`, :func:`peak`, :func:`trough` (optionally refined to
    the vertex of a parabola), :func:`hours_above` (crossings interpolated).
Non-compartmental analysis
    :func:`nca` (Cmax, Tmax, Cmin, AUC over a window),
    :func:`terminal_half_life`, :func:`auc_to_infinity`.
Rebound
    :func:`rebound` (peak after the last dose, its time, onset, hours above
    a line).
Populations
    :func:`percentile_bands` (percentiles across subjects at every time: the
    figure's bands and the teaching bands), :func:`percentiles` (median, 5th,
    95th of finite values), :func:`population_summary` (the cells of
    ``summary.csv``).
Per-subject metrics
    :data:`METRICS` (names, units, labels, when each applies) and
    :func:`subject_metrics`.

Conventions (the same everywhere)
---------------------------------
* **NCA** (Cmax, Tmax, Cmin, AUC) uses the samples of the window it is
  given.  Cmax/Cmin are the highest/lowest sample refined to the vertex of
  the parabola through it and its neighbours (only at a smooth interior
  extreme: never across a bolus jump); Tmax is the time of that vertex; the
  AUC is Simpson's rule when the samples are uniform with an even number of
  steps, the trapezoidal rule otherwise.  ``summary.csv`` evaluates plasma
  on :func:`nca_times` (uniform, 0.05 h or finer); a teaching helper given a
  result sampled on the same times returns the same numbers, and on a
  coarser output grid differs only by that grid's sampling error.
* **Terminal half-life** (:func:`terminal_half_life`): log-linear least
  squares on the samples after the peak that follows the last dose, where
  plasma is between 1e-4 and 0.25 of that peak (absorption and distribution
  are over by then); it needs at least 3 such samples spanning at least 2
  fitted half-lives, otherwise nan.  The summary fits only a genuine
  washout (:func:`describe_dosing`): after a single dose, or after the last
  dose when the run continues past the time the next dose would have come;
  never the inside of a dosing interval.
* **Rebound peak** (:func:`rebound`): the highest excitability after the
  lowest point that follows the last dose; it must be an interior maximum.
  When the curve is still rising (or still falling) at the end of the run,
  the run ended before the peak and the value is nan ("censored"), never the
  end-of-run value.
* **Population cells** (:func:`population_summary`): median and 5th/95th
  percentiles (linear interpolation) of the per-subject values; a metric
  missing for some subjects is left empty for the whole arm (a median of the
  others would be biased), and :mod:`pkpd.run` says why in a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .units import TIME_TOLERANCE_H

#: Excitability above which a rebound is counted (1 is the untreated baseline).
REBOUND_THRESHOLD = 1.2
#: Plasma level reported as toxic in renal failure, mg/L (literature.md).
TOXIC_PLASMA_MG_PER_L = 0.7
#: cns_depression above which the summary counts hours (illustrative: half
#: of the maximal supraspinal depression).
CNS_DEPRESSION_THRESHOLD = 0.5
#: Largest step of the NCA grid, h (:func:`nca_times`).
NCA_STEP_H = 0.05
#: Fewest and most steps of the NCA grid.
NCA_MIN_STEPS = 160
NCA_MAX_STEPS = 4000
#: Times closer than this are the same time, h.
TIME_TOL_H = TIME_TOLERANCE_H


@dataclass(frozen=True)
class MetricInfo:
    """One row of the metric table.

    Attributes
    ----------
    name : str
        Machine name (the ``metric`` column of ``summary.csv``).
    unit : str
        Unit of the value.
    meaning : str
        One line: what the value is.
    label : str
        Short label for printed tables.
    applies : str
        When the metric applies to an arm (:func:`applies`): ``"always"``,
        ``"repeated"`` (a last dosing interval exists), ``"single"`` (one
        dose), ``"washout"`` (dosing stops before the end of the run) or
        ``"half_life"`` (a single dose or a washout).
    missing : str
        Why a subject can lack the value although the metric applies (for the
        warning).
    """

    name: str
    unit: str
    meaning: str
    label: str
    applies: str = "always"
    missing: str = ""


_SHORT_WASHOUT = ("the washout after the last dose is too short for the fit "
                  "(fewer than 3 samples below 25 % of the peak spanning 2 half-lives)")

#: The metrics of ``summary.csv``, in the order written.
METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("cmax_last_interval", "mg/L", "highest plasma level in the last dosing interval",
               "Cmax, last dosing interval", "repeated"),
    MetricInfo("tmax_last_interval", "h", "time of that peak after the dose opening the interval",
               "Tmax, after that dose", "repeated"),
    MetricInfo("cmin_last_interval", "mg/L", "lowest plasma level in the last dosing interval",
               "Cmin, last dosing interval", "repeated"),
    MetricInfo("auc_last_interval", "mg*h/L", "area under the plasma curve over the last dosing interval",
               "AUC, last dosing interval", "repeated"),
    MetricInfo("cmax_single_dose", "mg/L", "highest plasma level after the only dose",
               "Cmax, single dose", "single"),
    MetricInfo("tmax_single_dose", "h", "time of that peak after the dose", "Tmax, single dose", "single"),
    MetricInfo("auc_0_last_single_dose", "mg*h/L",
               "area under the plasma curve from the dose to the end of the run (or the next input)",
               "AUC 0-last, single dose", "single"),
    MetricInfo("auc_0_inf_single_dose", "mg*h/L",
               "AUC 0-last plus the extrapolated tail C_last / lambda_z",
               "AUC 0-inf, single dose", "single", _SHORT_WASHOUT),
    MetricInfo("terminal_half_life", "h",
               "plasma half-life from the log-linear terminal slope in the washout after the last dose",
               "terminal half-life", "half_life", _SHORT_WASHOUT),
    MetricInfo("peak_occupancy", "1", "highest receptor occupancy by baclofen", "peak receptor occupancy"),
    MetricInfo("receptor_density_nadir", "1", "lowest functional receptor density (baseline 1)",
               "receptor density nadir"),
    MetricInfo("lowest_excitability", "1", "lowest excitability: best relief (baseline 1)", "lowest excitability"),
    MetricInfo("peak_rebound_excitability", "1",
               "peak excitability after the last dose, after its post-dose low (> 1 is rebound)",
               "peak excitability after last dose", "washout",
               "the run ends before excitability peaks after the last dose"),
    MetricInfo("peak_rebound_time_after_last_dose", "h", "time of that peak after the last dose",
               "  reached, after last dose", "washout",
               "the run ends before excitability peaks after the last dose"),
    MetricInfo(f"hours_excitability_above_{REBOUND_THRESHOLD:g}", "h", "hours with excitability above the rebound line",
               f"hours with excitability > {REBOUND_THRESHOLD:g}"),
    MetricInfo(f"hours_plasma_above_{TOXIC_PLASMA_MG_PER_L:g}_mg_per_l", "h",
               "hours with plasma above the level reported as toxic in renal failure",
               f"hours with plasma > {TOXIC_PLASMA_MG_PER_L:g} mg/L"),
    MetricInfo("peak_cns_depression", "1", "highest supraspinal CNS depression index (illustrative)",
               "peak CNS depression"),
    MetricInfo(f"hours_cns_depression_above_{CNS_DEPRESSION_THRESHOLD:g}", "h",
               f"hours with cns_depression above {CNS_DEPRESSION_THRESHOLD:g}",
               f"hours with CNS depression > {CNS_DEPRESSION_THRESHOLD:g}"),
)

METRIC_NAMES = tuple(m.name for m in METRICS)
METRIC_INFO = {m.name: m for m in METRICS}
#: The readouts :func:`subject_metrics` reads (on the summary grid); nothing else is needed for the summary.
SUBJECT_READOUTS = ("plasma_mg_per_l", "occupancy", "receptor_density", "excitability", "cns_depression")


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
    d = _distinct(dose_times_h, duration_h)
    if d.size < 2:
        return None
    tau = float(d[-1] - d[-2])
    if d[-1] + tau <= duration_h + TIME_TOL_H:
        return float(d[-1]), float(min(d[-1] + tau, duration_h))
    return float(d[-2]), float(d[-1])


def _distinct(dose_times_h, duration_h: float) -> np.ndarray:
    d = np.unique(np.asarray(dose_times_h, dtype=float))
    d = d[d <= duration_h + TIME_TOL_H]
    if d.size >= 2:  # merge doses closer than the tolerance
        d = d[np.concatenate([[True], np.diff(d) > TIME_TOL_H])]
    return d


@dataclass(frozen=True)
class Dosing:
    """What of an arm's dosing the metrics need (all times in h).

    Attributes
    ----------
    duration_h : float
        End of the run.
    interval : (float, float) or None
        The last dosing interval (:func:`last_dosing_interval`); None
        without repeated dosing.
    single_dose : (float, float) or None
        With exactly one dose: from the dose to the next input (an infusion
        starting later) or the end of the run.  None otherwise, or when an
        infusion runs at the dose time.
    washout_h : float or None
        The last dose or infusion stop, when the run continues into a
        washout after it: past the time the next dose would have come (one
        last dosing interval later), or after a single dose, or after an
        infusion stop.  None when dosing runs to the end of the run.
    """

    duration_h: float
    interval: tuple[float, float] | None = None
    single_dose: tuple[float, float] | None = None
    washout_h: float | None = None

    @property
    def nca_window(self) -> tuple[float, float] | None:
        """The window of the NCA metrics: the last dosing interval or the single-dose window."""
        return self.interval if self.interval is not None else self.single_dose


def describe_dosing(dose_times_h, duration_h: float, infusions: Sequence[tuple[float, float]] = ()) -> Dosing:
    """The :class:`Dosing` of a regimen.

    Parameters
    ----------
    dose_times_h : array
        Every dose time (all routes), h; doses after ``duration_h`` ignored.
    duration_h : float
        End of the run, h.
    infusions : sequence of (start_h, stop_h)
        Every infusion (rates are not needed).
    """
    duration_h = float(duration_h)
    d = _distinct(dose_times_h, duration_h)
    inf = [(float(a), float(b)) for a, b in infusions if a < duration_h - TIME_TOL_H]
    interval = last_dosing_interval(d, duration_h)
    single = None
    if d.size == 1 and d[0] < duration_h - TIME_TOL_H:
        t0 = float(d[0])
        if not any(a <= t0 + TIME_TOL_H and b > t0 + TIME_TOL_H for a, b in inf):
            later = [a for a, _ in inf if a > t0 + TIME_TOL_H]
            single = (t0, min([duration_h] + later))
    washout = None
    if not any(b >= duration_h - TIME_TOL_H for _, b in inf):  # nothing still running at the end
        last_dose = float(d[-1]) if d.size else -math.inf
        last_stop = max((b for _, b in inf), default=-math.inf)
        last = max(last_dose, last_stop)
        if math.isfinite(last) and last < duration_h - TIME_TOL_H:
            if last_stop >= last_dose or d.size < 2:
                washout = last
            elif duration_h - last > float(d[-1] - d[-2]) + TIME_TOL_H:
                washout = last
    return Dosing(duration_h, interval, single, washout)


def applies(info: MetricInfo, dosing: Dosing | None) -> bool:
    """Whether metric ``info`` applies to an arm with this dosing."""
    if info.applies == "always":
        return True
    if dosing is None:
        return False
    return {
        "repeated": dosing.interval is not None,
        "single": dosing.single_dose is not None,
        "washout": dosing.washout_h is not None,
        "half_life": dosing.single_dose is not None or dosing.washout_h is not None,
    }[info.applies]


def window(t_h, start_h: float, end_h: float) -> slice:
    """The slice of the sorted times ``t_h`` (h) that lie in [start_h, end_h]."""
    t = np.asarray(t_h, dtype=float)
    i0 = int(np.searchsorted(t, start_h - TIME_TOL_H, side="left"))
    i1 = int(np.searchsorted(t, end_h + TIME_TOL_H, side="right"))
    return slice(i0, i1)


def on_window(t_h, y, start_h: float, end_h: float) -> tuple[np.ndarray, np.ndarray]:
    """The samples of ``y`` (N, T) on [start_h, end_h], with values at the ends.

    Samples strictly inside are kept; the two ends are added, linearly
    interpolated between their neighbouring samples (exact when an end is a
    sample).  ``start_h`` and ``end_h`` must lie within ``t_h``.

    Returns
    -------
    t : ndarray (K,)
        ``start_h``, the inner sample times, ``end_h`` (h).
    y : ndarray (N, K)
    """
    t = np.asarray(t_h, dtype=float)
    y = np.atleast_2d(np.asarray(y, dtype=float))
    a, b = float(start_h), float(end_h)
    inner = (t > a + TIME_TOL_H) & (t < b - TIME_TOL_H)
    ends = []
    for x in (a, b):
        if t.size < 2:
            ends.append(y[:, :1])
            continue
        i = int(np.clip(np.searchsorted(t, x, side="right") - 1, 0, t.size - 2))
        w = (x - t[i]) / (t[i + 1] - t[i])
        ends.append(y[:, i : i + 1] if w == 0.0 else y[:, i + 1 : i + 2] if w == 1.0
                    else ((1.0 - w) * y[:, i] + w * y[:, i + 1])[:, None])
    return np.concatenate([[a], t[inner], [b]]), np.concatenate([ends[0], y[:, inner], ends[1]], axis=1)


def nca_times(start_h: float, end_h: float, step_h: float = NCA_STEP_H) -> np.ndarray:
    """The uniform grid the summary evaluates the NCA metrics on, h.

    ``n`` equal steps from ``start_h`` to ``end_h`` (both included), with
    ``n`` even (Simpson's rule), at least ``NCA_MIN_STEPS`` (160) and the
    step at most ``step_h`` (0.05 h) unless that needs more than
    ``NCA_MAX_STEPS`` (4000) steps.  Pass it to :func:`pkpd.simulate`
    (``times_h=`` or a ``Grid`` of a ``SaveAt``) to get the summary's numbers.
    """
    a, b = float(start_h), float(end_h)
    if not (b > a):
        raise ValueError(f"end_h: must be > start_h; got {a!r}, {b!r}")
    n = max(NCA_MIN_STEPS, int(math.ceil((b - a) / step_h - 1e-9)))
    n = min(n + (n % 2), NCA_MAX_STEPS)
    t = a + (b - a) * (np.arange(n + 1) / n)
    t[-1] = b
    return t


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


def _uniform(t: np.ndarray) -> bool:
    h = np.diff(t)
    return h.size > 0 and bool(np.max(np.abs(h - h.mean())) <= 1e-9 * max(1.0, abs(h.mean())))


def auc_simpson(t_h, y) -> np.ndarray:
    """Area under ``y`` by composite Simpson's rule on a uniform grid.

    Exact for cubics; error O(h**4) for smooth curves.  Falls back to
    :func:`auc_trapezoid` when the grid is not uniform or has an odd number
    of intervals.  Units as :func:`auc_trapezoid` (e.g. mg*h/L).
    """
    t = np.asarray(t_h, dtype=float)
    y = np.asarray(y, dtype=float)
    n_int = t.size - 1
    if n_int < 2 or n_int % 2 or not _uniform(t):
        return auc_trapezoid(t, y)
    hm = (t[-1] - t[0]) / n_int
    return hm / 3.0 * (
        y[..., 0] + y[..., -1] + 4.0 * np.sum(y[..., 1:-1:2], axis=-1) + 2.0 * np.sum(y[..., 2:-1:2], axis=-1)
    )


#: The area every statistic uses (:func:`auc_simpson`, which falls back to the trapezoid).
auc = auc_simpson


def time_average(t_h, y) -> np.ndarray:
    """Time average of ``y`` over the span of ``t_h``: :func:`auc` / (t_end - t_start).

    Computed about the first value, so a constant curve averages to itself
    exactly (no rounding across a threshold in :func:`pkpd.teaching.fraction_reaching`).
    """
    t = np.asarray(t_h, dtype=float)
    y = np.asarray(y, dtype=float)
    return y[..., 0] + auc(t, y - y[..., :1]) / (t[-1] - t[0])


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
    # Near a smooth extreme the slope next to it is at most half the slope one
    # step further out (exactly so for a parabola); a bolus jump between two
    # samples makes it many times steeper: keep the sample there.
    with np.errstate(divide="ignore", invalid="ignore"):
        left = j >= 2
        jl = np.where(left, j - 2, 0)
        d_out = (y0 - y[r, jl]) / (t0 - t[jl])
        ok &= ~left | (np.abs(d01) <= 2.0 * np.abs(d_out))
        right = j + 2 < t.size
        jr = np.where(right, j + 2, t.size - 1)
        d_out = (y[r, jr] - y2) / (t[jr] - t2)
        ok &= ~right | (np.abs(d12) <= 2.0 * np.abs(d_out))
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
        curve).  Safe at a bolus jump (the sample is kept) and never beyond
        the neighbouring samples at a kink.

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
    above = y > threshold
    if y.ndim >= 2:
        rows = above.any(axis=-1)
        if not rows.all():  # a row never above the level has 0 h (exactly, as computed below)
            total = np.zeros(y.shape[:-1])
            if rows.any():
                total[rows] = _hours_above(t, y[rows], above[rows], threshold)
            return total
    return _hours_above(t, y, above, threshold)


def _hours_above(t: np.ndarray, y: np.ndarray, above: np.ndarray, threshold: float) -> np.ndarray:
    dt = np.diff(t)
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
# Non-compartmental analysis


def nca(t_h, c) -> dict[str, np.ndarray]:
    """Cmax, Tmax, Cmin and AUC of each row over the samples given.

    Pass exactly the window (e.g. :func:`on_window` or :func:`nca_times`);
    see the module's conventions.

    Parameters
    ----------
    t_h : array (T,)
        Sorted times covering the window, h.
    c : array (N, T)
        Concentrations, mg/L.

    Returns
    -------
    dict of str to ndarray (N,)
        ``cmax`` (mg/L), ``tmax_h`` (h, absolute: subtract the dose time),
        ``cmin`` (mg/L), ``auc`` (mg*h/L).
    """
    t = np.asarray(t_h, dtype=float)
    c2 = np.atleast_2d(np.asarray(c, dtype=float))
    cmax, tmax = peak(t, c2, refine=True)
    return {"cmax": cmax, "tmax_h": tmax, "cmin": trough(t, c2, refine=True)[0], "auc": auc(t, c2)}


def terminal_half_life(
    t_h,
    c,
    *,
    after_h: float = 0.0,
    upper_fraction: float = 0.25,
    lower_fraction: float = 1e-4,
    min_points: int = 3,
    min_half_lives: float = 2.0,
) -> np.ndarray:
    """Terminal half-life from a log-linear fit of the decline, h.

    For each row, after ``after_h`` (the last dose or infusion stop), take
    the peak ``C_pk`` and the samples after it with ``lower_fraction * C_pk
    <= C <= upper_fraction * C_pk`` (the default drops the first 2
    half-lives, where absorption and distribution still shape the curve:
    baclofen's distribution half-life is 0.5 h, its absorption half-life
    0.7 h; and stops at four decades below the peak); fit ``ln C = a - lambda_z t``
    by least squares and return ``ln 2 / lambda_z``.  The caller chooses a
    genuine washout (no dose after ``after_h``): :func:`describe_dosing`.

    Parameters
    ----------
    t_h : array (T,)
        Sorted times, h.
    c : array (N, T)
        Concentrations, mg/L (any positive unit).
    after_h : float
        Start of the washout, h.
    upper_fraction, lower_fraction : float
        The fitted window in fractions of the post-dose peak.
    min_points : int
        Fewer samples in the window give nan.
    min_half_lives : float
        The fitted samples must span at least this many fitted half-lives,
        otherwise nan (a short tail cannot tell the slope).

    Returns
    -------
    array (N,)
        Half-life, h; nan where the window holds too few points, spans too
        short a time or the curve does not decline.
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
    tc = t[None, :] - t[0]  # centre for conditioning
    with np.errstate(divide="ignore", invalid="ignore"):
        logc = np.where(mask, np.log(np.where(mask, c2, 1.0)), 0.0)
        st, sy = (w * tc).sum(1), logc.sum(1)
        stt, sty = (w * tc * tc).sum(1), (w * tc * logc).sum(1)
        slope = (k * sty - st * sy) / (k * stt - st * st)
        half = math.log(2.0) / -slope
        first = np.where(mask, tc, np.inf).min(axis=1)
        last = np.where(mask, tc, -np.inf).max(axis=1)
        ok = (k >= min_points) & np.isfinite(half) & (half > 0) & (last - first >= min_half_lives * half)
    return np.where(ok, half, np.nan)


def auc_to_infinity(auc_last, c_last, half_life_h) -> np.ndarray:
    """AUC 0-inf = AUC 0-last + C_last / lambda_z (lambda_z = ln 2 / half-life), mg*h/L; nan without a half-life."""
    return np.asarray(auc_last, float) + np.asarray(c_last, float) * np.asarray(half_life_h, float) / math.log(2.0)


# ---------------------------------------------------------------------------
# Rebound


def rebound(t_h, excitability, *, stop_h: float, threshold: float = REBOUND_THRESHOLD) -> dict[str, np.ndarray]:
    """Withdrawal rebound of each row after the last dose or infusion stop.

    The excitability is taken on [stop_h, end] (:func:`on_window`).  The
    rebound peak is the highest value after the lowest point that follows
    the stop, refined to the parabola's vertex, and must be an interior
    maximum: when the curve is still rising (or still falling) at the last
    sample, the run ended before the peak and ``peak`` is nan with
    ``censored`` True; a curve that never rises after its low has no peak
    (nan, not censored).

    Parameters
    ----------
    t_h : array (T,)
        Sorted times reaching past ``stop_h``, h.
    excitability : array (N, T)
        Excitability (1 = untreated).
    stop_h : float
        Time of the last dose or infusion stop, h.
    threshold : float
        Excitability counted as a marked rebound.

    Returns
    -------
    dict of str to ndarray (N,)
        ``peak`` (1), ``peak_time_h`` (h after ``stop_h``), ``censored``
        (bool), ``onset_h`` (h after ``stop_h`` at which excitability first
        rises above 1, 0 if above at the stop, nan if never),
        ``hours_above`` (h after ``stop_h`` above ``threshold``).
    """
    tt, ee, val, at, censored = _rebound_peak(t_h, excitability, stop_h)
    n = ee.shape[0]
    rows = np.arange(n)
    onset = np.full(n, np.nan)
    up = (ee[:, :-1] <= 1.0) & (ee[:, 1:] > 1.0)
    has_up = up.any(axis=1)
    k = np.argmax(up, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = tt[k] + (1.0 - ee[rows, k]) / (ee[rows, k + 1] - ee[rows, k]) * (tt[k + 1] - tt[k]) - stop_h
    onset = np.where(has_up, cross, onset)
    onset = np.where(ee[:, 0] > 1.0, 0.0, onset)
    return {
        "peak": val,
        "peak_time_h": at,
        "censored": censored,
        "onset_h": onset,
        "hours_above": hours_above(tt, ee, threshold),
    }


def _rebound_peak(t_h, excitability, stop_h: float):
    """The rebound peak of :func:`rebound` alone: the window (times, values), then
    ``peak``, ``peak_time_h`` (nan where there is none) and ``censored``."""
    t = np.asarray(t_h, dtype=float)
    tt, ee = on_window(t, excitability, stop_h, t[-1])
    m = ee.shape[1]
    i_low = np.argmin(ee, axis=1)
    after_low = np.where(np.arange(m)[None, :] >= i_low[:, None], ee, -np.inf)
    j = np.argmax(after_low, axis=1)
    val, at = _refine(tt, ee, j, +1)
    censored = (j == m - 1) | (i_low == m - 1)
    no_peak = (j == i_low) & ~censored
    bad = censored | no_peak | (m < 3)
    return tt, ee, np.where(bad, np.nan, val), np.where(bad, np.nan, at - stop_h), censored


# ---------------------------------------------------------------------------
# Populations


def percentile_bands(values, percentiles: Sequence[float] = (5.0, 50.0, 95.0)) -> np.ndarray:
    """Percentiles across subjects (the first axis), linear interpolation.

    The figure's bands, :func:`pkpd.teaching.percentile_bands` and the cells
    of ``summary.csv`` all come from here.

    Parameters
    ----------
    values : array (N, ...)
        One row per subject (e.g. (N, T) time courses).
    percentiles : sequence of float
        In [0, 100].

    Returns
    -------
    ndarray (P, ...)
        One row per percentile, unit of ``values``.
    """
    q = np.asarray(percentiles, dtype=float)
    if q.ndim != 1 or q.size == 0 or np.any(~np.isfinite(q) | (q < 0) | (q > 100)):
        raise ValueError(f"percentiles: must be values in [0, 100]; got {percentiles!r}")
    v = np.asarray(values, dtype=float)
    if v.ndim == 0 or v.shape[0] == 0:
        raise ValueError("values: need at least one subject")
    return np.percentile(v, q, axis=0)


def percentiles(values) -> tuple[float, float, float]:
    """Median, 5th and 95th percentiles of the finite values (:func:`percentile_bands`).

    Returns nan for all three when no value is finite, and nan for the two
    percentiles when there is a single subject (no population spread).
    """
    v = np.asarray(values, dtype=float).ravel()
    n_all = v.size
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    med, p05, p95 = (float(x) for x in percentile_bands(v, (50.0, 5.0, 95.0)))
    if n_all <= 1:
        return med, math.nan, math.nan
    return med, p05, p95


def population_summary(values) -> tuple[float, float, float]:
    """A row of ``summary.csv``: median, 5th and 95th percentiles over all subjects.

    As :func:`percentiles`, but nan for all three when any subject lacks the
    value: the others alone would give a biased summary (e.g. the subjects
    whose rebound had not peaked by the end of the run left out).
    """
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0 or not np.isfinite(v).all():
        return math.nan, math.nan, math.nan
    return percentiles(v)


# ---------------------------------------------------------------------------
# Per-subject metrics


def subject_metrics(
    t_h,
    readouts: Mapping[str, np.ndarray],
    *,
    dosing: Dosing | None,
    nca_t_h=None,
    nca_plasma=None,
) -> dict[str, np.ndarray]:
    """Every metric of :data:`METRICS` for each subject.

    Parameters
    ----------
    t_h : array (T,)
        Sorted evaluation times covering the run, h (the summary grid).
    readouts : mapping
        ``plasma_mg_per_l``, ``occupancy``, ``receptor_density``,
        ``excitability`` and ``cns_depression``, each (N, T), at ``t_h``.
    dosing : Dosing or None
        :func:`describe_dosing` of the arm; None: no dosing.
    nca_t_h, nca_plasma : arrays (Ti,) and (N, Ti), optional
        Plasma on :func:`nca_times` over ``dosing.nca_window`` (default: the
        samples of ``t_h`` in that window).

    Returns
    -------
    dict of str to array (N,)
        Keyed by :data:`METRIC_NAMES`, units as in :data:`METRICS`; nan
        where a metric does not apply or cannot be computed.
    """
    t = np.asarray(t_h, dtype=float)
    plasma = np.asarray(readouts["plasma_mg_per_l"], dtype=float)
    n = plasma.shape[0]
    out = {name: np.full(n, np.nan) for name in METRIC_NAMES}
    win = None if dosing is None else dosing.nca_window

    if win is not None:
        if nca_t_h is None:
            ti, ci = on_window(t, plasma, *win)
        else:
            ti, ci = np.asarray(nca_t_h, float), np.atleast_2d(np.asarray(nca_plasma, float))
        if ti.size >= 2:
            r = nca(ti, ci)
            if dosing.interval is not None:
                out["cmax_last_interval"] = r["cmax"]
                out["tmax_last_interval"] = r["tmax_h"] - win[0]
                out["cmin_last_interval"] = r["cmin"]
                out["auc_last_interval"] = r["auc"]
            else:
                out["cmax_single_dose"] = r["cmax"]
                out["tmax_single_dose"] = r["tmax_h"] - win[0]
                out["auc_0_last_single_dose"] = r["auc"]
                half = terminal_half_life(ti, ci, after_h=win[0])
                out["terminal_half_life"] = half
                out["auc_0_inf_single_dose"] = auc_to_infinity(r["auc"], ci[:, -1], half)

    out["peak_occupancy"] = peak(t, readouts["occupancy"], refine=True)[0]
    out["receptor_density_nadir"] = trough(t, readouts["receptor_density"], refine=True)[0]
    exc = np.asarray(readouts["excitability"], dtype=float)
    out["lowest_excitability"] = trough(t, exc, refine=True)[0]
    out[f"hours_excitability_above_{REBOUND_THRESHOLD:g}"] = hours_above(t, exc, REBOUND_THRESHOLD)
    out[f"hours_plasma_above_{TOXIC_PLASMA_MG_PER_L:g}_mg_per_l"] = hours_above(t, plasma, TOXIC_PLASMA_MG_PER_L)
    cns = np.asarray(readouts["cns_depression"], dtype=float)
    out["peak_cns_depression"] = peak(t, cns, refine=True)[0]
    out[f"hours_cns_depression_above_{CNS_DEPRESSION_THRESHOLD:g}"] = hours_above(t, cns, CNS_DEPRESSION_THRESHOLD)

    stop = None if dosing is None else dosing.washout_h
    if stop is not None and stop < t[-1] - TIME_TOL_H:
        if dosing.single_dose is None:
            out["terminal_half_life"] = terminal_half_life(t, plasma, after_h=stop)
        _, _, out["peak_rebound_excitability"], out["peak_rebound_time_after_last_dose"], _ = \
            _rebound_peak(t, exc, stop)
    return out
