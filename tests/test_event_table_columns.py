"""The columnar reader and engine paths agree with the row-by-row ones (no timings here).

Teaching and research software, never dosing advice.
"""

from __future__ import annotations

import numpy as np
import pytest

import pkpd.event_table as et
from pkpd.errors import EventTableError
from pkpd.event_table import read_event_table
from pkpd.records import EventTable, Subject
from pkpd.table_engine import simulate_table

TABLE = (
    "ID,TIME,EVID,AMT,CMT,RATE,II,ADDL,SS,WT,CRCL,ka,F1,R2,ARM\n"
    "1,0,1,5,1,0,8,2,0,60,90,1.2,0.7,,a\n"
    "1,0,0,.,.,.,.,.,.,.,.,.,.,.,a\n"
    "1,4,0,,,,,,,,,,,,a\n"
    "1,8,0,,,,,,,65,,,,,a\n"
    "1,12,2,,,,,,,,,,,,a\n"
    "2,0,1,10,2,-1,12,1,0,80,70,,,4,b\n"
    "2,1,0,,,,,,,,,,,,b\n"
    "2,13,0,,,,,,,,,,,,b\n"
    "03,0,1,20,1,0,8,0,1,70,100,,,,c\n"
    "03,2,0,,,,,,,,,,,,c\n"
    "03,8,0,,,,,,,,,,,,c\n"
)


def _both(tmp_path, text, carry=("ARM",), newline="\n"):
    path = tmp_path / "t.csv"
    path.write_bytes(text.replace("\n", newline).encode())
    fast = read_event_table(str(path), carry=carry)
    saved = et._read_csv_fast
    et._read_csv_fast = lambda *a, **k: None
    try:
        slow = read_event_table(str(path), carry=carry)
    finally:
        et._read_csv_fast = saved
    return fast, slow


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_fast_and_careful_csv_paths_agree(tmp_path, newline):
    fast, slow = _both(tmp_path, TABLE, newline=newline)
    assert [s.id for s in fast.subjects] == ["1", "2", "03"]
    assert [s.records for s in fast.subjects] == [s.records for s in slow.subjects]
    assert fast.columns == slow.columns and fast.carried == slow.carried
    s = fast.subjects[0]
    assert [s.record(j) for j in range(len(s))] == list(s.records)
    assert s.records[3].values["WT"] == 65.0 and s.records[2].values["WT"] == 60.0


def test_a_fault_deep_in_the_file_is_named_the_same_way(tmp_path):
    bad = TABLE.replace("2,13,0,,", "2,13,0,-1,")
    with pytest.raises(EventTableError) as a:
        _both(tmp_path, bad)
    path = tmp_path / "t.csv"
    with pytest.raises(EventTableError) as b:
        read_event_table(str(path), carry=["ARM"])
    assert str(a.value) == str(b.value)
    assert "row 8, AMT: must be >= 0 (mg)" in str(b.value)


def test_interrupted_subject_is_named_after_the_rows_before_it(tmp_path):
    bad = TABLE + "1,20,0,,,,,,,,,,,,a\n"
    with pytest.raises(EventTableError, match=r"row 12, ID: rows of a subject must be contiguous \(subject 1's rows "
                       r"were interrupted after row 5\)"):
        read_event_table(_write(tmp_path, bad), carry=["ARM"])


def _write(tmp_path, text):
    path = tmp_path / "w.csv"
    path.write_text(text)
    return str(path)


def test_engine_on_columns_equals_engine_on_records(tmp_path):
    table = read_event_table(_write(tmp_path, TABLE), carry=["ARM"])
    by_hand = EventTable(tuple(Subject(s.id, s.number, s.records) for s in table.subjects), table.columns,
                         table.carried, table.source)
    a, b = simulate_table(table), simulate_table(by_hand)
    assert np.array_equal(a.row, b.row) and np.array_equal(a.time_h, b.time_h)
    for name in a.readouts:
        np.testing.assert_allclose(a.readouts[name], b.readouts[name], rtol=1e-12, atol=0)
    assert list(a.carried["ARM"]) == list(b.carried["ARM"])
    assert list(a.subject_id) == ["1"] * 4 + ["2"] * 2 + ["03"] * 2
