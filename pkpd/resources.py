"""One estimate of what a run costs (memory, disk, work) and the checks on it.

Every refusal of a run as too large is made here, before anything is
allocated or written, with a message that gives the estimate and what to
change.  The numbers are deliberately simple upper bounds: 8 bytes per saved
float, the solver's working set per subject, and the events each subject's
doses create.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from dataclasses import dataclass

from .errors import ResourceError

#: Working memory of the solver per subject and integration node kept at
#: once (propagators, stage values, temporaries), bytes.
SOLVER_BYTES_PER_SUBJECT = 6_000
#: Bytes per scheduled bolus or input change and subject (times, amounts,
#: indices, the node it maps to).
BYTES_PER_EVENT = 48
#: Most events (doses, releases, infusion changes) one run may schedule.
MAX_EVENTS = 50_000_000
#: Most integration nodes (steps) one run may take.
MAX_NODES = 20_000_000
#: Share of the available memory a run may plan to use.
MEMORY_SHARE = 0.8


def available_memory_bytes() -> float:
    """Memory a run may use, bytes (MemAvailable on Linux; else a guess)."""
    try:
        fd = os.open("/proc/meminfo", os.O_RDONLY)  # one read of a small file (cheaper than a text file object)
        try:
            data = os.read(fd, 1 << 16)
        finally:
            os.close(fd)
        at = data.index(b"\nMemAvailable:") + 14
        return float(data[at : data.index(b"\n", at)].split()[0]) * 1024.0
    except (OSError, ValueError, IndexError):
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4.0 * 2**30


def size_text(n_bytes: float) -> str:
    """A size for a message: GiB, MiB or KiB."""
    if n_bytes >= 2**30 / 10:
        return f"{n_bytes / 2**30:.1f} GiB"
    if n_bytes >= 2**20:
        return f"{n_bytes / 2**20:.0f} MiB"
    return f"{n_bytes / 2**10:.0f} KiB"


@dataclass(frozen=True)
class Estimate:
    """What a simulation will hold, bytes, and how much work it is.

    Attributes
    ----------
    kept_bytes : float
        What is kept for every subject until the end (saved readouts, or a
        streaming run's metrics and figure sample).
    chunk_bytes : float
        What one chunk of subjects holds while it is integrated: the solver's
        working set, its scheduled events and the values it streams out.
    chunk : int
        Subjects per chunk.
    events : float
        Boluses and input changes scheduled for one chunk (held at once).
    nodes : float
        Integration nodes (upper bound).
    """

    kept_bytes: float
    chunk_bytes: float
    chunk: int
    events: float
    nodes: float

    @property
    def memory_bytes(self) -> float:
        return self.kept_bytes + self.chunk_bytes + BASE_BYTES


#: Memory of the interpreter, numpy and pkpd themselves, bytes.
BASE_BYTES = 64 * 2**20
#: Most memory one chunk may plan to use, bytes (bigger chunks gain nothing).
CHUNK_BUDGET_BYTES = 640 * 2**20


def estimate(*, n_subjects: int, kept_values_per_subject: float, events_per_subject: float, nodes: float,
             chunk: int, streamed_values_per_subject: float = 0.0, available_bytes: float | None = None) -> Estimate:
    """The estimate of one simulation (see :class:`Estimate`).

    ``kept_values_per_subject`` floats are held for every subject to the end;
    ``streamed_values_per_subject`` only while the subject's chunk is in
    flight (twice: one chunk computed while the previous one is written).
    ``chunk`` is the most subjects per chunk; it is lowered until a chunk fits
    its budget (:data:`CHUNK_BUDGET_BYTES`, and half the memory left).
    """
    per_subject = SOLVER_BYTES_PER_SUBJECT + BYTES_PER_EVENT * events_per_subject + 16.0 * streamed_values_per_subject
    kept = 8.0 * n_subjects * kept_values_per_subject
    available = available_memory_bytes() if available_bytes is None else float(available_bytes)
    room = min(CHUNK_BUDGET_BYTES, 0.5 * max(available - kept - BASE_BYTES, 0.0))
    size = int(max(1, min(chunk, n_subjects, room // per_subject)))
    return Estimate(kept_bytes=kept, chunk_bytes=size * per_subject, chunk=size,
                    events=float(size) * events_per_subject, nodes=float(nodes))


def check(est: Estimate, *, available_bytes: float | None = None, what: str = "this run", detail: str = "") -> None:
    """Raise :class:`ResourceError` unless ``est`` fits this machine and the limits above.

    ``detail`` (e.g. ``'1000 subjects x 1345 times x 9 readouts'``) is quoted
    in the memory message.
    """
    if est.events > MAX_EVENTS:
        raise ResourceError(
            f"{what} schedules about {est.events:.3g} doses and input changes at once, more than the "
            f"{MAX_EVENTS:.0e} a run may hold; check every_h and count"
        )
    if est.nodes > MAX_NODES:
        raise ResourceError(
            f"{what} needs about {est.nodes:.3g} integration steps, more than the {MAX_NODES:.0e} a run may take; "
            "use a shorter duration or fewer distinct dose times"
        )
    available = available_memory_bytes() if available_bytes is None else float(available_bytes)
    if not math.isfinite(est.memory_bytes) or est.memory_bytes > MEMORY_SHARE * available:
        raise ResourceError(
            f"{what} needs about {size_text(est.memory_bytes)} of memory ({size_text(est.kept_bytes)} of results"
            f"{': ' + detail if detail else ''}), "
            f"more than the {size_text(MEMORY_SHARE * available)} it may use; "
            "use fewer subjects, a coarser output step or fewer readouts"
        )


def check_disk(folder: str, need_bytes: float, what: str) -> None:
    """Raise :class:`ResourceError` unless ``folder`` (or the folder that will hold it) is writable with room.

    ``what`` names the output in the message (e.g. ``'timecourse.csv'``).
    """
    probe = os.path.abspath(folder)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
        raise ResourceError(f"{folder}: not a writable folder ({probe} cannot be written to)")
    try:
        usage = shutil.disk_usage(probe)
    except OSError:
        return
    if usage.total == 0:  # a virtual file system (/proc, /sys): nothing can be stored there
        raise ResourceError(f"{folder}: not a writable folder ({probe} is on a virtual file system)")
    if need_bytes > usage.free:
        raise ResourceError(
            f"{what} would take about {size_text(need_bytes)} but {probe} has {size_text(usage.free)} free; "
            "use fewer subjects or a coarser output step"
        )


#: Allocations of at least this many bytes go on ordinary pages (:func:`ordinary_pages`).
ORDINARY_PAGES_FROM_BYTES = 512 * 2**20


@contextlib.contextmanager
def ordinary_pages(nbytes: float):
    """When ``nbytes`` (the allocation to come) is at least :data:`ORDINARY_PAGES_FROM_BYTES`,
    numpy's large arrays allocated meanwhile go on ordinary memory pages (the setting is restored after).

    numpy asks Linux for transparent huge pages for every large array; where
    the kernel then compacts memory synchronously (the setting
    ``transparent_hugepage/defrag = madvise``, this machine's), the first
    touch of a large fresh array costs seconds of system time: measured on
    the 1.5 GB of columns of a 10,000-subject event table, 3 s against 0.7 s,
    and on the 1.2 GB of its output rows, 2 s; the 2.2 GB of a 100,000-subject
    run, 7.0 s against 4.6 s.  Smaller buffers are faster on huge pages, which
    the kernel then finds without compacting (10,000 subjects, 215 MB of
    output, repeated: 0.35 s against 0.43 s), hence the threshold.  Used
    around the package's few large allocations (an event table read, the
    output of a run); only speed changes, never a value.  The setting is
    numpy's, process-wide: a thread allocating at the same moment is
    affected the same way.
    """
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # numpy 1.x
        try:
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:
            _set_madvise_hugepage = None
    if _set_madvise_hugepage is None or nbytes < ORDINARY_PAGES_FROM_BYTES:
        yield
        return
    before = _set_madvise_hugepage(False)
    try:
        yield
    finally:
        _set_madvise_hugepage(before)
