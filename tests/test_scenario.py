"""Scenario files: built-ins, expansion of blocks to doses, precedence, and
every user-facing message pinned."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pkpd.errors import OverlapWarning, ScenarioError
from pkpd.parameters import REMOVED, default_parameters
from pkpd.population import Covariate
from pkpd.regimen import Dose
from pkpd.scenario import (
    DEFAULT_SCENARIO,
    Scenario,
    builtin_scenarios,
    builtin_text,
    check_options,
    load_scenario,
    parse_scenario,
)

HEAD = 'name = "case"\nduration_h = 100.0\n'
BIG = 10_000.0  # h, later than any dose in these tests


def parse(text: str, **kwargs) -> Scenario:
    return parse_scenario(text, source="case.toml", **kwargs)


def raises(message: str):
    """Expect a ScenarioError whose whole message is ``message``."""
    return pytest.raises(ScenarioError, match="^" + re.escape(message) + "$")


def events(regimen, duration_h: float = BIG) -> tuple[np.ndarray, np.ndarray]:
    """Dose times (h) and amounts (mg), sorted by time."""
    times, _, amounts = regimen.dose_events(duration_h)
    order = np.argsort(times, kind="stable")
    return times[order], amounts[order]


LABEL_AMOUNTS = [5.0] * 9 + [10.0] * 9 + [15.0] * 9 + [20.0] * 36  # label titration to day 21


# ---------------------------------------------------------------- built-ins

REQUIRED_BUILTINS = {
    "titration-stop-vs-taper", "label-titration", "missed-doses", "ir-vs-er",
    "renal-impairment", "intrathecal-test-bolus-and-infusion",
    "intrathecal-pump-failure", "high-dose-aud", "population-variability",
    "standard-population",
}


def test_builtin_list_is_sorted_and_complete():
    listed = builtin_scenarios()
    names = [name for name, _ in listed]
    assert names == sorted(names)
    assert REQUIRED_BUILTINS <= set(names)
    assert DEFAULT_SCENARIO == "titration-stop-vs-taper"
    assert DEFAULT_SCENARIO in names


@pytest.mark.parametrize("name", [name for name, _ in builtin_scenarios()])
def test_every_builtin_parses(name):
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.source == f"builtin:{name}"
    description = dict(builtin_scenarios())[name]
    assert scenario.description == description
    assert 20 < len(description) < 140 and "\n" not in description
    assert len({arm.name for arm in scenario.arms}) == len(scenario.arms) >= 1
    # the text that `pkpd show` prints is the same scenario
    assert parse_scenario(builtin_text(name), source=f"builtin:{name}") == scenario


def test_default_scenario_abrupt_stop_vs_12_day_taper():
    scenario = load_scenario(DEFAULT_SCENARIO)
    assert scenario.duration_h >= 28 * 24
    stop, tapered = scenario.arms
    assert (stop.name, tapered.name) == ("abrupt-stop", "taper-12-days")
    times, amounts = events(stop.regimen)
    np.testing.assert_array_equal(times, 8.0 * np.arange(63))
    np.testing.assert_array_equal(amounts, LABEL_AMOUNTS)
    times, amounts = events(tapered.regimen)
    np.testing.assert_array_equal(times, 8.0 * np.arange(99))
    np.testing.assert_array_equal(amounts[63:], [16.0] * 9 + [12.0] * 9 + [8.0] * 9 + [4.0] * 9)
    assert tapered.regimen.last_dose_h == 784.0


def test_titration_block_equals_the_plain_v1_blocks():
    """The default's titration block gives exactly the doses that
    standard-population writes out as four plain [[doses]] blocks."""
    blocks = load_scenario(DEFAULT_SCENARIO).arms[0].regimen
    plain = load_scenario("standard-population").arms[0].regimen
    for a, b in zip(events(blocks), events(plain)):
        np.testing.assert_array_equal(a, b)


def test_standard_population_is_the_benchmark_problem():
    s = load_scenario("standard-population")
    assert (s.duration_h, s.output_step_h) == (672.0, 0.5)
    assert (s.subjects.n, s.subjects.variability) == (1000, True)
    assert isinstance(s.subjects.weight_kg, Covariate)
    assert isinstance(s.subjects.crcl_ml_min, Covariate)
    times, amounts = events(s.arms[0].regimen)
    np.testing.assert_array_equal(times, 8.0 * np.arange(63))
    assert times[-1] == 496.0  # nothing from day 21 (504 h)
    np.testing.assert_array_equal(amounts, LABEL_AMOUNTS)
    assert s.arms[0].parameters == default_parameters()


def test_renal_impairment_arms_fix_creatinine_clearance():
    arms = load_scenario("renal-impairment").arms
    assert [a.crcl_ml_min for a in arms] == [100.0, 50.0, 20.0]
    assert [a.weight_kg for a in arms] == [None, None, None]
    assert len({a.regimen for a in arms}) == 1  # the same regimen in each


def test_intrathecal_builtins():
    s = load_scenario("intrathecal-test-bolus-and-infusion")
    (bolus,) = s.arms[0].regimen.doses
    (infusion,) = s.arms[0].regimen.infusions
    assert (bolus.route, bolus.amount_mg, bolus.at_h) == ("intrathecal_bolus", 0.05, 0.0)
    assert infusion.route == "intrathecal_infusion" and infusion.stop_h == s.duration_h
    running, failed = load_scenario("intrathecal-pump-failure").arms
    assert running.regimen.infusions[0].stop_h == 504.0
    assert failed.regimen.infusions[0].stop_h == 336.0


def test_high_dose_aud_reaches_180_mg_per_day():
    s = load_scenario("high-dose-aud")
    times, amounts = events(s.arms[0].regimen)
    daily = [amounts[(times >= d * 24) & (times < (d + 1) * 24)].sum() for d in range(83)]
    assert max(daily) == 180.0
    assert daily[0] == 15.0
    assert times[-1] < s.duration_h - 7 * 24  # a week without drug at the end


def test_population_variability_samples_subjects():
    s = load_scenario("population-variability")
    assert s.subjects.variability is True and s.subjects.n == 200
    assert s.subjects.weight_kg == Covariate(mean=75.0, sd=15.0, min=45.0, max=140.0)


# ---------------------------------------------------------------- expansion


def test_270th_dose_of_an_8_hourly_regimen_is_at_exactly_2152_h():
    s = parse(HEAD.replace("100.0", "3000.0") + '[[doses]]\nroute = "oral_ir"\namount_mg = 5\nat_h = 0\nevery_h = 8\ncount = 300\n')
    assert s.arms[0].regimen.doses[0].times_h(s.duration_h)[269] == 2152.0
    open_ended = Dose("oral_ir", 5.0, at_h=0.0, every_h=8.0)
    assert open_ended.times_h(3000.0)[269] == 2152.0


def test_titration_dose_times_are_multiples_of_the_interval():
    # 4 levels x 3 days + 78 days hold = 90 days = 270 doses every 8 h
    s = parse(
        HEAD
        + "[[titrations]]\nfrom_mg = 5\nto_mg = 20\nstep_mg = 5\nevery_h = 8\n"
        "step_days = 3\nhold_days = 78\n"
    )
    times, amounts = events(s.arms[0].regimen)
    assert times.size == 270
    np.testing.assert_array_equal(times, 8.0 * np.arange(270))  # exact, not approximately
    assert times[269] == 2152.0
    np.testing.assert_array_equal(amounts[:36], np.repeat([5.0, 10.0, 15.0, 20.0], 9))
    assert set(amounts[36:]) == {20.0}


def test_titration_with_offset_route_and_12_hourly_doses():
    s = parse(
        HEAD
        + '[[titrations]]\nroute = "oral_er"\nfrom_mg = 10\nto_mg = 30\nstep_mg = 10\n'
        "every_h = 12\nstep_days = 2\nstart_h = 6\n"
    )
    times, amounts = events(s.arms[0].regimen)
    np.testing.assert_array_equal(times, 6.0 + 12.0 * np.arange(12))
    np.testing.assert_array_equal(amounts, np.repeat([10.0, 20.0, 30.0], 4))
    assert {d.route for d in s.arms[0].regimen.doses} == {"oral_er"}


def test_taper_over_days_levels():
    s = parse(HEAD + "[[tapers]]\nfrom_mg = 20\nover_days = 12\nevery_h = 8\nstart_h = 504\n")
    times, amounts = events(s.arms[0].regimen)
    np.testing.assert_array_equal(times, 504.0 + 8.0 * np.arange(36))
    np.testing.assert_array_equal(amounts, np.repeat([16.0, 12.0, 8.0, 4.0], 9))


def test_taper_by_fixed_steps_levels():
    s = parse(HEAD + "[[tapers]]\nfrom_mg = 20\nstep_mg = 5\nstep_days = 3\nevery_h = 8\nstart_h = 10\n")
    times, amounts = events(s.arms[0].regimen)
    np.testing.assert_array_equal(times, 10.0 + 8.0 * np.arange(27))
    np.testing.assert_array_equal(amounts, np.repeat([15.0, 10.0, 5.0], 9))


def test_taper_over_zero_days_is_an_abrupt_stop():
    s = parse(HEAD + "[[tapers]]\nfrom_mg = 20\nover_days = 0\nevery_h = 8\nstart_h = 504\n")
    assert s.arms[0].regimen.doses == ()


def test_blocks_mix_with_plain_doses_and_add():
    s = parse(
        HEAD
        + '[[doses]]\nroute = "oral_ir"\namount_mg = 1\nat_h = 0\n'
        + "[[tapers]]\nfrom_mg = 20\nover_days = 1\nsteps = 3\nevery_h = 8\nstart_h = 0\n"
    )
    times, amounts = events(s.arms[0].regimen)
    assert times.tolist() == [0.0, 0.0, 8.0, 16.0]
    assert sorted(amounts[:2]) == [1.0, 15.0] and amounts[2:].tolist() == [10.0, 5.0]


# ---------------------------------------------------------------- defaults and types


def test_defaults_and_a_run_without_doses():
    s = parse(HEAD)
    assert s.output_step_h == 0.5 and s.description == ""
    assert (s.subjects.n, s.subjects.seed, s.subjects.variability) == (1, 0, False)
    assert (s.subjects.weight_kg, s.subjects.crcl_ml_min) == (70.0, 100.0)
    (arm,) = s.arms
    assert arm.name == "case"  # the single arm is named after the scenario
    assert arm.regimen.doses == () and arm.regimen.infusions == ()
    assert arm.parameters == default_parameters()
    assert (arm.weight_kg, arm.crcl_ml_min) == (None, None)


def test_integers_are_accepted_as_numbers():
    s = parse('name = "A-1"\nduration_h = 672\noutput_step_h = 1\n[subjects]\nweight_kg = 58\ncrcl_ml_min = 0\n')
    assert s.duration_h == 672.0 and type(s.duration_h) is float
    assert s.subjects.weight_kg == 58.0 and s.subjects.crcl_ml_min == 0.0


def test_every_h_without_count_repeats_to_the_end():
    s = parse(HEAD + '[[doses]]\nroute = "oral_ir"\namount_mg = 5\nat_h = 4\nevery_h = 24\n')
    dose = s.arms[0].regimen.doses[0]
    assert (dose.every_h, dose.count) == (24.0, None)
    assert dose.times_h(s.duration_h).tolist() == [4.0, 28.0, 52.0, 76.0, 100.0]  # a dose at duration_h counts


# ---------------------------------------------------------------- precedence

PRECEDENCE = (
    HEAD
    + "[parameters]\nCL_r = 3.0\nV_c = 30\n"
    + '[[arms]]\nname = "own-volume"\n[arms.parameters]\nV_c = 25.0\n[arms.subjects]\nweight_kg = 50\n'
    + '[[arms]]\nname = "inherits"\n'
)


def test_parameters_override_the_defaults():
    s = parse(HEAD + "[parameters]\nCL_r = 3.0\nQ = 0\n")
    p = s.arms[0].parameters
    assert (p.CL_r, p.Q) == (3.0, 0.0)
    d = default_parameters()
    assert p.replace(CL_r=d.CL_r, Q=d.Q) == d


def test_arms_inherit_scenario_parameters_and_may_override_them():
    own, inherits = parse(PRECEDENCE).arms
    assert (own.parameters.V_c, own.parameters.CL_r) == (25.0, 3.0)
    assert (inherits.parameters.V_c, inherits.parameters.CL_r) == (30.0, 3.0)
    assert inherits.parameters.Kd == default_parameters().Kd
    assert (own.weight_kg, inherits.weight_kg) == (50.0, None)


def test_command_line_overrides_beat_every_file_value():
    own, inherits = parse(PRECEDENCE, overrides={"V_c": 40.0, "Kd": 0.5}).arms
    for arm in (own, inherits):
        assert (arm.parameters.V_c, arm.parameters.Kd, arm.parameters.CL_r) == (40.0, 0.5, 3.0)
    (single,) = parse(HEAD + "[parameters]\nCL_r = 3.0\n", overrides={"CL_r": 4.5}).arms
    assert single.parameters.CL_r == 4.5


def test_subjects_and_seed_options_replace_the_file():
    text = HEAD + "[subjects]\nn = 50\nseed = 7\n"
    assert (parse(text).subjects.n, parse(text).subjects.seed) == (50, 7)
    s = parse(text, n_subjects=10, seed=3)
    assert (s.subjects.n, s.subjects.seed) == (10, 3)


# ---------------------------------------------------------------- pinned messages

DOSE = '[[doses]]\nroute = "oral_ir"\namount_mg = 10.0\nat_h = 0.0\n'
ARM = '[[arms]]\nname = "a"\n'
COV = "[subjects]\nweight_kg = {mean = 70, sd = 10, min = 40, max = 100}\n"

MALFORMED = [
    (HEAD + DOSE.replace('"oral_ir"', '"oral_xr"'),
     "case.toml: doses[0].route: unknown route 'oral_xr' (expected one of oral_ir, oral_er, iv_bolus, intrathecal_bolus)"),
    (HEAD + DOSE.replace('"oral_ir"', '"iv_infusion"'),
     "case.toml: doses[0].route: unknown route 'iv_infusion' (expected one of oral_ir, oral_er, iv_bolus, intrathecal_bolus); iv_infusion belongs in an Infusion ([[infusions]])"),
    (HEAD + "[subjects]\nn = 9.0\n", "case.toml: subjects.n: must be an integer >= 1; got 9.0"),
    (HEAD + "[subjects]\nn = 0\n", "case.toml: subjects.n: must be an integer >= 1; got 0"),
    (HEAD + "[subjects]\nseed = -1\n", "case.toml: subjects.seed: must be an integer >= 0; got -1"),
    (HEAD + "[subjects]\nseed = 9223372036854775808\n",
     "case.toml: subjects.seed: must be a TOML integer, -2**63 to 2**63 - 1 (64 bits); got 9223372036854775808"),
    (HEAD + "[subjects]\nvariability = 1\n", "case.toml: subjects.variability: must be true or false; got 1"),
    (HEAD + "[parameters]\nV_c = -1.0\n", "case.toml: parameters.V_c: must be finite and > 0; got -1.0"),
    (HEAD + "[parameters]\nF_ir = 1.5\n", "case.toml: parameters.F_ir: must be finite and in (0, 1]; got 1.5"),
    (HEAD + "[parameters]\nKp = inf\n", "case.toml: parameters.Kp: must be finite and >= 0; got inf"),
    (HEAD + "[parameters]\nWT = 80\n",
     "case.toml: parameters.WT: WT is a covariate: set it as weight_kg in [subjects], not in [parameters]; got 80"),
    (HEAD + "[parameters]\nCrCl = 40\n",
     "case.toml: parameters.CrCl: CrCl is a covariate: set it as crcl_ml_min in [subjects], not in [parameters]; got 40"),
    (HEAD + "[parameters]\nv_c = 30\n", "case.toml: parameters.v_c: unknown key (did you mean 'V_c'?)"),
    (HEAD + DOSE.replace("amount_mg", "amout_mg"), "case.toml: doses[0].amout_mg: unknown key (did you mean 'amount_mg'?)"),
    (HEAD + DOSE.replace("10.0", "true"), "case.toml: doses[0].amount_mg: must be a number; got true"),
    (HEAD + DOSE.replace("10.0", "nan"), "case.toml: doses[0].amount_mg: must be finite and > 0; got nan"),
    (HEAD + DOSE + DOSE + DOSE.replace("10.0", "-5"), "case.toml: doses[2].amount_mg: must be finite and > 0; got -5"),
    (HEAD + DOSE + "count = 3\n", "case.toml: doses[0].count: 3 doses need every_h (the interval); got 3"),
    (HEAD + DOSE + "every_h = 8\ncount = 9.0\n", "case.toml: doses[0].count: must be an integer >= 1; got 9.0"),
    (HEAD + DOSE + "every_h = -8\n", "case.toml: doses[0].every_h: must be finite and > 0; got -8"),
    (HEAD + '[[infusions]]\nroute = "iv_infusion"\nrate_mg_per_day = 12\nstart_h = 48\nstop_h = 10\n',
     "case.toml: infusions[0].stop_h: must be finite and > start_h (48); got 10"),
    (HEAD + "doses = 5\n", "case.toml: doses: must be an array of tables ([[doses]]); got 5"),
    (HEAD + "subjects = 5\n", "case.toml: subjects: must be a table ([subjects]); got 5"),
    ('name = "bad name"\nduration_h = 1\n', "case.toml: name: must be a string of letters, digits and '-' only; got 'bad name'"),
    ('name = "x"\nduration_h = 0\n', "case.toml: duration_h: must be finite and > 0; got 0"),
    ('name = "x"\nduration_h = -inf\n', "case.toml: duration_h: must be finite and > 0; got -inf"),
    ('name = "x"\nduration_h = 1\noutput_step_h = "0.5"\n', "case.toml: output_step_h: must be a number; got '0.5'"),
    ('name = "x"\n', "case.toml: duration_h: required key is missing"),
    ('name = "x"\nduration_h = 1\ndescription = 3\n', "case.toml: description: must be a string; got 3"),
    ("", "case.toml: empty scenario: name and duration_h are required"),
    ("# comments only\n\n", "case.toml: empty scenario: name and duration_h are required"),
    ('name = "x"\nduration_h = \n', "case.toml: invalid TOML: Invalid value (at line 2, column 14)"),
    (HEAD + COV.replace("sd = 10", "sd = -1"), "case.toml: subjects.weight_kg.sd: must be >= 0; got -1"),
    (HEAD + COV.replace("min = 40", "min = 0"), "case.toml: subjects.weight_kg.min/mean/max: must satisfy 0 < min <= mean <= max; got min=0, mean=70, max=100"),
    (HEAD + COV.replace("max = 100", "max = 30"), "case.toml: subjects.weight_kg.min/mean/max: must satisfy 0 < min <= mean <= max; got min=40, mean=70, max=30"),
    (HEAD + COV.replace("mean = 70", "mean = 170"), "case.toml: subjects.weight_kg.min/mean/max: must satisfy 0 < min <= mean <= max; got min=40, mean=170, max=100"),
    (HEAD + COV.replace(", max = 100", ""), "case.toml: subjects.weight_kg.max: required key is missing"),
    (HEAD + COV.replace("sd =", "sigma ="), "case.toml: subjects.weight_kg.sigma: unknown key (expected one of mean, sd, min, max)"),
    (HEAD + "[subjects]\ncrcl_ml_min = -10\n", "case.toml: subjects.crcl_ml_min: must be finite and >= 0; got -10"),
    (HEAD + "[subjects]\nweight_kg = 0\n", "case.toml: subjects.weight_kg: must be finite and > 0; got 0"),
    # arms
    (HEAD + DOSE + ARM, "case.toml: arms: cannot be combined with top-level [[doses]] (give each arm its own [[arms.doses]])"),
    (HEAD + ARM + ARM, "case.toml: arms[1].name: must be unique (arms[0] has the same name); got 'a'"),
    (HEAD + ARM + '[[arms]]\nname = "b c"\n', "case.toml: arms[1].name: must be a string of letters, digits and '-' only; got 'b c'"),
    (HEAD + "[[arms]]\n", "case.toml: arms[0].name: required key is missing"),
    (HEAD + "arms = []\n", "case.toml: arms: must hold at least one arm ([[arms]] block); got []"),
    (HEAD + ARM + "[[arms.doses]]\nroute = \"oral_ir\"\namount_mg = 10\nat_h = 0\n" + ARM.replace('"a"', '"b"')
     + "[[arms.doses]]\nroute = \"oral_ir\"\namount_mg = 10\nat_h = -1\n",
     "case.toml: arms[1].doses[0].at_h: must be finite and >= 0; got -1"),
    (HEAD + ARM + "[arms.parameters]\nCL_r = -3\n", "case.toml: arms[0].parameters.CL_r: must be finite and >= 0; got -3"),
    (HEAD + ARM + "[arms.parameters]\nWT = 50\n",
     "case.toml: arms[0].parameters.WT: WT is a covariate: set it as weight_kg in [arms.subjects] or [subjects], not in [arms.parameters]; got 50"),
    (HEAD + ARM + "[arms.subjects]\nn = 5\n", "case.toml: arms[0].subjects.n: unknown key (expected one of weight_kg, crcl_ml_min)"),
    (HEAD + ARM + "[arms.subjects]\nweight_kg = {mean = 70, sd = 10, min = 40, max = 100}\n",
     "case.toml: arms[0].subjects.weight_kg: must be a fixed number in an arm (a drawn covariate belongs to the subjects); got {'mean': 70, 'sd': 10, 'min': 40, 'max': 100}"),
    # titration and taper blocks
    (HEAD + "[[titrations]]\nfrom_mg = 5\nto_mg = 18\nstep_mg = 5\nevery_h = 8\nstep_days = 3\n",
     "case.toml: titrations[0].to_mg: must be from_mg (5) plus a whole number of step_mg (5) steps; got 18"),
    (HEAD + "[[titrations]]\nfrom_mg = 5\nto_mg = 2\nstep_mg = 5\nevery_h = 8\nstep_days = 3\n",
     "case.toml: titrations[0].to_mg: must be >= from_mg (5); got 2"),
    (HEAD + "[[titrations]]\nfrom_mg = 5\nto_mg = 20\nstep_mg = 5\nevery_h = 10\nstep_days = 1\n",
     "case.toml: titrations[0].step_days: must last a whole number of every_h = 10 h dosing intervals (step_days * 24 / every_h is 2.4); got 1"),
    (HEAD + "[[titrations]]\nfrom_mg = 1\nto_mg = 5000\nstep_mg = 1e-3\nevery_h = 8\nstep_days = 3\n",
     "case.toml: titrations[0].step_mg: gives more than 1000 dose levels; got 0.001"),
    (HEAD + "[[titrations]]\nfrom_mg = 1\nto_mg = 1e300\nstep_mg = 1e-300\nevery_h = 8\nstep_days = 3\n",
     "case.toml: titrations[0].to_mg: must be <= 10000 (10 g, pkpd's largest dose); got 1e+300"),
    (HEAD + "[[titrations]]\nfrom_mg = 5\nto_mg = 20\nstep_mg = 5\nevery_h = 8\n",
     "case.toml: titrations[0].step_days: required key is missing"),
    (HEAD + ARM + "[[arms.tapers]]\nfrom_mg = 20\nover_days = 14\nevery_h = 8\nstart_h = 504\n",
     "case.toml: arms[0].tapers[0].over_days: must last a whole number of every_h = 8 h dosing intervals (over_days * 24 / steps / every_h is 10.5): "
     "steps = 2, 3, 6 or 7 fit over_days = 14, or over_days = 12 or 16 fit steps = 4; got 14"),
    (HEAD + "[[tapers]]\nfrom_mg = 20\nevery_h = 8\nstart_h = 0\n",
     "case.toml: tapers[0].step_mg: required key is missing (a taper needs over_days, or step_mg and step_days)"),
    (HEAD + "[[tapers]]\nfrom_mg = 20\nover_days = 12\nstep_mg = 5\nevery_h = 8\nstart_h = 0\n",
     "case.toml: tapers[0].step_mg: cannot be combined with over_days (give over_days and steps, or step_mg and step_days); got 5"),
    (HEAD + "[[tapers]]\nfrom_mg = 20\nstep_mg = 5\nstep_days = 3\nsteps = 3\nevery_h = 8\nstart_h = 0\n",
     "case.toml: tapers[0].steps: only applies with over_days; got 3"),
    (HEAD + "[[tapers]]\nfrom_mg = 20\nover_days = 12\nsteps = 4.0\nevery_h = 8\nstart_h = 0\n",
     "case.toml: tapers[0].steps: must be an integer >= 1; got 4.0"),
    (HEAD + "[[tapers]]\nfrom_mg = 20\nstep_mg = 20\nstep_days = 3\nevery_h = 8\nstart_h = 0\n",
     "case.toml: tapers[0].step_mg: must be finite and > 0 and < from_mg (20); got 20"),
    (HEAD + '[[tapers]]\nroute = "intrathecal_infusion"\nfrom_mg = 20\nover_days = 12\nevery_h = 8\nstart_h = 0\n',
     "case.toml: tapers[0].route: unknown route 'intrathecal_infusion' (expected one of oral_ir, oral_er, iv_bolus, intrathecal_bolus); intrathecal_infusion belongs in an Infusion ([[infusions]])"),
    (HEAD + "[[tapers]]\nfrom_mg = 20\nover_days = 12\nevery_h = 8\n",
     "case.toml: tapers[0].start_h: required key is missing"),
    # odd keys and values stay on one line
    (HEAD + '"we\\nird" = 1\n',
     'case.toml: "we\\nird": unknown key (expected one of name, description, duration_h, output_step_h, '
     "subjects, parameters, doses, infusions, titrations, tapers, arms)"),
    ('name = "a\\nb"\nduration_h = 1\n', "case.toml: name: must be a string of letters, digits and '-' only; got 'a\\nb'"),
]


@pytest.mark.parametrize("text, message", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_scenarios_raise_one_pinned_line(text, message):
    assert len(MALFORMED) >= 15
    with raises(message):
        parse(text)
    assert "\n" not in message


def test_unknown_keys_are_reported_before_missing_ones():
    # duration_h (missing) comes first in the file's structure, the typo last
    text = 'name = "x"\n[[doses]]\nroute = "oral_ir"\nat_h = 0\n[subjects]\nseeed = 3\n'
    with raises("case.toml: subjects.seeed: unknown key (did you mean 'seed'?)"):
        parse(text)
    with raises("case.toml: duration_h: required key is missing"):
        parse(text.replace("seeed", "seed"))
    with raises("case.toml: doses[0].amount_mg: required key is missing"):
        parse(text.replace("seeed", "seed").replace('name = "x"', 'name = "x"\nduration_h = 1'))


def test_huge_integer_is_not_finite_and_does_not_crash():
    with pytest.raises(ScenarioError, match=r"^case\.toml: duration_h: must be a TOML integer, -2\*\*63 to 2\*\*63 - 1 \(64 bits\); got 1000000000.*\.\.\.$"):
        parse('name = "x"\nduration_h = 1' + "0" * 400 + "\n")


def test_deeply_nested_toml_is_a_scenario_error():
    with raises("case.toml: invalid TOML: nested too deeply"):
        parse("a = " + "[" * 5000 + "]" * 5000)


# ---------------------------------------------------------------- options beside the file


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"overrides": {"V_cc": 1.0}}, "overrides.V_cc: unknown parameter (did you mean 'V_c'?)"),
        ({"overrides": {"V_c": -1.0}}, "overrides.V_c: must be finite and > 0; got -1.0"),
        ({"overrides": {"V_c": "abc"}}, "overrides.V_c: must be a number; got 'abc'"),
        ({"overrides": {"f_it": 1.5}}, "overrides.f_it: must be finite and in [0, 1]; got 1.5"),
        ({"overrides": {"phi": float("nan")}}, "overrides.phi: must be finite and in [0, 1]; got nan"),
        ({"overrides": {"WT": 80.0}}, "overrides.WT: WT is a covariate: set it as weight_kg in the scenario's [subjects]"),
        ({"overrides": {"ka_er": 1.0}}, "overrides.ka_er: " + REMOVED["ka_er"]),
        ({"overrides": [("V_c", 1.0)]}, "overrides: must map parameter names to values; got [('V_c', 1.0)]"),
        ({"n_subjects": 0}, "n_subjects: must be an integer >= 1; got 0"),
        ({"n_subjects": 2.0}, "n_subjects: must be an integer >= 1; got 2.0"),
        ({"n_subjects": True}, "n_subjects: must be an integer >= 1; got True"),
        ({"seed": -1}, "seed: must be an integer >= 0; got -1"),
        ({"seed": 2**63}, "seed: must be an integer <= 2**63 - 1 (64 bits); got 9223372036854775808"),
    ],
)
def test_bad_options_name_the_keyword_never_a_command_line_option(kwargs, message):
    with raises(message):
        parse(HEAD, **kwargs)
    with raises(message):
        check_options(**kwargs)


def test_zero_values_allowed_by_the_rules_are_accepted():
    p = parse(HEAD, overrides={"Q": 0, "Kp": 0, "f_it": 0.0, "phi": 1}).arms[0].parameters
    assert (p.Q, p.Kp, p.f_it, p.phi) == (0.0, 0.0, 0.0, 1.0)


# ---------------------------------------------------------------- files and built-in names


def test_load_a_file_by_path(tmp_path):
    path = tmp_path / "case.toml"
    path.write_text(HEAD + DOSE, encoding="utf-8")
    s = load_scenario(str(path), n_subjects=3)
    assert s.source == str(path) and s.subjects.n == 3
    assert s.arms[0].regimen.doses[0].amount_mg == 10.0


def test_file_errors_start_with_the_path(tmp_path):
    path = tmp_path / "case.toml"
    path.write_text(HEAD + "[subjects]\nn = 9.0\n", encoding="utf-8")
    with raises(f"{path}: subjects.n: must be an integer >= 1; got 9.0"):
        load_scenario(path)


def test_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + HEAD.encode())
    assert load_scenario(path).name == "case"


def test_unreadable_files(tmp_path):
    missing = tmp_path / "nope.toml"
    with raises(f"{missing}: cannot read file (No such file or directory)"):
        load_scenario(str(missing))
    with raises(f"{tmp_path}: cannot read file (Is a directory)"):
        load_scenario(str(tmp_path))
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'name = "x"\ndescription = "caf\xe9"\nduration_h = 1\n')
    with raises(f"{latin1}: cannot read file (not UTF-8 text: invalid byte at offset 29)"):
        load_scenario(str(latin1))


def test_ref_is_a_path_when_it_ends_in_toml_or_has_a_separator():
    with raises("missing.toml: cannot read file (No such file or directory)"):
        load_scenario("missing.toml")
    with raises("sub/label-titration: cannot read file (No such file or directory)"):
        load_scenario("sub/label-titration")


def test_an_existing_file_wins_over_a_builtin_name(tmp_path, monkeypatch):
    (tmp_path / "label-titration").write_text('name = "local"\nduration_h = 2\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_scenario("label-titration").name == "local"


def test_unknown_builtin_points_to_the_list_command():
    with raises("unknown built-in scenario 'nope' (see: python -m pkpd list)"):
        load_scenario("nope")
    with raises("unknown built-in scenario 'label-titraton' (see: python -m pkpd list); did you mean 'label-titration'?"):
        builtin_text("label-titraton")


def test_builtin_options_apply():
    s = load_scenario("standard-population", n_subjects=10, seed=5, overrides={"k_M": 0.02})
    assert (s.subjects.n, s.subjects.seed) == (10, 5)
    assert s.arms[0].parameters.k_M == 0.02


# ---------------------------------------------------------------- format 1.1 and bounds

INFUSION = '[[infusions]]\nroute = "intrathecal_infusion"\nstart_h = 0\nstop_h = 48\n'


def test_infusion_rate_per_hour_or_per_day_gives_the_same_infusion():
    per_day = parse(HEAD + INFUSION + "rate_mg_per_day = 0.48\n").arms[0].regimen.infusions[0]
    per_h = parse(HEAD + INFUSION + "rate_mg_per_h = 0.02\n").arms[0].regimen.infusions[0]
    assert per_day.rate_mg_per_h == pytest.approx(per_h.rate_mg_per_h, rel=1e-15) == 0.02
    assert (per_h.start_h, per_h.stop_h) == (0.0, 48.0)


SUBJECTS_11 = HEAD + "[subjects]\nn = 50\nvariability = true\nseed = 3\n"

MALFORMED_11 = [
    (HEAD + INFUSION, "case.toml: infusions[0].rate_mg_per_day: required key is missing "
                      "(an infusion needs rate_mg_per_day or rate_mg_per_h)"),
    (HEAD + INFUSION + "rate_mg_per_day = 1\nrate_mg_per_h = 1\n",
     "case.toml: infusions[0].rate_mg_per_day: give exactly one of rate_mg_per_day and rate_mg_per_h; got both"),
    (HEAD + INFUSION + "rate_mg_per_hour = 1\n",
     "case.toml: infusions[0].rate_mg_per_hour: unknown key (did you mean 'rate_mg_per_h'?)"),
    (HEAD + "[parameters]\nka_er = 0.5\n", "case.toml: parameters.ka_er: " + REMOVED["ka_er"] + "; got 0.5"),
    (HEAD + ARM + "[arms.parameters]\nka_er = 1\n", "case.toml: arms[0].parameters.ka_er: " + REMOVED["ka_er"] + "; got 1"),
    (SUBJECTS_11 + "omega = { CL = -0.1 }\n", "case.toml: subjects.omega.CL: must be >= 0 (a standard deviation); got -0.1"),
    (SUBJECTS_11 + "omega = { F_ir = 0.1 }\n", "case.toml: subjects.omega.F_ir: no log-normal variability on 'F_ir': "
                                               "its range is bounded above (in (0, 1]), which P*exp(eta) would cross"),
    (SUBJECTS_11 + 'correlation = { "CL,V_c" = 1.5 }\n',
     "case.toml: subjects.correlation.CL,V_c: a correlation must be in (-1, 1); got 1.5"),
    (SUBJECTS_11 + "omega = 0.3\n", "case.toml: subjects.omega: must be a table ([subjects.omega]); got 0.3"),
    (HEAD + DOSE.replace("10.0", "1e300"), "case.toml: doses[0].amount_mg: must be <= 10000 (10 g, pkpd's largest dose); got 1e+300"),
    (HEAD + DOSE + "every_h = 1e-4\n",
     "case.toml: doses[0].every_h: must be >= 0.001 (3.6 s, pkpd's shortest dosing interval); got 0.0001"),
    ('name = "x"\nduration_h = 1e6\n', "case.toml: duration_h: must be <= 876000 (100 years); got 1000000.0"),
    (HEAD + "[[tapers]]\nfrom_mg = 20\nover_days = 21\nevery_h = 8\nstart_h = 504\n",
     "case.toml: tapers[0].over_days: must last a whole number of every_h = 8 h dosing intervals (over_days * 24 / steps / "
     "every_h is 15.75): steps = 1, 3, 7 or 9 fit over_days = 21, or over_days = 20 or 24 fit steps = 4; got 21"),
]


@pytest.mark.parametrize("text, message", MALFORMED_11, ids=range(len(MALFORMED_11)))
def test_format_1_1_keys_and_bounds_give_one_pinned_line(text, message):
    with raises(message):
        parse(text)


def test_omega_and_correlation_reach_the_sampled_population():
    s = parse(SUBJECTS_11 + 'omega = { CL = 0.5, k_rec = 0.2 }\ncorrelation = { "CL,V_c" = 0.9 }\n')
    assert dict(s.subjects.omega) == {"CL": 0.5, "k_rec": 0.2}
    pop = s.subjects.population()
    assert pop.n == 50 and pop.seed == 3
    assert np.std(pop.eta["CL"]) == pytest.approx(0.5, rel=0.3)
    assert np.corrcoef(pop.eta["CL"], pop.eta["V_c"])[0, 1] > 0.7
    assert "k_rec" in pop.eta
    first = s.subjects.population(n=10)  # the first 10 of the same draw
    np.testing.assert_array_equal(first.eta["CL"], pop.eta["CL"][:10])
    plain = parse(HEAD).subjects.population()
    assert plain.n == 1 and dict(plain.eta) == {} and plain.weight_kg[0] == 70.0


def test_overlapping_blocks_warn_naming_both_paths_and_still_add():
    text = (HEAD.replace("100.0", "800.0") + "[[titrations]]\nfrom_mg = 5\nto_mg = 20\nstep_mg = 5\nevery_h = 8\n"
            "step_days = 3\nhold_days = 12\n[[tapers]]\nfrom_mg = 20\nover_days = 12\nevery_h = 8\nstart_h = 504\n")
    with pytest.warns(OverlapWarning) as record:
        s = parse(text)
    assert [str(w.message) for w in record] == [
        "case.toml: titrations[0] (oral_ir on [0, 576) h) overlaps tapers[0] (on [504, 792) h): their doses add"]
    times, amounts = events(s.arms[0].regimen)
    assert amounts[times == 504.0].sum() == 36.0
