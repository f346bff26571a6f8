"""Files on disk: the run outputs of the scenario format, written atomically.

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
import threading
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from . import number_format
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
#: Rows formatted per batch (bounds the buffers: ~25 MB, reused from batch to batch).
_ROWS_PER_BATCH = 30000


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
    if n == 0:
        return
    per_batch = max(1, _ROWS_PER_BATCH // max(t, 1))  # whole subjects per batch
    arm_text = _csv_text(arm)
    rows = _RowBuffer([f"{arm_text},{s},".encode() for s in subjects.tolist()], time_h, min(per_batch, n))
    try:
        for start in range(0, n, per_batch):
            batch = slice(start, start + per_batch)
            values = np.stack([np.asarray(readouts[name], dtype=float).reshape(n, t)[batch]
                               for name in TIMECOURSE_READOUTS], axis=-1)
            yield rows.format(start, values)
    finally:
        rows.release()


#: The byte after each readout of a row: commas, then the line end.
_READOUT_ENDS = np.array([ord(",")] * (len(TIMECOURSE_READOUTS) - 1) + [ord("\n")], dtype=np.uint8)


class _RowBuffer:
    """Rows of ``timecourse.csv`` laid out in 64-bit words, reused from batch to batch.

    A row is the head (arm and subject, right-aligned in its words after
    zeros), the time field and one field per readout
    (:func:`number_format.write_fields`: text, then zeros); the CSV text is
    the buffer's bytes without the padding, taken with one boolean mask.
    The buffers are kept per thread from call to call (:func:`_borrow`).

    Parameters
    ----------
    heads : list of bytes
        ``arm,subject,`` of every subject.
    time_h : array_like (T,)
        The output times.
    subjects : int
        The most subjects of one batch.
    """

    def __init__(self, heads: list[bytes], time_h, subjects: int):
        time_h = np.asarray(time_h, dtype=float).reshape(-1)
        t, k = time_h.size, len(TIMECOURSE_READOUTS)
        self._borrowed: dict[str, np.ndarray] = {}  # buffers by name, until release()
        lengths = np.array([len(h) for h in heads])
        self.head_words = hw = -(-int(lengths.max()) // 8)
        self.heads = np.array([h.rjust(hw * 8, b"\0") for h in heads]).view(np.uint64).reshape(len(heads), hw)
        self.head_keep = np.arange(hw * 8) >= hw * 8 - lengths[:, None]  # exact even if the arm has a NUL
        self.fields = self._array("fields", (subjects * t, k, 3), np.uint64)
        self.row = self._array("row", (subjects, t, hw + 3 + 3 * k), np.uint64)
        number_format.write_fields(time_h, self.row[0, :, hw:hw + 3], ord(","))
        self.row[1:, :, hw:hw + 3] = self.row[0, :, hw:hw + 3]
        self.keep = self._array("keep", self.row.shape[:2] + (self.row.shape[2] * 8,), np.bool_)

    def _array(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """An uninitialised array in a borrowed buffer (returned by :meth:`release`)."""
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        buffer = self._borrowed[name] = _borrow(name, nbytes)
        return buffer[:nbytes].view(dtype).reshape(shape)

    def release(self) -> None:
        """Give the buffers back for the next call in this thread."""
        borrowed, self._borrowed = self._borrowed, {}
        for name, buffer in borrowed.items():
            _give_back(name, buffer)

    def format(self, start: int, values: np.ndarray) -> bytes:
        """The rows of subjects ``start, start + 1, ...`` with ``values`` (subjects, T, readouts)."""
        m, t, k = values.shape
        hw = self.head_words
        fields = self.fields[:m * t]
        number_format.write_fields(values.reshape(m * t, k), fields, _READOUT_ENDS)
        row, keep = self.row[:m], self.keep[:m]
        row[:, :, :hw] = self.heads[start:start + m, None, :]
        row[:, :, hw + 3:] = fields.reshape(m, t, 3 * k)
        np.not_equal(row.view(np.uint8), 0, out=keep)
        keep[:, :, :hw * 8] = self.head_keep[start:start + m, None, :]
        return row.view(np.uint8)[keep].tobytes()  # (faster than np.compress into a reused buffer)


_SCRATCH = threading.local()


def _borrow(name: str, nbytes: int) -> np.ndarray:
    """A byte buffer of at least ``nbytes``: this thread's spare one, or a new one.

    The run formats its time courses chunk by chunk on one writer thread:
    reusing the buffers (the largest chunk's, ~25 MB at most) spares the
    page faults of fresh memory at every chunk.  A borrowed buffer belongs
    to its borrower until :func:`_give_back`, so interleaved calls never
    share one.
    """
    spare = _SCRATCH.__dict__.pop(name, None)
    return spare if spare is not None and spare.size >= nbytes else np.empty(nbytes, dtype=np.uint8)


def _give_back(name: str, buffer: np.ndarray) -> None:
    """Keep ``buffer`` as this thread's spare for :func:`_borrow`."""
    _SCRATCH.__dict__[name] = buffer


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
