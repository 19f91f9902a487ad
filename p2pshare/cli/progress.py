"""Progress display: a live rich bar on a terminal, plain lines otherwise, all on stderr;
and the NDJSON events of ``--json`` on stdout.

Strategy: callers report absolute progress (``update``) or increments (``advance``, safe
from a worker thread); the view decides how to show it. Progress is never a result, so
it goes to stderr (stdout stays for results: a path, an id, JSON). When stderr is a
terminal, rich draws bytes, rate, ETA and extra fields (peers, pieces); otherwise (a
pipe, a log file, CI) one plain line is printed every ``limits.PROGRESS_LOG_INTERVAL``
and at the end. ``show=False`` (``-q``, ``--json``) shows nothing.

``Events`` writes one JSON object a line on stdout, each with an ``event`` key
(docs/cli.md#events): ``started``, ``progress`` (at most once a second), ``finished``,
``error`` and a last ``summary``.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .. import limits
from ._run import say_json

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

EVENT_INTERVAL = 1.0  # seconds between two "progress" events at most


def human(count: float) -> str:
    """Bytes as ``12.3 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


class ProgressView:
    """Shows one task's progress towards ``total`` bytes on stderr."""

    def __init__(self, description: str, total: int, *, live: bool | None = None,
                 show: bool = True) -> None:
        self.description = description
        self.total = total
        self.show = show
        self.live = show and (sys.stderr.isatty() if live is None else live)
        self.done = 0
        self.extra = ""
        self._lock = threading.Lock()
        self._start = self._last_line = time.monotonic()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressView:
        if self.live:  # rich only for a live bar: a quiet or logged run starts faster
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )
            self._progress = Progress(
                TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[extra]}"),
                console=Console(stderr=True),
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, extra="")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
        elif exc_type is None:
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
        if not self.show:
            return
        rate = self.done / max(now - self._start, 1e-3)
        share = 100 * self.done / self.total if self.total else 100.0
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        tail = f", {self.extra}" if self.extra else ""
        print(f"{self.description}: {human(self.done)} of {human(self.total)} ({share:.0f}%), "
              f"{human(rate)}/s, ETA {left:.0f} s{tail}", file=sys.stderr, flush=True)


class Events:
    """The NDJSON events of one command (``enabled``: ``--json`` was given)."""

    def __init__(self, command: str, enabled: bool) -> None:
        self.command = command
        self.enabled = enabled
        self.start = time.monotonic()
        self._last: float | None = None
        self._base: tuple[float, int] | None = None  # (time, done) of the first progress

    def emit(self, event: str, **fields: Any) -> None:
        """One event (``started``, ``finished``, ``error``...) with ``fields``."""
        if self.enabled:
            say_json({"event": event, "command": self.command, **fields}, lines=True)

    def progress(self, done: int, total: int, peers: int, *, final: bool = False,
                 **fields: Any) -> None:
        """A ``progress`` event, unless one went out less than a second ago (``final``:
        send it anyway)."""
        now = time.monotonic()
        if self._base is None:
            self._base = (now, done)
        if not final and self._last is not None and now - self._last < EVENT_INTERVAL:
            return
        self._last = now
        since, base = self._base
        rate = (done - base) / (now - since) if now > since else 0.0
        self.emit("progress", done=done, total=total, rate=round(rate), peers=peers, **fields)

    def summary(self, status: int, **fields: Any) -> None:
        """The last event: the exit status and the seconds the command took."""
        self.emit("summary", exit=int(status),
                  seconds=round(time.monotonic() - self.start, 3), **fields)
