"""Event tables against scenarios: ``python -m benchmarks.event_tables [N] [--quick] [--json PATH]``.

Two measurements (issue "Speak the pharmacometrician's language", Speed;
a benchmark, not a timed test):

1. **Read and simulate an event table** of the ``standard-population``
   scenario for N subjects (default 10000; 1000 with ``--quick``): the
   scenario written as a table (the regimen as ADDL records, observations
   every 0.5 h) to a temporary folder, then ``read_event_table`` +
   ``simulate_table``, against ``pkpd.simulate`` of the same population
   and regimen in the same process.  Goal: at most 1.5x.
2. **SS = 1 for N subjects**: one SS = 1 dose record of 20 mg every 8 h
   per subject and outputs over one interval (every 0.5 h), against
   ``pkpd.simulate`` of 10 dosing intervals of the same regimen for the
   same subjects.  Goal: less than 1x.

Each timing is the best of ``--repeat`` runs (default 1) after the untimed
imports (pandas, scipy) and a small warm-up.  Teaching and research
software, never dosing advice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np


def _best(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _scenario_runs(scenario, population, engine):
    """``pkpd.simulate`` of every arm of a scenario for ``population``."""
    import pkpd

    return [pkpd.simulate(arm.regimen, duration_h=scenario.duration_h, parameters=arm.parameters,
                          population=population, output_step_h=scenario.output_step_h, engine=engine)
            for arm in scenario.arms]


def table_vs_scenario(n: int, folder: str, repeat: int = 1, engine: str = "numpy") -> dict:
    """Measurement 1: read + simulate an event table against the scenario it came from."""
    from pkpd.event_table import read_event_table, scenario_to_event_table, write_event_table
    from pkpd.scenario import load_scenario
    from pkpd.table_engine import simulate_table

    scenario = load_scenario("standard-population", n_subjects=n)
    population = scenario.subjects.population()
    path = os.path.join(folder, f"standard-population-{n}.csv")
    t = time.perf_counter()
    if not os.path.exists(path):  # the same table for every engine
        write_event_table(scenario_to_event_table(scenario), path)
    write_s = time.perf_counter() - t
    t_scn, _ = _best(lambda: _scenario_runs(scenario, population, engine), repeat)
    t_read, table = _best(lambda: read_event_table(path, carry=["ARM"]), repeat)
    t_sim, result = _best(lambda: simulate_table(table, engine=engine), repeat)
    return {
        "subjects": n, "rows": int(sum(len(s) for s in table.subjects)), "output_rows": len(result),
        "file_mb": os.path.getsize(path) / 1e6, "write_s": write_s,
        "scenario_s": t_scn, "read_s": t_read, "simulate_table_s": t_sim,
        "ratio": (t_read + t_sim) / t_scn, "goal": 1.5,
    }


def steady_state_vs_intervals(n: int, folder: str, repeat: int = 1, engine: str = "numpy") -> dict:
    """Measurement 2: SS = 1 (20 mg every 8 h, one interval of outputs) against 10 simulated intervals."""
    import pkpd
    from pkpd.event_table import read_event_table, write_event_table
    from pkpd.scenario import load_scenario
    from pkpd.table_engine import simulate_table

    # the standard population's covariates (WT, CRCL); typical values of every parameter
    population = load_scenario("standard-population", n_subjects=n).subjects.population()
    grid = np.arange(0.0, 8.0 + 1e-9, 0.5)
    per = 1 + grid.size
    ids = np.repeat(np.arange(1, n + 1), per)
    first = np.zeros(n * per, bool)
    first[::per] = True
    cols = {
        "ID": ids.tolist(),
        "TIME": np.tile(np.concatenate([[0.0], grid]), n).tolist(),
        "EVID": np.where(first, 1, 0).tolist(),
        "AMT": np.where(first, 20.0, np.nan).tolist(),
        "CMT": np.where(first, 1, np.nan).tolist(),
        "II": np.where(first, 8.0, np.nan).tolist(),
        "SS": np.where(first, 1, np.nan).tolist(),
        "WT": np.repeat(population.weight_kg, per).tolist(),
        "CRCL": np.repeat(population.crcl_ml_min, per).tolist(),
    }
    cols = {k: [None if (isinstance(v, float) and v != v) else v for v in c] for k, c in cols.items()}
    path = os.path.join(folder, f"ss1-{n}.csv")
    write_event_table(cols, path)
    regimen = pkpd.Regimen(doses=(pkpd.Dose("oral_ir", 20.0, every_h=8.0, count=10),))
    pop = pkpd.Population(weight_kg=population.weight_kg, crcl_ml_min=population.crcl_ml_min)
    t_ten, _ = _best(lambda: pkpd.simulate(regimen, duration_h=80.0, population=pop, output_step_h=0.5,
                                           engine=engine), repeat)
    t_read, table = _best(lambda: read_event_table(path), repeat)
    t_sim, result = _best(lambda: simulate_table(table, engine=engine), repeat)
    return {
        "subjects": n, "rows": int(n * per), "output_rows": len(result),
        "ten_intervals_s": t_ten, "read_s": t_read, "simulate_table_s": t_sim,
        "ratio": t_sim / t_ten, "ratio_with_read": (t_read + t_sim) / t_ten, "goal": 1.0,
    }


def _warm_up(folder: str, engine: str) -> None:
    try:
        import pandas  # noqa: F401  (the reader's CSV parser when installed: imported once, untimed)
    except ImportError:
        pass
    table_vs_scenario(20, folder, engine=engine)
    steady_state_vs_intervals(20, folder, engine=engine)
    if engine == "numba":  # load (or compile) the kernel before timing
        from pkpd import kernel

        kernel.get_kernel()


def _engines(asked) -> list[str]:
    from pkpd import kernel

    if asked:
        return list(asked)
    return ["numpy", "numba"] if kernel.available() else ["numpy"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.event_tables", description=__doc__.split("\n")[0])
    ap.add_argument("n", nargs="?", type=int, help="subjects (default 10000; 1000 with --quick)")
    ap.add_argument("--quick", action="store_true", help="1000 subjects")
    ap.add_argument("--repeat", type=int, default=1, help="best of this many runs (default 1)")
    ap.add_argument("--engines", nargs="+", choices=("numpy", "numba"),
                    help="engines, the same on both sides of each ratio (default numpy, and numba when installed)")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    n = args.n or (1000 if args.quick else 10000)
    results = {}
    print(f"event tables, {n} subjects (teaching/research software, never dosing advice)")
    with tempfile.TemporaryDirectory(prefix="pkpd-event-tables-") as folder:
        for engine in _engines(args.engines):
            _warm_up(folder, engine)
            one = table_vs_scenario(n, folder, args.repeat, engine)
            two = steady_state_vs_intervals(n, folder, args.repeat, engine)
            results[engine] = {"table_vs_scenario": one, "steady_state_vs_intervals": two}
            print(f"engine {engine}")
            print(f"1. standard-population as a table: {one['rows']} rows ({one['file_mb']:.0f} MB), "
                  f"{one['output_rows']} output rows")
            print(f"   scenario (pkpd.simulate)   {one['scenario_s']:8.2f} s")
            print(f"   read_event_table           {one['read_s']:8.2f} s")
            print(f"   simulate_table             {one['simulate_table_s']:8.2f} s")
            print(f"   (read + simulate)/scenario {one['ratio']:8.2f} x   (goal <= {one['goal']:g})")
            print(f"2. SS=1, 20 mg every 8 h, outputs over one interval: {two['rows']} rows")
            print(f"   10 intervals (pkpd.simulate) {two['ten_intervals_s']:6.2f} s")
            print(f"   read_event_table             {two['read_s']:6.2f} s")
            print(f"   simulate_table               {two['simulate_table_s']:6.2f} s")
            print(f"   simulate_table/10 intervals  {two['ratio']:6.2f} x   (goal < {two['goal']:g}; "
                  f"with the read {two['ratio_with_read']:.2f} x)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"subjects": n, "engines": results}, fh, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
