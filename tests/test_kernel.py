"""The compiled engine (pkpd.kernel) against the numpy reference path.

Agreement limits are the issue's: 1e-12 relative on plasma (where plasma is
above 1e-12 of its peak) and 1e-12 absolute on the slow states, on every
route, infusions, extended release, lag, start states (resets), and a batch
against one subject at a time.  Without numba the tests that need it skip;
the fallback and the error are tested either way.  No timings are asserted.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

import pkpd
from pkpd import Dose, Infusion, Regimen, events, kernel, model
from pkpd.errors import ParameterError
from pkpd.population import sample_population
from pkpd.solver import SemiLinearSystem, integrate, node_of, time_grid

needs_numba = pytest.mark.skipif(not kernel.available(), reason="numba is not installed (pkpd[fast])")

PLASMA_RTOL = 1e-12
SLOW_ATOL = 1e-12
SLOW_READOUTS = ("receptor_density", "adaptation", "occupancy", "inhibition", "excitability", "effect",
                 "cns_depression")
CONCENTRATIONS = ("csf_mg_per_l", "lumbar_csf_mg_per_l", "biophase_mg_per_l")
ALL_READOUTS = model.READOUTS + model.EXTRA_READOUTS

REGIMENS = {
    "oral_ir": Regimen(doses=(Dose("oral_ir", 20, at_h=1.0, every_h=8),)),
    "oral_er": Regimen(doses=(Dose("oral_er", 20, at_h=0.3, every_h=12),)),
    "iv_bolus_and_infusion": Regimen(
        doses=(Dose("iv_bolus", 5, at_h=2, every_h=24),),
        infusions=(Infusion("iv_infusion", rate_mg_per_day=10, start_h=5, stop_h=50),),
    ),
    "intrathecal": Regimen(
        doses=(Dose("intrathecal_bolus", 0.05, at_h=0),),
        infusions=(Infusion("intrathecal_infusion", rate_mg_per_day=0.4, start_h=24, stop_h=120),),
    ),
    "mixed": Regimen(
        doses=(Dose("oral_ir", 10, at_h=0, every_h=8, count=6), Dose("oral_er", 15, at_h=49.7, every_h=12)),
        infusions=(Infusion("iv_infusion", rate_mg_per_h=0.5, start_h=30.25, stop_h=31.0),),
    ),
}


def _agree(a: pkpd.SimulationResult, b: pkpd.SimulationResult) -> None:
    assert set(a.readouts) == set(b.readouts)
    for name in ("plasma_mg_per_l",) + CONCENTRATIONS:
        if name not in a.readouts:
            continue
        pa, pb = a.readouts[name], b.readouts[name]
        mask = np.abs(pa) > 1e-12 * np.abs(pa).max()
        np.testing.assert_array_less(np.abs(pb - pa)[mask] / np.abs(pa)[mask], PLASMA_RTOL, err_msg=name)
    for name in SLOW_READOUTS:
        if name in a.readouts:
            np.testing.assert_array_less(np.abs(a.readouts[name] - b.readouts[name]), SLOW_ATOL, err_msg=name)


def _both(regimen, **kw):
    kw.setdefault("duration_h", 24 * 6)
    kw.setdefault("outputs", ALL_READOUTS)
    kw.setdefault("population", sample_population(40, seed=5, variability=True))
    return (pkpd.simulate(regimen, engine="numpy", **kw), pkpd.simulate(regimen, engine="numba", **kw))


@needs_numba
@pytest.mark.parametrize("name", list(REGIMENS))
def test_agrees_with_numpy_on_every_route(name):
    _agree(*_both(REGIMENS[name]))


@needs_numba
def test_agrees_with_lag_and_per_subject_regimens():
    regs = [REGIMENS[k] for k in ("oral_ir", "oral_er", "intrathecal", "mixed")] * 5
    _agree(*_both(regs, parameters=pkpd.default_parameters().replace(t_lag=0.7),
                  population=sample_population(20, seed=9, variability=True)))


@needs_numba
def test_amounts_and_all_states_agree():
    a, b = _both(REGIMENS["mixed"], amounts=True)
    for k in a.amounts:
        scale = max(np.abs(a.amounts[k]).max(), 1e-300)
        assert np.max(np.abs(a.amounts[k] - b.amounts[k])) <= 1e-12 * scale, k


@needs_numba
def test_batch_equals_one_subject_at_a_time():
    pop = sample_population(7, seed=2, variability=True)
    batch = pkpd.simulate(REGIMENS["mixed"], duration_h=72, population=pop, engine="numba")
    for i in range(pop.n):
        one = pkpd.simulate(REGIMENS["mixed"], duration_h=72, population=pop.subset([i]), engine="numba")
        for name, v in batch.readouts.items():
            np.testing.assert_allclose(one.readouts[name][0], v[i], rtol=1e-13, atol=1e-15, err_msg=name)


@needs_numba
def test_several_grids_and_merged_times_agree():
    """Readouts computed in the kernel on several grids; two grid times on one node fall back to states."""
    reg = REGIMENS["mixed"]
    save = pkpd.SaveAt(output=pkpd.Grid(np.arange(0, 96.5, 0.5), ("plasma_mg_per_l", "excitability")),
                       daily=pkpd.Grid(np.arange(0, 97, 24.0), ALL_READOUTS))
    merged = pkpd.SaveAt(output=pkpd.Grid([0.0, 10.0, 10.0 + 1e-12, 50.0], ALL_READOUTS))
    for s in (save, merged):
        a, b = _both(reg, duration_h=96, save=s, outputs=model.READOUTS)
        for name in s.grids:
            _agree(pkpd.SimulationResult(a.grids[name].time_h, a.grids[name].readouts, {}, a.subject_ids),
                   pkpd.SimulationResult(b.grids[name].time_h, b.grids[name].readouts, {}, b.subject_ids))


@needs_numba
def test_chunks_lanes_and_in_place_writes_do_not_change_the_result():
    pop = sample_population(150, seed=3, variability=True)
    kw = dict(duration_h=72, population=pop, engine="numba", outputs=ALL_READOUTS)
    whole = pkpd.simulate(REGIMENS["oral_er"], **kw)
    chunked = pkpd.simulate(REGIMENS["oral_er"], chunk_size=37, **kw)
    streamed = list(pkpd.iter_chunks(REGIMENS["oral_er"], chunk_size=64, **kw))
    for name, v in whole.readouts.items():
        np.testing.assert_array_equal(chunked.readouts[name], v, err_msg=name)
        np.testing.assert_array_equal(np.concatenate([p.readouts[name] for p in streamed]), v, err_msg=name)
    small = _solver_run(pop, lanes=kernel.SMALL_BLOCK)
    large = _solver_run(pop, lanes=kernel.BLOCK)
    for a, b in zip(small, large):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@needs_numba
@pytest.mark.parametrize("n_cns", [4.0, 1.0, 2.5, 16.0, 17.0])
def test_cns_depression_by_squaring_or_pow_agrees(n_cns):
    """A whole n_cns up to 16 is raised by squaring, any other by pow: both agree with numpy."""
    params = pkpd.Parameters(n_cns=n_cns, EC50_cns=0.05)  # a low EC50: values spread over 0..1
    numpy_run, numba_run = _both(REGIMENS["oral_ir"], parameters=params, outputs=("cns_depression",))
    a, b = numpy_run.readouts["cns_depression"], numba_run.readouts["cns_depression"]
    assert a.max() > 0.05 and ((a > 1e-6) & (a < 1 - 1e-6)).any()
    mask = a > 1e-300
    # x ** n has condition number n: the engines' x differ by an ulp or two
    np.testing.assert_array_less(np.abs(b - a)[mask] / a[mask], 1e-15 * max(10.0, n_cns))


@needs_numba
def test_whole_power_is_pow_within_n_ulps():
    from pkpd import _numba_kernel as nk

    x = np.random.default_rng(1).lognormal(0.0, 2.0, 200)
    for n in range(1, int(nk.WHOLE_POWER_MAX) + 1):
        ref = x ** float(n)
        got = np.array([nk._whole_power(v, float(n)) for v in x])
        assert np.all(np.abs(got - ref) <= n * np.spacing(ref)), n  # measured: n/2 + 1 at most


@needs_numba
@pytest.mark.parametrize("tableau", ["gauss3", "radau3"])
def test_a_tableau_that_is_not_stiffly_accurate_agrees_too(tableau):
    """The kernel's folded adaptation step has a form for each kind of tableau: Gauss
    (end value from the weights b) as well as Radau IIA (the last stage)."""
    from pkpd.solver import GAUSS3, RADAU3

    method = {"gauss3": GAUSS3, "radau3": RADAU3}[tableau]
    pop = sample_population(24, seed=11, variability=True)
    x_np, y_np = _solver_run(pop, engine="numpy", method=method)
    x_nb, y_nb = _solver_run(pop, method=method)
    np.testing.assert_allclose(x_nb, x_np, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_less(np.abs(y_nb - y_np), SLOW_ATOL)
    assert np.abs(y_np[1:]).max() > 1e-3  # the adaptations moved


@needs_numba
def test_non_finite_names_the_subject():
    pop = sample_population(70, seed=1, variability=True)
    params = pkpd.default_parameters()
    ind = model.individual_parameters(params, pop)
    sp = model.slow_parameters(ind)
    sp[2, 66] = np.inf  # k_int of subject 67
    with pytest.raises(pkpd.solver.NonFiniteError) as info:
        _solver_run(pop, slow_parameters=sp)
    assert info.value.systems.tolist() == [66]


@needs_numba
def test_threads_do_not_change_the_result():
    pop = sample_population(300, seed=4, variability=True)
    serial = _solver_run(pop, threads=1)
    two = _solver_run(pop, threads=2)
    for a, b in zip(serial, two):
        np.testing.assert_array_equal(a, b)


def _solver_run(pop, threads=None, x0=None, y0=None, engine="numba", lanes=None, slow_parameters=None, method=None,
                regimen="mixed", record_rows=None, may_compile=True):
    """Solver-level run (start states are the solver's reset mechanism)."""
    ind = model.individual_parameters(pkpd.default_parameters(), pop)
    reg = REGIMENS[regimen]
    sched = events.from_regimens([reg] * pop.n, ind, 72.0)
    nodes, rec = time_grid(np.arange(0, 72.5, 0.5), sched.times(), 0.5,
                           model.linear_system(ind)[0].diagonal().__abs__().max())
    A, B = model.linear_system(ind)
    jumps, inputs = sched.solver_input(nodes, node_of)
    memo: dict = {}
    system = SemiLinearSystem(A=A, B=B, n_slow=3, coupled_rows=model.COUPLED_STATES,
                              coefficients=lambda i, x, y: model.slow_coefficients(i, x, y, ind, memo))
    y0 = np.zeros((3, pop.n)) if y0 is None else y0
    rows = tuple(range(A.shape[0])) if record_rows is None else record_rows
    args = dict(jumps=jumps, inputs=inputs, record_index=rec, record_rows=rows, y0=y0, x0=x0, method=method)
    if engine == "numpy":
        return integrate(system, nodes, **args)
    sp = model.slow_parameters(ind) if slow_parameters is None else slow_parameters
    return kernel.integrate(system, nodes, slow_parameters=sp, threads=threads, lanes=lanes, may_compile=may_compile,
                            **args)


@needs_numba
@pytest.mark.parametrize("regimen, rows, size", [("mixed", None, (6, 2)), ("oral_ir", (model.C,), (4, 0)),
                                                 ("oral_er", (model.C, model.CNS), (5, 1))])
def test_an_entry_point_sized_for_the_system_gives_the_same_bits(monkeypatch, regimen, rows, size):
    """Blocks of 64 subjects take the entry point compiled for the reduced system's size
    (its states in registers) when a run may compile it or it is cached, else the entry
    point for any size: the two give the same bits, states and slow states alike."""
    pop = sample_population(70, seed=6, variability=True)
    name = kernel.entry_point(kernel.BLOCK, *size)[1]
    assert name == f"kernel_{size[0]}_states_{size[1]}_inputs"
    sized = _solver_run(pop, regimen=regimen, record_rows=rows)
    assert name in kernel._ready
    monkeypatch.setattr(kernel, "_ready", set())
    monkeypatch.setattr(kernel, "_absent", set())
    monkeypatch.setattr(kernel, "cache_is_warm", lambda *a: False)
    assert kernel.entry_point(kernel.BLOCK, *size, may_compile=False)[1] == kernel.ENTRY_POINTS[kernel.BLOCK]
    generic = _solver_run(pop, regimen=regimen, record_rows=rows, may_compile=False)
    assert kernel._ready == {kernel.ENTRY_POINTS[kernel.BLOCK]}
    for a, b in zip(sized, generic):
        np.testing.assert_array_equal(a, b)
    assert np.abs(sized[1][1:]).max() > 1e-4  # the adaptations moved


@needs_numba
def test_start_states_agree():
    """x0 and y0 (what a reset restarts from) agree with the numpy path."""
    pop = sample_population(25, seed=8, variability=True)
    rng = np.random.default_rng(0)
    x0 = rng.uniform(0, 3, (len(model.LINEAR_STATES), pop.n))
    y0 = rng.uniform(0, 0.3, (3, pop.n))
    xn, yn = _solver_run(pop, x0=x0, y0=y0, engine="numpy")
    xk, yk = _solver_run(pop, x0=x0, y0=y0)
    assert np.max(np.abs(xk - xn)) <= 1e-12 * np.abs(xn).max()
    assert np.max(np.abs(yk - yn)) <= SLOW_ATOL


@needs_numba
def test_constants_are_arguments_not_stale_globals(monkeypatch):
    """Changing a model constant changes both engines alike (the kernel holds no copy)."""
    reg = REGIMENS["oral_ir"]
    before = pkpd.simulate(reg, duration_h=48, engine="numba").readouts["occupancy"]
    monkeypatch.setattr(model, "UM_PER_MG_PER_L", model.UM_PER_MG_PER_L * 3.0)
    a, b = _both(reg, duration_h=48, population=None)
    _agree(a, b)
    assert not np.allclose(b.readouts["occupancy"], before)


@needs_numba
def test_cache_key_follows_the_code(monkeypatch, tmp_path):
    """The cache directory is named by a hash of the kernel's and the model's source."""
    monkeypatch.setenv("PKPD_CACHE_DIR", str(tmp_path))
    first = kernel.cache_dir()
    assert first.parent == tmp_path
    real = kernel.pathlib.Path.read_bytes

    def edited(path):
        data = real(path)
        return data + b"\n# edited\n" if path.name == "model.py" else data

    monkeypatch.setattr(kernel.pathlib.Path, "read_bytes", edited)
    assert kernel.cache_dir() != first
    assert not kernel.cache_is_warm()


def test_engine_numba_without_numba_names_the_extra(monkeypatch):
    monkeypatch.setattr(kernel, "available", lambda: False)
    with pytest.raises(ParameterError, match=r"pkpd\[fast\]"):
        pkpd.simulate(REGIMENS["oral_ir"], duration_h=24, engine="numba")


def test_disable_variable_falls_back_to_numpy(monkeypatch):
    monkeypatch.setenv(kernel.DISABLE_VARIABLE, "1")
    monkeypatch.delenv(kernel.ENGINE_VARIABLE, raising=False)
    assert not kernel.available()
    assert kernel.choose("auto", 1e12) == "numpy"
    with pytest.raises(ParameterError, match=r"pkpd\[fast\]"):
        kernel.choose("numba", 1.0)
    res = pkpd.simulate(REGIMENS["oral_ir"], duration_h=24)
    assert np.all(np.isfinite(res.plasma_mg_per_l))


def test_engine_choice(monkeypatch):
    monkeypatch.setattr(kernel, "available", lambda: True)
    monkeypatch.setattr(kernel, "loaded", lambda: False)
    monkeypatch.setattr(kernel, "cache_is_warm", lambda *a: False)
    assert kernel.choose("numpy", 1e12) == "numpy"
    assert kernel.choose("auto", 10.0) == "numpy"  # too small to pay for a compile
    assert kernel.choose("auto", kernel.AUTO_COMPILE_WORK) == "numba"
    monkeypatch.setattr(kernel, "cache_is_warm", lambda *a: True)
    assert kernel.choose("auto", kernel.AUTO_LOAD_WORK) == "numba"
    assert kernel.choose("auto", 10.0) == "numpy"
    assert kernel.choose("auto", 10.0, kernel.AUTO_LOAD_NODES) == "numba"  # a long run of one subject
    monkeypatch.setattr(kernel, "cache_is_warm", lambda *a: False)
    assert kernel.choose("auto", 10.0, kernel.AUTO_LOAD_NODES) == "numpy"  # never a compile for it
    monkeypatch.setattr(kernel, "cache_is_warm", lambda *a: True)
    monkeypatch.setenv(kernel.ENGINE_VARIABLE, "numpy")
    assert kernel.choose(None, 1e12) == "numpy"
    monkeypatch.setenv(kernel.ENGINE_VARIABLE, "fortran")
    with pytest.raises(ParameterError, match="PKPD_ENGINE"):
        kernel.choose(None, 1.0)
    with pytest.raises(ParameterError, match="engine"):
        pkpd.simulate(REGIMENS["oral_ir"], duration_h=24, engine="gpu")


def test_compile_notice_on_stderr_once_before_a_first_compile(monkeypatch, capsys):
    """One line before an entry point compiles; none when it loads from the cache, none
    when only some other entry point is uncached, and none twice in a process; an entry
    point sized for a system says which, once per size."""

    class Entry:
        signatures = []

    monkeypatch.setattr(kernel, "_announced", set())
    monkeypatch.setattr(kernel, "_ready", set())
    warm = {"kernel": True, "kernel_small": False, "kernel_one": False,
            "kernel_4_states_0_inputs": True, "kernel_5_states_0_inputs": False, "kernel_6_states_1_inputs": False}
    monkeypatch.setattr(kernel, "cache_is_warm", lambda name=None: warm[name] if name else all(warm.values()))
    kernel.announce_compile(Entry(), "kernel")  # cached: loads
    assert capsys.readouterr().err == ""
    kernel.announce_compile(Entry(), "kernel_small")  # not cached: compiles
    assert capsys.readouterr().err.strip() == kernel.COMPILE_NOTICE
    kernel.announce_compile(Entry(), "kernel_one")  # a second compile in the same process: said already
    assert capsys.readouterr().err == ""
    kernel.announce_compile(Entry(), "kernel_4_states_0_inputs")  # cached
    assert capsys.readouterr().err == ""
    for name in ("kernel_5_states_0_inputs", "kernel_6_states_1_inputs"):
        kernel.announce_compile(Entry(), name)
        assert capsys.readouterr().err.strip() == kernel.SIZED_NOTICE.format(name=name)
        kernel.announce_compile(Entry(), name)
        assert capsys.readouterr().err == ""


def test_a_run_compiles_a_sized_entry_point_only_when_asked_or_large(monkeypatch):
    """engine="numba" (or $PKPD_ENGINE=numba) may compile an entry point for the system's
    size; "auto" only for work that pays for a compile, and otherwise takes a cached one."""
    monkeypatch.delenv(kernel.ENGINE_VARIABLE, raising=False)
    assert kernel.may_compile("numba", 1.0)
    assert not kernel.may_compile("auto", kernel.AUTO_COMPILE_WORK / 2)
    assert not kernel.may_compile(None, 1.0)
    assert kernel.may_compile("auto", kernel.AUTO_COMPILE_WORK)
    monkeypatch.setenv(kernel.ENGINE_VARIABLE, "numba")
    assert kernel.may_compile(None, 1.0)
    assert not kernel.may_compile("auto", 1.0)


@needs_numba
def test_command_line_loads_the_kernel_without_scipy(tmp_path):
    """python -m pkpd run on the compiled engine imports neither scipy.linalg (numba's BLAS
    lookup is skipped in a command-line process) nor scipy.special (pkpd's own normal quantile)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PKPD_ENGINE="numba", PYTHONPATH=str(root))
    cmd = [sys.executable, "-X", "importtime", "-m", "pkpd", "run", "--subjects", "70", "--no-plot", "--out",
           str(tmp_path / "out")]
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time:")]
    assert "numba.np.arraymath" in imported  # the kernel was loaded in this process
    # numba itself imports the scipy package (7 ms, for its version), not scipy's heavy parts
    assert not {"scipy.linalg", "scipy.special", "scipy.sparse"} & set(imported)
    assert (tmp_path / "out" / "timecourse.csv").stat().st_size > 0


def test_importing_the_kernel_says_nothing(monkeypatch, capsys):
    monkeypatch.setattr(kernel, "available", lambda: True)
    monkeypatch.setattr(kernel, "_kernel", None)
    monkeypatch.setattr(kernel, "cache_is_warm", lambda *a: False)
    monkeypatch.setattr(kernel, "_build", lambda: types.SimpleNamespace(KERNELS="compiled"))
    assert kernel.get_kernel() == "compiled"
    assert capsys.readouterr().err == ""


def test_a_failing_numba_import_means_numpy(monkeypatch):
    """numba absent (its import fails): auto runs numpy, engine='numba' names the extra."""
    import sys

    monkeypatch.delenv(kernel.ENGINE_VARIABLE, raising=False)
    monkeypatch.delenv(kernel.DISABLE_VARIABLE, raising=False)
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba -> ImportError
    monkeypatch.setattr(kernel, "_kernel", None)
    assert not kernel.available()
    assert kernel.choose(None, 1e12) == "numpy"
    res = pkpd.simulate(REGIMENS["oral_er"], duration_h=24)
    assert res.plasma_mg_per_l.max() > 0
    with pytest.raises(ParameterError, match=r"pip install 'pkpd\[fast\]'"):
        pkpd.simulate(REGIMENS["oral_er"], duration_h=24, engine="numba")


@needs_numba
@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_a_state_that_stops_being_finite_mid_run_names_the_subject(engine):
    """A state that stops being finite between two records (here a jump of inf mg into the
    central compartment of subject 67 of 70 in the middle of the run: blocks of 64 lanes) is
    found, and the subject named, by both engines."""
    pop = sample_population(70, seed=1, variability=True)
    ind = model.individual_parameters(pkpd.default_parameters(), pop)
    sched = events.from_regimens([REGIMENS["oral_ir"]] * pop.n, ind, 72.0)
    A, B = model.linear_system(ind)
    nodes, rec = time_grid(np.arange(0, 72.5, 0.5), sched.times(), 0.5, np.abs(A.diagonal()).max())
    jumps, inputs = sched.solver_input(nodes, node_of)
    recorded = set(rec.tolist())
    k = next(i for i in range(len(nodes)) if nodes[i] > 30.0 and i not in recorded)  # between two records
    rows, subjects, amounts = jumps.get(k, (np.zeros(0, int), np.zeros(0, int), np.zeros(0)))
    jumps[k] = (np.append(rows, model.C), np.append(subjects, 66), np.append(amounts, np.inf))
    memo: dict = {}
    system = SemiLinearSystem(A=A, B=B, n_slow=3, coupled_rows=model.COUPLED_STATES,
                              coefficients=lambda i, x, y: model.slow_coefficients(i, x, y, ind, memo))
    args = dict(jumps=jumps, inputs=inputs, record_index=rec, record_rows=(model.C,), y0=np.zeros((3, pop.n)))
    with pytest.raises(pkpd.solver.NonFiniteError) as info:
        if engine == "numpy":
            integrate(system, nodes, **args)
        else:
            kernel.integrate(system, nodes, slow_parameters=model.slow_parameters(ind), **args)
    assert info.value.systems.tolist() == [66]


@pytest.mark.parametrize("lag_varies", [False, True])
def test_boluses_placed_on_nodes_once_per_repeated_pattern(lag_varies):
    """A population sharing a regimen and a lag has its boluses placed on the nodes once,
    for the first subject, and repeated: the same nodes as placing every bolus."""
    pop = sample_population(300, seed=2, variability=True)
    ind = model.individual_parameters(pkpd.default_parameters(), pop)
    if lag_varies:
        ind["t_lag"] = np.linspace(0.0, 0.7, pop.n)
    sched = events.from_regimens([REGIMENS["oral_ir"]] * pop.n, ind, 24.0 * 10)
    nodes, _ = time_grid(np.arange(0, 240.5, 0.5), sched.times(), 0.5, 3.0)
    assert sched.bolus_time.size > 4096
    subject, _, at, _ = kernel.flat_jumps(sched, nodes)
    np.testing.assert_array_equal(at, node_of(nodes, sched.bolus_time))
    assert at.dtype == np.int64 and subject.size == at.size


@needs_numba
@pytest.mark.parametrize("generic_cached", [False, True])
def test_compiling_a_sized_entry_point_compiles_the_one_auto_looks_for(monkeypatch, generic_cached):
    """"auto" looks in the cache for the entry point for any size: a run that compiles an
    entry point sized for its system compiles that one too when the cache lacks it (so a
    later run of another size finds one), and leaves it alone when it is cached."""
    pop = sample_population(70, seed=6, variability=True)
    loaded = []
    real = kernel._load
    monkeypatch.setattr(kernel, "_ready", set())
    monkeypatch.setattr(kernel, "_absent", set())
    monkeypatch.setattr(kernel, "cache_is_warm", lambda lanes=None: generic_cached and lanes == kernel.BLOCK)
    monkeypatch.setattr(kernel, "_load", lambda entry, name, args: (loaded.append(name), real(entry, name, args)))
    _solver_run(pop, regimen="oral_ir", record_rows=(model.C,))
    generic = [kernel.ENTRY_POINTS[kernel.BLOCK]]
    assert loaded == ["kernel_4_states_0_inputs"] + ([] if generic_cached else generic)
