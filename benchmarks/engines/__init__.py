"""Engines that solve the benchmark problems, all from the same per-subject parameters.

Each engine module has ``NAME``, ``SUBSET`` (loop engines are timed on that
many subjects and scaled linearly; ``None`` = always run in full),
``SETTINGS`` (solver and tolerances, for the table), optionally
``IN_QUICK = False`` (left out of ``--quick``), ``available() ->
(bool, note)``, ``prepare(problem) -> context`` (untimed: compiling a
model, tracing a function) and ``solve(problem, params, outputs, context)
-> dict of (N, T) arrays``.  ``params`` is
``problems.Problem.individual_parameters()``: the spec's per-subject values
(``spec_model.individual_values``) for the population's covariates and etas,
computed independently of pkpd; the pkpd engine derives its own from the
same population.
"""

from __future__ import annotations

import importlib

ENGINE_MODULES = {
    "pkpd": "benchmarks.engines.pkpd_engine",
    "pkpd_numba": "benchmarks.engines.pkpd_numba",
    "pkpd_numba_one_thread": "benchmarks.engines.pkpd_numba_one_thread",
    "scipy_loop": "benchmarks.engines.scipy_loop",
    "roadrunner_loop": "benchmarks.engines.roadrunner_loop",
    "diffrax_vmap": "benchmarks.engines.diffrax_vmap",
}
#: The baseline every ratio is measured against.
BASELINE = "scipy_loop"


def get(name: str):
    """The engine module called ``name``."""
    if name not in ENGINE_MODULES:
        raise KeyError(f"unknown engine {name!r} (expected one of {', '.join(ENGINE_MODULES)})")
    return importlib.import_module(ENGINE_MODULES[name])
