"""Bytes of the peer wire's fixed-layout messages, both ways (BEP 3, BEP 6, BEP 52).

Strategy: every message but the handshake is ``<length: 4><id: 1><payload>``, big-endian;
each id has one payload layout (a ``struct`` format) or a variable tail (bitfield, piece
block, hashes). ``encode_message`` writes one event; ``decode_message`` reads one message
whose id and payload the connection has already cut out and bounded, and checks only the
layout: the exact payload length for fixed layouts. Whether the message is legal now (state, piece
range, budgets) is ``bt_wire``'s business. Extension messages (id 20) are in
``bt_extended``.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import Any

from ..errors import LocalProtocolError, RemoteProtocolError
from . import bt_events as ev

PROTOCOL = b"\x13BitTorrent protocol"
HANDSHAKE_LENGTH = 68
HEAD = struct.Struct(">IB")  # length (counting the id), id
BLOCK_HEAD = struct.Struct(">IBII")  # a piece message up to its block: 13 bytes
_HASH = struct.Struct(">32sIIII")  # BEP 52: root, base layer, index, length, proof layers

# Message ids (BEP 3, BEP 5's port, BEP 6, BEP 10, BEP 52).
CHOKE, UNCHOKE, INTERESTED, NOT_INTERESTED, HAVE, BITFIELD, REQUEST, PIECE, CANCEL, PORT = range(10)
SUGGEST, HAVE_ALL, HAVE_NONE, REJECT, ALLOWED_FAST = range(13, 18)
EXTENDED = 20
HASH_REQUEST, HASHES, HASH_REJECT = 21, 22, 23
FAST_IDS = frozenset({SUGGEST, HAVE_ALL, HAVE_NONE, REJECT, ALLOWED_FAST})

# id -> (event type, struct of the whole payload or None for a variable one)
_EMPTY = struct.Struct("")
_INDEX = struct.Struct(">I")
_BLOCK = struct.Struct(">III")
_LAYOUT: dict[int, tuple[type[Any], struct.Struct]] = {
    CHOKE: (ev.Choke, _EMPTY),
    UNCHOKE: (ev.Unchoke, _EMPTY),
    INTERESTED: (ev.Interested, _EMPTY),
    NOT_INTERESTED: (ev.NotInterested, _EMPTY),
    HAVE: (ev.BtHave, _INDEX),
    REQUEST: (ev.BtRequest, _BLOCK),
    CANCEL: (ev.Cancel, _BLOCK),
    PORT: (ev.Port, struct.Struct(">H")),
    SUGGEST: (ev.Suggest, _INDEX),
    HAVE_ALL: (ev.HaveAll, _EMPTY),
    HAVE_NONE: (ev.HaveNone, _EMPTY),
    REJECT: (ev.RejectRequest, _BLOCK),
    ALLOWED_FAST: (ev.AllowedFast, _INDEX),
    HASH_REQUEST: (ev.HashRequest, _HASH),
    HASH_REJECT: (ev.HashReject, _HASH),
}
_ID_OF: dict[type[Any], int] = {kind: msg_id for msg_id, (kind, _) in _LAYOUT.items()}


def encode_handshake(event: ev.Handshake) -> bytes:
    """The 68 handshake bytes.

    Raises:
        LocalProtocolError: reserved, info-hash or peer id of the wrong length.
    """
    if (len(event.reserved), len(event.info_hash), len(event.peer_id)) != (8, 20, 20):
        raise LocalProtocolError("a handshake needs 8 reserved bytes, a 20-byte info-hash "
                                 "and a 20-byte peer id")
    return PROTOCOL + event.reserved + event.info_hash + event.peer_id


def decode_handshake(data: bytes) -> ev.Handshake:
    """The handshake in ``data`` (exactly 68 bytes).

    Raises:
        RemoteProtocolError: not BitTorrent's protocol string.
    """
    if data[:20] != PROTOCOL:
        raise RemoteProtocolError("not a BitTorrent handshake (protocol string)")
    return ev.Handshake(info_hash=data[28:48], peer_id=data[48:68], reserved=data[20:28])


def frame(msg_id: int, payload: bytes = b"") -> bytes:
    return HEAD.pack(len(payload) + 1, msg_id) + payload


def piece_header(index: int, begin: int, length: int) -> bytes:
    """The 13 bytes before a block of ``length`` bytes: send the block right after them."""
    return BLOCK_HEAD.pack(length + 9, PIECE, index, begin)


def encode_message(event: ev.BtEvent) -> bytes:
    """The bytes of one message (not the handshake, not an extension message).

    Raises:
        LocalProtocolError: a value that does not fit its field.
    """
    try:
        return _encode(event)
    except struct.error as exc:
        raise LocalProtocolError(f"{type(event).__name__}: {exc}") from None


def _encode(event: ev.BtEvent) -> bytes:
    encoder = _ENCODERS.get(type(event))
    if encoder is None:
        raise LocalProtocolError(f"{type(event).__name__} is not a fixed-layout message")
    return encoder(event)


def _hash_fields(event: ev.HashRequest | ev.HashReject | ev.Hashes) -> bytes:
    if len(event.pieces_root) != 32:
        raise LocalProtocolError("a pieces root is 32 bytes")
    return _HASH.pack(event.pieces_root, event.base_layer, event.index, event.length,
                      event.proof_layers)


def _fixed(msg_id: int, fmt: struct.Struct, kind: type[Any]) -> Callable[[Any], bytes]:
    """The encoder of a fixed-layout message: its fields packed in declaration order."""
    names = tuple(f.name for f in dataclasses.fields(kind))
    head = HEAD.pack(fmt.size + 1, msg_id)
    return lambda event: head + fmt.pack(*[getattr(event, name) for name in names])


_ENCODERS: dict[type[Any], Callable[[Any], bytes]] = {
    **{kind: _fixed(msg_id, fmt, kind) for msg_id, (kind, fmt) in _LAYOUT.items()},
    ev.BtKeepAlive: lambda _: b"\0\0\0\0",
    ev.Bitfield: lambda e: frame(BITFIELD, e.bits),
    ev.Piece: lambda e: piece_header(e.index, e.begin, len(e.block)) + e.block,
    ev.PieceHeader: lambda e: piece_header(e.index, e.begin, e.length),
    ev.Hashes: lambda e: frame(HASHES, _hash_fields(e) + e.hashes),
    ev.HashRequest: lambda e: frame(HASH_REQUEST, _hash_fields(e)),
    ev.HashReject: lambda e: frame(HASH_REJECT, _hash_fields(e)),
}


def decode_message(msg_id: int, payload: bytes) -> ev.BtEvent | None:
    """The event for one message of a known id (None: an id this module does not know).

    Raises:
        RemoteProtocolError: a payload of the wrong length for its id.
    """
    if msg_id == BITFIELD:
        return ev.Bitfield(payload)
    if msg_id == PIECE:
        index, begin = _BLOCK_AT.unpack_from(_at_least(payload, 8, "piece"))
        return ev.Piece(index, begin, payload[8:])
    if msg_id == HASHES:
        root, base, index, length, proofs = _HASH.unpack_from(
            _at_least(payload, _HASH.size, "hashes"))
        if (len(payload) - _HASH.size) % 32:
            raise RemoteProtocolError("hashes message with a partial hash")
        return ev.Hashes(root, base, index, length, proofs, payload[_HASH.size:])
    layout = _LAYOUT.get(msg_id)
    if layout is None:
        return None
    kind, fmt = layout
    if len(payload) != fmt.size:
        raise RemoteProtocolError(f"{kind.__name__} message of {len(payload)} bytes, "
                                  f"not {fmt.size}")
    return kind(*fmt.unpack(payload))  # type: ignore[no-any-return]


_BLOCK_AT = struct.Struct(">II")


def _at_least(payload: bytes, size: int, what: str) -> bytes:
    if len(payload) < size:
        raise RemoteProtocolError(f"{what} message shorter than its {size}-byte head")
    return payload

