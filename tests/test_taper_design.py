"""The taper designer: its answer against a brute-force scan, the curve, the CLI."""

import math

import numpy as np
import pytest

from pkpd import Dose, Regimen, RegimenError, ParameterError, sample_population, simulate, stepped, taper_over
from pkpd.cli import main
from pkpd.metrics import rebound
from pkpd.taper_design import TaperShape, design_taper

pytestmark = pytest.mark.slow  # outside the fast loop (pytest -m 'not slow'); CI runs it

DOSE, EVERY, DAYS, MAX_DAYS, FOLLOW = 20.0, 8.0, 7.0, 8.0, 10.0
START = DAYS * 24.0  # first taper dose: one interval after the last of 21


@pytest.fixture(scope="module")
def pop():
    return sample_population(20, seed=3, variability=True)


def _taper(kind, steps, length_h):
    """The taper, built directly from the regimen builders (not through the designer)."""
    if kind == "linear":
        return taper_over(DOSE, length_h / 24.0, steps=steps, every_h=EVERY, start_h=START)
    q = (1.0 / (steps + 1)) ** (1.0 / steps)
    return stepped([DOSE * q ** k for k in range(1, steps + 1)], every_h=EVERY, step_h=length_h / steps, start_h=START)


@pytest.fixture(scope="module")
def brute(pop):
    """Every whole-interval length of each shape, one simulate call per length: {kind: [(days, p95)]}."""
    maint = Regimen((Dose("oral_ir", DOSE, every_h=EVERY, count=int(DAYS * 24 / EVERY)),))
    out = {}
    for kind in ("linear", "exponential"):
        unit = 4 * EVERY
        rows = []
        for m in range(int(MAX_DAYS * 24 // unit) + 1):
            reg = maint + _taper(kind, 4, m * unit) if m else maint
            stop = reg.last_dose_h
            res = simulate(reg, population=pop, duration_h=stop + FOLLOW * 24, output_step_h=2.0,
                           outputs=("excitability",), max_step_h=1.0)
            r = rebound(res.time_h, res.excitability, stop_h=stop)
            assert not r["censored"].any()
            peak = np.where(np.isnan(r["peak"]), 1.0, r["peak"])
            rows.append((m * unit / 24.0, float(np.percentile(peak, 95))))
        out[kind] = rows
    return out


def _design(pop, threshold, **kw):
    return design_taper((DOSE, EVERY, DAYS), population=pop, threshold=threshold, max_days=MAX_DAYS,
                        follow_days=FOLLOW, **kw)


def test_curve_falls_with_taper_length(brute):
    for kind, rows in brute.items():
        values = [v for _, v in rows]
        assert all(b <= a + 1e-9 for a, b in zip(values, values[1:])), (kind, values)
        assert values[-1] < values[0] - 0.02, kind  # a taper lowers the rebound


@pytest.mark.parametrize("kind", ["linear", "exponential"])
def test_answer_equals_brute_force_scan(pop, brute, kind):
    rows = brute[kind]
    values = sorted(v for _, v in rows)
    # thresholds between every pair of neighbouring values, below the lowest and above the highest
    thresholds = [(a + b) / 2 for a, b in zip(values, values[1:]) if b - a > 1e-5]
    thresholds += [values[0] - 0.01, values[-1] + 0.01]
    for thr in thresholds:
        d = _design(pop, thr, shapes=[kind])
        ok = [L for L, v in rows if v <= thr]
        if not ok:
            assert not d.found and d.length_days is None and d.regimen is None
            continue
        assert d.found and d.length_days == pytest.approx(ok[0]), (thr, d.curves)
        assert d.shape.kind == kind
        assert d.value == pytest.approx(dict(rows)[ok[0]], abs=1e-5)
        assert d.value <= thr


def test_values_match_the_scan_and_bisection_matches_scan(pop, brute):
    thr = (brute["linear"][0][1] + brute["linear"][-1][1]) / 2
    bis = _design(pop, thr)
    full = _design(pop, thr, scan=True)
    assert (bis.length_days, bis.shape) == (full.length_days, full.shape)
    assert bis.runs < full.runs
    for kind in ("linear", "exponential"):
        c = full.curves[f"{kind}-4"]
        np.testing.assert_allclose(c.value, [v for _, v in brute[kind]], atol=1e-5)
        np.testing.assert_allclose(c.lengths_days, [L for L, _ in brute[kind]])
        assert np.all(c.p5 <= c.median) and np.all(c.median <= c.p95)
    # the answer is the shorter of the two shapes' answers
    best = min((L for k in brute for L, v in brute[k] if v <= thr))
    assert bis.length_days == pytest.approx(best)


def test_unreachable_threshold_gives_no_answer(pop):
    d = _design(pop, 1.0001)
    assert not d.found and d.length_days is None and d.shape is None and math.isnan(d.value)
    assert "no answer" in d.answer()
    assert all(c.lengths_days[-1] == pytest.approx(MAX_DAYS) for c in d.curves.values())


def test_abrupt_stop_can_pass(pop):
    d = _design(pop, 3.0)
    assert d.found and d.length_days == 0 and "abrupt stop" in d.answer()


def test_bad_arguments(pop):
    with pytest.raises(RegimenError, match="treatment_days"):
        design_taper((20, 8, 1.1), population=pop)
    with pytest.raises(ParameterError, match="threshold"):
        design_taper((20, 8, 7), population=pop, threshold=float("nan"))
    with pytest.raises(ParameterError, match="shapes"):
        design_taper((20, 8, 7), population=pop, shapes=["sigmoid"])
    with pytest.raises(ParameterError, match="steps"):
        TaperShape("linear", 0)


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "taper"
    rc = main(["taper", "--dose-mg", "20", "--every-h", "8", "--treatment-days", "7", "--subjects", "10",
               "--seed", "1", "--threshold", "1.2", "--max-days", "8", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "not for dosing decisions" in text and "abrupt stop" in text
    assert (out / "taper.png").stat().st_size > 1000
    lines = (out / "taper.csv").read_text().splitlines()
    assert lines[0].startswith("shape,steps,length_days,") and len(lines) > 3
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("argv, option", [
    (["--threshold", "0"], "--threshold"),
    (["--treatment-days", "1.1"], "--treatment-days"),
    (["--percentile", "101"], "--percentile"),
    (["--thresh", "1.2"], "--thresh"),
])
def test_cli_bad_option(argv, option, capsys):
    rc = main(["taper", "--subjects", "2"] + argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and option in err
