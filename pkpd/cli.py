"""The command line: ``python -m pkpd run | list | show | check | parameters``.

Argument parsing only; each command is a few lines calling the library.
Exit status: 0 success, 2 for anything the user can fix (one line on
standard error, no usage block, no traceback), 1 for a bug, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
import warnings
from typing import Sequence

from .errors import PkpdError
from .scenario import DEFAULT_SCENARIO

DISCLAIMER = "pkpd is a teaching and research model: not for dosing decisions."

_DESCRIPTION = f"""\
Simulate baclofen pharmacokinetics and GABA-B receptor pharmacodynamics
(occupancy, tolerance, withdrawal rebound) for one subject or a population.

  python -m pkpd run                   the default scenario (stop vs taper)
  python -m pkpd list                  the built-in scenarios
  python -m pkpd show NAME > my.toml   a built-in scenario, to edit
  python -m pkpd run my.toml           your own scenario file
  python -m pkpd parameters            every model parameter: unit, default, source
  python -m pkpd run data.csv          an event table (NONMEM-style dataset; .parquet too)
  python -m pkpd events NAME > e.csv   a scenario written as an event table
  python -m pkpd report NAME           one self-contained HTML page to share
  python -m pkpd taper --dose-mg 20 --every-h 8 --treatment-days 28
                                       the shortest taper under a rebound threshold

{DISCLAIMER}"""

_RUN_EPILOG = """\
examples:
  python -m pkpd run
  python -m pkpd run renal-impairment --no-plot
  python -m pkpd run population-variability --subjects 1000 --seed 7
  python -m pkpd run my.toml --set CL_r=3 --set Kd=0.5 --out results/

outputs (in DIR, default ./pkpd-output/<scenario name>/):
  timecourse.csv  one row per arm, subject and output time
  summary.csv     per arm: exposure, occupancy, tolerance and rebound metrics
                  (median and 5th-95th percentiles over subjects)
  figure.png      plasma and CSF levels, occupancy, receptors, excitability"""


class _UsageError(Exception):
    """A bad command line; its text is the one line to print."""


class _Parser(argparse.ArgumentParser):
    """argparse, with each error as one line, no usage block and no
    abbreviated options (``--subject`` is not ``--subjects``)."""

    def __init__(self, *args, **kwargs):
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # argparse's hook for every parsing error
        message = message.removeprefix("argument ")
        if message.startswith("COMMAND: invalid choice: "):
            bad = message.removeprefix("COMMAND: invalid choice: ").split(" (choose", 1)[0]
            message = f"unknown command {bad} (expected one of {', '.join(_COMMANDS)})"
        raise _UsageError(f"{self.prog}: {message} (see: {self.prog} --help)")


def _integer_at_least(low: int):
    """An argparse type: an integer (its range is the library's rule, checked later)."""

    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {text!r}") from None

    return parse


_subjects = _integer_at_least(1)
_seed = _integer_at_least(0)


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. CL_r=3); got {text!r}")
    return name.strip(), value.strip()


#: Keyword of :func:`pkpd.scenario.parse_scenario` -> the option that sets it.
_OPTION_OF = {"n_subjects": "--subjects", "seed": "--seed"}


def _scenario_options(args) -> dict:
    """``--set``, ``--subjects`` and ``--seed`` as keywords of load_scenario,
    checked by the library; its messages are renamed to the options."""
    from .scenario import check_options

    overrides = {}
    for name, text in args.overrides:
        try:
            overrides[name] = float(text)
        except ValueError:
            raise _UsageError(f"--set {name}: must be a number; got {text!r}") from None
    options = {"overrides": overrides, "n_subjects": args.subjects, "seed": args.seed}
    try:
        check_options(**options)
    except PkpdError as exc:
        message = str(exc)
        keyword, _, rest = message.partition(": ")
        if keyword.startswith("overrides."):
            raise _UsageError(f"--set {keyword.removeprefix('overrides.')}: {rest}") from None
        raise _UsageError(f"{_OPTION_OF.get(keyword, keyword)}: {rest}") from None
    return options


def _load(ref: str, **options):
    """A scenario, its overlap warnings printed as one line each on stderr."""
    from .errors import OverlapWarning
    from .scenario import load_scenario

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OverlapWarning)
        scenario = load_scenario(ref, **options)
    for w in caught:
        if issubclass(w.category, OverlapWarning):
            print(f"warning: {_one_line(str(w.message))}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return scenario


def _add_scenario_options(parser) -> None:
    """--subjects, --seed and --set, as the commands that load a scenario take them."""
    parser.add_argument("--subjects", type=_subjects, metavar="N", help="number of subjects (replaces subjects.n)")
    parser.add_argument("--seed", type=_seed, metavar="S", help="random seed (replaces subjects.seed)")
    parser.add_argument("--set", dest="overrides", type=_assignment, action="append", default=[],
                        metavar="NAME=VALUE",
                        help="override a model parameter's typical value, e.g. --set CL_r=3 (repeatable; "
                             "model-spec names and units; see docs/model.md)")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m pkpd``."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="python -m pkpd", description=_DESCRIPTION, formatter_class=fmt)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="run a scenario and write timecourse.csv, summary.csv and figure.png",
        description="Run a scenario: a built-in name (see: python -m pkpd list) or a TOML file.\n\n" + DISCLAIMER,
        epilog=_RUN_EPILOG,
        formatter_class=fmt,
    )
    run.add_argument("scenario", nargs="?", metavar="SCENARIO",
                     help=f"a scenario file (path or *.toml) or a built-in name (default: {DEFAULT_SCENARIO})")
    run.add_argument("--out", metavar="DIR", help="output folder (default: ./pkpd-output/<scenario name>/)")
    _add_scenario_options(run)
    run.add_argument("--no-plot", dest="plot", action="store_false", help="skip figure.png (faster)")
    run.add_argument("--carry", action="append", default=[], metavar="NAME",
                     help="with an event table (DATA.csv): copy column NAME unchanged into table.csv (repeatable)")
    run.add_argument("--format", choices=("csv", "parquet"), default="csv",
                     help="time courses as timecourse.csv (default) or timecourse.parquet/, a directory of "
                          "Parquet files (needs the extra pkpd[distributed])")
    run.add_argument("--workers", type=_integer_at_least(1), metavar="K",
                     help="with --format parquet: run on a local Dask cluster of K worker processes")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="with --format parquet: run on a running Dask cluster, e.g. tcp://HOST:8786")

    events = commands.add_parser(
        "events", help="write a scenario as an event table (NONMEM-style CSV)",
        description="Write a scenario (a file or a built-in name) as an event table: every arm, subject and "
                    "dose, observation rows on its output grid, the sampled covariates (docs/event-tables.md).\n\n"
                    + DISCLAIMER,
        formatter_class=fmt)
    events.add_argument("scenario", metavar="SCENARIO", help="a scenario file or a built-in name")
    events.add_argument("--out", metavar="FILE", help="write FILE (atomically) instead of standard output")
    _add_scenario_options(events)

    report = commands.add_parser(
        "report", help="run a scenario and write one self-contained HTML page (report.html)",
        description="Run a scenario and write DIR/report.html: one self-contained page (figure embedded, the "
                    "summary table with units, the scenario text, the disclaimer) to put on a course site.\n\n"
                    + DISCLAIMER,
        formatter_class=fmt)
    report.add_argument("scenario", metavar="SCENARIO", help="a scenario file or a built-in name")
    report.add_argument("--out", metavar="DIR", help="output folder (default: ./pkpd-output/<scenario name>/)")
    _add_scenario_options(report)

    ls = commands.add_parser("list", help="list the built-in scenarios", description="One line per built-in scenario: NAME  description.")
    del ls
    show = commands.add_parser("show", help="print a built-in scenario's TOML (to copy and edit)",
                               description="Print a built-in scenario's TOML, e.g.\n"
                                           "  python -m pkpd show label-titration > my.toml",
                               formatter_class=fmt)
    show.add_argument("name", metavar="NAME", help="a built-in scenario (see: python -m pkpd list)")
    commands.add_parser("parameters", help="list every model parameter with unit, default and source",
                        description="Every model parameter (model-spec names): unit, default, meaning and source.")
    check = commands.add_parser("check", help="validate a scenario file without running it",
                                description="Validate a scenario file (or built-in name) without running it; "
                                            "exit status 0 when valid, 2 otherwise.")
    check.add_argument("file", metavar="FILE", help="a scenario file")

    taper = commands.add_parser(
        "taper", help="design a taper: the shortest one whose rebound percentile stays under a threshold",
        description="The shortest taper (length and shape) after a treatment whose rebound percentile across a "
                    "simulated population stays at or under a threshold, with the curve of rebound against taper "
                    "length. A question about the illustrative model, not a recommended taper.\n\n" + DISCLAIMER,
        epilog="example:\n  python -m pkpd taper --dose-mg 20 --every-h 8 --treatment-days 28 --subjects 200 "
               "--seed 1 --threshold 1.2 --out results/",
        formatter_class=fmt)
    taper.add_argument("--dose-mg", type=float, default=20.0, metavar="MG", help="maintenance amount per oral dose, mg (default 20)")
    taper.add_argument("--every-h", type=float, default=8.0, metavar="H", help="dosing interval, h (default 8)")
    taper.add_argument("--treatment-days", type=float, default=28.0, metavar="D", help="days of treatment before the taper (default 28)")
    taper.add_argument("--subjects", type=_subjects, default=200, metavar="N", help="population size (default 200)")
    taper.add_argument("--seed", type=_seed, default=1, metavar="S", help="random seed (default 1)")
    taper.add_argument("--threshold", type=float, default=1.2, metavar="X", help="rebound excitability not to exceed (default 1.2)")
    taper.add_argument("--percentile", type=float, default=95.0, metavar="P", help="percentile of the population (default 95)")
    taper.add_argument("--max-days", type=float, default=28.0, metavar="D", help="longest taper tried, days (default 28)")
    taper.add_argument("--steps", type=_subjects, default=4, metavar="K", help="dose levels of each taper shape (default 4)")
    taper.add_argument("--out", metavar="DIR", help="write taper.csv (the curve) and taper.png into DIR")
    return parser


# ---------------------------------------------------------------------------
# Commands


def _is_event_table(ref: str | None) -> bool:
    """A CSV file (the contract) or a Parquet file (the extension, needs pyarrow) is an event table."""
    return ref is not None and ref.lower().endswith((".csv", ".parquet"))


def _cmd_run_table(args) -> int:
    """``run DATA.csv``: an event table through the table engine: table.csv, summary.csv, figure.png."""
    from .event_table import read_event_table
    from .parameters import Parameters
    from .run import run_table_to_folder

    for option, value in (("--subjects", args.subjects), ("--seed", args.seed)):
        if value is not None:
            raise _UsageError(f"{option}: does not apply to an event table (its subjects are its rows); "
                              f"got {value}")
    options = _scenario_options(args)
    parameters = Parameters(**options["overrides"])
    table = read_event_table(args.scenario, carry=tuple(args.carry))
    stem = os.path.splitext(os.path.basename(args.scenario))[0] or "table"
    result, folder = run_table_to_folder(table, parameters, args.out, plot=args.plot, name=stem)
    n = len(table.subjects)
    written = "table.csv, summary.csv" + (", figure.png" if args.plot else "")
    print(f"{table.source}: {n} subject{'s' * (n != 1)}; wrote {folder}/: {written} ({len(result)} rows)")
    print(DISCLAIMER)
    return 0

def _cmd_events(args) -> int:
    from .event_table import format_event_table, scenario_to_event_table, write_event_table

    options = _scenario_options(args)
    scenario = _load(args.scenario, **options)
    columns = scenario_to_event_table(scenario)
    if args.out:
        write_event_table(columns, args.out)
        print(f"wrote {args.out} ({len(columns['ID'])} rows)", file=sys.stderr)
    else:
        sys.stdout.write(format_event_table(columns))
    return 0


def _cmd_run(args) -> int:
    from .progress import ProgressBar

    if _is_event_table(args.scenario):
        return _cmd_run_table(args)
    if args.carry:
        raise _UsageError(f"--carry: applies to an event table (DATA.csv) only; got {args.carry[0]!r}")
    if args.format == "parquet" or args.workers or args.scheduler:
        return _cmd_run_parquet(args)
    from .run import run_to_folder

    options = _scenario_options(args)
    scenario = _load(args.scenario or DEFAULT_SCENARIO, **options)
    with ProgressBar(f"{scenario.name}") as bar:
        result, files = run_to_folder(scenario, args.out, plot=args.plot, progress=bar)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    n, arms = scenario.subjects.n, len(scenario.arms)
    days = scenario.duration_h / 24.0
    print(f"{scenario.name}: {arms} arm{'s' * (arms != 1)}, {n} subject{'s' * (n != 1)}, "
          f"{scenario.duration_h:g} h ({days:.3g} days)")
    print()
    print(result.table())
    print()
    if n > 1:
        print(f"medians over {n} subjects; 5th-95th percentiles and units in summary.csv")
    folder = files.folder if files.folder.endswith(os.sep) else files.folder + os.sep
    written = [os.path.basename(p) for p in (files.timecourse, files.summary, files.figure) if p]
    print(f"wrote {folder}: {', '.join(written)} ({result.rows} time-course rows)")
    print(DISCLAIMER)
    return 0


def _cmd_report(args) -> int:
    """``report SCENARIO``: run it and write DIR/report.html (one self-contained page)."""
    from .progress import ProgressBar
    from .report import write_report

    if _is_event_table(args.scenario):
        raise _UsageError(f"report: takes a scenario (a TOML file or a built-in name); got the event table "
                          f"{args.scenario!r}")
    options = _scenario_options(args)
    scenario = _load(args.scenario, **options)
    used = [f"--subjects {args.subjects}"] * (args.subjects is not None) + [f"--seed {args.seed}"] * (
        args.seed is not None) + [f"--set {k}={v}" for k, v in args.overrides]
    with ProgressBar(f"{scenario.name}") as bar:
        result, path = write_report(scenario, args.out, options=" ".join(used), progress=bar)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {path}")
    print(DISCLAIMER)
    return 0


def _cmd_run_parquet(args) -> int:
    """``run SCENARIO --format parquet [--workers K | --scheduler ADDRESS]`` (pkpd.distributed)."""
    from .distributed import BlockProgress, require, run_parquet
    from .progress import ProgressBar

    what = "--workers" if args.workers else "--scheduler" if args.scheduler else "--format parquet"
    require(what, dask=bool(args.workers or args.scheduler))
    if args.format != "parquet":
        raise _UsageError(f"{what}: applies with --format parquet only")
    if args.workers and args.scheduler:
        raise _UsageError("--workers and --scheduler: give one of them (a running cluster has its own workers)")
    options = _scenario_options(args)
    scenario = _load(args.scenario or DEFAULT_SCENARIO, **options)
    with ProgressBar(f"{scenario.name}") as bar:
        out = run_parquet(scenario, args.out, workers=args.workers, scheduler=args.scheduler, plot=args.plot,
                          progress=BlockProgress(bar, scenario))
    result = out.result
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    n, arms = scenario.subjects.n, len(scenario.arms)
    print(f"{scenario.name}: {arms} arm{'s' * (arms != 1)}, {n} subject{'s' * (n != 1)}, "
          f"{scenario.duration_h:g} h ({scenario.duration_h / 24.0:.3g} days)")
    print()
    print(result.table())
    print()
    if n > 1:
        print(f"medians over {n} subjects; 5th-95th percentiles and units in summary.csv")
    folder = out.folder if out.folder.endswith(os.sep) else out.folder + os.sep
    written = [os.path.basename(p) + ("/" if p == out.dataset_path else "")
               for p in (out.dataset_path, out.summary, out.figure) if p]
    print(f"wrote {folder}: {', '.join(written)} ({result.rows} time-course rows, {out.bytes / 1e6:.1f} MB, "
          f"{out.seconds:.1f} s)")
    print(DISCLAIMER)
    return 0


def _cmd_list(args) -> int:
    from .scenario import builtin_scenarios

    items = builtin_scenarios()
    width = max(len(name) for name, _ in items)
    for name, description in items:
        print(f"{name.ljust(width)}  {' '.join(description.split())}")
    return 0


def _cmd_show(args) -> int:
    from .scenario import builtin_text

    text = builtin_text(args.name)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _cmd_check(args) -> int:
    from .resources import check_disk, size_text
    from .run import default_output_folder, plan

    sc = _load(args.file)
    p = plan(sc)  # the run's resource estimate: a run check accepts is not refused for its size
    try:
        check_disk(default_output_folder(sc), p.csv_bytes, "timecourse.csv")
    except PkpdError as exc:
        raise type(exc)(f"{sc.source}: {exc}") from None
    arms = ", ".join(a.name for a in sc.arms)
    print(f"{sc.source}: valid: '{sc.name}', {sc.duration_h:g} h, {sc.subjects.n} subject"
          f"{'s' * (sc.subjects.n != 1)}, arms: {arms}; about {size_text(p.memory_bytes)} of memory, "
          f"timecourse.csv about {size_text(p.csv_bytes)} ({p.rows} rows)")
    return 0


def _cmd_parameters(args) -> int:
    from .parameters import PARAMETER_INFO

    rows = [(p.name, p.unit, f"{p.default:g}", p.meaning, p.basis) for p in PARAMETER_INFO.values()]
    widths = [max(len(r[i]) for r in rows + [("NAME", "UNIT", "DEFAULT")]) for i in range(3)]
    print(f"{'NAME'.ljust(widths[0])}  {'UNIT'.ljust(widths[1])}  {'DEFAULT'.rjust(widths[2])}  MEANING; SOURCE")
    for name, unit, default, meaning, basis in rows:
        print(f"{name.ljust(widths[0])}  {unit.ljust(widths[1])}  {default.rjust(widths[2])}  {meaning}; source: {basis}")
    return 0


#: Keyword of :func:`pkpd.taper_design.design_taper` -> the option that sets it.
_TAPER_OPTION = {"dose_mg": "--dose-mg", "every_h": "--every-h", "treatment_days": "--treatment-days",
                 "amount_mg": "--dose-mg", "threshold": "--threshold", "percentile": "--percentile",
                 "max_days": "--max-days", "steps": "--steps", "n": "--subjects", "seed": "--seed"}


def _cmd_taper(args) -> int:
    from .population import sample_population
    from .taper_design import design_taper, format_table, write_files

    try:
        population = sample_population(args.subjects, seed=args.seed, variability=True)
        design = design_taper((args.dose_mg, args.every_h, args.treatment_days), population=population,
                              threshold=args.threshold, percentile=args.percentile, max_days=args.max_days,
                              shapes=[("linear", args.steps), ("exponential", args.steps)])
    except PkpdError as exc:
        keyword, _, rest = str(exc).partition(": ")
        if keyword in _TAPER_OPTION:
            raise _UsageError(f"{_TAPER_OPTION[keyword]}: {rest}") from None
        raise
    print(f"taper after {args.dose_mg:g} mg every {args.every_h:g} h for {args.treatment_days:g} days; "
          f"{design.n_subjects} subject{'s' * (design.n_subjects != 1)} (seed {args.seed}), "
          f"{design.runs} runs in {design.seconds:.1f} s")
    print()
    print(format_table(design))
    print()
    print(design.answer())
    if args.out:
        csv_path, png_path = write_files(design, args.out)
        print(f"wrote {csv_path}, {png_path}")
    print(DISCLAIMER)
    return 0


_COMMANDS = {"run": _cmd_run, "list": _cmd_list, "show": _cmd_show, "check": _cmd_check,
             "parameters": _cmd_parameters, "events": _cmd_events,
             "taper": _cmd_taper, "report": _cmd_report}


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "error"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status.  Without ``argv`` (a command-line
    process: ``python -m pkpd``, the ``pkpd`` script) numba may skip its BLAS
    lookup (:func:`pkpd.kernel.skip_blas_lookup`)."""
    if argv is None:
        from . import kernel

        kernel.skip_blas_lookup()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return _COMMANDS[args.command](args)
    except _UsageError as exc:
        print(_one_line(str(exc)), file=sys.stderr)
        return 2
    except PkpdError as exc:
        print(_one_line(str(exc)), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): not an error of ours
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception:
        traceback.print_exc()
        print("pkpd: internal error (a bug in pkpd, not in your input); please report it with the traceback above",
              file=sys.stderr)
        return 1
