"""Event records: the normalised form of a NONMEM-style event table.

The reader (:mod:`pkpd.event_table`) turns a CSV file, a pandas DataFrame or
a mapping of columns into an :class:`EventTable`, checking every rule of the
event-table contract (docs/event-tables.md); the engine
(:mod:`pkpd.table_engine`) simulates it.  Nothing here validates: the
reader has done it, so every record is well formed.

Units: TIME, II and ALAG in h, AMT in mg, RATE in mg/h; covariates WT in kg
and CRCL in mL/min; parameters in the units of :mod:`pkpd.parameters`.
"""

from __future__ import annotations

from collections.abc import Sequence as _SequenceABC
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

#: Event identifiers (EVID).
OBSERVATION, DOSE, OTHER, RESET, RESET_DOSE = range(5)
#: Dosable compartments (CMT), numbered as in the model spec.
DOSABLE_CMTS = (1, 2, 3, 4, 5, 6)
#: Compartment of each regimen route (docs/event-tables.md).
ROUTE_CMT = {"oral_ir": 1, "oral_er": 1, "iv_bolus": 2, "iv_infusion": 2,
             "intrathecal_bolus": 5, "intrathecal_infusion": 5}


class TextColumn(_SequenceABC):
    """A read-only column of text kept as codes into its distinct cells.

    A carried column of a large table holds few distinct values (an arm, a
    site): ``codes[i]`` indexes ``texts``.  ``column[i]`` is a str,
    ``column[a:b]`` a list of str, and ``np.asarray(column, dtype=object)``
    every cell as an object array (built when asked for).
    """

    __slots__ = ("codes", "texts")

    def __init__(self, codes, texts: Sequence[str]):
        self.codes = np.asarray(codes)
        if self.codes.dtype.kind not in "iu":
            self.codes = self.codes.astype(np.intp)
        self.texts = np.empty(len(texts), dtype=object)
        self.texts[:] = list(texts)

    def __len__(self) -> int:
        return int(self.codes.size)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.texts[self.codes[i]].tolist()
        return self.texts[self.codes[i]]  # an index: the str; an index array: an object array

    def __iter__(self) -> Iterator[str]:
        return iter(self.texts[self.codes].tolist())

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if copy is False:
            raise ValueError("a TextColumn's cells are built on request: an array needs a copy")
        cells = self.texts[self.codes]
        return cells if dtype is None or np.dtype(dtype) == object else cells.astype(dtype)

    def __repr__(self) -> str:
        return f"TextColumn(<{len(self)} cells, {self.texts.size} distinct>)"


class StepColumn:
    """A read-only float column that changes only at some rows (a value carried forward).

    From row ``rows[j]`` on (until ``rows[j + 1]``) every entry is
    ``steps[j]``; NaN before ``rows[0]``.  A 13.5 M-row table whose
    parameter columns are written once per subject holds one entry per
    subject instead of one per row.  ``column[i]`` is a float,
    ``column[index_array]`` and ``column[a:b]`` arrays, and
    ``np.asarray(column)`` every entry (built when asked for).
    """

    __slots__ = ("rows", "steps", "n")
    dtype = np.dtype(float)

    def __init__(self, rows, steps, n: int):
        self.rows = np.asarray(rows, np.intp)
        self.steps = np.asarray(steps, float)
        self.n = int(n)

    def __len__(self) -> int:
        return self.n

    @property
    def shape(self) -> tuple[int]:
        return (self.n,)

    def _at(self, idx: np.ndarray) -> np.ndarray:
        j = np.searchsorted(self.rows, idx, side="right") - 1
        return np.where(j >= 0, self.steps[np.maximum(j, 0)] if self.steps.size else np.nan, np.nan)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self._at(np.arange(self.n)[i])
        idx = np.asarray(i)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        if idx.ndim == 0:
            k = int(idx) + self.n * (int(idx) < 0)
            if not 0 <= k < self.n:
                raise IndexError(i)
            return float(self._at(np.array([k]))[0])
        return self._at(np.where(idx < 0, idx + self.n, idx))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if copy is False:
            raise ValueError("a StepColumn's entries are built on request: an array needs a copy")
        lead = np.full(int(self.rows[0]) if self.rows.size else self.n, np.nan)
        full = np.concatenate([lead, np.repeat(self.steps, np.diff(np.append(self.rows, self.n)))])
        return full if dtype is None else full.astype(dtype)

    def __repr__(self) -> str:
        return f"StepColumn(<{self.n} entries, {self.steps.size} steps>)"


@dataclass(frozen=True)
class Record:
    """One data row of an event table, after defaults are filled in.

    Attributes
    ----------
    row : int
        Data row number in the source (the first row after the header is 1).
    time : float
        TIME, h.
    evid : int
        0 observation, 1 dose, 2 other (output only), 3 reset, 4 reset and dose.
    amt : float
        AMT, mg (0 on non-dose rows).
    cmt : int
        Compartment 1-6 of a dose (1 on non-dose rows).
    rate : float
        RATE: 0 bolus, > 0 mg/h, -1 rate from R<cmt>, -2 duration from D<cmt>.
    ii : float
        II, h (0 when absent).
    addl : int
        ADDL, additional doses every II.
    ss : int
        SS: 0, 1 or 2.
    values : mapping of str to float
        Every parameter or covariate value in force from this record on, for
        this subject (last value carried forward already applied; a value
        changed on this row takes effect after the row's own event): keys
        are ``WT``, ``CRCL``, model-spec parameter names and ``F1``..``F6``,
        ``ALAG1``..``ALAG6``, ``R1``..``R6``, ``D1``..``D6`` (only the
        columns present in the table).
    carried : mapping of str to str
        Values of the carried columns, as text, written back unchanged.
    """

    row: int
    time: float
    evid: int
    amt: float = 0.0
    cmt: int = 1
    rate: float = 0.0
    ii: float = 0.0
    addl: int = 0
    ss: int = 0
    values: Mapping[str, float] = field(default_factory=dict)
    carried: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_dose(self) -> bool:
        return self.evid in (DOSE, RESET_DOSE)

    @property
    def is_output(self) -> bool:
        return self.evid in (OBSERVATION, OTHER)


@dataclass(frozen=True, eq=False)
class Columns:
    """A whole event table as columns, one entry per data row (the reader's form).

    Every array has one entry per record, subjects one after the other in file
    order; subject ``k``'s records are ``starts[k]:starts[k + 1]``.  The same
    normalisation as :class:`Record` (defaults filled in; AMT, RATE, II, ADDL,
    SS zero and CMT 1 on rows that are not doses).

    Attributes
    ----------
    starts : ndarray of int, (subjects + 1,)
    row, evid, cmt, addl, ss : ndarray of int
    time, amt, rate, ii : ndarray of float
    values : mapping of str to ndarray of float (or :class:`StepColumn`)
        Value in force at each record (last value carried forward, this
        row's own value included); NaN where the subject has none yet.
        Indexed by a row, an index array or a slice.
    carried : mapping of str to sequence of str
        A :class:`TextColumn` when read from a file, a DataFrame or a mapping.
    written : mapping of str to ndarray of int
        For a value column, the rows where a value is written (ascending);
        anywhere else its value is the previous row's (or a subject's
        first).  Optional: a column without an entry may change on any row.
    """

    starts: np.ndarray
    row: np.ndarray
    time: np.ndarray
    evid: np.ndarray
    amt: np.ndarray
    cmt: np.ndarray
    rate: np.ndarray
    ii: np.ndarray
    addl: np.ndarray
    ss: np.ndarray
    values: Mapping[str, np.ndarray] = field(default_factory=dict)
    carried: Mapping[str, Sequence[str]] = field(default_factory=dict)
    written: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.time.size)

    def record(self, i: int) -> Record:
        """Record ``i`` as a :class:`Record`."""
        v = {}
        for k, col in self.values.items():
            x = float(col[i])
            if x == x:
                v[k] = x
        return Record(row=int(self.row[i]), time=float(self.time[i]), evid=int(self.evid[i]), amt=float(self.amt[i]),
                      cmt=int(self.cmt[i]), rate=float(self.rate[i]), ii=float(self.ii[i]), addl=int(self.addl[i]),
                      ss=int(self.ss[i]), values=v, carried={k: c[i] for k, c in self.carried.items()})

    def records(self, a: int, b: int) -> tuple[Record, ...]:
        """Records ``a:b`` as :class:`Record` objects."""
        names = list(self.values)
        vals = [self.values[k][a:b].tolist() for k in names]
        car = {k: list(v[a:b]) for k, v in self.carried.items()}
        out = []
        for j in range(b - a):
            i = a + j
            v = {k: col[j] for k, col in zip(names, vals) if col[j] == col[j]}
            out.append(Record(row=int(self.row[i]), time=float(self.time[i]), evid=int(self.evid[i]),
                              amt=float(self.amt[i]), cmt=int(self.cmt[i]), rate=float(self.rate[i]),
                              ii=float(self.ii[i]), addl=int(self.addl[i]), ss=int(self.ss[i]), values=v,
                              carried={k: c[j] for k, c in car.items()}))
        return tuple(out)


class Subject:
    """The records of one subject, in file order.

    ``id`` is the subject identifier as written (text), ``number`` its
    position in the table counting from 1.  ``records`` is a tuple of
    :class:`Record`; a subject read from a file holds its rows as a span
    of the table's :class:`Columns` instead and builds ``records`` when
    first asked for them (the engine reads the columns).
    """

    __slots__ = ("id", "number", "_records", "data", "span")

    def __init__(self, id: str, number: int, records: Sequence[Record] | None = None, *,
                 data: Columns | None = None, span: tuple[int, int] = (0, 0)):
        self.id = id
        self.number = number
        self._records = None if records is None else tuple(records)
        self.data = data
        self.span = span

    @property
    def records(self) -> tuple[Record, ...]:
        if self._records is None:
            self._records = () if self.data is None else self.data.records(*self.span)
        return self._records

    def record(self, j: int) -> Record:
        """Record ``j`` (from 0), without building the others."""
        if self._records is None and self.data is not None:
            a, b = self.span
            if not 0 <= j < b - a:
                raise IndexError(j)
            return self.data.record(a + j)
        return self.records[j]

    def __len__(self) -> int:
        if self._records is None and self.data is not None:
            return self.span[1] - self.span[0]
        return len(self.records)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Subject):
            return NotImplemented
        return (self.id, self.number, self.records) == (other.id, other.number, other.records)

    __hash__ = None

    def __repr__(self) -> str:
        return f"Subject(id={self.id!r}, number={self.number}, records=<{len(self)} records>)"


@dataclass(frozen=True)
class EventTable:
    """A whole event table: subjects in file order, and what to write back.

    Attributes
    ----------
    subjects : tuple of Subject
    columns : tuple of str
        Parameter and covariate columns present (canonical names: ``WT``,
        ``CRCL``, spec names, ``F1``.. ``D6``).
    carried : tuple of str
        Columns copied unchanged into the output, in input order.
    source : str
        Where the table came from (a path, or ``'<DataFrame>'``), for messages.
    """

    subjects: tuple[Subject, ...]
    columns: tuple[str, ...] = ()
    carried: tuple[str, ...] = ()
    source: str = "<table>"
    #: The same records as columns (set by the reader; None for a table built from records).
    data: Columns | None = field(default=None, compare=False, repr=False)


def regimen_rows(regimen, duration_h: float) -> list[tuple[float, int, dict[str, Any]]]:
    """The dose records of a :class:`pkpd.regimen.Regimen` up to ``duration_h``.

    The one translation of a regimen into event-table rows, used by the
    scenario export (:func:`pkpd.event_table.scenario_to_event_table`) and
    by :func:`pkpd.simulate` for regimens with a steady-state dose.  Returns
    ``(time, rank, fields)`` sorted by time, then rank: 0 for a
    steady-state block (its arrival resets the subject, so it goes first),
    1 for any other dose or infusion (regimen order); a caller's output
    rows at the same time take rank 2, after the doses (right-continuous).

    ``fields`` holds ``EVID`` (1), ``AMT`` (mg), ``CMT``
    (:data:`ROUTE_CMT`), ``RATE`` (mg/h; -2 for extended release), ``II``
    (h), ``ADDL`` (the doses of the block that land in the run, minus one)
    and ``SS`` (1 on a steady-state block, else 0).  A dose into CMT 1 also
    names the parameters its record takes: ``F1`` ("F_ir" or "F_er") and,
    for extended release, ``D1`` ("D_er"); the caller puts the subject's
    values there.  An infusion is a row with RATE and AMT = rate x duration.
    """
    rows = []
    for d in regimen.doses:
        times = d.times_h(duration_h)
        if times.size == 0:
            continue
        ss = 1 if d.steady_state else 0
        row = {"EVID": DOSE, "AMT": d.amount_mg, "CMT": ROUTE_CMT[d.route], "RATE": 0.0,
               "II": d.every_h if (times.size > 1 or ss) else 0.0, "ADDL": int(times.size - 1), "SS": ss}
        if d.route == "oral_ir":
            row["F1"] = "F_ir"
        elif d.route == "oral_er":
            row["F1"], row["RATE"], row["D1"] = "F_er", -2.0, "D_er"
        rows.append((float(times[0]), 1 - ss, row))
    for inf in regimen.infusions:
        if inf.start_h > duration_h:
            continue
        rate = inf.rate_mg_per_h
        rows.append((inf.start_h, 1, {"EVID": DOSE, "AMT": rate * (inf.stop_h - inf.start_h),
                                      "CMT": ROUTE_CMT[inf.route], "RATE": rate, "II": 0.0, "ADDL": 0, "SS": 0}))
    rows.sort(key=lambda e: (e[0], e[1]))  # stable: regimen order within a rank
    return rows
