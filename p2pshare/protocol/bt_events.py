"""The BitTorrent peer wire's messages as events (BEP 3, 6, 9, 10, 11, 52).

Strategy: one frozen dataclass per message, named after it, as h11 names its events; the
codec (``bt_wire.BtConnection``) turns bytes into these and these into bytes. Three names
exist already in p2pshare with another meaning (``swarm.Have``, the framing codec's
``Request``, P2P-DI's ``KeepAlive``), so those three carry a ``Bt`` prefix. Fields hold
wire values as they are (indices, offsets, raw 20/32-byte hashes, compact peers turned
into ``(host, port)``); which values are legal is the codec's business, not the event's.

Two events exist for the receive side's zero-copy path and the send side's sendfile path:
``PieceHeader`` (a piece message without its block) and ``PieceEnd`` (the block has been
delivered into the caller's buffer), see ``BtConnection.receive_block``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Reserved bits of the handshake (byte index, mask): BEP 6 fast extension, BEP 10
# extension protocol, BEP 52 upgrade to v2 for hybrid torrents.
FAST_BIT = (7, 0x04)
EXTENDED_BIT = (5, 0x10)
V2_BIT = (7, 0x10)


def reserved_bits(*, fast: bool = True, extended: bool = True, v2: bool = False) -> bytes:
    """The 8 reserved handshake bytes announcing the given extensions."""
    out = bytearray(8)
    for on, (byte, mask) in ((fast, FAST_BIT), (extended, EXTENDED_BIT), (v2, V2_BIT)):
        if on:
            out[byte] |= mask
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Handshake:
    """BEP 3 handshake. ``info_hash`` is the v1 info-hash, or a v2 one cut to 20 bytes."""

    info_hash: bytes
    peer_id: bytes
    reserved: bytes = field(default=reserved_bits())

    def _bit(self, where: tuple[int, int]) -> bool:
        return bool(self.reserved[where[0]] & where[1])

    @property
    def fast(self) -> bool:
        return self._bit(FAST_BIT)

    @property
    def extended(self) -> bool:
        return self._bit(EXTENDED_BIT)

    @property
    def v2(self) -> bool:
        return self._bit(V2_BIT)


@dataclass(frozen=True, slots=True)
class _PieceRef:
    index: int


@dataclass(frozen=True, slots=True)
class _BlockRef:
    """A block: ``length`` bytes at ``begin`` in piece ``index``."""

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class _HashRange:
    """BEP 52: ``length`` hashes of layer ``base_layer`` (0: 16 KiB blocks) from ``index``,
    with ``proof_layers`` layers of uncle hashes, of the file whose root is ``pieces_root``."""

    pieces_root: bytes
    base_layer: int
    index: int
    length: int
    proof_layers: int


@dataclass(frozen=True, slots=True)
class BtKeepAlive:
    """A zero-length message."""


@dataclass(frozen=True, slots=True)
class Choke:
    pass


@dataclass(frozen=True, slots=True)
class Unchoke:
    pass


@dataclass(frozen=True, slots=True)
class Interested:
    pass


@dataclass(frozen=True, slots=True)
class NotInterested:
    pass


@dataclass(frozen=True, slots=True)
class BtHave(_PieceRef):
    pass


@dataclass(frozen=True, slots=True)
class Bitfield:
    """Piece i is bit 7 - i % 8 of byte i // 8 (high bit first); spare bits are zero."""

    bits: bytes


@dataclass(frozen=True, slots=True)
class BtRequest(_BlockRef):
    pass


@dataclass(frozen=True, slots=True)
class Piece:
    index: int
    begin: int
    block: bytes


@dataclass(frozen=True, slots=True)
class PieceHeader(_BlockRef):
    """A piece message's head; ``length`` block bytes follow it on the wire."""


@dataclass(frozen=True, slots=True)
class PieceEnd(_BlockRef):
    """The block announced by the last ``PieceHeader`` is all in the caller's buffer."""


@dataclass(frozen=True, slots=True)
class Cancel(_BlockRef):
    pass


@dataclass(frozen=True, slots=True)
class Port:
    """BEP 5: the sender's DHT port."""

    port: int


@dataclass(frozen=True, slots=True)
class Suggest(_PieceRef):
    pass


@dataclass(frozen=True, slots=True)
class HaveAll:
    pass


@dataclass(frozen=True, slots=True)
class HaveNone:
    pass


@dataclass(frozen=True, slots=True)
class RejectRequest(_BlockRef):
    pass


@dataclass(frozen=True, slots=True)
class AllowedFast(_PieceRef):
    pass


@dataclass(frozen=True, slots=True)
class HashRequest(_HashRange):
    pass


@dataclass(frozen=True, slots=True)
class Hashes(_HashRange):
    """BEP 52: the answer to a ``HashRequest``: the hashes, then the uncle hashes (32 each)."""

    hashes: bytes


@dataclass(frozen=True, slots=True)
class HashReject(_HashRange):
    pass


@dataclass(frozen=True, slots=True)
class ExtendedHandshake:
    """BEP 10 handshake dictionary. ``m`` maps extension names to the ids the SENDER wants
    to receive them under (0: disabled). ``yourip``/``ipv4``/``ipv6`` are packed addresses."""

    m: dict[str, int] = field(default_factory=dict)
    v: str | None = None
    p: int | None = None
    reqq: int | None = None
    metadata_size: int | None = None
    yourip: bytes | None = None
    ipv4: bytes | None = None
    ipv6: bytes | None = None


@dataclass(frozen=True, slots=True)
class MetadataRequest:
    """BEP 9 ``msg_type`` 0: metadata piece ``piece`` (16 KiB each), please."""

    piece: int


@dataclass(frozen=True, slots=True)
class MetadataData:
    """BEP 9 ``msg_type`` 1: metadata piece ``piece`` of a ``total_size``-byte info dict."""

    piece: int
    total_size: int
    data: bytes


@dataclass(frozen=True, slots=True)
class MetadataReject:
    """BEP 9 ``msg_type`` 2."""

    piece: int


PexPeer = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Pex:
    """BEP 11 ``ut_pex``: peers connected and dropped since the last one. ``added_f`` and
    ``added6_f`` hold one flag byte per added peer, or are empty."""

    added: tuple[PexPeer, ...] = ()
    added_f: bytes = b""
    dropped: tuple[PexPeer, ...] = ()
    added6: tuple[PexPeer, ...] = ()
    added6_f: bytes = b""
    dropped6: tuple[PexPeer, ...] = ()


BtEvent = (
    Handshake | BtKeepAlive | Choke | Unchoke | Interested | NotInterested | BtHave | Bitfield
    | BtRequest | Piece | PieceHeader | PieceEnd | Cancel | Port | Suggest | HaveAll
    | HaveNone | RejectRequest | AllowedFast | HashRequest | Hashes | HashReject
    | ExtendedHandshake | MetadataRequest | MetadataData | MetadataReject | Pex
)
ExtensionEvent = MetadataRequest | MetadataData | MetadataReject | Pex
