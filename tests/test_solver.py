"""The generic integrator against mathematics: exact exponentials, convergence order."""

import numpy as np
import pytest
import scipy.linalg

from pkpd.solver import GAUSS3, RADAU3, SemiLinearSystem, expm_batch, integrate, time_grid


def test_expm_batch_matches_scipy_on_stiff_and_nonnormal_matrices():
    rng = np.random.default_rng(1)
    mats = rng.normal(size=(50, 6, 6)) * rng.uniform(1e-4, 80, size=(50, 1, 1))
    mats[:10] = -np.abs(mats[:10])  # compartment-like
    ours = expm_batch(mats)
    ref = np.stack([scipy.linalg.expm(m) for m in mats])
    scale = np.abs(ref).max(axis=(1, 2), keepdims=True)
    assert np.max(np.abs(ours - ref) / scale) < 1e-10


def test_expm_batch_handles_a_jordan_block_exactly():
    # defective matrix (repeated eigenvalue): exp([[-k, 0], [k, -k]] t) has t e^{-kt}
    k, t = 0.4615, 3.0
    m = np.array([[[-k, 0.0], [k, -k]]]) * t
    e = expm_batch(m)[0]
    assert e[1, 0] == pytest.approx(k * t * np.exp(-k * t), rel=1e-13)


@pytest.mark.parametrize("tab, q", [(GAUSS3, 3), (RADAU3, 3)])
def test_tableaus_satisfy_collocation_conditions(tab, q):
    # B(order): sum b c^(k-1) = 1/k ; C(3): sum_j a_ij c_j^(k-1) = c_i^k / k
    for k in range(1, tab.order + 1):
        assert tab.b @ tab.c ** (k - 1) == pytest.approx(1 / k, abs=1e-14)
    assert tab.b @ tab.c**tab.order != pytest.approx(1 / (tab.order + 1), abs=1e-6)  # not one order more
    for k in range(1, q + 1):
        np.testing.assert_allclose(tab.a @ tab.c ** (k - 1), tab.c**k / k, atol=1e-14)


def test_time_grid_keeps_outputs_and_events_and_bounds_the_step():
    nodes, idx = time_grid(np.array([0.0, 1.0, 2.0]), np.array([0.3, 1.0 + 1e-13]), max_step=0.4)
    np.testing.assert_array_equal(nodes[idx], [0.0, 1.0, 2.0])
    assert 0.3 in nodes
    assert np.max(np.diff(nodes)) <= 0.4 + 1e-12
    assert np.sum(np.abs(nodes - 1.0) < 1e-9) == 1  # near-duplicate merged


def _decay_system(rate_x, slow_rate):
    """x' = -a x (bolus 1 at t=0); y' = x - b y : y(t) = (e^{-at} - e^{-bt}) / (b - a)."""
    A = np.full((1, 1, 1), -rate_x)
    B = np.zeros((1, 1, 1))
    return SemiLinearSystem(
        A=A, B=B, n_slow=1,
        coefficients=lambda i, x, y: (x[0], np.full(1, slow_rate)),
        coupled_rows=(0,),
    )


def _solve(system, h, t_end=6.0, method=None):
    nodes = np.linspace(0.0, t_end, int(round(t_end / h)) + 1)
    x, y = integrate(system, nodes, jumps={0: (np.array([0]), np.array([0]), np.array([1.0]))},
                     inputs={}, record_index=np.array([nodes.size - 1]), record_rows=(0,), y0=np.zeros((1, 1)),
                     method=method)
    return x[0, 0, 0], y[0, 0, 0]


@pytest.mark.parametrize("tab", [GAUSS3, RADAU3])
def test_linear_part_exact_and_slow_part_converges_at_the_tableau_order(tab):
    a, b, t = 1.3, 0.2, 6.0
    exact = (np.exp(-a * t) - np.exp(-b * t)) / (b - a)
    errors = []
    for h in (1.0, 0.5, 0.25):
        x, y = _solve(_decay_system(a, b), h, method=tab)
        assert x == pytest.approx(np.exp(-a * t), rel=1e-13)
        errors.append(abs(y - exact))
    order = np.log2(errors[0] / errors[1]), np.log2(errors[1] / errors[2])
    assert all(tab.order - 0.5 < o < tab.order + 0.7 for o in order), (errors, order)


def test_stiff_slow_state_is_stable():
    # b h = 500: an explicit method would explode and Gauss collocation would
    # ring (|R(-inf)| = 1); Radau IIA is L-stable and damps it
    a, b, t = 1.0, 1000.0, 6.0
    _, y = _solve(_decay_system(a, b), 0.5)
    exact = (np.exp(-a * t) - np.exp(-b * t)) / (b - a)
    assert y == pytest.approx(exact, rel=1e-3)
