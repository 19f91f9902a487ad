"""Delays between reconnect attempts: exponential, capped, with jitter.

Strategy: pure state, no clock and no sleeping: ``next_delay()`` says how long to wait
before the next attempt, ``reset()`` is called after a success. Each delay is the base
(``first``, times ``factor`` per failure, at most ``cap``) spread by up to ``jitter`` of
itself either way, so that peers that lost the same server at the same moment do not all
come back at the same instant; the spread never takes a delay above ``cap``. The random
source is a parameter, so that tests can choose it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from . import limits


class Backoff:
    """Delays in seconds for successive failed attempts (by default, the reconnect delays
    of ``limits``).

    Args:
        first: the base delay after the first failure.
        cap: no delay is longer than this.
        factor: the base grows by this after each failure.
        jitter: each delay is the base times a factor in [1 - jitter, 1 + jitter].
        rand: returns a float in [0, 1); ``random.random`` by default.
    """

    def __init__(self, first: float = limits.RECONNECT_FIRST, cap: float = limits.RECONNECT_MAX,
                 factor: float = 2.0, jitter: float = limits.RECONNECT_JITTER,
                 rand: Callable[[], float] = random.random) -> None:
        if not 0 < first <= cap or factor < 1 or not 0 <= jitter < 1:
            raise ValueError("need 0 < first <= cap, factor >= 1 and 0 <= jitter < 1")
        self.first, self.cap, self.factor, self.jitter = first, cap, factor, jitter
        self.rand = rand
        self.base = first

    def next_delay(self) -> float:
        """The delay before the next attempt; the one after will be longer (up to ``cap``)."""
        base, self.base = self.base, min(self.base * self.factor, self.cap)
        spread = 1 + self.jitter * (2 * self.rand() - 1)
        return min(base * spread, self.cap)

    def reset(self) -> None:
        """After a success: the next failure waits ``first`` again."""
        self.base = self.first
