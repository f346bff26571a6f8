"""The numba kernel of :mod:`pkpd.kernel` (imported only when numba is wanted).

Import it through :func:`pkpd.kernel.get_kernel`, which points numba's cache
at a directory named by a fingerprint of the code.  The kernel is a
module-level function with no closure (a closure's cells are part of numba's
cache key and would miss the cache in every new process) and it reads no
module-level constant: the tableau and every model value are arguments.
"""

import numba
import numpy as np
from numba.extending import register_jitable

from . import model

#: LLVM fast-math flags: reassociation and reciprocals, but NaN and inf keep
#: their meaning (a non-finite solution must still be detected).
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# The model's own functions, callable from compiled code (and from one
# another: receptor_loss_coefficients calls occupancy_of).
for _f in (model.kd_units, model.occupancy_of, model.inhibition_of, model.receptor_loss_coefficients,
           model.adaptation_coefficients):
    register_jitable(_f)
# Inlined into the kernel at numba's level (a call left to LLVM stops it
# from vectorising the subject loop); an inlined body looks its globals up
# here, hence the names the model's functions use are imported.
from .model import occupancy_of  # noqa: E402,F401  (called by receptor_loss_coefficients)

loss = numba.njit(inline="always", fastmath=FASTMATH)(model.receptor_loss_coefficients)
adapt = numba.njit(inline="always", fastmath=FASTMATH)(model.adaptation_coefficients)
inhib = numba.njit(inline="always", fastmath=FASTMATH)(model.inhibition_of)
kd = numba.njit(inline="always", fastmath=FASTMATH)(model.kd_units)


@numba.njit(cache=True, parallel=True, nogil=True, fastmath=FASTMATH)
def kernel(step_id, hs, full, stage, j_ptr, j_node, j_row, j_amt, in_node, in_val,
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
        # this block's propagators and parameters, contiguous and indexed
        # from 0 (unit-stride inner loops that LLVM vectorises)
        n_s = full.shape[0]
        fl = np.empty((n_s, nl, na, nb))
        sl = np.zeros((n_s, 3, na, nb))
        pl = np.empty((prm.shape[0], nb))
        for s in range(n_s):
            for i in range(nl):
                for a in range(na):
                    for j in range(nb):
                        fl[s, i, a, j] = full[s, i, a, j0 + j]
            if coupled:
                for st in range(3):
                    for a in range(na):
                        for j in range(nb):
                            sl[s, st, a, j] = stage[s, st, 0, a, j0 + j]
        for q in range(prm.shape[0]):
            for j in range(nb):
                pl[q, j] = prm[q, j0 + j]
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
                        xs[st, j] = 0.0
                    for a in range(na):
                        for j in range(nb):
                            xs[st, j] += sl[s, st, a, j] * z[a, j]
            a00 = h * tab_a[0, 0]
            a01 = h * tab_a[0, 1]
            a02 = h * tab_a[0, 2]
            a10 = h * tab_a[1, 0]
            a11 = h * tab_a[1, 1]
            a12 = h * tab_a[1, 2]
            a20 = h * tab_a[2, 0]
            a21 = h * tab_a[2, 1]
            a22 = h * tab_a[2, 2]
            hb0 = h * tab_b[0]
            hb1 = h * tab_b[1]
            hb2 = h * tab_b[2]
            for j in range(nb):  # the slow part, one subject per lane
                scale = pl[0, j]
                g = pl[1, j]
                k_int = pl[2, j]
                k_rec = pl[3, j]
                tau = pl[4, j]
                i0 = pl[5, j]
                c0 = kd(xs[0, j], scale)
                c1 = kd(xs[1, j], scale)
                c2 = kd(xs[2, j], scale)
                p0, q0 = loss(c0, g, k_int, k_rec)
                p1, q1 = loss(c1, g, k_int, k_rec)
                p2, q2 = loss(c2, g, k_int, k_rec)
                l0, l1, l2, e = _collocate(y[0, j], p0, p1, p2, q0, q1, q2,
                                           a00, a01, a02, a10, a11, a12, a20, a21, a22, hb0, hb1, hb2, stiffly)
                y[0, j] = e
                d0 = inhib(c0, l0, g, tau) - i0
                d1 = inhib(c1, l1, g, tau) - i0
                d2 = inhib(c2, l2, g, tau) - i0
                # the two adaptations (slow states 1 and 2), written out: the
                # subject loop must stay the innermost loop to be vectorised
                p0, q0 = adapt(d0, pl[6, j], pl[7, j])
                p1, q1 = adapt(d1, pl[6, j], pl[7, j])
                p2, q2 = adapt(d2, pl[6, j], pl[7, j])
                _, _, _, e = _collocate(y[1, j], p0, p1, p2, q0, q1, q2,
                                        a00, a01, a02, a10, a11, a12, a20, a21, a22, hb0, hb1, hb2, stiffly)
                y[1, j] = e
                p0, q0 = adapt(d0, pl[8, j], pl[9, j])
                p1, q1 = adapt(d1, pl[8, j], pl[9, j])
                p2, q2 = adapt(d2, pl[8, j], pl[9, j])
                _, _, _, e = _collocate(y[2, j], p0, p1, p2, q0, q1, q2,
                                        a00, a01, a02, a10, a11, a12, a20, a21, a22, hb0, hb1, hb2, stiffly)
                y[2, j] = e
            for i in range(nl):  # exact linear step
                for j in range(nb):
                    znew[i, j] = 0.0
                for a in range(na):
                    for j in range(nb):
                        znew[i, j] += fl[s, i, a, j] * z[a, j]
            for i in range(nl):
                for j in range(nb):
                    z[i, j] = znew[i, j]


@numba.njit(inline="always", fastmath=FASTMATH)
def _collocate(ya, p0, p1, p2, q0, q1, q2, a00, a01, a02, a10, a11, a12, a20, a21, a22, hb0, hb1, hb2, stiffly):
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
        end = ya + (hb0 * (p0 - q0 * s0) + hb1 * (p1 - q1 * s1) + hb2 * (p2 - q2 * s2))
    return s0, s1, s2, end

