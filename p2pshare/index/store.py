"""The P2P-CI index: who holds which RFC, newest first, owned by the connection that added it.

Strategy: the handout keeps two linked lists (peers, RFC records) and inserts at the front
(docs/p2p-ci.md#index-records). We keep the same order with insertion-ordered dicts read
backwards, and add the indexes that make each operation cheap:

* ``_records``: record key -> title, in insertion order: LIST walks it backwards.
* ``_by_rfc``: rfc -> {peer id: None} in insertion order: LOOKUP is O(holders).
* each ``_Peer`` keeps its RFC numbers in an ``array``: removal is O(its records).

Memory is the constraint at a million records (README, benchmark 3), so a record costs
one dict slot keyed by a single int (``rfc << 40 | peer id``) plus one slot in its RFC's
holder dict plus 4 bytes in its peer's array; titles are interned, so 100 peers holding
one RFC share one title string.

A peer is keyed by (host, upload port) (A6, A11), and is owned by the connection that first
claimed it: another connection cannot add, change or remove its records (``StoreError``).
Re-adding a record moves it to the front and updates its title.

``on_change``, if set, is called with an RFC number whenever that RFC's holders change
(add, re-add, remove, a peer gone), so that a cache of answers can drop what went stale.

Budgets (``IndexBudget``, from ``limits``): records per connection, distinct host:port
claims per connection, records per source address and records in all. A mutation over one
raises ``OverBudget`` and changes nothing. ``drop_owner`` gives back everything a
connection held.

LIST ALL walks ``KeyLog`` (``index.log``), an append-only log of record keys: a
``Listing`` holds two integers, never a copy of the index. Each holder entry of
``_by_rfc`` keeps its record's tick in that log, so that removing or re-adding a record
retires its old entry in O(log n).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from itertools import count, islice
from types import TracebackType

from .. import limits
from ..errors import OverBudget, StoreError
from ..host import join_hostport
from ..protocol.ci import Record
from .log import KeyLog

PeerKey = tuple[str, int]
_SHIFT = 40  # record key = rfc << 40 | peer id; peer ids stay below 2**40
_MASK = (1 << _SHIFT) - 1


@dataclass(frozen=True, slots=True)
class IndexBudget:
    """What one connection, one source address and everyone may make the index hold."""

    per_connection: int = field(default_factory=lambda: limits.MAX_RECORDS_PER_CONNECTION)
    claims_per_connection: int = field(
        default_factory=lambda: limits.MAX_CLAIMS_PER_CONNECTION)
    per_source: int = field(default_factory=lambda: limits.MAX_RECORDS_PER_SOURCE)
    in_all: int = field(default_factory=lambda: limits.MAX_INDEX_RECORDS)


class _Peer:
    __slots__ = ("host", "id", "owner", "port", "rfcs")

    def __init__(self, peer_id: int, host: str, port: int, owner: Hashable) -> None:
        self.id, self.host, self.port, self.owner = peer_id, host, port, owner
        self.rfcs = array("I")


class _Owner:
    """One connection's holdings: its peers (host:port claims), records, source address."""

    __slots__ = ("peers", "records", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.peers: dict[PeerKey, None] = {}
        self.records = 0


class MemoryIndex:
    """The central index of the P2P-CI server, in memory."""

    def __init__(self, budget: IndexBudget | None = None) -> None:
        self.budget = budget or IndexBudget()
        self._records: dict[int, str] = {}
        self._by_rfc: dict[int, dict[int, int]] = {}  # rfc -> peer id -> tick in _log
        self._peers: dict[PeerKey, _Peer] = {}
        self._by_id: dict[int, _Peer] = {}
        self._owned: dict[Hashable, _Owner] = {}
        self._by_source: dict[str, int] = {}  # source address -> records its connections hold
        self._log = KeyLog()
        self._ids = count(1)
        self.on_change: Callable[[int], object] | None = None

    def __len__(self) -> int:
        return len(self._records)

    @property
    def peer_count(self) -> int:
        return len(self._peers)

    def peers(self) -> list[PeerKey]:
        """The peer list, newest first."""
        return list(reversed(self._peers))

    def peer_rows(self, limit: int) -> list[tuple[str, int, int]]:
        """Up to ``limit`` peers, newest first: host, port, records held (the dashboard)."""
        return [(p.host, p.port, len(p.rfcs))
                for p in islice(reversed(self._peers.values()), limit)]

    @property
    def rfc_count(self) -> int:
        """Distinct RFCs with at least one holder."""
        return len(self._by_rfc)

    def peers_of(self, owner: Hashable) -> list[PeerKey]:
        """The peers ``owner`` claimed, oldest first."""
        held = self._owned.get(owner)
        return list(held.peers) if held else []

    def records_of(self, owner: Hashable) -> int:
        """Records ``owner`` holds."""
        held = self._owned.get(owner)
        return held.records if held else 0

    def records_from(self, source: str) -> int:
        """Records the connections from address ``source`` hold."""
        return self._by_source.get(source, 0)

    def has_peer(self, host: str, port: int) -> bool:
        return (host, port) in self._peers

    def add(self, owner: Hashable, rfc: int, title: str, host: str, port: int,
            source: str = "") -> Record:
        """Add (or refresh) ``owner``'s record of ``rfc`` at ``host:port``; ``source`` is
        the address ``owner`` connects from (the first one given counts for its budget).

        Returns:
            the record as stored (what an ADD reply echoes).

        Raises:
            StoreError: ``host:port`` belongs to another live connection.
            OverBudget: a new record or claim would pass a budget (nothing changed).
        """
        held = self._owned.get(owner) or _Owner(source)
        peer = self._claim(owner, held, host, port, rfc)
        key = rfc << _SHIFT | peer.id
        title = sys.intern(title)
        holders = self._by_rfc.setdefault(rfc, {})
        if self._records.pop(key, None) is None:
            self._charge(held, 1)
            peer.rfcs.append(rfc)
        else:
            self._log.retire(holders.pop(peer.id))
        self._records[key] = title  # re-adding moves the record to the front
        holders[peer.id] = self._log.append(key)
        if self.on_change is not None:
            self.on_change(rfc)
        return Record(rfc, title, peer.host, port)

    def _claim(self, owner: Hashable, held: _Owner, host: str, port: int, rfc: int) -> _Peer:
        """The peer at host:port, claimed for ``owner`` if nobody holds it; checks every
        budget a new record there would count against.

        Raises:
            StoreError, OverBudget: as ``add``.
        """
        key = (host, port)
        peer = self._peers.get(key)
        if peer is not None and peer.owner != owner:
            raise StoreError(f"{join_hostport(host, port)} belongs to another connection")
        if peer is None and len(held.peers) >= self.budget.claims_per_connection:
            raise OverBudget(f"a connection may claim {self.budget.claims_per_connection} "
                             f"host:port pairs; {join_hostport(host, port)} is one more")
        if peer is None or (rfc << _SHIFT | peer.id) not in self._records:
            self._afford(held)
        if peer is None:
            peer = _Peer(next(self._ids), sys.intern(host), port, owner)
            self._peers[key] = self._by_id[peer.id] = peer
            self._owned[owner] = held
            held.peers[key] = None
        return peer

    def _afford(self, held: _Owner) -> None:
        """Raises OverBudget if one more record for ``held`` is over a budget."""
        b = self.budget
        if len(self._records) >= b.in_all:
            raise OverBudget(f"the index holds its {b.in_all} records", everyone=True)
        if held.records >= b.per_connection:
            raise OverBudget(f"a connection may hold {b.per_connection} records")
        if self._by_source.get(held.source, 0) >= b.per_source:
            raise OverBudget(f"{held.source} holds its {b.per_source} records")

    def _charge(self, held: _Owner, records: int) -> None:
        held.records += records
        total = self._by_source.get(held.source, 0) + records
        if total:
            self._by_source[held.source] = total
        else:
            self._by_source.pop(held.source, None)

    def remove(self, owner: Hashable, rfc: int, host: str, port: int) -> Record | None:
        """Withdraw ``owner``'s record of ``rfc`` at ``host:port``; None if it has none."""
        peer = self._peers.get((host, port))
        if peer is None or peer.owner != owner or (rfc << _SHIFT | peer.id) not in self._records:
            return None
        title = self._drop_record(rfc, peer)
        peer.rfcs.remove(rfc)
        self._charge(self._owned[owner], -1)
        return Record(rfc, title, host, port)

    def _drop_record(self, rfc: int, peer: _Peer) -> str:
        title = self._records.pop(rfc << _SHIFT | peer.id)
        holders = self._by_rfc[rfc]
        self._log.retire(holders.pop(peer.id))
        if not holders:
            del self._by_rfc[rfc]
        if self.on_change is not None:
            self.on_change(rfc)
        return title

    def drop_owner(self, owner: Hashable) -> int:
        """Remove every peer ``owner`` claimed and all their records; returns how many records."""
        held = self._owned.pop(owner, None)
        if held is None:
            return 0
        for key in held.peers:
            peer = self._peers.pop(key)
            del self._by_id[peer.id]
            for rfc in peer.rfcs:
                self._drop_record(rfc, peer)
        removed = held.records
        self._charge(held, -removed)
        return removed

    def lookup(self, rfc: int) -> list[Record]:
        """Every holder of ``rfc``, newest first."""
        holders = self._by_rfc.get(rfc)
        if not holders:
            return []
        found = []
        for peer_id in reversed(holders):
            peer = self._by_id[peer_id]
            found.append(Record(rfc, self._records[rfc << _SHIFT | peer_id], peer.host, peer.port))
        return found

    def listing(self) -> Listing:
        """The records live now, newest first, walked lazily while the index changes (a
        record removed before the walk reaches it is left out): LIST ALL. Close it
        (``with``) when done."""
        return Listing(self)

    def _record(self, key: int) -> Record | None:
        title = self._records.get(key)
        peer = self._by_id.get(key & _MASK)
        if title is None or peer is None:
            return None
        return Record(key >> _SHIFT, title, peer.host, peer.port)

    @property
    def log_entries(self) -> int:
        """Entries in the log LIST walks (current or not): at most about twice the records,
        plus what open listings still need."""
        return len(self._log)


class Listing:
    """One LIST ALL's walk of a ``MemoryIndex``: O(1) memory, however big the index."""

    __slots__ = ("_index", "_token")

    def __init__(self, index: MemoryIndex) -> None:
        self._index = index
        self._token = index._log.begin()

    def __iter__(self) -> Iterator[Record]:
        for key in self._index._log.walk(self._token):
            record = self._index._record(key)
            if record is not None:
                yield record

    def close(self) -> None:
        self._index._log.end(self._token)

    def __enter__(self) -> Listing:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
