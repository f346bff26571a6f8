"""pkpd.simulate with the compiled engine (``engine="numba"``, needs ``pkpd[fast]``).

``prepare`` loads (or, the first time, compiles) the kernel's entry point
for the problem's size untimed, as a user's second run would find it; the
solve is then the warm cost.
"""

from __future__ import annotations

NAME = "pkpd_numba"
SUBSET = None
SETTINGS = "pkpd.simulate(engine='numba'): the numpy algorithm as a compiled kernel"


def available() -> tuple[bool, str]:
    try:
        from pkpd import kernel
    except Exception as exc:
        return False, f"pkpd.kernel not importable ({type(exc).__name__}: {exc})"
    if not kernel.available():
        return False, "numba is not installed (pip install 'pkpd[fast]')"
    return True, ""


def prepare(problem):
    from pkpd import kernel

    # the entry point this size uses (one per block width, and for blocks of 64 one per
    # size of the reduced system) is loaded, or compiled, here, untimed
    lanes = kernel.lanes_for(problem.n_subjects)
    small = problem.subset(min(problem.n_subjects, lanes))
    solve(small, None, small.outputs)
    assert kernel.loaded(), "the kernel was not loaded"
    return None


def solve(problem, params, outputs, context=None) -> dict:
    """Readouts, each (N, T), as the ``pkpd`` engine but compiled."""
    from pkpd import simulate

    res = simulate(problem.regimen, duration_h=problem.duration_h, parameters=problem.parameters,
                   population=problem.population, output_step_h=problem.output_step_h,
                   outputs=tuple(outputs), engine="numba")
    if res.time_h.shape != problem.times_h.shape:
        raise AssertionError(f"pkpd output grid has {res.time_h.size} times; expected {problem.times_h.size}")
    return {k: res.readout(k) for k in outputs}
