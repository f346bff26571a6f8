"""Summary metrics against closed forms."""

import math

import numpy as np
import pytest

from pkpd import metrics


def test_auc_of_exponential_matches_closed_form():
    k, c0, tau = 0.2, 3.0, 8.0
    t = np.linspace(0.0, tau, 161)
    c = c0 * np.exp(-k * t)[None, :]
    exact = c0 * (1 - math.exp(-k * tau)) / k
    assert metrics.auc_simpson(t, c)[0] == pytest.approx(exact, rel=1e-9)
    # the trapezoid is second order: error about h**2 / 12 * k**2 relative
    assert metrics.auc_trapezoid(t, c)[0] == pytest.approx(exact, rel=2e-5)


def test_simpson_is_exact_for_a_cubic_and_falls_back_on_odd_grids():
    t = np.linspace(1.0, 3.0, 5)
    y = t**3 - 2 * t
    exact = (3**4 - 1) / 4 - (9 - 1)
    assert metrics.auc_simpson(t, y) == pytest.approx(exact, rel=1e-13)
    t_odd = np.linspace(0.0, 1.0, 4)  # three intervals: trapezoid
    assert metrics.auc_simpson(t_odd, t_odd) == pytest.approx(0.5, rel=1e-13)


def test_half_life_of_a_monoexponential():
    t = np.arange(0.0, 72.0, 0.5)
    k = math.log(2) / 3.5
    c = np.vstack([5.0 * np.exp(-k * t), 0.01 * np.exp(-2 * k * t)])
    hl = metrics.terminal_half_life(t, c)
    assert hl == pytest.approx([3.5, 1.75], rel=1e-10)


def test_half_life_ignores_absorption_and_distribution():
    # Bateman absorption (ka = 1/h) into a two-exponential disposition.
    t = np.arange(0.0, 96.0, 0.25)
    alpha, beta, ka = 1.29, 0.191, 1.0
    c = 2.0 * np.exp(-alpha * t) + 1.0 * np.exp(-beta * t) - 3.0 * np.exp(-ka * t)
    hl = metrics.terminal_half_life(t, c[None, :], after_h=0.0)
    assert hl[0] == pytest.approx(math.log(2) / beta, rel=1e-3)


def test_half_life_after_a_stop_uses_only_the_tail():
    t = np.arange(0.0, 100.0, 0.5)
    k = math.log(2) / 4.0
    c = np.where(t < 50, 1.0, np.exp(-k * (t - 50)))
    assert metrics.terminal_half_life(t, c[None], after_h=50.0)[0] == pytest.approx(4.0, rel=1e-10)


def test_half_life_is_nan_without_decline_or_points():
    t = np.arange(0.0, 10.0, 1.0)
    assert np.isnan(metrics.terminal_half_life(t, np.ones((1, t.size))))[0]
    assert np.isnan(metrics.terminal_half_life(t, np.zeros((1, t.size))))[0]
    assert np.isnan(metrics.terminal_half_life(t, np.exp(-t)[None], after_h=9.5))[0]


def test_hours_above_a_triangle_and_a_sine():
    t = np.array([0.0, 10.0, 20.0])
    y = np.array([[0.0, 2.0, 0.0]])  # above 1 from 5 h to 15 h
    assert metrics.hours_above(t, y, 1.0)[0] == pytest.approx(10.0)
    # sin(t) > 0.5 on (pi/6, 5 pi/6) in each period: 2 pi / 3 per 2 pi
    t = np.linspace(0.0, 4 * math.pi, 20001)
    hrs = metrics.hours_above(t, np.sin(t)[None], 0.5)[0]
    assert hrs == pytest.approx(2 * (2 * math.pi / 3), rel=1e-6)
    assert metrics.hours_above(t, np.zeros((1, t.size)), 0.0)[0] == 0.0
    assert metrics.hours_above(t, np.ones((1, t.size)), 0.0)[0] == pytest.approx(4 * math.pi)


def test_peak_refinement_finds_the_vertex_between_samples():
    t = np.arange(0.0, 10.0, 0.5)
    y = np.vstack([1.0 - (t - 3.3) ** 2, 2.0 - 0.5 * (t - 7.1) ** 2])
    val, at = metrics.peak(t, y, refine=True)
    assert val == pytest.approx([1.0, 2.0], abs=1e-12)
    assert at == pytest.approx([3.3, 7.1], abs=1e-12)
    raw, _ = metrics.peak(t, y)
    assert np.all(raw < val)
    low, at_low = metrics.trough(t, -y, refine=True)
    assert low == pytest.approx([-1.0, -2.0], abs=1e-12)


def test_peak_refinement_never_lifts_a_bolus_jump():
    # IV boluses every 8 h sampled every 0.5 h: the highest sample is just
    # after a dose; a parabola through it and the pre-dose sample would
    # overshoot, so the sample is kept (and the same for the trough before it).
    t = np.arange(0.0, 24.0 + 1e-9, 0.5)
    c = sum(np.where(t >= d, np.exp(-0.2 * (t - d)), 0.0) for d in (0.0, 8.0, 16.0))[None]
    val, at = metrics.peak(t[4:], c[:, 4:], refine=True)
    assert val[0] == c[0, t == 16.0][0] and at[0] == 16.0
    low, at_low = metrics.trough(t[20:40], c[:, 20:40], refine=True)
    assert low[0] == c[0, t == 15.5][0] and at_low[0] == 15.5


def test_peak_refinement_stays_between_sample_and_truth_at_a_kink():
    t = np.arange(0.0, 10.0, 0.5)
    y = np.exp(-np.abs(t - 3.2))[None]  # true peak 1 at 3.2 h, between samples
    raw, _ = metrics.peak(t, y)
    val, at = metrics.peak(t, y, refine=True)
    assert raw[0] <= val[0] <= 1.0
    assert abs(at[0] - 3.2) < 0.1


def test_peak_refinement_beats_the_raw_sample_on_an_oral_curve():
    ka, k = 1.0, 0.2
    tmax = math.log(ka / k) / (ka - k)
    cmax = math.exp(-k * tmax) - math.exp(-ka * tmax)
    worst_raw = worst_refined = 0.0
    for shift in np.linspace(0.0, 0.25, 11)[:-1]:
        t = np.concatenate([[0.0], np.arange(0.0, 24.0, 0.25) + shift])
        c = (np.exp(-k * t) - np.exp(-ka * t))[None]
        worst_raw = max(worst_raw, abs(metrics.peak(t, c)[0][0] / cmax - 1))
        val, at = metrics.peak(t, c, refine=True)
        worst_refined = max(worst_refined, abs(val[0] / cmax - 1))
        assert at[0] == pytest.approx(tmax, abs=0.05)
    assert worst_refined < 5e-4 and worst_refined < worst_raw / 4


@pytest.mark.parametrize(
    "doses, duration, expected",
    [
        ([0, 8, 16, 24], 100.0, (24.0, 32.0)),  # stop: interval after the last dose
        ([0, 8, 16, 24], 28.0, (16.0, 24.0)),  # run ends first: the previous one
        ([0, 8, 16, 40], 100.0, (40.0, 64.0)),  # a missed dose lengthens it
        ([0, 0, 12], 100.0, (12.0, 24.0)),  # simultaneous doses count once
        ([5.0], 100.0, None),  # one dose: no dosing interval
        ([], 100.0, None),
        ([0, 8, 200], 100.0, (8.0, 16.0)),  # doses after the end are ignored
        ([0, 200], 100.0, None),
    ],
)
def test_last_dosing_interval(doses, duration, expected):
    assert metrics.last_dosing_interval(doses, duration) == expected


def _readouts(t, c, exc, n=1):
    return {
        "plasma_mg_per_l": np.broadcast_to(c, (n, t.size)),
        "occupancy": 0.5 * np.exp(-(((t - 30.3) / 10) ** 2))[None].repeat(n, 0),
        "receptor_density": 1 - 0.3 * np.exp(-(((t - 40.1) / 20) ** 2))[None].repeat(n, 0),
        "excitability": np.broadcast_to(exc, (n, t.size)),
        "cns_depression": np.broadcast_to(np.clip(c / 2.0, 0, 1), (n, t.size)),
    }


def test_subject_metrics_on_a_constructed_run():
    # A steady one-compartment profile (IV bolus 10 mg every 8 h, k = 0.2/h,
    # V = 10 L), stopped after the dose at 16 h, sampled on a uniform grid.
    k, v, tau = 0.2, 10.0, 8.0
    t = np.round(np.arange(0.0, 96.0 + 1e-9, 0.05), 10)
    doses = np.array([0.0, 8.0, 16.0])
    c = sum(np.where(t >= d, 10.0 / v * np.exp(-k * (t - d)), 0.0) for d in doses)[None]
    exc = np.where(t < 40, 0.8, np.where(t < 60, 1.0 + (t - 40) / 50, 1.4 - (t - 60) / 90))[None]
    dosing = metrics.describe_dosing(doses, 96.0)
    assert dosing.interval == (16.0, 24.0) and dosing.washout_h == 16.0 and dosing.single_dose is None
    m = metrics.subject_metrics(t, _readouts(t, c, exc), dosing=dosing)
    assert set(m) == set(metrics.METRIC_NAMES)
    c_at_16 = sum(math.exp(-k * (16 - d)) for d in doses)  # mg/L just after the dose
    assert m["cmax_last_interval"][0] == pytest.approx(c_at_16, rel=1e-12)  # the jump is never refined
    assert m["tmax_last_interval"][0] == pytest.approx(0.0, abs=1e-12)
    assert m["cmin_last_interval"][0] == pytest.approx(c_at_16 * math.exp(-k * tau), rel=1e-12)
    assert m["auc_last_interval"][0] == pytest.approx(c_at_16 * (1 - math.exp(-k * tau)) / k, rel=1e-8)
    assert m["terminal_half_life"][0] == pytest.approx(math.log(2) / k, rel=1e-9)
    for name in ("cmax_single_dose", "tmax_single_dose", "auc_0_last_single_dose", "auc_0_inf_single_dose"):
        assert np.isnan(m[name]).all()
    assert m["peak_occupancy"][0] == pytest.approx(0.5, rel=1e-6)
    assert m["receptor_density_nadir"][0] == pytest.approx(0.7, rel=1e-6)
    assert m["lowest_excitability"][0] == pytest.approx(0.8)
    assert m["peak_rebound_excitability"][0] == pytest.approx(1.4, abs=1e-4)  # a kink
    assert m["peak_rebound_time_after_last_dose"][0] == pytest.approx(60.0 - 16.0, abs=0.05)
    # above 1.2 from 50 h to 78 h
    assert m["hours_excitability_above_1.2"][0] == pytest.approx(28.0, abs=1e-6)
    # above 0.7 mg/L: after each dose until c falls to 0.7
    c_after = [1.0, 1.0 + math.exp(-k * 8), c_at_16]
    expected = sum(math.log(ca / 0.7) / k for ca in c_after)
    # a bolus jump is drawn as a line over the 0.05 h step before it, which
    # adds the part of that line above 0.7 (doses 2 and 3 jump from below)
    for ca in c_after[1:]:
        cb = ca - 1.0
        expected += 0.05 * (ca - 0.7) / (ca - cb)
    assert m["hours_plasma_above_0.7_mg_per_l"][0] == pytest.approx(expected, abs=1e-3)  # chords: O(h**2)
    # cns_depression = c / 2 here: peak c_at_16 / 2, above 0.5 while c > 1 (only after the third dose)
    assert m["peak_cns_depression"][0] == pytest.approx(c_at_16 / 2, rel=1e-12)
    assert m["hours_cns_depression_above_0.5"][0] == pytest.approx(
        math.log(c_after[1]) / k + math.log(c_at_16) / k + 0.05 * (c_after[1] - 1) + 0.05 * (c_at_16 - 1),
        abs=1e-3)


def test_rebound_still_rising_at_the_end_is_empty_not_the_last_sample():
    # ir-vs-er's old bug: after the last dose excitability falls, then rises
    # until the end of the run; the "peak" was the last sample.
    t = np.linspace(0.0, 8.0, 161)
    exc = (0.79 - 0.3 * np.sin(np.pi * t / 8.0) * np.exp(-t / 4.0))[None]
    exc = exc + 0.01 * t[None] / 8  # still rising at 8 h
    r = metrics.rebound(t, exc, stop_h=0.0)
    assert r["censored"][0] and np.isnan(r["peak"][0]) and np.isnan(r["peak_time_h"][0])
    # a curve that falls, rises to a peak inside the run and falls again: a real peak
    t = np.linspace(0.0, 100.0, 201)
    exc = (1.0 - 0.3 * np.exp(-t / 3) + 0.25 * np.exp(-(((t - 30.2) / 12) ** 2)))[None]
    r = metrics.rebound(t, exc, stop_h=0.0)
    i = np.argmax(np.where(t > 10, exc[0], 0))
    assert not r["censored"][0]
    assert r["peak"][0] == pytest.approx(exc[0, i], abs=2e-4) and r["peak"][0] >= exc[0, i]
    assert r["peak_time_h"][0] == pytest.approx(30.2, abs=0.3)
    # the window starts at the stop: a stop between samples is interpolated
    r2 = metrics.rebound(t, exc, stop_h=0.25)
    assert r2["peak"][0] == pytest.approx(r["peak"][0], rel=1e-12)
    assert r2["peak_time_h"][0] == pytest.approx(r["peak_time_h"][0] - 0.25, rel=1e-12)
    # flat: no peak, not censored
    flat = metrics.rebound(t, np.ones((1, t.size)), stop_h=0.0)
    assert np.isnan(flat["peak"][0]) and not flat["censored"][0]


@pytest.mark.parametrize(
    "doses, infusions, duration, interval, single, washout",
    [
        ([0, 8, 16], [], 168.0, (16.0, 24.0), None, 16.0),  # stop, long follow-up
        (np.arange(0, 161, 8.0), [], 168.0, (160.0, 168.0), None, None),  # ir-vs-er: doses to the end
        (np.arange(0, 145, 24.0), [], 168.0, (144.0, 168.0), None, None),  # ER once a day to the end
        (np.arange(0, 161, 8.0), [], 170.0, (160.0, 168.0), None, 160.0),  # just past the next dose: a stop
        ([2.0], [], 48.0, None, (2.0, 48.0), 2.0),  # single dose
        ([0.0], [(24.0, 360.0)], 360.0, None, (0.0, 24.0), None),  # test bolus, then a pump to the end
        ([0.0], [(0.0, 10.0)], 48.0, None, None, 10.0),  # bolus during an infusion: no single-dose NCA
        ([], [(0.0, 336.0)], 504.0, None, None, 336.0),  # pump stops
        ([], [(0.0, 504.0)], 504.0, None, None, None),  # pump runs to the end
        ([], [], 48.0, None, None, None),  # drug-free
    ],
)
def test_describe_dosing(doses, infusions, duration, interval, single, washout):
    d = metrics.describe_dosing(doses, duration, infusions)
    assert (d.interval, d.single_dose, d.washout_h) == (interval, single, washout)


def test_subject_metrics_of_a_single_oral_dose_match_the_bateman_function():
    # one-compartment oral: C = F D ka / (V (ka - k)) (exp(-k t) - exp(-ka t))
    f_d, v, ka, k = 7.4, 30.0, 1.0, 0.2
    tmax = math.log(ka / k) / (ka - k)
    scale = f_d * ka / (v * (ka - k))
    cmax = scale * (math.exp(-k * tmax) - math.exp(-ka * tmax))
    dosing = metrics.describe_dosing([0.0], 72.0)
    t = np.linspace(0.0, 72.0, 145)  # summary grid, 0.5 h
    tn = metrics.nca_times(*dosing.nca_window)
    conc = lambda x: scale * (np.exp(-k * x) - np.exp(-ka * x))[None]  # noqa: E731
    exc = np.ones((1, t.size))
    m = metrics.subject_metrics(t, _readouts(t, conc(t), exc), dosing=dosing, nca_t_h=tn, nca_plasma=conc(tn))
    assert m["cmax_single_dose"][0] == pytest.approx(cmax, rel=2e-6)  # vertex: O(h**3); the sample is 1e-4 off
    assert m["tmax_single_dose"][0] == pytest.approx(tmax, abs=1e-3)
    auc_last = scale * ((1 - math.exp(-k * 72)) / k - (1 - math.exp(-ka * 72)) / ka)
    assert m["auc_0_last_single_dose"][0] == pytest.approx(auc_last, rel=1e-8)
    assert m["auc_0_inf_single_dose"][0] == pytest.approx(f_d / (k * v), rel=1e-8)  # = F D / CL
    assert m["terminal_half_life"][0] == pytest.approx(math.log(2) / k, rel=2e-5)  # exp(-ka t) left in the tail: 7e-6
    for name in ("cmax_last_interval", "auc_last_interval", "cmin_last_interval"):
        assert np.isnan(m[name]).all()


def test_nca_of_a_one_compartment_bolus_against_closed_forms():
    dose, v, cl = 10.0, 20.0, 5.0
    k = cl / v
    t = metrics.nca_times(0.0, 60.0)
    c = (dose / v * np.exp(-k * t))[None]
    r = metrics.nca(t, c)
    assert r["cmax"][0] == pytest.approx(dose / v, rel=1e-14) and r["tmax_h"][0] == 0.0
    half = metrics.terminal_half_life(t, c)
    assert half[0] == pytest.approx(math.log(2) * v / cl, rel=1e-10)
    assert metrics.auc_to_infinity(r["auc"], c[:, -1], half)[0] == pytest.approx(dose / cl, rel=1e-9)
    assert r["cmin"][0] == pytest.approx(dose / v * math.exp(-k * 60.0), rel=1e-12)


def test_half_life_needs_two_half_lives_of_tail():
    k = math.log(2) / 4.0
    t = np.arange(0.0, 200.0, 0.5)
    c = np.exp(-k * t)[None]
    # the tail below 25 % of the peak starts at 8 h; up to 14 h it spans 1.5 half-lives: nan
    assert np.isnan(metrics.terminal_half_life(t[t <= 14.0], c[:, t <= 14.0]))[0]
    assert metrics.terminal_half_life(t[t <= 17.0], c[:, t <= 17.0])[0] == pytest.approx(4.0, rel=1e-10)


def test_nca_times():
    t = metrics.nca_times(160.0, 168.0)
    assert t[0] == 160.0 and t[-1] == 168.0 and t.size == 161
    assert np.allclose(np.diff(t), 0.05)
    t = metrics.nca_times(0.0, 1.0)
    assert t.size == metrics.NCA_MIN_STEPS + 1
    t = metrics.nca_times(0.0, 1000.0)
    assert t.size == metrics.NCA_MAX_STEPS + 1 and (t.size - 1) % 2 == 0


def test_hours_above_a_linear_ramp():
    # y = 2 t / 10 on [0, 10]: above 0.5 from t = 2.5 on (7.5 h), whatever the samples
    for t in (np.array([0.0, 10.0]), np.linspace(0.0, 10.0, 7), np.array([0.0, 1.0, 4.0, 9.5, 10.0])):
        y = (0.2 * t)[None]
        assert metrics.hours_above(t, y, 0.5)[0] == pytest.approx(7.5, rel=1e-12)
        assert metrics.hours_above(t, 2.0 - y, 0.5)[0] == pytest.approx(7.5, rel=1e-12)  # falling


def test_percentile_bands_are_numpys_linear_percentiles():
    rng = np.random.default_rng(5)
    v = rng.lognormal(size=(37, 11))
    np.testing.assert_array_equal(metrics.percentile_bands(v, (5, 50, 95)), np.percentile(v, [5, 50, 95], axis=0))
    one = v[:1]
    np.testing.assert_array_equal(metrics.percentile_bands(one, (5, 50, 95)), np.repeat(one, 3, axis=0))
    with pytest.raises(ValueError, match=r"percentiles: must be values in \[0, 100\]"):
        metrics.percentile_bands(v, (5, 101))
    med, p05, p95 = metrics.percentiles(v[:, 0])
    assert (med, p05, p95) == tuple(np.percentile(v[:, 0], [50, 5, 95]))


def test_subject_metrics_without_dosing_leave_cells_empty():
    t = np.linspace(0.0, 48.0, 97)
    zeros = np.zeros((2, t.size))
    readouts = {"plasma_mg_per_l": zeros, "occupancy": zeros, "receptor_density": zeros + 1,
                "excitability": zeros + 1, "cns_depression": zeros}
    m = metrics.subject_metrics(t, readouts, dosing=metrics.describe_dosing([], 48.0))
    for name in ("cmax_last_interval", "auc_last_interval", "terminal_half_life", "peak_rebound_excitability",
                 "cmax_single_dose", "auc_0_inf_single_dose"):
        assert np.isnan(m[name]).all()
    assert (m["peak_occupancy"] == 0).all() and (m["lowest_excitability"] == 1).all()
    assert (m["hours_plasma_above_0.7_mg_per_l"] == 0).all() and (m["peak_cns_depression"] == 0).all()


def test_metric_table_has_units_labels_and_rules():
    assert len(set(metrics.METRIC_NAMES)) == len(metrics.METRICS)
    for info in metrics.METRICS:
        assert info.unit in {"mg/L", "h", "mg*h/L", "1"} and info.label and info.meaning
        assert info.applies in {"always", "repeated", "single", "washout", "half_life"}
        assert info.applies == "always" or metrics.applies(info, None) is False


def test_population_summary_leaves_partly_missing_metrics_empty():
    assert metrics.population_summary(np.arange(101.0)) == (50.0, 5.0, 95.0)
    assert all(math.isnan(x) for x in metrics.population_summary([1.0, np.nan, 3.0]))
    assert metrics.percentiles([1.0, np.nan, 3.0])[0] == 2.0  # the teaching helper keeps the finite ones


def test_percentiles():
    v = np.arange(101.0)
    assert metrics.percentiles(v) == (50.0, 5.0, 95.0)
    med, lo, hi = metrics.percentiles([3.0])
    assert med == 3.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(x) for x in metrics.percentiles([np.nan, np.nan]))
    assert metrics.percentiles([1.0, np.nan, 3.0])[0] == 2.0
