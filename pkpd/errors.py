"""Exceptions raised by pkpd.

Every error a user can fix is a :class:`PkpdError`.  The command line turns
one into a single line on standard error and exit status 2; the library never
prints and never calls ``sys.exit``.
"""

from __future__ import annotations


class PkpdError(Exception):
    """Base class of every error pkpd raises on purpose."""


class ParameterError(PkpdError, ValueError):
    """A model parameter is unknown, non-finite or outside its allowed range."""


class RegimenError(PkpdError, ValueError):
    """A dose or infusion is invalid (unknown route, negative amount, ...)."""


class ScenarioError(PkpdError, ValueError):
    """A scenario file or scenario definition is invalid."""


class ResourceError(PkpdError, MemoryError):
    """A run would need more memory than the machine can give it."""


class SolverError(PkpdError, RuntimeError):
    """The integration failed or produced a non-finite value."""
