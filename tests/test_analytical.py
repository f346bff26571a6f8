"""pkpd.simulate against closed-form mathematics.

Reduced models have textbook solutions: with ``Q = 0`` and ``Kp = 0`` the
plasma is a one-compartment model (no peripheral or biophase exchange), so
oral doses follow the Bateman function with superposition and IV boluses a
single exponential; with ``Kp = 0`` alone an IV bolus is biexponential.  At
steady state, whatever the model, the average plasma level over a dosing
interval is F*D/(tau*CL) and an intrathecal infusion settles where every
flux balances.  Mass balance uses pkpd's own amounts (``amounts=True``).

The issue's limit on plasma is 1e-5 relative; the closed forms here are held
to 1e-6 relative (pkpd propagates the PK exactly, so it meets this easily).
"""

from __future__ import annotations

import numpy as np
import pytest

import pkpd
from pkpd import Dose, Infusion, Regimen

RTOL = 1e-6

DEFAULT = pkpd.default_parameters()
ONE_CMT = DEFAULT.replace(Q=0.0, Kp=0.0)
CL = DEFAULT.CL_nr + DEFAULT.CL_r  # 70 kg, CrCl 100 mL/min: 8.5 L/h


def _rel_check(actual, expected, rtol=RTOL, floor=1e-3):
    """Relative error where expected > floor * max(expected), else absolute on that scale."""
    peak = np.max(np.abs(expected))
    mask = np.abs(expected) > floor * peak
    rel = np.abs(actual[mask] - expected[mask]) / np.abs(expected[mask])
    assert rel.max() <= rtol, f"max relative error {rel.max():.3g}"
    assert np.max(np.abs(actual - expected)) <= rtol * peak


def bateman(t, dose_times, dose_mg, F, ka, k, V, lag=0.0):
    """Superposed one-compartment oral profile, mg/L (ka != k, or ka == k)."""
    c = np.zeros_like(t)
    for td in np.asarray(dose_times) + lag:
        dt = t - td
        on = dt >= 0
        if ka == k:
            c[on] += F * dose_mg * k * dt[on] * np.exp(-k * dt[on]) / V
        else:
            c[on] += F * dose_mg * ka / (V * (ka - k)) * (np.exp(-k * dt[on]) - np.exp(-ka * dt[on]))
    return c


def simpson(y, h):
    """Composite Simpson rule on an even number of equal intervals."""
    assert (y.size - 1) % 2 == 0
    return h / 3.0 * (y[0] + y[-1] + 4.0 * y[1:-1:2].sum() + 2.0 * y[2:-1:2].sum())


# ------------------------------------------------------------------- Bateman


@pytest.mark.parametrize("lag", [0.0, 0.6])
def test_oral_ir_bateman_superposition(lag):
    dose_times = [0.0, 8.0, 16.0, 30.5]
    reg = Regimen((Dose("oral_ir", 10.0, at_h=0.0, every_h=8.0, count=3), Dose("oral_ir", 10.0, at_h=30.5)))
    p = ONE_CMT.replace(t_lag=lag)
    t = np.linspace(0.0, 48.0, 961)
    res = pkpd.simulate(reg, duration_h=48.0, parameters=p, times_h=t)
    expected = bateman(t, dose_times, 10.0, p.F_ir, p.ka, CL / p.V_c, p.V_c, lag)
    _rel_check(res.plasma_mg_per_l[0], expected)
    # no exchange with the biophase when Kp = 0
    assert np.all(res.csf_mg_per_l == 0.0)


def test_oral_ir_bateman_when_ka_equals_k():
    """The degenerate case ka == k (t e^{-kt}), where naive formulas divide by 0."""
    k = CL / ONE_CMT.V_c
    p = ONE_CMT.replace(ka=k)
    t = np.linspace(0.0, 40.0, 401)
    res = pkpd.simulate(Regimen((Dose("oral_ir", 20.0),)), duration_h=40.0, parameters=p, times_h=t)
    _rel_check(res.plasma_mg_per_l[0], bateman(t, [0.0], 20.0, p.F_ir, k, k, p.V_c))


def released(t, starts, dose_mg, F, width, ka, k, V):
    """One-compartment plasma after zero-order releases into the gut, mg/L.

    A release of F*dose/width mg/h on [s, s + width) is the difference of two
    step inputs; a unit step into the gut gives the integral of the Bateman
    response, g(u) = ka/(ka-k) [(1-e^{-ku})/k - (1-e^{-ka u})/ka] / V.
    """
    def g(u):
        u = np.maximum(u, 0.0)
        return ka / (ka - k) * ((1 - np.exp(-k * u)) / k - (1 - np.exp(-ka * u)) / ka) / V

    rate = F * dose_mg / width
    return sum(rate * (g(t - s) - g(t - s - width)) for s in starts)


@pytest.mark.parametrize("width", [5.5, 24.0, 30.0])  # shorter than, equal to and longer than the interval
def test_oral_er_zero_order_release_superposition(width):
    p = ONE_CMT.replace(t_lag=0.5, D_er=width)
    reg = Regimen((Dose("oral_er", 40.0, at_h=0.0, every_h=24.0, count=2),))
    t = np.linspace(0.0, 72.0, 721)
    res = pkpd.simulate(reg, duration_h=72.0, parameters=p, times_h=t)
    expected = released(t, [0.5, 24.5], 40.0, p.F_er, width, p.ka, CL / p.V_c, p.V_c)
    _rel_check(res.plasma_mg_per_l[0], expected)
    # nothing before the lag; the release is continuous (no jump at its start)
    assert np.all(res.plasma_mg_per_l[0, t <= 0.5] == 0.0)


def test_iv_bolus_monoexponential():
    t = np.linspace(0.0, 30.0, 301)
    res = pkpd.simulate(Regimen((Dose("iv_bolus", 5.0),)), duration_h=30.0, parameters=ONE_CMT, times_h=t)
    expected = 5.0 / ONE_CMT.V_c * np.exp(-CL / ONE_CMT.V_c * t)
    _rel_check(res.plasma_mg_per_l[0], expected)


def test_iv_bolus_biexponential_two_compartments():
    p = DEFAULT.replace(Kp=0.0)
    k10, k12, k21 = CL / p.V_c, p.Q / p.V_c, p.Q / p.V_p
    s, prod = k10 + k12 + k21, k10 * k21
    alpha = 0.5 * (s + np.sqrt(s * s - 4 * prod))
    beta = 0.5 * (s - np.sqrt(s * s - 4 * prod))
    t = np.linspace(0.0, 36.0, 361)
    expected = 5.0 / p.V_c * ((alpha - k21) * np.exp(-alpha * t) + (k21 - beta) * np.exp(-beta * t)) / (alpha - beta)
    res = pkpd.simulate(Regimen((Dose("iv_bolus", 5.0),)), duration_h=36.0, parameters=p, times_h=t)
    _rel_check(res.plasma_mg_per_l[0], expected)
    # the spec's terminal half-life (beta) is about 3.5 h
    assert np.log(2) / beta == pytest.approx(3.46, abs=0.05)


def test_iv_infusion_one_compartment():
    rate_mg_per_h = 1.0
    t = np.linspace(0.0, 40.0, 401)
    reg = Regimen((), (Infusion("iv_infusion", rate_mg_per_h=rate_mg_per_h, start_h=0.0, stop_h=20.0),))
    res = pkpd.simulate(reg, duration_h=40.0, parameters=ONE_CMT, times_h=t)
    k = CL / ONE_CMT.V_c
    c_end = rate_mg_per_h / CL * (1 - np.exp(-k * 20.0))
    expected = np.where(t < 20.0, rate_mg_per_h / CL * (1 - np.exp(-k * t)), c_end * np.exp(-k * (t - 20.0)))
    _rel_check(res.plasma_mg_per_l[0], expected)


# --------------------------------------------------------------- steady state


@pytest.mark.parametrize(
    "route, F_name, amount",
    [("oral_ir", "F_ir", 20.0), ("oral_er", "F_er", 40.0), ("iv_bolus", None, 5.0)],
)
def test_steady_state_average_plasma(route, F_name, amount):
    """Full default model: AUC over one interval at steady state = F*D/CL."""
    tau = 8.0
    start = 160.0  # 20 terminal half-lives (and > 30 ER absorption half-lives)
    reg = Regimen((Dose(route, amount, at_h=0.0, every_h=tau, count=int(start / tau) + 2),))
    h = 0.01
    t = start + h * np.arange(int(tau / h) + 1)
    res = pkpd.simulate(reg, duration_h=start + tau, times_h=t)
    c = res.plasma_mg_per_l[0]
    if route == "iv_bolus":
        # outputs are right-continuous, so the last one already holds the next
        # bolus; the integral needs the left limit there
        c = c.copy()
        c[-1] -= amount / DEFAULT.V_c
    F = getattr(DEFAULT, F_name) if F_name else 1.0
    average = simpson(c, h) / tau
    assert average == pytest.approx(F * amount / (tau * CL), rel=RTOL)
    assert res.parameters["CL"][0] == pytest.approx(CL, rel=1e-14)


def test_iv_infusion_steady_state_full_model():
    r = 0.5  # mg/h
    reg = Regimen((), (Infusion("iv_infusion", rate_mg_per_h=r, start_h=0.0, stop_h=300.0),))
    res = pkpd.simulate(reg, duration_h=300.0, times_h=[250.0, 300.0])
    np.testing.assert_allclose(res.plasma_mg_per_l[0], r / CL, rtol=RTOL)
    # the biophase settles at Kp times plasma
    np.testing.assert_allclose(res.csf_mg_per_l[0], DEFAULT.Kp * r / CL, rtol=RTOL)


def test_intrathecal_infusion_steady_state():
    """Steady state of every compartment, solved by hand from the spec.

    dA_lum = 0   ->  C_lum = r / CL_lum
    dA_c = dA_p = dA_csf = 0, summed  ->  CL * C_p = r  ->  C_p = r / CL
    dA_sp = 0    ->  k_sp A_sp = f_it * r (the spinal transfer passes it on)
    dA_csf = 0   ->  C_csf = (Kp * CL_out * C_p + f_it * r) / CL_out
    dC_cns = 0   ->  C_cns = C_p
    then theta, R = k_rec / (k_rec + k_int theta), I, M = phi (I - I0),
    M2 = phi2 (I - I0).  k_M2 is raised so that M2 too settles in 100 days.
    """
    p = DEFAULT.replace(k_M2=0.02)
    r = 0.4 / 24.0  # 0.4 mg/day in mg/h
    duration = 2400.0  # 100 days: R and M relax with rates ~0.013 /h
    reg = Regimen((), (Infusion("intrathecal_infusion", rate_mg_per_day=0.4, start_h=0.0, stop_h=duration),))
    res = pkpd.simulate(reg, duration_h=duration, times_h=[2300.0, 2400.0], parameters=p, amounts=True)

    c_lum = r / p.CL_lum
    c_p = r / CL
    c_csf = (p.Kp * p.CL_out * c_p + p.f_it * r) / p.CL_out
    c = c_csf * (1000.0 / 213.66) / p.Kd
    theta = c / (1 + c + p.g)
    R = p.k_rec / (p.k_rec + p.k_int * theta)
    s = p.tau * R * (c + p.g) / (1 + c + p.g)
    I = s / (1 + s)
    s0 = p.tau * p.g / (1 + p.g)
    I0 = s0 / (1 + s0)
    M = (p.phi + p.phi2) * (I - I0)  # M + M2

    np.testing.assert_allclose(res.plasma_mg_per_l[0], c_p, rtol=RTOL)
    np.testing.assert_allclose(res.csf_mg_per_l[0], c_lum + c_csf, rtol=RTOL)
    np.testing.assert_allclose(res.occupancy[0], theta, rtol=RTOL)
    np.testing.assert_allclose(res.receptor_density[0], R, atol=1e-8)
    np.testing.assert_allclose(res.adaptation[0], M, atol=1e-8)
    np.testing.assert_allclose(res.inhibition[0], I, atol=1e-8)
    np.testing.assert_allclose(res.effect[0], (I - I0) - M, atol=1e-8)
    np.testing.assert_allclose(res.excitability[0], (1 - I + M) / (1 - I0), atol=1e-8)
    np.testing.assert_allclose(res.amounts["A_sp"][0], p.f_it * r / p.k_sp, rtol=RTOL)
    np.testing.assert_allclose(res.amounts["C_cns"][0], c_p, rtol=RTOL)
    x = (c_p / p.EC50_cns) ** p.n_cns
    np.testing.assert_allclose(res.cns_depression[0], x / (1 + x), rtol=RTOL)


# --------------------------------------------------------------- mass balance

MIXED = Regimen(
    (
        Dose("oral_ir", 10.0, at_h=0.0, every_h=8.0, count=3),
        Dose("oral_er", 40.0, at_h=1.0),
        Dose("iv_bolus", 3.0, at_h=5.25),
        Dose("intrathecal_bolus", 0.05, at_h=7.0),
        Dose("oral_ir", 10.0, at_h=47.9),  # lands after the end once lagged: no input
    ),
    (
        Infusion("iv_infusion", rate_mg_per_day=12.0, start_h=10.0, stop_h=16.0),
        Infusion("intrathecal_infusion", rate_mg_per_day=0.3, start_h=12.0, stop_h=60.0),  # runs past the end
    ),
)


def test_mass_balance_from_amounts():
    """In the body + eliminated = what entered, at every output time."""
    p = DEFAULT.replace(t_lag=0.2)
    res = pkpd.simulate(MIXED, duration_h=48.0, parameters=p, output_step_h=0.25, amounts=True)
    a = res.amounts
    in_body = sum(a[s] for s in ("A_gut", "A_c", "A_p", "A_csf", "A_lum", "A_sp"))  # C_cns carries no mass
    np.testing.assert_allclose(in_body + a["A_elim"], a["A_input"], rtol=1e-9, atol=1e-12)

    expected_in = (
        p.F_ir * 30.0 + p.F_er * 40.0 + 3.0 + 0.05 + 12.0 / 24.0 * 6.0 + 0.3 / 24.0 * (48.0 - 12.0)
    )
    assert a["A_input"][0, -1] == pytest.approx(expected_in, rel=1e-12)
    assert a["A_input"][0, 0] == 0.0
    # amounts agree with the readouts
    np.testing.assert_allclose(a["A_c"] / p.V_c, res.plasma_mg_per_l, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a["A_lum"] / p.V_lum + a["A_csf"] / p.V_csf, res.csf_mg_per_l, rtol=1e-12, atol=1e-15)
    for name in ("A_gut", "A_c", "A_p", "A_csf", "A_lum", "A_sp", "C_cns", "A_elim"):
        assert np.all(a[name] >= -1e-12), name
    assert np.all(np.diff(a["A_elim"][0]) >= -1e-12)


@pytest.mark.parametrize(
    "reg, entered",
    [
        (Regimen((Dose("oral_ir", 10.0),)), DEFAULT.F_ir * 10.0),
        (Regimen((Dose("iv_bolus", 5.0),)), 5.0),
        (Regimen((Dose("intrathecal_bolus", 0.1),)), 0.1),
        (Regimen((), (Infusion("iv_infusion", rate_mg_per_day=24.0, start_h=0.0, stop_h=4.0),)), 4.0),
    ],
    ids=["oral_ir", "iv_bolus", "intrathecal_bolus", "iv_infusion"],
)
def test_mass_balance_from_plasma_auc(reg, entered):
    """Everything that enters is eventually cleared: CL * AUC(0, inf) = amount in.

    Uses only the plasma readout.  The run lasts until less than 1e-12 of
    the dose remains.  Composite Simpson on [0, 4] and [4, 240] h: the only
    kinks of the plasma curve (dose time, infusion stop at 4 h) are panel
    ends, so the quadrature error is far below the tolerance.
    """
    duration = 240.0
    h1, h2 = 0.01, 0.05
    t1 = h1 * np.arange(int(round(4.0 / h1)) + 1)
    t2 = 4.0 + h2 * np.arange(int(round((duration - 4.0) / h2)) + 1)
    t = np.concatenate([t1, t2[1:]])
    res = pkpd.simulate(reg, duration_h=duration, times_h=t)
    c = res.plasma_mg_per_l[0]
    auc = simpson(c[: t1.size], h1) + simpson(c[t1.size - 1:], h2)
    assert CL * auc == pytest.approx(entered, rel=1e-6)


# ------------------------------------------------------------- basic ranges


def test_receptor_density_in_unit_interval_and_occupancy_bounded():
    reg = Regimen((Dose("oral_ir", 100.0, every_h=4.0, count=30),), (Infusion("intrathecal_infusion", rate_mg_per_day=5.0, start_h=0, stop_h=200),))
    res = pkpd.simulate(reg, duration_h=240.0)
    assert np.all(res.receptor_density > 0) and np.all(res.receptor_density <= 1)
    assert np.all(res.occupancy >= 0) and np.all(res.occupancy <= 1)
    assert res.receptor_density[0, -1] < 1  # it did move


def test_drug_free_baseline_is_exact():
    pop = pkpd.sample_population(4, seed=3, variability=True)
    res = pkpd.simulate(Regimen(), duration_h=500.0, population=pop, output_step_h=5.0)
    np.testing.assert_allclose(res.excitability, 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.effect, 0.0, rtol=0, atol=1e-12)
    assert np.all(res.plasma_mg_per_l == 0) and np.all(res.csf_mg_per_l == 0)
    assert np.all(res.occupancy == 0) and np.all(res.receptor_density == 1)
    np.testing.assert_allclose(res.adaptation, 0.0, rtol=0, atol=1e-12)


def test_same_seed_identical_arrays():
    reg = Regimen((Dose("oral_ir", 10.0, every_h=8.0, count=6),))
    kw = dict(seed=42, variability=True, weight_kg=pkpd.Covariate(mean=70, sd=10, min=50, max=100))
    a = pkpd.simulate(reg, duration_h=48.0, population=pkpd.sample_population(8, **kw))
    b = pkpd.simulate(reg, duration_h=48.0, population=pkpd.sample_population(8, **kw))
    for name in pkpd.READOUTS:
        assert np.array_equal(a.readout(name), b.readout(name)), name
    c = pkpd.simulate(reg, duration_h=48.0, population=pkpd.sample_population(8, **{**kw, "seed": 43}))
    assert not np.array_equal(a.plasma_mg_per_l, c.plasma_mg_per_l)
