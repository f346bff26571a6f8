"""Numbers as ``"%.10g" % x`` texts for whole arrays, without Python per number.

:func:`write_fields` writes the text of every float64 of an array, byte for
byte what CPython's ``"%.10g" % x`` gives, optionally followed by one
separator byte, into a field of three 64-bit words (24 bytes: the text,
then zeros).  Callers lay fields out in a row buffer and take the bytes
that are not zero (:func:`join_fields`, ``pkpd.files``), so the work is NumPy
work, which releases the GIL.  :func:`format_fields` and
:func:`format_texts` are conveniences on top.  Depends on NumPy only.

Why it is exact
---------------
For a finite nonzero ``x`` the ten significant digits are the integer
``M = round(|x| * 10**(9 - e))`` with ``10**9 <= M < 10**10``, rounded
half-even on the exact binary value (what CPython's ``%.10g`` does), where
``e`` is the decimal exponent.  The scaled value is computed in floating
point as ``|x| * A`` with ``A`` the correctly rounded ``10**(9 - e)``, so
it carries two roundings: a relative error below ``2 * 2**-53``, less than
``3e-6`` in absolute terms.  Rounding it to the nearest integer therefore
gives the exact ``M`` whenever its distance to the nearest integer is below
``0.5 - 1e-4`` (:data:`_MARGIN`), which also excludes every exact tie.  The
few numbers closer to a tie than that, and those for which the estimate
``e = floor(log10|x|)`` puts the scaled value below ``10**9`` or rounds it
above ``10**10 - 1`` (an exponent off by one near a power of ten, a
mantissa that rounds up to ``10**10``, ``|x|`` below ``1e-299`` where ``A``
would overflow), are given CPython's own digits (``"%.9e" % x``: the digits
and exponent of ``%.10g``).  About two numbers in ten thousand take that
path.

From the digits and the exponent the text follows CPython's ``%g`` rules:
trailing zeros (and then the point) removed; fixed notation when
``-4 <= e < 10``, else ``d.ddde+XX`` with at least two exponent digits;
``-0`` for negative zero; ``nan`` (whatever its sign), ``inf``, ``-inf``.
The layout depends only on the sign, the class of the exponent and the
number of significant digits, so it comes from small tables; the text is
assembled in little-endian 64-bit words (byte ``j`` of a field is byte
``j % 8`` of word ``j // 8``) by shifts and masks.  The tests compare it
with ``"%.10g" % x`` on a million random bit patterns (every exponent,
subnormals), ties, rounding boundaries and special values.
"""

from __future__ import annotations

import sys

import numpy as np

#: Bytes per field: the longest text (17, e.g. ``-1.234567891e-308``) and a separator.
FIELD_BYTES = 24

#: Below this distance of the scaled value from a tie, CPython gives the digits (see above).
_MARGIN = 1e-4
#: Numbers formatted per step: the temporaries (~30 arrays of 64 kB) stay in the CPU caches
#: and in the allocator's heap (larger steps were measured 2-3 times slower).
_CHUNK = 8192
_U64 = np.uint64
_LITTLE = sys.byteorder == "little"
#: Exponents covered by the tables (subnormals reach -324, a rounded maximum 308).
_E_MIN, _E_MAX = -330, 320


def _ascii_word(text: bytes) -> int:
    """The bytes of ``text`` (at most 8) as a little-endian 64-bit integer."""
    return int.from_bytes(text.ljust(8, b"\0"), "little")


def _layout(cls: int, negative: bool, nd: int) -> dict:
    """How the digits are laid out for one layout key (see :func:`_format_chunk`).

    ``cls`` is ``e + 5`` clipped to 0..15: 0 and 15 scientific, 1..4 fixed
    with ``e = -4..-1`` (``0.000ddd``), 5..14 fixed with ``e = 0..9``.
    """
    e = cls - 5
    if cls in (0, 15):
        before, after, lead = 1, nd - 1, b""
    elif e < 0:
        before, after, lead = nd, 0, b"0." + b"0" * (-e - 1)
    else:
        before, after, lead = e + 1, max(nd - e - 1, 0), b""
    prefix = (b"-" if negative else b"") + lead
    p = len(prefix)
    first = (1 << 8 * before) - 1  # bytes of the digits before the point
    second = ((1 << 8 * (before + after)) - 1) ^ first  # and after it
    fixed = _ascii_word(prefix) | ((ord(".") << 8 * (p + before)) if after else 0)
    return {"first": first, "second": second, "fixed": fixed, "shift": 8 * p,
            "length": p + before + after + (after > 0)}


def _layout_tables() -> dict:
    """:func:`_layout` for every key ``negative << 8 | cls << 4 | nd``, as arrays (two words for 16-byte masks)."""
    rows = [_layout(k >> 4 & 15, bool(k >> 8), k & 15) if 1 <= k & 15 <= 10 else _layout(5, False, 1)
            for k in range(512)]
    t = {}
    for name in ("first", "second", "fixed"):
        t[name + "_lo"] = np.array([r[name] & (1 << 64) - 1 for r in rows], dtype=_U64)
        t[name + "_hi"] = np.array([r[name] >> 64 for r in rows], dtype=_U64)
    t["shift"] = np.array([r["shift"] for r in rows], dtype=_U64)
    t["length_bits"] = np.array([8 * r["length"] for r in rows], dtype=_U64)
    return t


def _five_digit_table() -> np.ndarray:
    """For v < 100000: the five ASCII digits of ``"%05d" % v`` and, in the top byte, how many are trailing zeros."""
    v = np.arange(100000, dtype=np.int64)
    word = np.zeros(v.size, dtype=_U64)
    zeros = np.full(v.size, 5, dtype=_U64)  # trailing zeros, counted from the last digit
    for i in range(5):
        digit = v // 10 ** (4 - i) % 10
        word |= (digit + ord("0")).astype(_U64) << _U64(8 * i)
        zeros[digit != 0] = 4 - i  # the last nonzero digit decides
    return word | zeros << _U64(56)


def _build_tables() -> dict:
    """Lookup tables, built once at import (a few ms)."""
    t = {}
    t["five"] = _five_digit_table()
    # 10**(9 - e) for the exponents e of finite doubles (the smallest ones: not enough, see decimal_digits)
    exponents = range(_E_MIN, _E_MAX + 1)  # tables by e are indexed by e - _E_MIN
    t["scale"] = np.array([float("1e%d" % min(9 - e, 308)) for e in exponents])
    # the suffix in the low bytes and its length in bits in the top byte
    suffixes = [b"" if -4 <= e < 10 else b"e%+03d" % e for e in exponents]
    t["suffix"] = np.array([_ascii_word(x) | 8 * len(x) << 56 for x in suffixes], dtype=_U64)
    t["class"] = np.array([min(max(e + 5, 0), 15) << 4 for e in exponents], dtype=np.int64)
    t.update(_layout_tables())
    return t


_T = _build_tables()
_TEXT_BITS = _U64(0x00FFFFFFFFFFFFFF)  # a table word without its length byte
_SPECIAL = {"nan": _ascii_word(b"nan"), "inf": _ascii_word(b"inf"), "0": _ascii_word(b"0")}


def decimal_digits(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ten correctly rounded significant digits of each ``|x|`` (float64, 1-d).

    Returns
    -------
    mantissa : ndarray of int64
        ``M`` with ``10**9 <= M < 10**10`` for finite nonzero values.
    exponent : ndarray of int64
        ``E`` such that ``|x|`` rounds to ``M * 10**(E - 9)``.
    odd : ndarray of intp
        Where ``x`` is zero, infinite or nan (``M`` and ``E`` undefined there).
    """
    ax = np.abs(values)
    with np.errstate(all="ignore"):  # zeros, infinities and nans give garbage here, sorted out below
        e = np.log10(ax)
        e = np.floor(e, out=e).astype(np.int64)
        scaled = ax * _T["scale"].take(e - _E_MIN, mode="clip")
        rounded = np.rint(scaled)
        sure = np.abs(scaled - rounded) <= 0.5 - _MARGIN  # false for nan
        sure &= scaled >= 1e9  # else the exponent was estimated one too high, or |x| < 1e-299
        sure &= rounded <= 9999999999.0  # else one too low, or it rounds up to 10**10
        mantissa = rounded.astype(np.int64)
    unsure = np.flatnonzero(~sure)
    v = ax[unsure]
    real = (v > 0) & (v < np.inf)
    for i in unsure[real].tolist():  # the few uncertain ones: CPython's digits
        text = "%.9e" % ax[i]
        mantissa[i], e[i] = int(text[0] + text[2:11]), int(text[12:])
    return mantissa, e, unsure[~real]


def _digit_words(mantissa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ten ASCII digits of each mantissa (words lo, hi) and how many are significant."""
    upper = mantissa // 100000
    upper_text = _T["five"].take(upper, mode="clip")
    lower_text = _T["five"].take(mantissa - upper * 100000, mode="clip")
    lo = (upper_text & _U64(0xFFFFFFFFFF)) | (lower_text << _U64(40))
    hi = (lower_text >> _U64(24)) & _U64(0xFFFF)
    zeros = lower_text >> _U64(56)
    zeros += (zeros == 5) * (upper_text >> _U64(56))
    return lo, hi, 10 - zeros.view(np.int64)


def _fix_special(x, odd, lo, nd, e, neg):
    """Zeros, infinities and nans: ``0``, ``inf``, ``nan`` laid out as digits, no point; no sign on nan."""
    if odd.size:
        v = x[odd]
        lo[odd] = np.where(np.isnan(v), _SPECIAL["nan"], np.where(np.isinf(v), _SPECIAL["inf"], _SPECIAL["0"]))
        nd[odd] = np.where(v == 0, 1, 3)
        e[odd] = nd[odd] - 1
        neg[odd[np.isnan(v)]] = 0


def _format_chunk(x, sep, words):
    """Fill ``words`` (n, 3) with the texts of ``x`` (see :func:`write_fields`).

    The layout depends only on the key (sign, class of the exponent, number
    of significant digits): the text is the key's fixed bytes (sign, ``0.``
    and leading zeros, point), the digits before the point moved up by
    ``shift`` bits, those after it by one byte more, then the exponent
    suffix and the separator.
    """
    mantissa, e, odd = decimal_digits(x)
    lo, hi, nd = _digit_words(mantissa)
    neg = (x.view(np.int64) >> 63) & 256  # the sign bit, as the key's bit 8
    _fix_special(x, odd, lo, nd, e, neg)
    j = e - _E_MIN
    key = _T["class"].take(j, mode="clip") + nd + neg
    take = lambda name: _T[name].take(key)  # noqa: E731
    first_lo, first_hi = lo & take("first_lo"), hi & take("first_hi")
    second_lo, second_hi = lo & take("second_lo"), hi & take("second_hi")
    shift = take("shift")
    shift2 = shift + _U64(8)
    text_lo = take("fixed_lo") | (first_lo << shift) | (second_lo << shift2)
    text_hi = (take("fixed_hi") | (first_hi << shift) | (first_lo >> (_U64(64) - shift))
               | (second_hi << shift2) | (second_lo >> (_U64(56) - shift)))
    _append_suffix(text_lo, text_hi, take("length_bits"), _T["suffix"].take(j, mode="clip"), sep, words)


def _append_suffix(lo, hi, at, tail, sep, words):
    """The exponent suffix (``tail``) and separator after each text (``at`` bits long), into ``words``.

    Shifts by 64 bits or more give 0 and negative counts wrap to such, so
    each word takes the part of the tail that falls into it.
    """
    tail_bits = tail >> _U64(56)
    tail &= _TEXT_BITS
    if sep is not None:
        tail |= sep << tail_bits
    _store(words, 0, lo | (tail << at))
    _store(words, 1, hi | (tail << (at - _U64(64))) | (tail >> (_U64(64) - at)))
    _store(words, 2, (tail << (at - _U64(128))) | (tail >> (_U64(128) - at)))


def _store(words: np.ndarray, j: int, value: np.ndarray) -> None:
    """Word ``j`` of every field (``words[..., j]``), as little-endian bytes whatever the machine."""
    words[..., j] = (value if _LITTLE else value.byteswap()).reshape(words.shape[:-1])


def write_fields(values, out: np.ndarray, separator=None) -> None:
    """Write ``"%.10g" % x`` of every element into ``out``, a field of 3 words each.

    Parameters
    ----------
    values : array_like of float
        Any shape (at least 1-d); converted to float64.
    out : ndarray of uint64, shape ``values.shape + (3,)``
        Receives the texts: field ``i`` is the 24 bytes of ``out[i]``, the
        text from byte 0, zeros after it.  Only the last axis must be
        contiguous, so ``out`` can be a view into a larger row buffer.
    separator : array_like of uint8, optional
        One byte written after each text (e.g. ``ord(",")``), broadcast to
        the shape of ``values``; none when omitted.

    The work goes in steps of about :data:`_CHUNK` numbers along the first
    axis, so the temporaries stay small.
    """
    x = np.asarray(values, dtype=np.float64)
    sep = None if separator is None else np.asarray(separator, dtype=_U64)
    if sep is not None and sep.ndim:
        sep = np.broadcast_to(sep, x.shape)
    step = max(1, _CHUNK // max(1, x[0].size)) if x.size else 1
    for start in range(0, x.shape[0], step):
        part = slice(start, start + step)
        _format_chunk(x[part].ravel(), sep if sep is None or not sep.ndim else sep[part].ravel(), out[part])


def format_fields(values, separator=None) -> tuple[np.ndarray, np.ndarray]:
    """``"%.10g" % x`` of every element, as left-aligned byte fields.

    Parameters
    ----------
    values : array_like of float
        Any shape; converted to float64.
    separator : array_like of uint8, optional
        As in :func:`write_fields`.

    Returns
    -------
    fields : ndarray of uint8, shape ``values.shape + (FIELD_BYTES,)``
        Each text starting at byte 0; the bytes after it are zero.
    lengths : ndarray of int64, shape ``values.shape``
        Bytes of each text (with its separator).
    """
    x = np.asarray(values, dtype=np.float64)
    flat = x.reshape(-1)
    words = np.empty((flat.size, 3), dtype=_U64)
    write_fields(flat, words, None if separator is None else np.broadcast_to(separator, x.shape).ravel())
    fields = words.view(np.uint8).reshape(x.shape + (FIELD_BYTES,))
    return fields, np.count_nonzero(fields, axis=-1)


def join_fields(fields: np.ndarray) -> bytes:
    """The texts of :func:`format_fields` concatenated in C order (the zero bytes dropped)."""
    return fields[fields != 0].tobytes()


def format_texts(values) -> list[str]:
    """``["%.10g" % x for x in values]`` (a convenience for small arrays)."""
    fields, lengths = format_fields(np.ravel(values))
    return [bytes(f[:n]).decode("ascii") for f, n in zip(fields, lengths.tolist())]
