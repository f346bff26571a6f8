"""The numba kernel of :mod:`pkpd.kernel` (imported only when numba is wanted).

Import it through :func:`pkpd.kernel.get_kernel`, which points numba's cache
at a directory named by a fingerprint of the code.  The kernel is a
module-level function with no closure (a closure's cells are part of numba's
cache key and would miss the cache in every new process) and it reads no
module-level constant: the tableau and every model value are arguments.

One call integrates the blocks ``b_start .. b_stop - 1`` of ``lanes``
subjects each, serially, without the GIL (``nogil``): :mod:`pkpd.kernel`
runs a second thread on other blocks when a batch is large.  For each block
it computes the subjects' propagators (the scaling-and-squaring Taylor
method of :func:`pkpd.solver.expm_batch`, and the squaring of a half step's
propagators as in :class:`pkpd.solver._Propagators`), walks the steps, and
at the recorded nodes writes the states asked for and the readouts asked for
straight into the caller's arrays.
"""

import types

import numba
import numpy as np
from numba.extending import register_jitable

from . import model

#: LLVM fast-math flags: none.  The lane loops have no reductions, so they
#: vectorise without reassociation, and plain IEEE arithmetic gives every
#: subject the same bits whatever the block width (1, 8 or 64 lanes) and so
#: whatever the chunk size.  Every function is compiled with
#: ``error_model="numpy"``: a division by zero gives inf or NaN (caught by the
#: finite check) instead of Python's test before each division, which stops
#: LLVM from vectorising the subject loops.
FASTMATH = False

# The model's own functions, callable from compiled code (and from one
# another: receptor_loss_coefficients calls occupancy_of).
for _f in (model.kd_units, model.occupancy_of, model.inhibition_of, model.receptor_loss_coefficients,
           model.adaptation_coefficients):
    register_jitable(_f)
# Inlined into the kernel at numba's level (a call left to LLVM stops it
# from vectorising the subject loop); an inlined body looks its globals up
# here, hence the names the model's functions use are imported.
from .model import occupancy_of  # noqa: E402,F401  (called by receptor_loss_coefficients)

loss = numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")(model.receptor_loss_coefficients)
adapt = numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")(model.adaptation_coefficients)
inhib = numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")(model.inhibition_of)
occ = numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")(model.occupancy_of)


kd = numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")(model.kd_units)


# Readout codes (pkpd.kernel.READOUT_CODES maps names to these).
PLASMA, CSF, OCCUPANCY, DENSITY, ADAPTATION, INHIBITION, EFFECT, EXCITABILITY, CNS_DEPRESSION, LUMBAR, \
    BIOPHASE = range(11)
# Rows of the per-subject readout values (pkpd.kernel.READOUT_PARAMETERS: reciprocals
# where a readout divides, so that a record costs fewer divisions).
R_VC, R_VLUM, R_VCSF, R_EC50, R_NCNS, R_EXC = range(6)
# Linear states a readout reads, positions in the state map (pkpd.kernel.READOUT_STATE_ORDER).
S_C, S_CSF, S_LUM, S_CNS = range(4)


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _matmul(a, b, out, n):
    # out[:, :, j] = a[:, :, j] @ b[:, :, j] for every lane j; with the size n known when
    # compiled (n > 0), lane by lane with the sums in registers (the same sums, in the
    # same order, as the loops over the lanes for a size known at run time)
    k = a.shape[0]
    nb = a.shape[2]
    if n > 0:
        for i in range(n):
            for j in range(nb):
                for c in range(n):
                    acc = 0.0
                    for t in range(n):
                        acc += a[i, t, j] * b[t, c, j]
                    out[i, c, j] = acc
        return
    for i in range(k):
        for c in range(k):
            for j in range(nb):
                out[i, c, j] = 0.0
            for t in range(k):
                for j in range(nb):
                    out[i, c, j] += a[i, t, j] * b[t, c, j]


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _expm(x, out, p, tmp, scale, squarings, nb, degree, max_norm, n):
    """Matrix exponential of x[:, :, :nb] (overwritten) into out, as pkpd.solver.expm_batch (n: see _matmul)."""
    k = x.shape[0]
    top = 0
    for j in range(nb):
        norm = 0.0
        for c in range(k):
            col = 0.0
            for i in range(k):
                col += abs(x[i, c, j])
            norm = max(norm, col)
        s = int(max(0.0, np.ceil(np.log2(max(norm, 1e-300) / max_norm))))
        squarings[j] = s
        scale[j] = 0.5 ** s
        top = max(top, s)
    for i in range(k):
        for c in range(k):
            for j in range(nb):
                x[i, c, j] = x[i, c, j] * scale[j]
    for i in range(k):
        for c in range(k):
            for j in range(nb):
                p[i, c, j] = x[i, c, j] / degree + (1.0 if i == c else 0.0)
    for d in range(degree - 1, 0, -1):
        _matmul(x, p, tmp, n)
        for i in range(k):
            for c in range(k):
                for j in range(nb):
                    p[i, c, j] = tmp[i, c, j] / d + (1.0 if i == c else 0.0)
    for level in range(1, top + 1):
        _matmul(p, p, tmp, n)
        for i in range(k):
            for c in range(k):
                for j in range(nb):
                    if squarings[j] >= level:
                        p[i, c, j] = tmp[i, c, j]
    for i in range(k):
        for c in range(k):
            for j in range(nb):
                out[i, c, j] = p[i, c, j]


# Subjects per block (``LANES``), integrated in lockstep, are a compile-time
# constant (one compiled entry point per value, and per system size for
# :func:`sized_kernel`, see :func:`_specialise`), so that every lane loop has a fixed trip count and
# the slow part's scratch rows sit at fixed offsets of one array (LLVM then
# vectorises it without run-time alias checks).  A short last block is
# padded with copies of its first subject, whose results are not written.
# Rows of the slow part's scratch array: A_csf at the stages, the slow
# states, the per-subject values (pkpd.model.SLOW_PARAMETERS), a finite check.
# What the two adaptations' steps need (their rate q is constant) is made per
# distinct step length, in rows of ``inv[s]`` read in place (INV_ROWS).
W_XS, W_Y, W_P, W_BAD = 0, 3, 6, 16
W_ROWS = 17
# Rows of inv[s]: per adaptation, the 4 coefficients of its step's end value
# U * y + h * (V_0 d_0 + V_1 d_1 + V_2 d_2) in the drives d at the stages (_folded_step).
INV_ROWS = 8
# Records whose readouts are kept before being written out, subject by subject.
R_BUF = 32


def _blocks(b_start, b_stop,
           A, B, keys, parent, gaps, coupled,
           step_id, hs, h_first, jump_at, j_ptr, j_node, j_row, j_amt, in_node, in_val,
           rec_index, z0, y0, prm, tab_a, tab_b, stiffly,
           rec_src, rec_dst, x_out, y_out,
           ro_code, ro_states, rprm, out, slot_off, slot_stride, rec_col,
           degree, max_norm, bad):
    """Integrate blocks ``b_start .. b_stop - 1`` of ``LANES`` subjects (a constant: see :func:`_specialise`).

    ``A`` (nl, nl, n) and ``B`` (nl, m, n) are the reduced system; ``keys``
    the distinct step lengths (propagators), ``parent[s]`` the step whose
    propagators squared give step ``s``'s (-1: exponentials of the stage
    ``gaps``); ``coupled`` the row the slow part reads (-1: none); ``hs``
    each step's length, ``h_first[s]`` the length of the first step of
    distinct length ``s`` (the adaptations' collocation inverses are made
    with it, as :func:`pkpd.solver.integrate` does).  States are recorded into ``x_out``/``y_out`` (rows
    ``rec_dst`` of ``rec_src``) when they have rows; readout ``ro_code[q]``
    goes to ``out[slot_off[q] + subject * slot_stride[q] + rec_col[q, record]]``
    (skipped where the column is -1).  ``bad[subject]`` is set when a
    recorded state is not finite.
    """
    L = LANES
    nl = A.shape[0]
    m = B.shape[1]
    na = nl + m
    n = A.shape[2]
    n_s = keys.shape[0]
    n_steps = step_id.shape[0]
    n_rec = rec_index.shape[0]
    n_ro = ro_code.shape[0]
    n_x = x_out.shape[0]
    n_y = y_out.shape[0]
    n_gaps = gaps.shape[0]
    n_prm = prm.shape[0]
    has_coupled = coupled >= 0
    # work arrays, reused by every block
    raw = np.empty((n_s, 4, na, na, L))
    aug = np.empty((na, na, L))
    xm = np.empty((na, na, L))
    em = np.empty((na, na, L))
    pm = np.empty((na, na, L))
    tm = np.empty((na, na, L))
    cur_m = np.empty((na, na, L))
    scale = np.empty(L)
    sq = np.empty(L, np.int64)
    fl = np.empty((n_s, nl, na, L))
    sl = np.zeros((n_s, 3, na, L))
    inv = np.empty((n_s, INV_ROWS * L))  # the adaptations' folded steps, per distinct step (see INV_ROWS)
    ainv = np.empty((9, L))
    w = np.zeros(W_ROWS * L)
    rl = np.empty((rprm.shape[0], L))
    z = np.empty((na, L))
    znew = np.empty((nl, L))
    cur = np.empty(L, np.int64)
    src = np.empty(L, np.int64)
    pick_r = np.empty(R_BUF, np.int64)  # records of the buffer a readout writes, and their columns
    pick_c = np.empty(R_BUF, np.int64)
    val = np.empty((n_ro, R_BUF, L))  # readouts of the last records, written out together
    for bi in range(b_start, b_stop):
        j0 = bi * L
        nb = min(n, j0 + L) - j0
        for j in range(L):
            src[j] = j0 + j if j < nb else j0  # padding lanes repeat the first subject
        # --- propagators of every distinct step, as pkpd.solver._Propagators
        for a in range(na):
            for c in range(na):
                for j in range(L):
                    aug[a, c, j] = 0.0
        for a in range(nl):
            for c in range(nl):
                for j in range(L):
                    aug[a, c, j] = A[a, c, src[j]]
            for c in range(m):
                for j in range(L):
                    aug[a, nl + c, j] = B[a, c, src[j]]
        for s in range(n_s):
            h = keys[s]
            if parent[s] >= 0:  # E(2h) = E(h)^2
                for q in range(4):
                    _matmul(raw[parent[s], q], raw[parent[s], q], tm, NA)
                    for a in range(na):
                        for c in range(na):
                            for j in range(L):
                                raw[s, q, a, c, j] = tm[a, c, j]
            else:  # E(c_1 h), E(c_2 h), E(c_3 h), E(h): products of the gaps' exponentials
                first = True
                for g in range(n_gaps):
                    gap = gaps[g]
                    if gap != 0.0:
                        t = gap * h
                        for a in range(na):
                            for c in range(na):
                                for j in range(L):
                                    xm[a, c, j] = aug[a, c, j] * t
                        _expm(xm, em, pm, tm, scale, sq, L, degree, max_norm, NA)
                        if first:
                            for a in range(na):
                                for c in range(na):
                                    for j in range(L):
                                        cur_m[a, c, j] = em[a, c, j]
                            first = False
                        else:
                            _matmul(cur_m, em, tm, NA)
                            for a in range(na):
                                for c in range(na):
                                    for j in range(L):
                                        cur_m[a, c, j] = tm[a, c, j]
                    for a in range(na):
                        for c in range(na):
                            for j in range(L):
                                raw[s, g, a, c, j] = cur_m[a, c, j]
            for i in range(nl):
                for a in range(na):
                    for j in range(L):
                        fl[s, i, a, j] = raw[s, 3, i, a, j]
            if has_coupled:
                for st in range(3):
                    for a in range(na):
                        for j in range(L):
                            sl[s, st, a, j] = raw[s, st, coupled, a, j]
        # --- this block's parameters and start
        for q in range(n_prm):
            for j in range(L):
                w[(W_P + q) * L + j] = prm[q, src[j]]
        for q in range(rprm.shape[0]):
            for j in range(L):
                rl[q, j] = rprm[q, src[j]]
        whole_n = _whole_exponents(rl, L)
        for s in range(n_s):  # as pkpd.solver._constant_q_inverse, rate k_M then k_M2
            for ad in range(2):
                _constant_q_inverse(w, (W_P + 6 + 2 * ad) * L, L, h_first[s], tab_a, ainv)
                _folded_step(inv[s], 4 * ad * L, w, (W_P + 6 + 2 * ad) * L, L, ainv, tab_a, tab_b, h_first[s],
                             stiffly)
        for j in range(L):
            for a in range(na):
                z[a, j] = z0[a, src[j]]
            for i in range(3):
                w[(W_Y + i) * L + j] = y0[i, src[j]]
            cur[j] = j_ptr[j0 + j] if j < nb else 0
            w[W_BAD * L + j] = 0.0
        ip = 0
        rp = 0
        r_first = 0  # first record not yet written out
        for k in range(n_steps + 1):
            if jump_at[k]:
                for j in range(nb):  # jumps, in node order per subject
                    c = cur[j]
                    end = j_ptr[j0 + j + 1]
                    while c < end and j_node[c] == k:
                        z[j_row[c], j] += j_amt[c]
                        c += 1
                    cur[j] = c
            if ip < in_node.shape[0] and in_node[ip] == k:
                for a in range(m):
                    for j in range(L):
                        z[nl + a, j] = in_val[ip, a, src[j]]
                ip += 1
            while rp < n_rec and rec_index[rp] == k:
                _record(L, rp, j0, nb, z, w, rec_src, rec_dst, x_out, y_out, n_x, n_y,
                        ro_code, ro_states, rl, whole_n, val, rp - r_first, rec_col, n_ro)
                rp += 1
                if rp - r_first == R_BUF or rp == n_rec:
                    _check_finite(L, z, w, rec_src)
                    _flush(r_first, rp, j0, nb, val, out, slot_off, slot_stride, rec_col, n_ro, pick_r, pick_c)
                    r_first = rp
            if k == n_steps:
                break
            s = step_id[k]
            h = hs[k]  # the step's own length in the collocation, as the numpy path
            a00, a01, a02 = h * tab_a[0, 0], h * tab_a[0, 1], h * tab_a[0, 2]
            a10, a11, a12 = h * tab_a[1, 0], h * tab_a[1, 1], h * tab_a[1, 2]
            a20, a21, a22 = h * tab_a[2, 0], h * tab_a[2, 1], h * tab_a[2, 2]
            hb0, hb1, hb2 = h * tab_b[0], h * tab_b[1], h * tab_b[2]
            iv = inv[s]
            # With the system's size known when compiled (NA > 0), the whole step runs lane by
            # lane in one loop, the linear state in registers; otherwise A_csf at the stages and
            # the linear step are loops of their own over the lanes (the states a run-time count).
            if NA == 0 and has_coupled:  # A_csf at the three stage times
                for st in range(3):
                    for j in range(L):
                        w[(W_XS + st) * L + j] = 0.0
                    for a in range(na):
                        for j in range(L):
                            w[(W_XS + st) * L + j] += sl[s, st, a, j] * z[a, j]
            for j in range(L):
                x0 = w[W_XS * L + j]  # made above, or zero (no coupled state); replaced here when sized
                x1 = w[(W_XS + 1) * L + j]  # (an if/else assigning them in each branch measured 4 % slower)
                x2 = w[(W_XS + 2) * L + j]
                if NA > 0 and has_coupled:
                    x0 = 0.0
                    x1 = 0.0
                    x2 = 0.0
                    for a in range(NA):
                        x0 += sl[s, 0, a, j] * z[a, j]
                        x1 += sl[s, 1, a, j] * z[a, j]
                        x2 += sl[s, 2, a, j] * z[a, j]
                e, d0, d1, d2 = _loss_and_drive(
                    x0, x1, x2, w[W_Y * L + j],
                    w[(W_P + 0) * L + j], w[(W_P + 1) * L + j], w[(W_P + 2) * L + j], w[(W_P + 3) * L + j],
                    w[(W_P + 4) * L + j], w[(W_P + 5) * L + j],
                    a00, a01, a02, a10, a11, a12, a20, a21, a22, hb0, hb1, hb2, stiffly)
                w[W_Y * L + j] = e
                w[(W_Y + 1) * L + j] = _adapted(w[(W_Y + 1) * L + j], iv[j], iv[L + j], iv[2 * L + j], iv[3 * L + j],
                                               h, d0, d1, d2)
                w[(W_Y + 2) * L + j] = _adapted(w[(W_Y + 2) * L + j], iv[4 * L + j], iv[5 * L + j], iv[6 * L + j],
                                               iv[7 * L + j], h, d0, d1, d2)
                if NA > 0:  # exact linear step
                    for i in range(NL):
                        acc = 0.0
                        for a in range(NA):
                            acc += fl[s, i, a, j] * z[a, j]
                        znew[i, j] = acc
                    for i in range(NL):
                        z[i, j] = znew[i, j]
            if NA == 0:  # exact linear step
                for i in range(nl):
                    for j in range(L):
                        znew[i, j] = 0.0
                    for a in range(na):
                        for j in range(L):
                            znew[i, j] += fl[s, i, a, j] * z[a, j]
                for i in range(nl):
                    for j in range(L):
                        z[i, j] = znew[i, j]
        for j in range(nb):
            bad[j0 + j] = not np.isfinite(w[W_BAD * L + j])


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _adapted(y, u, v0, v1, v2, h, d0, d1, d2):
    # An adaptation's value at the end of a step (slow states 1 and 2): linear with a
    # constant rate, so the end value is linear in the start value y and the drives d
    # at the stages, U y + h (V_0 d_0 + V_1 d_1 + V_2 d_2), with U and V made once per
    # distinct step (_folded_step).
    return u * y + h * (v0 * d0 + v1 * d1 + v2 * d2)


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _loss_and_drive(xs0, xs1, xs2, y0, scale, g, k_int, k_rec, tau, i0,
                    a00, a01, a02, a10, a11, a12, a20, a21, a22, hb0, hb1, hb2, stiffly):
    # One subject: receptor loss at the end of the step, by collocation from y0 and A_csf
    # at the stages (xs), and the drive I - I0 at the three stages.
    c0, c1, c2 = kd(xs0, scale), kd(xs1, scale), kd(xs2, scale)
    p0, q0 = loss(c0, g, k_int, k_rec)
    p1, q1 = loss(c1, g, k_int, k_rec)
    p2, q2 = loss(c2, g, k_int, k_rec)
    l0, l1, l2, e = _collocate(y0, p0, p1, p2, q0, q1, q2,
                               a00, a01, a02, a10, a11, a12, a20, a21, a22, hb0, hb1, hb2, stiffly)
    return e, inhib(c0, l0, g, tau) - i0, inhib(c1, l1, g, tau) - i0, inhib(c2, l2, g, tau) - i0


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _folded_step(out, at, w, q_at, L, g, tab_a, tab_b, h, stiffly):
    # One collocation step of an adaptation dM/dt = p(d) - q M, p(d) = rate extent d and
    # q = rate (pkpd.model.adaptation_coefficients), from y with drives d_k at the stages:
    # stages s = G (y 1 + h A p(d)), G = (I + h q A)^-1 (g[3 i + c], from
    # _constant_q_inverse); end value s_2 (stiffly accurate) or y + h b.(p(d) - q s).
    # Linear in y and d, so regrouped once per distinct step and subject:
    #     end = U y + h (V_0 d_0 + V_1 d_1 + V_2 d_2)
    # stiffly accurate: U = sum_m G_2m, V_k = p(1) (G A)_2k;
    # otherwise:        U = 1 - h q b.G 1, V_k = p(1) (b_k - h q (b G A)_k).
    # Four multiplications per step instead of 16-30: the slow step is bound by its
    # multiplications (AVX-512 on this CPU issues them at AVX2's rate).  The step's own
    # length h multiplies V; U and V are made with the first step of this length (as
    # the inverse is in pkpd.solver; steps of one length differ by rounding only).
    for j in range(L):
        unit, q = adapt(1.0, w[q_at + j], w[q_at + L + j])  # p(1) = rate * extent (p is linear in d)
        if stiffly:
            out[at + j] = g[6, j] + g[7, j] + g[8, j]
            for k in range(3):
                out[at + (1 + k) * L + j] = unit * (g[6, j] * tab_a[0, k] + g[7, j] * tab_a[1, k]
                                                    + g[8, j] * tab_a[2, k])
        else:
            hq = h * q
            bg0 = tab_b[0] * g[0, j] + tab_b[1] * g[3, j] + tab_b[2] * g[6, j]  # (b G)_m
            bg1 = tab_b[0] * g[1, j] + tab_b[1] * g[4, j] + tab_b[2] * g[7, j]
            bg2 = tab_b[0] * g[2, j] + tab_b[1] * g[5, j] + tab_b[2] * g[8, j]
            out[at + j] = 1.0 - hq * (bg0 + bg1 + bg2)
            for k in range(3):
                bga = bg0 * tab_a[0, k] + bg1 * tab_a[1, k] + bg2 * tab_a[2, k]
                out[at + (1 + k) * L + j] = unit * (tab_b[k] - hq * bga)


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _constant_q_inverse(w, q_at, L, h, tab_a, out):
    # As pkpd.solver._constant_q_inverse: (I + h q A)^-1 for q = w[q_at + j], lane j,
    # as the adjugate over the determinant; out[3 * i + c, j] is entry (i, c).
    for j in range(L):
        hq = h * w[q_at + j]
        m00, m01, m02 = 1.0 + tab_a[0, 0] * hq, 0.0 + tab_a[0, 1] * hq, 0.0 + tab_a[0, 2] * hq
        m10, m11, m12 = 0.0 + tab_a[1, 0] * hq, 1.0 + tab_a[1, 1] * hq, 0.0 + tab_a[1, 2] * hq
        m20, m21, m22 = 0.0 + tab_a[2, 0] * hq, 0.0 + tab_a[2, 1] * hq, 1.0 + tab_a[2, 2] * hq
        i00 = m11 * m22 - m12 * m21
        i01 = -1.0 * (m01 * m22 - m02 * m21)
        i02 = m01 * m12 - m02 * m11
        i10 = -1.0 * (m10 * m22 - m12 * m20)
        i11 = m00 * m22 - m02 * m20
        i12 = -1.0 * (m00 * m12 - m02 * m10)
        i20 = m10 * m21 - m11 * m20
        i21 = -1.0 * (m00 * m21 - m01 * m20)
        i22 = m00 * m11 - m01 * m10
        det = m00 * i00 + m01 * i10 + m02 * i20
        out[0, j], out[1, j], out[2, j] = i00 / det, i01 / det, i02 / det
        out[3, j], out[4, j], out[5, j] = i10 / det, i11 / det, i12 / det
        out[6, j], out[7, j], out[8, j] = i20 / det, i21 / det, i22 / det


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _check_finite(L, z, w, rec_src):
    # The finite check on the states a run records (as pkpd.solver.check_finite), made at
    # the last record of each buffer of R_BUF records: a value that is not finite stays so
    # (each step sums every state times its propagator entry, zeros included, NaN or inf
    # times 0 being NaN; the slow states read A_csf so made; a jump adds a finite amount),
    # so a record of the buffer with one has one at its last record too.  A NaN or inf
    # times 0 is NaN, and the sum in row W_BAD stays NaN.
    for r in range(rec_src.shape[0]):
        for j in range(L):
            w[W_BAD * L + j] += z[rec_src[r], j] * 0.0
    for i in range(3):
        for j in range(L):
            w[W_BAD * L + j] += w[(W_Y + i) * L + j] * 0.0


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _state(z, row, j):
    return z[row, j] if row >= 0 else 0.0


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _record(L, rp, j0, nb, z, w, rec_src, rec_dst, x_out, y_out, n_x, n_y,
            ro_code, ro_states, rl, whole_n, vals, rr, rec_col, n_ro):
    # readout q of record rp goes to vals[q, rr] (rr: the record's place in the buffer)
    if n_x > 0:
        for r in range(rec_src.shape[0]):
            for j in range(nb):
                x_out[rec_dst[r], rp, j0 + j] = z[rec_src[r], j]
    if n_y > 0:
        for i in range(3):
            for j in range(nb):
                y_out[i, rp, j0 + j] = w[(W_Y + i) * L + j]
    r_c = ro_states[S_C]
    r_csf = ro_states[S_CSF]
    r_lum = ro_states[S_LUM]
    r_cns = ro_states[S_CNS]
    for q in range(n_ro):
        col = rec_col[q, rp]
        if col < 0:
            continue
        code = ro_code[q]
        if code == PLASMA:
            for j in range(L):
                vals[q, rr, j] = _state(z, r_c, j) * rl[R_VC, j]
        elif code == LUMBAR:
            for j in range(L):
                vals[q, rr, j] = _state(z, r_lum, j) * rl[R_VLUM, j]
        elif code == BIOPHASE:
            for j in range(L):
                vals[q, rr, j] = _state(z, r_csf, j) * rl[R_VCSF, j]
        elif code == CSF:
            for j in range(L):
                vals[q, rr, j] = _state(z, r_lum, j) * rl[R_VLUM, j] + _state(z, r_csf, j) * rl[R_VCSF, j]
        elif code == OCCUPANCY:
            for j in range(L):
                vals[q, rr, j] = occ(kd(_state(z, r_csf, j), w[(W_P + 0) * L + j]), w[(W_P + 1) * L + j])
        elif code == DENSITY:
            for j in range(L):
                vals[q, rr, j] = 1.0 - w[W_Y * L + j]
        elif code == ADAPTATION:
            for j in range(L):
                vals[q, rr, j] = w[(W_Y + 1) * L + j] + w[(W_Y + 2) * L + j]
        elif code == CNS_DEPRESSION:
            if whole_n:  # x ** n by squaring: vectorised (pow is a library call per lane)
                for j in range(L):
                    x = np.maximum(_state(z, r_cns, j), 0.0) / rl[R_EC50, j]
                    xn = _whole_power(x, rl[R_NCNS, j])
                    vals[q, rr, j] = xn / (1.0 + xn)
            else:
                for j in range(L):
                    x = np.maximum(_state(z, r_cns, j), 0.0) / rl[R_EC50, j]
                    xn = x ** rl[R_NCNS, j]
                    vals[q, rr, j] = xn / (1.0 + xn)
        else:  # inhibition, effect, excitability
            for j in range(L):
                inh = inhib(kd(_state(z, r_csf, j), w[(W_P + 0) * L + j]), w[W_Y * L + j],
                            w[(W_P + 1) * L + j], w[(W_P + 4) * L + j])
                adaptation = w[(W_Y + 1) * L + j] + w[(W_Y + 2) * L + j]
                i0 = w[(W_P + 5) * L + j]
                if code == INHIBITION:
                    vals[q, rr, j] = inh
                elif code == EFFECT:
                    vals[q, rr, j] = (inh - i0) - adaptation
                else:
                    vals[q, rr, j] = (1.0 - inh + adaptation) * rl[R_EXC, j]


#: Largest exponent n_cns that cns_depression raises to by squaring (5 bits):
#: binary powering is within n/2 + 1 ulps of pow (measured), 1e-15 relative at 16.
WHOLE_POWER_MAX = 16.0


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _whole_exponents(rl, L):
    # whether every lane's n_cns is a whole number 1 .. WHOLE_POWER_MAX
    ok = True
    for j in range(L):
        n = rl[R_NCNS, j]
        if not (n >= 1.0 and n <= WHOLE_POWER_MAX and n == np.floor(n)):
            ok = False
    return ok


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _whole_power(x, n):
    # x ** n for a whole n in 1 .. 16, by binary powering: the same few products in
    # every lane whatever the block width, within n/2 + 1 ulps of the library's pow
    # (which the numpy path calls), and a select rather than a call, so the lane
    # loop vectorises (a pow per lane cost a quarter of a command-line run's kernel time).
    k = int(n)
    out = 1.0
    base = x
    for b in range(5):
        out = out * (base if (k >> b) & 1 else 1.0)
        base = base * base
    return out


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _flush(r0, r1, j0, nb, val, out, slot_off, slot_stride, rec_col, n_ro, pick_r, pick_c):
    # records r0 .. r1 - 1 of each subject, in its row of out: for each readout, the
    # records that have a column are picked once (a readout of a sparse grid, e.g.
    # daily outputs among half-hourly summary points, then costs nothing per subject)
    for q in range(n_ro):
        k = 0
        for r in range(r0, r1):
            col = rec_col[q, r]
            if col >= 0:
                pick_r[k] = r - r0
                pick_c[k] = col
                k += 1
        if k == 0:
            continue
        stride = slot_stride[q]
        base = slot_off[q] + j0 * stride
        for t in range(k):  # record by record: the lanes' values read together (measured 4 % faster
            at = base + pick_c[t]  # than subject by subject on the standard problem)
            r = pick_r[t]
            for j in range(nb):
                out[at + j * stride] = val[q, r, j]


@numba.njit(inline="always", fastmath=FASTMATH, error_model="numpy")
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


def _specialise(lanes: int, name: str, nl: int = 0, na: int = 0):
    """:func:`_blocks` compiled with ``LANES = lanes`` (and ``NL = nl``, ``NA = na``), cached under its own name.

    The copy reads the module's globals but for those: numba freezes a
    global int as a compile-time constant, which is what makes the lane loops
    fixed-length, and with the system's size known (``NA > 0``: ``nl`` linear
    states, ``na - nl`` inputs) the step runs lane by lane with the state in
    registers (loops over states unrolled), the lane loop still vectorised.
    It has no closure (numba's cache would miss it).
    """
    g = dict(globals())
    g["LANES"], g["NL"], g["NA"] = lanes, nl, na
    f = types.FunctionType(_blocks.__code__, g, name)
    f.__qualname__ = name
    f.__module__ = __name__
    f.__doc__ = f"{_blocks.__doc__.splitlines()[0]} ({lanes} lanes)"
    return numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")(f)


LANES = 64
#: Size of the reduced system when compiled for one (see :func:`_specialise`): 0, read from the arrays.
NL = NA = 0
#: Blocks of 64 subjects (large batches), of 8, one vector (small ones), and of
#: one subject (plain scalar code: a slider moving one subject).
kernel = _specialise(64, "kernel")
kernel_small = _specialise(8, "kernel_small")
kernel_one = _specialise(1, "kernel_one")
#: The entry point for each number of lanes.
KERNELS = {64: kernel, 8: kernel_small, 1: kernel_one}
_sized: dict = {}


def sized_kernel(nl: int, m: int):
    """The 64-lane entry point compiled for ``nl`` linear states and ``m`` inputs (made once per process;
    numba compiles it, or loads it from the cache, on its first call)."""
    key = (nl, m)
    if key not in _sized:
        _sized[key] = _specialise(64, sized_name(nl, m), nl, nl + m)
    return _sized[key]


def sized_name(nl: int, m: int) -> str:
    """The name (and cache file name) of :func:`sized_kernel`'s entry point."""
    return f"kernel_{nl}_states_{m}_inputs"
