"""Run the benchmark suite: ``python -m benchmarks.run [--quick] [--json PATH] ...``.

Each (workload, engine, size) is timed in a fresh process; then every
engine's error against the high-accuracy reference is measured on a few
subjects per workload.  Prints a table; optionally writes JSON (with the
machine), a log-log scaling figure and a markdown table.
``--from-json PATH`` re-renders the table, figure and markdown of an
earlier run without running anything.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import engines, harness, problems, report


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (n = 1, 10) and short horizons; < 30 s")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--figure", metavar="PATH", help="write the scaling figure (PNG)")
    p.add_argument("--markdown", metavar="PATH", help="write the table as markdown ('-' for stdout)")
    p.add_argument("--from-json", metavar="PATH", help="render an earlier run's JSON; run nothing")
    p.add_argument("--workloads", nargs="+", choices=list(problems.WORKLOADS), metavar="W",
                   help=f"workloads to run (default: all; quick: those marked quick) from {', '.join(problems.WORKLOADS)}")
    p.add_argument("--engines", nargs="+", choices=list(engines.ENGINE_MODULES), metavar="E",
                   help=f"engines to run (default: all) from {', '.join(engines.ENGINE_MODULES)}")
    p.add_argument("--sizes", nargs="+", type=int, metavar="N", help="numbers of subjects (default: each workload's)")
    p.add_argument("--outputs", choices=("default", "all"), default="default",
                   help=f"readouts the timed runs return: default {', '.join(problems.TIMED_OUTPUTS)}; or all")
    p.add_argument("--no-accuracy", action="store_true", help="skip the accuracy measurements")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per measurement")
    return p


def run(args) -> dict:
    names = args.engines or [e for e in engines.ENGINE_MODULES
                             if not args.quick or getattr(engines.get(e), "IN_QUICK", True)]
    if args.workloads:
        workloads = args.workloads
    else:
        workloads = [w for w, spec in problems.WORKLOADS.items() if spec.in_quick or not args.quick]
    outputs = problems.ALL_OUTPUTS if args.outputs == "all" else problems.TIMED_OUTPUTS
    result = {
        "machine": harness.machine_info(),
        "command": "python -m benchmarks.run " + " ".join(sys.argv[1:]),
        "quick": bool(args.quick),
        "baseline": engines.BASELINE,
        "subjects": problems.scenario_subjects().source,
        "workloads": {w: problems.WORKLOADS[w].question for w in workloads},
        "engines": {},
        "rows": [],
        "accuracy": {},
    }
    for name in names:
        eng = engines.get(name)
        ok, note = eng.available()
        result["engines"][name] = {"available": ok, "note": note, "settings": getattr(eng, "SETTINGS", ""),
                                   "subset": getattr(eng, "SUBSET", None)}
    start = time.perf_counter()
    for w in workloads:
        spec = problems.WORKLOADS[w]
        sizes = args.sizes or (spec.quick_sizes if args.quick else spec.sizes)
        for n in sizes:
            for name in names:
                t = time.perf_counter()
                row = harness.measure_in_subprocess(w, name, n, quick=args.quick, outputs=outputs,
                                                      min_time_s=0.2 if args.quick else 1.0,
                                                      timeout_s=args.timeout)
                row["elapsed_s"] = time.perf_counter() - t
                result["rows"].append(row)
                print(f"  {w:<15} {name:<16} n={n:<7} {row['status']:<8} "
                      f"{report.fmt_num(row.get('wall_s'), 's')}  {row.get('note', '')}",
                      file=sys.stderr, flush=True)
    if not args.no_accuracy:
        for w in workloads:
            for name in names:
                t = time.perf_counter()
                try:
                    acc = harness.accuracy(w, name, quick=args.quick)
                except Exception as exc:  # an engine failing here is a finding, not a crash
                    acc = {"status": "error", "note": f"{type(exc).__name__}: {exc}"}
                acc["elapsed_s"] = time.perf_counter() - t
                result["accuracy"][f"{w}/{name}"] = acc
                print(f"  accuracy {w:<15} {name:<16} {acc['status']:<8} "
                      f"plasma {report.fmt_num(acc.get('plasma_rel'))} "
                      f"receptor {report.fmt_num(acc.get('receptor_abs'))}", file=sys.stderr, flush=True)
    result["total_s"] = time.perf_counter() - start
    try:
        result["machine"]["load_avg_1m_at_end"] = round(__import__("os").getloadavg()[0], 2)
    except OSError:
        pass
    report.attach_ratios(result)
    return result


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.from_json:
        with open(args.from_json) as fh:
            result = json.load(fh)
    else:
        result = run(args)
    print(report.table(result))
    if args.json and not args.from_json:
        with open(args.json, "w") as fh:
            fh.write(harness.dumps(result))
    if args.figure:
        report.figure(result, args.figure)
    if args.markdown:
        md = report.markdown(result)
        if args.markdown == "-":
            print(md)
        else:
            with open(args.markdown, "w") as fh:
                fh.write(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
