"""Extreme but valid inputs survive with correct answers; impossible ones fail clearly."""

import numpy as np
import pytest

import pkpd
from pkpd import Dose, Infusion, Regimen
from reference_model import reference_solution, typical_params

P1 = pkpd.default_parameters().replace(Q=0.0, Kp=0.0)
CL = P1.CL_nr + P1.CL_r


def bateman(t, dose, f, ka, k, v, t_d=0.0):
    s = np.clip(t - t_d, 0.0, None)
    return np.where(t >= t_d, f * dose * ka / (v * (ka - k)) * (np.exp(-k * s) - np.exp(-ka * s)), 0.0)


def test_very_fast_absorption_matches_bateman():
    p = P1.replace(ka=100.0)
    t = pkpd.output_times(24.0, 0.25)
    reg = Regimen((Dose("oral_ir", 20.0, at_h=0.0, every_h=8.0, count=3),))
    c = pkpd.simulate(reg, duration_h=24.0, parameters=p, output_step_h=0.25).plasma_mg_per_l[0]
    k = CL / p.V_c
    expected = sum(bateman(t, 20.0, p.F_ir, 100.0, k, p.V_c, 8.0 * j) for j in range(3))
    mask = expected > 1e-3 * expected.max()
    np.testing.assert_allclose(c[mask], expected[mask], rtol=1e-9)


@pytest.mark.parametrize(
    "overrides, atol",
    [
        (dict(ka=100.0), 1e-6),
        (dict(k_rec=1e-6, k_int=1e-6, k_M=1e-6), 1e-6),
        # adaptation 1000/h (t1/2 2.5 s) against 0.5 h steps: L-stable, so no
        # ringing, and still within a few 1e-6 of the exact solution
        pytest.param(dict(k_M=1000.0), 5e-6, marks=pytest.mark.slow),
    ],
)
def test_extreme_rates_match_the_independent_solution(overrides, atol):
    reg = Regimen((Dose("oral_ir", 20.0, at_h=0.0, every_h=8.0, count=9),))
    t = pkpd.output_times(96.0, 0.5)
    ref = reference_solution(reg, typical_params(**overrides), 96.0, t)
    res = pkpd.simulate(reg, duration_h=96.0, parameters=pkpd.default_parameters().replace(**overrides))
    for name in ("receptor_density", "adaptation", "excitability", "occupancy"):
        np.testing.assert_allclose(res.readout(name)[0], ref[name], atol=atol, rtol=0, err_msg=name)


def test_tiny_dose_of_one_microgram_is_exactly_linear():
    small = pkpd.simulate(Regimen((Dose("iv_bolus", 0.001),)), duration_h=12.0, parameters=P1)
    large = pkpd.simulate(Regimen((Dose("iv_bolus", 1.0),)), duration_h=12.0, parameters=P1)
    np.testing.assert_allclose(small.plasma_mg_per_l * 1000.0, large.plasma_mg_per_l, rtol=1e-12)
    assert small.plasma_mg_per_l[0, 0] == pytest.approx(0.001 / P1.V_c, rel=1e-12)


def test_one_milligram_intrathecal_bolus_matches_the_independent_solution():
    reg = Regimen((Dose("intrathecal_bolus", 1.0, at_h=0.0),))
    t = pkpd.output_times(48.0, 0.5)
    ref = reference_solution(reg, typical_params(), 48.0, t)
    res = pkpd.simulate(reg, duration_h=48.0)
    np.testing.assert_allclose(res.csf_mg_per_l[0], ref["csf_mg_per_l"], rtol=1e-8)
    for name in ("receptor_density", "adaptation", "excitability"):
        np.testing.assert_allclose(res.readout(name)[0], ref[name], atol=1e-6, rtol=0)
    # well into saturation although only f_it = 4 % reaches the biophase, through the spinal transfer
    assert res.occupancy.max() > 0.7


@pytest.mark.slow
def test_a_year_of_hourly_output_reaches_the_steady_state_closed_form():
    reg = Regimen((Dose("oral_ir", 20.0, at_h=0.0, every_h=8.0),))
    res = pkpd.simulate(reg, duration_h=8760.0, output_step_h=1.0, parameters=P1,
                        outputs=("plasma_mg_per_l", "receptor_density"))
    assert res.time_h.size == 8761
    k, ka, tau = CL / P1.V_c, P1.ka, 8.0
    t = res.time_h[-25:] % tau  # time since the last dose
    c_ss = P1.F_ir * 20.0 * ka / (P1.V_c * (ka - k)) * (
        np.exp(-k * t) / (1 - np.exp(-k * tau)) - np.exp(-ka * t) / (1 - np.exp(-ka * tau))
    )
    np.testing.assert_allclose(res.plasma_mg_per_l[0, -25:], c_ss, rtol=1e-9)
    # Kp = 0: no drug reaches the biophase, so the receptors never move
    assert np.all(res.receptor_density == 1.0)


def test_a_run_too_large_for_memory_is_refused_before_it_starts():
    pop = pkpd.sample_population(2_000_000, seed=1)
    with pytest.raises(pkpd.ResourceError, match=r"needs about [0-9.]+ GiB of memory \([0-9.]+ GiB of results: 2000000 subjects x \(17521 times x 9 readouts\)\)"):
        pkpd.simulate(Regimen(), duration_h=8760.0, output_step_h=0.5, population=pop)


def test_a_non_finite_solution_names_the_subject_and_its_parameters():
    p = pkpd.default_parameters().replace(Kd=1e-320)  # valid (> 0) but overflows c
    with pytest.raises(pkpd.SolverError, match=r"subject 1: the solution became non-finite on \[0, 24\] h with .*Kd=9.99989e-321"):
        pkpd.simulate(Regimen((Dose("oral_ir", 10.0),)), duration_h=24.0, parameters=p)


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda: Dose("oral_ir", -5.0), pkpd.RegimenError, r"amount_mg: must be finite and > 0; got -5.0"),
        (lambda: Dose("oral_xr", 5.0), pkpd.RegimenError, r"route: unknown route 'oral_xr' \(expected one of oral_ir, oral_er, iv_bolus, intrathecal_bolus\)"),
        (lambda: Dose("oral_ir", float("nan")), pkpd.RegimenError, r"amount_mg: must be finite and > 0; got nan"),
        (lambda: Dose("oral_ir", 5.0, count=3), pkpd.RegimenError, r"count: 3 doses need every_h"),
        (lambda: Dose("oral_ir", 5.0, every_h=8.0, count=2.0), pkpd.RegimenError, r"count: must be an integer >= 1; got 2.0"),
        (lambda: Infusion("iv_infusion", rate_mg_per_day=1.0, start_h=5.0, stop_h=5.0), pkpd.RegimenError, r"stop_h: must be finite and > start_h \(5\); got 5.0"),
        (lambda: Infusion("intrathecal", rate_mg_per_day=1.0, start_h=0.0, stop_h=5.0), pkpd.RegimenError, r"route: unknown route 'intrathecal'"),
        (lambda: pkpd.default_parameters().replace(V_c=0.0), pkpd.ParameterError, r"parameters.V_c: must be finite and > 0; got 0.0"),
        (lambda: pkpd.default_parameters().replace(F_ir=1.5), pkpd.ParameterError, r"parameters.F_ir: must be finite and in \(0, 1\]; got 1.5"),
        (lambda: pkpd.default_parameters().replace(CLr=1.0), pkpd.ParameterError, r"parameters.CLr: unknown parameter \(did you mean 'CL_r'\?\)"),
        (lambda: pkpd.default_parameters().replace(k_M=float("inf")), pkpd.ParameterError, r"parameters.k_M: must be finite"),
        (lambda: pkpd.simulate(Regimen(), duration_h=-1.0), pkpd.ParameterError, r"duration_h: must be finite and > 0; got -1.0"),
        (lambda: pkpd.simulate(Regimen(), duration_h=10.0, output_step_h=float("nan")), pkpd.ParameterError, r"output_step_h: must be finite and > 0; got nan"),
        (lambda: pkpd.simulate(Regimen(), duration_h=10.0, times_h=[0.0, 11.0]), pkpd.ParameterError, r"times_h: must be within \[0, 10\] h \(grid 'output' ends at 11\)"),
        (lambda: pkpd.simulate(Regimen(), duration_h=10.0, outputs=("plasma",)), pkpd.ParameterError, r"outputs: unknown readout 'plasma'"),
        (lambda: pkpd.simulate([Regimen()] * 2, duration_h=10.0, population=pkpd.sample_population(3)), pkpd.RegimenError, r"regimen: 2 regimens for 3 subjects"),
        (lambda: pkpd.simulate("oral", duration_h=10.0), pkpd.RegimenError, r"regimen: not a regimen \(str\); a route name is not a regimen"),
        (lambda: pkpd.simulate(Dose("oral_ir", 5.0), duration_h=10.0), pkpd.RegimenError, r"regimen: not a regimen \(Dose\); wrap it in a regimen: pkpd.Regimen\(doses=\[...\]\)"),
        (lambda: pkpd.simulate({"a": Regimen()}, duration_h=10.0), pkpd.RegimenError, r"for named arms use pkpd.simulate_arms"),
        (lambda: pkpd.simulate([Regimen(), "x"], duration_h=10.0), pkpd.RegimenError, r"regimen\[1\]: not a regimen \(str\)"),
        (lambda: pkpd.simulate(Regimen(), duration_h=10.0, times_h=[0.0, 2.0, 1.0]), pkpd.ParameterError, r"times_h: must be finite, >= 0 and strictly increasing"),
        (lambda: pkpd.Parameters(CrCl=30.0), pkpd.ParameterError, r"parameters.CrCl: CrCl is a covariate of the subjects; give it as crcl_ml_min to the population"),
        (lambda: pkpd.Parameters(ka_er=0.2), pkpd.ParameterError, r"parameters.ka_er: removed in model v2: extended release is a zero-order release into the gut over D_er"),
        (lambda: pkpd.simulate(Regimen(), duration_h=10.0, residual_error=pkpd.ResidualError("occupancy", 0.1), outputs=("plasma_mg_per_l",)), pkpd.ParameterError, r"residual_error.readout: 'occupancy' is not a saved readout"),
    ],
)
def test_invalid_api_input_gets_a_specific_named_error(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_api_errors_are_value_errors_and_pkpd_errors():
    with pytest.raises(ValueError):
        Dose("oral_ir", 0.0)
    with pytest.raises(pkpd.PkpdError):
        Dose("oral_ir", 0.0)
    assert issubclass(pkpd.SolverError, RuntimeError) and issubclass(pkpd.ScenarioError, ValueError)
