"""Progress display: a live rich bar on a terminal, plain log lines otherwise.

Strategy: callers report absolute progress (``update``) or increments (``advance``, safe
from a worker thread); the view decides how to show it. On a terminal, rich draws bytes,
rate, ETA and extra fields (peers, pieces). When stdout is not a terminal (a pipe, a log
file, CI), one plain line is printed every ``limits.PROGRESS_LOG_INTERVAL`` and at the end.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from .. import limits


def human(count: float) -> str:
    """Bytes as ``12.3 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


class ProgressView:
    """Shows one task's progress towards ``total`` bytes."""

    def __init__(self, description: str, total: int, *, live: bool | None = None) -> None:
        self.description = description
        self.total = total
        self.live = sys.stdout.isatty() if live is None else live
        self.done = 0
        self.extra = ""
        self._lock = threading.Lock()
        self._start = self._last_line = time.monotonic()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressView:
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[extra]}"),
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, extra="")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
        else:
            self._line()

    def advance(self, count: int) -> None:
        """``count`` more bytes are done (may be called from another thread)."""
        with self._lock:
            self.update(self.done + count)

    def update(self, done: int, extra: str = "") -> None:
        """``done`` bytes are done in all; ``extra`` is shown after the rate."""
        self.done, self.extra = done, extra or self.extra
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, extra=self.extra)
        elif time.monotonic() - self._last_line >= limits.PROGRESS_LOG_INTERVAL:
            self._line()

    def _line(self) -> None:
        now = time.monotonic()
        self._last_line = now
        rate = self.done / max(now - self._start, 1e-3)
        share = 100 * self.done / self.total if self.total else 100.0
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        tail = f", {self.extra}" if self.extra else ""
        print(f"{self.description}: {human(self.done)} of {human(self.total)} ({share:.0f}%), "
              f"{human(rate)}/s, ETA {left:.0f} s{tail}", flush=True)
