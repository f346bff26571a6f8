"""Where does pkpd's time go?  ``python -m benchmarks.profile_pkpd [WORKLOAD] [N] [ENGINE]``.

Runs ``pkpd.simulate`` on one workload under cProfile (after an untimed
warm-up) and prints the functions with the most time of their own, then
by cumulative time.
"""

from __future__ import annotations

import cProfile
import pstats
import sys

from . import harness


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    workload = argv[0] if argv else "standard"
    n = int(argv[1]) if len(argv) > 1 else 10000
    engine = argv[2] if len(argv) > 2 else "pkpd"  # or pkpd_numba
    case = harness.Case(workload, engine, n)
    case.warm_up()
    prof = cProfile.Profile()
    prof.enable()
    case.run()
    prof.disable()
    stats = pstats.Stats(prof, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
