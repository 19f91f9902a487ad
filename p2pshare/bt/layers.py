"""The piece layers a v2 magnet lacks, asked of peers in chunks (BEP 52 hash requests).

Strategy: a v2-only magnet's metadata has no piece layers, and without its file's piece
layer no v2 piece can be verified. A file's layer (padded to a power of two) is asked in
chunks of ``limits.BT_HASH_CHUNK`` hashes (fewer for the last one: the power of two of
the pieces left), each aligned to its length and asked with the proof layers that take
it up to the file's ``pieces root`` (``merkle.uncle_count``): so every chunk is proven
alone, against the only hash we trust, before any of it is kept; libtorrent asks the
same chunks and takes no longer answer. A chunk is asked of one peer at a time, of a peer
that holds a piece of it (a peer that holds none is unlikely to hold its hashes either),
at most ``limits.BT_HASH_REQUESTS`` per link. A reject sends the chunk to another peer
(the same one may be asked again after ``limits.PEER_RETRY_DELAY``); an answer that does
not prove sends it to another peer and is counted against the peer like a bad piece (the
caller does that); a peer that leaves gives its chunks back. Pure bookkeeping: the
caller sends and receives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import limits
from ..protocol import bt_events as w
from ..protocol import merkle
from ..swarm.link import Address
from .layout import Layout

HASH = merkle.HASH


@dataclass(eq=False)
class _Chunk:
    """One hash request's worth of a file's piece layer."""

    request: w.HashRequest
    first: int  # the piece (of the torrent) its first hash is of
    count: int  # pieces of the file it covers (the rest of ``request.length`` is padding)
    tree_height: int  # levels from the file's blocks up to its root
    asked: Address | None = None  # the peer it is asked of now
    refused: dict[Address, float] = field(default_factory=dict)  # rejects, by when
    liars: set[Address] = field(default_factory=set)  # answers that did not prove


def _fields(event: w.HashRequest | w.Hashes | w.HashReject) -> tuple[bytes, int, int, int, int]:
    return (event.pieces_root, event.base_layer, event.index, event.length,
            event.proof_layers)


class LayerFetch:
    """The chunks of piece layers still wanted, and which peer each is asked of.

    Args:
        layout: the torrent's pieces and files.
        layers: the piece layers known, by root: a layer completed here is put there.
    """

    def __init__(self, layout: Layout, layers: dict[bytes, bytes]) -> None:
        self.layers = layers
        self.chunks: dict[tuple[bytes, int], _Chunk] = {}
        self.parts: dict[bytes, dict[int, bytes]] = {}
        height = merkle.piece_height(layout.piece_length)
        for f in layout.stored:
            if f.root is None or f.root in layers or f.length <= layout.piece_length:
                continue
            pieces = layout.pieces_of(f)
            levels = (merkle.width(len(pieces)) - 1).bit_length()
            self.parts[f.root] = {}
            for index in range(0, len(pieces), limits.BT_HASH_CHUNK):
                length = min(limits.BT_HASH_CHUNK, merkle.width(len(pieces) - index))
                request = w.HashRequest(f.root, height, index, length, levels - 1)
                self.chunks[f.root, index] = _Chunk(
                    request, pieces.start + index, min(length, len(pieces) - index),
                    height + levels)

    @property
    def wanted(self) -> bool:
        return bool(self.chunks)

    def in_flight(self, address: Address) -> int:
        return sum(1 for c in self.chunks.values() if c.asked == address)

    def pick(self, address: Address, holds: int, now: float) -> list[w.HashRequest]:
        """Chunks to ask of ``address`` (holding the pieces ``holds``) now, marked asked."""
        room = limits.BT_HASH_REQUESTS - self.in_flight(address)
        picked = []
        for chunk in self.chunks.values():
            if room <= 0:
                break
            refused = chunk.refused.get(address)
            if chunk.asked is None and address not in chunk.liars and \
                    (refused is None or now - refused >= limits.PEER_RETRY_DELAY) and \
                    holds >> chunk.first & ((1 << chunk.count) - 1):
                chunk.asked = address
                picked.append(chunk.request)
                room -= 1
        return picked

    def _asked_of(self, address: Address,
                  event: w.Hashes | w.HashReject) -> _Chunk | None:
        chunk = self.chunks.get((event.pieces_root, event.index))
        if chunk is None or chunk.asked != address or \
                _fields(chunk.request) != _fields(event):
            return None
        return chunk

    def answered(self, address: Address, event: w.Hashes) -> bool | None:
        """A hashes message from ``address``: True if it proved its chunk (kept), False if
        it did not (the chunk goes to another peer), None if it answers nothing we asked
        of that peer (late, or never asked: ignored)."""
        chunk = self._asked_of(address, event)
        if chunk is None:
            return None
        chunk.asked = None
        length = chunk.request.length
        data = event.hashes
        expected = length + merkle.uncle_count(length, chunk.request.proof_layers)
        hashes = [data[at:at + HASH] for at in range(0, len(data), HASH)]
        if len(data) != expected * HASH or not merkle.verify_proof(
                event.pieces_root, chunk.tree_height, event.base_layer, event.index,
                hashes[:length], hashes[length:]):
            chunk.liars.add(address)
            return False
        del self.chunks[event.pieces_root, event.index]
        parts = self.parts[event.pieces_root]
        parts[event.index] = b"".join(hashes[:chunk.count])
        if not any(root == event.pieces_root for root, _ in self.chunks):
            self.layers[event.pieces_root] = b"".join(parts[i] for i in sorted(parts))
            del self.parts[event.pieces_root]
        return True

    def rejected(self, address: Address, event: w.HashReject, now: float) -> None:
        """``address`` refused a chunk: another peer is asked first."""
        chunk = self._asked_of(address, event)
        if chunk is not None:
            chunk.asked = None
            chunk.refused[address] = now

    def dropped(self, address: Address) -> None:
        """``address``'s link ended: the chunks it was asked go to others."""
        for chunk in self.chunks.values():
            if chunk.asked == address:
                chunk.asked = None
