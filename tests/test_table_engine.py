"""The event-table engine (pkpd.table_engine) against NONMEM, closed forms and long runs.

Records are built directly in Python (the reader is tested on its own).
NONMEM's own results for mrgsolve's nmtests dataset 1001 are read from the
folder ``shared/nmtests`` beside the checkout when it is there (reference
data only: never committed here).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

import pkpd
from pkpd import events, model
from pkpd.parameters import Parameters, default_parameters
from pkpd.population import Population
from pkpd.records import EventTable, Record, Subject
from pkpd.solver import SemiLinearSystem, fastest_rate, integrate, node_of, time_grid
from pkpd.table_engine import simulate_table

NMTESTS = Path(__file__).resolve().parents[2] / "shared" / "nmtests"
#: nmtests' one-compartment model in pkpd's terms (docs/event-tables.md, Acceptance).
ONE_CMT = Parameters(Q=0, Kp=0, CL_nr=1.1, CL_r=0, V_c=20, ka=1.5, F_ir=1)


def rec(row, time, evid=0, amt=0.0, cmt=1, rate=0.0, ii=0.0, addl=0, ss=0, **values):
    return Record(row=row, time=float(time), evid=evid, amt=float(amt), cmt=cmt, rate=float(rate), ii=float(ii),
                  addl=addl, ss=ss, values=values)


def table(*subjects):
    """``table([records...], [records...])``: one subject per list, rows numbered in order."""
    subs, row = [], 0
    for i, records in enumerate(subjects, 1):
        fixed = []
        for r in records:
            row += 1
            fixed.append(Record(row=row, time=r.time, evid=r.evid, amt=r.amt, cmt=r.cmt, rate=r.rate, ii=r.ii,
                                addl=r.addl, ss=r.ss, values=r.values, carried=r.carried))
        subs.append(Subject(str(i), i, tuple(fixed)))
    return EventTable(tuple(subs))


def outputs(times, evid=2, **values):
    return [rec(0, t, evid, **values) for t in times]


# --------------------------------------------------------------------------- NONMEM


def _nm_subjects():
    """{ID: (records, NONMEM's CP per output row)} from nmtests 1001 (Acceptance mapping).

    Every data row gets an output: observation rows are outputs, and each
    dose or reset row is followed by an EVID 2 row at the same TIME, whose
    state NONMEM prints on the dose row (the state after the row's event).
    """
    def num(s):
        return 0.0 if s in (".", "") else float(s)

    with open(NMTESTS / "1001.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(NMTESTS / "1001-nm.csv", newline="") as f:
        ref = list(csv.DictReader(f))
    assert len(rows) == len(ref)
    out: dict = {}
    for i, (r, nm) in enumerate(zip(rows, ref), 1):
        assert r["ID"] == nm["ID"] and num(r["time"]) == float(nm["TIME"])
        values = {"ALAG2": num(r["LAGT"]), "F2": num(r["BIOAV"]), "WT": 70.0, "CRCL": 100.0}
        if num(r["MODE"]) == 1:
            values["R2"] = num(r["RAT2"])
        if num(r["MODE"]) == 2:
            values["D2"] = num(r["DUR2"])
        evid = int(num(r["evid"]))
        record = Record(row=i, time=num(r["time"]), evid=evid, amt=num(r["amt"]),
                        cmt=int(num(r["cmt"])) if evid in (1, 4) else 1, rate=num(r["rate"]), ii=num(r["ii"]),
                        addl=int(num(r["addl"])), ss=int(num(r["ss"])), values=values)
        records, printed = out.setdefault(r["ID"], ([], []))
        records.append(record)
        if evid == 0:
            printed.append(float(nm["CP"]))
        else:  # NONMEM prints a dose or reset row after its event: an output row right after it says the same
            records.append(Record(row=i, time=record.time, evid=2, values=values))
            printed.append(float(nm["CP"]))
    return out


_NM = _nm_subjects() if (NMTESTS / "1001.csv").is_file() and (NMTESTS / "1001-nm.csv").is_file() else None


def _same_to_5_digits(ours: np.ndarray, printed: np.ndarray) -> np.ndarray:
    """Does each value round to NONMEM's printed 5 significant digits (half a unit in the 5th digit)?"""
    unit = np.where(printed == 0, 0.0, 10.0 ** (np.floor(np.log10(np.abs(np.where(printed == 0, 1, printed)))) - 4))
    return np.abs(ours - printed) <= np.where(printed == 0, 1e-9, 0.5 * unit * (1 + 1e-6))


@pytest.mark.skipif(_NM is None, reason=f"NONMEM reference data not found at {NMTESTS} (nmtests 1001 is not shipped)")
@pytest.mark.parametrize("nm_id", [str(i) for i in range(1, 30)])
def test_nonmem_dataset_1001(nm_id):
    records, cp = _NM[nm_id]
    result = simulate_table(EventTable((Subject(nm_id, int(nm_id), tuple(records)),)), ONE_CMT)
    printed = np.array(cp)
    ours = 1000.0 * result.readouts["plasma_mg_per_l"]
    assert ours.shape == printed.shape
    ok = _same_to_5_digits(ours, printed)
    bad = np.flatnonzero(~ok)
    assert ok.all(), f"ID {nm_id}: {bad.size} rows differ, first at TIME {result.time_h[bad[0]]}: " \
                     f"{ours[bad[0]]:.6g} vs NONMEM {printed[bad[0]]}"


# --------------------------------------------------------------------------- closed forms


def _k(params: Parameters) -> float:
    return (params.CL_nr + params.CL_r) / params.V_c


def test_ss_trough_of_a_bolus_regimen_is_the_geometric_series():
    dose, ii = 100.0, 12.0
    t = table([rec(0, 24, 2), rec(0, 24, 1, dose, cmt=2, ii=ii, ss=1), *outputs([24.0, 30.0, 36.0])])
    res = simulate_table(t, ONE_CMT)
    k, v = _k(ONE_CMT), ONE_CMT.V_c
    r = math.exp(-k * ii)
    trough = dose / v * r / (1 - r)
    peak = dose / v / (1 - r)
    c = res.readouts["plasma_mg_per_l"]
    assert c[0] == 0.0  # an output row before the record sees the state before it (rule 4)
    assert c[1] == pytest.approx(peak, rel=1e-12)  # steady state, then the record's own dose
    assert c[2] == pytest.approx(peak * math.exp(-k * 6), rel=1e-12)
    # no ADDL: nothing more comes, and II later the level is the trough
    assert c[3] == pytest.approx(trough, rel=1e-12)


def test_ss_state_at_t_equals_the_one_at_t_plus_ii_full_model():
    """Full model, oral with lag: the steady state is periodic in every state, slow ones included."""
    params = default_parameters().replace(t_lag=0.5)
    # with the lag, an output after the record at 0 sees the steady state before the record's own dose lands
    t = table([rec(0, 0, 1, 20.0, ii=8.0, ss=1), rec(0, 0, 2), rec(0, 8, 2), rec(0, 8, 1, 20.0), rec(0, 8, 2)])
    res = simulate_table(t, params)
    for name in model.READOUTS:
        a, b = res.readouts[name][0], res.readouts[name][1]
        assert b == pytest.approx(a, rel=1e-11, abs=1e-14), name
    # the slow states are the exact fixed point of the discrete period map: periodic to round-off
    for name in ("receptor_density", "adaptation"):
        assert abs(res.readouts[name][1] - res.readouts[name][0]) < 1e-15, name
    assert res.readouts["receptor_density"][0] < 0.95  # a real steady state, not the drug-free one
    assert res.readouts["adaptation"][0] > 0.01


def test_constant_infusion_steady_state_is_rate_over_cl_and_stops_at_the_record():
    params = default_parameters()
    rate = 5.0
    t = table([rec(0, 10, 1, 0.0, cmt=2, rate=rate, ii=0.0, ss=1), *outputs([10.0, 10.5, 60.0])])
    res = simulate_table(t, params)
    cl = params.CL_nr + params.CL_r
    c = res.readouts["plasma_mg_per_l"]
    assert c[0] == pytest.approx(rate / cl, rel=1e-12)
    assert c[1] < c[0]  # the infusion stopped at the record (NONMEM's behaviour)
    assert c[2] < 1e-3 * c[0]


def test_ss2_adds_the_regimen_steady_state_to_the_linear_state():
    first = [rec(0, 0, 1, 100.0, cmt=1, ii=24.0, addl=3)]
    times = np.arange(12.0, 100.0, 1.0)
    both = simulate_table(table(first + [rec(0, 12, 2), rec(0, 12, 1, 50.0, cmt=2, ii=24.0, addl=3, ss=2)]
                                + outputs(times)))
    only_first = simulate_table(table(first + [rec(0, 12, 2)] + outputs(times)))
    only_second = simulate_table(table([rec(0, 12, 1, 50.0, cmt=2, ii=24.0, addl=3, ss=1)] + outputs(times)))
    for name in ("plasma_mg_per_l", "csf_mg_per_l"):
        a = both.readouts[name][1:]
        b = only_first.readouts[name][1:] + only_second.readouts[name]
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    # slow states keep their values at an SS = 2 record
    np.testing.assert_allclose(both.readouts["receptor_density"][0], only_first.readouts["receptor_density"][0],
                               rtol=1e-12)


def test_reset_returns_to_the_drug_free_state():
    t = table([rec(0, 0, 1, 20.0, ii=8.0, addl=30), rec(0, 100, 3), rec(0, 100, 2), *outputs([105.0])],
              [rec(0, 0, 1, 20.0, ii=8.0, addl=3), rec(0, 30, 3), *outputs([30.0, 31.0, 60.0])],
              outputs([0.0]))
    res = simulate_table(t)
    baseline = {k: v[-1] for k, v in res.readouts.items()}
    assert baseline["excitability"] == pytest.approx(1.0, abs=1e-15)
    for name in model.READOUTS:
        # right after the reset (subject 1 at 100 h; subject 2, nothing pending, at 30, 31 and 60 h)
        for i in (0, 2, 3, 4):
            assert res.readouts[name][i] == pytest.approx(baseline[name], abs=1e-15), name
    # the pending ADDL copies of subject 1 (every 8 h to 240 h) still come after the reset: 104 h
    assert res.readouts["plasma_mg_per_l"][1] > 0.01


def test_reset_cancels_running_infusions_but_later_inputs_still_come():
    iv = [rec(0, 0, 1, 400.0, cmt=2, rate=10.0), rec(0, 0, 1, 100.0, cmt=2, ii=24.0, addl=2), rec(0, 30, 3)]
    res = simulate_table(table(iv + outputs([30.0, 35.0, 47.0, 48.0, 50.0, 60.0]),
                               [rec(0, 48, 1, 100.0, cmt=2)] + outputs([48.0, 50.0, 60.0])))
    c = res.readouts["plasma_mg_per_l"]
    assert np.all(c[:3] == 0.0)  # the 40 h infusion stopped at the reset at 30 h
    for name in model.READOUTS:  # the copy at 48 h acts on a drug-free subject
        np.testing.assert_allclose(res.readouts[name][3:6], res.readouts[name][6:9], rtol=1e-9, atol=1e-12)


def test_output_before_a_dose_at_the_same_time_sees_the_state_before_it():
    t = table([rec(0, 5, 0), rec(0, 5, 1, 100.0, cmt=2), rec(0, 5, 0), rec(0, 5, 1, 100.0, cmt=2), rec(0, 5, 2)])
    c = simulate_table(t, ONE_CMT).readouts["plasma_mg_per_l"]
    np.testing.assert_allclose(c, [0.0, 5.0, 10.0], rtol=1e-14)


def test_evid4_equals_reset_then_dose():
    head = [rec(0, 0, 1, 100.0, cmt=2, ii=12.0, addl=5), *outputs([10.0])]
    a = simulate_table(table(head + [rec(0, 20, 4, 50.0, cmt=1)] + outputs([20.0, 22.0, 30.0])))
    b = simulate_table(table(head + [rec(0, 20, 3), rec(0, 20, 1, 50.0, cmt=1)] + outputs([20.0, 22.0, 30.0])))
    for name in model.READOUTS:
        np.testing.assert_allclose(a.readouts[name], b.readouts[name], rtol=1e-12, atol=1e-15)


def _chained(params, wt, crcl_before, crcl_after, t_change, t_end, dose_times, amount, out_times, max_step=0.5):
    """Two runs of the solver itself, the second starting from the first's end state."""
    x0 = None
    y0 = np.zeros((3, 1))
    results = {}
    for (t0, t1, crcl) in ((0.0, t_change, crcl_before), (t_change, t_end, crcl_after)):
        ind = model.individual_parameters(params, Population(weight_kg=[wt], crcl_ml_min=[crcl]))
        A, B = model.linear_system(ind)
        lag = ind["t_lag"][0]
        land = dose_times + lag
        sel = (land > t0 + 1e-9 if t0 > 0 else land >= t0) & (land <= t1 + 1e-9)
        sched = events.Schedule(1, np.zeros(sel.sum(), int), np.zeros(sel.sum(), int), land[sel],
                                np.full(sel.sum(), amount * ind["F_ir"][0]), *(np.zeros(0, int),) * 2,
                                *(np.zeros(0),) * 3)
        marks = np.unique(np.concatenate([[t0, t1], out_times[(out_times >= t0) & (out_times <= t1)]]))
        nodes, idx = time_grid(marks, sched.times(), max_step, fastest_rate(A))
        jumps, inputs = sched.solver_input(nodes, node_of)
        memo: dict = {}
        system = SemiLinearSystem(A, B, 3, lambda i, x, y: model.slow_coefficients(i, x, y, ind, memo),
                                  model.COUPLED_STATES)
        x, y = integrate(system, nodes, jumps=jumps, inputs=inputs, record_index=idx,
                         record_rows=tuple(range(8)), y0=y0, x0=x0)
        states = {s: x[j][:, 0] for j, s in enumerate(model.LINEAR_STATES)}
        states.update({s: y[j][:, 0] for j, s in enumerate(model.SLOW_STATES)})
        for j, t in enumerate(marks):
            if (t0 == 0.0 and t <= t1) or t > t0:
                results[float(t)] = {r: float(np.atleast_1d(model.readout(r, {k: v[j] for k, v in states.items()}, ind))[0])
                                     for r in model.READOUTS}
        x0, y0 = x[:, -1, :], y[:, -1, :]
    return results


def test_a_crcl_change_at_day_5_equals_two_chained_runs():
    params = default_parameters()
    dose_times = np.arange(0.0, 240.0, 8.0)
    out = np.arange(0.0, 240.0, 4.0) + 1.0
    recs = [rec(0, 0, 1, 20.0, ii=8.0, addl=29, CRCL=100.0, WT=80.0)]
    for t in out:
        recs.append(rec(0, t, 0, CRCL=100.0 if t < 120 else 30.0, WT=80.0))
    # the change is on the record at 121 h: it takes effect after that row; put a row at 120 carrying it
    recs.insert(1 + int(np.searchsorted(out, 120.0)), rec(0, 120.0, 2, CRCL=30.0, WT=80.0))
    res = simulate_table(table(recs), params)
    ref = _chained(params, 80.0, 100.0, 30.0, 120.0, float(out[-1]), dose_times, 20.0, np.append(out, 120.0))
    times = res.time_h
    for name in model.READOUTS:
        want = np.array([ref[float(t)][name] for t in times])
        np.testing.assert_allclose(res.readouts[name], want, rtol=1e-7, atol=1e-9, err_msg=name)
    assert np.all(res.covariates["CRCL"][times > 120.0] == 30.0)
    assert np.all(res.covariates["WT"] == 80.0)
    # the change matters: day 10 plasma is higher than with CrCl 100 throughout
    flat = simulate_table(table([rec(0, 0, 1, 20.0, ii=8.0, addl=29, CRCL=100.0, WT=80.0)]
                                + outputs(out, evid=0, CRCL=100.0, WT=80.0)), params)
    assert res.readouts["plasma_mg_per_l"][-1] > 1.5 * flat.readouts["plasma_mg_per_l"][-1]


def test_a_table_without_cuts_equals_a_scenario_run_of_the_same_population():
    wt, crcl = np.array([55.0, 70.0, 95.0]), np.array([40.0, 100.0, 130.0])
    times = np.arange(0.0, 49.0, 1.5)
    regimen = pkpd.Regimen(doses=[pkpd.Dose("oral_ir", 10.0, every_h=8.0, count=6)])
    ref = pkpd.simulate(regimen, duration_h=48.0, population=Population(weight_kg=wt, crcl_ml_min=crcl),
                        times_h=times)
    subjects = [[rec(0, 0, 1, 10.0, ii=8.0, addl=5, WT=w, CRCL=c)] + outputs(times, evid=0, WT=w, CRCL=c)
                for w, c in zip(wt, crcl)]
    res = simulate_table(table(*subjects))
    for name in model.READOUTS:
        np.testing.assert_allclose(res.readouts[name], ref.readouts[name].reshape(-1), rtol=1e-10, atol=1e-13,
                                   err_msg=name)
    cols = res.to_columns()
    assert list(cols)[:3] == ["ID", "TIME", "EVID"] and list(cols)[3:3 + len(model.READOUTS)] == list(model.READOUTS)
    assert list(cols)[-2:] == ["WT", "CRCL"]
    np.testing.assert_array_equal(cols["WT"], np.repeat(wt, times.size))


def test_a_parameter_column_overrides_the_typical_value():
    times = np.arange(0.0, 24.0, 2.0)
    res = simulate_table(table([rec(0, 0, 1, 10.0, CL_r=0.0)] + outputs(times, CL_r=0.0)))
    ref = pkpd.simulate(pkpd.Regimen(doses=[pkpd.Dose("oral_ir", 10.0)]), duration_h=24.0,
                        parameters=default_parameters().replace(CL_r=0.0), times_h=times)
    np.testing.assert_allclose(res.readouts["plasma_mg_per_l"], ref.plasma_mg_per_l[0], rtol=1e-10)


def test_ss_with_a_lag_longer_than_ii_gives_the_long_run_state_at_t():
    ii, lag, dose = 12.0, 30.0, 100.0
    n = 120
    start = 24.0 + ii * n
    ss = simulate_table(table([rec(0, start, 1, dose, cmt=2, ii=ii, ss=1, ALAG2=lag), rec(0, start, 2)]), ONE_CMT)
    long = simulate_table(table([rec(0, 24.0, 1, dose, cmt=2, ii=ii, addl=n - 1, ALAG2=lag), rec(0, start, 2)]),
                          ONE_CMT)
    assert ss.readouts["plasma_mg_per_l"][0] == pytest.approx(long.readouts["plasma_mg_per_l"][0], rel=1e-10)


# --------------------------------------------------------------------------- full model


def test_ss_then_stop_shows_the_rebound_of_a_long_run():
    """SS = 1 of 20 mg every 8 h, then the record's dose and stop, against two years of dosing."""
    ii, dose = 8.0, 20.0
    years = 2 * 365 * 24.0
    after = np.arange(0.0, 97.0, 4.0)
    step = 2.0  # the same coarse slow step in both runs (halves the cost; agreement stays near 1e-8)
    res = simulate_table(table([rec(0, 0, 1, dose, ii=ii, ss=1)] + outputs(after)), max_step_h=step)
    n_doses = int(years / ii) + 1  # the last one at `years`, the record's own dose
    long = pkpd.simulate(pkpd.Regimen(doses=[pkpd.Dose("oral_ir", dose, every_h=ii, count=n_doses)]),
                         duration_h=years + 96.0, times_h=years + after, max_step_h=step)
    for name in model.READOUTS:
        ours = res.readouts[name]
        theirs = long.readouts[name][0]
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6, err_msg=name)
    exc = res.readouts["excitability"]
    assert exc.max() > 1.1  # the rebound is there


def test_subjects_run_together_give_what_each_gives_alone():
    """Grouped subjects (same record structure, lock step), a batched one and file order."""
    def cut_subject(wt, amt, ii):
        return ([rec(0, 0, 1, amt, ii=ii, ss=1, WT=wt), *outputs([0.0, 3.0, 9.0], WT=wt),
                 rec(0, 10, 0, WT=wt), rec(0, 10, 1, amt, cmt=2, rate=amt / 2, WT=wt), rec(0, 11, 3, WT=wt),
                 *outputs([11.0, 20.0], WT=wt), rec(0, 24, 1, amt, ii=ii, addl=2, ss=2, WT=wt + 5),
                 *outputs([25.0, 40.0], WT=wt + 5)])
    plain = [rec(0, 0, 1, 15.0, ii=6.0, addl=4), *outputs([1.0, 7.0, 30.0])]
    subjects = [cut_subject(60.0, 20.0, 8.0), plain, cut_subject(90.0, 10.0, 12.0), cut_subject(75.0, 30.0, 8.0)]
    together = simulate_table(table(*subjects))
    alone = [simulate_table(table(s)) for s in subjects]
    np.testing.assert_array_equal(together.subject_id, np.repeat(["1", "2", "3", "4"], [len(a) for a in alone]))
    for name in model.READOUTS:  # a shared grid holds every subject's nodes: the slow states move by < 1e-9
        np.testing.assert_allclose(together.readouts[name], np.concatenate([a.readouts[name] for a in alone]),
                                   rtol=1e-8, atol=1e-9, err_msg=name)
        if name in ("plasma_mg_per_l", "csf_mg_per_l", "cns_depression"):  # the linear part is exact
            np.testing.assert_allclose(together.readouts[name], np.concatenate([a.readouts[name] for a in alone]),
                                       rtol=1e-12, atol=1e-15, err_msg=name)
    np.testing.assert_array_equal(together.covariates["WT"], np.concatenate([a.covariates["WT"] for a in alone]))


def test_bad_arguments_raise_specific_errors():
    good = table([rec(0, 0, 1, 10.0), rec(0, 1, 0)])
    with pytest.raises(pkpd.ParameterError, match="max_step_h"):
        simulate_table(good, max_step_h=0)
    with pytest.raises(pkpd.ParameterError, match="parameters"):
        simulate_table(good, {"ka": 1.0})
    with pytest.raises(pkpd.RegimenError, match="R2"):
        simulate_table(table([rec(0, 0, 1, 10.0, cmt=2, rate=-1), rec(0, 1, 0)]))


def test_a_steady_state_first_record_gives_what_the_segmented_path_gives():
    """SS = 1 as a subject's first record starts a batch from the steady state; after an earlier
    output row the same record cuts a segment instead (the general path): the two must agree."""
    params = default_parameters().replace(t_lag=0.25)
    later = [rec(0, 0, 1, 20.0, ii=8.0, addl=2, ss=1), *[rec(0, t, 2) for t in np.arange(0.0, 30.0, 1.5)]]
    first = table(later)
    second = table([rec(0, -1.0, 2), *later])
    for infusion in (False, True):
        if infusion:  # an infusion longer than II: copies of the past regimen still run at the record
            later[0] = rec(0, 0, 1, 20.0, ii=8.0, addl=2, ss=1, rate=1.0)
            first, second = table(later), table([rec(0, -1.0, 2), *later])
        a, b = simulate_table(first, params), simulate_table(second, params)
        for name in model.READOUTS:
            np.testing.assert_allclose(b.readouts[name][1:], a.readouts[name], rtol=1e-11, atol=1e-14, err_msg=name)
        assert b.readouts["plasma_mg_per_l"][0] == 0.0


@pytest.mark.skipif(not pkpd.kernel.available(), reason="the compiled engine needs numba (pip install 'pkpd[fast]')")
def test_the_compiled_engine_gives_the_numpy_results_on_an_event_table():
    params = default_parameters().replace(t_lag=0.5)
    t = table([rec(0, 0, 1, 20.0, ii=8.0, ss=1, addl=5), *[rec(0, t, 2) for t in np.arange(0.0, 72.0, 2.0)],
               rec(0, 30.0, 3), rec(0, 31.0, 1, 5.0, cmt=5, rate=1.0), rec(0, 80.0, 2)])
    a = simulate_table(t, params, engine="numpy")
    b = simulate_table(t, params, engine="numba")
    for name in model.READOUTS:
        np.testing.assert_allclose(b.readouts[name], a.readouts[name], rtol=1e-12, atol=1e-13, err_msg=name)


def test_a_covariate_change_read_from_columns_cuts_as_one_built_from_records():
    """The reader tells the engine where values are written; a change there must still cut a segment."""
    from pkpd.event_table import read_event_table

    times = [0.0, 0.0, 24.0, 48.0, 72.0, 96.0, 120.0]
    cols = {"ID": [1] * 7, "TIME": times, "EVID": [1, 0, 0, 0, 0, 0, 0], "AMT": [20, None, None, None, None, None, None],
            "II": [8, None, None, None, None, None, None], "ADDL": [20, None, None, None, None, None, None],
            "CRCL": [90, None, None, 20, None, None, None], "WT": [70, None, None, None, None, None, None]}
    read = simulate_table(read_event_table(cols))
    recs = [rec(0, 0, 1, 20.0, ii=8.0, addl=20, CRCL=90.0, WT=70.0)]
    recs += [rec(0, t, 0, CRCL=(20.0 if t >= 48 else 90.0), WT=70.0) for t in times[1:]]
    built = simulate_table(table(recs))
    np.testing.assert_allclose(read.readouts["plasma_mg_per_l"], built.readouts["plasma_mg_per_l"], rtol=1e-13)
    unchanged = simulate_table(read_event_table({**cols, "CRCL": [90] + [None] * 6}))
    assert read.readouts["plasma_mg_per_l"][-1] > 1.5 * unchanged.readouts["plasma_mg_per_l"][-1]
