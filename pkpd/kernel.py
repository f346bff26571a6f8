"""The compiled engine: the solver's step loop as one numba kernel.

Same algorithm and same prepared inputs as :func:`pkpd.solver.integrate`
(the numpy reference): exact linear part by the per-subject propagators of
:func:`pkpd.solver.prepare`, 3-stage collocation of the slow part solved
exactly by Cramer's rule.  The slow part's equations are not transcribed
here: the kernel compiles the elementwise functions of :mod:`pkpd.model`
(``kd_units``, ``receptor_loss_coefficients``, ``inhibition_of``,
``adaptation_coefficients``) and reads per-subject values from
:func:`pkpd.model.slow_parameters`.  What this module does encode is the
model's *structure*: slow state 0 is receptor loss, read from the one
coupled linear row (A_csf); states 1 and 2 are first-order adaptations to
the drive ``I - I0``.

Subjects are processed in blocks of :data:`BLOCK` in lockstep (the inner
loops run over the subjects of a block, which LLVM vectorises), blocks in
parallel with ``numba.prange``.

numba is optional (``pip install 'pkpd[fast]'``).  Compiled code is cached
on disk under :func:`cache_dir`, in a directory named by a fingerprint of
this file, of :mod:`pkpd.model`, of numba's and Python's versions: editing
either module starts a fresh cache, so a stale kernel is never loaded (numba
alone would not notice a change in a function the kernel calls from another
file).  The kernel reads no module-level constant: the tableau and every
model constant are arguments.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import sys
import threading

import numpy as np

from . import model
from .errors import ParameterError
from .solver import SemiLinearSystem, check_finite, prepare

#: Subjects integrated in lockstep by one thread.
BLOCK = 64
#: Subjects from which a second thread pays (standard problem, busy 2-core
#: machine: 256 subjects 0.054 s serial vs 0.079 s on two threads; 1024
#: subjects 0.24 s vs 0.13 s).
THREAD_MIN_SUBJECTS = 512
#: Most threads used (the kernel is memory-bound beyond two).
MAX_THREADS = 2
#: The line printed on standard error before a first compile.
COMPILE_NOTICE = "pkpd: compiling the numba kernel once (about 15 s of CPU); later runs load it from the cache"

_FAST_EXTRA = "pip install 'pkpd[fast]'"
_lock = threading.Lock()
_kernel = None


#: The engines :func:`choose` accepts (``engine=`` and ``$PKPD_ENGINE``).
ENGINES = ("auto", "numpy", "numba")
#: Environment variable choosing the engine when ``engine=`` is not given.
ENGINE_VARIABLE = "PKPD_ENGINE"
#: Environment variable that, set to 1, makes pkpd behave as if numba were
#: not installed (to exercise the fallback).
DISABLE_VARIABLE = "PKPD_DISABLE_NUMBA"
#: Work (subjects x integration nodes) from which "auto" pays for a first
#: compile (about 15 s of CPU measured, against about 3e-7 s per subject-node
#: for numpy).
AUTO_COMPILE_WORK = 5e7
#: Work from which "auto" loads a cached kernel (about 0.3-0.5 s with numba's
#: import, against about 5e-7 s per subject-node for numpy on small batches).
AUTO_LOAD_WORK = 1e6


def available() -> bool:
    """Whether numba imports (``$PKPD_DISABLE_NUMBA=1`` pretends it does not)."""
    if os.environ.get(DISABLE_VARIABLE, "") not in ("", "0"):
        return False
    try:
        import numba  # noqa: F401
    except Exception:
        return False
    return True


def loaded() -> bool:
    """Whether this process already holds the compiled kernel."""
    return _kernel is not None


def choose(engine: str | None, work: float) -> str:
    """The engine to run: ``"numpy"`` or ``"numba"``.

    ``engine`` is ``"numpy"`` (the reference), ``"numba"`` (the compiled
    kernel; ParameterError when numba is missing) or ``"auto"``; None reads
    ``$PKPD_ENGINE`` (default ``"auto"``).  ``"auto"`` takes numba when it is
    importable and either this process has loaded the kernel, the on-disk
    cache is warm and ``work`` (subjects x nodes) is at least
    :data:`AUTO_LOAD_WORK`, or ``work`` is at least :data:`AUTO_COMPILE_WORK`
    (enough to pay for a first compile); numpy otherwise.
    """
    where = "engine"
    if engine is None:
        engine, where = os.environ.get(ENGINE_VARIABLE, "") or "auto", f"${ENGINE_VARIABLE}"
    if engine not in ENGINES:
        raise ParameterError(f"{where}: expected one of {', '.join(ENGINES)}; got {engine!r}")
    if engine == "numpy":
        return "numpy"
    if engine == "numba":
        require()
        return "numba"
    if not available():
        return "numpy"
    if loaded() or work >= AUTO_COMPILE_WORK or (work >= AUTO_LOAD_WORK and cache_is_warm()):
        return "numba"
    return "numpy"


def require() -> None:
    """Raise ParameterError naming the extra to install when numba is missing."""
    if not available():
        raise ParameterError(f"engine='numba' needs numba, which is not installed: {_FAST_EXTRA}")


def fingerprint() -> str:
    """Hash of everything the compiled code depends on."""
    import numba

    h = hashlib.sha256()
    for path in (pathlib.Path(__file__), pathlib.Path(__file__).with_name("_numba_kernel.py"),
                 pathlib.Path(model.__file__)):
        h.update(path.read_bytes())
    h.update(f"{numba.__version__} {sys.version} {np.__version__}".encode())
    return h.hexdigest()[:16]


def cache_dir() -> pathlib.Path:
    """Where compiled kernels are cached: ``$PKPD_CACHE_DIR`` or ``~/.cache/pkpd``, then ``numba-<fingerprint>``."""
    base = os.environ.get("PKPD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "pkpd")
    return pathlib.Path(base) / f"numba-{fingerprint()}"


def cache_is_warm() -> bool:
    """Whether a compiled kernel for this code is on disk (so loading it is cheap)."""
    d = cache_dir()
    return d.is_dir() and any(d.rglob("_numba_kernel.kernel-*.nbi")) and any(d.rglob("_numba_kernel.kernel-*.nbc"))


def _build():
    """Import the kernel module with numba's cache pointed at :func:`cache_dir`."""
    import importlib

    from numba import config

    saved = config.CACHE_DIR
    config.CACHE_DIR = str(cache_dir())  # read when caching is enabled, i.e. at decoration
    try:
        mod = importlib.import_module("pkpd._numba_kernel")
    finally:
        config.CACHE_DIR = saved
    return mod.kernel


def get_kernel(notify: bool = True):
    """The compiled kernel (built once per process; says so on stderr before a first compile)."""
    global _kernel
    require()
    with _lock:
        if _kernel is None:
            if notify and not cache_is_warm():
                print(COMPILE_NOTICE, file=sys.stderr, flush=True)
            _kernel = _build()
    return _kernel


def threads_for(n: int) -> int:
    """Threads for a batch of ``n`` subjects: one below :data:`THREAD_MIN_SUBJECTS`, else up to two."""
    import numba

    if n < THREAD_MIN_SUBJECTS:
        return 1
    return max(1, min(MAX_THREADS, numba.config.NUMBA_NUM_THREADS, n // BLOCK))


def integrate(
    system: SemiLinearSystem,
    nodes: np.ndarray,
    *,
    slow_parameters: np.ndarray,
    jumps,
    inputs,
    record_index: np.ndarray,
    record_rows: tuple[int, ...],
    y0: np.ndarray,
    method=None,
    x_out: np.ndarray | None = None,
    y_out: np.ndarray | None = None,
    stats: dict | None = None,
    x0: np.ndarray | None = None,
    threads: int | None = None,
):
    """As :func:`pkpd.solver.integrate` for the reference model, compiled.

    ``system.coefficients`` is not called: the slow part is the model's,
    with per-subject values ``slow_parameters`` (:func:`pkpd.model.slow_parameters`).
    ``threads`` overrides :func:`threads_for`.
    """
    import numba

    kernel = get_kernel()
    nl_full, _, n = system.B.shape
    if system.n_slow != len(model.SLOW_STATES) or tuple(system.coupled_rows) != model.COUPLED_STATES:
        raise ValueError("the compiled kernel integrates the reference model's slow part only")
    pre = prepare(system, nodes, jumps=jumps, inputs=inputs, record_rows=record_rows, x0=x0, method=method)
    red = pre.system
    nl, m, _ = red.B.shape
    tab = pre.tableau
    stiffly = bool(tab.c[-1] == 1.0 and np.array_equal(tab.b, tab.a[-1]))
    steps = np.diff(nodes)
    keys = np.round(steps, 12)
    distinct, step_id = np.unique(keys, return_inverse=True)
    hs = np.empty(distinct.size)
    r = len(red.coupled_rows)
    full = np.empty((distinct.size, nl, nl + m, n))
    stage = np.empty((distinct.size, 3, r, nl + m, n))
    for s, hk in enumerate(distinct):
        first = int(np.flatnonzero(keys == hk)[0])
        hs[s] = steps[first]  # the numpy path uses each step's own length in the collocation
        full[s], stage[s] = pre.props.get(float(steps[first]))
    # jumps, sorted by subject then node (each block walks its own subjects)
    if pre.jumps:
        kk = np.concatenate([np.full(len(v[0]), k, np.int64) for k, v in pre.jumps.items()])
        rows = np.concatenate([np.asarray(v[0], np.int64) for v in pre.jumps.values()])
        subj = np.concatenate([np.asarray(v[1], np.int64) for v in pre.jumps.values()])
        amt = np.concatenate([np.asarray(v[2], float) for v in pre.jumps.values()])
        order = np.lexsort((kk, subj))
        kk, rows, subj, amt = kk[order], rows[order], subj[order], amt[order]
        j_ptr = np.searchsorted(subj, np.arange(n + 1)).astype(np.int64)
    else:
        kk = rows = np.zeros(0, np.int64)
        amt = np.zeros(0)
        j_ptr = np.zeros(n + 1, np.int64)
    in_node = np.array(sorted(pre.inputs), np.int64)
    in_val = np.ascontiguousarray(np.stack([pre.inputs[k] for k in in_node]) if in_node.size
                                  else np.zeros((0, m, n)), dtype=float)
    n_rec = len(record_index)
    x_rec = np.empty((len(record_rows), n_rec, n)) if x_out is None else x_out
    y_rec = np.empty((len(model.SLOW_STATES), n_rec, n)) if y_out is None else y_out
    dead = [j for j in range(len(record_rows)) if j not in pre.live]
    x_rec[dead] = 0.0
    if not np.all(np.diff(record_index) >= 0):
        raise ValueError("record_index must be increasing")
    if threads is None:
        threads = threads_for(n)
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        with np.errstate(all="ignore"):
            kernel(step_id.astype(np.int64), hs, full, stage, j_ptr, kk, rows, amt, in_node, in_val,
                   np.asarray(record_index, np.int64), np.asarray(pre.rec_rows, np.int64),
                   np.asarray(pre.live, np.int64), np.ascontiguousarray(pre.z0),
                   np.ascontiguousarray(y0, dtype=float), np.ascontiguousarray(slow_parameters, dtype=float),
                   np.ascontiguousarray(tab.a), np.ascontiguousarray(tab.b), stiffly, x_rec, y_rec, BLOCK)
    finally:
        numba.set_num_threads(before)
    if stats is not None:
        stats["exponentials"] = len(pre.props._raw)
    check_finite(x_rec, y_rec)
    return x_rec, y_rec
