"""The P2P-CI index: who holds which RFC, newest first, owned by the connection that added it.

Strategy: the handout keeps two linked lists (peers, RFC records) and inserts at the front
(PROTOCOLS.md 1.5-1.8). We keep the same order with insertion-ordered dicts read
backwards, and add the indexes that make each operation cheap:

* ``_records``: (rfc, peer) -> title, in insertion order: LIST walks it backwards.
* ``_by_rfc``: rfc -> {peer: None} in insertion order: LOOKUP is O(holders), not O(index).
* ``_peers``: peer -> its owner and its RFC numbers: a peer's removal is O(its records).

A peer is keyed by (host, upload port) (A6, A11), and is owned by the connection that first
claimed it: another connection cannot add, change or remove its records (``StoreError``).
Re-adding a record moves it to the front and updates its title.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field

from ..errors import StoreError
from ..protocol.ci import Record

PeerKey = tuple[str, int]


@dataclass(slots=True)
class _Peer:
    owner: Hashable
    rfcs: dict[int, None] = field(default_factory=dict)


class MemoryIndex:
    """The central index of the P2P-CI server, in memory."""

    def __init__(self) -> None:
        self._records: dict[tuple[int, PeerKey], str] = {}
        self._by_rfc: dict[int, dict[PeerKey, None]] = {}
        self._peers: dict[PeerKey, _Peer] = {}
        self._owned: dict[Hashable, dict[PeerKey, None]] = {}

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
        key = (sys.intern(host), port)
        peer = self._claim(owner, key)
        rec_key = (rfc, key)
        self._records.pop(rec_key, None)  # re-adding moves to the front
        self._records[rec_key] = title
        holders = self._by_rfc.setdefault(rfc, {})
        holders.pop(key, None)
        holders[key] = None
        peer.rfcs[rfc] = None
        return Record(rfc, title, key[0], port)

    def _claim(self, owner: Hashable, key: PeerKey) -> _Peer:
        peer = self._peers.get(key)
        if peer is None:
            peer = self._peers[key] = _Peer(owner)
            self._owned.setdefault(owner, {})[key] = None
        elif peer.owner != owner:
            raise StoreError(f"{key[0]}:{key[1]} belongs to another connection")
        return peer

    def remove(self, owner: Hashable, rfc: int, host: str, port: int) -> Record | None:
        """Withdraw ``owner``'s record of ``rfc`` at ``host:port``; None if it has none."""
        key = (host, port)
        peer = self._peers.get(key)
        if peer is None or peer.owner != owner or rfc not in peer.rfcs:
            return None
        title = self._drop_record(rfc, key)
        del peer.rfcs[rfc]
        return Record(rfc, title, host, port)

    def _drop_record(self, rfc: int, key: PeerKey) -> str:
        title = self._records.pop((rfc, key))
        holders = self._by_rfc[rfc]
        del holders[key]
        if not holders:
            del self._by_rfc[rfc]
        return title

    def drop_owner(self, owner: Hashable) -> int:
        """Remove every peer ``owner`` claimed and all their records; returns how many records."""
        removed = 0
        for key in self._owned.pop(owner, ()):
            peer = self._peers.pop(key)
            for rfc in peer.rfcs:
                self._drop_record(rfc, key)
            removed += len(peer.rfcs)
        return removed

    def lookup(self, rfc: int) -> list[Record]:
        """Every holder of ``rfc``, newest first."""
        holders = self._by_rfc.get(rfc)
        if not holders:
            return []
        return [Record(rfc, self._records[(rfc, k)], k[0], k[1]) for k in reversed(holders)]

    def snapshot(self) -> list[tuple[int, PeerKey]]:
        """Record keys, newest first, safe to walk while the index changes."""
        return list(reversed(self._records))

    def records(self, keys: list[tuple[int, PeerKey]]) -> Iterator[Record]:
        """The records of ``keys`` that still exist (for streaming a LIST snapshot)."""
        for rfc, key in keys:
            title = self._records.get((rfc, key))
            if title is not None:
                yield Record(rfc, title, key[0], key[1])
