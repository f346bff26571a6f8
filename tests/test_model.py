"""The model honours the solver's contract for the slow part (model.SLOW_CONTRACT).

Each slow state must obey dy_i/dt = p_i - q_i y_i with p_i, q_i reading only
the linear states and the slow states below i.  The solver relies on it to
solve the collocation equations exactly, without Newton iterations; a model
that broke it would be integrated wrongly without any error, so it is
checked here against the spec's equations written out independently.
"""

import numpy as np

import pkpd
from pkpd import model

RNG = np.random.default_rng(20261129)


def _setup(n=50):
    pop = pkpd.sample_population(n, seed=3, variability=True, omega={"k_M2": 0.3, "tau": 0.2})
    ind = model.individual_parameters(pkpd.default_parameters().replace(g=0.3), pop)
    linear = np.zeros((len(model.LINEAR_STATES), 3, n))
    linear[model.CSF] = RNG.uniform(0.0, 2e-3, (3, n))  # mg in the biophase
    slow = np.stack([RNG.uniform(0.0, 0.6, (3, n)), RNG.normal(0, 0.1, (3, n)), RNG.normal(0, 0.1, (3, n))])
    return ind, linear, slow


def _spec_rates(linear, slow, ind):
    """dR/dt, dM/dt, dM2/dt from the spec (R = 1 - loss)."""
    c = linear[model.CSF] / ind["V_csf"] * (1000.0 / 213.66) / ind["Kd"]
    g, tau = ind["g"], ind["tau"]
    theta = c / (1 + c + g)
    R = 1.0 - slow[0]
    s = tau * R * (theta + g / (1 + c + g))
    I = s / (1 + s)
    s0 = tau * g / (1 + g)
    I0 = s0 / (1 + s0)
    dR = ind["k_rec"] * (1 - R) - ind["k_int"] * theta * R
    dM = ind["k_M"] * (ind["phi"] * (I - I0) - slow[1])
    dM2 = ind["k_M2"] * (ind["phi2"] * (I - I0) - slow[2])
    return -dR, dM, dM2  # the solver's first slow state is the loss 1 - R


def test_slow_rates_are_the_spec_equations_in_the_contract_form():
    ind, linear, slow = _setup()
    expected = _spec_rates(linear, slow, ind)
    for i in range(len(model.SLOW_STATES)):
        p, q = model.slow_coefficients(i, linear, slow[:i], ind)
        np.testing.assert_allclose(p - q * slow[i], expected[i], rtol=1e-12, atol=1e-18)


def test_each_slow_state_reads_only_the_states_below_it():
    ind, linear, slow = _setup()
    for i in range(len(model.SLOW_STATES)):
        p, q = model.slow_coefficients(i, linear, slow[:i], ind)
        # a model reading slow[i] or above would get an index error or a nan here
        poisoned = np.concatenate([slow[:i], np.full((len(model.SLOW_STATES) - i, 3, 50), np.nan)])
        p2, q2 = model.slow_coefficients(i, linear, poisoned, ind)
        np.testing.assert_array_equal(p, p2)
        np.testing.assert_array_equal(q, q2)


def test_each_slow_state_reads_exactly_the_states_declared_in_slow_reads():
    ind, linear, slow = _setup()
    ns = len(model.SLOW_STATES)
    assert len(model.SLOW_READS) == ns
    for i in range(ns):
        assert all(0 <= j < i for j in model.SLOW_READS[i])
        base = model.slow_coefficients(i, linear, slow[:i], ind)
        for j in range(i):
            moved = slow.copy()
            moved[j] += 0.1
            other = model.slow_coefficients(i, linear, moved[:i], ind)
            same = all(np.array_equal(a, b) for a, b in zip(base, other))
            assert same == (j not in model.SLOW_READS[i]), (i, j)


def test_each_slow_rate_is_affine_in_its_own_state():
    ind, linear, slow = _setup()
    for i in range(len(model.SLOW_STATES)):
        lo, hi = slow.copy(), slow.copy()
        lo[i] -= 0.05
        hi[i] += 0.05
        rates = [_spec_rates(linear, y, ind)[i] for y in (lo, slow, hi)]
        np.testing.assert_allclose(rates[2] - rates[1], rates[1] - rates[0], rtol=1e-9, atol=1e-15)


def test_an_adaptation_is_linear_in_its_drive_with_a_constant_rate():
    """What the compiled kernel folds into per-step coefficients (pkpd._numba_kernel._folded_last_row):
    p(drive) = drive * p(1), exactly, and q independent of the drive."""
    drive = RNG.normal(size=200) * 0.3
    rate, extent = 10.0 ** RNG.uniform(-4, -1, 200), RNG.uniform(0, 2, 200)
    p, q = model.adaptation_coefficients(drive, rate, extent)
    p1, q1 = model.adaptation_coefficients(1.0, rate, extent)
    np.testing.assert_array_equal(p, drive * p1)
    np.testing.assert_array_equal(np.broadcast_to(q, drive.shape), np.broadcast_to(q1, drive.shape))


def test_the_slow_part_reads_only_the_coupled_linear_states():
    ind, linear, slow = _setup()
    noisy = linear.copy()
    others = [k for k in range(len(model.LINEAR_STATES)) if k not in model.COUPLED_STATES]
    noisy[others] = RNG.normal(size=noisy[others].shape)
    for i in range(len(model.SLOW_STATES)):
        a = model.slow_coefficients(i, linear, slow[:i], ind)
        b = model.slow_coefficients(i, noisy, slow[:i], ind)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_the_memo_gives_the_same_coefficients():
    ind, linear, slow = _setup()
    memo = {}
    for i in range(len(model.SLOW_STATES)):
        with_memo = model.slow_coefficients(i, linear, slow[:i], ind, memo)
        plain = model.slow_coefficients(i, linear, slow[:i], ind)
        for x, y in zip(with_memo, plain):
            np.testing.assert_array_equal(x, y)


def test_readouts_are_the_spec_formulas():
    ind, linear, slow = _setup()
    states = {"A_c": RNG.uniform(0, 20, (3, 50)), "A_csf": linear[model.CSF], "A_lum": RNG.uniform(0, 0.01, (3, 50)),
              "C_cns": RNG.uniform(0, 2, (3, 50)), "receptor_loss": slow[0], "adaptation_days": slow[1],
              "adaptation_months": slow[2]}
    n = ind["n_cns"]
    x = states["C_cns"] ** n
    np.testing.assert_allclose(model.readout("cns_depression", states, ind), x / (x + ind["EC50_cns"] ** n), rtol=1e-12)
    np.testing.assert_allclose(model.readout("adaptation", states, ind), slow[1] + slow[2], rtol=0)
    s0 = ind["tau"] * ind["g"] / (1 + ind["g"])
    I0 = s0 / (1 + s0)
    inh = model.readout("inhibition", states, ind)
    np.testing.assert_allclose(model.readout("excitability", states, ind), (1 - inh + slow[1] + slow[2]) / (1 - I0),
                               rtol=1e-12)
    np.testing.assert_allclose(model.readout("effect", states, ind), (inh - I0) - slow[1] - slow[2], rtol=1e-12,
                               atol=1e-15)
    assert model.READOUTS[-1] == "cns_depression"
