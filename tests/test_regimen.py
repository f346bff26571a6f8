"""Doses, infusions and the builders: every rule, bound and message pinned."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from pkpd.errors import OverlapWarning, PkpdWarning, RegimenError
from pkpd.regimen import (
    MAX_AMOUNT_MG,
    MAX_LEVELS,
    MAX_RATE_MG_PER_DAY,
    MAX_TIME_H,
    MIN_INTERVAL_H,
    Dose,
    Infusion,
    Regimen,
    stepped,
    taper,
    taper_over,
    titration,
)


def raises(message: str):
    return pytest.raises(RegimenError, match="^" + re.escape(message) + "$")


def schedule(reg: Regimen, duration_h: float = 1e5):
    t, _, a = reg.dose_events(duration_h)
    order = np.argsort(t, kind="stable")
    return t[order], a[order]


# ---------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Dose("oral_ir", 1e300), "amount_mg: must be <= 10000 (10 g, pkpd's largest dose); got 1e+300"),
        (lambda: Dose("oral_ir", 10**400), "amount_mg: must be finite and > 0; got " + repr(10**400)[:77] + "..."),
        (lambda: Dose("oral_ir", 5, at_h=MAX_TIME_H * 2), "at_h: must be <= 876000 (100 years); got 1752000.0"),
        (lambda: Dose("oral_ir", 5, every_h=1e-6), "every_h: must be >= 0.001 (3.6 s, pkpd's shortest dosing interval); got 1e-06"),
        (lambda: Dose("oral_ir", 5, every_h=0), "every_h: must be finite and > 0; got 0"),
        (lambda: Dose("oral_ir", 5, every_h=8, count=2.0), "count: must be an integer >= 1; got 2.0"),
        (lambda: Dose("oral_ir", 5, count=3), "count: 3 doses need every_h (the interval); got 3"),
        (lambda: Dose("oral_ir", True), "amount_mg: must be a number; got True"),
        (lambda: Dose("oral_ir", np.ones(1000)), "amount_mg: must be a number; got an array of shape (1000,)"),
        (lambda: Dose("iv_infusion", 5), "route: unknown route 'iv_infusion' (expected one of oral_ir, oral_er, iv_bolus, "
                                         "intrathecal_bolus); iv_infusion belongs in an Infusion ([[infusions]])"),
        (lambda: Infusion("iv_infusion", rate_mg_per_day=2e4, stop_h=1), "rate_mg_per_day: must be <= 10000 (10 g/day); got 20000.0"),
        (lambda: Infusion("iv_infusion", rate_mg_per_h=500, stop_h=1), "rate_mg_per_h: must be <= 416.667 (10000 mg/day); got 500"),
        (lambda: Infusion("iv_infusion", rate_mg_per_h=-1, stop_h=1), "rate_mg_per_h: must be finite and > 0; got -1"),
        (lambda: Infusion("iv_infusion", rate_mg_per_h=1, start_h=5, stop_h=5), "stop_h: must be finite and > start_h (5); got 5"),
        (lambda: Infusion("iv_infusion", rate_mg_per_h=1, stop_h=1e7), "stop_h: must be <= 876000 (100 years); got 10000000.0"),
    ],
)
def test_constructors_refuse_absurd_values_naming_the_field(build, message):
    with raises(message):
        build()


def test_bounds_themselves_are_accepted():
    assert Dose("oral_ir", MAX_AMOUNT_MG, at_h=MAX_TIME_H, every_h=MIN_INTERVAL_H).amount_mg == 10_000.0
    assert Infusion("iv_infusion", rate_mg_per_day=MAX_RATE_MG_PER_DAY, stop_h=MAX_TIME_H).rate_mg_per_h == pytest.approx(10_000 / 24)


# ---------------------------------------------------------------- infusion rates with their unit


def test_infusion_rate_per_day_and_per_hour_are_the_same_infusion():
    per_day = Infusion("intrathecal_infusion", rate_mg_per_day=0.48, start_h=0, stop_h=240)
    per_h = Infusion("intrathecal_infusion", rate_mg_per_h=0.02, start_h=0, stop_h=240)
    assert per_day.rate_mg_per_h == pytest.approx(0.02, rel=1e-15)
    assert per_h.rate_mg_per_day == pytest.approx(0.48, rel=1e-15)
    assert Infusion("iv_infusion", rate_mg_per_day=24, stop_h=1) == Infusion("iv_infusion", rate_mg_per_h=1, stop_h=1)
    assert type(per_h.start_h) is float and per_h.start_h == 0.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rate_mg_per_day": 1, "rate_mg_per_h": 1, "stop_h": 2},
         "rate_mg_per_day: give exactly one of rate_mg_per_day and rate_mg_per_h; got both"),
        ({"stop_h": 2}, "rate_mg_per_day: give exactly one of rate_mg_per_day and rate_mg_per_h; got neither"),
        ({"rate_mg_per_h": 1}, "stop_h: required (the time the infusion stops, h); got None"),
    ],
)
def test_infusion_needs_exactly_one_rate_and_a_stop(kwargs, message):
    with raises(message):
        Infusion("iv_infusion", **kwargs)


def test_a_positional_rate_is_refused_because_its_unit_is_not_written():
    with raises("rate: give the rate by keyword with its unit, rate_mg_per_day=... or rate_mg_per_h=..., "
                "and start_h=..., stop_h=... by keyword; got (24.0, 0.0, 10.0)"):
        Infusion("iv_infusion", 24.0, 0.0, 10.0)


# ---------------------------------------------------------------- builders own the whole-interval rules


def test_half_day_steps_of_an_8_hourly_dose_are_refused_not_put_4_h_apart():
    with raises("step_days: must last a whole number of every_h = 8 h dosing intervals "
                "(step_days * 24 / every_h is 1.5); got 0.5"):
        titration(5, 15, every_h=8, step_days=0.5)


def test_a_short_taper_names_the_argument_the_caller_passed():
    with raises("over_days: must last a whole number of every_h = 8 h dosing intervals (over_days * 24 / steps / "
                "every_h is 0.75): steps = 1 or 3 fit over_days = 1, or over_days = 4 fits steps = 4; got 1"):
        taper_over(20, 1, steps=4, start_h=0)


def test_a_21_day_taper_suggests_the_steps_and_days_that_fit():
    with raises("over_days: must last a whole number of every_h = 8 h dosing intervals (over_days * 24 / steps / "
                "every_h is 15.75): steps = 1, 3, 7 or 9 fit over_days = 21, or over_days = 20 or 24 fit steps = 4; got 21"):
        taper_over(20, 21, start_h=0)
    for steps in (3, 7, 9):  # the suggestions do fit
        assert len(taper_over(20, 21, steps=steps, start_h=0).doses) == steps
    for days in (20, 24):
        assert len(taper_over(20, days, start_h=0).doses) == 4


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: titration(5, 18), "to_mg: must be from_mg (5) plus a whole number of step_mg (5) steps; got 18"),
        (lambda: titration(5, 2), "to_mg: must be >= from_mg (5); got 2"),
        (lambda: titration(1, 5000, step_mg=1e-3), f"step_mg: gives more than {MAX_LEVELS} dose levels; got 0.001"),
        (lambda: titration(5, 20, hold_days=1.1), "hold_days: must last a whole number of every_h = 8 h dosing intervals "
                                                  "(hold_days * 24 / every_h is 3.3); got 1.1"),
        (lambda: taper(20, step_mg=20, start_h=0), "step_mg: must be finite and > 0 and < from_mg (20); got 20"),
        (lambda: taper_over(20, -1, start_h=0), "over_days: must be finite and >= 0; got -1"),
        (lambda: taper_over(20, 0, steps=0, start_h=0), "steps: must be an integer >= 1; got 0"),
        (lambda: taper_over(20, 0, route="iv", start_h=0), "route: unknown route 'iv' (expected one of oral_ir, oral_er, "
                                                           "iv_bolus, intrathecal_bolus)"),
        (lambda: stepped([10, 5], every_h=8, step_h=12), "step_h: must last a whole number of every_h = 8 h dosing "
                                                         "intervals (step_h / every_h is 1.5); got 12"),
        (lambda: stepped([10, -5], every_h=8, step_h=24), "amounts_mg[1]: must be finite and > 0; got -5"),
    ],
)
def test_builder_rules_name_their_own_arguments(build, message):
    with raises(message):
        build()


def test_builders_give_exact_multiples_of_the_interval():
    t, a = schedule(titration(5, 20, hold_days=9) + taper_over(20, 12, start_h=504))
    np.testing.assert_array_equal(t, 8.0 * np.arange(99))
    np.testing.assert_array_equal(a, np.repeat([5.0, 10, 15, 20, 20, 20, 20, 16, 12, 8, 4], 9))
    t, a = schedule(taper(20, step_mg=5, step_days=3, start_h=10))
    np.testing.assert_array_equal(t, 10.0 + 8.0 * np.arange(27))
    np.testing.assert_array_equal(a, np.repeat([15.0, 10.0, 5.0], 9))
    assert taper_over(20, 0, start_h=504) == Regimen()  # an abrupt stop


# ---------------------------------------------------------------- overlapping builders warn


def test_the_readme_regimen_warns_that_titration_and_taper_overlap():
    with pytest.warns(OverlapWarning) as record:
        reg = titration(5, 20, hold_days=12) + taper_over(20, 12, start_h=504)
    (w,) = record
    assert str(w.message) == ("titration(5 -> 20 mg) (oral_ir on [0, 576) h) overlaps taper_over(20 mg over 12 days) "
                              "(oral_ir on [504, 792) h): their doses add")
    assert issubclass(OverlapWarning, PkpdWarning)
    t, a = schedule(reg)
    assert a[t == 504.0].sum() == 36.0  # what the warning is about: 20 + 16 mg


def test_adjacent_builders_other_routes_and_plain_doses_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        titration(5, 20, hold_days=9) + taper_over(20, 12, start_h=504)  # ends at 504, taper starts there
        titration(5, 20, route="oral_er") + titration(5, 20)
        titration(5, 20) + Regimen((Dose("oral_ir", 5.0, at_h=10.0),))
    with pytest.warns(OverlapWarning):  # spans survive addition: the third term is checked too
        titration(5, 20) + taper(20, start_h=1000) + taper(20, start_h=1010)
