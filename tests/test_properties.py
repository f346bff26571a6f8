"""Properties that hold for every valid regimen and population (hypothesis).

Each test draws random regimens (every route, lags, overlapping infusions)
and random populations (variability, covariates) and checks a law of the
model or of the API: non-negativity, linearity of the PK in the dose,
invariance under a shift of time, bounds of the receptor readouts, rebound
after an abrupt stop, batch == loop, and reproducible seeded subjects.

Examples are few (a few seconds per test) and derandomized (conftest.py),
so a failure reproduces.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow  # outside the fast loop (pytest -m 'not slow'); CI runs it

import pkpd
from pkpd import Dose, Infusion, Regimen

DURATION_H = 72.0
PD_READOUTS = ("occupancy", "receptor_density", "adaptation", "excitability")

_AMOUNT = {  # mg per dose, by route
    "oral_ir": (1.0, 100.0),
    "oral_er": (5.0, 120.0),
    "iv_bolus": (0.5, 20.0),
    "intrathecal_bolus": (0.01, 0.2),
}
_RATE = {"iv_infusion": (1.0, 60.0), "intrathecal_infusion": (0.05, 1.5)}  # mg/day


def _lattice(draw, lo, hi, per_h=64):
    """A time on a 1/64 h lattice: sums of such times are exact in binary
    floating point, so no event lands 1e-16 h beside an output time (pkpd
    treats events within 1e-9 h of a node as simultaneous with it, which a
    reference solution that takes times literally would not)."""
    return draw(st.integers(int(round(lo * per_h)), int(round(hi * per_h)))) / per_h


@st.composite
def doses(draw, max_time=48.0):
    route = draw(st.sampled_from(sorted(_AMOUNT)))
    lo, hi = _AMOUNT[route]
    amount = draw(st.floats(lo, hi))
    at = _lattice(draw, 0.0, max_time)
    count = draw(st.integers(1, 4))
    every = _lattice(draw, 3.0, 24.0) if count > 1 else None
    return Dose(route, amount, at_h=at, every_h=every, count=count)


@st.composite
def infusions(draw, max_time=48.0):
    route = draw(st.sampled_from(sorted(_RATE)))
    lo, hi = _RATE[route]
    start = _lattice(draw, 0.0, max_time)
    length = _lattice(draw, 0.5, 48.0)
    return Infusion(route, rate_mg_per_day=draw(st.floats(lo, hi)), start_h=start, stop_h=start + length)


@st.composite
def regimens(draw):
    ds = draw(st.lists(doses(), min_size=1, max_size=4))
    inf = draw(st.lists(infusions(), min_size=0, max_size=2))
    return Regimen(tuple(ds), tuple(inf))


@st.composite
def parameter_sets(draw):
    """Typical values with a few random overrides, all valid."""
    changes = {}
    if draw(st.booleans()):
        changes["t_lag"] = draw(st.floats(0.0, 1.5))
    if draw(st.booleans()):
        changes["ka"] = draw(st.floats(0.3, 5.0))
    if draw(st.booleans()):
        changes["Q"] = draw(st.floats(0.0, 20.0))
    if draw(st.booleans()):
        changes["Kp"] = draw(st.floats(0.0, 0.5))
    return pkpd.Parameters().replace(**changes)


@st.composite
def populations(draw, n_max=4):
    n = draw(st.integers(1, n_max))
    seed = draw(st.integers(0, 2**31 - 1))
    variability = draw(st.booleans())
    wt = pkpd.Covariate(mean=70.0, sd=15.0, min=40.0, max=130.0) if draw(st.booleans()) else 70.0
    crcl = pkpd.Covariate(mean=80.0, sd=30.0, min=10.0, max=150.0) if draw(st.booleans()) else 100.0
    return pkpd.sample_population(n, seed=seed, variability=variability, weight_kg=wt, crcl_ml_min=crcl)


def _scale(reg: Regimen, k: float) -> Regimen:
    return Regimen(
        tuple(Dose(d.route, d.amount_mg * k, d.at_h, d.every_h, d.count) for d in reg.doses),
        tuple(Infusion(i.route, rate_mg_per_day=i.rate_mg_per_day * k, start_h=i.start_h, stop_h=i.stop_h) for i in reg.infusions),
    )


def _shift(reg: Regimen, d: float) -> Regimen:
    return Regimen(
        tuple(Dose(x.route, x.amount_mg, x.at_h + d, x.every_h, x.count) for x in reg.doses),
        tuple(Infusion(i.route, rate_mg_per_day=i.rate_mg_per_day, start_h=i.start_h + d, stop_h=i.stop_h + d) for i in reg.infusions),
    )


# --------------------------------------------------------------------------


@settings(max_examples=25)
@given(reg=regimens(), params=parameter_sets(), pop=populations())
def test_amounts_and_concentrations_non_negative(reg, params, pop):
    res = pkpd.simulate(reg, duration_h=DURATION_H, parameters=params, population=pop, amounts=True)
    assert np.all(res.plasma_mg_per_l >= -1e-9)
    assert np.all(res.csf_mg_per_l >= -1e-9)
    for name, a in res.amounts.items():
        assert np.all(a >= -1e-9), name
    assert np.all(np.isfinite(res.excitability))


@settings(max_examples=25)
@given(reg=regimens(), params=parameter_sets(), pop=populations())
def test_receptor_readouts_bounded(reg, params, pop):
    res = pkpd.simulate(reg, duration_h=DURATION_H, parameters=params, population=pop)
    assert np.all(res.occupancy >= 0) and np.all(res.occupancy <= 1)
    assert np.all(res.receptor_density > 0) and np.all(res.receptor_density <= 1)
    assert np.all(res.inhibition >= 0) and np.all(res.inhibition < 1)


@settings(max_examples=20)
@given(reg=regimens(), params=parameter_sets(), k=st.floats(0.05, 20.0))
def test_plasma_linear_in_dose(reg, params, k):
    """Scale every amount and rate by k: plasma (and CSF) scale by k exactly."""
    t = np.linspace(0.0, DURATION_H, 145)
    base = pkpd.simulate(reg, duration_h=DURATION_H, parameters=params, times_h=t)
    scaled = pkpd.simulate(_scale(reg, k), duration_h=DURATION_H, parameters=params, times_h=t)
    for name in ("plasma_mg_per_l", "csf_mg_per_l"):
        b, s = base.readout(name), scaled.readout(name)
        np.testing.assert_allclose(s, k * b, rtol=1e-9, atol=1e-12 * k * max(b.max(), 1e-12))


@settings(max_examples=20)
@given(reg=regimens(), params=parameter_sets(), d=st.floats(0.1, 100.0))
def test_time_shift_invariance(reg, params, d):
    """Shift every event and every output time by d: the same curves."""
    t = np.linspace(0.0, DURATION_H, 145)
    base = pkpd.simulate(reg, duration_h=DURATION_H, parameters=params, times_h=t)
    moved = pkpd.simulate(_shift(reg, d), duration_h=DURATION_H + d, parameters=params, times_h=t + d)
    peak = max(base.plasma_mg_per_l.max(), 1e-12)
    np.testing.assert_allclose(moved.plasma_mg_per_l, base.plasma_mg_per_l, rtol=1e-8, atol=1e-10 * peak)
    for name in PD_READOUTS:
        np.testing.assert_allclose(moved.readout(name), base.readout(name), rtol=0, atol=1e-8, err_msg=name)


@settings(max_examples=15)
@given(
    dose=st.floats(1.0, 40.0),
    every=st.sampled_from([6.0, 8.0, 12.0, 24.0]),
    days=st.integers(3, 10),
    pop=populations(n_max=3),
)
def test_rebound_after_abrupt_stop(dose, every, days, pop):
    """After days of oral dosing, stopping abruptly drives excitability above 1."""
    count = int(days * 24 / every)
    reg = Regimen((Dose("oral_ir", dose, at_h=0.0, every_h=every, count=count),))
    last = every * (count - 1)
    res = pkpd.simulate(reg, duration_h=last + 6 * 24.0, population=pop, output_step_h=1.0)
    after = res.time_h > last
    assert np.all(res.excitability[:, after].max(axis=1) > 1.0)
    # and relief while dosing
    during = (res.time_h > 0) & (res.time_h <= last)
    assert np.all(res.excitability[:, during].min(axis=1) < 1.0)


@settings(max_examples=12)
@given(regs=st.lists(regimens(), min_size=2, max_size=3), params=parameter_sets(), seed=st.integers(0, 10**6))
def test_batch_equals_loop(regs, params, seed):
    """Subjects together (different regimens) equal subjects alone, within a few tolerances."""
    pop = pkpd.sample_population(len(regs), seed=seed, variability=True)
    batch = pkpd.simulate(regs, duration_h=DURATION_H, parameters=params, population=pop)
    for i, reg in enumerate(regs):
        alone = pkpd.simulate(reg, duration_h=DURATION_H, parameters=params, population=pop.subset([i]))
        a, b = alone.plasma_mg_per_l[0], batch.plasma_mg_per_l[i]
        peak = max(a.max(), 1e-12)
        mask = a > 1e-3 * peak
        assert np.all(np.abs(b[mask] - a[mask]) <= 3e-5 * a[mask])
        assert np.all(np.abs(b - a) <= 3e-5 * peak)
        for name in PD_READOUTS:
            assert np.max(np.abs(batch.readout(name)[i] - alone.readout(name)[0])) <= 3e-6, name


_COVS = dict(
    weight_kg=pkpd.Covariate(mean=70.0, sd=20.0, min=45.0, max=100.0),
    crcl_ml_min=pkpd.Covariate(mean=90.0, sd=40.0, min=20.0, max=140.0),
)


@settings(max_examples=15)
@given(seed=st.integers(0, 2**32 - 1))
def test_same_seed_same_subjects_regardless_of_n(seed):
    big = pkpd.sample_population(1000, seed=seed, variability=True, **_COVS)
    small = pkpd.sample_population(10, seed=seed, variability=True, **_COVS)
    for k in small.eta:
        assert np.array_equal(big.eta[k][:10], small.eta[k]), k
    assert np.array_equal(big.weight_kg[:10], small.weight_kg)
    assert np.array_equal(big.crcl_ml_min[:10], small.crcl_ml_min)
    # and in chunks: subjects 500..509 drawn on their own
    chunk = pkpd.sample_population(10, seed=seed, variability=True, first_subject=501, **_COVS)
    for k in chunk.eta:
        assert np.array_equal(big.eta[k][500:510], chunk.eta[k]), k
    assert np.array_equal(big.weight_kg[500:510], chunk.weight_kg)
    assert np.array_equal(big.crcl_ml_min[500:510], chunk.crcl_ml_min)


@settings(max_examples=8)
@given(reg=regimens(), seed=st.integers(0, 10**6), chunk=st.integers(1, 4))
def test_simulation_does_not_depend_on_chunking(reg, seed, chunk):
    pop = pkpd.sample_population(6, seed=seed, variability=True, **_COVS)
    whole = pkpd.simulate(reg, duration_h=DURATION_H, population=pop)
    parts = pkpd.simulate(reg, duration_h=DURATION_H, population=pop, chunk_size=chunk)
    for name in pkpd.READOUTS:
        np.testing.assert_allclose(parts.readout(name), whole.readout(name), rtol=1e-10, atol=1e-13, err_msg=name)


def test_seeded_population_statistics_are_plausible():
    """1000 subjects: etas centred on 0 with the spec's omegas (a sanity check)."""
    pop = pkpd.sample_population(1000, seed=7, variability=True)
    omega = {"ka": 0.4, "CL": 0.25, "V_c": 0.25, "Kd": 0.3, "k_M": 0.3, "k_int": 0.3}
    for k, w in omega.items():
        assert abs(pop.eta[k].mean()) < 4 * w / np.sqrt(1000), k
        assert pop.eta[k].std() == pytest.approx(w, rel=0.1), k
