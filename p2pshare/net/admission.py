"""Who gets a connection slot: caps in all and per source address, shared fairly.

Strategy: pure bookkeeping, no sockets (the runtime asks, this decides). Slots are counted
per source address (the IP a connection comes from: TCP source addresses cannot be forged,
names can). A newcomer is admitted while both caps have room. When its own address is at
its cap, that address's least productive connection makes room for it (an address can only
crowd itself out). When the server is full, the address holding the most slots gives one
up, provided it holds more than the newcomer's address would after admission; otherwise
the newcomer is refused. So a host that floods a server ends up holding at most an equal
share of it, and a host with one connection always gets in while anyone holds more.

"Least productive" is the caller's ``score`` (lower goes first: the runtime scores bytes
moved per second of life), looked at over the ``SAMPLE`` longest-held connections of that
address, so that choosing costs O(SAMPLE) however many connections an address holds. A
negative score means a connection that is over already (closing, lingering for the
client's close): a newcomer from the same address takes its place first, so an address
is never refused for connections it has finished with.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from itertools import islice
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

SAMPLE = 32  # connections of one address looked at to choose which one makes room


@dataclass(frozen=True, slots=True)
class Verdict(Generic[K]):
    """``admitted``; ``evict``: the connection that must make room first (or None);
    ``why``: a refusal's or an eviction's reason, for the log; ``cap``: which cap was
    reached (``"total"`` or ``"per_source"``; empty if none), for metrics."""

    admitted: bool
    evict: K | None = None
    why: str = ""
    cap: str = ""


class Admission(Generic[K]):
    """The slots of one server.

    Args:
        max_total: connections at once.
        max_per_source: connections at once from one address.
        evict: make room as described above; False: refuse every newcomer over a cap.
    """

    def __init__(self, max_total: int, max_per_source: int, *, evict: bool = True) -> None:
        self.max_total = max_total
        self.max_per_source = max_per_source
        self.evict = evict
        self.total = 0
        self.by_source: dict[str, dict[K, None]] = {}  # insertion order: longest held first

    def count(self, source: str) -> int:
        held = self.by_source.get(source)
        return len(held) if held else 0

    def admit(self, key: K, source: str, score: Callable[[K], float]) -> Verdict[K]:
        """Decide for a newcomer ``key`` from ``source``; admitted ones are held at once
        (the caller must then ``remove`` the evicted one, if any)."""
        own = self.count(source)
        victim: K | None = None
        why = ""
        cap = "total"
        if self.total >= self.max_total:
            biggest = max(self.by_source, key=self.count, default=None)
            most = self.count(biggest) if biggest is not None else 0
            why = (f"connection limit {self.max_total} ({source} holds {own}, "
                   f"{biggest} the most: {most})")
            mine = self._least(source, score) if self.evict else None
            if mine is not None and score(mine) < 0:  # one of its own is over already
                victim = mine
            elif self.evict and biggest is not None and most > own + 1:
                victim = self._least(biggest, score)
        elif own >= self.max_per_source:
            why, cap = f"per-source limit {self.max_per_source}", "per_source"
            victim = self._least(source, score) if self.evict else None
        else:
            self._hold(key, source)
            return Verdict(True)
        if victim is None:
            return Verdict(False, why=why, cap=cap)
        self._hold(key, source)
        return Verdict(True, victim, why, cap)

    def remove(self, key: K, source: str) -> bool:
        """Free ``key``'s slot; False if it held none."""
        held = self.by_source.get(source)
        if held is None or key not in held:
            return False
        del held[key]
        self.total -= 1
        if not held:
            del self.by_source[source]
        return True

    def _hold(self, key: K, source: str) -> None:
        self.by_source.setdefault(source, {})[key] = None
        self.total += 1

    def _least(self, source: str, score: Callable[[K], float]) -> K | None:
        held = self.by_source.get(source)
        if not held:
            return None
        return min(islice(held, SAMPLE), key=score)
