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

from dataclasses import dataclass, field
from typing import Mapping

#: Event identifiers (EVID).
OBSERVATION, DOSE, OTHER, RESET, RESET_DOSE = range(5)
#: Dosable compartments (CMT), numbered as in the model spec.
DOSABLE_CMTS = (1, 2, 3, 4, 5, 6)


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


@dataclass(frozen=True)
class Subject:
    """The records of one subject, in file order.

    ``id`` is the subject identifier as written (text), ``number`` its
    position in the table counting from 1.
    """

    id: str
    number: int
    records: tuple[Record, ...]


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
