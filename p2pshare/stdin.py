"""Lines of standard input for an event loop: the interactive menus and experiment workers.

Strategy: a daemon thread reads standard input line by line into an asyncio queue, so the
event loop never blocks on a terminal or a pipe, and a quiet terminal never keeps the
process alive at exit. EOF is ``None``.
"""

from __future__ import annotations

import asyncio
import sys
import threading


class StdinLines:
    """Lines of standard input, read by a daemon thread; None at EOF."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._pump, daemon=True, name="stdin").start()

    def _pump(self) -> None:
        for line in sys.stdin:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, line)
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None)

    async def next(self) -> str | None:
        return await self._queue.get()
