"""Event rules (docs/model.md, "Event rules"), each against a closed form.

One-compartment set-up (Q = 0, Kp = 0): after an IV bolus D at t_d the plasma
level is D / V exp(-k (t - t_d)) with k = CL / V; an infusion at rate r (mg/h)
from t0 gives r / CL (1 - exp(-k (t - t0))) while it runs.
"""

import numpy as np
import pytest

import pkpd
from pkpd import Dose, Infusion, Regimen

P = pkpd.default_parameters().replace(Q=0.0, Kp=0.0)
V = P.V_c
CL = P.CL_nr + P.CL_r  # WT 70, CrCl 100
K = CL / V


def bolus(t, d, t_d):
    return np.where(t >= t_d, d / V * np.exp(-K * (t - t_d)), 0.0)


def infusion(t, rate_mg_h, t0, t1):
    """Closed form of a zero-order input on [t0, t1)."""
    on = np.clip(t, t0, t1) - t0  # time infused so far
    level_at_stop_or_now = rate_mg_h / CL * (1 - np.exp(-K * on))
    return np.where(t > t1, level_at_stop_or_now * np.exp(-K * (t - t1)), level_at_stop_or_now)


def plasma(regimen, duration_h, **kw):
    return pkpd.simulate(regimen, duration_h=duration_h, parameters=P, **kw).plasma_mg_per_l[0]


def test_dose_at_an_output_time_is_included_in_that_output():
    t = pkpd.output_times(6.0, 0.5)
    c = plasma(Regimen((Dose("iv_bolus", 10.0, at_h=2.0),)), 6.0)
    assert c[t == 2.0][0] == pytest.approx(10.0 / V, rel=1e-12)  # right-continuous
    assert c[t == 1.5][0] == 0.0
    np.testing.assert_allclose(c, bolus(t, 10.0, 2.0), rtol=1e-10, atol=1e-15)


def test_doses_at_the_same_time_add():
    two = plasma(Regimen((Dose("iv_bolus", 4.0, at_h=1.0), Dose("iv_bolus", 6.0, at_h=1.0))), 5.0)
    one = plasma(Regimen((Dose("iv_bolus", 10.0, at_h=1.0),)), 5.0)
    np.testing.assert_allclose(two, one, rtol=1e-13)


def test_dose_at_time_zero_and_at_the_last_output_time():
    t = pkpd.output_times(12.0, 1.0)
    c = plasma(Regimen((Dose("iv_bolus", 5.0, at_h=0.0), Dose("iv_bolus", 5.0, at_h=12.0))), 12.0)
    assert c[0] == pytest.approx(5.0 / V, rel=1e-12)
    assert c[-1] == pytest.approx(5.0 / V * (1 + np.exp(-K * 12.0)), rel=1e-10)


def test_a_lagged_dose_landing_after_the_end_has_no_effect():
    p = P.replace(t_lag=2.0)
    base = Regimen((Dose("oral_ir", 10.0, at_h=0.0),))
    late = base + Regimen((Dose("oral_ir", 10.0, at_h=23.0),))  # lands at 25 h > 24 h
    a = pkpd.simulate(base, duration_h=24.0, parameters=p)
    b = pkpd.simulate(late, duration_h=24.0, parameters=p)
    for name in pkpd.READOUTS:
        np.testing.assert_array_equal(a.readout(name), b.readout(name))


def test_overlapping_infusions_add():
    t = pkpd.output_times(30.0, 0.25)
    reg = Regimen(infusions=(Infusion("iv_infusion", rate_mg_per_day=48.0, start_h=0.0, stop_h=10.0), Infusion("iv_infusion", rate_mg_per_day=24.0, start_h=5.0, stop_h=15.0)))
    expected = infusion(t, 2.0, 0.0, 10.0) + infusion(t, 1.0, 5.0, 15.0)
    np.testing.assert_allclose(plasma(reg, 30.0, output_step_h=0.25), expected, rtol=1e-10, atol=1e-14)


def test_an_infusion_that_outlasts_the_run_runs_to_the_end():
    t = pkpd.output_times(24.0, 0.5)
    reg = Regimen(infusions=(Infusion("iv_infusion", rate_mg_per_day=24.0, start_h=2.0, stop_h=1000.0),))
    np.testing.assert_allclose(plasma(reg, 24.0), infusion(t, 1.0, 2.0, 1000.0), rtol=1e-10, atol=1e-14)


def test_back_to_back_infusions_equal_one_long_one():
    split = Regimen(infusions=(Infusion("iv_infusion", rate_mg_per_day=24.0, start_h=0.0, stop_h=5.0), Infusion("iv_infusion", rate_mg_per_day=24.0, start_h=5.0, stop_h=10.0)))
    whole = Regimen(infusions=(Infusion("iv_infusion", rate_mg_per_day=24.0, start_h=0.0, stop_h=10.0),))
    np.testing.assert_allclose(plasma(split, 20.0), plasma(whole, 20.0), rtol=1e-12, atol=1e-15)


def test_infusion_runs_on_a_half_open_interval():
    # at the start time nothing has entered yet; at the stop time the level is the
    # running level (continuous), and it decays afterwards
    t = pkpd.output_times(20.0, 1.0)
    c = plasma(Regimen(infusions=(Infusion("iv_infusion", rate_mg_per_day=24.0, start_h=3.0, stop_h=8.0),)), 20.0, output_step_h=1.0)
    assert c[t == 3.0][0] == 0.0
    assert c[t == 8.0][0] == pytest.approx(1.0 / CL * (1 - np.exp(-K * 5.0)), rel=1e-10)


def test_one_repeated_block_equals_separate_doses():
    block = Regimen((Dose("oral_ir", 10.0, at_h=1.0, every_h=8.0, count=6),))
    separate = Regimen(tuple(Dose("oral_ir", 10.0, at_h=1.0 + 8.0 * k) for k in range(6)))
    a = pkpd.simulate(block, duration_h=60.0)
    b = pkpd.simulate(separate, duration_h=60.0)
    for name in pkpd.READOUTS:
        np.testing.assert_array_equal(a.readout(name), b.readout(name))


def test_dose_times_do_not_drift():
    d = Dose("iv_bolus", 1.0, at_h=0.0, every_h=8.0, count=300)
    times = d.times_h(1e6)
    assert times[269] == 2152.0  # exactly, by multiplication
    # and the simulation puts the 270th dose exactly at the 2152 h output
    reg = Regimen((Dose("iv_bolus", 1.0, at_h=0.0, every_h=8.0, count=270),))
    res = pkpd.simulate(reg, duration_h=2152.0, parameters=P, times_h=[2151.5, 2152.0])
    expected = sum(1.0 / V * np.exp(-K * (2152.0 - 8.0 * k)) for k in range(270))
    assert res.plasma_mg_per_l[0, 1] == pytest.approx(expected, rel=1e-9)
    assert res.plasma_mg_per_l[0, 1] - res.plasma_mg_per_l[0, 0] * np.exp(-K * 0.5) == pytest.approx(1 / V, rel=1e-9)


def test_every_h_without_count_repeats_to_the_end():
    reg = Regimen((Dose("iv_bolus", 2.0, at_h=1.0, every_h=6.0),))
    t = pkpd.output_times(30.0, 0.5)
    expected = sum(bolus(t, 2.0, 1.0 + 6.0 * k) for k in range(5))  # 1, 7, 13, 19, 25
    np.testing.assert_allclose(plasma(reg, 30.0), expected, rtol=1e-10, atol=1e-15)


def test_output_grid_ends_exactly_at_the_duration():
    t = pkpd.output_times(10.2, 0.5)
    assert t[-1] == 10.2 and t[-2] == 10.0
    t = pkpd.output_times(10.0, 0.5)
    assert t[-1] == 10.0 and t[-2] == 9.5 and t.size == 21
