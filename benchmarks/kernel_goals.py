"""The compiled engine's goals of issue 12, measured: ``python -m benchmarks.kernel_goals [WHAT ...]``.

WHAT is any of ``threads``, ``one``, ``cold``, ``cli``, ``slider`` (default
all).  Each prints best-of-N wall times with the load average; ratios are
measured in the same run.  Nothing here is a timed test.

* ``threads``: ``pkpd.simulate(engine="numba")`` of the standard problem
  (plasma and excitability) at several sizes, at most one thread against at
  most two (:data:`pkpd.kernel.MAX_THREADS`), in one process.
* ``one``: one subject of the standard problem, numba against numpy.
* ``cold``: a fresh process importing pkpd and running one subject, numpy
  against numba (kernel loaded from the warm on-disk cache).
* ``cli``: ``python -m pkpd run`` of the standard population with daily
  outputs and ``--no-plot``, 10,000 subjects, in a fresh process per engine,
  against the scipy loop (``benchmarks/engines/scipy_loop.py``, 20 subjects of
  ``standard_daily``, scaled) timed in the same run.  The run's CPU time (user +
  system, all its threads) is printed too: on a busy machine it is steadier
  than the wall time.
* ``slider``: every ``pkpd.teaching.explore_*`` callback behind the
  notebooks' sliders (simulate and figure, matplotlib Agg), engine auto.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _standard(n: int):
    from . import problems

    p = problems.build("standard", n)
    return p, dict(duration_h=p.duration_h, parameters=p.parameters, population=p.population,
                   output_step_h=p.output_step_h, outputs=p.outputs)


def _best(f, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def threads(sizes=(256, 512, 1024, 10000), repeat: int = 5) -> None:
    import pkpd
    from pkpd import kernel

    for n in sizes:
        p, kw = _standard(n)
        pkpd.simulate(p.regimen, engine="numba", **kw)
        row = []
        for most in (1, 2):
            kernel.MAX_THREADS = most
            row.append(_best(lambda: pkpd.simulate(p.regimen, engine="numba", **kw), repeat))
        kernel.MAX_THREADS = 2
        print(f"threads: {n:6d} subjects  1 thread {row[0]:.4f} s  up to 2 threads {row[1]:.4f} s  "
              f"(best of {repeat}; {_load()})", flush=True)


def one(repeat: int = 30) -> None:
    import pkpd

    p, kw = _standard(1)
    out = {}
    for engine, k in (("numba", repeat), ("numpy", 5)):
        pkpd.simulate(p.regimen, engine=engine, **kw)
        out[engine] = _best(lambda: pkpd.simulate(p.regimen, engine=engine, **kw), k)
    print(f"one subject: numba {out['numba'] * 1e3:.2f} ms, numpy {out['numpy'] * 1e3:.1f} ms "
          f"(best of {repeat} and 5; {_load()})", flush=True)


_COLD = """
import time; t0 = time.perf_counter()
import pkpd
from benchmarks import problems
w = problems.WORKLOADS["standard"]
pkpd.simulate(w.regimen(), duration_h=w.duration_h, output_step_h=w.output_step_h,
              outputs=problems.TIMED_OUTPUTS, engine="{engine}")
print(time.perf_counter() - t0)
"""


def cold(repeat: int = 3) -> None:
    for engine in ("numpy", "numba"):
        times = []
        for _ in range(repeat + 1):  # the first run warms numba's on-disk cache (a first compile is not a cold start)
            r = subprocess.run([sys.executable, "-c", _COLD.format(engine=engine)], cwd=ROOT, check=True,
                               capture_output=True, text=True)
            times.append(float(r.stdout.strip().splitlines()[-1]))
        times = times[1:]
        print(f"cold start (fresh process: import pkpd, one subject): {engine} {min(times):.3f} s "
              f"(best of {repeat}; {_load()})", flush=True)


def cli(n: int = 10000, repeat: int = 3) -> None:
    from . import harness

    scenario = (ROOT / "pkpd" / "scenarios" / "standard-population.toml").read_text()
    scenario = scenario.replace("output_step_h = 0.5", "output_step_h = 24.0")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "standard-daily.toml"
        path.write_text(scenario.replace('name = "standard-population"', 'name = "standard-daily"'))
        walls, cpus = {}, {}
        for engine in ("numba", "numpy"):
            best = float("inf")
            for _ in range(repeat if engine == "numba" else 1):
                out = Path(tmp) / f"out-{engine}"
                shutil.rmtree(out, ignore_errors=True)
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "pkpd", "run", str(path), "--subjects", str(n), "--no-plot",
                                "--out", str(out)], cwd=ROOT, env=dict(os.environ, PKPD_ENGINE=engine), check=True,
                               stdout=subprocess.DEVNULL)
                wall = time.perf_counter() - t
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if wall < best:
                    best = wall
                    cpus[engine] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            walls[engine] = best
    case = harness.Case("standard_daily", "scipy_loop", n)
    case.warm_up()
    t = time.perf_counter()
    case.run()
    loop = (time.perf_counter() - t) * n / case.k
    for engine, wall in walls.items():
        print(f"cli: python -m pkpd run (daily outputs, --no-plot, {n} subjects, fresh process) PKPD_ENGINE={engine} "
              f"{wall:.2f} s (CPU {cpus[engine]:.2f} s); scipy loop {loop:.0f} s (scaled from {case.k} subjects): {loop / wall:.0f}x "
              f"({_load()})", flush=True)


def slider(repeat: int = 5) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pkpd import teaching

    for name in sorted(k for k in dir(teaching) if k.startswith("explore_")):
        f = getattr(teaching, name)
        f()
        plt.close("all")

        def call():
            f()
            plt.close("all")

        print(f"slider: teaching.{name}() {_best(call, repeat) * 1e3:.1f} ms (best of {repeat}, engine "
              f"{os.environ.get('PKPD_ENGINE', 'auto')}; {_load()})", flush=True)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    goals = {"threads": threads, "one": one, "cold": cold, "cli": cli, "slider": slider}
    unknown = [w for w in argv if w not in goals]
    if unknown:
        print(__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1], file=sys.stderr)
        return 0 if set(unknown) <= {"-h", "--help"} else 2
    for w in argv or list(goals):
        goals[w]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
