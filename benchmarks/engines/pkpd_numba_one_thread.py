"""pkpd.simulate with the compiled engine on one thread (``pkpd.kernel.MAX_THREADS = 1``).

As ``pkpd_numba`` but never with a second thread: what issue 12's goal for
10,000 subjects "on one thread" measures, in the same run as the peers.
"""

from __future__ import annotations

from . import pkpd_numba

NAME = "pkpd_numba_one_thread"
SUBSET = None
SETTINGS = "pkpd.simulate(engine='numba') with pkpd.kernel.MAX_THREADS = 1"
available = pkpd_numba.available
prepare = pkpd_numba.prepare


def solve(problem, params, outputs, context=None) -> dict:
    """Readouts, each (N, T), as ``pkpd_numba`` on one thread."""
    from pkpd import kernel

    saved = kernel.MAX_THREADS
    kernel.MAX_THREADS = 1
    try:
        return pkpd_numba.solve(problem, params, outputs, context)
    finally:
        kernel.MAX_THREADS = saved
