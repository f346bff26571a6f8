"""A progress bar on standard error, for runs that take more than a moment.

The bar stays silent unless the stream is a terminal and the run, judged by
its progress so far, will take longer than about two seconds; it then draws
one line that it rewrites in place (``\\r``) and clears when done, so
pipes, logs and quick runs never see it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Callable ``bar(done, total)`` that draws ``[#####.....]  45%  ETA 3 s``.

    Parameters
    ----------
    label : str
        Text before the bar.
    stream : file, optional
        Where to draw (default ``sys.stderr``); nothing is drawn unless it
        is a terminal.
    min_seconds : float
        Expected total duration below which nothing is drawn, s.
    enabled : bool, optional
        Force the bar on or off (default: on for a terminal).
    clock : callable
        Time source in seconds (tests pass a fake one).
    """

    WIDTH = 30
    #: Redraw at most this often, s.
    INTERVAL_S = 0.1
    #: Judge the expected duration only after this long, s.
    WARMUP_S = 0.5

    def __init__(
        self,
        label: str = "",
        *,
        stream: TextIO | None = None,
        min_seconds: float = 2.0,
        enabled: bool | None = None,
        clock=time.monotonic,
    ):
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.label = label
        self.min_seconds = min_seconds
        self.clock = clock
        self.start = clock()
        self._last_draw = -1.0
        self._shown = False
        self._width = 0

    def __call__(self, done: float, total: float) -> None:
        if not self.enabled or total <= 0:
            return
        now = self.clock()
        elapsed = now - self.start
        frac = min(max(done / total, 0.0), 1.0)
        if not self._shown:
            if elapsed < self.WARMUP_S:
                return
            expected = elapsed / frac if frac > 0 else float("inf")
            if expected < self.min_seconds or frac >= 1.0:
                return
        if self._shown and now - self._last_draw < self.INTERVAL_S and frac < 1.0:
            return
        self._last_draw = now
        self._shown = True
        filled = int(round(frac * self.WIDTH))
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        eta_text = f"ETA {eta:4.0f} s" if eta == eta else "ETA    ? s"
        line = f"{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {frac * 100:3.0f}%  {eta_text}"
        self._write("\r" + line.ljust(self._width))
        self._width = len(line)

    def close(self) -> None:
        """Erase the bar (if it was drawn)."""
        if self._shown:
            self._write("\r" + " " * self._width + "\r")
            self._shown = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream never stops a run
            self.enabled = False

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
