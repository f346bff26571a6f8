"""Seeded sampling: reproducible, independent of n and chunking, right moments."""

import numpy as np
import pytest

import pkpd
from pkpd.population import DEFAULT_OMEGA, Covariate, sample_population, standard_normal


def test_splitmix64_matches_the_published_reference_sequence():
    # SplitMix64 (Steele, Lea & Flood 2014) seeded with 0: its first outputs
    # are 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4 (Vigna's reference code).
    from pkpd.population import _splitmix64

    gamma = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        out = _splitmix64(np.array([0, gamma], dtype=np.uint64))
    assert [hex(int(v)) for v in out] == ["0xe220a8397b1dcdaf", "0x6e789e6aa1b965f4"]


def test_known_values_pin_the_generator_across_machines():
    # Pure integer arithmetic, then the normal quantile: these digits must not
    # change between platforms or numpy versions.
    z = standard_normal(20261125, 2, np.arange(3))
    np.testing.assert_allclose(z, [-1.05825193, 0.62931376, -1.40231294], rtol=0, atol=5e-9)
    pop = sample_population(3, seed=2, variability=True)
    np.testing.assert_allclose(pop.eta["CL"], [-0.2705609913946677, 0.21321820305002123, -0.4377389951055169],
                               rtol=0, atol=1e-15)
    np.testing.assert_allclose(pop.eta["k_int"], [0.05112106367258027, -0.33751975202651396, -0.1704461380833218],
                               rtol=0, atol=1e-15)
    assert pop.subject_ids.tolist() == [1, 2, 3]


def test_first_subjects_do_not_depend_on_population_size():
    big = sample_population(1000, seed=7, variability=True, weight_kg=Covariate(70, 15, 45, 120))
    small = sample_population(10, seed=7, variability=True, weight_kg=Covariate(70, 15, 45, 120))
    tail = sample_population(10, seed=7, variability=True, weight_kg=Covariate(70, 15, 45, 120), first_subject=991)
    for k in DEFAULT_OMEGA:
        np.testing.assert_array_equal(big.eta[k][:10], small.eta[k])
        np.testing.assert_array_equal(big.eta[k][990:], tail.eta[k])
    np.testing.assert_array_equal(big.weight_kg[:10], small.weight_kg)


def test_etas_have_the_spec_standard_deviations_and_are_independent():
    pop = sample_population(40_000, seed=3, variability=True)
    for k, omega in DEFAULT_OMEGA.items():
        assert np.std(pop.eta[k]) == pytest.approx(omega, rel=0.02)
        assert abs(np.mean(pop.eta[k])) < 4 * omega / np.sqrt(40_000)
    corr = np.corrcoef(np.stack([pop.eta[k] for k in DEFAULT_OMEGA]))
    assert np.max(np.abs(corr - np.eye(len(DEFAULT_OMEGA)))) < 0.03


def test_no_variability_means_identical_typical_subjects():
    pop = sample_population(5, seed=3)
    assert all(np.all(v == 0) for v in pop.eta.values())
    assert np.all(pop.weight_kg == 70) and np.all(pop.crcl_ml_min == 100)


def test_truncated_covariate_redraws_instead_of_clipping():
    cov = Covariate(mean=70, sd=20, min=60, max=80)
    w = sample_population(20_000, seed=1, weight_kg=cov).weight_kg
    assert w.min() >= 60 and w.max() <= 80
    # clipping would pile up mass exactly on the bounds
    assert np.mean(w == 60) == 0 and np.mean(w == 80) == 0
    # truncated normal on +-0.5 sd keeps the mean and has sd ~ 0.2887 * width / 1.0 (near uniform)
    assert np.mean(w) == pytest.approx(70, abs=0.2)
    assert np.std(w) == pytest.approx(5.62, rel=0.03)  # sd of N(0,20) truncated to +-10


def test_individual_parameters_apply_covariates_and_etas():
    p = pkpd.default_parameters()
    pop = sample_population(3, seed=2, variability=True).with_covariates(weight_kg=58, crcl_ml_min=45)
    ind = pkpd.individual_parameters(p, pop)
    size = 58 / 70
    expected_cl = (1.3 * size**0.75 + 7.2 * 0.45) * np.exp(pop.eta["CL"])
    np.testing.assert_allclose(ind["CL"], expected_cl, rtol=1e-14)
    np.testing.assert_allclose(ind["V_c"], 21.3 * size * np.exp(pop.eta["V_c"]), rtol=1e-14)
    np.testing.assert_allclose(ind["V_p"], 14.6 * size, rtol=1e-14)
    np.testing.assert_allclose(ind["Q"], 9.5 * size**0.75, rtol=1e-14)
    np.testing.assert_allclose(ind["ka"], np.exp(pop.eta["ka"]), rtol=1e-14)
    np.testing.assert_allclose(ind["Kd"], 0.26 * np.exp(pop.eta["Kd"]), rtol=1e-14)
    np.testing.assert_allclose(ind["k_rec"], 0.01163, rtol=0)  # not varied
    np.testing.assert_allclose(ind["WT"], 58.0, rtol=0)
    np.testing.assert_allclose(ind["CrCl"], 45.0, rtol=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n=0), r"n: must be an integer >= 1; got 0"),
        (dict(n=2.0), r"n: must be an integer >= 1; got 2.0"),
        (dict(n=2, seed=-1), r"seed: must be an integer >= 0; got -1"),
        (dict(n=2, omega={"F_ir": 0.1}), r"omega.F_ir: no log-normal variability on 'F_ir': its range is bounded"),
        (dict(n=2, omega={"WT": 0.1}), r"omega.WT: no log-normal variability on 'WT': not a model parameter"),
        (dict(n=2, omega={"CL": float("nan")}), r"omega.CL: must be a finite number; got nan"),
        (dict(n=2, omega={"CL": -0.1}), r"omega.CL: must be >= 0 \(a standard deviation\); got -0.1"),
        (dict(n=2, correlation={"CL,V_c": 1.0}), r"correlation.CL,V_c: a correlation must be in \(-1, 1\); got 1.0"),
        (dict(n=2, correlation={"CL,k_sp": 0.2}), r"correlation.CL,k_sp: k_sp has no omega; give omega.k_sp first"),
        (dict(n=2, correlation={"CL": 0.2}), r"correlation.CL: expected two different parameter names"),
        (dict(n=2, omega={"V_c": 0}, correlation={"CL,V_c": 0.2}), r"correlation.CL,V_c: both etas need an omega > 0"),
        (dict(n=2, weight_kg=float("inf")), r"WT: must be a finite number or a Covariate; got inf"),
    ],
)
def test_bad_population_arguments_name_the_argument(kwargs, message):
    n = kwargs.pop("n")
    with pytest.raises(pkpd.ParameterError, match=message):
        sample_population(n, **kwargs)


def test_bad_covariate_table():
    with pytest.raises(pkpd.ParameterError, match=r"sd: must be >= 0; got -1"):
        Covariate(70, -1, 40, 100)
    with pytest.raises(pkpd.ParameterError, match=r"0 < min <= mean <= max"):
        Covariate(30, 1, 40, 100)


def test_any_positive_parameter_can_vary_with_the_given_omega():
    pop = sample_population(20_000, seed=5, variability=True, omega={"k_sp": 0.2, "ka": 0})
    assert "ka" not in pop.eta  # omega 0 switches it off
    assert np.std(pop.eta["k_sp"]) == pytest.approx(0.2, rel=0.03)
    ind = pkpd.individual_parameters(pkpd.default_parameters(), pop)
    np.testing.assert_allclose(ind["k_sp"], 0.552 * np.exp(pop.eta["k_sp"]), rtol=1e-14)
    np.testing.assert_allclose(ind["ka"], 1.0, rtol=0)


def test_correlated_etas_have_the_requested_covariance():
    pop = sample_population(40_000, seed=11, variability=True, correlation={("CL", "V_c"): 0.6, "ka,CL": -0.3})
    cov = np.cov(np.stack([pop.eta["ka"], pop.eta["CL"], pop.eta["V_c"]]))
    expected = np.array([[0.16, -0.3 * 0.4 * 0.25, 0.0],
                         [-0.3 * 0.4 * 0.25, 0.0625, 0.6 * 0.0625],
                         [0.0, 0.6 * 0.0625, 0.0625]])
    np.testing.assert_allclose(cov, expected, atol=0.004)
    # the uncorrelated etas are exactly those of the diagonal default
    plain = sample_population(10, seed=11, variability=True)
    np.testing.assert_array_equal(pop.eta["Kd"][:10], plain.eta["Kd"])


def test_an_omega_block_must_be_symmetric_positive_definite():
    from pkpd.population import Omega

    with pytest.raises(pkpd.ParameterError, match="omega: the covariance matrix must be symmetric"):
        Omega(("CL", "V_c"), [[0.0625, 0.01], [0.02, 0.0625]])
    with pytest.raises(pkpd.ParameterError, match="positive definite"):
        Omega(("CL", "V_c", "ka"), [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    with pytest.raises(pkpd.ParameterError, match="2x2 matrix"):
        Omega(("CL", "V_c"), [[1.0]])
    block = Omega(("CL", "V_c"), [[0.0625, 0.03], [0.03, 0.0625]])
    pop = sample_population(4, seed=1, variability=True, omega=block)
    assert set(pop.eta) == {"CL", "V_c"}


def test_subjects_are_the_same_whatever_the_chunk_they_are_drawn_in():
    whole = sample_population(50, seed=9, variability=True, correlation={"CL,V_c": 0.5}, omega={"k_M2": 0.3})
    part = sample_population(5, seed=9, variability=True, correlation={"CL,V_c": 0.5}, omega={"k_M2": 0.3},
                             first_subject=21)
    for k in whole.eta:
        np.testing.assert_array_equal(whole.eta[k][20:25], part.eta[k])
    np.testing.assert_array_equal(part.subject_ids, np.arange(21, 26))


def test_population_refuses_unclear_construction():
    with pytest.raises(pkpd.ParameterError, match="give weight_kg and/or crcl_ml_min"):
        pkpd.Population(eta={})
    pop = pkpd.Population.typical(3)
    with pytest.raises(pkpd.ParameterError, match="by keyword"):
        pop.with_covariates(np.array([60.0, 70.0, 80.0]))
    moved = pop.with_covariates(weight_kg=[60.0, 70.0, 80.0])
    assert moved.weight_kg.tolist() == [60.0, 70.0, 80.0]
    with pytest.raises(pkpd.ParameterError, match=r"expected one value per subject, shape \(3,\); got shape \(2,\)"):
        pkpd.Population(eta={"CL": np.zeros(2)}, weight_kg=np.full(3, 70.0))
    assert not pop.weight_kg.flags.writeable
    assert repr(pop) == "Population(n=3, seed=0, random effects on: none)"


def test_residual_error_is_reproducible_per_observation():
    from pkpd.population import ResidualError

    err = ResidualError("plasma_mg_per_l", proportional=0.1, additive=0.01)
    f = np.full((4, 2000), 0.5)
    y = err.observe(f, seed=3, subjects=np.arange(1, 5))
    np.testing.assert_array_equal(y[2:], err.observe(f[2:], seed=3, subjects=np.arange(3, 5)))
    # y = f (1 + eps_p) + eps_a: mean f, variance f^2 sp^2 + sa^2
    assert np.mean(y) == pytest.approx(0.5, abs=0.003)
    assert np.var(y) == pytest.approx(0.25 * 0.01 + 1e-4, rel=0.05)
    with pytest.raises(pkpd.ParameterError, match="residual_error.additive: must be >= 0"):
        ResidualError("plasma_mg_per_l", additive=-1)


def test_an_eta_on_a_clearance_part_reaches_the_total_clearance():
    pop = pkpd.Population(eta={"CL_r": np.log([0.5, 2.0]), "CL": np.log([1.0, 1.1])}, weight_kg=[70.0, 70.0],
                          crcl_ml_min=[100.0, 50.0])
    ind = pkpd.individual_parameters(pkpd.default_parameters(), pop)
    np.testing.assert_allclose(ind["CL"], [1.3 + 3.6, (1.3 + 14.4 * 0.5) * 1.1], rtol=1e-14)


def test_per_subject_estimates_come_back_exactly(tmp_path):
    from pkpd.population import population_from_estimates

    path = tmp_path / "posthoc.csv"
    path.write_text("ID,CL_r,V_c,ka,WT,CRCL\n7,5.0,20.0,1.6,70,100\n9,9.0,30.0,0.8,70,40\n")
    pop = population_from_estimates(path, pkpd.default_parameters())
    assert pop.subject_ids.tolist() == [7, 9]
    ind = pkpd.individual_parameters(pkpd.default_parameters(), pop)
    np.testing.assert_allclose(ind["CL_r"], [5.0, 9.0], rtol=1e-14)
    np.testing.assert_allclose(ind["V_c"], [20.0, 30.0], rtol=1e-14)
    np.testing.assert_allclose(ind["CL"], [1.3 + 5.0, 1.3 + 9.0 * 0.4], rtol=1e-14)
    res = pkpd.simulate(pkpd.Regimen((pkpd.Dose("iv_bolus", 10.0),)), duration_h=1.0, population=pop,
                        times_h=[0.0], outputs=("plasma_mg_per_l",))
    np.testing.assert_allclose(res.plasma_mg_per_l[:, 0], [0.5, 1.0 / 3.0], rtol=1e-12)  # 10 mg / V_c
    with pytest.raises(pkpd.ParameterError, match="table.F_ir: no log-normal variability"):
        population_from_estimates({"ID": [1], "F_ir": [0.8]}, pkpd.default_parameters())
    with pytest.raises(pkpd.ParameterError, match="table.V_c: not a number; got 'x'"):
        population_from_estimates({"ID": [1], "V_c": ["x"]}, pkpd.default_parameters())


def _quantile_test_points():
    # About 1e6 points: the draws' own grid ((k + 0.5) / 2**53), log-uniform
    # into both tails down to 2**-53 and up to 1 - 2**-53, and the edges of
    # AS 241's ranges (|u - 0.5| = 0.425 and r = sqrt(-log u) = 5).
    rng = np.random.default_rng(20261129)
    grid = (rng.integers(0, 2**53, 600_000, dtype=np.uint64).astype(np.float64) + 0.5) / 2.0**53
    lower = 2.0 ** -rng.uniform(1.0, 53.0, 200_000)
    upper = 1.0 - 2.0 ** -rng.uniform(1.0, 53.0, 200_000)
    edges = [2.0**-53, 2.0**-52, 1 - 2.0**-53, 1 - 2.0**-52, 0.075, 0.925, np.nextafter(0.075, 0),
             np.nextafter(0.925, 1), np.exp(-25.0), np.nextafter(np.exp(-25.0), 1), 1 - np.exp(-25.0)]
    return np.concatenate([grid, lower, upper, edges])


def test_normal_quantile_agrees_with_scipy_to_round_off():
    # Our AS 241 and scipy's ndtri (Cephes) are each within about 7e-16 of the
    # exact quantile (3 ulp; measured with mpmath, see the next test), so they
    # differ by up to about 1.05e-15 (measured max on these points); the bound
    # is twice that.  A wrong digit in a coefficient shows up far above it.
    from scipy.special import ndtri

    from pkpd.population import _ndtri

    u = _quantile_test_points()
    ours, theirs = _ndtri(u), ndtri(u)
    assert np.all(np.isfinite(ours))
    rel = np.abs(ours - theirs) / np.abs(np.where(theirs == 0, 1.0, theirs))
    assert rel.max() <= 2.1e-15
    assert np.median(rel) <= 2.3e-16  # mostly equal or 1 ulp apart


def test_normal_quantile_is_accurate_against_a_high_precision_reference():
    mpmath = pytest.importorskip("mpmath")
    from pkpd.population import _ndtri

    rng = np.random.default_rng(7)
    u = np.concatenate([rng.uniform(0.075, 0.925, 500), 2.0 ** -rng.uniform(1.1, 53.0, 500),
                        1 - 2.0 ** -rng.uniform(1.1, 53.0, 500)])
    with mpmath.workprec(120):
        exact = np.array([float(mpmath.sqrt(2) * mpmath.erfinv(2 * mpmath.mpf(float(v)) - 1)) for v in u])
    rel = np.abs(_ndtri(u) - exact) / np.abs(exact)
    # Measured max 7.0e-16 (3 ulp) on 9000 such points.
    assert rel.max() <= 1.4e-15


def test_normal_quantile_known_values_and_symmetry():
    from pkpd.population import _ndtri

    # Exact quantiles (mpmath, 120 bits) rounded to double; ours lands within 1 ulp.
    # (scipy's ndtri gives 1.959963984540054 and -8.125890664701908, 1 ulp out.)
    known = {0.975: 1.9599639845400538, 2.0**-53: -8.209536151601387, 2.0**-52: -8.125890664701906}
    z = _ndtri(np.array(list(known)))
    np.testing.assert_allclose(z, list(known.values()), rtol=2.3e-16, atol=0)
    assert _ndtri(np.array(0.5)) == 0.0 and _ndtri(np.array(0.5)).shape == ()
    # 1 - u is exact when u is a multiple of 2**-53: the quantile is then
    # exactly antisymmetric (both tails use the same p).
    rng = np.random.default_rng(11)
    u = rng.integers(1, 2**53, 200_000, dtype=np.uint64).astype(np.float64) / 2.0**53
    u = np.concatenate([u, [2.0**-53, 2.0**-30, round(0.075 * 2**53) / 2.0**53, 0.25]])
    np.testing.assert_array_equal(_ndtri(1.0 - u), -_ndtri(u))
    # Shape is kept.
    assert _ndtri(np.full((2, 3), 0.3)).shape == (2, 3)


def test_importing_pkpd_does_not_import_scipy():
    import subprocess
    import sys

    code = "import sys, pkpd, pkpd.cli; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
