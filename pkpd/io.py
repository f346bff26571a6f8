"""Files on disk: the run outputs of ``scenario-format.md``, written atomically.

``timecourse.csv``
    Exactly :data:`TIMECOURSE_COLUMNS`, one row per arm, subject and output
    time (ordered so), numbers with 10 significant digits (``%.10g``),
    UTF-8 without BOM, ``\\n`` line ends.
``summary.csv``
    :data:`SUMMARY_COLUMNS`: one row per arm and metric (see
    :data:`pkpd.metrics.METRICS`): ``arm,metric,unit,median,p05,p95``, the
    population median and 5th and 95th percentiles of the per-subject
    values; an empty cell where a metric does not apply (and for the
    percentiles of a single subject).

Every file is written under a temporary name in its final folder and then
renamed with :func:`os.replace`, so a reader sees the old file or the whole
new one, never a part.
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from .model import READOUTS

#: The columns of ``timecourse.csv``, in order (scenario-format.md).
TIMECOURSE_COLUMNS = ("arm", "subject", "time_h") + READOUTS
#: The readouts in ``timecourse.csv``, after arm, subject and time.
TIMECOURSE_READOUTS = TIMECOURSE_COLUMNS[3:]
#: The columns of ``summary.csv``.
SUMMARY_COLUMNS = ("arm", "metric", "unit", "median", "p05", "p95")

TIMECOURSE_FILE = "timecourse.csv"
SUMMARY_FILE = "summary.csv"
FIGURE_FILE = "figure.png"

#: Number format of every number in the CSV files (at least 10 significant digits).
NUMBER_FORMAT = "%.10g"
#: Rows formatted per batch (bounds the temporary Python objects, ~15 MB).
_ROWS_PER_BATCH = 20000


# ---------------------------------------------------------------------------
# Atomic files


class AtomicFile:
    """A file written under a temporary name in its folder, renamed on commit.

    Use as a context manager: the file is committed when the block ends
    normally and removed when it raises.  ``commit=False`` in the
    constructor defers the rename to an explicit :meth:`commit`, so several
    files can be renamed together at the end of a run.

    Parameters
    ----------
    path : str or PathLike
        The final name.  Its folder must exist.
    mode : str
        ``'w'`` (text, UTF-8, ``\\n`` line ends) or ``'wb'``.
    """

    def __init__(self, path, mode: str = "w", *, autocommit: bool = True):
        self.path = os.fspath(path)
        folder, base = os.path.split(os.path.abspath(self.path))
        fd, self.tmp_path = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=folder)
        try:
            if "b" in mode:
                self.file = os.fdopen(fd, mode)
            else:
                self.file = os.fdopen(fd, mode, encoding="utf-8", newline="\n")
        except BaseException:
            os.close(fd)
            os.unlink(self.tmp_path)
            raise
        self._autocommit = autocommit
        self.done = False

    def write(self, data) -> int:
        return self.file.write(data)

    def commit(self) -> None:
        """Close and rename over the final name (whole file or nothing)."""
        if self.done:
            return
        if not self.file.closed:
            self.file.flush()
            self.file.close()
        os.chmod(self.tmp_path, _default_mode())
        os.replace(self.tmp_path, self.path)
        self.done = True

    def abort(self) -> None:
        """Close and delete the temporary file; the final name is untouched."""
        if self.done:
            return
        try:
            self.file.close()
        finally:
            try:
                os.unlink(self.tmp_path)
            except FileNotFoundError:
                pass
            self.done = True

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif self._autocommit:
            self.commit()


def _default_mode() -> int:
    """Permissions of a newly created file (mkstemp makes it 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def remove_file(path) -> bool:
    """Delete ``path`` if it exists; True when something was removed."""
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


# ---------------------------------------------------------------------------
# timecourse.csv


def timecourse_header() -> str:
    """The header line of ``timecourse.csv`` (with its line end)."""
    return ",".join(TIMECOURSE_COLUMNS) + "\n"


def format_numbers(values: Iterable[float]) -> list[str]:
    """Each number as written in the CSV files (``%.10g``)."""
    return [NUMBER_FORMAT % v for v in np.asarray(values, dtype=float).tolist()]


# Vectorised %.10g.  Formatting millions of numbers one by one costs about
# 0.2 us each; the whole-array version below builds the same text with
# integer arithmetic and byte copies, about four times faster.  It is tested
# against Python's own '%.10g' (tests/test_io.py).

_P = 10  # significant digits
_REC = 18  # bytes per number: sign, longest body (16: -1.234567891e-100), separator
_DOT, _E, _MINUS, _PLUS, _ZERO = (ord(c) for c in ".e-+0")


def _digit_tables() -> tuple[np.ndarray, np.ndarray]:
    """ASCII of 00000..99999 packed in uint64 words, and trailing-zero counts."""
    digits = np.zeros((100_000, 8), np.uint8)
    digits[:, :5] = np.frombuffer(b"".join(b"%05d" % i for i in range(100_000)), np.uint8).reshape(-1, 5)
    r = np.arange(100_000)
    zeros = sum((r % 10 ** (d + 1) == 0).astype(np.int64) for d in range(5))
    return digits.view(np.uint64).ravel(), zeros


_DIGITS5, _TRAILING0 = None, None
_POW10 = np.array([float(10**k) for k in range(309)])  # exact up to 1e22


def _scaled(a: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``a * 10**p`` with a single rounding where ``10**|p|`` is exact."""
    out = np.empty_like(a)
    huge = p > 308  # subnormal inputs
    pos = (p >= 0) & ~huge
    out[pos] = a[pos] * _POW10[p[pos]]
    neg = p < 0
    out[neg] = a[neg] / _POW10[-p[neg]]
    if huge.any():
        out[huge] = a[huge] * 1e100 * _POW10[p[huge] - 100]
    return out


def _format_g10(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``'%.10g' % v`` for every finite ``v`` of a 1-D array, as byte records.

    Returns ``rec`` (M, 18) uint8, ``start`` and ``stop`` (M,): the text of
    value i is ``rec[i, start[i]:stop[i]]``; ``rec[i, stop[i]]`` is free for
    a separator.
    """
    global _DIGITS5, _TRAILING0
    if _DIGITS5 is None:
        _DIGITS5, _TRAILING0 = _digit_tables()
    m_count = x.size
    neg = np.signbit(x)
    a = np.abs(x)
    zero = a == 0
    a[zero] = 1.0
    # decimal exponent and the 10-digit integer mantissa
    e = np.floor(np.log10(a)).astype(np.int64)
    s = _scaled(a, (_P - 1) - e)
    moved = np.zeros(m_count, bool)
    for bad, step in ((s >= 10.0**_P - 0.5, 1), (s < 10.0 ** (_P - 1) - 0.5, -1)):  # log10 round-off
        if bad.any():
            e[bad] += step
            s[bad] = _scaled(a[bad], (_P - 1) - e[bad])
            moved |= bad
    mant = np.rint(s)
    # The scaled value may be a few ulps off: let Python's exact conversion
    # decide the (rare) near-ties.
    redo = (np.abs(s - np.floor(s) - 0.5) < 1e-4) | moved
    for i in np.flatnonzero(redo).tolist():
        digits, exp = ("%.9e" % a[i]).split("e")
        mant[i] = float(digits.replace(".", ""))
        e[i] = int(exp)
    mant = mant.astype(np.int64)
    mant[zero] = 0
    e[zero] = 0
    hi, lo = np.divmod(mant, 100_000)
    # columns: 4 zeros, 10 digits, exponent sign and 3 exponent digits
    src = np.empty((m_count, 18), np.uint8)
    src[:, 0:4] = _ZERO
    src[:, 4:12] = _DIGITS5[hi].view(np.uint8).reshape(m_count, 8)
    src[:, 9:17] = _DIGITS5[lo].view(np.uint8).reshape(m_count, 8)
    n_sig = np.maximum(_P - np.where(lo == 0, 5 + _TRAILING0[hi], _TRAILING0[lo]), 1)
    fixed = (e >= -4) & (e < _P)
    abs_e = np.abs(e)
    three = abs_e >= 100
    sci = np.flatnonzero(~fixed)
    if sci.size:
        ae = abs_e[sci]
        src[sci, 14] = np.where(e[sci] < 0, _MINUS, _PLUS)
        src[sci, 15] = 48 + ae // 100
        src[sci, 16] = 48 + (ae // 10) % 10
        src[sci, 17] = 48 + ae % 10
    # layout class: fixed notation by exponent (0..13), else by digits and exponent width
    key = np.where(fixed, e + 4, 14 + 2 * (n_sig - 1) + three).astype(np.uint8)
    frac_len = np.maximum(n_sig - 1 - e, 0)
    body_fixed = np.where(e >= 0, e + 1, 1) + np.where(frac_len > 0, frac_len + 1, 0)
    body_sci = np.where(n_sig > 1, n_sig + 1, 1) + np.where(three, 5, 4)
    body = np.where(fixed, body_fixed, body_sci)
    # lay out each class on contiguous rows (a radix sort on the 1-byte key)
    order = np.argsort(key, kind="stable")
    src = src[order]
    out_sorted = np.empty((m_count, _REC), np.uint8)
    out_sorted[:, 0] = _MINUS
    pos = 0
    for cls, count in enumerate(np.bincount(key, minlength=34).tolist()):
        if count == 0:
            continue
        block, dst = src[pos : pos + count], out_sorted[pos : pos + count]
        pos += count
        if cls < 14:  # fixed notation, exponent cls - 4
            ex = cls - 4
            if ex >= 0:
                n_int = ex + 1
                dst[:, 1 : 1 + n_int] = block[:, 4 : 5 + ex]
            else:
                n_int = 1
                dst[:, 1] = _ZERO
            frac = block[:, 5 + ex : 14]
            if frac.shape[1]:
                dst[:, 1 + n_int] = _DOT
                dst[:, 2 + n_int : 2 + n_int + frac.shape[1]] = frac
        else:  # d.ddde+XX
            n_dig, n_exp = (cls - 14) // 2 + 1, 3 if (cls - 14) % 2 else 2
            dst[:, 1] = block[:, 4]
            c = 2
            if n_dig > 1:
                dst[:, 2] = _DOT
                dst[:, 3 : 2 + n_dig] = block[:, 5 : 4 + n_dig]
                c = 2 + n_dig
            dst[:, c] = _E
            dst[:, c + 1] = block[:, 14]
            dst[:, c + 2 : c + 2 + n_exp] = block[:, 18 - n_exp : 18]
    rec = np.empty_like(out_sorted)
    rec[order] = out_sorted
    return rec, np.where(neg, 0, 1), 1 + body


def _strings_to_bytes(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings as a left-aligned (n, width) uint8 matrix and their lengths."""
    encoded = [s.encode("utf-8") for s in strings]
    width = max((len(b) for b in encoded), default=0) or 1
    mat = np.array(encoded, dtype=f"S{width}").view(np.uint8).reshape(len(encoded), width)
    return mat, np.array([len(b) for b in encoded], dtype=np.int64)


def format_rows(prefix: tuple[np.ndarray, np.ndarray], values: np.ndarray) -> bytes:
    """CSV rows: a prefix, then the numbers of ``values`` in ``%.10g``.

    Parameters
    ----------
    prefix : (ndarray (R, W) uint8, ndarray (R,) int)
        The start of each row (already CSV-safe, with its trailing comma) as
        left-aligned bytes and their lengths (see :func:`_strings_to_bytes`).
    values : ndarray (R, C)
        Numbers; each row ends with a newline.

    Returns
    -------
    bytes
        UTF-8 text of the R rows.
    """
    values = np.asarray(values, dtype=float)
    n_rows, n_cols = values.shape
    pre, pre_len = prefix
    if n_rows == 0:
        return b""
    flat = values.ravel()
    if not np.all(np.isfinite(flat)):  # nan/inf: Python's formatting, rarely needed
        template = "%s" + ",".join([NUMBER_FORMAT] * n_cols) + "\n"
        heads = [bytes(p[:k]).decode("utf-8") for p, k in zip(pre, pre_len.tolist())]
        return "".join(template % (h, *row) for h, row in zip(heads, values.tolist())).encode("utf-8")
    rec, start, stop = _format_g10(flat.copy())
    sep = np.full(n_cols, ord(","), np.uint8)
    sep[-1] = ord("\n")
    rec[np.arange(flat.size), stop] = np.tile(sep, n_rows)
    stop = stop + 1
    cols = np.arange(_REC)
    keep = (cols >= start[:, None]) & (cols < stop[:, None])
    pre_keep = np.arange(pre.shape[1]) < pre_len[:, None]
    full = np.concatenate([pre, rec.reshape(n_rows, n_cols * _REC)], axis=1)
    mask = np.concatenate([pre_keep, keep.reshape(n_rows, n_cols * _REC)], axis=1)
    return full[mask].tobytes()


def _row_prefixes(heads: Sequence[str], tails: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Bytes of ``head + tail`` for every head (outer) and tail (inner) pair."""
    h, h_len = _strings_to_bytes(heads)
    t, t_len = _strings_to_bytes(tails)
    nh, nt = h.shape[0], t.shape[0]
    width = h.shape[1] + t.shape[1]
    out = np.zeros((nh, nt, width), np.uint8)
    out[:, :, : h.shape[1]] = h[:, None, :]
    # tail column k lands right after the head, at head_len + k
    i_h = np.arange(nh)[:, None]
    i_t = np.arange(nt)[None, :]
    for k in range(t.shape[1]):
        out[i_h, i_t, (h_len + k)[:, None]] = np.where(k < t_len, t[:, k], 0)[None, :]
    lengths = (h_len[:, None] + t_len[None, :]).reshape(-1)
    return out.reshape(nh * nt, width), lengths


def format_timecourse(
    arm: str,
    subjects: Sequence[int],
    time_h: np.ndarray,
    readouts: Mapping[str, np.ndarray],
) -> Iterator[bytes]:
    """Rows of ``timecourse.csv`` for some subjects of one arm, in pieces.

    Parameters
    ----------
    arm : str
        The arm's name (first column).
    subjects : sequence of int, shape (N,)
        Subject numbers as written (counting from 1).
    time_h : ndarray (T,)
        Output times, h.
    readouts : mapping of str to ndarray (N, T)
        Every name of :data:`TIMECOURSE_READOUTS`.

    Yields
    ------
    bytes
        Consecutive pieces of the file body (UTF-8, no header), ordered by
        subject then time, each a whole number of rows.
    """
    subjects = np.asarray(subjects)
    n, t = subjects.size, np.asarray(time_h).size
    times = [s + "," for s in format_numbers(time_h)]
    cols = [np.asarray(readouts[name], dtype=float).reshape(n, t) for name in TIMECOURSE_READOUTS]
    per_batch = max(1, _ROWS_PER_BATCH // max(t, 1))  # whole subjects per batch
    arm_text = _csv_text(arm)
    for start in range(0, n, per_batch):
        stop = min(start + per_batch, n)
        prefix = _row_prefixes([f"{arm_text},{s}," for s in subjects[start:stop].tolist()], times)
        block = np.empty(((stop - start) * t, len(cols)))
        for j, col in enumerate(cols):
            block[:, j] = col[start:stop].ravel()
        yield format_rows(prefix, block)


# ---------------------------------------------------------------------------
# summary.csv


def _cell(value: float) -> str:
    return "" if value is None or not math.isfinite(value) else NUMBER_FORMAT % value


def format_summary(rows: Iterable[tuple[str, str, str, float, float, float]]) -> str:
    """``summary.csv`` as text.

    Parameters
    ----------
    rows : iterable of (arm, metric, unit, median, p05, p95)
        Numbers in the metric's unit; nan or None gives an empty cell.
    """
    lines = [",".join(SUMMARY_COLUMNS)]
    for arm, metric, unit, med, p05, p95 in rows:
        lines.append(",".join([_csv_text(arm), metric, _csv_text(unit), _cell(med), _cell(p05), _cell(p95)]))
    return "\n".join(lines) + "\n"


def _csv_text(text: str) -> str:
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def read_csv_columns(path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file as strings (a small helper for tests and notebooks)."""
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)
