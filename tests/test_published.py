"""The spec's defaults against the numbers quoted in model-spec.md and literature.md.

PK numbers come from human studies (literature.md sections 1 and 3); the PD
numbers are the time courses model-spec.md says its illustrative receptor
parameters produce.  Where a quoted number is not what the exact equations
give, the test asserts what the equations give and says so in a comment
marked DISCREPANCY (nothing is loosened silently).

Every number is taken from ``pkpd.simulate`` with the default parameters of
a typical subject (70 kg, CrCl 100 mL/min) unless stated.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

import pkpd
from pkpd import Dose, Infusion, Regimen

NG_PER_ML = 1e-3  # mg/L per ng/mL


@lru_cache(maxsize=None)
def _single_oral(dose_mg, duration=48.0):
    """Plasma after one oral IR dose: 0.01 h steps to 4 h (the peak), then 0.25 h."""
    t = np.unique(np.round(np.concatenate([np.arange(0.0, 4.0, 0.01), np.arange(4.0, duration, 0.25), [duration]]), 10))
    res = pkpd.simulate(Regimen((Dose("oral_ir", dose_mg),)), duration_h=duration, times_h=t)
    return t, res.plasma_mg_per_l[0]


def _auc_inf(t, c, fit_from_h=24.0):
    """Trapezoid AUC to the last time plus the log-linear tail C_last / lambda_z."""
    m = t >= fit_from_h
    lam = -np.polyfit(t[m], np.log(c[m]), 1)[0]
    return np.trapezoid(c, t) + c[-1] / lam


# -------------------------------------------------------------- oral IR PK


def test_single_10_mg_cmax_tmax():
    """Spec: a single 10 mg oral dose peaks near 149 ng/mL at about 1.3 h."""
    t, c = _single_oral(10.0)
    assert c.max() == pytest.approx(149 * NG_PER_ML, rel=0.02)
    assert abs(t[c.argmax()] - 1.3) <= 0.15


def test_single_50_mg_cmax_and_linearity():
    """Spec: 50 mg peaks near 746 ng/mL (dose-proportional, Kochak 1985)."""
    t, c50 = _single_oral(50.0)
    _, c10 = _single_oral(10.0)
    assert c50.max() == pytest.approx(746 * NG_PER_ML, rel=0.02)
    np.testing.assert_allclose(c50, 5.0 * c10, rtol=1e-9, atol=1e-15)


def test_terminal_half_life():
    """Spec: terminal half-life about 3.5 h (log-linear fit on 12-24 h)."""
    t, c = _single_oral(10.0)
    m = (t >= 12.0) & (t <= 24.0)
    half_life = np.log(2) / -np.polyfit(t[m], np.log(c[m]), 1)[0]
    assert abs(half_life - 3.5) <= 0.2
    # literature.md 1a: plasma t1/2 3-4 h (label type), 2.5-4 h; Kochak beta 0.191 /h (3.6 h)
    assert 3.0 <= half_life <= 4.0


def test_be_study_10_mg_within_one_sd():
    """literature.md 1b: 10 mg tablet Cmax 138.8 +/- 31.4 (ref) and 141.4 +/- 29.4 (test) ng/mL
    (Int J Clin Pharmacol Ther 2017, n=22); median Tmax 1.25 / 1.50 h."""
    t, c = _single_oral(10.0)
    cmax_ng = c.max() / NG_PER_ML
    assert abs(cmax_ng - 138.8) <= 31.4
    assert abs(cmax_ng - 141.4) <= 29.4
    assert 1.0 <= t[c.argmax()] <= 1.75  # between/near the two medians


def test_foroutan_50_mg_cmax_and_auc():
    """literature.md 1b (Foroutan 2003): 50 mg Cmax 737.6 ng/mL, AUC 3980.3 ng*h/mL.

    The model's AUC(0-inf) is F*D/CL = 0.74*50/8.5 = 4353 ng*h/mL, 9.4 % above
    Foroutan's reference arm (their CL/F 12.6 L/h vs the spec's 11.5 L/h);
    within the 15 % asked for.  Cmax is within 2 %.
    """
    t, c = _single_oral(50.0, duration=72.0)
    assert c.max() / NG_PER_ML == pytest.approx(737.6, rel=0.02)
    auc_ng_h_ml = _auc_inf(t, c) / NG_PER_ML
    # (trapezoid on 0.25 h steps: quadrature error ~1e-4; the exact AUC is in test_analytical)
    assert auc_ng_h_ml == pytest.approx(0.74 * 50.0 / 8.5 / NG_PER_ML, rel=1e-3)
    assert auc_ng_h_ml == pytest.approx(3980.3, rel=0.15)


# --------------------------------------------------------- renal impairment


def _auc_cmax_single_5mg(crcl_values):
    """AUC(0-240 h) and Cmax of a 5 mg oral dose, one subject per CrCl (one batch)."""
    crcl = np.asarray(crcl_values, float)
    n = crcl.size
    pop = pkpd.Population({k: np.zeros(n) for k in ("ka", "CL", "V_c", "Kd", "k_M", "k_int")},
                          np.full(n, 70.0), crcl)
    t = np.unique(np.round(np.concatenate([np.arange(0.0, 6.0, 0.01), np.arange(6.0, 240.0, 0.1), [240.0]]), 10))
    res = pkpd.simulate(Regimen((Dose("oral_ir", 5.0),)), duration_h=240.0, times_h=t, population=pop,
                        outputs=("plasma_mg_per_l",))
    c = res.plasma_mg_per_l
    return np.trapezoid(c, t, axis=1), c.max(axis=1)


def test_renal_impairment_dose_reductions_vlavonou():
    """Vlavonou 2014 (literature.md 3): reduce the dose by 1/3 (mild, CrCl 50-80),
    1/2 (moderate, 30-50) and 2/3 (severe, < 30 mL/min); 5 mg single dose,
    Cmax unchanged, AUC up.

    The dose reduction that restores the normal AUC is 1 - AUC(100)/AUC(CrCl).
    In the model (CL = 2.3 + 6.2 * CrCl/100 L/h) it is 0.26, 0.44 and 0.58 at
    the category midpoints 65, 40 and 20 mL/min, i.e. 0.06-0.08 *smaller*
    than recommended; at the lower edge of each category (50, 30, 10 mL/min)
    it is 0.36, 0.51 and 0.66, within 0.035 of 1/3, 1/2 and 2/3.  So the
    published recommendations correspond to the worst kidney function of each
    class (conservative), which is how dose tables are usually built.  We
    assert: within 0.1 at the midpoints, within 0.035 at the lower edges.
    """
    recommended = {"mild": 1 / 3, "moderate": 1 / 2, "severe": 2 / 3}
    midpoints = {"mild": 65.0, "moderate": 40.0, "severe": 20.0}
    lower_edges = {"mild": 50.0, "moderate": 30.0, "severe": 10.0}
    classes = list(recommended)
    auc, cmax = _auc_cmax_single_5mg([100.0] + [midpoints[c] for c in classes] + [lower_edges[c] for c in classes])
    auc_100, cmax_100 = auc[0], cmax[0]
    reductions = {}
    for j, (cls, frac) in enumerate(recommended.items()):
        auc_mid, cmax_mid = auc[1 + j], cmax[1 + j]
        auc_low = auc[1 + len(classes) + j]
        reductions[cls] = 1 - auc_100 / auc_mid
        assert abs(reductions[cls] - frac) <= 0.10, (cls, reductions[cls])
        assert abs((1 - auc_100 / auc_low) - frac) <= 0.035, (cls, 1 - auc_100 / auc_low)
        # Cmax rises much less than AUC ("Cmax unchanged" in the study)
        assert cmax_mid / cmax_100 - 1 < 0.5 * (auc_mid / auc_100 - 1)
    assert reductions["mild"] < reductions["moderate"] < reductions["severe"]


# -------------------------------------------------------------- PD numbers

LAST_20MG_DOSE_H = 496.0  # label titration held to day 21 (titration-stop-vs-taper.toml)


@pytest.fixture(scope="module")
def titration_stop():
    reg = pkpd.titration(5.0, 20.0, step_mg=5.0, every_h=8.0, step_days=3.0, hold_days=9.0)
    assert reg.last_dose_h == LAST_20MG_DOSE_H
    return pkpd.simulate(reg, duration_h=672.0, output_step_h=0.05)


def _mean_over(res, a, b):
    t = res.time_h
    m = (t >= a - 1e-9) & (t <= b + 1e-9)
    return np.trapezoid(res.excitability[0][m], t[m]) / (b - a)


def test_label_titration_steps(titration_stop):
    """Spec: excitability about 0.82, 0.76, 0.73, 0.72 on 5, 10, 15, 20 mg TID.

    Measured as the time-average over the last dosing interval (8 h) of each
    3-day step (ends at 72, 144, 216, 288 h); this measure reproduces the first
    three quotes to the second decimal: 0.823, 0.762, 0.733.

    DISCREPANCY: for the 20 mg step the exact equations give 0.713 (0.711 as a
    last-day average), not 0.72.  Excitability keeps drifting on 20 mg (0.731
    by day 21, tolerance), so 0.72 is only reached later on the 20 mg hold;
    no single "end of step" measure gives all four quoted values.  Asserted:
    the value of the equations, 0.713.
    """
    quoted = {72.0: 0.82, 144.0: 0.76, 216.0: 0.73}
    for end, q in quoted.items():
        assert _mean_over(titration_stop, end - 8.0, end) == pytest.approx(q, abs=0.005), end
    step4 = _mean_over(titration_stop, 280.0, 288.0)
    assert step4 == pytest.approx(0.7133, abs=0.001)  # spec quotes 0.72 (see docstring)
    assert step4 < _mean_over(titration_stop, 208.0, 216.0)  # still falls step by step


def test_abrupt_stop_rebound(titration_stop):
    """Spec: after an abrupt stop excitability rises above 1 within a day of the
    last dose and peaks near 1.21 about 29 h after it.

    DISCREPANCY (small): the exact equations peak at 1.2163 (28.6 h after the
    last dose), which rounds to 1.22, not 1.21.  Asserted: 1.216 +/- 0.002 and
    29 +/- 1 h.
    """
    t, e = titration_stop.time_h, titration_stop.excitability[0]
    after = t > LAST_20MG_DOSE_H
    first_above = t[after & (e > 1.0)][0] - LAST_20MG_DOSE_H
    assert first_above < 24.0
    i = np.argmax(np.where(after, e, -np.inf))
    assert e[i] == pytest.approx(1.216, abs=0.002)
    assert abs((t[i] - LAST_20MG_DOSE_H) - 29.0) <= 1.0
    during = (t > 0) & (t <= LAST_20MG_DOSE_H)
    assert np.all(e[during] < 1.0)  # relief throughout treatment


@pytest.mark.parametrize(
    "label, taper, expected_peak",
    [
        # the project's default scenario (titration-stop-vs-taper.toml):
        # 16, 12, 8, 4 mg per dose, 3 days each.  DISCREPANCY (small): peak
        # 1.104 (rounds to 1.10) where the spec says "near 1.11".
        ("taper_over-16-12-8-4", pkpd.taper_over(20.0, 12.0, steps=4, every_h=8.0, start_h=504.0), 1.104),
        # 15, 10, 5 mg per dose for 4 days each (also 12 days): 1.111, the
        # spec's 1.11.
        ("taper-15-10-5", pkpd.taper(20.0, step_mg=5.0, step_days=4.0, every_h=8.0, start_h=504.0), 1.111),
    ],
)
def test_twelve_day_taper_keeps_rebound_smaller(label, taper, expected_peak):
    """Spec: a 12-day taper keeps the peak near 1.11 (vs ~1.21 after an abrupt stop)."""
    reg = pkpd.titration(5.0, 20.0, hold_days=9.0) + taper
    assert reg.last_dose_h == 504.0 + 12 * 24.0 - 8.0
    res = pkpd.simulate(reg, duration_h=1008.0, output_step_h=0.1)
    e = res.excitability[0][res.time_h >= 504.0]
    assert e.max() == pytest.approx(expected_peak, abs=0.002)
    assert abs(e.max() - 1.11) <= 0.01
    assert e.max() < 1.2


def test_intrathecal_infusion_tolerance():
    """Spec: intrathecal 0.4 mg/day gives excitability about 0.57 on day 1 and
    0.74 by day 13.  Measured at 24 h and at 312 h (end of day 13)."""
    reg = Regimen((), (Infusion("intrathecal_infusion", 0.4, 0.0, 360.0),))
    res = pkpd.simulate(reg, duration_h=312.0, times_h=[24.0, 312.0])
    day1, day13 = res.excitability[0]
    assert day1 == pytest.approx(0.57, abs=0.005)
    assert day13 == pytest.approx(0.74, abs=0.005)
    # ~100x oral-to-intrathecal ratio: plasma stays in the low ng/mL range
    assert res.plasma_mg_per_l.max() < 5 * NG_PER_ML


def test_intrathecal_bolus_peak_effect_time():
    """Spec: a 50 microgram intrathecal bolus has its largest effect about 2 h
    after injection (model limit: clinically nearer 4 h)."""
    t = np.round(np.arange(0.0, 24.0 + 0.005, 0.01), 10)
    res = pkpd.simulate(Regimen((Dose("intrathecal_bolus", 0.05),)), duration_h=24.0, times_h=t)
    t_peak = t[res.effect[0].argmax()]
    assert abs(t_peak - 2.0) <= 0.25
    assert t[res.excitability[0].argmin()] == t_peak


def _receptor_density(rate_mg_per_day, parameters=None):
    reg = Regimen((), (Infusion("intrathecal_infusion", rate_mg_per_day, 0.0, 200.0),))
    return pkpd.simulate(reg, duration_h=168.0, times_h=[1.0, 24.0, 72.0, 168.0], parameters=parameters)


def test_receptor_density_at_saturating_exposure():
    """Spec: at saturating exposure receptor density falls to about 0.74 by day 3
    and 0.66 by day 7 (Kroin 1993: 74 % / 66 % of control).

    DISCREPANCY: with full occupancy (theta = 1) the spec's k_int and k_rec give
    R = k_rec/(k_rec+k_int) + k_int/(k_rec+k_int) * exp(-(k_rec+k_int) t)
    = 0.731 at 72 h and 0.651 at 168 h.  The quoted 0.74 / 0.66 are reached at
    occupancy ~0.96 (e.g. intrathecal ~28 mg/day), so the rates were
    evidently fitted at that occupancy, not at saturation.  Both are asserted.
    """
    k_int, k_rec = pkpd.default_parameters().k_int, pkpd.default_parameters().k_rec
    k = k_int + k_rec
    closed = {t: k_rec / k + k_int / k * np.exp(-k * t) for t in (72.0, 168.0)}
    assert closed[72.0] == pytest.approx(0.7311, abs=5e-4)
    assert closed[168.0] == pytest.approx(0.6506, abs=5e-4)

    # true saturation: a Kd so small that any drug occupies every receptor
    res = _receptor_density(1.0, pkpd.default_parameters().replace(Kd=1e-6))
    assert res.occupancy[0].min() > 0.9999
    np.testing.assert_allclose(res.receptor_density[0, 2:], [closed[72.0], closed[168.0]], atol=2e-4)

    # occupancy ~0.96 (intrathecal 28 mg/day): the quoted Kroin numbers
    res = _receptor_density(28.0)
    assert res.occupancy[0, 1:].min() == pytest.approx(0.96, abs=0.005)
    assert res.receptor_density[0, 2] == pytest.approx(0.74, abs=0.005)
    assert res.receptor_density[0, 3] == pytest.approx(0.66, abs=0.005)
