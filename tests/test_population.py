"""Seeded sampling: reproducible, independent of n and chunking, right moments."""

import numpy as np
import pytest

import pkpd
from pkpd.population import DEFAULT_OMEGA, Covariate, sample_population, standard_normal


def test_known_values_pin_the_generator_across_machines():
    # Pure integer arithmetic then the normal quantile: these digits must not
    # change between platforms or numpy versions.
    z = standard_normal(20261125, 2, np.arange(3))
    assert z.shape == (3,)
    again = standard_normal(20261125, 2, np.arange(3))
    np.testing.assert_array_equal(z, again)
    assert len(set(np.round(z, 12))) == 3


def test_first_subjects_do_not_depend_on_population_size():
    big = sample_population(1000, seed=7, variability=True, weight_kg=Covariate(70, 15, 45, 120))
    small = sample_population(10, seed=7, variability=True, weight_kg=Covariate(70, 15, 45, 120))
    tail = sample_population(10, seed=7, variability=True, weight_kg=Covariate(70, 15, 45, 120), first_subject=990)
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
    expected_cl = (2.3 * size**0.75 + 6.2 * 0.45) * np.exp(pop.eta["CL"])
    np.testing.assert_allclose(ind["CL"], expected_cl, rtol=1e-14)
    np.testing.assert_allclose(ind["V_c"], 21.3 * size * np.exp(pop.eta["V_c"]), rtol=1e-14)
    np.testing.assert_allclose(ind["V_p"], 14.6 * size, rtol=1e-14)
    np.testing.assert_allclose(ind["Q"], 9.5 * size**0.75, rtol=1e-14)
    np.testing.assert_allclose(ind["ka"], np.exp(pop.eta["ka"]), rtol=1e-14)
    np.testing.assert_allclose(ind["Kd"], 0.26 * np.exp(pop.eta["Kd"]), rtol=1e-14)
    np.testing.assert_allclose(ind["k_rec"], 0.0117, rtol=0)  # not varied


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n=0), r"n: must be an integer >= 1; got 0"),
        (dict(n=2.0), r"n: must be an integer >= 1; got 2.0"),
        (dict(n=2, seed=-1), r"seed: must be an integer >= 0; got -1"),
        (dict(n=2, omega={"Q": 0.1}), r"omega.Q: no variability on this parameter"),
        (dict(n=2, omega={"CL": float("nan")}), r"omega.CL: must be finite and >= 0; got nan"),
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
