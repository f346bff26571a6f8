"""The compiled engine: the solver's step loop as one numba kernel.

Same algorithm as :func:`pkpd.solver.integrate` (the numpy reference), on
the system reduced by :func:`pkpd.solver.prepare`: exact linear part by
per-subject propagators (computed in the kernel with the same Taylor
scaling-and-squaring as :func:`pkpd.solver.expm_batch` and the same
squaring of half steps as :class:`pkpd.solver._Propagators`), 3-stage
collocation of the slow part solved exactly by Cramer's rule (the two
adaptations, whose rate is constant, by the inverse of their step's
collocation matrix, made once per distinct step as the numpy path does).  The slow
part's equations are not transcribed here: the kernel compiles the
elementwise functions of :mod:`pkpd.model` (``kd_units``,
``receptor_loss_coefficients``, ``inhibition_of``, ``occupancy_of``,
``adaptation_coefficients``) and reads per-subject values from
:func:`pkpd.model.slow_parameters`.  What this module does encode is the
model's *structure*: slow state 0 is receptor loss, read from the one
coupled linear row (A_csf); states 1 and 2 are first-order adaptations to
the drive ``I - I0``; and the readouts of :func:`pkpd.model.readout`
(:data:`READOUT_CODES`), computed at the recorded nodes so that no state
history is stored (tests/test_kernel.py compares every readout with numpy).

Subjects are processed in blocks of :data:`BLOCK` in lockstep (the inner
loops run over the subjects of a block, which LLVM vectorises).  The kernel
computes each block's propagators itself and writes the readouts asked for
straight into the caller's arrays.  Blocks of :data:`BLOCK` subjects run on
an entry point compiled for the size of the reduced system when there is
one (:func:`entry_point`): the whole step then runs subject by subject with
the states in registers, about 20 % faster, giving the same bits.  It is
compiled serial and ``nogil``: a large batch runs on a second Python thread
taking pieces of blocks in turn (:func:`threads_for`), a small one on the
calling thread with no thread switch.

numba is optional (``pip install 'pkpd[fast]'``).  Compiled code is cached
on disk under :func:`cache_dir`, in a directory named by a fingerprint of
this file, of :mod:`pkpd.model`, of numba's and Python's versions: editing
either module starts a fresh cache, so a stale kernel is never loaded (numba
alone would not notice a change in a function the kernel calls from another
file).  The kernel reads no module-level constant: the tableau and every
model constant are arguments.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import sys
import threading

import numpy as np

from . import model
from .errors import ParameterError
from .solver import _TAYLOR_DEGREE, _TAYLOR_NORM, NonFiniteError, SemiLinearSystem, prepare

#: Subjects integrated in lockstep by one thread, for large batches and small ones
#: (each value is one compiled specialisation of the kernel).
BLOCK = 64
SMALL_BLOCK = 8
#: Below this many subjects each is integrated alone (scalar code).
SCALAR_BELOW = 4
#: Subjects from which a second thread pays (standard problem, 2-core machine
#: with another process busy, ``python -m benchmarks.kernel_goals threads``:
#: 256 subjects 10.1 ms on one thread vs 10.4 ms on two, 512 subjects 20.6 ms
#: vs 12.4 ms, 10,000 subjects 0.36 s vs 0.20 s).  Threads take pieces of
#: blocks in turn, so a busy core slows the run no more than one thread would.
THREAD_MIN_SUBJECTS = 512
#: Most threads used (the kernel is memory-bound beyond two).
MAX_THREADS = 2
#: The line printed on standard error before a first compile.
COMPILE_NOTICE = "pkpd: compiling the numba kernel once (about 10 s of CPU); later runs load it from the cache"
#: The line printed before the first compile of an entry point sized for one system (:func:`entry_point`).
SIZED_NOTICE = ("pkpd: compiling the numba kernel for this system's size once ({name}, about 13 s of CPU); "
                "later runs load it from the cache")
#: Entry points of :mod:`pkpd._numba_kernel` by lanes (each compiled, and cached, on first use).
ENTRY_POINTS = {64: "kernel", 8: "kernel_small", 1: "kernel_one"}

_FAST_EXTRA = "pip install 'pkpd[fast]'"
_lock = threading.Lock()
_kernel = None
_announced: set = set()
_ready: set = set()  # entry points (names) already called in this process
_absent: set = set()  # entry points (names) found missing from the on-disk cache in this process


#: The engines :func:`choose` accepts (``engine=`` and ``$PKPD_ENGINE``).
ENGINES = ("auto", "numpy", "numba")
#: Environment variable choosing the engine when ``engine=`` is not given.
ENGINE_VARIABLE = "PKPD_ENGINE"
#: Environment variable that, set to 1, makes pkpd behave as if numba were
#: not installed (to exercise the fallback).
DISABLE_VARIABLE = "PKPD_DISABLE_NUMBA"
#: Work (subjects x integration nodes) from which "auto" pays for a first
#: compile (about 8 s of CPU measured, against about 3e-7 s per subject-node
#: for numpy).
AUTO_COMPILE_WORK = 5e7
#: Work from which "auto" loads a cached kernel (about 0.1 s with numba's
#: import, against about 5e-7 s per subject-node for numpy on small batches).
AUTO_LOAD_WORK = 1e6
#: Integration nodes from which "auto" loads a cached kernel whatever the
#: number of subjects: numpy pays about 2.5e-4 s per node on a small batch
#: (its per-step dispatch), so a notebook slider's run (3 to 60 days, 0.1 to
#: 0.45 s in numpy) pays for the load (about 0.1 s) at once and every later
#: move takes milliseconds.
AUTO_LOAD_NODES = 300


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


def choose(engine: str | None, work: float, nodes: int = 0) -> str:
    """The engine to run: ``"numpy"`` or ``"numba"``.

    ``engine`` is ``"numpy"`` (the reference), ``"numba"`` (the compiled
    kernel; ParameterError when numba is missing) or ``"auto"``; None reads
    ``$PKPD_ENGINE`` (default ``"auto"``).  ``"auto"`` takes numba when it is
    importable and either this process has loaded the kernel, the on-disk
    cache is warm and ``work`` (subjects x nodes) is at least
    :data:`AUTO_LOAD_WORK` or ``nodes`` at least :data:`AUTO_LOAD_NODES`, or
    ``work`` is at least :data:`AUTO_COMPILE_WORK` (enough to pay for a first
    compile); numpy otherwise.
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
    lanes = lanes_for(max(1, round(work / nodes))) if nodes else None
    if loaded() or work >= AUTO_COMPILE_WORK or (
            (work >= AUTO_LOAD_WORK or nodes >= AUTO_LOAD_NODES) and cache_is_warm(lanes)):
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


def cache_is_warm(lanes: int | str | None = None) -> bool:
    """Whether the compiled kernel for this code is on disk (so loading it is cheap):
    the entry point for ``lanes`` (see :func:`lanes_for`; or an entry point's name,
    see :func:`entry_point`), or all of :data:`ENTRY_POINTS`."""
    d = cache_dir()
    names = (ENTRY_POINTS.values() if lanes is None else
             (lanes,) if isinstance(lanes, str) else (ENTRY_POINTS[lanes],))
    return d.is_dir() and all(any(d.rglob(f"_numba_kernel.{k}-*.nbi")) and any(d.rglob(f"_numba_kernel.{k}-*.nbc"))
                             for k in names)


@contextlib.contextmanager
def _numba_cache():
    """numba's cache pointed at :func:`cache_dir` (read when a function is decorated)."""
    from numba import config

    saved = config.CACHE_DIR
    config.CACHE_DIR = str(cache_dir())
    try:
        yield
    finally:
        config.CACHE_DIR = saved


def _build():
    """Import the kernel module with numba's cache pointed at :func:`cache_dir`."""
    import importlib

    with _numba_cache():
        return importlib.import_module("pkpd._numba_kernel")


#: Whether numba's first load in this process skips its BLAS lookup (see
#: :func:`skip_blas_lookup`): set by the command line only.
SKIP_BLAS_LOOKUP = False


def skip_blas_lookup() -> None:
    """Let numba's first load in this process skip its BLAS lookup.

    For a process that runs nothing compiled but this package's kernel (the
    command line, :func:`pkpd.cli.main`).  When numba loads its first
    compiled function it checks for a BLAS by importing
    ``scipy.linalg.cython_blas``, which imports all of ``scipy.linalg``:
    0.23 s of the command line's one-second start, for a kernel that calls
    no BLAS.  Told to skip it, numba finds no BLAS, so numba's own
    ``np.dot`` and ``np.linalg`` are unavailable to compiled code in the
    process; scipy itself stays importable.
    """
    global SKIP_BLAS_LOOKUP
    SKIP_BLAS_LOOKUP = True


@contextlib.contextmanager
def _blas_lookup_skipped():
    """Hide ``scipy.linalg.cython_blas`` while numba loads (with :data:`SKIP_BLAS_LOOKUP`)."""
    name = "scipy.linalg.cython_blas"
    if not SKIP_BLAS_LOOKUP or "numba.np.arraymath" in sys.modules or name in sys.modules:
        yield
        return
    sys.modules[name] = None  # import of it fails at once, before scipy.linalg is imported
    try:
        yield
    finally:
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]


def get_kernel():
    """The kernel's entry points by lanes (imported once per process).

    Nothing is compiled here: each entry point compiles, or loads from the
    cache, on its first call (:func:`announce_compile` says so beforehand).
    """
    global _kernel
    require()
    with _lock:
        if _kernel is None:
            _kernel = _build()
    return _kernel.KERNELS


def entry_point(lanes: int, nl: int, m: int, may_compile: bool = True) -> tuple:
    """``(entry point, name)`` integrating blocks of ``lanes`` subjects of a reduced system of
    ``nl`` linear states and ``m`` inputs.

    Blocks of :data:`BLOCK` take the entry point compiled for that size
    (:func:`pkpd._numba_kernel.sized_kernel`: about 20 % faster on the
    standard problem, as its states stay in registers) when this process
    has it, the on-disk cache holds it, or ``may_compile`` (:func:`may_compile`);
    otherwise, and for smaller blocks, the entry point for any size
    (:data:`ENTRY_POINTS`).
    """
    get_kernel()
    if lanes == BLOCK:
        name = _kernel.sized_name(nl, m)
        if name in _ready or may_compile or _in_cache(name):
            with _lock, _numba_cache():
                return _kernel.sized_kernel(nl, m), name
    return _kernel.KERNELS[lanes], ENTRY_POINTS[lanes]


def _in_cache(name: str) -> bool:
    """:func:`cache_is_warm` for an entry point, remembered when it is not (the lookup hashes
    the code and walks the cache, about 5 ms: too much for every chunk of a run)."""
    if name in _absent:
        return False
    if cache_is_warm(name):
        return True
    _absent.add(name)
    return False


def may_compile(engine: str | None, work: float) -> bool:
    """Whether a run may compile an entry point it lacks (one sized for its system, see
    :func:`entry_point`): when the numba engine is asked for by name (``engine="numba"``,
    or ``$PKPD_ENGINE=numba`` when ``engine`` is None) or the run is large enough to pay
    for a first compile (``work``, subjects x nodes, at least :data:`AUTO_COMPILE_WORK`)."""
    if engine is None:
        engine = os.environ.get(ENGINE_VARIABLE, "") or "auto"
    return engine == "numba" or work >= AUTO_COMPILE_WORK


def announce_compile(entry, name: str) -> None:
    """Print a line on stderr before the first call of ``entry`` (the entry point
    ``name``) when it will compile rather than load from the cache: :data:`COMPILE_NOTICE`
    once per process for the entry points of any size, :data:`SIZED_NOTICE` once per size."""
    if getattr(entry, "signatures", True) or cache_is_warm(name):
        return
    sized = name not in ENTRY_POINTS.values()
    said = name if sized else "any size"
    if said not in _announced:
        print(SIZED_NOTICE.format(name=name) if sized else COMPILE_NOTICE, file=sys.stderr, flush=True)
        _announced.add(said)


def lanes_for(n: int) -> int:
    """Subjects per block: 1 below :data:`SCALAR_BELOW` subjects (scalar code: a
    subject alone costs no padding lanes), :data:`SMALL_BLOCK` below :data:`BLOCK`,
    :data:`BLOCK` otherwise."""
    return 1 if n < SCALAR_BELOW else SMALL_BLOCK if n < BLOCK else BLOCK


def threads_for(n: int) -> int:
    """Threads for a batch of ``n`` subjects: one below :data:`THREAD_MIN_SUBJECTS`, else up to two."""
    if n < THREAD_MIN_SUBJECTS:
        return 1
    return max(1, min(MAX_THREADS, os.cpu_count() or 1, -(-n // BLOCK)))


#: Readouts the kernel computes itself, by name (codes of :mod:`pkpd._numba_kernel`).
READOUT_CODES = {
    "plasma_mg_per_l": 0, "csf_mg_per_l": 1, "occupancy": 2, "receptor_density": 3, "adaptation": 4,
    "inhibition": 5, "effect": 6, "excitability": 7, "cns_depression": 8, "lumbar_csf_mg_per_l": 9,
    "biophase_mg_per_l": 10,
}
#: Per-subject values the readouts read besides :data:`pkpd.model.SLOW_PARAMETERS`
#: (reciprocals of what :func:`pkpd.model.readout` divides by: a multiplication
#: per record instead of a division, within an ulp of numpy's).
READOUT_PARAMETERS = ("1/V_c", "1/V_lum", "1/V_csf", "EC50_cns", "n_cns", "1/(1-I0)")
#: Linear states the readouts read, in the kernel's order.
READOUT_STATE_ORDER = (model.C, model.CSF, model.LUM, model.CNS)


def readout_parameters(ind) -> np.ndarray:
    """The values of :data:`READOUT_PARAMETERS`, shape (6, n)."""
    with np.errstate(all="ignore"):
        rows = [1.0 / np.asarray(ind["V_c"], float), 1.0 / np.asarray(ind["V_lum"], float),
                1.0 / np.asarray(ind["V_csf"], float), np.asarray(ind["EC50_cns"], float),
                np.asarray(ind["n_cns"], float), 1.0 / (1.0 - model.baseline_inhibition(ind))]
    return np.ascontiguousarray(np.stack(rows))


_plans: dict = {}


def _step_plan(nodes: np.ndarray):
    """:func:`_make_step_plan`, remembered for the last few grids (a slider re-runs one grid)."""
    key = nodes.tobytes()
    hit = _plans.get(key)
    if hit is None:
        if len(_plans) >= 8:
            _plans.pop(next(iter(_plans)))
        hit = _plans[key] = _make_step_plan(nodes)
    return hit


def _make_step_plan(nodes: np.ndarray):
    """Distinct step lengths (shortest first), how each one's propagators are made, each step's index,
    each step's length and the length of each distinct length's first step.

    The same choices as :meth:`pkpd.solver._Propagators.get` called in the
    order of :meth:`~pkpd.solver._Propagators.prepare`: a step whose half
    is known (within ``_MAX_SQUARINGS`` successive squarings) is that half
    squared, others are exponentials.
    """
    from .solver import _MAX_SQUARINGS, _Propagators

    steps = np.diff(nodes)
    keys = np.unique(np.round(steps, 12))
    index = {float(h): i for i, h in enumerate(keys)}
    depth: dict = {}
    parent = np.full(keys.size, -1, np.int64)
    for i, h in enumerate(keys):
        key = _Propagators._key(float(h))
        half = _Propagators._key(key / 2.0)
        d = depth.get(half, _MAX_SQUARINGS) + 1
        if half in depth and d <= _MAX_SQUARINGS:
            parent[i] = index[half]
        else:
            d = 0
        depth[key] = d
    step_id = np.searchsorted(keys, np.round(steps, 12)).astype(np.int64)
    first = np.unique(step_id, return_index=True)[1]  # each length's first step: where numpy makes its inverses
    return keys, parent, step_id, steps, steps[first]


def flat_jumps(schedule, nodes: np.ndarray) -> tuple:
    """A schedule's boluses as flat arrays ``(subject, row, node, amount)`` for :func:`integrate`.

    The same placement on the node grid as :meth:`pkpd.events.Schedule.solver_input`
    (``node_of``), without grouping by node (the kernel walks each subject's own).
    """
    subject = np.asarray(schedule.bolus_subject, np.int64)
    at = _repeated_node_of(nodes, np.asarray(schedule.bolus_time, float), subject)
    return subject, np.asarray(schedule.bolus_state, np.int64), at, np.asarray(schedule.bolus_amount, float)


def _repeated_node_of(nodes: np.ndarray, times: np.ndarray, subject: np.ndarray) -> np.ndarray:
    """:func:`pkpd.solver.node_of` (as int64), looked up once when ``times`` is one subject's
    times over and over (a population sharing a regimen and a lag: 630,000 doses of the
    standard problem, 7 ms of binary searches, against 0.5 ms to see the repetition)."""
    from .solver import node_of

    m = int(np.argmax(subject != subject[0])) if times.size > 4096 else 0  # the first subject's doses
    if m > 0 and times.size % m == 0:
        rows = times.reshape(-1, m)
        if (rows == rows[0]).all():
            return np.tile(node_of(nodes, rows[0]).astype(np.int64), rows.shape[0])
    return node_of(nodes, times).astype(np.int64)


def _jumps_by_subject(jumps, keep, nl_full: int, n: int):
    """Jumps as arrays sorted by subject, then node (each block walks its own subjects).

    ``jumps`` is the solver's mapping (node -> (rows, subjects, amounts)) or
    :func:`flat_jumps`; rows are renumbered to the kept states (``keep``), jumps
    into dropped states are dropped.
    """
    if isinstance(jumps, tuple):
        subj, rows, kk, amt = jumps
    elif jumps:
        keys = sorted(jumps)
        kk = np.concatenate([np.full(len(jumps[k][0]), k, np.int64) for k in keys])
        rows = np.concatenate([np.asarray(jumps[k][0], np.int64) for k in keys])
        subj = np.concatenate([np.asarray(jumps[k][1], np.int64) for k in keys])
        amt = np.concatenate([np.asarray(jumps[k][2], float) for k in keys])
    else:
        subj = rows = kk = np.zeros(0, np.int64)
        amt = np.zeros(0)
    new_row = np.full(nl_full, -1, np.int64)
    new_row[keep] = np.arange(len(keep))
    rows = new_row[rows]
    if rows.size and rows.min() < 0:
        sel = rows >= 0
        subj, rows, kk, amt = subj[sel], rows[sel], kk[sel], amt[sel]
    key = subj * (int(kk.max(initial=0)) + 1) + kk
    if key.size > 1 and not np.all(key[1:] >= key[:-1]):  # already in order for one regimen and route
        order = np.argsort(key, kind="stable")  # same-node jumps keep their order
        subj, rows, kk, amt = subj[order], rows[order], kk[order], amt[order]
    j_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(subj, minlength=n), out=j_ptr[1:])
    return j_ptr, kk, rows, amt


def _offset(view: np.ndarray, base: np.ndarray) -> int:
    return (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // base.itemsize


def _run_blocks(kernel, n_blocks: int, threads: int, args: tuple) -> None:
    """Call the kernel on every block: serially, or on ``threads`` threads taking pieces in turn."""
    if threads <= 1 or n_blocks < 2:
        kernel(0, n_blocks, *args)
        return
    size = max(1, -(-n_blocks // (4 * threads)))  # small pieces: a busy core gets fewer of them
    pieces = [(b, min(n_blocks, b + size)) for b in range(0, n_blocks, size)]
    lock = threading.Lock()
    errors = []

    def work():
        while True:
            with lock:
                if not pieces or errors:
                    return
                b0, b1 = pieces.pop(0)
            try:
                kernel(b0, b1, *args)  # releases the GIL (nogil)
            except BaseException as exc:  # pragma: no cover - re-raised below
                errors.append(exc)
                return

    helpers = [threading.Thread(target=work, daemon=True) for _ in range(threads - 1)]
    for t in helpers:
        t.start()
    work()
    for t in helpers:
        t.join()
    if errors:
        raise errors[0]


_EMPTY3 = np.empty((0, 0, 0))


def _load(entry, name: str, args: tuple) -> None:
    """The first call of an entry point in this process compiles it or loads it from the cache:
    made on no blocks, in this thread, after :func:`announce_compile`."""
    if name not in _ready:
        announce_compile(entry, name)
        with _blas_lookup_skipped():
            entry(0, 0, *args)
        _ready.add(name)


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
    readouts=(),
    readout_values: np.ndarray | None = None,
    out_base: np.ndarray | None = None,
    record_states: bool = True,
    lanes: int | None = None,
    may_compile: bool = True,
):
    """As :func:`pkpd.solver.integrate` for the reference model, compiled.

    ``jumps`` may also be :func:`flat_jumps` (cheaper to build).
    ``system.coefficients`` is not called: the slow part is the model's,
    with per-subject values ``slow_parameters`` (:func:`pkpd.model.slow_parameters`).
    ``threads`` overrides :func:`threads_for`.

    ``readouts`` lists ``(name, columns, target)``: readout ``name`` (a key
    of :data:`READOUT_CODES`) of every subject is written at each recorded
    node ``r`` into ``target[:, columns[r]]`` (nothing where ``columns[r]``
    is -1); ``target`` (n, T) is a C-ordered view into the 1-D array
    ``out_base``, ``readout_values`` (:func:`readout_parameters`) gives the
    values they read.  With ``record_states=False`` the states are not
    recorded and ``(None, None)`` is returned.  ``may_compile``: see :func:`entry_point`.
    """
    nl_full, _, n = system.B.shape
    if system.n_slow != len(model.SLOW_STATES) or tuple(system.coupled_rows) != model.COUPLED_STATES:
        raise ValueError("the compiled kernel integrates the reference model's slow part only")
    if isinstance(jumps, tuple):  # flat_jumps: prepare needs only the rows they reach
        reached = np.flatnonzero(np.bincount(jumps[1], minlength=nl_full))  # the rows, sorted (np.unique)
        pre_jumps = {0: (reached, np.zeros(reached.size, np.int64), np.ones(reached.size))} if reached.size else {}
    else:
        pre_jumps = jumps
    pre = prepare(system, nodes, jumps=pre_jumps, inputs=inputs, record_rows=record_rows, x0=x0, method=method,
                  propagators=False)
    red = pre.system
    nl, m, _ = red.B.shape
    tab = pre.tableau
    stiffly = bool(tab.c[-1] == 1.0 and np.array_equal(tab.b, tab.a[-1]))
    keys, parent, step_id, steps, h_first = _step_plan(np.asarray(nodes, float))
    gaps = np.diff(np.concatenate([[0.0], tab.c, [1.0]]))
    coupled = red.coupled_rows[0] if red.coupled_rows else -1
    j_ptr, kk, rows, amt = _jumps_by_subject(jumps, pre.keep, nl_full, n)
    jump_at = np.zeros(len(nodes) + 1, np.bool_)
    jump_at[kk] = True
    in_node = np.array(sorted(pre.inputs), np.int64)
    in_val = np.ascontiguousarray(np.stack([pre.inputs[k] for k in in_node]) if in_node.size
                                  else np.zeros((0, m, n)), dtype=float)
    record_index = np.asarray(record_index, np.int64)
    n_rec = len(record_index)
    if not np.all(np.diff(record_index) >= 0):
        raise ValueError("record_index must be increasing")
    given = (x_out, y_out)
    if record_states:
        if x_out is None or not x_out.flags.c_contiguous:
            x_out = np.empty((len(record_rows), n_rec, n))
        if y_out is None or not y_out.flags.c_contiguous:
            y_out = np.empty((len(model.SLOW_STATES), n_rec, n))
        x_out[[j for j in range(len(record_rows)) if j not in pre.live]] = 0.0
        xk, yk = x_out, y_out
    else:
        xk = yk = _EMPTY3
    position = {state: j for j, state in enumerate(pre.keep)}
    ro_states = np.array([position.get(s, -1) for s in READOUT_STATE_ORDER], np.int64)
    if readouts:
        ro_code = np.array([READOUT_CODES[name] for name, _, _ in readouts], np.int64)
        rec_col = np.ascontiguousarray(np.stack([np.asarray(cols, np.int64) for _, cols, _ in readouts]))
        for _, _, target in readouts:
            if target.shape[0] != n or target.strides[1] != 8 or not np.may_share_memory(target, out_base):
                raise ValueError("readout targets must be (n, T) row-major views of out_base")
        slot_off = np.array([_offset(t, out_base) for _, _, t in readouts], np.int64)
        slot_stride = np.array([t.strides[0] // 8 for _, _, t in readouts], np.int64)
        rvals = np.ascontiguousarray(readout_values, dtype=float)
        base = out_base
    else:
        ro_code = slot_off = slot_stride = np.zeros(0, np.int64)
        rec_col = np.zeros((0, n_rec), np.int64)
        rvals = np.zeros((len(READOUT_PARAMETERS), n))
        base = np.zeros(0)
    bad = np.zeros(n, np.bool_)
    lanes = lanes_for(n) if lanes is None else int(lanes)
    n_blocks = -(-n // lanes)
    args = (np.ascontiguousarray(red.A, dtype=float), np.ascontiguousarray(red.B, dtype=float),
            keys, parent, gaps, int(coupled), step_id, steps, h_first, jump_at, j_ptr, kk, rows, amt, in_node, in_val,
            record_index, np.ascontiguousarray(pre.z0), np.ascontiguousarray(y0, dtype=float),
            np.ascontiguousarray(slow_parameters, dtype=float), np.ascontiguousarray(tab.a),
            np.ascontiguousarray(tab.b), stiffly, np.asarray(pre.rec_rows, np.int64),
            np.asarray(pre.live, np.int64), xk, yk, ro_code, ro_states, rvals, base, slot_off, slot_stride,
            rec_col, _TAYLOR_DEGREE, _TAYLOR_NORM, bad)
    entry, name = entry_point(lanes, nl, m, may_compile)
    first = name not in _ready
    _load(entry, name, args)
    if first and name != ENTRY_POINTS[lanes] and ENTRY_POINTS[lanes] not in _ready and not cache_is_warm(lanes):
        # sized: the entry point for any size is compiled too when the cache lacks it, as
        # "auto" looks for that one (a later run of another size then never waits for a compile)
        _load(get_kernel()[lanes], ENTRY_POINTS[lanes], args)
    with np.errstate(all="ignore"):
        _run_blocks(entry, n_blocks, threads_for(n) if threads is None else int(threads), args)
    if stats is not None:
        stats["exponentials"] = int(keys.size)
    if bad.any():
        raise NonFiniteError(np.flatnonzero(bad))
    if not record_states:
        return None, None
    for mine, theirs in zip((x_out, y_out), given):
        if theirs is not None and theirs is not mine:
            theirs[...] = mine
    return (given[0] if given[0] is not None else x_out), (given[1] if given[1] is not None else y_out)
