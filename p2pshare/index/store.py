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
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Hashable, Iterator
from itertools import count

from ..errors import StoreError
from ..host import join_hostport
from ..protocol.ci import Record

PeerKey = tuple[str, int]
_SHIFT = 40  # record key = rfc << 40 | peer id; peer ids stay below 2**40
_MASK = (1 << _SHIFT) - 1


class _Peer:
    __slots__ = ("host", "id", "owner", "port", "rfcs")

    def __init__(self, peer_id: int, host: str, port: int, owner: Hashable) -> None:
        self.id, self.host, self.port, self.owner = peer_id, host, port, owner
        self.rfcs = array("I")


class MemoryIndex:
    """The central index of the P2P-CI server, in memory."""

    def __init__(self) -> None:
        self._records: dict[int, str] = {}
        self._by_rfc: dict[int, dict[int, None]] = {}
        self._peers: dict[PeerKey, _Peer] = {}
        self._by_id: dict[int, _Peer] = {}
        self._owned: dict[Hashable, dict[PeerKey, None]] = {}
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

    def peers_of(self, owner: Hashable) -> list[PeerKey]:
        """The peers ``owner`` claimed, oldest first."""
        return list(self._owned.get(owner, ()))

    def has_peer(self, host: str, port: int) -> bool:
        return (host, port) in self._peers

    def add(self, owner: Hashable, rfc: int, title: str, host: str, port: int) -> Record:
        """Add (or refresh) ``owner``'s record of ``rfc`` at ``host:port``.

        Returns:
            the record as stored (what an ADD reply echoes).

        Raises:
            StoreError: ``host:port`` belongs to another live connection.
        """
        peer = self._claim(owner, host, port)
        key = rfc << _SHIFT | peer.id
        title = sys.intern(title)
        if self._records.pop(key, None) is None:
            peer.rfcs.append(rfc)
        self._records[key] = title  # re-adding moves the record to the front
        holders = self._by_rfc.setdefault(rfc, {})
        holders.pop(peer.id, None)
        holders[peer.id] = None
        if self.on_change is not None:
            self.on_change(rfc)
        return Record(rfc, title, peer.host, port)

    def _claim(self, owner: Hashable, host: str, port: int) -> _Peer:
        key = (host, port)
        peer = self._peers.get(key)
        if peer is None:
            peer = _Peer(next(self._ids), sys.intern(host), port, owner)
            self._peers[key] = self._by_id[peer.id] = peer
            self._owned.setdefault(owner, {})[key] = None
        elif peer.owner != owner:
            raise StoreError(f"{join_hostport(host, port)} belongs to another connection")
        return peer

    def remove(self, owner: Hashable, rfc: int, host: str, port: int) -> Record | None:
        """Withdraw ``owner``'s record of ``rfc`` at ``host:port``; None if it has none."""
        peer = self._peers.get((host, port))
        if peer is None or peer.owner != owner or (rfc << _SHIFT | peer.id) not in self._records:
            return None
        title = self._drop_record(rfc, peer)
        peer.rfcs.remove(rfc)
        return Record(rfc, title, host, port)

    def _drop_record(self, rfc: int, peer: _Peer) -> str:
        title = self._records.pop(rfc << _SHIFT | peer.id)
        holders = self._by_rfc[rfc]
        del holders[peer.id]
        if not holders:
            del self._by_rfc[rfc]
        if self.on_change is not None:
            self.on_change(rfc)
        return title

    def drop_owner(self, owner: Hashable) -> int:
        """Remove every peer ``owner`` claimed and all their records; returns how many records."""
        removed = 0
        for key in self._owned.pop(owner, ()):
            peer = self._peers.pop(key)
            del self._by_id[peer.id]
            for rfc in peer.rfcs:
                self._drop_record(rfc, peer)
            removed += len(peer.rfcs)
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

    def snapshot(self) -> list[int]:
        """Record keys, newest first, safe to walk while the index changes."""
        return list(reversed(self._records))

    def records(self, keys: list[int]) -> Iterator[Record]:
        """The records of ``keys`` that still exist (for streaming a LIST snapshot)."""
        for key in keys:
            title = self._records.get(key)
            peer = self._by_id.get(key & _MASK)
            if title is not None and peer is not None:
                yield Record(key >> _SHIFT, title, peer.host, peer.port)
