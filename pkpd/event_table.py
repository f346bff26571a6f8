"""Event tables in and out: NONMEM-style datasets (docs/event-tables.md).

:func:`read_event_table` reads a CSV file, a Parquet file (an extension: needs
pyarrow), a pandas DataFrame or a mapping of columns into the normalised
:class:`pkpd.records.EventTable`, checking every rule of the contract (rule
12); :func:`scenario_to_event_table` turns a
scenario into columns of such a table and :func:`write_event_table` writes
them.

Column names
------------
* The standard items ``ID TIME EVID AMT CMT RATE II ADDL SS MDV DV``, the
  covariates ``WT`` and ``CRCL`` and the dosing parameters ``F1``-``F6``,
  ``ALAG1``-``ALAG6``, ``R1``-``R6``, ``D1``-``D6`` are case-insensitive
  (``amt``, ``Crcl``, ``alag1`` are read as ``AMT``, ``CRCL``, ``ALAG1``).
* Model parameters are spelled exactly as in
  :data:`pkpd.parameters.PARAMETER_INFO` (case-sensitive: ``ka``, ``Kd``,
  ``CL_r``); a near miss (``KA``) is refused with the right spelling.
  The covariates are the columns ``WT`` and ``CRCL`` (not ``CrCl`` as a
  parameter: ``CrCl`` is read as ``CRCL`` since covariates are
  case-insensitive).
* A carried column (``carry=``) is matched exactly as written, and copied
  into the output as text.  Any other column is refused.

Cells
-----
An empty cell or ``.`` (NONMEM's missing value) is blank.  In a DataFrame or
a mapping, ``None`` and NaN are blank too (that is how pandas stores an
empty cell); in a CSV file the *text* ``nan`` or ``inf`` is refused, as is
an infinite number in any input.  A parameter or covariate column blank
before its first value has no value there (the model's typical value
applies); afterwards a blank keeps the previous value of that subject.

A CSV file is read by pyarrow when it is installed (threaded), else by
pandas, else by the csv module, which also reads any file the faster
readers leave (quotes, blank lines) and names every fault: the same table,
bit for bit, whichever reads it.  A Parquet file's cells are typed, as a
DataFrame's.

Errors are :class:`pkpd.errors.EventTableError`, one line:
``<source>: row <n>, <column>: <rule>; got <value>`` with the data row
number counted from 1 (the first row after the header), the column as
spelled in the header and the cell as written.
"""

from __future__ import annotations

import csv
import math
import numbers
import os
import re
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .errors import EventTableError, ParameterError, show
from .resources import ordinary_pages
from .parameters import COVARIATES, PARAMETER_INFO
from .model import typical_values_with_eta
from .records import (DOSABLE_CMTS, DOSE, OBSERVATION, OTHER, RESET, RESET_DOSE, ROUTE_CMT, Columns, EventTable,
                      Record, StepColumn, Subject, TextColumn, regimen_rows)

#: Standard items, in their usual order.
STANDARD_COLUMNS = ("ID", "TIME", "EVID", "AMT", "CMT", "RATE", "II", "ADDL", "SS", "MDV", "DV")
#: Covariate columns and the parameter-table row of each.
COVARIATE_COLUMNS = {"WT": "WT", "CRCL": "CrCl"}
#: Model parameters a column may set (spec names, case-sensitive).
MODEL_PARAMETERS = tuple(n for n in PARAMETER_INFO if n not in COVARIATES)
#: Per-compartment dosing parameters: prefix -> (rule, test).
_DOSING_RULES = {
    "F": (">= 0", lambda v: v >= 0),
    "ALAG": (">= 0 (h)", lambda v: v >= 0),
    "R": ("> 0 (mg/h)", lambda v: v > 0),
    "D": ("> 0 (h)", lambda v: v > 0),
}
#: Every dosing parameter column, F1..F6, ALAG1..ALAG6, R1..R6, D1..D6.
DOSING_PARAMETERS = tuple(f"{p}{n}" for p in _DOSING_RULES for n in DOSABLE_CMTS)
_DOSING_RE = re.compile(r"(F|ALAG|R|D)([0-9]+)", re.IGNORECASE)
_BLANK_TEXT = ("", ".")
_REQUIRED = ("ID", "TIME")



# ---------------------------------------------------------------------------
# Reading


class _Source:
    """Where the table came from, for messages."""

    def __init__(self, label: str):
        self.label = label

    def error(self, row: int | None, column: str | None, rule: str, got: str) -> EventTableError:
        where = ", ".join(p for p in ((f"row {row}" if row is not None else "header"), column) if p)
        return EventTableError(f"{self.label}: {where}: {rule}; got {got}")


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() in _BLANK_TEXT
    if isinstance(value, float) and math.isnan(value):
        return True
    try:  # pandas.NA, numpy nan of other widths
        return bool(value != value)
    except (TypeError, ValueError):
        return False


def _got(value: Any) -> str:
    """A cell as written, for a message: a number bare, text quoted."""
    if isinstance(value, str):
        text = value.strip()
        try:
            float(text)
        except ValueError:
            return show(value)
        return text if text else show(value)
    if isinstance(value, (bool, np.bool_)):
        return show(value)
    if isinstance(value, numbers.Real):
        x = float(value)
        return _number_text(x)
    return show(value)


def _number_text(x: float) -> str:
    """Shortest text that reads back as ``x`` exactly (``5`` for 5.0)."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return str(int(x))
    x = float(x)
    if math.isfinite(x) and abs(x) < 1e16 and x == int(x):
        return str(int(x))
    return repr(x)


def _header(names: Sequence[Any], carry: Sequence[str], src: _Source) -> list[tuple[str, str, str]]:
    """(as written, canonical name, kind) per column; kind: standard, cov, param, dosing, carried."""
    carry = tuple(carry)
    out, seen = [], {}
    for raw in names:
        name = "" if raw is None else str(raw).strip()
        upper = name.upper()
        if not name:
            raise src.error(None, None, "every column needs a name", show(raw))
        if name in carry and upper not in _REQUIRED:
            canon, kind = name, "carried"
        elif upper in STANDARD_COLUMNS:
            canon, kind = upper, "standard"
        elif upper in COVARIATE_COLUMNS:
            canon, kind = upper, "cov"
        elif name in MODEL_PARAMETERS:
            canon, kind = name, "param"
        elif _DOSING_RE.fullmatch(name):
            m = _DOSING_RE.fullmatch(name)
            n = int(m.group(2))
            if str(n) != m.group(2) or n not in DOSABLE_CMTS:
                raise src.error(None, name, "unknown column (dosable compartments are 1-6: F1-F6, ALAG1-ALAG6, "
                                "R1-R6, D1-D6)", show(name))
            canon, kind = f"{m.group(1).upper()}{n}", "dosing"
        else:
            raise src.error(None, name, _unknown_rule(name), show(name))
        if canon in seen:
            raise src.error(None, name, f"duplicate column (the same item as column {seen[canon]!r})", show(name))
        seen[canon] = name
        out.append((name, canon, kind))
    for req in _REQUIRED:
        if req not in seen:
            raise src.error(None, req, "required column missing", show([n for n, _, _ in out]))
    return out


def _unknown_rule(name: str) -> str:
    import difflib

    lower = {n.lower(): n for n in MODEL_PARAMETERS}
    hint = ""
    if name.lower() in lower:
        hint = f" (model parameters are case-sensitive: did you mean '{lower[name.lower()]}'?)"
    else:
        close = difflib.get_close_matches(name, list(STANDARD_COLUMNS) + list(MODEL_PARAMETERS), n=1)
        if close:
            hint = f" (did you mean '{close[0]}'?)"
    return (f"unknown column{hint}: not a standard item, covariate or model parameter; "
            "to copy it into the output unchanged, carry it (carry=[...], or --carry NAME)")


def _number(value: Any, src: _Source, row: int, col: str) -> float | None:
    """A finite number, or None for a blank cell."""
    if _is_blank(value):
        return None
    if isinstance(value, str):
        try:
            x = float(value.strip())
        except ValueError:
            raise src.error(row, col, "must be a number", _got(value)) from None
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise src.error(row, col, "must be a number", _got(value))
    else:
        x = float(value)
    if not math.isfinite(x):
        raise src.error(row, col, "must be a finite number", _got(value))
    return x


def _integer(value: Any, src: _Source, row: int, col: str, allowed: str, ok) -> int | None:
    x = _number(value, src, row, col)
    if x is None:
        return None
    if x != int(x) or not ok(int(x)):
        raise src.error(row, col, f"must be {allowed}", _got(value))
    return int(x)


def _id_text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value) == int(value):
        return str(int(value))
    return str(value)


def _carried_text(value: Any) -> str:
    if _is_blank(value) and not isinstance(value, str):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _number_text(value)
    return str(value)


def _check_value(canon: str, kind: str, x: float, value: Any, src: _Source, row: int, col: str) -> None:
    if kind == "param":
        try:
            PARAMETER_INFO[canon].check(x)
        except ParameterError:
            raise src.error(row, col, f"must be {PARAMETER_INFO[canon].rule()} ({PARAMETER_INFO[canon].unit})",
                            _got(value)) from None
    elif kind == "cov":
        info = PARAMETER_INFO[COVARIATE_COLUMNS[canon]]
        try:
            info.check(x)
        except ParameterError:
            raise src.error(row, col, f"must be {info.rule()} ({info.unit})", _got(value)) from None
    else:  # dosing
        prefix = _DOSING_RE.fullmatch(canon).group(1)
        rule, ok = _DOSING_RULES[prefix]
        if not ok(x):
            raise src.error(row, col, f"must be {rule}", _got(value))


def _build(columns: list[tuple[str, str, str]], rows: Iterable[tuple[int, Sequence[Any]]], src: _Source,
           carried_names: Sequence[str], seen: dict[str, int] | None = None) -> EventTable:
    """The reference reader, one row at a time: used to name the first broken rule (see :func:`_columnar`).

    ``seen``: subjects met before the first of ``rows`` -> their last row.
    """
    index = {canon: i for i, (_, canon, _) in enumerate(columns)}
    spelled = {canon: name for name, canon, _ in columns}
    valued = [(i, name, canon, kind) for i, (name, canon, kind) in enumerate(columns)
              if kind in ("cov", "param", "dosing")]
    carried = [(i, name) for i, (name, _, kind) in enumerate(columns) if kind == "carried"]

    def cell(cells, canon):
        i = index.get(canon)
        return None if i is None else cells[i]

    subjects: list[Subject] = []
    seen = {} if seen is None else dict(seen)
    current: str | None = None
    records: list[Record] = []
    values: dict[str, float] = {}
    last_time = -math.inf
    last_row = 0
    any_row = False

    def close():
        if current is not None:
            if not records:  # cannot happen from a table, kept for the rule
                raise src.error(last_row, spelled["ID"], "a subject needs at least one row", show(current))
            subjects.append(Subject(current, len(subjects) + 1, tuple(records)))

    for row, cells in rows:
        any_row = True
        last_row = row
        raw_id = cell(cells, "ID")
        if _is_blank(raw_id):
            raise src.error(row, spelled["ID"], "required (every row belongs to a subject)", _got(raw_id))
        sid = _id_text(raw_id)
        if sid != current:
            if sid in seen:
                raise src.error(row, spelled["ID"], f"rows of a subject must be contiguous (subject {sid}'s rows "
                                f"were interrupted after row {seen[sid]})", _got(raw_id))
            close()
            current, records, values, last_time = sid, [], {}, -math.inf
        seen[sid] = row

        raw_t = cell(cells, "TIME")
        t = _number(raw_t, src, row, spelled["TIME"])
        if t is None:
            raise src.error(row, spelled["TIME"], "required (h)", _got(raw_t))
        if t < 0:
            raise src.error(row, spelled["TIME"], "must be >= 0 (h)", _got(raw_t))
        if t < last_time:
            raise src.error(row, spelled["TIME"], f"must not decrease within a subject (subject {sid}'s previous "
                            f"row is at {_number_text(last_time)} h; sort the rows by time)", _got(raw_t))
        last_time = t

        def num(canon, default=0.0):
            x = _number(cell(cells, canon), src, row, spelled.get(canon, canon))
            return default if x is None else x

        amt = num("AMT")
        if amt < 0:
            raise src.error(row, spelled["AMT"], "must be >= 0 (mg)", _got(cell(cells, "AMT")))
        evid = _integer(cell(cells, "EVID"), src, row, spelled.get("EVID", "EVID"),
                        "0, 1, 2, 3 or 4", lambda v: 0 <= v <= 4)
        if evid is None:
            evid = DOSE if amt > 0 else OBSERVATION
        cmt = _integer(cell(cells, "CMT"), src, row, spelled.get("CMT", "CMT"), "an integer", lambda v: True)
        cmt = 1 if cmt is None else cmt
        rate = num("RATE")
        ii = num("II")
        addl = _integer(cell(cells, "ADDL"), src, row, spelled.get("ADDL", "ADDL"),
                        "an integer >= 0", lambda v: v >= 0) or 0
        ss = _integer(cell(cells, "SS"), src, row, spelled.get("SS", "SS"), "0, 1 or 2", lambda v: v in (0, 1, 2)) or 0
        if ii < 0:
            raise src.error(row, spelled["II"], "must be >= 0 (h)", _got(cell(cells, "II")))
        if rate < 0 and rate not in (-1.0, -2.0):
            raise src.error(row, spelled["RATE"], "must be 0, > 0 (mg/h), -1 (rate R<cmt>) or -2 (duration D<cmt>)",
                            _got(cell(cells, "RATE")))

        # parameter and covariate columns: last value carried forward
        for i, name, canon, kind in valued:
            raw = cells[i]
            x = _number(raw, src, row, name)
            if x is None:
                continue
            _check_value(canon, kind, x, raw, src, row, name)
            values[canon] = x

        dose = evid in (DOSE, RESET_DOSE)
        if dose:
            if cmt not in DOSABLE_CMTS:
                raise src.error(row, spelled.get("CMT", "CMT"), "a dose's compartment must be 1-6 (docs/model.md)",
                                _got(cell(cells, "CMT")))
            if addl > 0 and not ii > 0:
                raise src.error(row, spelled["ADDL"], "additional doses need II > 0 (the interval, h)",
                                _got(cell(cells, "ADDL")))
            if ss == 1 and not ii > 0 and not (amt == 0 and rate > 0):
                raise src.error(row, spelled["SS"], "steady state needs II > 0 (the interval, h), or AMT 0 with "
                                "RATE > 0 for a constant infusion", _got(cell(cells, "SS")))
            if ss == 2 and not ii > 0:
                raise src.error(row, spelled["SS"], "steady state needs II > 0 (the interval, h)",
                                _got(cell(cells, "SS")))
            for code, prefix in ((-1.0, "R"), (-2.0, "D")):
                if rate == code and f"{prefix}{cmt}" not in values:
                    what = "rate" if prefix == "R" else "duration"
                    raise src.error(row, spelled["RATE"], f"{_number_text(code)} takes the {what} from "
                                    f"{prefix}{cmt}, which has no value here (add a {prefix}{cmt} column)",
                                    _got(cell(cells, "RATE")))
        else:
            amt, rate, ii, addl, ss = 0.0, 0.0, 0.0, 0, 0
            cmt = 1
        carried_values = {name: _carried_text(cells[i]) for i, name in carried}
        records.append(Record(row=row, time=t, evid=evid, amt=amt, cmt=cmt, rate=rate, ii=ii, addl=addl, ss=ss,
                              values=dict(values), carried=carried_values))
    if not any_row:
        raise EventTableError(f"{src.label}: the table has no data rows (an event table needs a header row and "
                              "at least one data row); got a header only")
    close()
    present = tuple(canon for _, canon, kind in columns if kind in ("cov", "param", "dosing"))
    return EventTable(tuple(subjects), present, tuple(carried_names), src.label)


class _Coded:
    """A column given as codes into its distinct cells (from pandas.factorize or an Arrow dictionary)."""

    __slots__ = ("codes", "cells", "n")

    def __init__(self, codes: np.ndarray, cells: list):
        self.codes, self.cells, self.n = codes, cells, codes.size

    def __len__(self) -> int:
        return self.n


def _codes(col, typed: bool) -> tuple[np.ndarray, list]:
    """Codes of the distinct cells of a column, and the distinct cells (first-seen order).

    ``typed``: cells may be of several types (1, 1.0 and True are different cells).
    """
    if isinstance(col, _Coded):
        return col.codes, col.cells
    d: dict = {}
    try:
        if typed:
            codes = [d.setdefault((c.__class__, c), len(d)) for c in col]
            return np.array(codes, dtype=np.intp), [k[1] for k in d]
        codes = [d.setdefault(c, len(d)) for c in col]
        return np.array(codes, dtype=np.intp), list(d)
    except TypeError:  # an unhashable cell: every cell on its own
        return np.arange(len(col), dtype=np.intp), list(col)


class _Parsed:
    """A numeric column of ``n`` cells, given by its written (non-blank) cells.

    ``pos``: the written cells' positions, ascending (None: every cell is
    written); ``x``: their numbers (anything where ``bad``); ``bad``: which
    of them are not finite numbers (None: none).  A column written on few
    rows (a parameter on each subject's first row) costs little.
    """

    __slots__ = ("n", "pos", "x", "bad")

    def __init__(self, n: int, pos: np.ndarray | None, x: np.ndarray, bad: np.ndarray | None):
        self.n, self.pos, self.x = n, pos, x
        self.bad = bad if bad is not None and bad.any() else None

    @classmethod
    def dense(cls, x: np.ndarray, blank: np.ndarray, bad: np.ndarray) -> "_Parsed":
        """From arrays of every cell: number, blank, not a finite number."""
        if not blank.any():
            return cls(x.size, None, x, bad)
        pos = np.flatnonzero(~blank)
        return cls(x.size, pos, x[pos], bad[pos])

    @classmethod
    def absent(cls, n: int) -> "_Parsed":
        """A column not in the table: every cell blank."""
        return cls(n, np.zeros(0, np.intp), np.zeros(0), None)

    def where(self, mask: np.ndarray) -> np.ndarray:
        """Positions of the written cells selected by ``mask`` (one entry per written cell)."""
        return np.flatnonzero(mask) if self.pos is None else self.pos[mask]

    def full(self, default) -> np.ndarray:
        """Every cell's number; ``default`` (a number, or an array of every cell) where blank."""
        if self.pos is None:
            return self.x
        out = np.full(self.n, default, float) if np.ndim(default) == 0 else np.array(default, float)
        out[self.pos] = self.x
        return out

    def at(self, idx: np.ndarray, default: float) -> np.ndarray:
        """The numbers of the cells at positions ``idx``; ``default`` where blank."""
        if self.pos is None:
            return self.x[idx]
        if self.pos.size == 0:
            return np.full(idx.size, default, float)
        j = np.minimum(np.searchsorted(self.pos, idx), self.pos.size - 1)
        return np.where(self.pos[j] == idx, self.x[j], default)


def _parse_unique(value) -> tuple[float, bool, bool]:
    """(number, blank, bad) of one cell, by the rules of :func:`_number`."""
    if _is_blank(value):
        return math.nan, True, False
    if isinstance(value, str):
        try:
            x = float(value.strip())
        except ValueError:
            return math.nan, False, True
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return math.nan, False, True
    else:
        x = float(value)
    return x, False, not math.isfinite(x)


def _parse(col, typed: bool) -> _Parsed:
    if isinstance(col, _Parsed):
        return col
    codes, uniq = _codes(col, typed)
    parsed = [_parse_unique(v) for v in uniq]
    ux = np.array([p[0] for p in parsed], float)
    ublank = np.array([p[1] for p in parsed], bool)
    ubad = np.array([p[2] for p in parsed], bool)
    return _Parsed.dense(ux[codes], ublank[codes], ubad[codes])


def _values_ok(canon: str, kind: str, x: np.ndarray) -> np.ndarray:
    """Does each value satisfy the column's rule?  (:meth:`ParameterInfo.check`'s bounds, on arrays.)"""
    if kind == "dosing":
        return np.asarray(_DOSING_RULES[_DOSING_RE.fullmatch(canon).group(1)][1](x), bool)
    info = PARAMETER_INFO[canon if kind == "param" else COVARIATE_COLUMNS[canon]]
    lo, hi, lo_in, hi_in = info.bounds
    with np.errstate(invalid="ignore"):
        return np.isfinite(x) & ((x >= lo) if lo_in else (x > lo)) & ((x <= hi) if hi_in else (x < hi))


def _carry_forward(pos: np.ndarray | None, x: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray | StepColumn:
    """Last value carried forward within each subject: the value in force at every row (NaN before the first).

    ``pos``: rows written (ascending; None: every row), ``x`` their values,
    ``starts``: each subject's first row.  The value changes only at a
    written row or a subject's first row: a :class:`pkpd.records.StepColumn`
    of those values (no per-row copy).
    """
    if pos is None:
        return x
    # sort keys 2 row (a first row) and 2 row + 1 (a written row): two ascending runs, merged in linear time
    keys = np.concatenate([starts * 2, pos * 2 + 1])
    keys.sort(kind="stable")
    rows = keys >> 1
    last = np.ones(keys.size, bool)
    np.not_equal(rows[1:], rows[:-1], out=last[:-1])  # of a row both first and written, keep the written key
    keys, rows = keys[last], rows[last]
    v = np.full(rows.size, np.nan)
    v[(keys & 1) == 1] = x
    return StepColumn(rows, v, n)


class _Faults:
    """The first entry that breaks a rule (its subject's rows are then read again to name it)."""

    __slots__ = ("first",)

    def __init__(self):
        self.first = -1

    def at(self, i: int) -> None:
        if i >= 0 and (self.first < 0 or i < self.first):
            self.first = int(i)

    def mask(self, mask: np.ndarray, offset: int = 0) -> None:
        """``mask`` over entries ``offset:``."""
        i = _first(mask)
        if i >= 0:
            self.at(i + offset)

    def where(self, pos: np.ndarray | None, mask: np.ndarray) -> None:
        """``mask`` over the entries ``pos`` (ascending; None: every entry)."""
        if pos is None:
            self.mask(mask)
        else:
            i = _first(mask)
            if i >= 0:
                self.at(int(pos[i]))


def _first(mask: np.ndarray) -> int:
    i = int(np.argmax(mask)) if mask.size else 0
    return i if mask.size and mask[i] else -1


def _columnar(columns: list[tuple[str, str, str]], cols: Sequence[Any], rownums: np.ndarray, src: _Source,
              carried_names: Sequence[str], cells_of, *, text: bool) -> EventTable:
    """Every column at once: the table as :class:`pkpd.records.Columns`.

    ``cols[i]`` is column i (a sequence of cells, a :class:`_Coded` or a
    :class:`_Parsed`), ``rownums`` the data row number of each entry,
    ``cells_of(i)`` the cells of entry i (for messages), ``text``: every
    cell is a str (a CSV file).  Each rule is checked on whole columns
    (on the written cells only where a column is mostly blank); when one
    is broken, the entries from the start of the first offending subject
    are read again by :func:`_build`, which names the first broken rule
    exactly as it always did.
    """
    n = int(rownums.size)
    if n == 0:
        raise EventTableError(f"{src.label}: the table has no data rows (an event table needs a header row and "
                              "at least one data row); got a header only")
    index = {canon: i for i, (_, canon, _) in enumerate(columns)}
    fault = _Faults()

    # ID: subjects are runs of equal ID text
    id_codes, id_cells = _codes(cols[index["ID"]], not text)
    id_text = [_id_text(v) for v in id_cells]
    text_codes: dict = {}
    id_of_cell = np.array([text_codes.setdefault(t, len(text_codes)) for t in id_text], np.intp)
    id_blank = np.array([_is_blank(v) for v in id_cells], bool)
    sid = id_codes if len(text_codes) == len(id_text) else id_of_cell[id_codes]
    if id_blank.any():
        fault.mask(id_blank[id_codes])
    new = np.ones(n, bool)
    np.not_equal(sid[1:], sid[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    run_id = sid[starts]
    contiguity = -1
    if np.unique(run_id).size < run_id.size:
        met: set = set()
        for k, s_ in enumerate(run_id.tolist()):
            if s_ in met:
                contiguity = int(starts[k])
                break
            met.add(s_)
    del sid

    def parsed(canon) -> _Parsed:
        i = index.get(canon)
        if i is None:
            return _Parsed.absent(n)
        p = _parse(cols[i], not text)
        if p.bad is not None:
            fault.where(p.pos, p.bad)
        return p

    def integer(canon, ok) -> _Parsed:
        p = parsed(canon)
        with np.errstate(invalid="ignore"):
            fault.where(p.pos, (p.x != np.trunc(p.x)) | ~ok(p.x))
        return p

    time_p = parsed("TIME")
    if time_p.pos is not None:  # a blank TIME: the first row not written
        gap = np.flatnonzero(time_p.pos != np.arange(time_p.pos.size))
        fault.at(int(gap[0]) if gap.size else time_p.pos.size)
    fault.where(time_p.pos, time_p.x < 0)
    t = time_p.full(0.0)
    with np.errstate(invalid="ignore"):
        down = t[1:] < t[:-1]
    down &= ~new[1:]
    fault.mask(down, 1)
    del down
    amt_p = parsed("AMT")
    fault.where(amt_p.pos, amt_p.x < 0)
    evid_p = integer("EVID", lambda v: (v >= 0) & (v <= 4))
    if evid_p.pos is None:
        evid = evid_p.x
    else:  # blank: a dose where AMT > 0
        implied = np.full(n, float(OBSERVATION))
        with np.errstate(invalid="ignore"):
            implied[amt_p.where(amt_p.x > 0)] = DOSE
        evid = evid_p.full(implied)
    cmt_p = integer("CMT", lambda v: np.ones(v.shape, bool))
    rate_p = parsed("RATE")
    ii_p = parsed("II")
    addl_p = integer("ADDL", lambda v: v >= 0)
    ss_p = integer("SS", lambda v: (v == 0) | (v == 1) | (v == 2))
    fault.where(ii_p.pos, ii_p.x < 0)
    fault.where(rate_p.pos, (rate_p.x < 0) & (rate_p.x != -1.0) & (rate_p.x != -2.0))

    # parameter and covariate columns: checked where written, last value carried forward within a subject
    values: dict[str, np.ndarray] = {}
    written: dict[str, np.ndarray] = {}
    for _, canon, kind in columns:
        if kind not in ("cov", "param", "dosing"):
            continue
        p = parsed(canon)
        pos, x = p.pos, p.x
        if p.bad is not None:
            good = ~p.bad
            pos, x = p.where(good), x[good]
        fault.where(pos, ~_values_ok(canon, kind, x))
        values[canon] = _carry_forward(pos, x, starts, n)
        if pos is not None:
            written[canon] = pos

    # dose rows: their fields, checked
    dpos = np.flatnonzero((evid == DOSE) | (evid == RESET_DOSE))
    amt, cmt, rate = amt_p.at(dpos, 0.0), cmt_p.at(dpos, 1.0), rate_p.at(dpos, 0.0)
    ii, addl, ss = ii_p.at(dpos, 0.0), addl_p.at(dpos, 0.0), ss_p.at(dpos, 0.0)
    positive_ii = ii > 0
    fault.where(dpos, ~np.isin(cmt, DOSABLE_CMTS))
    fault.where(dpos, (addl > 0) & ~positive_ii)
    fault.where(dpos, (ss == 1) & ~positive_ii & ~((amt == 0) & (rate > 0)))
    fault.where(dpos, (ss == 2) & ~positive_ii)
    for code, prefix in ((-1.0, "R"), (-2.0, "D")):
        uses = rate == code
        if uses.any():
            missing = np.ones(dpos.size, bool)
            for c in DOSABLE_CMTS:
                col = values.get(f"{prefix}{c}")
                if col is not None:
                    here = cmt == c
                    missing[here] = np.isnan(col[dpos[here]])
            fault.where(dpos, uses & missing)

    first_bad = fault.first
    if contiguity >= 0 and (first_bad < 0 or contiguity < first_bad):
        first_bad = contiguity
    if first_bad >= 0:
        k = int(np.searchsorted(starts, first_bad, side="right")) - 1
        a = int(starts[k])
        seen = {}
        ends = np.append(starts[1:], n) - 1
        for j in range(k):
            seen[id_text[id_codes[starts[j]]]] = int(rownums[ends[j]])
        _build(columns, ((int(rownums[i]), cells_of(i)) for i in range(a, n)), src, carried_names, seen)
        # the columns found a fault the rows did not (should not happen): the rows decide
        return _build(columns, ((int(rownums[i]), cells_of(i)) for i in range(n)), src, carried_names)

    # rows that are not doses: AMT, RATE, II, ADDL, SS zero and CMT 1
    def on_doses(v, fill, dtype):
        out = np.zeros(n, dtype) if fill == 0 else np.full(n, fill, dtype)  # zeros: pages the OS fills on demand
        out[dpos] = v
        return out

    carried: dict[str, Sequence[str]] = {}
    for name, canon, kind in columns:
        if kind == "carried":
            codes, cells = _codes(cols[index[canon]], not text)
            carried[name] = TextColumn(codes, cells if text else [_carried_text(v) for v in cells])
    data = Columns(starts=np.append(starts, n), row=np.asarray(rownums, dtype=int), time=t,
                   evid=evid.astype(int), amt=on_doses(amt, 0.0, float), cmt=on_doses(cmt, 1, int),
                   rate=on_doses(rate, 0.0, float), ii=on_doses(ii, 0.0, float), addl=on_doses(addl, 0, int),
                   ss=on_doses(ss, 0, int), values=values, carried=carried, written=written)
    ends = np.append(starts[1:], n)
    subjects = tuple(Subject(id_text[id_codes[a]], k + 1, data=data, span=(int(a), int(b)))
                     for k, (a, b) in enumerate(zip(starts.tolist(), ends.tolist())))
    present = tuple(canon for _, canon, kind in columns if kind in ("cov", "param", "dosing"))
    return EventTable(subjects, present, tuple(carried_names), src.label, data=data)


def read_event_table(source, *, carry: Sequence[str] = (), name: str | None = None) -> EventTable:
    """Read and check an event table (docs/event-tables.md).

    Parameters
    ----------
    source : str, PathLike, pandas.DataFrame or mapping
        A CSV file with a header row; a Parquet file (a path ending in
        ``.parquet``; needs pyarrow, ``pkpd[tables]``; its cells follow
        the rules of a DataFrame's); a DataFrame; or a mapping of column
        name to a sequence of cells (all of one length).
    carry : sequence of str
        Columns to copy unchanged into the output (matched as spelled).
    name : str, optional
        The label of the table in messages (default: the path,
        ``'<DataFrame>'`` or ``'<table>'``).

    Returns
    -------
    EventTable

    Raises
    ------
    EventTableError
        Any rule of the contract broken; one line naming the row, column and value.
    """
    if isinstance(carry, str):
        carry = (carry,)
    carry = tuple(str(c) for c in carry)
    if isinstance(source, (str, bytes, os.PathLike)):
        path = os.fsdecode(source)
        src = _Source(name or path)
        with ordinary_pages(3.0 * os.path.getsize(path) if os.path.isfile(path) else 0.0):  # columns: ~2-3x the file
            if path.lower().endswith(".parquet"):
                return _read_parquet(path, carry, src)
            return _read_csv(path, carry, src)
    if _is_dataframe(source):
        src = _Source(name or "<DataFrame>")
        names = list(source.columns)
        cols = [source.iloc[:, i].tolist() for i in range(len(names))]
        return _from_columns(names, cols, carry, src)
    if isinstance(source, Mapping):
        src = _Source(name or "<table>")
        names = list(source.keys())
        cols = []
        for key in names:
            col = source[key]
            if isinstance(col, (str, bytes)) or not hasattr(col, "__len__"):
                raise src.error(None, str(key), "must be a sequence of cells", show(col))
            cols.append(list(col))
        return _from_columns(names, cols, carry, src)
    raise EventTableError(f"{name or '<table>'}: source: must be a CSV path, a pandas DataFrame or a mapping of "
                          f"columns; got {type(source).__name__}")


def _is_dataframe(obj) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "iloc") and hasattr(obj, "columns")


def _no_columns(src: _Source) -> EventTableError:
    return EventTableError(f"{src.label}: the table is empty (an event table needs columns ID and TIME and "
                           "at least one row); got no columns")


def _from_columns(names, cols, carry, src) -> EventTable:
    if not names:
        raise _no_columns(src)
    columns = _header(names, carry, src)
    lengths = {len(c) for c in cols}
    if len(lengths) > 1:
        for name, c in zip(names, cols):
            if len(c) != len(cols[0]):
                raise src.error(None, str(name), f"every column must have {len(cols[0])} cells (as column "
                                f"{str(names[0])!r})", f"{len(c)} cells")
    carried_names = tuple(n for n, _, k in columns if k == "carried")
    n = len(cols[0])
    return _columnar(columns, cols, np.arange(1, n + 1), src, carried_names, lambda i: [c[i] for c in cols],
                     text=False)


class _Fallback(Exception):
    """A fast CSV path cannot name an error: read the file the careful way."""


#: Bytes that make a line break or a quote for the csv module or str.splitlines (the last three as UTF-8).
_ODD_BYTES = (b'"', b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", "\x85".encode(), "\u2028".encode(),
              "\u2029".encode())
#: The same as text, and NUL: a cell holding one sends the file to the careful path.
_ODD_TEXT = re.compile('["\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]')


def _plain_bytes(data: bytes) -> bool:
    """No quote and no odd line break anywhere, and UTF-8 throughout."""
    if any(c in data for c in _ODD_BYTES[:6]):
        return False
    if data.isascii():
        return True
    if any(c in data for c in _ODD_BYTES[6:]):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _plain_header(line: bytes, carry, src: _Source) -> tuple[list[str], list[tuple[str, str, str]]] | None:
    """The cells and columns of a plain header line (the file's first), or None: the careful path decides."""
    try:
        text = line.removeprefix(b"\xef\xbb\xbf").decode("utf-8").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        return None
    if not text.strip() or "\r" in text or _ODD_TEXT.search(text):
        return None
    try:
        header = next(csv.reader([text]))
        return header, _header(header, carry, src)
    except (csv.Error, EventTableError):
        return None  # the careful path names the first fault


def _pyarrow():
    """The pyarrow module (with pyarrow.csv), or None when it is not installed."""
    try:
        import pyarrow
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return None
    return pyarrow


def _chunk_values(chunk, dtype: np.dtype) -> np.ndarray:
    """A primitive Arrow array's values, in place (anything where null)."""
    return np.frombuffer(chunk.buffers()[1], dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize)


def _chunk_valid(chunk) -> np.ndarray:
    """Positions of an Arrow array's non-null cells, from its validity bitmap (only bytes with a bit set expand)."""
    bits = np.frombuffer(chunk.buffers()[0], np.uint8)
    nz = np.flatnonzero(bits)
    r, c = np.nonzero(np.unpackbits(bits[nz], bitorder="little").reshape(-1, 8))
    p = nz[r] * 8 + c - chunk.offset
    return p[(p >= 0) & (p < len(chunk))]


def _is_number_type(kind) -> bool:
    pa = _pyarrow()
    return pa.types.is_integer(kind) or pa.types.is_float32(kind) or pa.types.is_float64(kind)


class _Numbers:
    """A numeric Arrow column (integers or floats), chunk by chunk, into a :class:`_Parsed`.

    Each chunk is copied out as it comes (the chunks may then be freed):
    every value of a chunk without nulls, else its non-null cells only.
    Null cells are blank; ``nan_blank``: NaN cells are blank too (as in a
    DataFrame), else they are bad (the text ``nan`` in a CSV file).
    """

    def __init__(self, *, nan_blank: bool):
        self.nan_blank = nan_blank
        self.parts: list[tuple[int, np.ndarray | None, np.ndarray]] = []
        self.n = 0

    def add(self, chunk) -> None:
        m = len(chunk)
        if chunk.null_count == m:
            at, x = np.zeros(0, np.intp), np.zeros(0)
        else:
            values = _chunk_values(chunk, np.dtype(chunk.type.to_pandas_dtype()))
            at = None if chunk.null_count == 0 else _chunk_valid(chunk)
            x = values.astype(float) if at is None else values[at].astype(float, copy=False)
        self.parts.append((self.n, at, x))
        self.n += m

    def parsed(self) -> _Parsed:
        x = np.concatenate([p[2] for p in self.parts]) if self.parts else np.zeros(0)
        pos = None
        if any(at is not None for _, at, _ in self.parts):
            pos = np.concatenate([base + (np.arange(v.size) if at is None else at) for base, at, v in self.parts])
        self.parts = []
        if self.nan_blank:
            keep = ~np.isnan(x)
            if not keep.all():
                pos, x = (np.flatnonzero(keep) if pos is None else pos[keep]), x[keep]
        return _Parsed(self.n, pos, x, ~np.isfinite(x))


class _Cells:
    """An Arrow column, chunk by chunk, as codes into its distinct cells (Python values; None for null).

    Each chunk's dictionary (pyarrow's, or made here) is merged into one.
    Raises TypeError for cells that cannot be hashed.
    """

    def __init__(self):
        self.memo: dict = {}
        self.parts: list[np.ndarray] = []

    def add(self, chunk) -> None:
        if not _pyarrow().types.is_dictionary(chunk.type):
            chunk = chunk.dictionary_encode()
        cells = chunk.dictionary.to_pylist()
        indices = chunk.indices
        if indices.null_count:
            cells.append(None)
            indices = indices.fill_null(len(cells) - 1)
        merge = np.array([self.memo.setdefault((c.__class__, c), len(self.memo)) for c in cells], np.int64)
        self.parts.append(merge.astype(np.int32)[indices.to_numpy()] if len(self.memo) < 2**31 else
                          merge[indices.to_numpy()])

    def coded(self) -> _Coded:
        """Codes (int32 while there are fewer than 2**31 distinct cells) and cells."""
        codes = np.concatenate(self.parts) if self.parts else np.zeros(0, np.int32)
        return _Coded(codes, [k[1] for k in self.memo])


#: Bytes of a CSV file pyarrow reads at once (each read threaded over blocks of 1/8 of it), so that
#: the memory it converts into is reused from one piece to the next.
_PIECE_BYTES = 64 << 20


def _pieces(buffer, start: int, stop: int):
    """Byte ranges of about :data:`_PIECE_BYTES` covering ``start:stop`` of ``buffer``, each ending on a line feed."""
    size = _PIECE_BYTES
    raw = np.frombuffer(buffer, np.uint8)
    a = start
    while a < stop:
        b = a + size
        while b < stop:
            k = raw[b:min(b + 65536, stop)].tobytes().find(b"\n")
            if k >= 0:
                b += k + 1
                break
            b += 65536
        b = min(b, stop)
        yield a, b
        a = b


def _read_csv_arrow(path: str, carry, src: _Source) -> EventTable | None:
    """A plain CSV file (header on the first line, no quotes, no blank lines) read by pyarrow, threaded.

    Numbers are converted exactly as :func:`float` does (pyarrow's parser
    is correctly rounded).  Read in pieces of :data:`_PIECE_BYTES`, each
    column kept as its written cells or, for text, as codes.  Returns None
    when the file is not plain or any rule is broken: the csv-module path
    then reads it and names the fault.
    """
    pa = _pyarrow()
    import pyarrow.csv as pacsv

    try:
        with open(path, "rb") as fh:
            first = fh.readline()
            size = os.fstat(fh.fileno()).st_size
            fh.seek(max(len(first), size - 4096))
            tail = fh.read()
    except OSError:
        return None
    plain = _plain_header(first, carry, src) if first.endswith(b"\n") else None
    if plain is None:
        return None
    header, columns = plain
    width = len(header)
    start, stop = len(first), size - (len(tail) - len(tail.rstrip(b"\r\n")))  # trailing line breaks are no rows
    if stop <= start:
        return None
    used = [i for i, (_, canon, _) in enumerate(columns) if canon not in ("MDV", "DV")]
    if len(used) < width:  # MDV, DV are not converted: check their cells as bytes
        with open(path, "rb") as fh:
            if not _plain_bytes(fh.read()):
                return None
    texts = {i for i in used if columns[i][2] == "carried" or columns[i][1] == "ID"}
    names = [str(i) for i in range(width)]
    parts = {i: _Cells() if i in texts else _Numbers(nan_blank=False) for i in used}
    options = dict(
        parse_options=pacsv.ParseOptions(quote_char=False, double_quote=False, escape_char=False,
                                         newlines_in_values=False, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            include_columns=[names[i] for i in used], null_values=["", "."], strings_can_be_null=False,
            column_types={names[i]: pa.dictionary(pa.int32(), pa.string()) if i in texts else pa.float64()
                          for i in used}))
    n = 0
    try:
        data = pa.memory_map(path).read_buffer()
        for a, b in _pieces(data, start, stop):
            read = pacsv.ReadOptions(column_names=names, use_threads=True, block_size=max(1 << 20, (b - a) // 8))
            table = pacsv.read_csv(pa.BufferReader(data.slice(a, b - a)), read_options=read, **options)
            for i in used:
                for chunk in table.column(names[i]).chunks:
                    parts[i].add(chunk)
            n += table.num_rows
            del table
        del data
    except Exception:  # noqa: BLE001 - anything odd (a ragged row, text in a number column): the careful path
        return None
    cols: list = [None] * width
    for i in used:
        if i in texts:
            cols[i] = parts[i].coded()
            if any(not isinstance(c, str) or _ODD_TEXT.search(c) for c in cols[i].cells):
                return None
        else:
            cols[i] = parts[i].parsed()
            if cols[i].bad is not None:
                return None  # text nan or inf, or a number too large: the careful path names it
    carried_names = tuple(nm for nm, _, k in columns if k == "carried")

    def cells_of(i):
        raise _Fallback

    try:
        return _columnar(columns, cols, np.arange(1, n + 1), src, carried_names, cells_of, text=True)
    except _Fallback:
        return None


def _read_csv_fast(path: str, carry, src: _Source) -> EventTable | None:
    """A plain CSV file (no quotes, no blank lines, header on the first line) read by pandas, if installed.

    The path when pyarrow is missing.  Returns None when the file is not
    plain, pandas is missing, or any rule is broken: the csv-module path
    then reads it and names the fault.
    """
    try:
        import pandas as pd
    except ImportError:
        return None
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    cut = data.find(b"\n", start)
    if cut < 0 or not _plain_bytes(data):
        return None
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None
    plain = _plain_header(data[:cut + 1], carry, src)
    if plain is None:
        return None
    header, columns = plain
    width = len(header)
    carried_names = tuple(n for n, _, k in columns if k == "carried")
    stop = len(data)
    while stop > cut and data[stop - 1] in (10, 13):
        stop -= 1
    if width < 2 or stop <= cut + 1:
        return None
    # every line has width - 1 commas; a short line would make another long, which pandas refuses
    lines = data.count(b"\n", cut + 1, stop) + 1
    if data.count(b",", cut + 1, stop) != (width - 1) * lines:
        return None
    del data
    kinds = {i: kind for i, (_, canon, kind) in enumerate(columns) if canon not in ("MDV", "DV")}
    texts = [i for i, k in kinds.items() if k == "carried" or columns[i][1] == "ID"]
    numeric = [i for i in kinds if i not in texts]
    # exact decimal-to-binary conversion, as float(): pandas 3's default, pandas 2's "round_trip"
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    try:
        df = pd.read_csv(path, encoding="utf-8-sig", header=None, skiprows=1, index_col=False, **exact,
                         names=list(range(width)), usecols=sorted(kinds), dtype={i: str for i in texts},
                         keep_default_na=False,
                         na_values={i: ["", "."] for i in numeric},
                         skip_blank_lines=False, engine="c")
    except Exception:  # noqa: BLE001 - anything odd: the careful path decides
        return None
    if len(df) != lines:
        return None
    cols: list = [None] * width
    for i in kinds:
        s = df[i]
        if i in texts:
            if s.isna().any():
                return None
            codes, uniques = pd.factorize(s, sort=False)
            cols[i] = _Coded(np.asarray(codes, dtype=np.intp), [str(u) for u in uniques])
        elif s.dtype.kind in "fiu":
            x = s.to_numpy(dtype=float)
            cols[i] = _Parsed.dense(x, np.isnan(x), np.isinf(x))
        elif s.dtype.kind == "O" or str(s.dtype).startswith(("str", "string")):
            cols[i] = s.astype(object).where(s.notna(), None).tolist()
        else:
            return None

    def cells_of(i):
        raise _Fallback

    try:
        return _columnar(columns, cols, np.arange(1, lines + 1), src, carried_names, cells_of, text=True)
    except _Fallback:
        return None


def _read_parquet(path: str, carry, src: _Source) -> EventTable:
    """A Parquet file, by the rules of a DataFrame's cells (null and NaN are blank); rows numbered from 1."""
    pa = _pyarrow()
    if pa is None:
        raise EventTableError(f"{src.label}: reading Parquet needs pyarrow: pip install 'pkpd[tables]'")
    import pyarrow.parquet as pq

    if not os.path.exists(path):
        raise EventTableError(f"{src.label}: no such file; got {show(path)}")
    try:
        table = pq.read_table(path, use_threads=True)
    except (OSError, pa.ArrowException) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EventTableError(f"{src.label}: not a readable Parquet file ({reason}); got {show(path)}") from None
    names = table.column_names
    if not names:
        raise _no_columns(src)
    columns = _header(names, carry, src)
    cols: list = [None] * len(names)
    for i, (_, canon, kind) in enumerate(columns):
        if canon in ("MDV", "DV"):
            continue
        column = table.column(i)
        numeric = kind != "carried" and canon != "ID" and _is_number_type(column.type)
        part = _Numbers(nan_blank=True) if numeric else _Cells()
        try:
            for chunk in column.chunks:
                part.add(chunk)
            cols[i] = part.parsed() if numeric else part.coded()
        except TypeError:  # cells that cannot be hashed: one by one
            cols[i] = column.to_pylist()
    carried_names = tuple(nm for nm, _, k in columns if k == "carried")
    arrays = table.columns
    return _columnar(columns, cols, np.arange(1, table.num_rows + 1), src, carried_names,
                     lambda i: [a[i].as_py() for a in arrays], text=False)


def _read_csv(path: str, carry, src: _Source) -> EventTable:
    fast = _read_csv_arrow(path, carry, src) if _pyarrow() is not None else _read_csv_fast(path, carry, src)
    if fast is not None:
        return fast
    try:
        fh = open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise EventTableError(f"{src.label}: no such file; got {show(path)}") from None
    except IsADirectoryError:
        raise EventTableError(f"{src.label}: is a folder, not a CSV file; got {show(path)}") from None
    except OSError as exc:
        raise EventTableError(f"{src.label}: cannot be read ({exc.strerror}); got {show(path)}") from None
    with fh:
        try:
            text = fh.read()
        except UnicodeDecodeError as exc:
            raise EventTableError(f"{src.label}: must be UTF-8 text; got byte {exc.object[exc.start]:#04x} "
                                  f"at offset {exc.start}") from None
    lines = text.splitlines()
    reader = csv.reader(lines)
    header = None
    header_line = 0
    try:
        for cells in reader:
            if cells and any(c.strip() for c in cells):
                header, header_line = cells, reader.line_num
                break
    except csv.Error as exc:
        raise EventTableError(f"{src.label}: row {reader.line_num - header_line}: not valid CSV; got {exc}") from None
    if header is None:
        raise EventTableError(f"{src.label}: empty file (an event table needs a header row and at least one "
                              "data row); got no header")
    columns = _header(header, carry, src)
    width = len(header)
    carried_names = tuple(n for n, _, k in columns if k == "carried")

    rows: list = []
    nums: list = []
    fault: EventTableError | None = None  # raised after the rows before it are checked
    try:
        for cells in reader:
            if not cells or not (cells[0].strip() or any(c.strip() for c in cells)):
                continue  # blank lines are skipped (they still count in row numbers)
            if len(cells) != width:
                fault = src.error(reader.line_num - header_line, None, f"must have {width} cells, as the header has",
                                  f"{len(cells)} cells")
                break
            rows.append(cells)
            nums.append(reader.line_num - header_line)
    except csv.Error as exc:
        fault = EventTableError(f"{src.label}: row {reader.line_num - header_line}: not valid CSV; got {exc}")
    if fault is not None and not rows:
        raise fault
    cols = list(zip(*rows)) if rows else [()] * width
    table = _columnar(columns, cols, np.array(nums, dtype=int), src, carried_names, lambda i: rows[i], text=True)
    if fault is not None:
        raise fault
    return table


# ---------------------------------------------------------------------------
# Writing


def _parameter_columns(scenario, population) -> list[str]:
    """Model parameters written as columns: those any arm changes from the default,
    and those with a random effect (``CL`` is written as CL_nr and CL_r)."""
    names = set()
    for arm in scenario.arms:
        for key, value in arm.parameters.as_dict().items():
            if value != PARAMETER_INFO[key].default:
                names.add(key)
    for key in population.eta:
        names.update(("CL_nr", "CL_r") if key == "CL" else (key,))
    return [n for n in MODEL_PARAMETERS if n in names]


def _individual(arm, population, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-subject values of the parameter columns: the arm's typical value times exp(eta)
    (:func:`pkpd.model.typical_values_with_eta`; the engine applies the covariate model)."""
    values = typical_values_with_eta(arm.parameters, population)
    return {n: values[n] for n in names}


def scenario_to_event_table(scenario) -> dict[str, list]:
    """A scenario as the columns of an event table (docs/event-tables.md, "Out").

    Every arm, subject and dose: subjects are numbered 1, 2, ... across the
    arms (arm by arm), with a carried column ``ARM`` naming the arm; doses
    repeating at a fixed interval are one row with ADDL and II; every CMT 1
    dose row sets F1 (F_ir, or F_er with RATE -2 and D1 = D_er for
    extended release); an infusion is a dose row with RATE (mg/h) and AMT =
    rate x duration; a ``steady_state`` dose block is a row with SS = 1
    (the column SS is written only then), first among the rows at its
    time (:func:`pkpd.records.regimen_rows`); observation rows (EVID 0) lie on the scenario's output
    grid, after any dose at the same time (so they report the state just
    after it, as the scenario's own output does); WT and CRCL are the
    subject's sampled covariates (or the arm's fixed ones), and the model
    parameters the scenario changes (or gives a random effect) are columns.

    Returns
    -------
    dict of str to list
        Ordered columns; None is a blank cell.
    """
    from .simulate import output_times

    population = scenario.subjects.population()
    n = population.n
    duration = scenario.duration_h
    grid = output_times(duration, scenario.output_step_h)
    pnames = _parameter_columns(scenario, population)
    any_er = any(d.route == "oral_er" for arm in scenario.arms for d in arm.regimen.doses)
    any_oral = any(ROUTE_CMT[d.route] == 1 for arm in scenario.arms for d in arm.regimen.doses)
    any_ss = any(d.steady_state for arm in scenario.arms for d in arm.regimen.doses)
    names = ["ID", "TIME", "EVID", "AMT", "CMT", "RATE", "II", "ADDL", *(["SS"] if any_ss else []), "WT", "CRCL",
             *pnames]
    if any_oral:
        names.append("F1")
    if any_er:
        names.append("D1")
    names.append("ARM")
    cols: dict[str, list] = {k: [] for k in names}

    for a, arm in enumerate(scenario.arms):
        p = arm.parameters
        ind = _individual(arm, population, pnames)
        wt = population.weight_kg if arm.weight_kg is None else np.full(n, arm.weight_kg)
        cr = population.crcl_ml_min if arm.crcl_ml_min is None else np.full(n, arm.crcl_ml_min)
        # the arm's dose rows (records.regimen_rows), then its observations after any dose at the same time
        events = regimen_rows(arm.regimen, duration)
        for t in grid:
            events.append((float(t), 2, {"EVID": 0}))
        events.sort(key=lambda e: (e[0], e[1]))  # stable: doses in regimen order, then the observation
        for i in range(n):
            sid = a * n + i + 1
            for j, (t, _, row) in enumerate(events):
                cols["ID"].append(sid)
                cols["TIME"].append(t)
                for k in ("EVID", "AMT", "CMT", "RATE", "II", "ADDL", "SS"):
                    if k in cols:
                        cols[k].append(row.get(k))
                # covariates and parameters on the subject's first row only: a blank cell
                # keeps the value in force (rule 10), so the file stays small
                cols["WT"].append(float(wt[i]) if j == 0 else None)
                cols["CRCL"].append(float(cr[i]) if j == 0 else None)
                for k in pnames:
                    cols[k].append(float(ind[k][i]) if j == 0 else None)
                for k, src_name in (("F1", row.get("F1")), ("D1", row.get("D1"))):
                    if k in cols:
                        if src_name is None:
                            cols[k].append(None)
                        elif src_name in ind:
                            cols[k].append(float(ind[src_name][i]))
                        else:
                            cols[k].append(float(getattr(p, src_name)))
                cols["ARM"].append(arm.name)
    return cols


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        if any(c in value for c in ',"\n\r'):
            return '"' + value.replace('"', '""') + '"'
        return value
    if isinstance(value, float) and math.isnan(value):
        return ""
    return _number_text(value)


def format_event_table(columns: Mapping[str, Sequence[Any]]) -> str:
    """The CSV text of an event table's columns (None or NaN: an empty cell).

    Numbers are written exactly (the shortest text that reads back as the
    same double: at least the 10 significant digits the contract asks, and
    whole numbers without a decimal point).
    """
    names = list(columns)
    data = [columns[k] for k in names]
    n = len(data[0]) if data else 0
    lines = [",".join(_cell(k) for k in names)]
    for i in range(n):
        lines.append(",".join(_cell(c[i]) for c in data))
    return "\n".join(lines) + "\n"


def _write_atomically(text: str, path) -> str:
    from .files import AtomicFile

    with AtomicFile(path) as fh:
        fh.write(text)
    return os.fspath(path)


def write_event_table(columns: Mapping[str, Sequence[Any]], path) -> str:
    """Write :func:`format_event_table` to ``path`` atomically; returns the path."""
    return _write_atomically(format_event_table(columns), path)


def format_output_table(columns: Mapping[str, Sequence[Any]]) -> str:
    """The CSV text of an engine's output columns (rule 11): numbers ``%.10g``, text as is.

    Numeric numpy columns are formatted by :mod:`pkpd.number_format` (byte for
    byte as ``"%.10g" % x``; NaN gives an empty cell, integers and booleans
    their decimal digits); any other column cell by cell.  Rows are built
    in batches of :data:`_OUTPUT_BATCH_ROWS`.
    """
    names = list(columns)
    header = ",".join(_cell(str(k)) for k in names) + "\n"
    if not names:
        return header
    n = len(columns[names[0]])
    pieces = [header.encode()]
    for start in range(0, n, _OUTPUT_BATCH_ROWS):
        rows = slice(start, min(n, start + _OUTPUT_BATCH_ROWS))
        fields = [_output_fields(columns[k], rows) for k in names]
        pieces.append(_join_rows(fields))
    return b"".join(pieces).decode()


#: Rows of table.csv formatted at once (bounds the byte buffers: ~25 bytes per cell).
_OUTPUT_BATCH_ROWS = 100_000
#: Largest magnitude of an integer that ``%.10g`` writes as its digits.
_DIGITS_BELOW = 1e10


def _output_fields(column, rows: slice) -> np.ndarray:
    """The cells of ``column[rows]`` as zero-padded UTF-8 byte fields, shape (rows, width), uint8."""
    from . import number_format

    if isinstance(column, np.ndarray) and column.ndim == 1 and column.dtype.kind in "fiub":
        values = column[rows]
        if values.dtype.kind == "f":
            x = values.astype(np.float64)
            fields, _ = number_format.format_fields(x)
            fields[np.isnan(x)] = 0  # an empty cell
            return fields
        x = values.astype(np.float64)
        if values.dtype.kind == "b" or np.all(np.abs(x) < _DIGITS_BELOW):
            return number_format.format_fields(x)[0]  # a whole number below 1e10: its digits
    cells = column[rows] if isinstance(column, list) else np.asarray(column)[rows].tolist()
    return _text_fields([_output_cell(v) for v in cells])


def _output_cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return _cell(v)
    if isinstance(v, (bool, np.bool_, int, np.integer)):
        return str(int(v))
    x = float(v)
    return "" if math.isnan(x) else "%.10g" % x


def _text_fields(texts: list[str]) -> np.ndarray:
    """Texts (without NUL) as zero-padded byte fields, shape (len(texts), width), uint8."""
    encoded = np.array([t.encode() for t in texts], dtype=bytes)
    width = max(encoded.dtype.itemsize, 1)
    return encoded.astype(f"S{width}").view(np.uint8).reshape(len(texts), width)


def _join_rows(fields: list[np.ndarray]) -> bytes:
    """CSV rows from each column's byte fields: cells joined by commas, rows ended by newlines."""
    n = fields[0].shape[0]
    parts = []
    for i, f in enumerate(fields):
        parts.append(f)
        parts.append(np.full((n, 1), ord("\n") if i == len(fields) - 1 else ord(","), np.uint8))
    table = np.concatenate(parts, axis=1)
    return table[table != 0].tobytes()


def write_output_table(columns: Mapping[str, Sequence[Any]], path) -> str:
    """Write :func:`format_output_table` to ``path`` atomically; returns the path."""
    return _write_atomically(format_output_table(columns), path)
