"""The figures a class reads from the back row: toxic line, end tick, arms that never hide each other, CSF split."""

from __future__ import annotations

import io

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg", force=True)
import matplotlib.colors  # noqa: E402
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

pytestmark = pytest.mark.slow  # outside the fast loop (pytest -m 'not slow'); CI runs it

from pkpd import plotting  # noqa: E402
from pkpd.metrics import TOXIC_PLASMA_MG_PER_L  # noqa: E402


def _curves(t, peak=0.2, n=5, lumbar=None, biophase=None, seed=0):
    """Readouts of n subjects: plasma up to ``peak`` mg/L, the rest shaped alike."""
    rng = np.random.default_rng(seed)
    shape = np.sin(np.pi * t / t[-1]) ** 2
    jitter = 1.0 + 0.05 * rng.standard_normal((n, 1))
    data = {
        "plasma_mg_per_l": peak * shape * jitter,
        "csf_mg_per_l": 0.03 * shape * jitter,
        "occupancy": 0.3 * shape * jitter,
        "receptor_density": 1.0 - 0.1 * shape * jitter,
        "adaptation": 0.05 * shape * jitter,
        "excitability": 1.0 - 0.3 * shape * jitter,
    }
    if lumbar is not None:
        data["lumbar_csf_mg_per_l"] = lumbar * shape * jitter
        data["biophase_mg_per_l"] = biophase * shape * jitter
    return data


def _figure(arms, t, **kw):
    return plotting.arms_figure(time_h=t, arms=arms, title="test", **kw)


def _axes(fig):
    plasma, csf, occ, rec, exc = fig.axes[:5]
    return plasma, csf, occ, rec, exc


def _has_toxic_line(ax):
    return any(line.get_gid() == "toxic-line" for line in ax.get_lines())


# ---------------------------------------------------------------------------
# The toxic line: one rule


@pytest.mark.parametrize("peak, shown", [(0.0, False), (0.2, False), (0.35, False), (0.36, True),
                                         (0.7, True), (3.0, True), (float("nan"), False)])
def test_toxic_line_rule(peak, shown):
    assert plotting.shows_toxic_line(peak) is shown
    assert plotting.TOXIC_LINE_FROM_MG_PER_L == pytest.approx(TOXIC_PLASMA_MG_PER_L / 2)


@pytest.mark.parametrize("peak, shown", [(0.2, False), (0.4, True), (1.2, True)])
def test_run_figure_plasma_panel_follows_the_rule(peak, shown):
    t = np.linspace(0, 48, 200)
    fig = _figure([plotting.ArmCurves("a", _curves(t, peak))], t)
    try:
        plasma = _axes(fig)[0]
        assert _has_toxic_line(plasma) is shown
        if shown:  # the line is in view
            assert plasma.get_ylim()[1] > TOXIC_PLASMA_MG_PER_L
    finally:
        plt.close(fig)


def test_toxic_line_helper_reads_the_curves_drawn():
    fig, (a, b) = plt.subplots(1, 2)
    try:
        a.plot([0, 1, 2], [0, 0.5, 0.1])
        b.plot([0, 1, 2], [0, 0.2, 0.1])
        assert plotting.toxic_line(a) and _has_toxic_line(a)
        assert not plotting.toxic_line(b) and not _has_toxic_line(b)
    finally:
        plt.close(fig)


def test_plot_bands_uses_the_same_rule():
    t = np.linspace(0, 24, 100)
    high = {"plasma_mg_per_l": _curves(t, 0.5)["plasma_mg_per_l"]}
    low = {"plasma_mg_per_l": _curves(t, 0.1)["plasma_mg_per_l"]}
    for data, shown in ((high, True), (low, False)):
        axes = plotting.plot_bands(t, data)
        try:
            assert _has_toxic_line(axes[0]) is shown
        finally:
            plt.close(axes[0].figure)


# ---------------------------------------------------------------------------
# A tick at the end of the time axis


@pytest.mark.parametrize("duration_h, end", [(30.0, 30.0), (48.0, 48.0), (100.0, 100 / 24), (15 * 24.0, 15.0),
                                             (1248.0, 52.0), (200 * 24.0, 200.0)])
def test_time_axis_ends_on_a_tick(duration_h, end):
    t = np.linspace(0, duration_h, 400)
    fig = _figure([plotting.ArmCurves("a", _curves(t))], t)
    try:
        fig.canvas.draw()
        for ax in _axes(fig):
            ticks = ax.get_xticks()
            assert ticks[-1] == pytest.approx(end)
            assert ax.get_xlim()[1] == pytest.approx(end)
            assert ticks[0] == pytest.approx(0.0)
            assert np.all(np.diff(ticks) > 0)
        labels = [lab.get_text() for lab in _axes(fig)[-1].get_xticklabels()]
        assert labels[-1].strip() != ""
    finally:
        plt.close(fig)


def test_end_tick_helper():
    fig, ax = plt.subplots()
    try:
        ax.plot([0, 36], [0, 1])
        ax.set_xlim(0, 36)
        ticks = plotting.end_tick(ax)
        assert ticks[-1] == 36 and ticks[0] == 0 and 35 not in ticks and 30 in ticks  # 35 is too close to 36
    finally:
        plt.close(fig)


def test_plot_bands_ends_on_a_tick_and_keeps_its_legend_off_the_curves():
    t = np.linspace(0, 36, 100)
    axes = plotting.plot_bands(t, {k: v for k, v in _curves(t).items() if k in ("plasma_mg_per_l", "occupancy")})
    try:
        fig = axes[0].figure
        fig.canvas.draw()
        assert axes[-1].get_xticks()[-1] == pytest.approx(36.0)
        legend = axes[0].get_legend()
        assert legend is not None
        box = legend.get_window_extent()
        assert box.y0 >= axes[0].get_window_extent().y1 - 1  # above the panel
    finally:
        plt.close(axes[0].figure)


# ---------------------------------------------------------------------------
# Arms: bands under every median, later arms never hide earlier ones


def test_bands_lie_under_every_median_and_medians_narrow_in_order():
    t = np.linspace(0, 96, 300)
    arms = [plotting.ArmCurves(f"arm{k}", _curves(t, seed=k)) for k in range(4)]
    fig = _figure(arms, t)
    try:
        for ax in _axes(fig):
            bands = [c for c in ax.collections]
            medians = [line for line in ax.get_lines() if line.get_gid() != "toxic-line"
                       and len(line.get_xdata()) == t.size]
            assert bands and medians
            assert max(b.get_zorder() for b in bands) < min(m.get_zorder() for m in medians)
            assert max(b.get_alpha() for b in bands) <= 0.12  # light bands
        plasma = _axes(fig)[0]
        medians = [line for line in plasma.get_lines() if len(line.get_xdata()) == t.size]
        widths = [m.get_linewidth() for m in medians]
        z = [m.get_zorder() for m in medians]
        assert widths == sorted(widths, reverse=True) and len(set(widths)) == 4  # first widest
        assert z == sorted(z)  # later arms on top, narrower
    finally:
        plt.close(fig)


def _colour_pixels(png: bytes, colour: str, tol: float = 0.1) -> int:
    img = matplotlib.image.imread(io.BytesIO(png))[..., :3]
    rgb = np.array(matplotlib.colors.to_rgb(colour))
    return int((np.abs(img - rgb).max(axis=-1) < tol).sum())


def test_the_last_arm_does_not_hide_the_others():
    """Four identical arms: every arm's colour still shows on the figure."""
    t = np.linspace(0, 96, 300)
    same = _curves(t, n=1)
    arms = [plotting.ArmCurves(f"arm{k}", same) for k in range(4)]
    buf = io.BytesIO()
    plotting.plot_arms(buf, time_h=t, arms=arms, title="identical arms")
    counts = [_colour_pixels(buf.getvalue(), plotting.ARM_COLOURS[k]) for k in range(4)]
    assert min(counts) > 1000, counts  # each arm shows as a stripe (one arm alone: ~2000 pixels a panel)


def test_taper_lengths_every_arm_visible():
    """The built-in scenario with several arms: each arm's colour shows on the figure."""
    from pkpd.run import run
    from pkpd.scenario import load_scenario

    result = run(load_scenario("taper-lengths", n_subjects=3, seed=1), plot=True)
    buf = io.BytesIO()
    plotting.plot_run(result, buf)
    counts = [_colour_pixels(buf.getvalue(), plotting.ARM_COLOURS[k]) for k in range(len(result.arms))]
    assert len(counts) >= 4
    assert min(counts) > 0.1 * max(counts), counts  # before the fix: the first arm under 3 % of the last


def test_legend_sits_above_the_panels():
    t = np.linspace(0, 48, 200)
    fig = _figure([plotting.ArmCurves(f"arm{k}", _curves(t, seed=k)) for k in range(3)], t)
    try:
        fig.canvas.draw()
        (legend,) = fig.legends
        top = max(ax.get_window_extent().y1 for ax in fig.axes)
        assert legend.get_window_extent().y0 > top
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------
# The CSF panel: lumbar and biophase, not their sum


def _csf_medians(ax, t):
    return [line for line in ax.get_lines() if len(line.get_xdata()) == t.size]


def test_csf_panel_draws_lumbar_and_biophase_separately():
    t = np.linspace(0, 48, 200)
    data = _curves(t, lumbar=0.02, biophase=0.015)
    fig = _figure([plotting.ArmCurves("a", data)], t)
    try:
        csf = _axes(fig)[1]
        lines = _csf_medians(csf, t)
        assert len(lines) == 2
        assert {line.get_linestyle() for line in lines} == {"-", "--"}
        peaks = sorted(float(np.max(line.get_ydata())) for line in lines)
        assert peaks == pytest.approx([0.015, 0.02], rel=0.1)  # the two terms, not the sum (0.035)
        assert "lumbar" in csf.get_title(loc="left") and "biophase" in csf.get_title(loc="left")
        assert csf.get_yscale() == "linear"
    finally:
        plt.close(fig)


def test_csf_panel_goes_logarithmic_when_levels_differ_widely():
    t = np.linspace(0, 48, 200)
    fig = _figure([plotting.ArmCurves("it", _curves(t, lumbar=0.8, biophase=0.02))], t)
    try:
        csf = _axes(fig)[1]
        assert len(_csf_medians(csf, t)) == 2
        assert csf.get_yscale() == "log"
        lo, hi = csf.get_ylim()
        assert lo < 0.02 < 0.8 < hi
    finally:
        plt.close(fig)


def test_csf_panel_without_the_split_readouts_draws_the_sum():
    t = np.linspace(0, 48, 200)
    fig = _figure([plotting.ArmCurves("a", _curves(t))], t)
    try:
        csf = _axes(fig)[1]
        assert len(_csf_medians(csf, t)) == 1
        assert "+" in csf.get_title(loc="left")
    finally:
        plt.close(fig)


def test_model_extra_readouts_add_up_to_the_csf_readout():
    from pkpd import model

    assert set(model.EXTRA_READOUTS).isdisjoint(model.READOUTS)  # timecourse.csv keeps its columns
    rng = np.random.default_rng(0)
    states = {"A_lum": rng.random(4), "A_csf": rng.random(4)}
    ind = {"V_lum": np.full(4, 0.05), "V_csf": np.full(4, 0.1)}
    total = model.readout("csf_mg_per_l", states, ind)
    parts = model.readout("lumbar_csf_mg_per_l", states, ind) + model.readout("biophase_mg_per_l", states, ind)
    np.testing.assert_allclose(parts, total)
    for name in model.EXTRA_READOUTS:
        assert set(model.READOUT_STATES[name]) <= set(model.READOUT_STATES["csf_mg_per_l"])
        assert model.EXTRA_READOUT_INFO[name][0] == "mg/L"


def test_toxic_line_on_a_panel_in_other_units():
    fig, (a, b) = plt.subplots(1, 2)
    try:
        a.plot([0, 1, 2], [0, 740.0, 100.0])  # ng/mL
        b.plot([0, 1, 2], [0, 300.0, 100.0])
        assert plotting.toxic_line(a, scale=1000)
        assert not plotting.toxic_line(b, scale=1000)
        (line,) = [x for x in a.get_lines() if x.get_gid() == "toxic-line"]
        assert line.get_ydata()[0] == pytest.approx(700.0)
    finally:
        plt.close(fig)
