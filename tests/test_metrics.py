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


def test_subject_metrics_on_a_constructed_run():
    # A steady one-compartment profile (IV bolus 10 mg every 8 h, k = 0.2/h,
    # V = 10 L), stopped after the dose at 16 h, sampled on a uniform grid.
    k, v, tau = 0.2, 10.0, 8.0
    t = np.round(np.arange(0.0, 96.0 + 1e-9, 0.05), 10)
    doses = np.array([0.0, 8.0, 16.0])
    c = sum(np.where(t >= d, 10.0 / v * np.exp(-k * (t - d)), 0.0) for d in doses)[None]
    exc = np.where(t < 40, 0.8, np.where(t < 60, 1.0 + (t - 40) / 50, 1.4 - (t - 60) / 90))[None]
    readouts = {
        "plasma_mg_per_l": c,
        "occupancy": 0.5 * np.exp(-(((t - 30.3) / 10) ** 2))[None],
        "receptor_density": 1 - 0.3 * np.exp(-(((t - 40.1) / 20) ** 2))[None],
        "excitability": exc,
    }
    interval = metrics.last_dosing_interval(doses, 96.0)
    m = metrics.subject_metrics(t, readouts, interval=interval, stop_h=16.0)
    assert set(m) == set(metrics.METRIC_NAMES)
    c_at_16 = sum(math.exp(-k * (16 - d)) for d in doses)  # mg/L just after the dose
    assert m["cmax_last_interval"][0] == pytest.approx(c_at_16, rel=1e-12)
    assert m["tmax_last_interval"][0] == pytest.approx(0.0, abs=1e-12)
    assert m["cmin_last_interval"][0] == pytest.approx(c_at_16 * math.exp(-k * tau), rel=1e-12)
    assert m["auc_last_interval"][0] == pytest.approx(c_at_16 * (1 - math.exp(-k * tau)) / k, rel=1e-8)
    assert m["terminal_half_life"][0] == pytest.approx(math.log(2) / k, rel=1e-9)
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


def test_subject_metrics_without_dosing_leave_cells_empty():
    t = np.linspace(0.0, 48.0, 97)
    zeros = np.zeros((2, t.size))
    readouts = {"plasma_mg_per_l": zeros, "occupancy": zeros, "receptor_density": zeros + 1, "excitability": zeros + 1}
    m = metrics.subject_metrics(t, readouts, interval=None, stop_h=None)
    for name in ("cmax_last_interval", "auc_last_interval", "terminal_half_life", "peak_rebound_excitability"):
        assert np.isnan(m[name]).all()
    assert (m["peak_occupancy"] == 0).all() and (m["lowest_excitability"] == 1).all()
    assert (m["hours_plasma_above_0.7_mg_per_l"] == 0).all()


def test_percentiles():
    v = np.arange(101.0)
    assert metrics.percentiles(v) == (50.0, 5.0, 95.0)
    med, lo, hi = metrics.percentiles([3.0])
    assert med == 3.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(x) for x in metrics.percentiles([np.nan, np.nan]))
    assert metrics.percentiles([1.0, np.nan, 3.0])[0] == 2.0
