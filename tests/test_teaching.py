"""pkpd.teaching: window statistics checked against exact answers, model questions
against closed forms, explorers and sliders as smoke tests."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import pkpd
from pkpd import teaching
from pkpd.errors import ParameterError
from pkpd.simulate import SimulationResult
from pkpd.units import UM_PER_MG_PER_L


def _result(t, **readouts):
    """A hand-made result: readouts given as (N, T) arrays on times t (h)."""
    t = np.asarray(t, dtype=float)
    ro = {k: np.atleast_2d(np.asarray(v, dtype=float)) for k, v in readouts.items()}
    n = next(iter(ro.values())).shape[0]
    return SimulationResult(time_h=t, readouts=ro, parameters={}, subject_ids=np.arange(n))


# ---------------------------------------------------------------------------
# Window statistics


def test_over_window_exact_for_piecewise_linear():
    t = np.arange(0.0, 11.0)  # 0..10 h
    res = _result(t, occupancy=[t, 2 * t + 1])  # straight lines: exact under linear interpolation
    mean = teaching.over_window(res, "occupancy", start_h=2.5, end_h=7.25)
    np.testing.assert_allclose(mean, [(2.5 + 7.25) / 2, 2 * (2.5 + 7.25) / 2 + 1], rtol=1e-12)
    np.testing.assert_allclose(teaching.over_window(res, "occupancy", start_h=2.5, end_h=7.25, statistic="max"), [7.25, 15.5])
    np.testing.assert_allclose(teaching.over_window(res, "occupancy", start_h=2.5, end_h=7.25, statistic="min"), [2.5, 6.0])
    np.testing.assert_allclose(teaching.over_window(res, "occupancy"), [5.0, 11.0])  # whole run


def test_over_window_rejects_bad_input():
    res = _result([0.0, 1.0, 2.0], occupancy=[[0.0, 1.0, 2.0]])
    with pytest.raises(ParameterError, match="statistic: must be one of mean, max, min; got 'median'"):
        teaching.over_window(res, "occupancy", statistic="median")
    with pytest.raises(ParameterError, match="end_h: must be > start_h"):
        teaching.over_window(res, "occupancy", start_h=1.0, end_h=1.0)
    with pytest.raises(ParameterError, match=r"must lie inside the run \[0, 2\] h"):
        teaching.over_window(res, "occupancy", start_h=0.0, end_h=3.0)


def test_iv_infusion_steady_state_mean_is_rate_over_clearance():
    rate = 24.0  # mg/day = 1 mg/h
    reg = pkpd.Regimen(infusions=(pkpd.Infusion("iv_infusion", rate_mg_per_day=rate, start_h=0.0, stop_h=240.0),))
    res = pkpd.simulate(reg, duration_h=240.0, output_step_h=1.0, outputs=("plasma_mg_per_l",))
    mean = teaching.over_window(res, "plasma_mg_per_l", start_h=216.0, end_h=240.0)
    assert mean[0] == pytest.approx(1.0 / res.parameters["CL"][0], rel=1e-6)


def test_daily_mean_shapes_and_values():
    t = np.arange(0.0, 72.0 + 1e-9, 0.5)
    res = _result(t, excitability=[np.full(t.size, 0.8), t / 24.0])
    day, values = teaching.daily_mean(res, "excitability")
    np.testing.assert_array_equal(day, [1, 2, 3])
    assert values.shape == (2, 3)
    np.testing.assert_allclose(values[0], 0.8)
    np.testing.assert_allclose(values[1], [0.5, 1.5, 2.5])
    with pytest.raises(ParameterError, match="at least one day"):
        teaching.daily_mean(_result([0.0, 12.0], excitability=[[1.0, 1.0]]), "excitability")


def test_percentile_bands_match_numpy():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(50, 7))
    res = _result(np.arange(7.0), occupancy=y)
    bands = teaching.percentile_bands(res, "occupancy", (5, 50, 95))
    assert bands.shape == (3, 7)
    np.testing.assert_allclose(bands, np.percentile(y, [5, 50, 95], axis=0))
    with pytest.raises(ParameterError, match=r"percentiles: must be values in \[0, 100\]"):
        teaching.percentile_bands(res, "occupancy", (5, 150))


def test_fraction_reaching_counts_subjects():
    t = np.arange(0.0, 5.0)
    levels = np.array([0.1, 0.2, 0.3, 0.4])[:, None] * np.ones(t.size)
    res = _result(t, occupancy=levels)
    assert teaching.fraction_reaching(res, "occupancy", 0.25) == 0.5
    assert teaching.fraction_reaching(res, "occupancy", 0.2) == 0.75  # >= counts
    assert teaching.fraction_reaching(res, "occupancy", 0.2, above=False) == 0.5
    swing = _result(t, occupancy=[[0.0, 0.5, 0.0, 0.5, 0.0]])
    assert teaching.fraction_reaching(swing, "occupancy", 0.4, statistic="max") == 1.0
    assert teaching.fraction_reaching(swing, "occupancy", 0.4, statistic="mean") == 0.0


def test_exposure_table_single_iv_bolus_and_oral_dose():
    dose = 10.0
    res = pkpd.simulate(
        [pkpd.Regimen((pkpd.Dose("iv_bolus", dose),)), pkpd.Regimen((pkpd.Dose("oral_ir", dose),))],
        duration_h=96.0, output_step_h=0.02,
    )
    tab = teaching.exposure_table(res)
    p = res.parameters
    assert set(tab) == {"cmax_mg_per_l", "tmax_h", "cmin_mg_per_l", "auc_mg_h_per_l", "mean_occupancy"}
    assert tab["cmax_mg_per_l"][0] == pytest.approx(dose / p["V_c"][0], rel=1e-9)  # right-continuous bolus
    assert tab["tmax_h"][0] == 0.0
    # AUC(0-inf) = F * dose / CL (the tail after 96 h is negligible)
    assert tab["auc_mg_h_per_l"][0] == pytest.approx(dose / p["CL"][0], rel=1e-3)
    assert tab["auc_mg_h_per_l"][1] == pytest.approx(p["F_ir"][1] * dose / p["CL"][1], rel=1e-3)
    assert tab["cmin_mg_per_l"][1] == 0.0  # before the oral dose is absorbed
    # the spec's anchor: 10 mg oral peaks near 0.149 mg/L at about 1.3 h
    assert tab["cmax_mg_per_l"][1] == pytest.approx(0.149, abs=0.001)
    assert tab["tmax_h"][1] == pytest.approx(1.3, abs=0.05)
    shifted = teaching.exposure_table(res, start_h=1.0, end_h=5.0)
    assert shifted["tmax_h"][1] == pytest.approx(tab["tmax_h"][1] - 1.0, abs=1e-9)


def test_rebound_summary_on_a_piecewise_linear_curve():
    # 0.8 until the stop at 10 h, straight up to 1.3 at 20 h, straight down to 1.0 at 50 h
    t = np.array([0.0, 10.0, 20.0, 50.0, 60.0])
    res = _result(t, excitability=[[0.8, 0.8, 1.3, 1.0, 1.0]])
    r = teaching.rebound_summary(res, stop_h=10.0)
    assert r["peak_excitability"][0] == pytest.approx(1.3)
    assert r["peak_time_h"][0] == pytest.approx(10.0)
    assert r["onset_h"][0] == pytest.approx(10.0 * 0.2 / 0.5)  # crosses 1 at 14 h
    # above 1.2 from 18 h (rising) to 30 h (falling): 12 h
    assert r["hours_above_threshold"][0] == pytest.approx(12.0)
    never = teaching.rebound_summary(_result(t, excitability=[[0.8] * 5]), stop_h=10.0)
    assert math.isnan(never["onset_h"][0]) and never["hours_above_threshold"][0] == 0.0


def test_rebound_after_abrupt_stop_matches_spec_anchor():
    reg = pkpd.titration(5.0, 20.0)  # 12 days, last dose at 280 h
    res = pkpd.simulate(reg, duration_h=reg.last_dose_h + 96.0, output_step_h=0.5, outputs=("excitability",))
    r = teaching.rebound_summary(res, stop_h=reg.last_dose_h)
    assert r["peak_excitability"][0] > 1.1
    assert 12.0 < r["peak_time_h"][0] < 72.0  # within the clinical 12-72 h window
    assert 0.0 < r["onset_h"][0] < r["peak_time_h"][0]


def test_format_table():
    text = teaching.format_table({"name": ["a", "bb"], "x": [1.23456, 10.0]}, formats={"x": ".2f"})
    lines = text.splitlines()
    assert lines[0] == "name      x"
    assert lines[1] == "----  -----"
    assert lines[2] == "   a   1.23"
    assert lines[3] == "  bb  10.00"
    assert teaching.format_table({"v": [0.000123456]}).splitlines()[2] == "0.000123"
    with pytest.raises(ParameterError, match=r"columns: must all have the same length; got lengths \[1, 2\]"):
        teaching.format_table({"a": [1], "b": [1, 2]})


# ---------------------------------------------------------------------------
# Model questions


def test_typical_subjects():
    pop = teaching.typical_subjects(crcl_ml_min=[100.0, 30.0, 15.0])
    assert pop.n == 3
    np.testing.assert_array_equal(pop.crcl_ml_min, [100.0, 30.0, 15.0])
    np.testing.assert_array_equal(pop.weight_kg, [70.0, 70.0, 70.0])
    assert all(np.all(v == 0) for v in pop.eta.values())
    pop2 = teaching.typical_subjects(crcl_ml_min=60.0, weight_kg=[50.0, 90.0])
    np.testing.assert_array_equal(pop2.crcl_ml_min, [60.0, 60.0])
    res = pkpd.simulate(pkpd.Regimen((pkpd.Dose("oral_ir", 5.0),)), duration_h=1.0, population=pop)
    p = pkpd.default_parameters()
    np.testing.assert_allclose(res.parameters["CL"], p.CL_nr + p.CL_r * np.array([1.0, 0.3, 0.15]))
    with pytest.raises(ParameterError, match="lengths must match"):
        teaching.typical_subjects(crcl_ml_min=[1.0, 2.0], weight_kg=[1.0, 2.0, 3.0])


def test_occupancy_curve_and_its_inverse():
    p = pkpd.default_parameters()
    assert teaching.occupancy_at(0.0) == 0.0
    c_half = teaching.concentration_for_occupancy(0.5)
    # half occupancy needs c = 1 + g in units of Kd
    assert c_half == pytest.approx((1 + p.g) * p.Kd / UM_PER_MG_PER_L, rel=1e-12)
    assert teaching.occupancy_at(c_half) == pytest.approx(0.5, rel=1e-12)
    theta = np.array([0.0, 0.1, 0.37, 0.9])
    np.testing.assert_allclose(teaching.occupancy_at(teaching.concentration_for_occupancy(theta)), theta, atol=1e-12)
    weaker = p.replace(Kd=2 * p.Kd)
    assert teaching.concentration_for_occupancy(0.5, weaker) == pytest.approx(2 * c_half)
    with pytest.raises(ParameterError, match=r"occupancy: must be in \[0, 1\)"):
        teaching.concentration_for_occupancy(1.0)


def test_occupancy_at_matches_the_simulated_readout():
    res = pkpd.simulate(pkpd.Regimen((pkpd.Dose("oral_ir", 20.0),)), duration_h=12.0, output_step_h=0.5)
    # after oral dosing the lumbar compartment is empty, so csf_mg_per_l is the biophase level
    np.testing.assert_allclose(teaching.occupancy_at(res.csf_mg_per_l[0]), res.occupancy[0], rtol=1e-12, atol=1e-15)


def test_matching_infusion_rate_closed_form_for_plasma():
    # a constant IV infusion at steady state gives plasma = rate / CL exactly
    target = 0.2  # mg/L
    rate = teaching.matching_infusion_rate(target, readout="plasma_mg_per_l", route="iv_infusion", days=4.0)
    cl = pkpd.default_parameters().CL_nr + pkpd.default_parameters().CL_r
    assert rate == pytest.approx(target * cl * 24.0, rel=1e-4)


def test_matching_infusion_rate_for_occupancy():
    rate = teaching.matching_infusion_rate(0.25, days=3.0)
    res = pkpd.simulate(
        pkpd.Regimen(infusions=(pkpd.Infusion("intrathecal_infusion", rate_mg_per_day=rate, start_h=0.0, stop_h=72.0),)),
        duration_h=72.0, output_step_h=0.5, outputs=("occupancy",),
    )
    assert teaching.over_window(res, "occupancy", start_h=48.0, end_h=72.0)[0] == pytest.approx(0.25, rel=1e-4)
    with pytest.raises(ParameterError, match=r"target: 2.0 is outside the levels reached with rates in \(0.0001, 5000.0\) mg/day"):
        teaching.matching_infusion_rate(2.0, days=2.0)
    with pytest.raises(ParameterError, match="days: must be >= 2"):
        teaching.matching_infusion_rate(0.2, days=1.0)


# ---------------------------------------------------------------------------
# Explorers and sliders


def _lines(fig):
    return sum(len(ax.get_lines()) for ax in fig.axes)


@pytest.mark.parametrize(
    "fn, kwargs",
    [
        (teaching.explore_oral, {}),
        (teaching.explore_oral, {"route": "oral_er", "every_h": 24.0, "dose_mg": 60.0, "days": 2.0}),
        (teaching.explore_occupancy, {}),
        (teaching.explore_tolerance, {"days": 5.0}),
        (teaching.explore_taper, {}),
        (teaching.explore_taper, {"taper_days": 0.0}),
        (teaching.explore_kidneys, {"days": 2.0}),
        (teaching.explore_high_dose, {"n_subjects": 20}),
    ],
    ids=lambda v: getattr(v, "__name__", "") or ",".join(f"{k}={x}" for k, x in v.items()),
)
def test_explorers_return_a_figure(fn, kwargs):
    from matplotlib.figure import Figure

    fig = fn(**kwargs)
    assert isinstance(fig, Figure)
    assert _lines(fig) >= 1
    titles = " ".join([ax.get_title() for ax in fig.axes] + [fig._suptitle.get_text() if fig._suptitle else ""])
    assert any(ch.isdigit() for ch in titles), "the title carries a computed number"


def test_explore_taper_title_numbers():
    fig = teaching.explore_taper(taper_days=14.0)
    title = fig.axes[0].get_title()
    taper, stop = (float(x.split()[-1]) for x in title.split(":", 1)[1].split(","))
    assert 1.0 < taper < stop  # a taper keeps the rebound smaller


def test_interactive_without_ipywidgets_draws_once(monkeypatch):
    from matplotlib.figure import Figure

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets -> ImportError
    out = teaching.interactive(teaching.explore_kidneys, crcl_ml_min=(5.0, 120.0, 5.0))
    assert isinstance(out, Figure)
    assert "CrCl 30" in " ".join(t.get_text() for t in out.axes[0].get_legend().get_texts())


def test_interactive_with_ipywidgets_gives_sliders():
    widgets = pytest.importorskip("ipywidgets")
    w = teaching.interactive(teaching.explore_kidneys, crcl_ml_min=(5.0, 120.0, 5.0), dose_mg=(2.5, 20.0, 2.5))
    assert isinstance(w, widgets.interactive)
    sliders = {c.description: c for c in w.children if isinstance(c, widgets.FloatSlider)}
    assert sliders["crcl_ml_min"].value == 30.0  # the explorer's default
    assert sliders["dose_mg"].min == 2.5


def test_interactive_checks_names():
    def needs_value(x):  # no default
        return x

    with pytest.raises(ParameterError, match="dose: explore_oral has no argument of this name"):
        teaching.interactive(teaching.explore_oral, dose=(1.0, 2.0, 0.5))
    with pytest.raises(ParameterError, match="x: needs_value gives no default for it"):
        teaching.interactive(needs_value, x=(1.0, 2.0, 0.5))


# ---------------------------------------------------------------------------
# One way through the code: the teaching helpers give summary.csv's numbers


from pkpd import metrics  # noqa: E402
from pkpd import run as prun  # noqa: E402
from pkpd.population import sample_population  # noqa: E402
from pkpd.scenario import load_scenario, parse_scenario  # noqa: E402

STOPPED = """
name = "stopped"
duration_h = 120.0
output_step_h = 1.0
[subjects]
n = 4
seed = 3
variability = true
[[doses]]
route = "oral_ir"
amount_mg = 20.0
at_h = 0.0
every_h = 8.0
count = 6
"""

SINGLE = """
name = "single"
duration_h = 48.0
output_step_h = 1.0
[subjects]
n = 3
seed = 5
variability = true
[[doses]]
route = "oral_ir"
amount_mg = 20.0
at_h = 1.0
"""


def _same_subjects(sc, times_h):
    """The run's subjects through the scenario's only arm, on ``times_h``."""
    s = sc.subjects
    pop = sample_population(s.n, seed=s.seed, variability=s.variability, weight_kg=s.weight_kg,
                            crcl_ml_min=s.crcl_ml_min)
    arm = sc.arms[0]
    return pkpd.simulate(arm.regimen, duration_h=sc.duration_h, parameters=arm.parameters, population=pop,
                         times_h=times_h)


def test_teaching_and_summary_agree_on_the_same_run():
    sc = parse_scenario(STOPPED, source="stopped.toml")
    result = prun.run(sc)
    m = result.arms[0].metrics
    a, b = metrics.last_dosing_interval([0, 8, 16, 24, 32, 40], sc.duration_h)
    assert (a, b) == (40.0, 48.0) and result.arms[0].interval == (a, b)
    # NCA: the summary's fine grid over the last interval
    fine = _same_subjects(sc, metrics.nca_times(a, b))
    tab = teaching.exposure_table(fine, start_h=a, end_h=b)
    np.testing.assert_allclose(tab["cmax_mg_per_l"], m["cmax_last_interval"], rtol=1e-10)
    np.testing.assert_allclose(tab["tmax_h"], m["tmax_last_interval"], rtol=1e-9)
    np.testing.assert_allclose(tab["cmin_mg_per_l"], m["cmin_last_interval"], rtol=1e-10)
    np.testing.assert_allclose(tab["auc_mg_h_per_l"], m["auc_last_interval"], rtol=1e-10)
    # a coarser output step differs only by its sampling error
    coarse = _same_subjects(sc, np.arange(0.0, 120.0 + 1e-9, 0.25))
    tab4 = teaching.exposure_table(coarse, start_h=a, end_h=b)
    np.testing.assert_allclose(tab4["cmax_mg_per_l"], m["cmax_last_interval"], rtol=3e-3)
    np.testing.assert_allclose(tab4["auc_mg_h_per_l"], m["auc_last_interval"], rtol=1e-4)
    # rebound and half-life: the summary grid after the last dose
    grid = prun.evaluation_grid(sc.duration_h, sc.output_step_h).summary_time_h
    summ = _same_subjects(sc, grid)
    r = teaching.rebound_summary(summ, stop_h=40.0)
    # (the slow states differ by ~1e-10 between the two runs' integration grids)
    np.testing.assert_allclose(r["peak_excitability"], m["peak_rebound_excitability"], rtol=1e-8)
    np.testing.assert_allclose(r["peak_time_h"], m["peak_rebound_time_after_last_dose"], rtol=1e-8)
    np.testing.assert_allclose(metrics.terminal_half_life(summ.time_h, summ.plasma_mg_per_l, after_h=40.0),
                               m["terminal_half_life"], rtol=1e-10)
    np.testing.assert_allclose(teaching.over_window(summ, "cns_depression", statistic="max"),
                               m["peak_cns_depression"], rtol=1e-10)
    assert np.isfinite(m["peak_rebound_excitability"]).all() and not result.warnings


def test_single_dose_summary_has_cmax_tmax_and_auc_and_teaching_agrees():
    sc = parse_scenario(SINGLE, source="single.toml")
    result = prun.run(sc)
    rows = {r[1]: r for r in result.summary_rows()}
    for name in ("cmax_single_dose", "tmax_single_dose", "auc_0_last_single_dose", "auc_0_inf_single_dose",
                 "terminal_half_life", "peak_cns_depression"):
        assert all(math.isfinite(x) for x in rows[name][3:]), name
    for name in ("cmax_last_interval", "auc_last_interval", "cmin_last_interval"):
        assert all(math.isnan(x) for x in rows[name][3:]), name
    assert rows["auc_0_last_single_dose"][2] == "mg*h/L" and rows["tmax_single_dose"][2] == "h"
    m = result.arms[0].metrics
    fine = _same_subjects(sc, np.concatenate([[0.0], metrics.nca_times(1.0, 48.0)]))
    tab = teaching.exposure_table(fine, start_h=1.0, end_h=48.0)
    np.testing.assert_allclose(tab["cmax_mg_per_l"], m["cmax_single_dose"], rtol=1e-10)
    np.testing.assert_allclose(tab["tmax_h"], m["tmax_single_dose"], rtol=1e-9)
    np.testing.assert_allclose(tab["auc_mg_h_per_l"], m["auc_0_last_single_dose"], rtol=1e-10)
    # AUC 0-inf = F dose / CL for any linear model
    p = fine.parameters
    np.testing.assert_allclose(m["auc_0_inf_single_dose"], p["F_ir"] * 20.0 / p["CL"], rtol=1e-3)
    # after one dose the small overshoot above 1 peaks inside the run (an interior maximum)
    assert (m["peak_rebound_excitability"] > 1.0).all()
    assert (m["peak_rebound_time_after_last_dose"] < 47.0 - 0.5).all() and not result.warnings


def test_ir_vs_er_summary_has_no_end_of_run_peak_and_no_half_life_inside_an_interval():
    result = prun.run(load_scenario("ir-vs-er", n_subjects=3))
    rows = {(r[0], r[1]): r[3:] for r in result.summary_rows()}
    for arm in ("ir-20mg-every-8h", "er-60mg-daily"):
        # dosing runs to the end of the run: no stop, no rebound, no washout
        for name in ("peak_rebound_excitability", "peak_rebound_time_after_last_dose", "terminal_half_life",
                     "cmax_single_dose", "auc_0_inf_single_dose"):
            assert all(math.isnan(x) for x in rows[arm, name]), (arm, name)
        for name in ("cmax_last_interval", "tmax_last_interval", "cmin_last_interval", "auc_last_interval",
                     "peak_cns_depression", "hours_cns_depression_above_0.5"):
            assert all(math.isfinite(x) for x in rows[arm, name]), (arm, name)
    assert not result.warnings
    # steady state: AUC over the interval = F x dose / CL (typical subjects: CL = 8.5 L/h)
    assert rows["ir-20mg-every-8h", "auc_last_interval"][0] == pytest.approx(0.74 * 20 / 8.5, rel=1e-4)
    assert rows["er-60mg-daily", "auc_last_interval"][0] == pytest.approx(0.70 * 60 / 8.5, rel=1e-4)
    assert 1.0 < rows["ir-20mg-every-8h", "tmax_last_interval"][0] < 1.4
    assert "peak excitability after last dose" in result.table() and "mg*h/L" in result.table()


def test_taper_explorer_says_why_a_slider_position_does_not_fit():
    import matplotlib

    matplotlib.use("Agg")
    from pkpd import teaching

    fig = teaching.explore_taper(taper_days=10.0, steps=7)
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "whole number of every_h = 8 h dosing intervals" in text and "steps = 3, 5, 6 or 10 fit" in text
