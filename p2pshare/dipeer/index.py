"""A P2P-DI peer's RFC index: (number, title, hostname, port, TTL) records, pure.

Strategy (docs/p2p-di.md#di-rfc-index): local records are the RFCs in our folder, their TTL
fixed at the full TTL (7200 s) and never decremented. Remote records are learned from
RFCQuery replies. A record about the peer that sent the reply (one of its local RFCs) is
(re)set to the full TTL, as the handout says. A record the sender only relays, about a
third peer, keeps the TTL the sender still had for it: were it reset to 7200 on every
relay, two peers querying each other would keep a departed peer's records alive for ever.
A refresh never shortens a record's life. As in the RS store, nothing ticks: a record
keeps the monotonic time it expires, and a heap of expiry times lets expired records be
popped in O(log n) each (stale heap entries of refreshed records are skipped).

Merge rules: a record is identified by (rfc, hostname, port); a new one is added, a known
one refreshed (TTL and title), never duplicated; a record naming our own address is
ignored (our own files are the truth about us); past ``max_records`` new records are
dropped, so a remote peer cannot grow our memory without bound.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .. import limits
from ..protocol.di import IndexLine, PeerAddr

Key = tuple[int, str, int]  # (rfc, hostname, port)


@dataclass(slots=True)
class Remote:
    """A remote record and when it expires (monotonic seconds)."""

    rfc: int
    title: str
    host: str
    port: int
    expires: float

    @property
    def addr(self) -> PeerAddr:
        return PeerAddr(self.host, self.port)


@dataclass(frozen=True, slots=True)
class MergeResult:
    added: int = 0
    refreshed: int = 0
    ignored: int = 0  # about ourselves, or beyond max_records


class RFCIndex:
    """Local and remote RFC records of one peer.

    Args:
        ttl: seconds a received remote record lives; local records always show it.
        clock: monotonic seconds (inject one in tests).
        max_records: remote records held at most.
    """

    def __init__(
        self,
        ttl: float = limits.DI_TTL,
        clock: Callable[[], float] = time.monotonic,
        max_records: int = limits.DI_MAX_INDEX_RECORDS,
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self.max_records = max_records
        self.me: PeerAddr | None = None  # our advertised address, once known
        self._local: dict[int, str] = {}  # rfc -> title
        self._remote: dict[Key, Remote] = {}  # in the order first learned
        self._expiry: list[tuple[float, Key]] = []  # heap; entries may be stale
        self._by_rfc: dict[int, dict[Key, Remote]] = {}  # the same records, by RFC number

    # ----------------------------------------------------------------- local
    def add_local(self, rfc: int, title: str) -> None:
        self._local[rfc] = title

    def has_local(self, rfc: int) -> bool:
        return rfc in self._local

    def local(self) -> dict[int, str]:
        return dict(self._local)

    # ----------------------------------------------------------------- remote
    def merge(self, lines: Iterable[IndexLine], source: PeerAddr | None = None) -> MergeResult:
        """Merge the index ``source`` sent (an RFCQuery reply) into ours (module doc)."""
        now = self._clock()
        self._expire(now)
        added = refreshed = ignored = 0
        for line in lines:
            key = (line.rfc, line.host, line.port)
            known = self._remote.get(key)
            own = source is not None and (line.host, line.port) == (source.host, source.port)
            expires = now + (self.ttl if own or source is None else min(self.ttl, line.ttl))
            if self.me is not None and (line.host, line.port) == (self.me.host, self.me.port):
                ignored += 1
            elif known is not None:
                known.title = line.title
                if expires > known.expires:
                    known.expires = expires
                    heapq.heappush(self._expiry, (expires, key))
                refreshed += 1
            elif len(self._remote) >= self.max_records or expires <= now:
                ignored += 1
            else:
                rec = Remote(line.rfc, line.title, line.host, line.port, expires)
                self._remote[key] = self._by_rfc.setdefault(line.rfc, {})[key] = rec
                heapq.heappush(self._expiry, (expires, key))
                added += 1
        return MergeResult(added, refreshed, ignored)

    def holders(self, rfc: int) -> list[Remote]:
        """Unexpired remote records of ``rfc``, in the order they were first learned."""
        self._expire(self._clock())
        return list(self._by_rfc.get(rfc, {}).values())

    def drop(self, rfc: int, addr: PeerAddr) -> None:
        """Forget one remote record (its holder answered 404)."""
        self._remove((rfc, addr.host, addr.port))

    # ----------------------------------------------------------------- reading
    def records(self) -> list[IndexLine]:
        """The whole index as RFCQuery sends it: local records first, then remote ones."""
        now = self._clock()
        self._expire(now)
        out: list[IndexLine] = []
        if self.me is not None:
            full = math.ceil(self.ttl)
            out += [IndexLine(rfc, title, self.me.host, self.me.port, full)
                    for rfc, title in sorted(self._local.items())]
        out += [IndexLine(r.rfc, r.title, r.host, r.port, self._ttl(r, now))
                for r in self._remote.values()]
        return out

    def __len__(self) -> int:
        self._expire(self._clock())
        return len(self._local) + len(self._remote)

    def _ttl(self, rec: Remote, now: float) -> int:
        return max(0, math.ceil(rec.expires - now))

    def _expire(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            when, key = heapq.heappop(self._expiry)
            rec = self._remote.get(key)
            if rec is not None and rec.expires <= now:
                self._remove(key)
        if len(self._expiry) > 4 * len(self._remote) + 64:  # drop stale entries now and then
            self._expiry = [(r.expires, k) for k, r in self._remote.items()]
            heapq.heapify(self._expiry)

    def _remove(self, key: Key) -> None:
        if self._remote.pop(key, None) is not None:
            same = self._by_rfc[key[0]]
            del same[key]
            if not same:
                del self._by_rfc[key[0]]
