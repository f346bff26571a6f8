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
#: Subjects from which a second thread pays (measured: below it the
#: threading overhead is comparable to the work).
THREAD_MIN_SUBJECTS = 512
#: Most threads used (the kernel is memory-bound beyond two).
MAX_THREADS = 2
#: The line printed on standard error before a first compile.
COMPILE_NOTICE = "pkpd: compiling the numba kernel once (about 5 s); later runs load it from the cache"

_FAST_EXTRA = "pip install 'pkpd[fast]'"
_lock = threading.Lock()
_kernel = None


def available() -> bool:
    """Whether numba imports (and ``PKPD_ENGINE`` does not force numpy away from it)."""
    try:
        import numba  # noqa: F401
    except Exception:
        return False
    return True


def require() -> None:
    """Raise ParameterError naming the extra to install when numba is missing."""
    if not available():
        raise ParameterError(f"engine='numba' needs numba, which is not installed: {_FAST_EXTRA}")


def fingerprint() -> str:
    """Hash of everything the compiled code depends on."""
    import numba

    h = hashlib.sha256()
    for mod in (sys.modules[__name__], model):
        h.update(pathlib.Path(mod.__file__).read_bytes())
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
    return d.is_dir() and any(d.rglob("*_kernel*.nbi")) and any(d.rglob("*_kernel*.nbc"))


def _build():
    """Compile-on-first-call dispatcher of the kernel, its cache in :func:`cache_dir`."""
    import numba
    from numba import config

    from numba.extending import register_jitable

    # The model's own functions, callable from compiled code (and from one
    # another: receptor_loss_coefficients calls occupancy_of).
    for f in (model.kd_units, model.occupancy_of, model.inhibition_of, model.receptor_loss_coefficients,
              model.adaptation_coefficients):
        register_jitable(f)
    loss = numba.njit(model.receptor_loss_coefficients)
    adapt = numba.njit(model.adaptation_coefficients)
    inhib = numba.njit(model.inhibition_of)
    kd = numba.njit(model.kd_units)

    def _kernel(step_id, hs, full, stage, j_ptr, j_node, j_row, j_amt, in_node, in_val,
                rec_index, rec_src, rec_dst, z0, y0, prm, tab_a, tab_b, stiffly, x_out, y_out, block):
        na, n = z0.shape
        nl = full.shape[1]
        m = na - nl
        n_steps = step_id.shape[0]
        n_rec = rec_index.shape[0]
        coupled = stage.shape[2] > 0
        n_blocks = (n + block - 1) // block
        for bi in numba.prange(n_blocks):
            j0 = bi * block
            nb = min(n, j0 + block) - j0
            z = np.empty((na, nb))
            znew = np.empty((nl, nb))
            y = np.empty((3, nb))
            xs = np.zeros((3, nb))
            cur = np.empty(nb, np.int64)
            for j in range(nb):
                for a in range(na):
                    z[a, j] = z0[a, j0 + j]
                for i in range(3):
                    y[i, j] = y0[i, j0 + j]
                cur[j] = j_ptr[j0 + j]
            ip = 0
            rp = 0
            for k in range(n_steps + 1):
                for j in range(nb):  # jumps, in node order per subject
                    c = cur[j]
                    end = j_ptr[j0 + j + 1]
                    while c < end and j_node[c] == k:
                        z[j_row[c], j] += j_amt[c]
                        c += 1
                    cur[j] = c
                if ip < in_node.shape[0] and in_node[ip] == k:
                    for a in range(m):
                        for j in range(nb):
                            z[nl + a, j] = in_val[ip, a, j0 + j]
                    ip += 1
                while rp < n_rec and rec_index[rp] == k:
                    for r in range(rec_src.shape[0]):
                        for j in range(nb):
                            x_out[rec_dst[r], rp, j0 + j] = z[rec_src[r], j]
                    for i in range(3):
                        for j in range(nb):
                            y_out[i, rp, j0 + j] = y[i, j]
                    rp += 1
                if k == n_steps:
                    break
                s = step_id[k]
                h = hs[s]
                if coupled:  # A_csf at the three stage times
                    for st in range(3):
                        for j in range(nb):
                            acc = 0.0
                            for a in range(na):
                                acc += stage[s, st, 0, a, j0 + j] * z[a, j]
                            xs[st, j] = acc
                a00 = h * tab_a[0, 0]
                a01 = h * tab_a[0, 1]
                a02 = h * tab_a[0, 2]
                a10 = h * tab_a[1, 0]
                a11 = h * tab_a[1, 1]
                a12 = h * tab_a[1, 2]
                a20 = h * tab_a[2, 0]
                a21 = h * tab_a[2, 1]
                a22 = h * tab_a[2, 2]
                for j in range(nb):
                    jj = j0 + j
                    scale = prm[0, jj]
                    g = prm[1, jj]
                    tau = prm[4, jj]
                    i0 = prm[5, jj]
                    c0 = kd(xs[0, j], scale)
                    c1 = kd(xs[1, j], scale)
                    c2 = kd(xs[2, j], scale)
                    p0, q0 = loss(c0, g, prm[2, jj], prm[3, jj])
                    p1, q1 = loss(c1, g, prm[2, jj], prm[3, jj])
                    p2, q2 = loss(c2, g, prm[2, jj], prm[3, jj])
                    l0, l1, l2, e = _collocate(y[0, j], p0, p1, p2, q0, q1, q2, h,
                                                     a00, a01, a02, a10, a11, a12, a20, a21, a22, tab_b, stiffly)
                    y[0, j] = e
                    d0 = inhib(c0, l0, g, tau) - i0
                    d1 = inhib(c1, l1, g, tau) - i0
                    d2 = inhib(c2, l2, g, tau) - i0
                    for i in range(1, 3):
                        rate = prm[4 + 2 * i, jj]
                        extent = prm[5 + 2 * i, jj]
                        p0, q0 = adapt(d0, rate, extent)
                        p1, q1 = adapt(d1, rate, extent)
                        p2, q2 = adapt(d2, rate, extent)
                        _, _, _, e = _collocate(y[i, j], p0, p1, p2, q0, q1, q2, h,
                                                      a00, a01, a02, a10, a11, a12, a20, a21, a22, tab_b, stiffly)
                        y[i, j] = e
                for i in range(nl):  # exact linear step
                    for j in range(nb):
                        znew[i, j] = 0.0
                    for a in range(na):
                        for j in range(nb):
                            znew[i, j] += full[s, i, a, j0 + j] * z[a, j]
                for i in range(nl):
                    for j in range(nb):
                        z[i, j] = znew[i, j]

    def _collocate(ya, p0, p1, p2, q0, q1, q2, h, a00, a01, a02, a10, a11, a12, a20, a21, a22, tab_b, stiffly):
        # As pkpd.solver._collocate, for one system.
        m00, m01, m02 = 1.0 + a00 * q0, a01 * q1, a02 * q2
        m10, m11, m12 = a10 * q0, 1.0 + a11 * q1, a12 * q2
        m20, m21, m22 = a20 * q0, a21 * q1, 1.0 + a22 * q2
        r0 = ya + (a00 * p0 + a01 * p1 + a02 * p2)
        r1 = ya + (a10 * p0 + a11 * p1 + a12 * p2)
        r2 = ya + (a20 * p0 + a21 * p1 + a22 * p2)
        c0 = m11 * m22 - m12 * m21
        c1 = m10 * m22 - m12 * m20
        c2 = m10 * m21 - m11 * m20
        inv_det = 1.0 / (m00 * c0 - m01 * c1 + m02 * c2)
        d12 = r1 * m22 - m12 * r2
        d21 = r1 * m21 - m11 * r2
        d02 = m10 * r2 - r1 * m20
        s0 = (r0 * c0 - m01 * d12 + m02 * d21) * inv_det
        s1 = (m00 * d12 - r0 * c1 + m02 * d02) * inv_det
        s2 = (-m00 * d21 - m01 * d02 + r0 * c2) * inv_det
        if stiffly:
            end = s2
        else:
            hb0, hb1, hb2 = h * tab_b[0], h * tab_b[1], h * tab_b[2]
            end = ya + (hb0 * (p0 - q0 * s0) + hb1 * (p1 - q1 * s1) + hb2 * (p2 - q2 * s2))
        return s0, s1, s2, end

    saved = config.CACHE_DIR
    config.CACHE_DIR = str(cache_dir())  # read when caching is enabled, i.e. at decoration
    try:
        _collocate = numba.njit(_collocate)
        kernel = numba.njit(cache=True, parallel=True, nogil=True)(_kernel)
    finally:
        config.CACHE_DIR = saved
    return kernel


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
