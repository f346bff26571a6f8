"""The result of a simulation: plain read-only arrays, saved where asked, that cannot mislead."""

import numpy as np
import pytest

import pkpd
from pkpd import Dose, Grid, Regimen, SaveAt

REG = Regimen((Dose("oral_ir", 10.0, at_h=0.0, every_h=8.0, count=3),))


def test_saveat_grids_equal_separate_runs_at_their_own_times():
    fine = np.linspace(0.0, 24.0, 97)
    odd = np.array([0.3, 7.99, 8.0, 8.01, 23.7])
    res = pkpd.simulate(REG, duration_h=24.0, save=SaveAt(output=Grid(fine, ("plasma_mg_per_l",)),
                                                          odd=Grid(odd, ("excitability", "cns_depression"))))
    alone = pkpd.simulate(REG, duration_h=24.0, times_h=odd)
    assert set(res.grids) == {"output", "odd"}
    assert res.readouts is res.grids["output"].readouts and set(res.readouts) == {"plasma_mg_per_l"}
    # the grids join into one integration mesh, so they agree to the integration accuracy
    np.testing.assert_allclose(res.grids["odd"].cns_depression, alone.cns_depression, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res.grids["odd"].excitability, alone.excitability, rtol=0, atol=1e-7)
    # a bolus exactly at a saved time is included (right-continuous), on every grid
    at8 = res.grids["odd"].time_h.tolist().index(8.0)
    assert res.grids["odd"].time_h[at8] == 8.0


def test_arrays_are_read_only_and_the_repr_is_short():
    res = pkpd.simulate(REG, duration_h=24.0, population=pkpd.sample_population(3, seed=1, variability=True))
    for arr in (res.time_h, res.plasma_mg_per_l, res.parameters["CL"], res.subject_ids):
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 1.0
    assert repr(res) == ("SimulationResult(3 subjects, 49 times 0-24 h, readouts: plasma_mg_per_l, csf_mg_per_l, "
                         "occupancy, receptor_density, adaptation, inhibition, effect, excitability, cns_depression)")
    assert len(repr(res)) < 200


def test_unsaved_readouts_say_so():
    res = pkpd.simulate(REG, duration_h=24.0, outputs=("plasma_mg_per_l",))
    with pytest.raises(AttributeError, match="readout 'excitability' was not saved"):
        res.excitability


def test_subjects_count_from_one_everywhere():
    pop = pkpd.sample_population(5, seed=2, variability=True)
    res = pkpd.simulate(REG, duration_h=24.0, population=pop, output_step_h=12.0)
    assert res.subject_ids.tolist() == [1, 2, 3, 4, 5]
    table = res.to_table()
    assert table["subject"].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]
    # a subset keeps its numbers and its numbers
    part = pkpd.simulate(REG, duration_h=24.0, population=pop.subset(slice(2, 4)), output_step_h=12.0)
    assert part.subject_ids.tolist() == [3, 4]
    np.testing.assert_array_equal(part.plasma_mg_per_l, res.plasma_mg_per_l[2:4])


def test_long_table_carries_units_and_the_covariates_in_force():
    pop = pkpd.Population.typical(2).with_covariates(weight_kg=[58.0, 90.0], crcl_ml_min=[45.0, 110.0])
    res = pkpd.simulate(REG, duration_h=8.0, population=pop, output_step_h=4.0)
    table = res.to_table(arm="a")
    assert list(table)[:3] == ["arm", "subject", "time_h"]
    assert list(table)[-2:] == ["weight_kg", "crcl_ml_min"]
    assert table["weight_kg"].tolist() == [58.0] * 3 + [90.0] * 3
    assert table["crcl_ml_min"].tolist() == [45.0] * 3 + [110.0] * 3
    units = res.units
    assert units["time_h"] == "h" and units["plasma_mg_per_l"] == "mg/L" and units["crcl_ml_min"] == "mL/min"
    assert all(name in units for name in table)


def test_solver_statistics_are_reported():
    res = pkpd.simulate(REG, duration_h=24.0, population=pkpd.Population.typical(10), chunk_size=4)
    assert res.stats.chunks == 3
    assert res.stats.nodes > 49  # outputs plus the graded steps after each dose
    assert res.stats.exponentials >= 1


def test_simulated_observations_follow_the_residual_error():
    err = pkpd.ResidualError("plasma_mg_per_l", proportional=0.2)
    pop = pkpd.sample_population(4, seed=7)
    res = pkpd.simulate(REG, duration_h=24.0, population=pop, residual_error=err)
    ratio = res.observed[:, 1:] / res.plasma_mg_per_l[:, 1:]
    assert 0.05 < np.std(ratio - 1.0) < 0.4
    again = pkpd.simulate(REG, duration_h=24.0, population=pop, residual_error=err, chunk_size=1)
    # drawn per subject and observation, whatever the chunking (values agree to round-off)
    np.testing.assert_allclose(again.observed, res.observed, rtol=1e-13)
    assert res.to_table()["observed"].shape == (4 * 49,)


def test_arms_for_one_population_differ_only_by_their_regimen():
    pop = pkpd.sample_population(3, seed=4, variability=True)
    arms = pkpd.simulate_arms({"low": REG, "none": Regimen()}, duration_h=24.0, population=pop)
    assert list(arms) == ["low", "none"]
    np.testing.assert_array_equal(arms["low"].parameters["CL"], arms["none"].parameters["CL"])
    assert np.all(arms["none"].plasma_mg_per_l == 0.0)
    with pytest.raises(pkpd.RegimenError, match=r"arms\['x'\]: not a regimen \(Dose\)"):
        pkpd.simulate_arms({"x": Dose("oral_ir", 5.0)}, duration_h=24.0)


def test_an_absurd_dose_interval_is_refused_before_anything_is_built():
    # a dose every 3.6 s (the shortest interval a Dose accepts) for 11 years: 1e8 doses
    reg = Regimen((Dose("oral_ir", 1.0, at_h=0.0, every_h=0.001),))
    with pytest.raises(pkpd.ResourceError, match=r"schedules about 1e\+08 doses and input changes at once"):
        pkpd.simulate(reg, duration_h=100_000.0)
    # a population whose outputs cannot fit is refused before the first chunk
    with pytest.raises(pkpd.ResourceError, match=r"needs about [0-9.]+ GiB of memory"):
        pkpd.simulate(Regimen(), duration_h=8760.0, population=pkpd.Population.typical(3_000_000))


def test_plot_draws_percentile_bands(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    res = pkpd.simulate(REG, duration_h=24.0, population=pkpd.sample_population(20, seed=1, variability=True))
    axes = res.plot()
    assert [a.get_ylabel().split("\n")[0] for a in axes] == ["plasma_mg_per_l", "excitability"]
    lines = axes[0].get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), np.median(res.plasma_mg_per_l, axis=0))
    axes[0].figure.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 5000
