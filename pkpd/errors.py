"""Exceptions and warnings raised by pkpd.

Every error a user can fix is a :class:`PkpdError` whose message is one line,
``field: rule; got value``.  The command line turns one into a single line on
standard error and exit status 2; the library never prints and never calls
``sys.exit``.
"""

from __future__ import annotations

_SHOW_LIMIT = 80  # characters of a received value echoed in a message


class PkpdError(Exception):
    """Base class of every error pkpd raises on purpose."""


class ParameterError(PkpdError, ValueError):
    """A model parameter is unknown, non-finite or outside its allowed range."""


class RegimenError(PkpdError, ValueError):
    """A dose or infusion is invalid (unknown route, negative amount, ...)."""


class ScenarioError(PkpdError, ValueError):
    """A scenario file or scenario definition is invalid."""


class EventTableError(ScenarioError):
    """An event table (docs/event-tables.md) breaks a rule of the contract.

    The message names the table, the data row (the first row after the
    header is row 1), the column and the value:
    ``data.csv: row 12, AMT: must be >= 0 (mg); got -5``.
    """


class ResourceError(PkpdError, MemoryError):
    """A run would need more memory than the machine can give it."""


class SolverError(PkpdError, RuntimeError):
    """The integration failed or produced a non-finite value."""


class PkpdWarning(UserWarning):
    """Base class of the warnings pkpd issues on purpose."""


class OverlapWarning(PkpdWarning):
    """Doses of two titration or taper builders overlap in time on one route.

    Not an error: doses at the same time add (that is the format's rule), but
    a titration held past the start of its taper is almost always a mistake.
    """


def show(value: object) -> str:
    """A received value for a message: its repr on one line, shortened.

    Arrays are described by their shape, never dumped.
    """
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, (int, float)) and tuple(shape) != ():
        return f"an array of shape {tuple(shape)}"
    try:
        text = repr(value)
    except RecursionError:
        text = f"<deeply nested {type(value).__name__}>"
    text = " ".join(text.splitlines())
    return text if len(text) <= _SHOW_LIMIT else text[: _SHOW_LIMIT - 3] + "..."
