"""asv-shaped benchmark classes, one per workload (see ``problems.py``).

asv (``asv run``) can collect these as they are: ``params`` and
``param_names``, ``setup`` (raising ``NotImplementedError`` to skip an
engine that is not installed), ``time_*``, ``peakmem_*`` and ``track_*``.
The runner (``python -m benchmarks.run``) uses the same classes in a fresh
process per measurement.

Loop engines (scipy, roadrunner) run only their first ``SUBSET`` subjects in
``time_simulate`` (a full 100,000-subject loop would take hours);
``track_ms_per_subject`` is the figure to compare across engines.
"""

from __future__ import annotations

import time

from . import harness
from .engines import ENGINE_MODULES
from .problems import TIMED_OUTPUTS, WORKLOADS

ENGINES = list(ENGINE_MODULES)


class _Workload:
    workload = ""
    quick = False
    outputs = TIMED_OUTPUTS
    subset = None  # None: each engine's own SUBSET
    param_names = ("engine", "n_subjects")
    timeout = 3600.0
    number = 1
    repeat = 1

    def setup(self, engine, n_subjects):
        # NotImplementedError (engine missing) makes asv skip the case.
        self.case = harness.Case(self.workload, engine, n_subjects, quick=self.quick,
                                 outputs=self.outputs, subset=self.subset)
        self.case.warm_up()

    def time_simulate(self, engine, n_subjects):
        self.case.run()

    def peakmem_simulate(self, engine, n_subjects):
        self.case.run()

    def track_ms_per_subject(self, engine, n_subjects):
        t = time.perf_counter()
        self.case.run()
        return 1000.0 * (time.perf_counter() - t) / self.case.k

    track_ms_per_subject.unit = "ms"

    def track_plasma_rel_error(self, engine, n_subjects):
        return harness.accuracy(self.workload, engine, quick=self.quick)["plasma_rel"]

    track_plasma_rel_error.unit = "relative"

    def track_receptor_abs_error(self, engine, n_subjects):
        return harness.accuracy(self.workload, engine, quick=self.quick)["receptor_abs"]

    track_receptor_abs_error.unit = "absolute"


def _params(name):
    return (ENGINES, list(WORKLOADS[name].sizes))


class StandardPopulation(_Workload):
    __doc__ = WORKLOADS["standard"].question
    workload = "standard"
    params = _params("standard")


class StandardDailyOutputs(_Workload):
    __doc__ = WORKLOADS["standard_daily"].question
    workload = "standard_daily"
    params = _params("standard_daily")


class YearOfDosing(_Workload):
    __doc__ = WORKLOADS["year"].question
    workload = "year"
    params = _params("year")


class IntrathecalInfusion(_Workload):
    __doc__ = WORKLOADS["intrathecal"].question
    workload = "intrathecal"
    params = _params("intrathecal")


#: The class that measures each workload (used by the runner).
BENCHMARKS = {cls.workload: cls for cls in (StandardPopulation, StandardDailyOutputs,
                                             YearOfDosing, IntrathecalInfusion)}
