"""The figure of a run: one page from plasma level to excitability.

Plain data in, a PNG out: :func:`plot_arms` takes the scenario's title, the
time axis and per-arm arrays; :func:`plot_run` only unpacks a run's result
into them (this module never imports :mod:`pkpd.run`).  Every band is
:func:`pkpd.metrics.percentile_bands`, the function the teaching helpers and
the summary use.

matplotlib is imported inside the functions (with the non-interactive Agg
backend), never at module import, so a run without a figure does not pay
for it.  Units inside are the core's (h, mg/L); the time axis switches to
days for runs longer than three days.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import BinaryIO, Mapping, Sequence

import numpy as np

from .metrics import REBOUND_THRESHOLD, TOXIC_PLASMA_MG_PER_L, percentile_bands
from .units import HOURS_PER_DAY

#: Runs longer than this are drawn in days, h.
DAYS_AXIS_AFTER_H = 72.0
#: Footer printed on every figure.
FOOTER = "pkpd: a teaching and research model. Not for dosing decisions."
#: Colours of the arms (colour-blind friendly, Okabe-Ito).
ARM_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and 5th / 95th percentiles over subjects (:func:`pkpd.metrics.percentile_bands`).

    Parameters
    ----------
    values : ndarray (N, T)

    Returns
    -------
    median, p05, p95 : ndarray (T,)
    """
    med, p05, p95 = percentile_bands(values, (50.0, 5.0, 95.0))
    return med, p05, p95


@dataclass(frozen=True)
class ArmCurves:
    """One arm of the figure, as plain data.

    Attributes
    ----------
    name : str
        The arm's name (legend).
    readouts : mapping of str to ndarray (K, T)
        ``plasma_mg_per_l``, ``csf_mg_per_l``, ``occupancy``,
        ``receptor_density``, ``adaptation`` and ``excitability`` of K
        subjects on the figure's time axis.
    last_dose_h : float or None
        Where to draw the dotted "last dose" line (a stop), h.
    """

    name: str
    readouts: Mapping[str, np.ndarray]
    last_dose_h: float | None = None


def plot_run(result, file: BinaryIO | str, *, dpi: int = 110) -> None:
    """Draw a run's result (:func:`pkpd.run.run` with ``plot=True``) as a PNG.

    Unpacks ``result.scenario``, ``result.summary_time_h`` and each arm's
    ``name``, ``plot`` and ``last_dose_h`` into :func:`plot_arms`.
    """
    sc = result.scenario
    plot_arms(
        file,
        time_h=result.summary_time_h,
        arms=[ArmCurves(a.name, a.plot, a.last_dose_h) for a in result.arms],
        title=sc.name,
        description=sc.description or "",
        n_subjects=sc.subjects.n,
        duration_h=sc.duration_h,
        dpi=dpi,
    )


def plot_arms(
    file: BinaryIO | str,
    *,
    time_h,
    arms: Sequence[ArmCurves],
    title: str,
    description: str = "",
    n_subjects: int | None = None,
    duration_h: float | None = None,
    dpi: int = 110,
) -> None:
    """Draw the run figure from plain data as a PNG.

    Panels: plasma level; CSF level; receptor occupancy; receptor density
    (solid) and counter-adaptation (dashed); excitability with the untreated
    baseline (1) and the rebound line (1.2).  Each arm has its own colour:
    the population median, with the 5th-95th percentile band when there is
    more than one subject, and a dotted line at its last dose (a stop).

    Parameters
    ----------
    file : file object (binary) or path
        Where the PNG goes.
    time_h : array (T,)
        The time axis of every arm's readouts, h.
    arms : sequence of ArmCurves
        One per arm, in legend order.
    title, description : str
        The scenario's name and description.
    n_subjects : int, optional
        Subjects in the run (default: the subjects drawn); the subtitle says
        when the figure shows only the first ones.
    duration_h : float, optional
        Length of the run, h (default: the last time).
    dpi : int
        Resolution (the figure is 12 x 9.6 inches).
    """
    plt = _pyplot()
    t = np.asarray(time_h, dtype=float)
    duration = float(t[-1]) if duration_h is None else float(duration_h)
    drawn = max(np.asarray(a.readouts["plasma_mg_per_l"]).shape[0] for a in arms)
    n = drawn if n_subjects is None else int(n_subjects)
    in_days = duration > DAYS_AXIS_AFTER_H
    scale = 1.0 / HOURS_PER_DAY if in_days else 1.0
    x = t * scale

    fig = plt.figure(figsize=(12, 9.6), dpi=dpi)
    grid = fig.add_gridspec(3, 2, height_ratios=[1, 1, 1.25], hspace=0.42, wspace=0.2,
                            left=0.07, right=0.98, top=0.83, bottom=0.09)
    ax_plasma = fig.add_subplot(grid[0, 0])
    ax_csf = fig.add_subplot(grid[0, 1], sharex=ax_plasma)
    ax_occ = fig.add_subplot(grid[1, 0], sharex=ax_plasma)
    ax_rec = fig.add_subplot(grid[1, 1], sharex=ax_plasma)
    ax_exc = fig.add_subplot(grid[2, :], sharex=ax_plasma)

    def draw(ax, values, colour, style="-", label=None, fill=True):
        med, lo, hi = band(values)
        if n > 1 and fill:
            ax.fill_between(x, lo, hi, color=colour, alpha=0.18, linewidth=0)
        ax.plot(x, med, style, color=colour, linewidth=1.4, label=label)

    peak_plasma = 0.0
    for k, arm in enumerate(arms):
        colour = ARM_COLOURS[k % len(ARM_COLOURS)]
        data = arm.readouts
        draw(ax_plasma, data["plasma_mg_per_l"], colour, label=arm.name)
        draw(ax_csf, data["csf_mg_per_l"], colour)
        draw(ax_occ, data["occupancy"], colour)
        draw(ax_rec, data["receptor_density"], colour, "-")
        draw(ax_rec, data["adaptation"], colour, "--")
        draw(ax_exc, data["excitability"], colour)
        peak_plasma = max(peak_plasma, float(np.nanmax(data["plasma_mg_per_l"])))
        if arm.last_dose_h is not None:
            ax_exc.axvline(arm.last_dose_h * scale, color=colour, linestyle=":", linewidth=1.0, alpha=0.8)

    if peak_plasma > 0.5 * TOXIC_PLASMA_MG_PER_L:
        ax_plasma.axhline(TOXIC_PLASMA_MG_PER_L, color="0.35", linestyle="--", linewidth=0.9)
        ax_plasma.annotate(f"{TOXIC_PLASMA_MG_PER_L:g} mg/L: toxic in renal failure", (0.005, TOXIC_PLASMA_MG_PER_L),
                           xycoords=("axes fraction", "data"), xytext=(2, 3), textcoords="offset points",
                           fontsize=8, color="0.3")
    ax_exc.axhline(1.0, color="0.45", linewidth=1.0)
    ax_exc.axhline(REBOUND_THRESHOLD, color="#B2182B", linestyle="--", linewidth=1.0)
    ax_exc.annotate("untreated baseline", (1.0, 1.0), xycoords=("axes fraction", "data"), xytext=(-3, 3),
                    textcoords="offset points", ha="right", fontsize=8, color="0.35")
    ax_exc.annotate(f"rebound line {REBOUND_THRESHOLD:g}", (1.0, REBOUND_THRESHOLD),
                    xycoords=("axes fraction", "data"), xytext=(-3, 3), textcoords="offset points",
                    ha="right", fontsize=8, color="#B2182B")

    ax_plasma.set_title("Plasma concentration", loc="left", fontsize=10)
    ax_plasma.set_ylabel("mg/L")
    ax_csf.set_title("CSF concentration (lumbar + spinal biophase)", loc="left", fontsize=10)
    ax_csf.set_ylabel("mg/L")
    ax_occ.set_title("GABA-B receptor occupancy by baclofen", loc="left", fontsize=10)
    ax_occ.set_ylabel("fraction")
    ax_rec.set_title("Receptor density (solid) and counter-adaptation (dashed)", loc="left", fontsize=10)
    ax_rec.set_ylabel("relative to baseline")
    ax_exc.set_title("Excitability (below 1: relief; above 1: withdrawal rebound; dotted: last dose)",
                     loc="left", fontsize=10)
    ax_exc.set_ylabel("relative to untreated")
    ax_exc.set_xlabel("time (days)" if in_days else "time (h)")
    for ax in (ax_plasma, ax_csf, ax_occ, ax_rec, ax_exc):
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.margins(x=0)
        ax.tick_params(labelsize=8.5)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for ax in (ax_plasma, ax_csf, ax_occ):
        ax.set_ylim(bottom=0)
    _tidy_excitability(ax_exc)
    if in_days:
        _day_ticks(ax_exc, duration / HOURS_PER_DAY)
    elif duration >= 12:
        from matplotlib.ticker import MultipleLocator

        ax_exc.xaxis.set_major_locator(MultipleLocator(6 if duration <= 48 else 12))

    fig.text(0.07, 0.975, title, fontsize=14, fontweight="bold", va="top")
    sub = textwrap.shorten(description, 170) if description else ""
    who = (f"{n} subjects: median and 5th-95th percentile band" if n > 1 else "one subject")
    if n > 1 and drawn < n:
        who += f" (figure from the first {drawn})"
    fig.text(0.07, 0.945, (sub + "\n" if sub else "") + who, fontsize=9.5, va="top", color="0.25")
    handles, labels = ax_plasma.get_legend_handles_labels()
    if len(handles) > 1 or arms[0].name != title:
        fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.062, 0.905), ncol=min(len(labels), 6),
                   fontsize=9.5, frameon=False, handlelength=2.2, columnspacing=1.6)
    fig.text(0.5, 0.012, FOOTER, ha="center", va="bottom", fontsize=8.5, color="0.4", style="italic")
    try:
        fig.savefig(file, format="png", dpi=dpi)
    finally:
        plt.close(fig)


def _tidy_excitability(ax) -> None:
    """Keep the baseline and the rebound line in view."""
    lo, hi = ax.get_ylim()
    ax.set_ylim(min(lo, 0.9), max(hi, REBOUND_THRESHOLD + 0.05))


def _day_ticks(ax, days: float) -> None:
    """Ticks on whole days: every day for short runs, weeks (with daily minor ticks) for longer ones."""
    from matplotlib.ticker import MultipleLocator

    step = 1 if days <= 10 else 7 if days <= 140 else 28
    ax.xaxis.set_major_locator(MultipleLocator(step))
    if step > 1 and days <= 60:
        ax.xaxis.set_minor_locator(MultipleLocator(1))


def plot_bands(time_h: np.ndarray, readouts: dict, *, percentiles=(5, 50, 95), ax=None):
    """Median and percentile band of each readout (N, T) against time, one panel each.

    Used by :meth:`pkpd.SimulationResult.plot`.  ``percentiles`` gives the
    lower, middle and upper percentiles; one subject is drawn as a line.
    Returns the axes (a list, one per readout).  Uses the current
    matplotlib backend (inline in a notebook).
    """
    import matplotlib.pyplot as plt

    from .model import READOUT_INFO

    names = list(readouts)
    if ax is None:
        _, axes = plt.subplots(len(names), 1, figsize=(8, 2.6 * len(names)), sharex=True, squeeze=False)
        axes = list(axes[:, 0])
    else:
        axes = list(np.atleast_1d(ax))
        if len(axes) != len(names):
            raise ValueError(f"ax: {len(names)} readouts need {len(names)} axes; got {len(axes)}")
    days = time_h[-1] > DAYS_AXIS_AFTER_H
    x = time_h / HOURS_PER_DAY if days else time_h
    lo, mid, hi = percentiles
    for a, name in zip(axes, names):
        v = np.asarray(readouts[name], dtype=float)
        if v.shape[0] > 1:
            p_lo, p_mid, p_hi = percentile_bands(v, (lo, mid, hi))
            a.fill_between(x, p_lo, p_hi, color=ARM_COLOURS[0], alpha=0.2, linewidth=0,
                           label=f"{lo:g}th-{hi:g}th percentile")
            a.plot(x, p_mid, color=ARM_COLOURS[0], label=f"{mid:g}th percentile")
            a.legend(loc="best", fontsize=8, frameon=False)
        else:
            a.plot(x, v[0], color=ARM_COLOURS[0])
        unit = READOUT_INFO[name][0] if name in READOUT_INFO else ""
        a.set_ylabel(f"{name}\n({unit})" if unit and unit != "1" else name, fontsize=9)
        a.grid(True, color="0.9", linewidth=0.6)
    axes[-1].set_xlabel("time (days)" if days else "time (h)")
    if days:
        _day_ticks(axes[-1], float(x[-1]))
    return axes
