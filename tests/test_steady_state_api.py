"""Steady state in the API and the scenario format: ``Dose(..., steady_state=True)``.

A subject that arrives at the steady state of a regimen must be the subject
that took the regimen for a very long time; the rules are SS = 1 of
docs/event-tables.md, simulated by the event-table engine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pkpd
from pkpd.errors import ParameterError, RegimenError, ScenarioError
from pkpd.event_table import read_event_table, scenario_to_event_table, write_event_table
from pkpd.population import Population
from pkpd.regimen import Dose, Infusion, Regimen
from pkpd.scenario import builtin_scenarios, load_scenario, parse_scenario
from pkpd.simulate import output_times
from pkpd.table_engine import simulate_table

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
YEARS_2_H = 2 * 365 * 24  # a whole number of 8 h intervals


def _ss(amount=20.0, every=8.0, count=3, route="oral_ir", at=0.0):
    return Regimen((Dose(route, amount, at_h=at, every_h=every, count=count, steady_state=True),))


def _population():
    return Population(weight_kg=np.array([55.0, 70.0, 95.0]), crcl_ml_min=np.array([45.0, 100.0, 130.0]),
                      eta={"CL": np.array([0.3, 0.0, -0.25]), "V_c": np.array([-0.2, 0.1, 0.15]),
                           "ka": np.array([0.4, -0.3, 0.0])})


def test_steady_state_block_equals_two_years_of_the_same_regimen():
    """20 mg every 8 h: arriving at steady state at 0 then stopping at 24 h is two
    years of the regimen then a stop at 2 years + 24 h (covariates and etas included)."""
    pop = _population()
    after = np.arange(0.0, 96.01, 4.0)
    ss = pkpd.simulate(_ss(), duration_h=96.0, times_h=after, population=pop, max_step_h=2.0)
    warm = Regimen((Dose("oral_ir", 20.0, at_h=0.0, every_h=8.0, count=YEARS_2_H // 8 + 3),))
    times = np.concatenate([np.arange(0.0, YEARS_2_H, 48.0), YEARS_2_H + after])
    long = pkpd.simulate(warm, duration_h=YEARS_2_H + 96.0, times_h=times, population=pop, max_step_h=2.0)
    tail = times >= YEARS_2_H
    for name in pkpd.READOUTS:
        np.testing.assert_allclose(ss.readouts[name], long.readouts[name][:, tail], rtol=0, atol=1e-6, err_msg=name)
    for name in ("plasma_mg_per_l", "csf_mg_per_l"):  # the PK is exact in both
        np.testing.assert_allclose(ss.readouts[name], long.readouts[name][:, tail], rtol=1e-9, atol=1e-12)
    # the individual parameters are those of the ordinary path
    for k, v in long.parameters.items():
        np.testing.assert_array_equal(ss.parameters[k], v)
    assert ss.excitability[:, 0].max() < 1.0 < ss.excitability[:, after > 24].max()  # on drug, then rebound


@pytest.mark.parametrize("route, every", [("oral_er", 12.0), ("iv_bolus", 8.0), ("intrathecal_bolus", 24.0)])
def test_steady_state_pk_equals_a_warm_up_for_every_route(route, every):
    """The linear part for each route (F_er and D_er for extended release): ten days
    of doses reach the steady state to rounding, so both runs agree after them."""
    amount = 0.05 if route == "intrathecal_bolus" else 20.0
    warm_h = 240.0 if every != 24.0 else 24 * 40.0
    n_warm = int(warm_h / every)
    after = np.arange(0.0, 3 * every + 0.01, 1.0)
    ss = pkpd.simulate(_ss(amount, every, 2, route), duration_h=after[-1], times_h=after,
                       outputs=("plasma_mg_per_l", "csf_mg_per_l"))
    warm = Regimen((Dose(route, amount, at_h=0.0, every_h=every, count=n_warm + 2),))
    long = pkpd.simulate(warm, duration_h=warm_h + after[-1], times_h=warm_h + after,
                         outputs=("plasma_mg_per_l", "csf_mg_per_l"))
    for name in ("plasma_mg_per_l", "csf_mg_per_l"):
        np.testing.assert_allclose(ss.readouts[name], long.readouts[name], rtol=1e-8, atol=1e-13, err_msg=name)


def test_the_trough_at_t_equals_the_trough_at_t_plus_every_h():
    res = pkpd.simulate(Regimen((Dose("oral_ir", 20.0, at_h=0.0, every_h=8.0, steady_state=True),)),
                        duration_h=48.0, output_step_h=8.0)
    for name in pkpd.READOUTS:
        v = res.readouts[name][0]
        np.testing.assert_allclose(v, v[0], rtol=0, atol=1e-10, err_msg=name)
    fine = pkpd.simulate(Regimen((Dose("oral_ir", 20.0, at_h=0.0, every_h=8.0, steady_state=True),)),
                         duration_h=48.0, output_step_h=0.5)
    t = fine.time_h
    for name in pkpd.READOUTS:
        v = fine.readouts[name][0]
        np.testing.assert_allclose(v[t < 40], v[(t >= 8) & (t < 48)], rtol=0, atol=1e-8, err_msg=name)
    assert fine.plasma_mg_per_l[0, 0] > 0.05  # the steady state, not a drug-free start


def test_right_continuous_at_the_arrival():
    """The output at at_h reports the state just after that time's dose: for an
    iv bolus the peak (the trough plus the dose), the same as one interval later."""
    times = np.array([0.0, 7.999999, 8.0, 16.0])
    res = pkpd.simulate(_ss(route="iv_bolus", count=None), duration_h=16.0, times_h=times,
                        outputs=("plasma_mg_per_l",))
    p = res.plasma_mg_per_l[0]
    assert p[0] == pytest.approx(p[2], rel=1e-12) and p[0] == pytest.approx(p[3], rel=1e-12)
    v_c = pkpd.default_parameters().V_c
    assert p[0] - p[1] == pytest.approx(20.0 / v_c, rel=1e-4)  # the dose, on top of the trough


def test_arrival_later_than_zero_and_other_blocks():
    """Before at_h the subject is drug-free (or on other doses); doses of other blocks
    at or after at_h still come (the arrival goes first at its time)."""
    extra = Dose("iv_bolus", 5.0, at_h=24.0)
    reg = Regimen((extra, Dose("oral_ir", 20.0, at_h=24.0, every_h=8.0, count=2, steady_state=True)))
    res = pkpd.simulate(reg, duration_h=48.0, times_h=[0.0, 23.0, 24.0, 30.0])
    alone = pkpd.simulate(_ss(count=2, at=24.0), duration_h=48.0, times_h=[0.0, 23.0, 24.0, 30.0])
    assert res.plasma_mg_per_l[0, 1] == 0.0 and res.excitability[0, 1] == 1.0
    assert res.plasma_mg_per_l[0, 2] == pytest.approx(alone.plasma_mg_per_l[0, 2] + 5.0 / pkpd.default_parameters().V_c)


def test_mixed_chunk_and_subjects_without_steady_state_agree_with_the_ordinary_path():
    """A chunk with one steady-state subject goes through the event-table engine
    whole; the other subjects' results are those of the ordinary path."""
    plain = Regimen((Dose("oral_ir", 10.0, at_h=0.0, every_h=8.0, count=4),),
                    (Infusion("iv_infusion", rate_mg_per_day=24.0, start_h=2.0, stop_h=20.0),))
    er = Regimen((Dose("oral_er", 20.0, at_h=1.0, every_h=12.0, count=2),))
    mixed = pkpd.simulate([plain, _ss(), er], duration_h=48.0, output_step_h=2.0)
    ordinary = pkpd.simulate([plain, er], duration_h=48.0, output_step_h=2.0)
    for name in pkpd.READOUTS:
        np.testing.assert_allclose(mixed.readouts[name][[0, 2]], ordinary.readouts[name], rtol=0, atol=1e-7)
    chunks = list(pkpd.iter_chunks([plain, _ss(), er], duration_h=48.0, output_step_h=2.0, chunk_size=1))
    np.testing.assert_allclose(chunks[1].excitability, mixed.excitability[[1]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(chunks[0].excitability, ordinary.excitability[[0]], rtol=0, atol=1e-12)


def test_several_grids_and_residual_error():
    save = pkpd.SaveAt(output=pkpd.Grid(np.arange(0.0, 24.1, 2.0), ("plasma_mg_per_l",)),
                       daily=pkpd.Grid([0.0, 24.0], ("excitability",)))
    res = pkpd.simulate(_ss(), duration_h=24.0, save=save,
                        residual_error=pkpd.ResidualError(readout="plasma_mg_per_l", proportional=0.1))
    assert set(res.readouts) == {"plasma_mg_per_l"} and res.plasma_mg_per_l.shape == (1, 13)
    assert res.grids["daily"].excitability.shape == (1, 2) and res.observed.shape == (1, 13)


def test_amounts_are_refused_with_a_steady_state_dose():
    with pytest.raises(ParameterError, match="^amounts: not available for a regimen with a steady-state dose"):
        pkpd.simulate(_ss(), duration_h=24.0, amounts=True)


def test_steady_state_needs_every_h_and_a_boolean():
    with pytest.raises(RegimenError, match=r"^steady_state: a steady state needs every_h .*; got True$"):
        Dose("oral_ir", 20.0, steady_state=True)
    with pytest.raises(RegimenError, match=r"^steady_state: must be true or false; got 1$"):
        Dose("oral_ir", 20.0, every_h=8.0, steady_state=1)
    assert Dose("oral_ir", 20.0).steady_state is False


def _scenario(doses_block: str, arms: bool = False) -> str:
    head = 'name = "ss"\nduration_h = 48.0\noutput_step_h = 4.0\n'
    if arms:
        return head + '[[arms]]\nname = "a"\n[[arms.doses]]\n' + doses_block
    return head + "[[doses]]\n" + doses_block


SS_BLOCK = 'route = "oral_ir"\namount_mg = 20.0\nat_h = 0.0\nevery_h = 8.0\ncount = 3\nsteady_state = true\n'


def test_scenario_reader_accepts_steady_state_and_names_the_path():
    sc = parse_scenario(_scenario(SS_BLOCK), source="case.toml")
    assert sc.arms[0].regimen.doses[0].steady_state is True
    no_every = SS_BLOCK.replace("every_h = 8.0\ncount = 3\n", "")
    for arms, path in ((False, "doses[0]"), (True, "arms[0].doses[0]")):
        with pytest.raises(ScenarioError) as err:
            parse_scenario(_scenario(no_every, arms), source="case.toml")
        msg = str(err.value)
        assert msg.startswith(f"case.toml: {path}.steady_state: a steady state needs every_h") and "\n" not in msg
    with pytest.raises(ScenarioError, match=r"doses\[0\]\.steady_state: must be true or false; got 'yes'"):
        parse_scenario(_scenario(SS_BLOCK.replace("true", '"yes"')), source="case.toml")


def test_scenario_exports_ss_and_the_engine_reads_it_back(tmp_path):
    """The event table written from a steady-state scenario has SS = 1 on that block
    (the same translation, records.regimen_rows) and simulates to the same numbers."""
    sc = parse_scenario(_scenario(SS_BLOCK), source="case.toml")
    cols = scenario_to_event_table(sc)
    assert cols["SS"][0] == 1 and cols["EVID"][0] == 1 and cols["II"][0] == 8.0 and cols["ADDL"][0] == 2
    assert cols["EVID"][1] == 0 and cols["TIME"][1] == 0.0  # the observation after the dose
    path = tmp_path / "ss.csv"
    write_event_table(cols, path)
    table = simulate_table(read_event_table(str(path), carry=["ARM"]), max_step_h=0.5)
    res = pkpd.simulate(sc.arms[0].regimen, duration_h=48.0, output_step_h=4.0)
    for name in pkpd.READOUTS:
        np.testing.assert_allclose(table.readouts[name], res.readouts[name][0], rtol=0, atol=1e-12, err_msg=name)
    assert "SS" not in scenario_to_event_table(load_scenario("ir-vs-er"))  # unchanged without a steady state


@pytest.mark.slow
def test_cli_runs_a_steady_state_scenario_and_refuses_one_without_every_h(tmp_path):
    (tmp_path / "ss.toml").write_text(_scenario(SS_BLOCK))
    res = subprocess.run([sys.executable, "-m", "pkpd", "run", "ss.toml", "--no-plot", "--out", "out"], cwd=tmp_path,
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    lines = (tmp_path / "out" / "timecourse.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    assert float(rows[0]["time_h"]) == 0.0
    # at 0 h the subject is at the steady state (just after the 0 h dose, which is still in the gut)
    assert float(rows[0]["plasma_mg_per_l"]) == pytest.approx(float(rows[2]["plasma_mg_per_l"]), rel=1e-9)
    assert float(rows[0]["plasma_mg_per_l"]) > 0.05
    assert float(rows[0]["excitability"]) < 0.9 and float(rows[0]["receptor_density"]) < 0.9

    (tmp_path / "bad.toml").write_text(_scenario(SS_BLOCK.replace("every_h = 8.0\ncount = 3\n", "")))
    res = subprocess.run([sys.executable, "-m", "pkpd", "run", "bad.toml", "--no-plot", "--out", "bad"], cwd=tmp_path,
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1
    assert res.stderr.startswith("bad.toml: doses[0].steady_state: a steady state needs every_h")
    assert not (tmp_path / "bad").exists()


def test_builtin_chronic_stop():
    assert "chronic-stop" in dict(builtin_scenarios())
    sc = load_scenario("chronic-stop")
    assert len(dict(builtin_scenarios())["chronic-stop"]) < 140
    years, weeks = sc.arms
    assert any(d.steady_state for d in years.regimen.doses)
    assert not any(d.steady_state for d in weeks.regimen.doses)
    peaks = {}
    for arm, stop in ((years, 24.0), (weeks, 504.0)):
        res = pkpd.simulate(arm.regimen, duration_h=sc.duration_h, output_step_h=1.0,
                            outputs=("excitability",), max_step_h=1.0)
        t = res.time_h
        peaks[arm.name] = res.excitability[0, t >= stop].max()
    assert peaks[years.name] > peaks[weeks.name] > 1.0  # years of treatment: a larger rebound
    assert output_times(sc.duration_h, sc.output_step_h)[-1] == sc.duration_h
