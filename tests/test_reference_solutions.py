"""The shared reference solutions of model-spec v2 (tests/data/reference-solutions,
a copy of the project's shared reference solutions).

Part 1 checks the independent reference solver of ``reference_model.py``
against the shared CSVs: both are solutions of model-spec.md (v2) by
different hands, so agreement to ~1e-9 says neither misread the spec.  Part 2 runs the
same scenarios through ``pkpd.simulate`` (default tolerances) and holds them
to the accuracy limits of the issue.
"""

from __future__ import annotations

import numpy as np
import pytest

from reference_model import (
    AMOUNT_STATES,
    READOUTS,
    REFERENCE_DIR,
    individual_values,
    output_grid,
    reference_scenarios,
    reference_solution,
    typical_params,
)

pytestmark = [
    pytest.mark.skipif(
        REFERENCE_DIR is None,
        reason="shared reference solutions not found (set PKPD_REFERENCE_DIR or copy them to tests/data/reference-solutions)",
    ),
    pytest.mark.slow,  # the reference solver's own self-check: outside the fast loop; CI runs it
]

SCENARIOS = reference_scenarios()
IDS = [s.name for s in SCENARIOS]

# Self-check of the reference: the CSVs are printed with 12 significant
# digits (rounding up to 5e-13 on values below 1, 5e-12 on excitability),
# so this is close to the best attainable; the largest deviation seen is
# 5.0e-12 absolute (excitability) and 2.2e-9 relative (plasma near 1e-10
# mg/L, days after the last dose), both within it.
SELF_RTOL = 1e-9
SELF_ATOL = 1e-12

# Issue limits for pkpd against an independent solution.
PLASMA_RTOL = 1e-5  # where plasma > 1e-3 * its peak
PD_ATOL = 1e-6  # occupancy, receptor density, adaptation, excitability
PD_READOUTS = ("occupancy", "receptor_density", "adaptation", "excitability")


def test_three_scenarios_present():
    assert sorted(IDS) == ["er-iv-overrides", "intrathecal-covariates", "label-titration-stop"]


def test_csv_columns_are_the_v2_readouts():
    for sc in SCENARIOS:
        assert sc.load_csv().keys() == {"time_h", *READOUTS}, sc.name


# --------------------------------------------------------------------- part 1


@pytest.mark.parametrize("sc", SCENARIOS, ids=IDS)
def test_output_grid_matches_csv(sc):
    csv = sc.load_csv()
    assert np.array_equal(csv["time_h"], output_grid(sc.duration_h, sc.output_step_h))


def _assert_close(actual, expected, rtol, atol, what):
    err = np.abs(actual - expected)
    bad = err > atol + rtol * np.abs(expected)
    if np.any(bad):
        i = int(np.argmax(err - rtol * np.abs(expected)))
        raise AssertionError(
            f"{what}: {int(bad.sum())} points out of tolerance; worst at index {i}: "
            f"got {actual[i]!r}, expected {expected[i]!r}"
        )


@pytest.mark.parametrize("sc", SCENARIOS, ids=IDS)
def test_reference_solver_reproduces_csv(sc):
    """Default reference integrator (DOP853, rtol 1e-13) vs the shared CSV.

    The ER scenario checks the zero-order release (with lag and D_er
    overridden), the intrathecal one the spinal transfer and covariates,
    the titration the slow states M and M2 over four weeks.
    """
    csv = sc.load_csv()
    ref = reference_solution(sc.regimen, sc.params, sc.duration_h, csv["time_h"])
    for name in READOUTS:
        _assert_close(ref[name], csv[name], SELF_RTOL, SELF_ATOL, f"{sc.name}/{name}")


@pytest.mark.parametrize(
    "sc", [s for s in SCENARIOS if s.duration_h <= 400], ids=lambda s: s.name
)
def test_reference_solver_radau_reproduces_csv(sc):
    """The same with Radau (rtol 1e-11, analytic Jacobian), as the CSVs were made.

    The long label-titration scenario is skipped here only for run time
    (Radau at rtol 1e-11 takes ~16 s on it); DOP853 covers it above.
    """
    csv = sc.load_csv()
    ref = reference_solution(sc.regimen, sc.params, sc.duration_h, csv["time_h"], method="Radau")
    for name in READOUTS:
        _assert_close(ref[name], csv[name], SELF_RTOL, SELF_ATOL, f"{sc.name}/{name} (Radau)")


@pytest.mark.parametrize("sc", SCENARIOS, ids=IDS)
def test_reference_mass_balance(sc):
    """Amounts in the body plus the amount eliminated equal what went in."""
    t = output_grid(sc.duration_h, sc.output_step_h)
    ref = reference_solution(sc.regimen, sc.params, sc.duration_h, t)
    in_body = sum(ref[s] for s in AMOUNT_STATES)  # C_cns is a concentration, no mass
    assert ref["A_in"][-1] > 0
    np.testing.assert_allclose(in_body + ref["A_elim"], ref["A_in"], rtol=1e-9, atol=1e-12)


def test_reference_jacobian_matches_finite_differences():
    """The analytic Jacobian Radau uses, against central differences of the
    right-hand side, at a state with drug everywhere and R, M, M2 displaced."""
    from benchmarks.engines import spec_model as sm

    p = sm.subject_parameters(individual_values(typical_params(WT=80.0, CrCl=60.0), {"ka": 0.2, "Kd": -0.3}), 0)
    y = np.array([1.3, 4.0, 2.5, 0.004, 0.02, 0.001, 0.15, 0.8, 0.05, 0.02])
    rates = (0.7, 0.3, 0.01)
    rhs = sm.make_rhs(p)
    h = 1e-7 * np.maximum(np.abs(y), 1e-3)
    numeric = np.column_stack([
        (np.array(rhs(0.0, y + np.eye(10)[k] * h[k], rates)) - np.array(rhs(0.0, y - np.eye(10)[k] * h[k], rates)))
        / (2 * h[k])
        for k in range(10)
    ])
    np.testing.assert_allclose(sm.make_jacobian(p)(0.0, y, rates), numeric, rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------- part 2


def _simulate(sc):
    import pkpd

    pop = pkpd.sample_population(1, weight_kg=sc.weight_kg, crcl_ml_min=sc.crcl_ml_min)
    return pkpd.simulate(
        sc.regimen,
        duration_h=sc.duration_h,
        parameters=pkpd.Parameters().replace(**sc.overrides),
        population=pop,
        output_step_h=sc.output_step_h,
    )


@pytest.mark.parametrize("sc", SCENARIOS, ids=IDS)
def test_pkpd_matches_reference_csv(sc):
    csv = sc.load_csv()
    res = _simulate(sc)
    assert np.array_equal(res.time_h, csv["time_h"])
    assert res.plasma_mg_per_l.shape == (1, csv["time_h"].size)

    plasma, expected = res.plasma_mg_per_l[0], csv["plasma_mg_per_l"]
    mask = expected > 1e-3 * expected.max()
    rel = np.abs(plasma[mask] - expected[mask]) / expected[mask]
    assert rel.max() <= PLASMA_RTOL, f"plasma: max relative error {rel.max():.3g}"
    # plasma below the threshold: still within the absolute scale of the threshold
    assert np.max(np.abs(plasma - expected)) <= PLASMA_RTOL * expected.max()

    for name in PD_READOUTS:
        err = np.abs(res.readout(name)[0] - csv[name])
        assert err.max() <= PD_ATOL, f"{name}: max abs error {err.max():.3g} at t={csv['time_h'][err.argmax()]} h"


@pytest.mark.parametrize("sc", SCENARIOS, ids=IDS)
def test_pkpd_other_readouts_match_csv(sc):
    """Readouts the issue does not bound, held to the same kind of limit."""
    csv = sc.load_csv()
    res = _simulate(sc)
    csf, expected = res.csf_mg_per_l[0], csv["csf_mg_per_l"]
    mask = expected > 1e-3 * expected.max()
    assert np.max(np.abs(csf[mask] - expected[mask]) / expected[mask]) <= PLASMA_RTOL
    for name in ("inhibition", "effect"):
        assert np.max(np.abs(res.readout(name)[0] - csv[name])) <= PD_ATOL, name
