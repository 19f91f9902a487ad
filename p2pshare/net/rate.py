"""A rate limit for a flow of bytes: the one pacing rule of uploads and downloads.

Strategy: a token bucket with no burst, kept as the moment the limit is next free
(``free_at``). Granting ``count`` bytes moves that moment on by ``count / rate`` seconds
from whichever is later, now or the moment itself, and the caller waits until the grant's
start. So over any run the bytes granted by time *t* are at most ``rate * (t - start)``
plus the last grant, whatever the callers do, and an idle flow earns no credit for later.
The arithmetic (``reserve``) is pure and reads an injected clock, so that tests check it
without time passing; ``take`` adds the one ``asyncio.sleep``. One limiter paces every
connection of a process that shares it (all uploads together, or all downloads), so
each call grants a short run (``run``), never a whole piece: the flows interleave finely
and a downloader judging a paced peer sees steady progress. The limiter also counts what
it granted and the most it ever ran ahead of the rate (``ahead``: of the bytes granted
since it was last idle, those beyond the rate times the time since), which tests read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .. import limits


class RateLimiter:
    """Paces a flow to ``rate`` bytes per second, all its users together.

    Args:
        rate: bytes per second (positive).
        clock: monotonic seconds; ``time.monotonic`` by default.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = rate
        self.clock = clock
        self.started = clock()
        self._free_at = self.started
        self.granted = 0  # bytes granted in all
        self.ahead = 0.0  # the most bytes granted beyond rate * busy time, at any grant
        self._busy_since = self.started  # when the limiter was last idle
        self._busy_granted = 0  # ``granted`` then

    @property
    def idle(self) -> bool:
        """Whether every byte granted so far may have been used by now."""
        return self.clock() >= self._free_at

    @property
    def run(self) -> int:
        """Bytes a caller should ask for at a time: ``limits.RATE_RUN_SECONDS`` of the rate,
        at least ``limits.THROTTLE_RUN`` and at most ``limits.RECV_CHUNK``."""
        wanted = int(self.rate * limits.RATE_RUN_SECONDS)
        return max(limits.THROTTLE_RUN, min(limits.RECV_CHUNK, wanted))

    def reserve(self, count: int) -> float:
        """Grant ``count`` bytes; returns the seconds to wait before using them."""
        now = self.clock()
        if now >= self._free_at:  # idle: a busy period begins
            self._busy_since, self._busy_granted = now, self.granted
        start = max(now, self._free_at)
        self._free_at = start + count / self.rate
        self.granted += count
        # Bytes of this busy period beyond what the rate allowed by the time they may go.
        spent = self.granted - self._busy_granted
        self.ahead = max(self.ahead, spent - self.rate * (start - self._busy_since))
        return start - now

    async def take(self, count: int) -> None:
        """Wait until ``count`` more bytes are allowed."""
        delay = self.reserve(count)
        if delay > 0:
            await asyncio.sleep(delay)  # pacing, not waiting for an event


def limiter(rate: float | None) -> RateLimiter | None:
    """A limiter for ``rate`` bytes per second, or None for no limit (None or 0)."""
    return RateLimiter(rate) if rate else None
