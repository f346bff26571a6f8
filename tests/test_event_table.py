"""Event tables in and out (docs/event-tables.md): reading, rule 12, the writer, the command line."""

from __future__ import annotations

import io
import math
import os

import numpy as np
import pytest

from pkpd import cli
from pkpd.errors import EventTableError, PkpdError, ScenarioError
from pkpd.event_table import (
    format_event_table,
    format_output_table,
    read_event_table,
    scenario_to_event_table,
    write_event_table,
)
from pkpd.records import DOSE, OBSERVATION, OTHER, RESET
from pkpd.scenario import load_scenario


def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------
# Rule 12: every bad input, one line naming row, column and value

#: (id, table text, row, column, text in the rule, value as echoed)
BAD = [
    ("unsorted-time", "ID,TIME,AMT\n1,5,10\n1,3,0\n", 2, "TIME", "must not decrease", "3"),
    ("negative-amt", "ID,TIME,AMT\n1,0,10\n1,1,0\n1,12,-5\n", 3, "AMT", "must be >= 0", "-5"),
    ("ss-without-ii", "ID,TIME,AMT,SS\n1,0,10,1\n", 1, "SS", "needs II > 0", "1"),
    ("ss2-without-ii", "ID,TIME,AMT,SS,II\n1,0,10,2,0\n", 1, "SS", "needs II > 0", "2"),
    ("addl-without-ii", "ID,TIME,AMT,ADDL\n1,0,10,3\n", 1, "ADDL", "need II > 0", "3"),
    ("cmt-7", "ID,TIME,AMT,CMT\n1,0,10,7\n", 1, "CMT", "must be 1-6", "7"),
    ("cmt-0", "ID,TIME,AMT,CMT\n1,0,10,0\n", 1, "CMT", "must be 1-6", "0"),
    ("rate-1-without-r", "ID,TIME,AMT,CMT,RATE\n1,0,10,2,-1\n", 1, "RATE", "from R2", "-1"),
    ("rate-1-r-other-cmt", "ID,TIME,AMT,CMT,RATE,R1\n1,0,10,2,-1,5\n", 1, "RATE", "from R2", "-1"),
    ("rate-2-without-d", "ID,TIME,AMT,CMT,RATE\n1,0,10,1,-2\n", 1, "RATE", "from D1", "-2"),
    ("rate-other-negative", "ID,TIME,AMT,RATE\n1,0,10,-3\n", 1, "RATE", "must be 0", "-3"),
    ("unknown-column", "ID,TIME,AMT,FOO\n1,0,10,1\n", None, "FOO", "unknown column", "'FOO'"),
    ("wrong-case-parameter", "ID,TIME,KA\n1,0,1\n", None, "KA", "did you mean 'ka'", "'KA'"),
    ("compartment-7-parameter", "ID,TIME,F7\n1,0,1\n", None, "F7", "dosable compartments are 1-6", "'F7'"),
    ("text-for-number", "ID,TIME,AMT\n1,0,ten\n", 1, "AMT", "must be a number", "'ten'"),
    ("text-time", "ID,TIME,AMT\n1,0,10\n1,later,0\n", 2, "TIME", "must be a number", "'later'"),
    ("nan", "ID,TIME,AMT\n1,0,nan\n", 1, "AMT", "finite", "nan"),
    ("inf", "ID,TIME,WT\n1,0,inf\n", 1, "WT", "finite", "inf"),
    ("non-contiguous", "ID,TIME\n1,0\n2,0\n1,1\n", 3, "ID", "contiguous", "1"),
    ("blank-id", "ID,TIME\n1,0\n,1\n", 2, "ID", "required", "''"),
    ("parameter-range", "ID,TIME,F_ir\n1,0,1.5\n", 1, "F_ir", "in (0, 1]", "1.5"),
    ("parameter-range-later", "ID,TIME,V_c\n1,0,20\n1,1,0\n", 2, "V_c", "> 0", "0"),
    ("wt-zero", "ID,TIME,WT\n1,0,0\n", 1, "WT", "> 0", "0"),
    ("crcl-negative", "ID,TIME,CRCL\n1,0,-1\n", 1, "CRCL", ">= 0", "-1"),
    ("evid-5", "ID,TIME,EVID\n1,0,5\n", 1, "EVID", "0, 1, 2, 3 or 4", "5"),
    ("ss-3", "ID,TIME,AMT,SS,II\n1,0,10,3,12\n", 1, "SS", "0, 1 or 2", "3"),
    ("addl-fraction", "ID,TIME,AMT,ADDL,II\n1,0,10,1.5,12\n", 1, "ADDL", "integer", "1.5"),
    ("negative-ii", "ID,TIME,AMT,II\n1,0,10,-8\n", 1, "II", ">= 0", "-8"),
    ("negative-time", "ID,TIME\n1,-1\n", 1, "TIME", ">= 0", "-1"),
    ("negative-f", "ID,TIME,AMT,F2\n1,0,10,-0.5\n", 1, "F2", ">= 0", "-0.5"),
    ("ragged-row", "ID,TIME,AMT\n1,0\n", 1, None, "3 cells", "2 cells"),
    ("duplicate-column", "ID,TIME,AMT,amt\n1,0,1,1\n", None, "amt", "duplicate", "'amt'"),
    ("missing-time", "ID,AMT\n1,0\n", None, "TIME", "required column", "['ID', 'AMT']"),
]
EMPTY = [("empty-file", "", "empty file"), ("header-only", "ID,TIME,AMT\n", "no data rows"),
         ("blank-lines-only", "\n\n", "empty file")]


def _expected_prefix(path, row, column):
    where = ", ".join(p for p in ((f"row {row}" if row is not None else "header"), column) if p)
    return f"{path}: {where}: "


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_table_is_one_line_naming_row_column_value(tmp_path, case):
    _, text, row, column, rule, value = case
    path = _write(tmp_path, text)
    with pytest.raises(EventTableError) as info:
        read_event_table(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(_expected_prefix(path, row, column)), message
    assert rule in message
    assert message.endswith(f"; got {value}"), message


@pytest.mark.parametrize("case", EMPTY, ids=[c[0] for c in EMPTY])
def test_empty_table(tmp_path, case):
    _, text, rule = case
    path = _write(tmp_path, text)
    with pytest.raises(EventTableError, match=rule) as info:
        read_event_table(str(path))
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_error_class_is_a_scenario_error():
    assert issubclass(EventTableError, ScenarioError) and issubclass(EventTableError, PkpdError)


def test_example_message_of_the_brief(tmp_path):
    path = _write(tmp_path, "ID,TIME,AMT\n" + "1,0,10\n" * 11 + "1,0,-5\n")
    with pytest.raises(EventTableError) as info:
        read_event_table(str(path), name="data.csv")
    assert str(info.value) == "data.csv: row 12, AMT: must be >= 0 (mg); got -5"


def test_row_numbers_count_blank_lines(tmp_path):
    path = _write(tmp_path, "ID,TIME,AMT\n1,0,10\n\n1,1,-5\n")
    with pytest.raises(EventTableError, match=r"row 3, AMT"):
        read_event_table(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(EventTableError, match="no such file"):
        read_event_table(str(tmp_path / "absent.csv"))


@pytest.mark.parametrize("case", BAD + [(c[0], c[1], None, None, c[2], None) for c in EMPTY],
                         ids=[c[0] for c in BAD] + [c[0] for c in EMPTY])
def test_bad_table_on_the_command_line(tmp_path, capsys, case):
    text = case[1]
    path = _write(tmp_path, text)
    out = tmp_path / "out"
    status = cli.main(["run", str(path), "--out", str(out), "--no-plot"])
    err = capsys.readouterr().err
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(path)), err
    assert case[4] in lines[0]
    assert not out.exists()


# ---------------------------------------------------------------------------
# Defaults, LOCF, names, inputs


def test_defaults(tmp_path):
    path = _write(tmp_path, "ID,TIME,AMT\n1,0,10\n1,1,\n1,2,0\n")
    (s,) = read_event_table(str(path)).subjects
    dose, blank, zero = s.records
    assert (dose.evid, dose.amt, dose.cmt, dose.rate, dose.ii, dose.addl, dose.ss) == (DOSE, 10.0, 1, 0.0, 0.0, 0, 0)
    assert blank.evid == OBSERVATION and zero.evid == OBSERVATION
    assert [r.row for r in s.records] == [1, 2, 3]
    assert s.id == "1" and s.number == 1


def test_explicit_evid_and_dot_is_blank(tmp_path):
    path = _write(tmp_path, "ID,TIME,EVID,AMT,CMT,RATE,II,ADDL,SS\n1,0,1,10,2,5,12,3,0\n1,1,2,.,.,.,.,.,.\n"
                            "1,2,3,10,.,.,.,.,.\n")
    dose, other, reset = read_event_table(str(path)).subjects[0].records
    assert (dose.cmt, dose.rate, dose.ii, dose.addl) == (2, 5.0, 12.0, 3)
    assert other.evid == OTHER and reset.evid == RESET and reset.amt == 0.0


def test_ss1_constant_infusion_needs_no_ii(tmp_path):
    path = _write(tmp_path, "ID,TIME,EVID,AMT,CMT,RATE,SS\n1,0,1,0,2,5,1\n")
    rec = read_event_table(str(path)).subjects[0].records[0]
    assert (rec.ss, rec.rate, rec.ii) == (1, 5.0, 0.0)


def test_locf_per_subject(tmp_path):
    path = _write(tmp_path, "ID,TIME,AMT,WT,ka,R2\n1,0,10,80,,\n1,1,,,2.5,\n1,2,,60,,\n1,3,,,,\n2,0,,,,3\n")
    table = read_event_table(str(path))
    a, b = table.subjects
    assert [dict(r.values) for r in a.records] == [
        {"WT": 80.0}, {"WT": 80.0, "ka": 2.5}, {"WT": 60.0, "ka": 2.5}, {"WT": 60.0, "ka": 2.5}]
    assert dict(b.records[0].values) == {"R2": 3.0}  # nothing carried over from subject 1
    assert table.columns == ("WT", "ka", "R2")


def test_rate_minus_one_reads_the_carried_r(tmp_path):
    path = _write(tmp_path, "ID,TIME,AMT,CMT,RATE,R2\n1,0,,,,4\n1,1,10,2,-1,\n")
    dose = read_event_table(str(path)).subjects[0].records[1]
    assert dose.rate == -1.0 and dose.values["R2"] == 4.0


def test_names_case_insensitive(tmp_path):
    path = _write(tmp_path, "id,Time,evid,amt,Cmt,rate,ii,addl,ss,mdv,dv,wt,CrCl,f1,alag1,d1,r2,ka,Kd\n"
                            "7,0,1,10,1,0,8,2,0,1,.,70,90,0.8,0.5,3,2,1.1,0.3\n")
    table = read_event_table(str(path))
    rec = table.subjects[0].records[0]
    assert table.subjects[0].id == "7"
    assert (rec.amt, rec.ii, rec.addl) == (10.0, 8.0, 2)
    assert dict(rec.values) == {"WT": 70.0, "CRCL": 90.0, "F1": 0.8, "ALAG1": 0.5, "D1": 3.0, "R2": 2.0,
                                "ka": 1.1, "Kd": 0.3}


def test_text_ids(tmp_path):
    path = _write(tmp_path, "ID,TIME\nanne,0\nanne,1\nbob,0\n")
    assert [s.id for s in read_event_table(str(path)).subjects] == ["anne", "bob"]


def test_carried_columns(tmp_path):
    path = _write(tmp_path, "ID,TIME,AMT,ARM,site\n1,0,10,\"a,b\",x\n1,1,,,\n")
    table = read_event_table(str(path), carry=("ARM", "site"))
    assert table.carried == ("ARM", "site")
    r0, r1 = table.subjects[0].records
    assert dict(r0.carried) == {"ARM": "a,b", "site": "x"} and dict(r1.carried) == {"ARM": "", "site": ""}


def test_mapping_input():
    table = read_event_table({"ID": [1, 1, 2], "TIME": [0, 1.5, 0], "AMT": [10, None, 5], "WT": [80, None, float("nan")]})
    assert table.source == "<table>"
    a, b = table.subjects
    assert [r.evid for r in a.records] == [DOSE, OBSERVATION]
    assert a.records[1].values == {"WT": 80.0} and b.records[0].values == {}


def test_mapping_errors():
    with pytest.raises(EventTableError, match=r"^<table>: row 2, AMT: must be >= 0 \(mg\); got -1$"):
        read_event_table({"ID": [1, 1], "TIME": [0, 1], "AMT": [1, -1]})
    with pytest.raises(EventTableError, match=r"^<table>: row 1, AMT: must be a finite number; got inf$"):
        read_event_table({"ID": [1], "TIME": [0], "AMT": [math.inf]})
    with pytest.raises(EventTableError, match="cells"):
        read_event_table({"ID": [1, 1], "TIME": [0]})
    with pytest.raises(EventTableError, match="empty"):
        read_event_table({})
    with pytest.raises(EventTableError, match="no data rows"):
        read_event_table({"ID": [], "TIME": []})


def test_dataframe_input(tmp_path):
    pd = pytest.importorskip("pandas")
    path = _write(tmp_path, "ID,TIME,AMT,CMT,WT,note\n1,0,10,2,80,x\n1,1,,,,\n2,0,5,1,,y\n")
    frame = pd.read_csv(path)
    table = read_event_table(frame, carry=["note"])
    assert table.source == "<DataFrame>"
    from_csv = read_event_table(str(path), carry=["note"])
    assert [s.records for s in table.subjects] == [s.records for s in from_csv.subjects]
    with pytest.raises(EventTableError, match=r"^mine: row 1, AMT: must be >= 0"):
        read_event_table(pd.DataFrame({"ID": [1], "TIME": [0.0], "AMT": [-2.0]}), name="mine")


# ---------------------------------------------------------------------------
# The writer


def _expand(table):
    """(ID, time, cmt, amount, rate) of every dose, ADDL copies expanded, sorted."""
    out = []
    for s in table.subjects:
        for r in s.records:
            if r.is_dose:
                for k in range(r.addl + 1):
                    out.append((s.id, r.time + k * r.ii, r.cmt, r.amt, r.rate))
    return sorted(out)


def _scenario_doses(scenario):
    from pkpd.event_table import ROUTE_CMT
    from pkpd.regimen import DOSE_ROUTES

    n = scenario.subjects.n
    out = []
    for a, arm in enumerate(scenario.arms):
        times, routes, amounts = arm.regimen.dose_events(scenario.duration_h)
        for i in range(n):
            sid = str(a * n + i + 1)
            for t, r, amt in zip(times, routes, amounts):
                route = DOSE_ROUTES[r]
                out.append((sid, float(t), ROUTE_CMT[route], float(amt), -2.0 if route == "oral_er" else 0.0))
            for inf in arm.regimen.infusions:
                if inf.start_h <= scenario.duration_h:
                    out.append((sid, inf.start_h, ROUTE_CMT[inf.route], inf.rate_mg_per_h * (inf.stop_h - inf.start_h),
                                inf.rate_mg_per_h))
    return sorted(out)


@pytest.mark.parametrize("name", ["titration-stop-vs-taper", "ir-vs-er", "intrathecal-test-bolus-and-infusion",
                                  "renal-impairment", "missed-doses"])
def test_scenario_written_and_read_back(tmp_path, name):
    scenario = load_scenario(name)
    path = tmp_path / "events.csv"
    write_event_table(scenario_to_event_table(scenario), path)
    table = read_event_table(str(path), carry=["ARM"])
    assert _expand(table) == _scenario_doses(scenario)
    from pkpd.simulate import output_times

    grid = output_times(scenario.duration_h, scenario.output_step_h)
    n = scenario.subjects.n
    assert len(table.subjects) == n * len(scenario.arms)
    for k, s in enumerate(table.subjects):
        arm = scenario.arms[k // n]
        obs = [r.time for r in s.records if r.evid == OBSERVATION]
        assert obs == list(grid)
        assert {r.carried["ARM"] for r in s.records} == {arm.name}
        for r in s.records:
            if r.is_dose and r.cmt == 1:
                er = r.rate == -2.0
                assert r.values["F1"] == (arm.parameters.F_er if er else arm.parameters.F_ir)
                if er:
                    assert r.values["D1"] == arm.parameters.D_er
        # an observation at a dose time comes after the dose (it reports the state just after it)
        times = [(r.time, r.evid) for r in s.records]
        for (t0, e0), (t1, e1) in zip(times, times[1:]):
            assert not (t0 == t1 and e0 == OBSERVATION and e1 == DOSE)


def test_repeats_are_addl_rows():
    columns = scenario_to_event_table(load_scenario("ir-vs-er"))
    doses = [(columns["AMT"][i], columns["II"][i], columns["ADDL"][i], columns["RATE"][i], columns["D1"][i])
             for i in range(len(columns["ID"])) if columns["EVID"][i] == 1]
    assert doses == [(20.0, 8.0, 20, 0.0, None), (60.0, 24.0, 6, -2.0, 5.5)]


def test_population_covariates_and_random_effects(tmp_path):
    scenario = load_scenario("population-variability", n_subjects=3)
    population = scenario.subjects.population()
    columns = scenario_to_event_table(scenario)
    table = read_event_table(format_to_mapping(columns), carry=["ARM"])
    for k, s in enumerate(table.subjects[:3]):
        v = s.records[0].values
        assert v["WT"] == population.weight_kg[k] and v["CRCL"] == population.crcl_ml_min[k]
        if "ka" in population.eta:
            assert v["ka"] == pytest.approx(scenario.arms[0].parameters.ka * math.exp(population.eta["ka"][k]),
                                            rel=1e-15)


def format_to_mapping(columns):
    """The written text read back as a mapping of text cells (the CSV path without a file)."""
    import csv

    rows = list(csv.reader(io.StringIO(format_event_table(columns))))
    return {name: [r[i] for r in rows[1:]] for i, name in enumerate(rows[0])}


def test_numbers_are_exact():
    text = format_event_table({"ID": [1], "TIME": [1 / 3], "AMT": [20.0], "note": ["a,b"], "X": [None]})
    assert text == "ID,TIME,AMT,note,X\n1,0.3333333333333333,20,\"a,b\",\n"
    out = format_output_table({"ID": ["1"], "TIME": np.array([1 / 3]), "EVID": np.array([0])})
    assert out == "ID,TIME,EVID\n1,0.3333333333,0\n"


def test_parameter_overrides_become_columns():
    scenario = load_scenario("ir-vs-er", overrides={"CL_r": 3.0})
    columns = scenario_to_event_table(scenario)
    # on each subject's first row; blank (carried forward, rule 10) on the others
    assert set(columns["CL_r"]) == {3.0, None}
    firsts = [i for i, sid in enumerate(columns["ID"]) if i == 0 or columns["ID"][i - 1] != sid]
    assert all(columns["CL_r"][i] == 3.0 for i in firsts)
    table = read_event_table(columns, carry=["ARM"])
    assert all(rec.values["CL_r"] == 3.0 for subj in table.subjects for rec in subj.records)


# ---------------------------------------------------------------------------
# Command line


def test_events_command_stdout(capsys):
    assert cli.main(["events", "titration-stop-vs-taper"]) == 0
    out = capsys.readouterr().out
    header, first = out.splitlines()[:2]
    assert header.startswith("ID,TIME,EVID,AMT,CMT,RATE,II,ADDL,WT,CRCL")
    assert first.startswith("1,0,1,5,1,0,8,")


def test_events_command_file(tmp_path, capsys):
    path = tmp_path / "e.csv"
    assert cli.main(["events", "ir-vs-er", "--out", str(path)]) == 0
    table = read_event_table(str(path), carry=["ARM"])
    assert len(table.subjects) == 2
    assert [p for p in os.listdir(tmp_path)] == ["e.csv"]


def test_events_command_bad_scenario(capsys):
    assert cli.main(["events", "no-such-scenario"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_run_table_refuses_subjects(tmp_path, capsys):
    path = _write(tmp_path, "ID,TIME,AMT\n1,0,10\n")
    assert cli.main(["run", str(path), "--subjects", "3", "--out", str(tmp_path / "o")]) == 2
    assert "--subjects" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_run_table_bad_set(tmp_path, capsys):
    path = _write(tmp_path, "ID,TIME,AMT\n1,0,10\n")
    assert cli.main(["run", str(path), "--set", "KA=3", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("--set KA")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------
# With the engine: the event table of a scenario runs to the scenario's own numbers


def _scenario_timecourse(scenario):
    from pkpd.files import TIMECOURSE_COLUMNS
    from pkpd.run import run

    chunks = []
    run(scenario, timecourse=chunks.append)
    rows = [line.split(",") for line in b"".join(chunks).decode().splitlines() if line]
    return {name: np.array([float(r[i]) for r in rows]) for i, name in enumerate(TIMECOURSE_COLUMNS) if i >= 2}


@pytest.mark.parametrize("name", ["titration-stop-vs-taper", "ir-vs-er", "intrathecal-test-bolus-and-infusion",
                                  "renal-impairment"])
def test_event_table_run_reproduces_scenario(tmp_path, name):
    engine = pytest.importorskip("pkpd.table_engine")
    scenario = load_scenario(name)
    path = tmp_path / "events.csv"
    write_event_table(scenario_to_event_table(scenario), path)
    table = read_event_table(str(path), carry=["ARM"])
    columns = engine.simulate_table(table).to_columns()
    expected = _scenario_timecourse(scenario)
    keep = np.asarray(columns["EVID"]) == 0
    np.testing.assert_array_equal(np.asarray(columns["TIME"], float)[keep], expected["time_h"])
    from pkpd.files import TIMECOURSE_READOUTS

    for readout in TIMECOURSE_READOUTS:
        got = np.asarray(columns[readout], float)[keep]
        # measured against the engine branch: differences up to ~2e-9 absolute (receptor_density,
        # adaptation) in the hours after a dose; the two runs integrate on different nodes
        np.testing.assert_allclose(got, expected[readout], rtol=1e-7, atol=1e-8, err_msg=readout)


def test_run_table_command(tmp_path, capsys):
    pytest.importorskip("pkpd.table_engine")
    path = tmp_path / "ir.csv"
    write_event_table(scenario_to_event_table(load_scenario("ir-vs-er")), path)
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "--carry", "ARM", "--out", str(out), "--no-plot"]) == 0
    text = (out / "table.csv").read_text().splitlines()
    assert text[0].startswith("ID,TIME,EVID,") and text[0].endswith("ARM")


def _old_format_output_table(columns):
    """format_output_table as it was before it used pkpd.number_format: one cell at a time."""
    import math

    from pkpd.event_table import _cell

    names = list(columns)
    data = [list(np.asarray(columns[k]).tolist()) if not isinstance(columns[k], list) else columns[k]
            for k in names]
    n = len(data[0]) if data else 0

    def cell(v):
        if v is None:
            return ""
        if isinstance(v, str):
            return _cell(v)
        if isinstance(v, (bool, np.bool_)):
            return str(int(v))
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        x = float(v)
        return "" if math.isnan(x) else "%.10g" % x

    lines = [",".join(_cell(str(k)) for k in names)]
    for i in range(n):
        lines.append(",".join(cell(c[i]) for c in data))
    return "\n".join(lines) + "\n"


def test_output_table_text_is_unchanged_by_the_vectorised_formatter(monkeypatch):
    from pkpd import event_table as et

    monkeypatch.setattr(et, "_OUTPUT_BATCH_ROWS", 7)  # several batches, one of them short
    rng = np.random.default_rng(4)
    n = 30
    x = rng.lognormal(0, 6, n) * rng.choice([-1, 1], n)
    x[[1, 5]] = np.nan
    x[[2, 9]] = np.inf, -np.inf
    x[3], x[4] = 0.0, -0.0
    columns = {
        "ID": np.repeat(np.arange(1, 4), 10),
        "TIME": np.arange(n) * 0.1,
        "big": np.array([10**12, -(10**11)] + [7] * (n - 2), dtype=np.int64),
        "flag": rng.random(n) > 0.5,
        "f32": rng.random(n).astype(np.float32),
        "DV": x,
        "text": ["a,b", 'say "hi"', "plain", None] * 7 + ["x"] * 2,
        "mixed": [1, 2.5, None, float("nan"), True, "t"] * 5,
        "u8": np.arange(n, dtype=np.uint8),
    }
    assert et.format_output_table(columns) == _old_format_output_table(columns)
    assert et.format_output_table({"ID": np.zeros(0, int), "DV": np.zeros(0)}) == "ID,DV\n"
