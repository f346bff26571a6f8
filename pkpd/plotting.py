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
#: The plasma panel shows the toxic line when its curves rise above this, mg/L
#: (half the 0.7 mg/L line: every plasma panel that comes near it, in every
#: figure, through :func:`toxic_line`).
TOXIC_LINE_FROM_MG_PER_L = 0.5 * TOXIC_PLASMA_MG_PER_L
#: Median lines: width of the last arm, and how much wider each earlier arm
#: is.  Arms are drawn first to last, each on top of the previous one and
#: narrower, so where arms coincide every colour still shows as a stripe.
MEDIAN_WIDTH = 1.2
MEDIAN_WIDTH_STEP = 1.4
#: The first arm's median is at most this much wider than the last's, pt (many arms: smaller steps).
MEDIAN_WIDTH_SPREAD = 4.5
#: Opacity of the 5th-95th percentile bands (light, under every median).
BAND_ALPHA = 0.09
#: z-order: bands under the medians, medians under the reference lines' labels.
BAND_Z, MEDIAN_Z = 1.0, 3.0


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
        subjects on the figure's time axis.  With ``lumbar_csf_mg_per_l``
        and ``biophase_mg_per_l`` (:data:`pkpd.model.EXTRA_READOUTS`) the
        CSF panel draws the two separately instead of their sum.
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


def plot_arms(file: BinaryIO | str, *, dpi: int = 110, **figure) -> None:
    """Draw the run figure (:func:`arms_figure`, same keywords) and save it as a PNG to ``file``."""
    plt = _pyplot()
    fig = arms_figure(dpi=dpi, **figure)
    try:
        fig.savefig(file, format="png", dpi=dpi)
    finally:
        plt.close(fig)


def arms_figure(
    *,
    time_h,
    arms: Sequence[ArmCurves],
    title: str,
    description: str = "",
    n_subjects: int | None = None,
    duration_h: float | None = None,
    dpi: int = 110,
):
    """The run figure from plain data, a matplotlib Figure (:func:`plot_arms` saves it as a PNG).

    Panels: plasma level (with the 0.7 mg/L line when the curves come near
    it, :func:`toxic_line`); CSF levels, lumbar (solid) and spinal biophase
    (dashed) when the arms carry them, else their sum; receptor occupancy;
    receptor density (solid) and counter-adaptation (dashed); excitability
    with the untreated baseline (1) and the rebound line (1.2).  Each arm
    has its own colour: the population median, over a light 5th-95th
    percentile band when there is more than one subject, and a dotted line
    at its last dose (a stop).  Every band lies under every median, and
    each arm's median is narrower than the previous arm's, so a later arm
    never hides an earlier one (:func:`median_width`).  The legend sits
    above the panels; the time axis ends on a tick (:func:`end_tick`).

    Parameters
    ----------
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

    split_csf = all("lumbar_csf_mg_per_l" in a.readouts and "biophase_mg_per_l" in a.readouts for a in arms)

    def draw(ax, values, k, style="-", label=None):
        colour = ARM_COLOURS[k % len(ARM_COLOURS)]
        med, lo, hi = band(values)
        if n > 1:
            ax.fill_between(x, lo, hi, color=colour, alpha=BAND_ALPHA, linewidth=0, zorder=BAND_Z)
        ax.plot(x, med, style, color=colour, linewidth=median_width(k, len(arms)), label=label,
                zorder=MEDIAN_Z + k / 100.0, solid_capstyle="butt", dash_capstyle="butt")

    peak_plasma = 0.0
    for k, arm in enumerate(arms):
        colour = ARM_COLOURS[k % len(ARM_COLOURS)]
        data = arm.readouts
        draw(ax_plasma, data["plasma_mg_per_l"], k, label=arm.name)
        if split_csf:
            draw(ax_csf, data["lumbar_csf_mg_per_l"], k, "-")
            draw(ax_csf, data["biophase_mg_per_l"], k, "--")
        else:
            draw(ax_csf, data["csf_mg_per_l"], k)
        draw(ax_occ, data["occupancy"], k)
        draw(ax_rec, data["receptor_density"], k, "-")
        draw(ax_rec, data["adaptation"], k, "--")
        draw(ax_exc, data["excitability"], k)
        peak_plasma = max(peak_plasma, float(np.nanmax(data["plasma_mg_per_l"])))
        if arm.last_dose_h is not None:
            ax_exc.axvline(arm.last_dose_h * scale, color=colour, linestyle=":", linewidth=1.0, alpha=0.8,
                           zorder=MEDIAN_Z + 0.5)

    toxic_line(ax_plasma, peak_plasma)
    ax_exc.axhline(1.0, color="0.45", linewidth=1.0)
    ax_exc.axhline(REBOUND_THRESHOLD, color="#B2182B", linestyle="--", linewidth=1.0)
    ax_exc.annotate("untreated baseline", (1.0, 1.0), xycoords=("axes fraction", "data"), xytext=(-3, 3),
                    textcoords="offset points", ha="right", fontsize=8, color="0.35")
    ax_exc.annotate(f"rebound line {REBOUND_THRESHOLD:g}", (1.0, REBOUND_THRESHOLD),
                    xycoords=("axes fraction", "data"), xytext=(-3, 3), textcoords="offset points",
                    ha="right", fontsize=8, color="#B2182B")

    ax_plasma.set_title("Plasma concentration", loc="left", fontsize=10)
    ax_plasma.set_ylabel("mg/L")
    ax_csf.set_title("CSF: lumbar (solid) and spinal biophase (dashed)" if split_csf
                     else "CSF concentration (lumbar + spinal biophase)", loc="left", fontsize=10)
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
    csf_log = split_csf and _csf_log_scale(ax_csf, arms)
    for ax in (ax_plasma, ax_occ) + (() if csf_log else (ax_csf,)):
        ax.set_ylim(bottom=0)
    _tidy_excitability(ax_exc)
    if in_days:
        _day_ticks(ax_exc, duration / HOURS_PER_DAY)
    elif duration >= 12:
        from matplotlib.ticker import MultipleLocator

        ax_exc.xaxis.set_major_locator(MultipleLocator(6 if duration <= 48 else 12))
    ax_exc.set_xlim(float(x[0]), duration * scale)
    end_tick(ax_exc, duration * scale)

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
    return fig


#: The CSF panel turns logarithmic when lumbar and biophase peaks differ by more than this factor.
CSF_LOG_RATIO = 10.0


def _csf_log_scale(ax, arms) -> bool:
    """A log scale for the CSF panel when lumbar and biophase levels differ by over :data:`CSF_LOG_RATIO`
    (intrathecal dosing: the lumbar level is tens of times the biophase's); the axis spans three decades."""
    peaks = []
    for name in ("lumbar_csf_mg_per_l", "biophase_mg_per_l"):
        peaks.append(max(float(np.nanmax(np.asarray(a.readouts[name], dtype=float), initial=0.0)) for a in arms))
    lo, hi = min(peaks), max(peaks)
    if not (lo > 0 and hi / lo > CSF_LOG_RATIO):
        return False
    ax.set_yscale("log")
    ax.set_ylim(lo / 100.0, hi * 1.5)
    ax.set_title(ax.get_title(loc="left") + "; log scale", loc="left", fontsize=10)
    return True


def median_width(k: int, n_arms: int) -> float:
    """Line width of arm ``k``'s median among ``n_arms``: the first widest, the last :data:`MEDIAN_WIDTH`.

    Drawn in order, each arm lies on top of the previous ones and is
    narrower, so where two arms coincide both colours show.
    """
    step = min(MEDIAN_WIDTH_STEP, MEDIAN_WIDTH_SPREAD / max(1, n_arms - 1))
    return MEDIAN_WIDTH + step * max(0, n_arms - 1 - k)


def shows_toxic_line(peak_mg_per_l: float) -> bool:
    """Whether a plasma panel whose curves reach ``peak_mg_per_l`` shows the toxic line.

    The one rule of every figure: above :data:`TOXIC_LINE_FROM_MG_PER_L`
    (half the line), so the line is there whenever the curves come near it.
    """
    return bool(np.isfinite(peak_mg_per_l) and peak_mg_per_l > TOXIC_LINE_FROM_MG_PER_L)


def toxic_line(ax, peak_mg_per_l: float | None = None, *, label: bool = True, scale: float = 1.0) -> bool:
    """Draw the 0.7 mg/L line on a plasma panel when :func:`shows_toxic_line`.

    ``peak_mg_per_l`` defaults to the highest point of the curves already
    drawn on ``ax``.  ``scale`` is the panel's unit in mg/L's (1000 for a
    panel in ng/mL).  Returns whether the line was drawn.
    """
    if peak_mg_per_l is None:
        peaks = [np.nanmax(np.asarray(line.get_ydata(), dtype=float)) for line in ax.get_lines()
                 if np.size(line.get_ydata())]
        peaks += [np.nanmax(c.get_paths()[0].vertices[:, 1]) for c in ax.collections
                  if hasattr(c, "get_paths") and c.get_paths() and len(c.get_paths()[0].vertices)]
        peak_mg_per_l = max(peaks, default=0.0) / scale
    if not shows_toxic_line(peak_mg_per_l):
        return False
    level = TOXIC_PLASMA_MG_PER_L * scale
    ax.axhline(level, color="0.35", linestyle="--", linewidth=0.9, zorder=MEDIAN_Z + 0.5, gid="toxic-line")
    if label:
        ax.annotate(f"{TOXIC_PLASMA_MG_PER_L:g} mg/L: toxic in renal failure", (0.005, level),
                    xycoords=("axes fraction", "data"), xytext=(2, 3), textcoords="offset points",
                    fontsize=8, color="0.3")
    lo, hi = ax.get_ylim()
    if hi < level * 1.12:
        ax.set_ylim(lo, level * 1.12)
    return True


def end_tick(ax, end: float | None = None) -> list[float]:
    """Put a labelled tick at the end of the time axis.

    Keeps the locator's ticks inside ``[start, end]``, drops one closer than
    0.3 of a step to the end, and adds ``end`` (default: the axis's right
    limit).  Shared axes share the ticks.  Returns the ticks.
    """
    from matplotlib.ticker import FixedLocator

    lo, hi = ax.get_xlim()
    end = float(hi if end is None else end)
    ticks = [float(t) for t in ax.xaxis.get_major_locator().tick_values(lo, end) if lo - 1e-9 <= t <= end + 1e-9]
    step = float(np.min(np.diff(ticks))) if len(ticks) > 1 else max(end - lo, 1.0)
    ticks = [t for t in ticks if t < end - 0.3 * step] + [end]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xlim(lo, end)
    return ticks


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
                           label=f"{lo:g}th-{hi:g}th percentile", zorder=BAND_Z)
            a.plot(x, p_mid, color=ARM_COLOURS[0], label=f"{mid:g}th percentile", zorder=MEDIAN_Z)
            if a is axes[0]:  # one legend, above the panels, never over a curve
                a.legend(loc="lower left", bbox_to_anchor=(0.0, 1.02), ncol=2, fontsize=8, frameon=False,
                         borderaxespad=0.0)
        else:
            a.plot(x, v[0], color=ARM_COLOURS[0])
        unit = READOUT_INFO[name][0] if name in READOUT_INFO else ""
        a.set_ylabel(f"{name}\n({unit})" if unit and unit != "1" else name, fontsize=9)
        a.grid(True, color="0.9", linewidth=0.6)
        if name == "plasma_mg_per_l":
            toxic_line(a, float(np.nanmax(v)), label=False)
    axes[-1].set_xlabel("time (days)" if days else "time (h)")
    if days:
        _day_ticks(axes[-1], float(x[-1]))
    axes[-1].set_xlim(float(x[0]), float(x[-1]))
    end_tick(axes[-1], float(x[-1]))
    return axes
