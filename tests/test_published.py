"""pkpd (model spec v2) against published values.

Two checks per scenario:

1. **pkpd reproduces the equations.** Every number the model is expected to
   give is computed here by the independent reference solver
   (``reference_model.py``: DOP853, rtol 1e-13) on the same scenario and the
   same output times, and ``pkpd.simulate`` must agree with it at the
   accuracy limits of the project: plasma (and the eliminated amount) to
   1e-5 relative, receptor readouts (occupancy, receptor density,
   adaptation, inhibition, effect, excitability, cns_depression) to 1e-6
   absolute. No package output is hard-coded.
2. **The equations reproduce the published value** (or the spec's own
   statement of it), with the tolerance the published number's rounding
   implies: a value stated as 0.74 is reproduced by anything that rounds to
   it (+-0.005), a range by anything inside it, a mean +- SD by anything
   within one SD. The value the reference gives is noted in a comment.

Where a published number is not reproduced, the test asserts what the
equations give and says so in a comment marked ``DISCREPANCY:`` with the
published number and its source. Sources are cited by their section of
docs/literature.md (§1 oral PK, §2 population PK, §4 kidney, §5 CSF and
intrathecal, §6 receptor, §7 time courses, §8 withdrawal, §9 toxicity,
§12 the v2 changes and the comparisons the tests make).

The typical subject is 70 kg with CrCl 100 mL/min unless stated.
Output grids are as coarse as each number allows (run time).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pytest

import pkpd
from pkpd import Dose, Infusion, Regimen
from reference_model import reference_solution, typical_params

pytestmark = pytest.mark.slow  # subprocesses / long reference runs: outside the fast loop

PLASMA_RTOL = 1e-5
PD_ATOL = 1e-6
PD_READOUTS = ("occupancy", "receptor_density", "adaptation", "inhibition", "effect", "excitability",
               "cns_depression")
NG_PER_ML = 1e-3  # mg/L per ng/mL
TID_H = 8.0


def rounds_to(value: float, stated: float, step: float) -> bool:
    """Whether ``value`` rounds to ``stated`` at resolution ``step`` (half a unit either side)."""
    return abs(value - stated) <= 0.5 * step + 1e-12


# ------------------------------------------------------------------ harness


@lru_cache(maxsize=None)
def _run(regimen: Regimen, duration_h: float, times: tuple, crcl: float = 100.0,
         overrides: tuple = ()) -> tuple[dict, dict]:
    """One scenario solved twice: (pkpd, reference), each a dict of 1-D arrays
    (every readout, ``A_elim`` in mg, ``time_h``) plus ``CL`` (L/h).
    The two are checked against each other at the accuracy limits here, so
    every test that uses a scenario also tests pkpd on it."""
    t = np.asarray(times, float)
    params = pkpd.Parameters(**dict(overrides)) if overrides else None
    res = pkpd.simulate(regimen, duration_h=duration_h, times_h=t, parameters=params,
                        population=pkpd.Population.typical(1, crcl_ml_min=crcl), amounts=True)
    got = {name: np.asarray(res.readouts[name][0]) for name in res.readouts}
    got["A_elim"] = np.asarray(res.amounts["A_elim"][0])
    got["CL"] = float(res.parameters["CL"][0])
    got["time_h"] = np.asarray(res.time_h)
    ref = reference_solution(regimen, typical_params(**dict(overrides), CrCl=crcl), duration_h, t)
    ref = {**ref, "CL": float(ref["params"]["CL"])}
    _assert_agrees(got, ref)
    return got, ref


def _assert_agrees(got: dict, ref: dict) -> None:
    """pkpd against the reference at the accuracy limits."""
    np.testing.assert_array_equal(got["time_h"], ref["time_h"])
    c_ref = ref["plasma_mg_per_l"]
    if c_ref.max() > 0:
        m = c_ref > 1e-3 * c_ref.max()
        rel = np.abs(got["plasma_mg_per_l"][m] - c_ref[m]) / c_ref[m]
        assert rel.max() <= PLASMA_RTOL, f"plasma relative error {rel.max():.3g}"
        assert np.abs(got["plasma_mg_per_l"] - c_ref).max() <= PLASMA_RTOL * c_ref.max()
    if ref["A_elim"][-1] > 0:
        assert np.abs(got["A_elim"] - ref["A_elim"]).max() <= PLASMA_RTOL * ref["A_elim"][-1]
    assert got["CL"] == pytest.approx(ref["CL"], rel=1e-12)
    for name in PD_READOUTS:
        err = np.abs(got[name] - ref[name]).max()
        assert err <= PD_ATOL, f"{name}: max abs error {err:.3g}"


def _both(fn):
    """Apply ``fn`` to the pkpd and the reference solution of a scenario; the
    two results must agree (a derived number, e.g. a peak time, could differ
    even where the arrays agree); return the reference's."""
    def apply(scenario):
        got, ref = scenario
        a, b = fn(got), fn(ref)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=PD_ATOL)
        return b
    return apply


def _grid(*pieces) -> tuple:
    return tuple(np.unique(np.round(np.concatenate([np.atleast_1d(np.asarray(p, float)) for p in pieces]), 9)))


# ----------------------------------------------------------------- scenarios

#: 0.01 h to 8 h (peaks), then 24, 48 and 96 h (terminal phase, AUC).
SINGLE_GRID = _grid(np.arange(0.0, 8.0, 0.01), [12.0, 24.0, 48.0, 96.0])


def single(route: str, amount_mg: float, crcl: float = 100.0, duration_h: float = 96.0):
    """One dose at t = 0. At 96 h (CrCl 100; 240 h for the renal runs, up to
    23 half-lives at CrCl 15) less than 1e-6 of the dose is left, so
    A_elim / CL there is AUC(0-inf)."""
    times = SINGLE_GRID if duration_h == 96.0 else _grid(np.arange(0.0, 8.0, 0.01), [duration_h])
    return _run(Regimen((Dose(route, amount_mg),)), duration_h, times, crcl)


def auc_ng_h_per_ml(res: dict) -> float:
    return 1000.0 * res["A_elim"][-1] / res["CL"]


def peak(res: dict, name: str = "plasma_mg_per_l") -> tuple[float, float]:
    i = int(np.argmax(res[name]))
    return float(res[name][i]), float(res["time_h"][i])


def steady_state(amount_mg: float, every_h: float, crcl: float = 100.0):
    """IR every ``every_h`` for 7 days; outputs every 0.01 h over the last interval."""
    n = int(round(168.0 / every_h))
    times = _grid(np.linspace(168.0 - every_h, 168.0, int(round(every_h / 0.01)) + 1))
    return _run(Regimen((Dose("oral_ir", amount_mg, every_h=every_h, count=n),)), 168.0, times, crcl)


LAST_DOSE_21D_H = 496.0
#: label titration (5, 10, 15, 20 mg every 8 h for 3 days each), 20 mg held to day 21
TITRATION_21D = pkpd.titration(5.0, 20.0, step_mg=5.0, every_h=TID_H, step_days=3.0, hold_days=9.0)
STEP_ENDS_H = (72.0, 144.0, 216.0)


def titration_then_stop():
    """The 21-day regimen, then nothing: hourly outputs during treatment,
    every 0.05 h over the last dosing interval of each titration step and
    for 60 h after the last dose."""
    assert TITRATION_21D.last_dose_h == LAST_DOSE_21D_H
    times = _grid(np.arange(0.0, LAST_DOSE_21D_H, 1.0),
                  *[np.linspace(e - TID_H, e, 161) for e in STEP_ENDS_H],
                  LAST_DOSE_21D_H + np.linspace(0.0, 60.0, 1201))
    return _run(TITRATION_21D, times[-1], times)


def _window(res: dict, t0: float, t1: float, name: str = "excitability"):
    on = (res["time_h"] >= t0 - 1e-9) & (res["time_h"] <= t1 + 1e-9)
    return res["time_h"][on], res[name][on]


def _after_stop(last_dose_h: float):
    """(time since the last dose of the first crossing above 1, peak, time of the peak since the last dose)."""
    def measure(res):
        t, e = _window(res, last_dose_h, res["time_h"][-1])
        i = int(np.argmax(e))
        return np.array([t[np.argmax(e > 1.0)] - last_dose_h, e[i], t[i] - last_dose_h])
    return measure


# ====================================================== oral IR pharmacokinetics


def test_single_10_mg_cmax_and_tmax_against_the_2017_bioequivalence_study():
    """docs/literature.md §1 (BE study 2017, 22 men): Cmax 138.8 +- 31.4 and
    141.4 +- 29.4 ng/mL, median Tmax 1.25 and 1.50 h."""
    cmax, tmax = _both(lambda r: np.array(peak(r)))(single("oral_ir", 10.0))
    cmax_ng = cmax / NG_PER_ML
    assert rounds_to(cmax_ng, 149.0, 1.0), cmax_ng  # spec: near 149 (149.17 ng/mL)
    assert abs(cmax_ng - 138.8) <= 31.4  # +10.4 ng/mL: within one SD of the reference arm
    assert abs(cmax_ng - 141.4) <= 29.4  # +7.8 ng/mL: within one SD of the test arm
    assert 1.25 <= tmax <= 1.50, tmax  # 1.28 h (0.01 h grid): between the two medians


def test_single_50_mg_against_foroutan_2003():
    """docs/literature.md §1 (Foroutan 2003): 50 mg Cmax 737.6 and 739.5 ng/mL,
    AUC 3980 and 4067 ng.h/mL (CL/F about 12.6 L/h); §12: the model's AUC,
    about 9 % above Foroutan's reference arm, is read against the spread of
    CL/F between studies (10.5-12.6 L/h, §1-2), i.e. AUC(0-inf) of 50 mg in
    [50/12.6, 50/10.5] mg.h/L = [3968, 4762] ng.h/mL."""
    scenario = single("oral_ir", 50.0)
    cmax = _both(lambda r: peak(r)[0])(scenario) / NG_PER_ML
    auc = _both(auc_ng_h_per_ml)(scenario)
    assert rounds_to(cmax, 746.0, 1.0), cmax  # spec: near 746 (745.87 ng/mL)
    for published in (737.6, 739.5):
        # +1.1 % and +0.9 %, far inside the 21-23 % between-subject CV of the 10 mg study
        assert abs(cmax / published - 1.0) <= 0.012, (cmax, published)
    assert rounds_to(auc, 4350.0, 10.0), auc  # spec: about 4,350 (4352.94 = 0.74 x 50 mg / 8.5 L/h)
    assert auc / 3980.3 - 1.0 == pytest.approx(0.094, abs=0.0005)  # +9.4 % (§12: "+9 %")
    assert auc / 4067.0 - 1.0 == pytest.approx(0.070, abs=0.0005)  # +7.0 % on the test arm
    lo, hi = 1000.0 * 50.0 / 12.6, 1000.0 * 50.0 / 10.5
    assert lo <= auc <= hi  # 4353 in [3968, 4762]
    assert lo <= 3980.3 <= hi and lo <= 4067.0 <= hi  # Foroutan's own arms are inside the spread too


def test_cl_over_f_within_the_published_spread():
    """docs/literature.md §1-2: CL/F 10.8 (Kochak 1985), 10.5 (Wuis 1990),
    11.6 with 95 % CI 10.8-12.3 (Simon 2018), 12.6 L/h (Foroutan 2003).
    The model's CL/F is dose / AUC(0-inf) of a single 10 mg dose."""
    cl_f = 10.0 / (_both(auc_ng_h_per_ml)(single("oral_ir", 10.0)) * NG_PER_ML)
    assert cl_f == pytest.approx(8.5 / 0.74, rel=1e-6)  # 11.486 L/h (CL 8.5 L/h, F_ir 0.74)
    assert 10.5 <= cl_f <= 12.6  # the between-study spread
    assert 10.8 <= cl_f <= 12.3  # and Simon 2018's 95 % CI


def test_terminal_half_life_against_the_published_values():
    """Terminal half-life from the log-linear phase, ln 2 x 24 h / ln(C24 / C48).

    docs/literature.md §1: 3-4 h and 2.5-4 h (monograph-type statements),
    3.6 h (Kochak 1985, beta 0.191 /h: 3.63 h); §2: 4.4 h (Simon 2018),
    4.5 h (He 2014, children); §1: 5.6-5.7 h (two liquid labels), 6.8 h
    with urine data (Wuis 1989).

    DISCREPANCY: the model's 3.46 h is inside the monograph ranges but below
    every fitted value: 0.17 h (5 %) below Kochak 1985's 3.63 h (the model
    keeps Kochak's distribution but a larger CL/F, 11.5 against 10.8 L/h),
    and well below Simon 2018 (4.4 h), He 2014 (4.5 h), the liquid labels
    (5.6-5.7 h) and Wuis 1989 (6.8 h). Asserted: the equations' 3.459 h.
    """
    def half_life(r):
        c = dict(zip(r["time_h"], r["plasma_mg_per_l"]))
        return math.log(2.0) * 24.0 / math.log(c[24.0] / c[48.0])

    scenario = single("oral_ir", 10.0)
    t_half = _both(half_life)(scenario)
    assert t_half == pytest.approx(3.4586, abs=0.0005), t_half  # 3.4586 h
    assert rounds_to(t_half, 3.5, 0.1)  # spec: about 3.5 h
    assert 3.0 <= t_half <= 4.0 and 2.5 <= t_half <= 4.0  # the monograph ranges
    assert math.log(2.0) / 0.191 - t_half == pytest.approx(0.17, abs=0.005)  # below Kochak 1985
    assert t_half < min(4.4, 4.5, 5.6, 6.8)  # below Simon, He, the liquid labels, Wuis 1989


def test_steady_state_swing_against_wuis_1990():
    """docs/literature.md §1 and §12 (Wuis 1990, 6 patients on three or four
    doses a day): peak-trough fluctuation 188-439 %, read as the swing
    (Cmax - Cmin) / Cmin, since (Cmax - Cmin) / Cavg cannot exceed
    k x tau (158 % at a 3.5 h half-life and 8 h interval). Day 7 of 20 mg
    (the swing does not depend on the dose: linear kinetics).

    DISCREPANCY: four times a day (every 6 h) the typical subject's swing
    is 170 %, below the lowest of Wuis 1990's 188 %; three times a day it is
    308 %, inside the range. Asserted: the equations' 170 %.
    """
    def swing_and_fluctuation(tau):
        def f(r):
            t, c = r["time_h"], r["plasma_mg_per_l"]
            cavg = np.trapezoid(c, t) / tau
            return np.array([(c.max() - c.min()) / c.min(), (c.max() - c.min()) / cavg])
        return f

    tid_swing, tid_fluct = _both(swing_and_fluctuation(8.0))(steady_state(20.0, 8.0))
    qid_swing, qid_fluct = _both(swing_and_fluctuation(6.0))(steady_state(20.0, 6.0))
    assert 1.88 <= tid_swing <= 4.39, tid_swing  # 3.083 (308 %)
    assert qid_swing == pytest.approx(1.699, abs=0.001), qid_swing  # 1.699 (170 %): DISCREPANCY, < 188 %
    # the other reading cannot reach Wuis's range: 128 % and 91 %, below k x tau
    k = math.log(2.0) / 3.4586
    assert tid_fluct < k * 8.0 < 1.88 and qid_fluct < k * 6.0 < 1.88, (tid_fluct, qid_fluct)
    assert tid_swing > qid_swing  # longer interval, larger swing


# ============================================================ kidney function

CRCL_BANDS = {  # band: (CrCl at the band's middle, Vlavonou 2014's dose cut); docs/literature.md §4
    "mild 50-80": (65.0, 1 / 3),
    "moderate 30-50": (40.0, 1 / 2),
    "severe < 30 (at 20)": (20.0, 2 / 3),
    "severe < 30 (at 15)": (15.0, 2 / 3),
}


def renal_single_5_mg(crcl: float):
    """Vlavonou 2014's design: one 5 mg oral dose (AUC to 240 h below CrCl 100)."""
    return single("oral_ir", 5.0, crcl, 96.0 if crcl >= 100.0 else 240.0)


@pytest.mark.parametrize("band", list(CRCL_BANDS))
def test_renal_dose_reductions_at_band_middles_vlavonou_2014(band):
    """docs/literature.md §4 and §12: reduce the dose by 1/3, 1/2 and 2/3 at
    CrCl 50-80, 30-50 and < 30 mL/min; v2's split (CL_nr 1.3 + CL_r 7.2 x
    CrCl/100 L/h) is chosen to reproduce them at the middle of each band.

    The cut that restores the normal AUC is 1 - AUC(100) / AUC(CrCl) =
    1 - CL(CrCl) / CL(100). Tolerance: the published cuts are multiples of
    1/6 (1/3, 1/2, 2/3), so a model cut reproduces one when it rounds to it
    on that grid, i.e. lies within 1/12 of it. The severe band (0-30) is
    checked at 15, its middle, and at 20, the CrCl the spec uses.
    Values: 0.2965 (65), 0.5082 (40), 0.6776 (20), 0.7200 (15); the mild
    band's is the furthest off, 0.037 short of 1/3.
    """
    crcl, cut = CRCL_BANDS[band]
    auc = _both(auc_ng_h_per_ml)(renal_single_5_mg(crcl))
    auc_100 = _both(auc_ng_h_per_ml)(renal_single_5_mg(100.0))
    model_cut = 1.0 - auc_100 / auc
    assert model_cut == pytest.approx(1.0 - (1.3 + 7.2 * crcl / 100.0) / 8.5, abs=1e-6)  # = 1 - CL/CL(100)
    assert abs(model_cut - cut) <= 1.0 / 12.0, model_cut
    assert round(6.0 * model_cut) == round(6.0 * cut)  # the same on the grid of sixths


@pytest.mark.parametrize("crcl, stated", [(65.0, 1.42), (40.0, 2.03), (20.0, 3.10)])
def test_renal_exposure_ratios(crcl, stated):
    """Spec: steady-state exposure relative to CrCl 100 is about 1.42, 2.03 and
    3.10 at CrCl 65, 40 and 20. In a linear model the steady-state AUC over
    an interval equals the single-dose AUC(0-inf), so the ratio is the one of
    the single 5 mg doses above (1.42140, 2.03349, 3.10216)."""
    ratio = _both(auc_ng_h_per_ml)(renal_single_5_mg(crcl)) / _both(auc_ng_h_per_ml)(renal_single_5_mg(100.0))
    assert rounds_to(ratio, stated, 0.01), ratio


def test_at_crcl_15_cmax_rises_much_less_than_auc():
    """docs/literature.md §4 and §12: Vlavonou 2014 reported Cmax unchanged
    with AUC up; v2 reads this as "Cmax rises much less than AUC", about
    +26 % against +257 % at CrCl 15 for a single 5 mg dose."""
    cmax = {c: _both(lambda r: peak(r)[0])(renal_single_5_mg(c)) for c in (100.0, 15.0)}
    auc = {c: _both(auc_ng_h_per_ml)(renal_single_5_mg(c)) for c in (100.0, 15.0)}
    cmax_rise = 100.0 * (cmax[15.0] / cmax[100.0] - 1.0)
    auc_rise = 100.0 * (auc[15.0] / auc[100.0] - 1.0)
    assert rounds_to(cmax_rise, 26.0, 1.0), cmax_rise  # +25.99 %
    assert rounds_to(auc_rise, 257.0, 1.0), auc_rise  # +257.14 % (= 8.5 / 2.38 - 1)
    assert cmax_rise < 0.15 * auc_rise


# ================================================== titration, stop and taper


@pytest.mark.parametrize("step, stated", [(0, 0.80), (1, 0.73), (2, 0.69)])
def test_label_titration_lowers_excitability_step_by_step(step, stated):
    """Spec: mean excitability over the last dosing interval of each 3-day
    step (5, 10, 15 mg every 8 h) about 0.80, 0.73 and 0.69; relief (< 1)
    throughout treatment. Titration itself: docs/literature.md §1 (labels)."""
    end = STEP_ENDS_H[step]

    def mean(r):
        t, e = _window(r, end - TID_H, end)
        return np.trapezoid(e, t) / TID_H  # 0.05 h trapezoid

    value = _both(mean)(titration_then_stop())
    assert rounds_to(value, stated, 0.01), value  # 0.80358, 0.72859, 0.69155
    got, ref = titration_then_stop()
    during = (ref["time_h"] > 0.0) & (ref["time_h"] <= LAST_DOSE_21D_H)
    assert np.all(ref["excitability"][during] < 1.0) and np.all(got["excitability"][during] < 1.0)


def test_abrupt_stop_after_21_days_against_the_case_series():
    """Spec: excitability rises above 1 within about 14 h and peaks near 1.20
    about 30 h after the last dose. docs/literature.md §8: withdrawal
    symptoms start 12-72 h after a dose is cut or stopped (Spinal Cord 2008
    case); hallucinations began 18-31 h after an abrupt stop (D'Aleo 2007)."""
    crossing, top, t_top = _both(_after_stop(LAST_DOSE_21D_H))(titration_then_stop())
    assert rounds_to(crossing, 14.0, 1.0), crossing  # 13.75 h (0.05 h grid)
    assert 12.0 <= crossing <= 72.0  # case series onset window
    assert rounds_to(top, 1.20, 0.01), top  # 1.20157
    assert rounds_to(t_top, 30.0, 1.0), t_top  # 30.15 h
    assert 18.0 <= t_top <= 31.0  # the worst of the rebound falls in D'Aleo's window


def test_twelve_day_taper_keeps_the_rebound_smaller():
    """Spec: 15, 10 and 5 mg every 8 h for 4 days each after the 21-day
    regimen keeps the peak near 1.13 (against 1.20 after an abrupt stop).
    docs/literature.md §8: reduce slowly over 1-2 weeks."""
    reg = TITRATION_21D + pkpd.taper(20.0, step_mg=5.0, step_days=4.0, every_h=TID_H, start_h=504.0)
    assert reg.last_dose_h == 784.0  # 12 days after the first taper dose, less one interval
    times = _grid(np.arange(504.0, 784.0, 1.0), np.linspace(784.0, 904.0, 601))
    scenario = _run(reg, 904.0, times)
    top, t_top = _both(lambda r: np.array(peak(r, "excitability")))(scenario)
    assert rounds_to(top, 1.13, 0.01), top  # 1.12962
    assert 784.0 < t_top < 904.0  # after the last taper dose (26.6 h after it)
    abrupt = _both(_after_stop(LAST_DOSE_21D_H))(titration_then_stop())[1]
    assert abrupt - top == pytest.approx(0.072, abs=0.001)  # 1.2016 - 1.1296


def test_rebound_after_7_days_is_smaller_than_after_21():
    """Spec: an abrupt stop after 7 days of 20 mg three times a day peaks near
    1.17; dependence grows with treatment length (docs/literature.md §7:
    withdrawal delirium after months of treatment, Leo & Baer 2005; §12: M2)."""
    last = TID_H * 20
    reg = Regimen((Dose("oral_ir", 20.0, every_h=TID_H, count=21),))
    times = _grid(np.arange(0.0, last, 1.0), last + np.linspace(0.0, 45.0, 451))
    crossing, top, t_top = _both(_after_stop(last))(_run(reg, times[-1], times))
    assert rounds_to(top, 1.17, 0.01), top  # 1.16690
    assert 12.0 <= crossing <= 72.0, crossing
    assert top < _both(_after_stop(LAST_DOSE_21D_H))(titration_then_stop())[1]


# ================================================================ intrathecal


def test_intrathecal_infusion_tolerance_and_plasma_level():
    """Spec: intrathecal 0.4 mg/day gives excitability about 0.55 at the end of
    day 1 and 0.70 by the end of day 13 (tolerance). docs/literature.md §5:
    plasma on a pump about 100 times lower than on oral doses, 0-5 µg/L."""
    reg = Regimen((), (Infusion("intrathecal_infusion", rate_mg_per_day=0.4, start_h=0.0, stop_h=312.0),))
    scenario = _run(reg, 312.0, _grid(np.arange(0.0, 312.0, 6.0), [24.0, 312.0]))
    day1, day13 = _both(lambda r: r["excitability"][np.isin(r["time_h"], [24.0, 312.0])])(scenario)
    assert rounds_to(day1, 0.55, 0.01), day1  # 0.55207
    assert rounds_to(day13, 0.70, 0.01), day13  # 0.70430
    plasma_ng = _both(lambda r: r["plasma_mg_per_l"].max())(scenario) / NG_PER_ML
    assert 0.0 < plasma_ng <= 5.0, plasma_ng  # 1.96 ng/mL by day 13
    # at steady state all of the 0.4 mg/day reaches the blood: rate / CL
    assert plasma_ng == pytest.approx(1000.0 * 0.4 / 24.0 / 8.5, rel=1e-3)


def test_intrathecal_50_ug_bolus_time_course_against_the_label():
    """docs/literature.md §5 (intrathecal label): after a 50 µg bolus the
    effect is largest about 4 h after injection (4-6 h) and lasts 4-8 h.
    "Lasting" is read as the time the effect stays above half its peak; the
    label's whole hours imply +-0.5 h."""
    scenario = _run(Regimen((Dose("intrathecal_bolus", 0.05),)), 12.0, _grid(np.linspace(0.0, 12.0, 1201)))

    def course(r):
        t, e = r["time_h"], r["effect"]
        above = t[e >= 0.5 * e.max()]
        return np.array([t[np.argmax(e)], above[-1] - above[0], t[np.argmin(r["excitability"])]])

    t_peak, lasting, t_min_exc = _both(course)(scenario)
    assert rounds_to(t_peak, 4.0, 1.0), t_peak  # 4.02 h
    assert 4.0 <= t_peak <= 6.0
    assert 3.5 <= lasting < 8.5, lasting  # 8.06 h (1.25 to 9.31 h)
    assert t_min_exc == t_peak


# ============================================================ receptor density


def test_receptor_density_at_saturation_reproduces_kroin_1993():
    """docs/literature.md §6 (Kroin 1993, rat intrathecal baclofen): GABA-B
    binding 74 % and 66 % of control after 3 and 7 days, unchanged after 1.
    v2 fits k_int and k_rec exactly to 0.74 / 0.66 at full occupancy (§12).
    Saturation: Kd = 1e-12 µM under an IV infusion (occupancy 1 throughout).

    DISCREPANCY: after 1 day the equations give 0.874 (13 % loss) where
    Kroin 1993 saw no change (1.00); a known limit of the spec. Asserted:
    the equations' 0.8742.
    """
    reg = Regimen((), (Infusion("iv_infusion", rate_mg_per_day=24.0, start_h=0.0, stop_h=168.0),))
    scenario = _run(reg, 168.0, (24.0, 72.0, 168.0), overrides=(("Kd", 1e-12),))
    occupancy = _both(lambda r: r["occupancy"])(scenario)
    assert np.all(occupancy > 1.0 - 1e-9)
    r1, r3, r7 = _both(lambda r: r["receptor_density"])(scenario)
    assert rounds_to(r3, 0.74, 0.0001), r3  # 0.739978: exact to 4 decimals
    assert rounds_to(r7, 0.66, 0.0001), r7  # 0.659994
    assert r1 == pytest.approx(0.8742, abs=0.0001), r1  # 0.874231; Kroin: 1.00 (DISCREPANCY)
    # the closed form at theta = 1, from the spec's rates
    k_rec, k_int = 0.01163, 0.00646
    r_inf = k_rec / (k_rec + k_int)
    closed = [r_inf + (1.0 - r_inf) * math.exp(-(k_rec + k_int) * h) for h in (24.0, 72.0, 168.0)]
    np.testing.assert_allclose([r1, r3, r7], closed, atol=1e-6)


# ============================================================ cns_depression


@pytest.mark.parametrize("route, amount", [("oral_ir", 10.0), ("oral_ir", 20.0), ("iv_bolus", 7.5),
                                           ("iv_bolus", 15.0)])
def test_no_cns_depression_at_therapeutic_single_doses(route, amount):
    """docs/literature.md §9 (Schmitz 2017): no significant sedation at 10-20
    mg oral or 7.5-15 mg IV. Asserted "small" as below 0.01 (1 % of the
    index's range); the IV doses are given as boluses, a worst case for a
    study that infused them. Peaks: 0.00035, 0.0056 (oral 10, 20 mg),
    0.00054, 0.0086 (IV 7.5, 15 mg)."""
    top = _both(lambda r: r["cns_depression"].max())(single(route, amount))
    assert 0.0 < top < 0.01, top


def test_cns_depression_in_the_coma_range_in_renal_failure():
    """docs/literature.md §9 (Brvar 2007): coma at 0.70 mg/L in a patient
    with kidney failure; toxicity on ordinary doses in kidney disease
    (El-Husseini 2011). EC50_cns is that level, so cns_depression >= 0.5
    means the effect site has reached it. Spec: 20 mg three times a day at
    CrCl 15 gives about 0.67 with a plasma peak about 0.93 mg/L, and about
    0.02 at CrCl 100. Day 7."""
    renal = _both(lambda r: np.array([r["cns_depression"].max(), r["plasma_mg_per_l"].max()]))(
        steady_state(20.0, 8.0, crcl=15.0))
    normal = _both(lambda r: np.array([r["cns_depression"].max(), r["plasma_mg_per_l"].max()]))(
        steady_state(20.0, 8.0))
    assert rounds_to(renal[0], 0.67, 0.01), renal[0]  # 0.66995
    assert rounds_to(renal[1], 0.93, 0.01), renal[1]  # 0.92543 mg/L
    assert renal[1] > 0.70 and renal[0] > 0.5  # at and above Brvar's coma level
    assert rounds_to(normal[0], 0.02, 0.01), normal[0]  # 0.02238
    assert normal[1] < 0.70 / 1.8  # 0.369 mg/L: normal kidneys stay far below it


@pytest.mark.parametrize("amount, stated", [(50.0, 0.18), (100.0, 0.78), (200.0, 0.98)])
def test_cns_depression_after_ingestions(amount, stated):
    """Spec: single doses of 50, 100 and 200 mg give about 0.18, 0.78 and 0.98.
    docs/literature.md §9 (Leung 2006): coma, delirium and seizures only
    after ingestions of 200 mg or more.

    DISCREPANCY: 100 mg already gives 0.78, above the 0.67 the model gives in
    Brvar 2007's coma setting (renal failure, test above), with a plasma peak
    of 1.49 mg/L, twice Brvar's coma level of 0.70 mg/L; Leung 2006 saw coma
    only from 200 mg. The PK is linear (10 x the 10 mg peak), so either
    the index or the coma level does not carry over to healthy kidneys.
    Asserted: the equations' values.
    """
    top, plasma = _both(lambda r: np.array([r["cns_depression"].max(), r["plasma_mg_per_l"].max()]))(
        single("oral_ir", amount))
    assert rounds_to(top, stated, 0.01), top  # 0.18016, 0.77856, 0.98253
    if amount == 100.0:
        assert plasma == pytest.approx(1.4917, abs=0.0005) and top > 0.67  # DISCREPANCY (Leung 2006)
    if amount == 200.0:
        assert top > 0.95  # the top of the index: coma range (Leung 2006)
