"""Numbers as ``"%.10g" % x`` texts for whole arrays, without Python per number.

:func:`format_fields` turns a float64 array into left-aligned byte fields
(``FIELD_BYTES`` wide) and their lengths, byte for byte what CPython's
``"%.10g" % x`` gives, optionally followed by one separator byte per number.
Callers assemble CSV rows from the fields with a boolean mask (see
:func:`join_fields`), so the work is NumPy work that releases the GIL.

Why it is exact
---------------
For a finite nonzero ``x`` the ten significant digits are the integer
``M = round(|x| * 10**(9 - e))`` with ``10**9 <= M < 10**10``, rounded
half-even on the exact binary value (what CPython's ``%.10g`` does).  The
scaled value is computed in floating point as ``|x| * A * B`` with ``A`` and
``B`` correctly rounded powers of ten (``B`` is 1 unless ``|x|`` is tiny), so
it carries at most four roundings: a relative error below ``4 * 2**-53``,
less than ``5e-6`` in absolute terms below ``10**10 + 1``.  Rounding that
value to the nearest integer therefore gives the exact answer whenever its
fractional part is farther than :data:`_MARGIN` (``1e-4``) from one half
(which also excludes every exact tie).  The few numbers closer than that,
and those whose estimated exponent ``e = floor(log10|x|)`` put the scaled
value below ``10**9`` or above ``10**10``, are formatted by CPython itself
(``"%.9e"``, whose digits and exponent are those of ``%.10g``).  A mantissa
that rounds up to ``10**10`` becomes ``10**9`` with the next exponent.

From the digits and the exponent ``E`` the text follows CPython's ``%g``
rules: trailing zeros (and then the point) removed; fixed notation when
``-4 <= E < 10``, else ``d.ddde+XX`` with at least two exponent digits;
``-0`` for negative zero; ``nan`` (whatever its sign), ``inf``, ``-inf``.
The text is built in little-endian 64-bit words (byte ``j`` of a field is
byte ``j % 8`` of word ``j // 8``) by shifts and masks.
"""

from __future__ import annotations

import numpy as np

#: Bytes per field: the longest text (17, e.g. ``-1.234567891e-308``) and a separator.
FIELD_BYTES = 24

_MARGIN = 1e-4
_U64 = np.uint64
_ONES = _U64(0xFFFFFFFFFFFFFFFF)
#: Exponents covered by the tables (subnormals reach -324, a rounded maximum 308).
_E_MIN, _E_MAX = -330, 320
_SPLIT = 300  # powers of ten above 10**_SPLIT are applied in two factors


def _ascii_word(text: bytes) -> int:
    """The bytes of ``text`` (at most 8) as a little-endian 64-bit integer."""
    return int.from_bytes(text.ljust(8, b"\0"), "little")


def _build_tables():
    """Lookup tables, built once at import (a few ms)."""
    four = np.array([_ascii_word(b"%04d" % v) for v in range(10000)], dtype=_U64)
    trailing = np.array([4] + [len(str(v)) - len(str(v).rstrip("0")) for v in range(1, 10000)], dtype=np.int64)
    k = np.arange(9 - _E_MAX, 9 - _E_MIN + 1)  # 9 - e for every e of the tables
    scale_a = np.array([float("1e%d" % min(j, _SPLIT)) for j in k.tolist()])
    scale_b = np.array([float("1e%d" % max(j - _SPLIT, 0)) for j in k.tolist()])
    exps = range(_E_MIN, _E_MAX + 1)
    suffix_text = [b"" if -4 <= e < 10 else b"e%+03d" % e for e in exps]
    suffix = np.array([_ascii_word(s) for s in suffix_text], dtype=_U64)
    suffix_len = np.array([len(s) for s in suffix_text], dtype=np.int64)
    low = [(1 << (8 * min(n, 8))) - 1 for n in range(17)]  # low n bytes of a word
    mask_lo = np.array(low, dtype=_U64)
    mask_hi = np.array([low[max(n - 8, 0)] for n in range(17)], dtype=_U64)
    zeros = np.array([_ascii_word(b"0" * n) for n in range(5)], dtype=_U64)
    return four, trailing, k[0], scale_a, scale_b, suffix, suffix_len, mask_lo, mask_hi, zeros


(_FOUR, _TRAILING, _K0, _SCALE_A, _SCALE_B, _SUFFIX, _SUFFIX_LEN,
 _MASK_LO, _MASK_HI, _ZEROS) = _build_tables()
_DOT, _MINUS = _U64(ord(".")), _U64(ord("-"))
_NAN, _INF = _U64(_ascii_word(b"nan")), _U64(_ascii_word(b"inf"))


def decimal_digits(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ten correctly rounded significant digits of each ``|x|``.

    Returns
    -------
    mantissa : ndarray of int64
        ``M`` with ``10**9 <= M < 10**10`` for finite nonzero values, 0 else.
    exponent : ndarray of int64
        ``E`` such that ``|x|`` rounds to ``M * 10**(E - 9)``; 0 where
        ``x`` is zero, infinite or nan.
    """
    ax = np.abs(values)
    finite = np.isfinite(ax) & (ax > 0)
    safe = np.where(finite, ax, 1.0)
    e = np.floor(np.log10(safe)).astype(np.int64)
    j = 9 - e - _K0
    scaled = safe * _SCALE_A[j] * _SCALE_B[j]
    rounded = np.rint(scaled)
    doubt = np.abs(np.abs(scaled - rounded) - 0.5) < _MARGIN
    doubt |= (scaled < 1e9) | (rounded > 1e10)
    mantissa = rounded.astype(np.int64)
    carry = mantissa == 10**10
    mantissa -= carry * (9 * 10**9)
    e += carry
    for i in np.flatnonzero(doubt & finite).tolist():  # the few uncertain ones: CPython's digits
        text = "%.9e" % ax[i]
        mantissa[i], e[i] = int(text[0] + text[2:11]), int(text[12:])
    mantissa *= finite
    e *= finite
    return mantissa, e


def _digit_words(mantissa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ten ASCII digits of each mantissa (words lo, hi) and how many are significant."""
    hi2, rest = np.divmod(mantissa, 10**8)
    mid, low = np.divmod(rest, 10**4)
    lo_word = (_FOUR[hi2] >> _U64(16)) | (_FOUR[mid] << _U64(16)) | (_FOUR[low] << _U64(48))
    hi_word = _FOUR[low] >> _U64(16)
    tz = _TRAILING[low] + (low == 0) * (_TRAILING[mid] + (mid == 0) * _TRAILING[hi2])
    return lo_word, hi_word, 10 - tz


def _shift_left(lo, hi, nbytes):
    """The 16-byte texts (lo, hi) moved up by ``nbytes`` (< 8) bytes, zeros shifted in."""
    bits = (nbytes * 8).astype(_U64)
    return lo << bits, (hi << bits) | (lo >> (_U64(64) - bits))


def format_fields(values, separator=None) -> tuple[np.ndarray, np.ndarray]:
    """``"%.10g" % x`` of every element, as left-aligned byte fields.

    Parameters
    ----------
    values : array_like of float
        Any shape; converted to float64.
    separator : array_like of uint8, optional
        One byte written after each text (e.g. ``ord(",")``), broadcast to
        the shape of ``values``; none when omitted.

    Returns
    -------
    fields : ndarray of uint8, shape ``values.shape + (FIELD_BYTES,)``
        Each text starting at byte 0; the bytes after it are zero.
    lengths : ndarray of int64, shape ``values.shape``
        Bytes of each text (with its separator).
    """
    x = np.asarray(values, dtype=np.float64)
    shape, x = x.shape, x.ravel()
    mantissa, e = decimal_digits(x)
    lo, hi, nd = _digit_words(mantissa)
    nan, inf, zero = np.isnan(x), np.isinf(x), x == 0
    special = nan | inf
    lo = np.where(special, np.where(nan, _NAN, _INF), lo)
    nd = np.where(special, 3, np.where(zero, 1, nd))
    e = e + 2 * special  # 'nan' and 'inf' are laid out as three digits, no point
    neg = np.signbit(x) & ~nan
    fixed = (e >= -4) & (e < 10)
    lead = fixed * np.clip(-e, 0, 4)  # zeros before the digits: 0.000ddd
    point = 1 + fixed * np.clip(e, 0, 9)  # digits before the point
    lo, hi = _shift_left(lo, hi, lead)
    lo |= _ZEROS[lead]
    lo, hi = _insert_dot(lo, hi, point)
    digits = lead + nd
    body = np.maximum(digits, point) + (digits > point)
    lo &= _MASK_LO[body]
    hi &= _MASK_HI[body]
    lo, hi = _shift_left(lo, hi, neg.astype(np.int64))
    lo |= neg * _MINUS
    return _append_suffix(lo, hi, body + neg, e, separator, shape)


def _insert_dot(lo, hi, at):
    """A ``.`` inserted before byte ``at`` (1..10) of the 16-byte texts (lo, hi)."""
    keep_lo, keep_hi = _MASK_LO[at], _MASK_HI[at]
    up_lo, up_hi = lo & ~keep_lo, hi & ~keep_hi
    up_hi = (up_hi << _U64(8)) | (up_lo >> _U64(56))
    up_lo <<= _U64(8)
    bits = (at * 8).astype(_U64)
    dot_lo = (at < 8) * (_DOT << (bits & _U64(63)))
    dot_hi = (at >= 8) * (_DOT << ((bits - _U64(64)) & _U64(63)))
    return (lo & keep_lo) | up_lo | dot_lo, (hi & keep_hi) | up_hi | dot_hi


def _append_suffix(lo, hi, length, e, separator, shape):
    """The exponent suffix (``e+XX``) and separator after each text; fields and lengths."""
    j = np.clip(e, _E_MIN, _E_MAX) - _E_MIN
    tail, tail_len = _SUFFIX[j], _SUFFIX_LEN[j]
    if separator is not None:
        sep = np.broadcast_to(np.asarray(separator, dtype=_U64), shape).ravel()
        tail = tail | (sep << (tail_len * 8).astype(_U64))
        tail_len = tail_len + 1
    word, bits = np.divmod(length, 8)
    bits = (bits * 8).astype(_U64)
    up, over = tail << bits, tail >> (_U64(64) - bits)
    words = np.empty((length.size, 3), dtype=_U64)
    words[:, 0] = lo | (word == 0) * up
    words[:, 1] = hi | (word == 0) * over | (word == 1) * up
    words[:, 2] = (word == 1) * over | (word == 2) * up
    fields = words.astype("<u8", copy=False).view(np.uint8).reshape(shape + (FIELD_BYTES,))
    return fields, (length + tail_len).reshape(shape)


def join_fields(fields: np.ndarray, lengths: np.ndarray) -> bytes:
    """The texts of :func:`format_fields` concatenated in C order."""
    keep = np.arange(FIELD_BYTES) < lengths[..., None]
    return fields[keep].tobytes()


def format_texts(values) -> list[str]:
    """``["%.10g" % x for x in values]`` (a convenience for small arrays)."""
    fields, lengths = format_fields(np.ravel(values))
    return [bytes(f[:n]).decode("ascii") for f, n in zip(fields, lengths.tolist())]
