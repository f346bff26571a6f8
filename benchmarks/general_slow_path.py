"""What a general slow-part solver would cost: ``python -m benchmarks.general_slow_path``.

The solver solves the slow part's collocation equations exactly because the
model keeps the slow part triangular and each state linear in itself
(``pkpd.model.SLOW_CONTRACT``).  A model that broke that contract would need
Newton iterations on all 3 x 3 stage unknowns per subject.  This script times
one collocation step both ways for 10,000 subjects: the exact triangular
solve, and a simplified Newton (three iterations, finite-difference Jacobian,
batched 9 x 9 solves), and checks they agree.  docs/model.md quotes it.
"""

import time

import numpy as np

import pkpd
from pkpd import model
from pkpd.solver import RADAU3, _collocate, _constant_q_inverse, _collocate_constant_q
n = 10000
pop = pkpd.sample_population(n, seed=1, variability=True)
ind = model.individual_parameters(pkpd.default_parameters(), pop)
lin = np.zeros((len(model.LINEAR_STATES), 3, n))
lin[model.CSF] = np.random.default_rng(0).uniform(0, 2e-3, (3, n))
y0 = np.zeros((3, n))
h = 0.5
def current():
    ys = np.empty((3, 3, n)); memo = {}
    for i in range(3):
        p, q = model.slow_coefficients(i, lin, ys[:i], ind, memo)
        if q.ndim == 1:
            inv = _constant_q_inverse(q, h, RADAU3)
            ys[i], _ = _collocate_constant_q(y0[i], p, q, h, inv, RADAU3)
        else:
            ys[i], _ = _collocate(y0[i], p, q, h, RADAU3)
    return ys
def general(iters=3):
    # simplified Newton on the 9 stage unknowns per subject: F(Y) = Y - y0 - h (A x I) f(Y)
    Y = np.repeat(y0[:, None, :], 3, axis=1)  # (3 states, 3 stages, n)
    memo = {}
    for _ in range(iters):
        f = np.empty_like(Y)
        for i in range(3):
            p, q = model.slow_coefficients(i, lin, Y[:i], ind, memo)
            f[i] = p - q * Y[i]
        # Jacobian by finite differences in each of the 3 states (stage-diagonal), then the 9x9 system
        J = np.zeros((n, 9, 9))
        eps = 1e-7
        for j in range(3):
            Yp = Y.copy()
            Yp[j] += eps
            memo2 = {}
            fp = np.empty_like(Y)
            for i in range(3):
                p, q = model.slow_coefficients(i, lin, Yp[:i], ind, memo2)
                fp[i] = p - q * Yp[i]
            d = (fp - f) / eps  # (3 states, 3 stages, n): df_i/dy_j at each stage
            for s in range(3):
                J[:, s * 3 + np.arange(3), s * 3 + j] = d[:, s, :].T
        A = np.kron(RADAU3.a, np.eye(3))
        M = np.eye(9)[None] - h * (A[None] @ J)
        F = (Y - y0[:, None, :] - h * np.einsum("st,itn->isn", RADAU3.a, f)).transpose(2, 1, 0).reshape(n, 9)
        dY = np.linalg.solve(M, -F[..., None])[..., 0]
        Y = Y + dY.reshape(n, 3, 3).transpose(2, 1, 0)
    return Y
def main():
    for fn in (current, general):
        fn()
        t = time.perf_counter()
        for _ in range(20):
            fn()
        print(fn.__name__, f"{(time.perf_counter() - t) / 20 * 1e3:.2f} ms per step for {n} subjects")
    print("max stage difference", np.max(np.abs(current() - general())))


if __name__ == "__main__":
    main()
