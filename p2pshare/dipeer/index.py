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
ignored (our own files are the truth about us).

Budgets (docs/p2p-di.md#peer-budgets): a new record belongs to the peer whose reply
brought it (``source``). One merge considers at most ``max_per_peer`` lines, and a source
holds at most ``max_per_peer`` records; the index holds at most ``max_records`` remote
records. When it is full, a source holding fewer records than the source holding the most
(less one) takes the place of that one's oldest record: the fair share of
``net.admission``, for records. Beyond that, new records are dropped and counted
(``MergeResult.dropped``; the peer logs it). Local records are apart and never evicted.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import TypeVar

from .. import limits
from ..protocol.di import IndexLine, PeerAddr

Key = tuple[int, str, int]  # (rfc, hostname, port)
_G = TypeVar("_G")
_V = TypeVar("_V")


@dataclass(slots=True)
class Remote:
    """A remote record and when it expires (monotonic seconds)."""

    rfc: int
    title: str
    host: str
    port: int
    expires: float
    source: PeerAddr | None = None  # the peer whose reply brought it (None: unknown)

    @property
    def addr(self) -> PeerAddr:
        return PeerAddr(self.host, self.port)


@dataclass(slots=True)
class MergeResult:
    added: int = 0
    refreshed: int = 0
    ignored: int = 0  # about ourselves, or already expired
    dropped: int = 0  # beyond a budget (max_per_peer or max_records)
    evicted: int = 0  # other sources' records that made room (fair share)
    # during the merge: the source to evict from next; False once none holds more than us
    victim: PeerAddr | None | bool = field(default=True, repr=False, compare=False)


class RFCIndex:
    """Local and remote RFC records of one peer.

    Args:
        ttl: seconds a received remote record lives; local records always show it.
        clock: monotonic seconds (inject one in tests).
        max_records: remote records held at most.
        max_per_peer: lines of one merge considered, and records one source holds, at most.
    """

    def __init__(
        self,
        ttl: float = limits.DI_TTL,
        clock: Callable[[], float] = time.monotonic,
        max_records: int = limits.DI_MAX_INDEX_RECORDS,
        max_per_peer: int = limits.DI_MAX_RECORDS_PER_PEER,
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self.max_records = max_records
        self.max_per_peer = max_per_peer
        self.me: PeerAddr | None = None  # our advertised address, once known
        self._local: dict[int, str] = {}  # rfc -> title
        self._remote: dict[Key, Remote] = {}  # in the order first learned
        self._expiry: list[tuple[float, Key]] = []  # heap; entries may be stale
        self._by_rfc: dict[int, dict[Key, Remote]] = {}  # the same records, by RFC number
        self._from: dict[PeerAddr | None, dict[Key, None]] = {}  # by source, oldest first

    # ----------------------------------------------------------------- local
    def add_local(self, rfc: int, title: str) -> None:
        self._local[rfc] = title

    def drop_local(self, rfc: int) -> None:
        """Forget a local record (its file left the folder)."""
        self._local.pop(rfc, None)

    def has_local(self, rfc: int) -> bool:
        return rfc in self._local

    def local(self) -> dict[int, str]:
        return dict(self._local)

    # ----------------------------------------------------------------- remote
    def merge(self, lines: Iterable[IndexLine], source: PeerAddr | None = None) -> MergeResult:
        """Merge the index ``source`` sent (an RFCQuery reply) into ours (module doc)."""
        now = self._clock()
        self._expire(now)
        counts = MergeResult()
        lines = iter(lines)
        for line in islice(lines, self.max_per_peer):
            self._merge_one(line, source, now, counts)
        counts.dropped += sum(1 for _ in lines)  # beyond max_per_peer: not even read
        return counts

    def _merge_one(self, line: IndexLine, source: PeerAddr | None, now: float,
                   counts: MergeResult) -> None:
        key = (line.rfc, line.host, line.port)
        known = self._remote.get(key)
        own = source is not None and (line.host, line.port) == (source.host, source.port)
        expires = now + (self.ttl if own or source is None else min(self.ttl, line.ttl))
        if self.me is not None and (line.host, line.port) == (self.me.host, self.me.port):
            counts.ignored += 1
        elif known is not None:
            known.title = line.title
            if expires > known.expires:
                known.expires = expires
                heapq.heappush(self._expiry, (expires, key))
            counts.refreshed += 1
        elif expires <= now:
            counts.ignored += 1
        elif not self._room_for(source, counts):
            counts.dropped += 1
        else:
            rec = Remote(line.rfc, line.title, line.host, line.port, expires, source)
            self._remote[key] = self._by_rfc.setdefault(line.rfc, {})[key] = rec
            self._from.setdefault(source, {})[key] = None
            heapq.heappush(self._expiry, (expires, key))
            counts.added += 1

    def _room_for(self, source: PeerAddr | None, counts: MergeResult) -> bool:
        """Room for one more record of ``source``: within its budget, and in the index or
        in the place of the oldest record of a source holding more (fair share)."""
        mine = len(self._from.get(source, ()))
        if mine >= self.max_per_peer:
            return False
        if len(self._remote) < self.max_records:
            return True
        victim = counts.victim
        if victim is False:
            return False  # no source held more than us: nor will one in this merge
        if victim is True or len(self._from.get(victim, ())) <= mine + 1:
            if not self._from:
                return False
            victim = max(self._from, key=lambda s: len(self._from[s]))  # O(sources), rarely
            if len(self._from[victim]) <= mine + 1:
                counts.victim = False
                return False
        counts.victim = victim
        self._remove(next(iter(self._from[victim])))
        counts.evicted += 1
        return True

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
        rec = self._remote.pop(key, None)
        if rec is not None:
            _unfile(self._by_rfc, key[0], key)
            _unfile(self._from, rec.source, key)

    def held_from(self, source: PeerAddr | None) -> int:
        """Remote records ``source`` brought that we still hold."""
        return len(self._from.get(source, ()))


def _unfile(groups: dict[_G, dict[Key, _V]], group: _G, key: Key) -> None:
    """Remove ``key`` from its group, and the group once empty."""
    same = groups[group]
    del same[key]
    if not same:
        del groups[group]
