"""The pyarrow and pandas CSV paths, and Parquet, against the csv-module path: bit for bit (no timings here).

Teaching and research software, never dosing advice.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import pkpd
import pkpd.event_table as et
from pkpd.table_engine import simulate_table
from pkpd.errors import EventTableError
from pkpd.event_table import read_event_table, scenario_to_event_table, write_event_table
from pkpd.parameters import PARAMETER_INFO
from pkpd.records import TextColumn
from pkpd.scenario import load_scenario

pytest.importorskip("pyarrow")
try:
    import pandas  # noqa: F401
    #: The fast paths installed here: pyarrow's always (this file needs it), pandas' when present.
    FAST_PATHS = ("arrow", "pandas")
except ImportError:
    FAST_PATHS = ("arrow",)

from tests.test_event_table_columns import TABLE as BASE  # noqa: E402  (the same mixed three-subject table)

#: Plain tables the fast paths read themselves (id, text).
PLAIN = [
    ("base", BASE),
    ("tricky-numbers", "ID,TIME,AMT,WT,CRCL,ka,V_c\n"
                       "1,0.1,5,1e-320,2.2250738585072014e-308,0.30000000000000004441,"
                       "3.14159265358979323846264338327950288419716939937510582097494459\n"
                       "1,0.30000000000000004,+5,2.2250738585072011e-308,4.9e-324,1.7976931348623157e308,"
                       "9007199254740993.000000000000000000000000001\n"
                       "1,1E+02, 5,5.,.5,00012,1.0000000000000000000000000000000000000000000000000001e-310\n"
                       "1,100.00000000000001,5 ,1,-0,123456789012345678901234567890,1e-5\n"),
    ("integers-as-floats", "ID,TIME,EVID,AMT,CMT,ADDL,II,SS\n7,0,1.0,10,2.0,1.0,12,0.0\n7,1,0.0,,,,,\n"),
    ("implied-evid", "ID,TIME,EVID,AMT\n1,0,,10\n1,1,,\n1,2,,0\n1,3,2,\n"),
    ("ids-with-spaces", "ID,TIME,AMT\n 1,0,10\n1,1,\nanne ,0,5\nanne,3,\n"),
    ("locf-per-subject", "ID,TIME,WT,ka,F2,ALAG2\n1,0,,,,\n1,1,80,,0.5,\n1,2,,1.1,,0.25\n2,0,,,,\n2,5,90,,,\n"
                         "3,0,70,2,1,0\n3,1,.,.,.,.\n"),
    ("carried-text", "ID,TIME,ARM,site\n1,0,a b,.\n1,1,,  x\n2,0,1.50,\n"),
    ("mdv-dv-ignored", "ID,TIME,AMT,MDV,DV\n1,0,10,1,.\n1,1,,0,junk text\n"),
    ("case-insensitive", "id,time,amt,Crcl,wt,alag1\n1,0,10,80,70,0.5\n1,2,,,,\n"),
    ("ss-infusion", "ID,TIME,AMT,RATE,SS,II,CMT\n1,0,0,5,1,0,2\n1,1,,,,,\n"),
    ("one-row", "ID,TIME\n1,0\n"),
    ("crlf", BASE.replace("\n", "\r\n")),
    ("bom", "\ufeff" + BASE),
    ("trailing-blank-lines", BASE + "\n\n"),
    ("no-final-newline", BASE.rstrip("\n")),
]

#: Files the fast paths leave to the csv-module path (or read the same way): results or errors must agree.
ODD = [
    ("quoted-carried", 'ID,TIME,AMT,ARM\n1,0,10,"a,b"\n1,1,,x\n'),
    ("quote-in-dv", 'ID,TIME,AMT,DV\n1,0,10,"a\n1,1,,b"\n'),
    ("formfeed-in-carried", "ID,TIME,AMT,ARM\n1,0,10,a\x0cb\n1,1,,x\n"),
    ("nul-in-carried", "ID,TIME,AMT,ARM\n1,0,10,a\x00b\n1,1,,x\n"),
    ("line-separator-in-dv", "ID,TIME,AMT,DV\n1,0,10,a\u2028b\n1,1,,x\n"),
    ("blank-line", "ID,TIME,AMT\n1,0,10\n\n1,1,\n"),
    ("commas-only-line", "ID,TIME,AMT\n1,0,10\n,,\n1,1,\n"),
    ("blank-line-before-header", "\nID,TIME,AMT\n1,0,10\n"),
    ("lone-cr", BASE.replace("\n", "\r")),
    ("spaced-dot", "ID,TIME,AMT,WT\n1,0,10, . \n1,1,,70\n"),
    ("underscore-number", "ID,TIME,AMT\n1,0,1_000\n"),
    ("arabic-digit", "ID,TIME,AMT\n1,0,\u0665\n"),
    ("nbsp-number", "ID,TIME,AMT\n1,0,\u00a05\n"),
    ("nan-text", "ID,TIME,AMT\n1,0,nan\n"),
    ("inf-text", "ID,TIME,WT\n1,0,inf\n"),
    ("overflow", "ID,TIME,WT\n1,0,1e400\n"),
    ("ragged", "ID,TIME,AMT\n1,0\n1,1,2\n"),
    ("long-row", "ID,TIME,AMT\n1,0,1,2\n"),
    ("blank-id", "ID,TIME\n1,0\n,1\n"),
    ("non-contiguous", "ID,TIME\n1,0\n2,0\n1,1\n"),
    ("deep-fault", BASE.replace("2,13,0,,", "2,13,0,-1,")),
    ("bad-utf8-in-dv", b"ID,TIME,DV\n1,0,\xff\n"),
    ("bad-utf8-in-carried", b"ID,TIME,ARM\n1,0,\xff\n"),
    ("header-only", "ID,TIME\n"),
    ("quoted-header", '"ID",TIME\n1,0\n'),
    ("unknown-column", "ID,TIME,FOO\n1,0,1\n"),
]


def _write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def _read(path, how, monkeypatch, carry=("ARM", "site")):
    """Read with one path forced: 'arrow', 'pandas' or 'careful'; returns (table or message, path used)."""
    used = []
    arrow, pandas_ = et._read_csv_arrow, et._read_csv_fast

    def spy(reader, label):
        def read(*a, **k):
            out = reader(*a, **k)
            if out is not None:
                used.append(label)
            return out
        return read

    with monkeypatch.context() as m:
        m.setattr(et, "_read_csv_arrow", spy(arrow, "arrow") if how == "arrow" else (lambda *a, **k: None))
        m.setattr(et, "_read_csv_fast", spy(pandas_, "pandas") if how == "pandas" else (lambda *a, **k: None))
        if how == "pandas":
            m.setattr(et, "_pyarrow", lambda: None)
        try:
            out = read_event_table(path, carry=[c for c in carry if c in _names(path)])
        except EventTableError as exc:
            out = str(exc)
    return out, (used[0] if used else "careful")


def _names(path):
    with open(path, "rb") as fh:
        return fh.readline().decode("utf-8", "replace").lstrip("\ufeff").strip().split(",")


def _same_columns(a, b):
    """Two tables read the same: every array bit for bit (NaN included), every cell, every subject."""
    da, db = a.data, b.data
    for f in ("starts", "row", "time", "evid", "amt", "cmt", "rate", "ii", "addl", "ss"):
        x, y = getattr(da, f), getattr(db, f)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), f
    assert list(da.values) == list(db.values)
    for k in da.values:
        assert np.asarray(da.values[k]).tobytes() == np.asarray(db.values[k]).tobytes(), k
    assert list(da.carried) == list(db.carried)
    for k in da.carried:
        assert list(da.carried[k]) == list(db.carried[k]), k
    assert [(s.id, s.number, s.span) for s in a.subjects] == [(s.id, s.number, s.span) for s in b.subjects]
    assert (a.columns, a.carried) == (b.columns, b.carried)
    assert [s.records for s in a.subjects] == [s.records for s in b.subjects]


@pytest.mark.parametrize("case", PLAIN, ids=[c[0] for c in PLAIN])
def test_fast_paths_equal_the_careful_path_bit_for_bit(tmp_path, monkeypatch, case):
    path = _write(tmp_path, case[1])
    careful, _ = _read(path, "careful", monkeypatch)
    assert not isinstance(careful, str), careful
    for how in FAST_PATHS:
        table, used = _read(path, how, monkeypatch)
        # the pandas path leaves trailing blank lines to the careful one (as it always did)
        assert used == how or (how, case[0]) == ("pandas", "trailing-blank-lines"), f"{how} path declined"
        _same_columns(table, careful)


@pytest.mark.parametrize("case", ODD, ids=[c[0] for c in ODD])
def test_odd_files_read_or_refused_as_the_careful_path_does(tmp_path, monkeypatch, case):
    path = _write(tmp_path, case[1])
    careful, _ = _read(path, "careful", monkeypatch)
    for how in FAST_PATHS:
        out, _ = _read(path, how, monkeypatch)
        if isinstance(careful, str):
            assert out == careful
        else:
            assert not isinstance(out, str), out
            _same_columns(out, careful)
    # the default (no path forced) too
    try:
        out = read_event_table(path, carry=[c for c in ("ARM",) if c in _names(path)])
    except EventTableError as exc:
        out = str(exc)
    assert out == careful if isinstance(careful, str) else not isinstance(out, str)


def test_a_scenario_table_is_read_by_pyarrow_bit_for_bit(tmp_path, monkeypatch):
    path = str(tmp_path / "pop.csv")
    write_event_table(scenario_to_event_table(load_scenario("standard-population", n_subjects=40)), path)
    careful, _ = _read(path, "careful", monkeypatch)
    arrow, used = _read(path, "arrow", monkeypatch)
    assert used == "arrow"
    _same_columns(arrow, careful)
    # every number exactly as float() reads the text
    import csv

    with open(path) as fh:
        rows = list(csv.reader(fh))
    head = rows[0]
    for name in ("TIME", "WT", "ka", "CL_r"):
        j = head.index(name)
        cells = [float(r[j]) for r in rows[1:] if r[j] not in ("", ".")]
        got = arrow.data.time if name == "TIME" else arrow.data.values[name][arrow.data.starts[:-1]]
        assert np.array(cells).tobytes() == np.asarray(got).tobytes()


@pytest.mark.parametrize("piece", [1, 57, 300])
def test_a_file_read_in_many_pieces_is_the_same_table(tmp_path, monkeypatch, piece):
    path = str(tmp_path / "pop.csv")
    write_event_table(scenario_to_event_table(load_scenario("standard-population", n_subjects=6)), path)
    whole, _ = _read(path, "arrow", monkeypatch)
    monkeypatch.setattr(et, "_PIECE_BYTES", piece)  # pieces end on line feeds; IDs and arms merged across them
    pieces, used = _read(path, "arrow", monkeypatch)
    assert used == "arrow"
    _same_columns(pieces, whole)
    bad = _write(tmp_path, BASE.replace("2,13,0,,", "2,13,0,-1,"))
    assert _read(bad, "arrow", monkeypatch)[0] == _read(bad, "careful", monkeypatch)[0]


def test_reading_and_running_leave_numpy_huge_pages_as_they_were(tmp_path, monkeypatch):
    from pkpd import resources

    monkeypatch.setattr(resources, "ORDINARY_PAGES_FROM_BYTES", 0)  # every allocation switches, as a large one
    _set_madvise_hugepage = getattr(pytest.importorskip("numpy._core.multiarray"), "_set_madvise_hugepage", None)
    if _set_madvise_hugepage is None:
        pytest.skip("numpy without _set_madvise_hugepage")
    path = _write(tmp_path, BASE)
    initial = _set_madvise_hugepage(True)
    try:
        for setting in (False, True):
            _set_madvise_hugepage(setting)
            table = read_event_table(path, carry=["ARM"])
            with pytest.raises(EventTableError):
                read_event_table(_write(tmp_path, "ID,TIME\n1,-1\n", "bad.csv"))
            assert _set_madvise_hugepage(setting) is setting
            simulate_table(table)  # the outputs of a run are allocated on ordinary pages too
            pkpd.simulate(pkpd.Regimen(doses=(pkpd.Dose("oral_ir", 10.0),)), duration_h=24.0)
            assert _set_madvise_hugepage(setting) is setting
    finally:
        _set_madvise_hugepage(initial)


def test_without_pyarrow_the_pandas_path_reads(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    path = _write(tmp_path, BASE)
    calls = []
    pandas_ = et._read_csv_fast

    def spy(*a, **k):
        out = pandas_(*a, **k)
        calls.append(out is not None)
        return out

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    monkeypatch.setattr(et, "_read_csv_fast", spy)
    assert et._pyarrow() is None
    table = read_event_table(path, carry=["ARM"])
    assert calls == [True]
    monkeypatch.undo()
    _same_columns(table, read_event_table(path, carry=["ARM"]))


def test_with_pyarrow_the_pandas_path_is_not_tried(tmp_path, monkeypatch):
    monkeypatch.setattr(et, "_read_csv_fast", lambda *a, **k: pytest.fail("pandas path used"))
    read_event_table(_write(tmp_path, BASE), carry=["ARM"])
    with pytest.raises(EventTableError, match="row 1, AMT: must be a finite number; got nan"):
        read_event_table(_write(tmp_path, "ID,TIME,AMT\n1,0,nan\n"))


@pytest.mark.parametrize("name", [n for n in PARAMETER_INFO])
def test_vectorised_range_check_equals_parameter_check(name):
    info = PARAMETER_INFO[name]
    lo, hi = info.bounds[:2]
    probes = [lo, hi, math.nextafter(lo, -math.inf), math.nextafter(lo, math.inf), -1.0, 0.0, 0.5, 1.0, 2.0, 1e300,
              -0.0, 5e-324]
    probes = [p for p in probes if math.isfinite(p)]
    canon, kind = (("WT", "cov") if name == "WT" else ("CRCL", "cov") if name == "CrCl" else (name, "param"))
    got = et._values_ok(canon, kind, np.array(probes))
    for p, ok in zip(probes, got):
        try:
            info.check(p)
            expected = True
        except Exception:  # noqa: BLE001
            expected = False
        assert ok == expected, (name, p)


def test_carry_forward_is_a_gather_per_subject():
    starts = np.array([0, 3, 6])
    pos = np.array([1, 3, 4, 7])
    x = np.array([10.0, 20.0, 30.0, 40.0])
    got = et._carry_forward(pos, x, starts, 9)
    expected = np.array([np.nan, 10, 10, 20, 30, 30, np.nan, 40, 40])
    np.testing.assert_array_equal(np.asarray(got), expected)
    # every way the engine reads it: a row, negative rows, index arrays, masks, slices
    assert np.isnan(got[0]) and got[4] == 30.0 and got[-1] == 40.0 and isinstance(got[2], float)
    np.testing.assert_array_equal(got[np.array([8, 0, 3, 3])], expected[[8, 0, 3, 3]])
    np.testing.assert_array_equal(got[expected > 15], expected[expected > 15])
    np.testing.assert_array_equal(got[2:7], expected[2:7])
    np.testing.assert_array_equal(got[::-2], expected[::-2])
    with pytest.raises(IndexError):
        got[9]
    np.testing.assert_array_equal(np.asarray(et._carry_forward(np.zeros(0, np.intp), np.zeros(0), starts, 9)),
                                  [np.nan] * 9)


def test_text_column_is_a_read_only_sequence():
    col = TextColumn(np.array([1, 0, 1, 1]), ["a", "b"])
    assert len(col) == 4 and col[0] == "b" and col[np.int64(1)] == "a" and col[-1] == "b"
    assert col[1:3] == ["a", "b"] and list(col) == ["b", "a", "b", "b"] and "a" in col
    arr = np.asarray(col, dtype=object)
    assert arr.dtype == object and arr[np.array([True, False, False, True])].tolist() == ["b", "b"]
    with pytest.raises(IndexError):
        col[4]


# ---------------------------------------------------------------------------
# Parquet (an extension of the contract: docs/event-tables.md)


def _parquet_from_csv(csv_path, parquet_path):
    """The CSV's columns as typed Parquet columns (numbers as numbers, blank cells null, text as text)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(null_values=["", "."],
                                                                           strings_can_be_null=True))
    pq.write_table(pa.table({n: table.column(n) for n in table.column_names}), parquet_path)
    return parquet_path


def test_parquet_reads_back_the_same_columns_as_the_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    cols = scenario_to_event_table(load_scenario("standard-population", n_subjects=12))
    csv_path = str(tmp_path / "pop.csv")
    write_event_table(cols, csv_path)
    parquet_path = str(tmp_path / "pop.parquet")
    pq.write_table(pa.table({k: v for k, v in cols.items()}), parquet_path, row_group_size=500)
    a, b = read_event_table(csv_path, carry=["ARM"]), read_event_table(parquet_path, carry=["ARM"])
    assert b.source == parquet_path
    _same_columns(a, b)
    # typed by pyarrow's own CSV inference (IDs as integers, integer columns int64)
    _same_columns(a, read_event_table(_parquet_from_csv(csv_path, str(tmp_path / "inferred.PARQUET")),
                                      carry=["ARM"]))


def test_parquet_nan_is_blank_as_in_a_dataframe(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = str(tmp_path / "t.parquet")
    pq.write_table(pa.table({"ID": ["a", "a", "b"], "TIME": [0.0, 1.0, 0.0], "AMT": [10, None, 5],
                             "WT": [80.0, float("nan"), None]}), path)
    table = read_event_table(path)
    a, b = table.subjects
    assert [s.id for s in table.subjects] == ["a", "b"]
    assert a.records[1].values == {"WT": 80.0} and b.records[0].values == {} and a.records[1].amt == 0.0
    frame = {"ID": ["a", "a", "b"], "TIME": [0.0, 1.0, 0.0], "AMT": [10, None, 5], "WT": [80.0, float("nan"), None]}
    _same_columns(table, read_event_table(frame))


PARQUET_BAD = ["unsorted-time", "negative-amt", "ss-without-ii", "ss2-without-ii", "addl-without-ii", "cmt-7",
               "rate-1-without-r", "rate-2-without-d", "rate-other-negative", "unknown-column", "wrong-case-parameter",
               "text-for-number", "text-time", "inf", "non-contiguous", "parameter-range", "parameter-range-later",
               "wt-zero", "crcl-negative", "evid-5", "ss-3", "addl-fraction", "negative-ii", "negative-time",
               "negative-f", "missing-time"]


@pytest.mark.parametrize("case", PARQUET_BAD)
def test_parquet_errors_read_as_the_csv_ones(tmp_path, case):
    pytest.importorskip("pyarrow")
    from tests.test_event_table import BAD

    text = {c[0]: c[1] for c in BAD}[case]
    csv_path = _write(tmp_path, text, "data.csv")
    parquet_path = _parquet_from_csv(csv_path, str(tmp_path / "data.parquet"))
    with pytest.raises(EventTableError) as a:
        read_event_table(csv_path, name="data")
    with pytest.raises(EventTableError) as b:
        read_event_table(parquet_path, name="data")
    assert str(b.value) == str(a.value)
    assert "\n" not in str(b.value)


def test_parquet_without_pyarrow_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(EventTableError) as info:
        read_event_table(str(tmp_path / "t.parquet"))
    assert str(info.value) == f"{tmp_path / 't.parquet'}: reading Parquet needs pyarrow: pip install 'pkpd[tables]'"


def test_parquet_missing_or_broken_file(tmp_path):
    with pytest.raises(EventTableError, match=r"t\.parquet: no such file; got '.*t\.parquet'$"):
        read_event_table(str(tmp_path / "t.parquet"))
    path = _write(tmp_path, "ID,TIME\n1,0\n", "broken.parquet")
    with pytest.raises(EventTableError, match=r"^.*broken\.parquet: not a readable Parquet file \(.*\); got ") as info:
        read_event_table(path)
    assert "\n" not in str(info.value)
