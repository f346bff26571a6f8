"""Event tables in and out: NONMEM-style datasets (docs/event-tables.md).

:func:`read_event_table` reads a CSV file, a pandas DataFrame or a mapping of
columns into the normalised :class:`pkpd.records.EventTable`, checking every
rule of the contract (rule 12); :func:`scenario_to_event_table` turns a
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
from .parameters import COVARIATES, PARAMETER_INFO
from .model import typical_values_with_eta
from .records import (DOSABLE_CMTS, DOSE, OBSERVATION, OTHER, RESET, RESET_DOSE, ROUTE_CMT, Columns, EventTable,
                      Record, Subject, regimen_rows)

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
    """A column given as codes into its distinct cells (from pandas.factorize)."""

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
    """A numeric column: value (NaN where blank), blank, and cells that are not finite numbers."""

    __slots__ = ("x", "blank", "bad")

    def __init__(self, x, blank, bad):
        self.x, self.blank, self.bad = x, blank, bad


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
    return _Parsed(ux[codes], ublank[codes], ubad[codes])


def _value_ok(canon: str, kind: str, x: np.ndarray) -> np.ndarray:
    """Does each (finite) value satisfy the column's rule?"""
    uniq, inv = np.unique(x, return_inverse=True)
    if kind in ("param", "cov"):
        info = PARAMETER_INFO[canon if kind == "param" else COVARIATE_COLUMNS[canon]]
        ok = np.ones(uniq.size, bool)
        for j, v in enumerate(uniq.tolist()):
            try:
                info.check(v)
            except ParameterError:
                ok[j] = False
    else:
        ok = np.array([_DOSING_RULES[_DOSING_RE.fullmatch(canon).group(1)][1](v) for v in uniq.tolist()], bool)
    return ok[inv.reshape(-1)]


def _first(mask: np.ndarray) -> int:
    i = int(np.argmax(mask)) if mask.size else 0
    return i if mask.size and mask[i] else -1


def _columnar(columns: list[tuple[str, str, str]], cols: Sequence[Any], rownums: np.ndarray, src: _Source,
              carried_names: Sequence[str], cells_of, *, text: bool) -> EventTable:
    """Every column at once: the table as :class:`pkpd.records.Columns`.

    ``cols[i]`` is column i (a sequence of cells, or a :class:`_Parsed`),
    ``rownums`` the data row number of each entry, ``cells_of(i)`` the cells
    of entry i (for messages), ``text``: every cell is a str (a CSV file).
    Each rule is checked on whole columns; when one is broken, the entries
    from the start of the first offending subject are read again by
    :func:`_build`, which names the first broken rule exactly as it always did.
    """
    n = int(rownums.size)
    if n == 0:
        raise EventTableError(f"{src.label}: the table has no data rows (an event table needs a header row and "
                              "at least one data row); got a header only")
    index = {canon: i for i, (_, canon, _) in enumerate(columns)}
    bad = np.zeros(n, bool)

    # ID: subjects are runs of equal ID text
    id_codes, id_cells = _codes(cols[index["ID"]], not text)
    id_text = [_id_text(v) for v in id_cells]
    text_codes: dict = {}
    id_of_cell = np.array([text_codes.setdefault(t, len(text_codes)) for t in id_text], np.intp)
    id_blank = np.array([_is_blank(v) for v in id_cells], bool)
    sid = id_of_cell[id_codes]
    bad |= id_blank[id_codes]
    starts = np.flatnonzero(np.concatenate([[True], sid[1:] != sid[:-1]]))
    run_id = sid[starts]
    contiguity = -1
    if np.unique(run_id).size < run_id.size:
        met: set = set()
        for k, s_ in enumerate(run_id.tolist()):
            if s_ in met:
                contiguity = int(starts[k])
                break
            met.add(s_)
    subject_of = np.cumsum(np.concatenate([[False], sid[1:] != sid[:-1]]))

    def parsed(canon):
        i = index.get(canon)
        return None if i is None else _parse(cols[i], not text)

    def number(canon, default=0.0):
        p = parsed(canon)
        if p is None:
            return np.full(n, default), np.ones(n, bool)
        np.logical_or(bad, p.bad, out=bad)
        return np.where(p.blank, default, p.x), p.blank

    def integer(canon, ok):
        x, blank = number(canon)
        with np.errstate(invalid="ignore"):
            np.logical_or(bad, ~blank & ((x != np.trunc(x)) | ~ok(x)), out=bad)
        return x, blank

    t, t_blank = number("TIME")
    bad |= t_blank | (t < 0)
    same = np.concatenate([[False], subject_of[1:] == subject_of[:-1]])
    bad[1:] |= same[1:] & (t[1:] < t[:-1])
    amt, _ = number("AMT")
    bad |= amt < 0
    evid, evid_blank = integer("EVID", lambda v: (v >= 0) & (v <= 4))
    evid = np.where(evid_blank, np.where(amt > 0, DOSE, OBSERVATION), evid)
    cmt, cmt_blank = integer("CMT", lambda v: np.ones(v.shape, bool))
    cmt = np.where(cmt_blank, 1.0, cmt)
    rate, _ = number("RATE")
    ii, _ = number("II")
    addl, _ = integer("ADDL", lambda v: v >= 0)
    ss, _ = integer("SS", lambda v: (v == 0) | (v == 1) | (v == 2))
    bad |= ii < 0
    bad |= (rate < 0) & (rate != -1.0) & (rate != -2.0)

    # parameter and covariate columns: checked where written, last value carried forward within a subject
    values: dict[str, np.ndarray] = {}
    positions = np.arange(n)
    first_of_row = starts[subject_of]
    for _, canon, kind in columns:
        if kind not in ("cov", "param", "dosing"):
            continue
        p = parsed(canon)
        bad |= p.bad
        written = ~p.blank & ~p.bad
        news = written.copy()
        news[1:] &= p.x[1:] != p.x[:-1]
        if news.any():
            ok = _value_ok(canon, kind, p.x[news])
            if not ok.all():
                bad |= written & np.isin(p.x, p.x[news][~ok])
        if written.all():
            values[canon] = p.x
            continue
        last = np.maximum.accumulate(np.where(written, positions, -1))
        values[canon] = np.where(last >= first_of_row, p.x[np.maximum(last, 0)], np.nan)

    dose = (evid == DOSE) | (evid == RESET_DOSE)
    positive_ii = ii > 0
    cmt_ok = np.isin(cmt, DOSABLE_CMTS)
    bad |= dose & ~cmt_ok
    bad |= dose & (addl > 0) & ~positive_ii
    bad |= dose & (ss == 1) & ~positive_ii & ~((amt == 0) & (rate > 0))
    bad |= dose & (ss == 2) & ~positive_ii
    for code, prefix in ((-1.0, "R"), (-2.0, "D")):
        uses = dose & (rate == code)
        if uses.any():
            missing = np.ones(n, bool)
            for c in DOSABLE_CMTS:
                col = values.get(f"{prefix}{c}")
                if col is not None:
                    missing[cmt == c] = np.isnan(col[cmt == c])
            bad |= uses & missing

    first_bad = _first(bad)
    if contiguity >= 0 and (first_bad < 0 or contiguity < first_bad):
        first_bad = contiguity
    if first_bad >= 0:
        k = int(subject_of[first_bad])
        a = int(starts[k])
        seen = {}
        ends = np.append(starts[1:], n) - 1
        for j in range(k):
            seen[id_text[id_codes[starts[j]]]] = int(rownums[ends[j]])
        _build(columns, ((int(rownums[i]), cells_of(i)) for i in range(a, n)), src, carried_names, seen)
        # the columns found a fault the rows did not (should not happen): the rows decide
        return _build(columns, ((int(rownums[i]), cells_of(i)) for i in range(n)), src, carried_names)

    nondose = ~dose
    amt[nondose] = rate[nondose] = ii[nondose] = addl[nondose] = ss[nondose] = 0.0
    cmt[nondose] = 1.0
    carried: dict[str, Sequence[str]] = {}
    for name, canon, kind in columns:
        if kind == "carried":
            col = cols[index[canon]]
            if text:
                carried[name] = col
            else:
                codes, uniq = _codes(col, True)
                carried[name] = np.array([_carried_text(v) for v in uniq] + [""], dtype=object)[codes]
    data = Columns(starts=np.append(starts, n), row=np.asarray(rownums, dtype=int), time=t,
                   evid=evid.astype(int), amt=amt, cmt=cmt.astype(int), rate=rate, ii=ii, addl=addl.astype(int),
                   ss=ss.astype(int), values=values, carried=carried)
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
        A CSV file with a header row; a DataFrame; or a mapping of column
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


def _from_columns(names, cols, carry, src) -> EventTable:
    if not names:
        raise EventTableError(f"{src.label}: the table is empty (an event table needs columns ID and TIME and "
                              "at least one row); got no columns")
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
    """The fast CSV path cannot name an error: read the file the careful way."""


#: Bytes that make a line break or a quote for the csv module (\x85, \u2028, \u2029 are checked as text).
_ODD_BYTES = np.array([34, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E], np.uint8)


_ODD_BYTES = (b'"', b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", "\x85".encode(), "\u2028".encode(),
              "\u2029".encode())


def _read_csv_fast(path: str, carry, src: _Source) -> EventTable | None:
    """A plain CSV file (no quotes, no blank lines, header on the first line) read by pandas, if installed.

    Returns None when the file is not plain, pandas is missing, or any rule
    is broken: the csv-module path then reads it and names the fault.
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
    if cut < 0 or any(c in data for c in _ODD_BYTES[:6]) or (
            not data.isascii() and any(c in data for c in _ODD_BYTES[6:])):
        return None
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None
    try:
        first = data[start:cut].decode("utf-8").removesuffix("\r")
        if not first.strip():
            return None
        header = next(csv.reader([first]))
        columns = _header(header, carry, src)
    except (UnicodeDecodeError, csv.Error, EventTableError):
        return None  # the careful path names the first fault
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
            if columns[i][1] == "ID":
                codes, uniques = pd.factorize(s, sort=False)
                cols[i] = _Coded(np.asarray(codes, dtype=np.intp), [str(u) for u in uniques])
            else:
                cols[i] = s.to_numpy(dtype=object)
        elif s.dtype.kind in "fiu":
            x = s.to_numpy(dtype=float)
            blank = np.isnan(x)
            cols[i] = _Parsed(x, blank, np.isinf(x))
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


def _read_csv(path: str, carry, src: _Source) -> EventTable:
    fast = _read_csv_fast(path, carry, src)
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
    """The CSV text of an engine's output columns (rule 11): numbers ``%.10g``, text as is."""
    from .files import NUMBER_FORMAT

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
        return "" if math.isnan(x) else NUMBER_FORMAT % x

    lines = [",".join(_cell(str(k)) for k in names)]
    for i in range(n):
        lines.append(",".join(cell(c[i]) for c in data))
    return "\n".join(lines) + "\n"


def write_output_table(columns: Mapping[str, Sequence[Any]], path) -> str:
    """Write :func:`format_output_table` to ``path`` atomically; returns the path."""
    return _write_atomically(format_output_table(columns), path)
