"""Re-running simulate: what it remembers between calls never changes a result.

``simulate`` keeps the last few single-subject schedules, event times, default
output grids and node grids (keyed by immutable inputs, returned read-only);
these tests check that repeated and interleaved runs give the same numbers
as fresh ones, and that nothing remembered can be changed through a result.
"""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest

import pkpd
from pkpd import events, model

sim = importlib.import_module("pkpd.simulate")

DAYS2 = dict(duration_h=48.0, output_step_h=1.0, outputs=("plasma_mg_per_l", "excitability"), engine="numpy")


def _reg(amount: float, every: float = 8.0) -> pkpd.Regimen:
    return pkpd.Regimen(doses=[pkpd.Dose("oral_ir", amount, every_h=every)])


def _same(a, b) -> None:
    assert a.readouts.keys() == b.readouts.keys()
    for k in a.readouts:
        np.testing.assert_array_equal(a.readouts[k], b.readouts[k])
    np.testing.assert_array_equal(a.time_h, b.time_h)
    for k in a.parameters:
        np.testing.assert_array_equal(a.parameters[k], b.parameters[k])


def _fresh(regimen, **kw):
    """The run with every remembered value forgotten first."""
    events._ONE.clear()
    sim._SAVES.clear()
    sim._GRIDS.clear()
    return pkpd.simulate(regimen, **kw)


def test_repeated_and_interleaved_runs_equal_fresh_ones():
    a, b = _reg(10.0), _reg(20.0, every=12.0)
    ref_a, ref_b = _fresh(a, **DAYS2), _fresh(b, **DAYS2)
    for _ in range(2):
        _same(pkpd.simulate(a, **DAYS2), ref_a)
        _same(pkpd.simulate(b, **DAYS2), ref_b)
    # a new regimen equal in value, and one built after the first is gone
    _same(pkpd.simulate(_reg(10.0), **DAYS2), ref_a)
    del a
    _same(pkpd.simulate(_reg(20.0, every=12.0), **DAYS2), ref_b)


def test_other_subject_values_are_not_mixed_up():
    reg = _reg(10.0)
    heavy = pkpd.Population.typical(1, weight_kg=110.0)
    lagged = pkpd.default_parameters().replace(t_lag=0.75)
    r1 = pkpd.simulate(reg, **DAYS2)
    r2 = pkpd.simulate(reg, population=heavy, **DAYS2)
    r3 = pkpd.simulate(reg, parameters=lagged, **DAYS2)
    _same(r1, _fresh(reg, **DAYS2))
    _same(r2, _fresh(reg, population=heavy, **DAYS2))
    _same(r3, _fresh(reg, parameters=lagged, **DAYS2))
    assert not np.array_equal(r1.plasma_mg_per_l, r3.plasma_mg_per_l)


def test_results_and_remembered_values_are_read_only():
    reg = _reg(10.0)
    res = pkpd.simulate(reg, **DAYS2)
    for arr in (res.time_h, res.subject_ids, *res.readouts.values(), *res.parameters.values()):
        with pytest.raises(ValueError):
            arr[...] = 0.0
    with pytest.raises(ValueError):  # the times are shared by later runs of the same grid
        res.time_h.setflags(write=True)
    save = sim._save(48.0, None, 1.0, None, ("plasma_mg_per_l",))
    times, where = save.union()
    with pytest.raises(ValueError):
        times[0] = 1.0
    where.clear()  # the caller's copy of the mapping
    assert save.union()[1].keys() == {"output"}
    ind = model.individual_parameters(pkpd.default_parameters(), pkpd.Population.typical(1))
    for sched in (events.from_regimens([reg], ind, 48.0), events.from_regimens([reg], ind, 48.0)):
        with pytest.raises(ValueError):
            sched.bolus_time[0] = 1.0
    with pytest.raises(ValueError):
        events.event_times([reg], ind, 48.0)[0] = 1.0


def test_numba_repeats_agree_with_numpy():
    pytest.importorskip("numba")
    if not pkpd.kernel.available():
        pytest.skip("numba disabled")
    reg = _reg(10.0)
    kw = dict(DAYS2, engine="numba")
    first = pkpd.simulate(reg, **kw)
    _same(pkpd.simulate(reg, **kw), first)
    ref = pkpd.simulate(reg, **DAYS2)
    for k in ref.readouts:
        np.testing.assert_allclose(first.readouts[k], ref.readouts[k], rtol=1e-12, atol=1e-12)


def test_as_dict_and_individual_parameters_unchanged():
    p = pkpd.default_parameters().replace(V_c=40.0, ka=2.5)
    assert p.as_dict() == dataclasses.asdict(p)
    assert list(p.as_dict()) == [f.name for f in dataclasses.fields(p)]
    pop = pkpd.sample_population(5, seed=3)

    class Plain:  # a typical-values provider that is not a Parameters (as the event-table engine's)
        def as_dict(self):
            return p.as_dict()

    fast, plain = model.individual_parameters(p, pop), model.individual_parameters(Plain(), pop)
    assert list(fast) == list(plain)
    for k in fast:
        assert fast[k].dtype == plain[k].dtype and fast[k].shape == (5,)
        np.testing.assert_array_equal(fast[k], plain[k])


def test_event_times_of_a_shared_regimen_equal_per_subject_ones():
    reg = pkpd.Regimen(doses=[pkpd.Dose("oral_ir", 10.0, every_h=8.0), pkpd.Dose("oral_er", 20.0, every_h=24.0)])
    pop = pkpd.sample_population(40, seed=7)
    ind = model.individual_parameters(pkpd.default_parameters(), pop)
    ind["t_lag"] = np.round(np.linspace(0.0, 1.0, 40) % 0.3, 1)  # repeated lags
    ind["D_er"] = np.where(np.arange(40) % 2 == 0, 6.0, 8.0)
    got = events.event_times([reg] * 40, ind, 100.0)
    each = [events.from_regimens([reg], {k: v[i : i + 1] for k, v in ind.items()}, 100.0).times() for i in range(40)]
    want = np.unique(np.concatenate(each))
    np.testing.assert_array_equal(got, want[want < 100.0 + 1e-9])
    regs = [reg if i % 2 else _reg(5.0) for i in range(40)]  # two regimens: the per-subject path
    assert set(events.event_times(regs, ind, 100.0)) >= set(events.event_times([_reg(5.0)], ind, 100.0)[:1])


def test_one_chunk_progress_and_stats():
    calls = []
    res = pkpd.simulate(_reg(10.0), population=pkpd.Population.typical(3), progress=lambda d, t: calls.append((d, t)),
                        **DAYS2)
    assert calls == [(3, 3)]
    assert res.stats.chunks == 1 and res.n_subjects == 3
    parts = pkpd.simulate(_reg(10.0), population=pkpd.Population.typical(3), chunk_size=1, **DAYS2)
    assert parts.stats.chunks == 3
    for k in res.readouts:  # numpy's round-off may depend on the batch width
        np.testing.assert_allclose(parts.readouts[k], res.readouts[k], rtol=1e-12, atol=1e-15)
    for k in res.parameters:
        np.testing.assert_array_equal(parts.parameters[k], res.parameters[k])
