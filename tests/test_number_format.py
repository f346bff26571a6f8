"""The vectorised ``%.10g`` formatter: byte for byte CPython's, for every float64."""

import numpy as np
import pytest

from pkpd import files as pio
from pkpd import number_format as nf


def _check(values):
    """Every text of ``format_fields`` equals ``"%.10g" % v``, and the lengths agree."""
    x = np.asarray(values, dtype=float).ravel()
    fields, lengths = nf.format_fields(x)
    expected = ["%.10g" % v for v in x.tolist()]
    assert lengths.tolist() == [len(e) for e in expected]
    got = nf.join_fields(fields).decode("ascii")
    if got != "".join(expected):  # name the first differing value
        texts = nf.format_texts(x)
        bad = [(v, g, e) for v, g, e in zip(x.tolist(), texts, expected) if g != e]
        pytest.fail(f"{len(bad)} numbers differ, e.g. {bad[:5]}")


def _neighbours(values):
    v = np.asarray(values, dtype=float)
    return np.concatenate([np.nextafter(v, -np.inf), v, np.nextafter(v, np.inf)])


def test_random_bit_patterns_cover_every_exponent_and_subnormals():
    bits = np.random.default_rng(1).integers(0, 2**64, 10**6, dtype=np.uint64, endpoint=False)
    x = bits.view(np.float64)
    assert np.any((x != 0) & (np.abs(x) < np.finfo(float).tiny))  # subnormals among them
    _check(x)


def test_typical_values_and_their_negatives():
    rng = np.random.default_rng(2)
    x = 10.0 ** rng.uniform(-6, 4, 300000)
    _check(np.concatenate([x, -x, rng.lognormal(0, 3, 100000)]))


def test_integers_half_integers_and_exact_decimal_ties():
    ints = np.arange(-20000, 20000, dtype=float)
    ties = np.array([12345678905.0, 12345678915.0, 0.5, 1.5, 2.5, 0.125, 0.375, 1e10 + 5, 99999999995.0,
                     2.0**40 + 0.5, 2.0**33 + 0.5, 3.0e15 + 5, 1.0000000005, 1.0000000015])
    _check(np.concatenate([ints, ints / 2 + 0.25, ints / 2, ties, -ties, 10.0 ** np.arange(-30, 31)]))


def test_rounding_boundaries_and_notation_switches():
    edges = [9999999999.5, 0.99999999995, 9.9999999995e-05, 1e-4, 1e-5, 1e10, 9999999999.0, 99999.999995,
             0.0001, 0.00001, 1e9, 1e16, 1e22, 1e23, 1e-300, 1e300, 5e-324, 2.2250738585072014e-308]
    scan = (10.0 ** np.arange(-320, 309)).tolist()
    _check(_neighbours(edges + scan))
    _check(-_neighbours(edges))


def test_special_values():
    info = np.finfo(float)
    special = [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, info.max, -info.max, info.tiny, info.smallest_subnormal,
               -info.smallest_subnormal, info.eps]
    _check(special)
    assert nf.format_texts(special)[:6] == ["0", "-0", "nan", "nan", "inf", "-inf"]


def test_separators_shapes_and_views():
    x = np.array([[1.5, -2e-7, np.nan], [0.0, 123456.0, 1e100]])
    fields, lengths = nf.format_fields(x, separator=np.array([ord(","), ord(","), ord("\n")], dtype=np.uint8))
    assert fields.shape == (2, 3, nf.FIELD_BYTES) and lengths.shape == (2, 3)
    assert nf.join_fields(fields) == b"1.5,-2e-07,nan\n0,123456,1e+100\n"
    row = np.zeros((2, 5, 3), dtype=np.uint64)  # write_fields into a strided view of a larger buffer
    nf.write_fields(x, row[:, 1:4], ord(";"))
    assert nf.join_fields(row.view(np.uint8)) == b"1.5;-2e-07;nan;0;123456;1e+100;"


def _old_format_timecourse(arm, subjects, time_h, readouts):
    """The Python formatter that ``format_timecourse`` replaced (reference)."""
    row = ",".join(["%.10g"] * len(pio.TIMECOURSE_READOUTS)) + "\n"
    t = len(time_h)
    lines = []
    for i, s in enumerate(np.asarray(subjects).tolist()):
        for j in range(t):
            values = tuple(float(readouts[name][i, j]) for name in pio.TIMECOURSE_READOUTS)
            lines.append(f"{arm},{s},{'%.10g' % time_h[j]}," + row % values)
    return "".join(lines).encode()


def test_format_timecourse_equals_the_old_python_formatter(monkeypatch):
    rng = np.random.default_rng(3)
    n, t = 23, 7
    time_h = np.array([0.0, 0.5, 1.0, 2.25, 24.0, 167.99999999999997, 672.0])
    readouts = {name: rng.lognormal(-2, 4, (n, t)) * rng.choice([1.0, -1.0], (n, t))
                for name in pio.TIMECOURSE_READOUTS}
    first = pio.TIMECOURSE_READOUTS[0]
    readouts[first][0, :] = 0.0
    readouts[first][1, 2] = np.nan
    readouts[first][2, 3] = -0.0
    readouts[pio.TIMECOURSE_READOUTS[-1]][3, :] = np.nan
    subjects = np.arange(995, 995 + n)  # the head's width changes between batches
    monkeypatch.setattr(pio, "_ROWS_PER_BATCH", 3 * t)  # several batches, the last one short
    pieces = list(pio.format_timecourse("arm-x", subjects, time_h, readouts))
    assert len(pieces) == 8  # one per batch of 3 subjects (21 rows)
    assert all(p.endswith(b"\n") for p in pieces)
    assert b"".join(pieces) == _old_format_timecourse("arm-x", subjects, time_h, readouts)


def test_format_timecourse_quotes_the_arm_and_handles_empty_input():
    readouts = {name: np.array([[1.0]]) for name in pio.TIMECOURSE_READOUTS}
    body = b"".join(pio.format_timecourse('a,"b"', [7], np.array([2.0]), readouts))
    assert body == b'"a,""b""",7,2,' + b",".join([b"1"] * 9) + b"\n"
    empty = {name: np.zeros((0, 3)) for name in pio.TIMECOURSE_READOUTS}
    assert b"".join(pio.format_timecourse("a", [], np.arange(3.0), empty)) == b""
    no_times = {name: np.zeros((2, 0)) for name in pio.TIMECOURSE_READOUTS}
    assert b"".join(pio.format_timecourse("a", [1, 2], np.zeros(0), no_times)) == b""


def test_interleaved_calls_do_not_share_buffers(monkeypatch):
    rng = np.random.default_rng(4)
    monkeypatch.setattr(pio, "_ROWS_PER_BATCH", 4)
    calls = [("a", np.array([0.0, 1.0]), {name: rng.normal(size=(5, 2)) for name in pio.TIMECOURSE_READOUTS}),
             ("a-much-longer-arm", np.array([0.5, 7.25]),
              {name: rng.lognormal(size=(5, 2)) for name in pio.TIMECOURSE_READOUTS})]
    alone = [b"".join(pio.format_timecourse(arm, range(1, 6), t, r)) for arm, t, r in calls]
    pieces = list(zip(*[pio.format_timecourse(arm, range(1, 6), t, r) for arm, t, r in calls]))
    assert [b"".join(p[0] for p in pieces), b"".join(p[1] for p in pieces)] == alone
