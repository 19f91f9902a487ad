"""A rate per source address, in bounded memory: the UDP endpoint's and the tracker's.

Strategy: one token bucket per source address (``burst`` tokens, refilled at ``rate`` a
second), kept in an ordered dictionary from which the least recently heard address is
forgotten once ``max_sources`` are held: a flood from many addresses cannot grow it, and
an address forgotten only comes back with a full burst (bounded memory, at the price of
a little generosity to who was forgotten). Pure: the clock is the caller's ``now``, so
tests move time by hand.
"""

from __future__ import annotations

from collections import OrderedDict


class SourceRates:
    """Grants events per source address (module docstring).

    Args:
        burst: events an address may make at once.
        rate: events a second it earns back.
        max_sources: addresses remembered at once.
    """

    def __init__(self, burst: float, rate: float, max_sources: int) -> None:
        if burst < 1 or rate <= 0 or max_sources < 1:
            raise ValueError("burst >= 1, rate > 0 and max_sources >= 1")
        self.burst = burst
        self.rate = rate
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when
        self.refused = 0

    def allow(self, source: str, now: float) -> bool:
        """Take one token of ``source``'s bucket at time ``now``; False (and counted in
        ``refused``) when it has none."""
        tokens, then = self._buckets.pop(source, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - then) * self.rate)
        allowed = tokens >= 1
        self._buckets[source] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)
        if not allowed:
            self.refused += 1
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)
