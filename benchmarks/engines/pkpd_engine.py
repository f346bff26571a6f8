"""The engine under test: ``pkpd.simulate`` on the whole population at once."""

from __future__ import annotations

NAME = "pkpd"
SUBSET = None  # always run in full
SETTINGS = "pkpd.simulate(engine='numpy') (batch, exact linear PK)"


def available() -> tuple[bool, str]:
    try:
        import pkpd

        pkpd.simulate  # noqa: B018
    except Exception as exc:
        return False, f"pkpd.simulate not importable ({type(exc).__name__}: {exc})"
    return True, ""


def prepare(problem):
    return None


def solve(problem, params, outputs, context=None) -> dict:
    """Readouts, each (N, T).  ``params`` is unused: simulate derives the same
    per-subject values from ``problem.parameters`` and ``problem.population``
    (the timing includes that, as a user's call would)."""
    from pkpd import simulate

    res = simulate(problem.regimen, duration_h=problem.duration_h, parameters=problem.parameters,
                   population=problem.population, output_step_h=problem.output_step_h,
                   outputs=tuple(outputs), engine="numpy")
    if res.time_h.shape != problem.times_h.shape:
        raise AssertionError(f"pkpd output grid has {res.time_h.size} times; expected {problem.times_h.size}")
    return {k: res.readout(k) for k in outputs}
