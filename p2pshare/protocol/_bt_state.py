"""The peer wire's state: message order per side, torrent geometry, and the block ledger.

Strategy: three small pieces the connection (``bt_wire``) combines, each testable alone.

``TRANSITIONS`` is the order of messages on one direction of a connection, as an explicit
table ``(Phase, event type) -> Phase`` (h11's model): the handshake first; then BEP 3's
bitfield, or BEP 6's have all / have none, as the first message (extension messages,
port and keep-alives may come before it: Transmission sends its extension handshake
first); then everything else. A bitfield or have all may come again later, as the peer's
whole set: aria2 sends one instead of several haves when it is shorter (libtorrent reads
it so); a later have none would take pieces back and stays refused. A pair missing from
the table is an error of whoever sent it.

``Geometry`` knows how many pieces there are and how long each is, so that a request,
have or bitfield can be checked; a magnet download learns it only once it has the
metadata (``BtConnection.set_geometry``).

``BlockLedger`` holds the blocks in flight both ways: the requests a peer has made of us
(bounded by the ``reqq`` we advertise), ours of it (bounded by its ``reqq``), the ones we
cancelled whose piece may still arrive (bounded: oldest forgotten first), and the
allowed-fast pieces granted each way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .. import limits
from . import bt_events as ev

Block = tuple[int, int, int]  # index, begin, length


class Phase(Enum):
    HANDSHAKE = "handshake"  # no handshake yet
    FIRST = "first"  # handshake done: a bitfield (or have all/none) may still come
    OPEN = "open"  # anything but a handshake or a bitfield
    ERROR = "error"  # broke the protocol: nothing more


FIRST_ONLY: tuple[type[Any], ...] = (ev.Bitfield, ev.HaveAll, ev.HaveNone)
BEFORE_FIRST: tuple[type[Any], ...] = (
    ev.BtKeepAlive, ev.Port, ev.ExtendedHandshake, ev.MetadataRequest, ev.MetadataData,
    ev.MetadataReject, ev.Pex)
ANYTIME: tuple[type[Any], ...] = BEFORE_FIRST + (
    ev.Choke, ev.Unchoke, ev.Interested, ev.NotInterested, ev.BtHave, ev.BtRequest, ev.Piece,
    ev.PieceHeader, ev.Cancel, ev.Suggest, ev.RejectRequest, ev.AllowedFast, ev.HashRequest,
    ev.Hashes, ev.HashReject)


LATER_SETS: tuple[type[Any], ...] = (ev.Bitfield, ev.HaveAll)  # aria2: the whole set again


def _table() -> dict[tuple[Phase, type[Any]], Phase]:
    table = {(Phase.HANDSHAKE, ev.Handshake): Phase.FIRST}
    table.update({(Phase.FIRST, kind): Phase.OPEN for kind in FIRST_ONLY + ANYTIME})
    table.update({(Phase.FIRST, kind): Phase.FIRST for kind in BEFORE_FIRST})
    table.update({(Phase.OPEN, kind): Phase.OPEN for kind in ANYTIME + LATER_SETS})
    return table


TRANSITIONS: Mapping[tuple[Phase, type[Any]], Phase] = _table()


@dataclass(frozen=True, slots=True)
class Geometry:
    """A torrent's pieces as the wire sees them: ``piece_count`` pieces of ``piece_length``
    bytes, except those in ``short`` (index -> length): the last piece of a v1 torrent, the
    last piece of each file of a v2 one."""

    piece_count: int
    piece_length: int
    short: Mapping[int, int] = field(default_factory=dict)

    @classmethod
    def v1(cls, total_length: int, piece_length: int) -> Geometry:
        """The geometry of a v1 (or hybrid) torrent of ``total_length`` bytes."""
        count = -(-total_length // piece_length)
        last = total_length - (count - 1) * piece_length
        return cls(count, piece_length, {count - 1: last} if last != piece_length else {})

    def piece_size(self, index: int) -> int:
        return self.short.get(index, self.piece_length)

    @property
    def bitfield_length(self) -> int:
        return -(-self.piece_count // 8)

    def has_piece(self, index: int) -> bool:
        return 0 <= index < self.piece_count

    def block_problem(self, index: int, begin: int, length: int) -> str | None:
        """Why (index, begin, length) is not a block of this torrent, or None."""
        if not self.has_piece(index):
            return f"piece {index} out of range (0..{self.piece_count - 1})"
        if begin + length > self.piece_size(index):
            return f"block {begin}+{length} runs past piece {index}"
        return None

    def bitfield_problem(self, bits: bytes) -> str | None:
        """Why ``bits`` is not this torrent's bitfield (length, spare bits), or None."""
        if len(bits) != self.bitfield_length:
            return f"bitfield of {len(bits)} bytes for {self.piece_count} pieces"
        spare = self.bitfield_length * 8 - self.piece_count
        if spare and bits[-1] & ((1 << spare) - 1):
            return "bitfield has spare bits set"
        return None


def block_length_problem(length: int) -> str | None:
    if not 0 < length <= limits.BT_BLOCK:
        return f"block length {length} not in 1..{limits.BT_BLOCK}"
    return None


class BlockLedger:
    """Blocks in flight both ways and allowed-fast grants (see the module docstring)."""

    __slots__ = ("allowed", "cancelled", "granted", "ours", "theirs")

    def __init__(self) -> None:
        self.theirs: dict[Block, None] = {}  # requested of us, not answered (insertion order)
        self.ours: dict[Block, None] = {}  # we requested, not answered
        self.cancelled: dict[Block, None] = {}  # we gave up on; a piece may still come
        self.granted: set[int] = set()  # allowed-fast pieces we granted the peer
        self.allowed: set[int] = set()  # allowed-fast pieces the peer granted us

    def forget_ours(self, block: Block) -> None:
        """Move one of our requests to the cancelled blocks (bounded, oldest dropped)."""
        self.ours.pop(block, None)
        self.cancelled[block] = None
        while len(self.cancelled) > limits.MAX_BT_CANCELLED:
            del self.cancelled[next(iter(self.cancelled))]

    def forget_all_ours(self) -> None:
        for block in list(self.ours):
            self.forget_ours(block)

    def answered(self, block: Block) -> bool:
        """Whether a piece or reject for ``block`` is expected (it is then settled); False
        for a block we cancelled (dropped quietly) .

        Raises:
            KeyError: a block we never requested.
        """
        if block in self.ours:
            del self.ours[block]
            return True
        del self.cancelled[block]
        return False

    def drop_theirs(self, keep: set[int]) -> Iterator[Block]:
        """Remove and yield the peer's requests except those for pieces in ``keep``."""
        for block in [b for b in self.theirs if b[0] not in keep]:
            del self.theirs[block]
            yield block
