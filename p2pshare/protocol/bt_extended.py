"""BEP 10 extension messages: the extension handshake, BEP 9 ut_metadata, BEP 11 ut_pex.

Strategy: an extension message is ``<length><20><extended id><bencoded dict>[tail]``.
The payloads are parsed with the strict bencode reader, then read tolerantly, as BEP 10
asks: a key of an unexpected type is ignored as if absent (clients add keys of their own),
but a payload that is not bencoding, or a ut_metadata/ut_pex field of the wrong shape, is
the peer's error. BEP 9's data message is the only one with bytes after its dictionary;
``decode_prefix`` finds where they start. Budgets: a metadata piece is at most 16 KiB and
the whole metadata at most ``MAX_BENCODE_SIZE``; a ut_pex message is read up to
``MAX_PEX_PEERS`` added and dropped peers (the rest is ignored, as the convention lets a
receiver do) and ours are refused past it.
"""

from __future__ import annotations

import ipaddress
import struct

from .. import limits
from ..errors import LocalProtocolError, RemoteProtocolError
from . import bencode
from .bt_events import (
    ExtendedHandshake,
    MetadataData,
    MetadataReject,
    MetadataRequest,
    Pex,
    PexPeer,
)

UT_METADATA = "ut_metadata"
UT_PEX = "ut_pex"
_REQUEST, _DATA, _REJECT = 0, 1, 2
_MAX_REQQ = 100_000  # a larger reqq from a peer is read as this: our queue is bounded anyway
_ADDRESS_LENGTHS = {b"yourip": (4, 16), b"ipv4": (4,), b"ipv6": (16,)}


# ----------------------------------------------------------------------------- handshake
def encode_ext_handshake(event: ExtendedHandshake) -> bytes:
    """The bencoded dictionary of an extension handshake."""
    out: dict[bytes, bencode.Value] = {
        b"m": {name.encode(): number for name, number in event.m.items()}}
    for key in ("p", "reqq", "metadata_size"):
        value = getattr(event, key)
        if value is not None:
            out[key.encode()] = value
    for key in ("yourip", "ipv4", "ipv6"):
        value = getattr(event, key)
        if value is not None:
            out[key.encode()] = value
    if event.v is not None:
        out[b"v"] = event.v.encode()
    return bencode.encode(out)


def decode_ext_handshake(payload: bytes) -> ExtendedHandshake:
    """The extension handshake in ``payload``; keys of the wrong type are ignored.

    Raises:
        RemoteProtocolError: not a bencoded dictionary.
    """
    d = _dict(payload)
    m = d.get(b"m")
    ids = {}
    if isinstance(m, dict):
        ids = {k.decode("utf-8", "replace"): v for k, v in m.items()
               if isinstance(v, int) and 0 <= v <= 255}
    v = d.get(b"v")
    return ExtendedHandshake(
        m=ids,
        v=v.decode("utf-8", "replace") if isinstance(v, bytes) else None,
        p=_int(d, b"p", 1, limits.MAX_PORT),
        reqq=_int(d, b"reqq", 1, _MAX_REQQ),
        metadata_size=_int(d, b"metadata_size", 1, limits.MAX_BENCODE_SIZE),
        yourip=_address(d, b"yourip"), ipv4=_address(d, b"ipv4"), ipv6=_address(d, b"ipv6"),
    )


def _dict(payload: bytes) -> dict[bytes, bencode.Value]:
    d = bencode.decode(payload, max_size=limits.MAX_BT_EXTENDED)
    if not isinstance(d, dict):
        raise RemoteProtocolError("extension message is not a bencoded dictionary")
    return d


def _int(d: dict[bytes, bencode.Value], key: bytes, low: int, high: int) -> int | None:
    value = d.get(key)
    return value if isinstance(value, int) and low <= value <= high else None


def _address(d: dict[bytes, bencode.Value], key: bytes) -> bytes | None:
    value = d.get(key)
    ok = isinstance(value, bytes) and len(value) in _ADDRESS_LENGTHS[key]
    return value if ok else None  # type: ignore[return-value]


# --------------------------------------------------------------------------- ut_metadata
def encode_metadata(event: MetadataRequest | MetadataData | MetadataReject) -> bytes:
    """The payload of a ut_metadata message (dictionary, then the piece for data)."""
    if isinstance(event, MetadataData):
        head: dict[bytes, bencode.Value] = {
            b"msg_type": _DATA, b"piece": event.piece, b"total_size": event.total_size}
        return bencode.encode(head) + event.data
    msg_type = _REQUEST if isinstance(event, MetadataRequest) else _REJECT
    return bencode.encode({b"msg_type": msg_type, b"piece": event.piece})


def decode_metadata(payload: bytes) -> MetadataRequest | MetadataData | MetadataReject | None:
    """The ut_metadata message in ``payload``; None for a ``msg_type`` BEP 9 does not define
    (to be ignored, says BEP 9).

    Raises:
        RemoteProtocolError: not bencoding, no ``piece``, or a data message whose piece
            does not fit its ``total_size`` (BEP 9: 16 KiB pieces, the last one shorter).
    """
    head, end = bencode.decode_prefix(payload, max_size=limits.MAX_BT_EXTENDED)
    if not isinstance(head, dict):
        raise RemoteProtocolError("ut_metadata message is not a dictionary")
    msg_type, piece = head.get(b"msg_type"), head.get(b"piece")
    if not isinstance(piece, int) or piece < 0 or not isinstance(msg_type, int):
        raise RemoteProtocolError("ut_metadata message without msg_type or piece")
    if msg_type == _DATA:
        return _data(piece, head.get(b"total_size"), payload[end:])
    if end != len(payload):
        raise RemoteProtocolError("bytes after a ut_metadata request or reject")
    if msg_type == _REQUEST:
        return MetadataRequest(piece)
    return MetadataReject(piece) if msg_type == _REJECT else None


def _data(piece: int, total: bencode.Value | None, data: bytes) -> MetadataData:
    if not isinstance(total, int) or not 0 < total <= limits.MAX_BENCODE_SIZE:
        raise RemoteProtocolError(f"ut_metadata total_size {total!r} out of range")
    start = piece * limits.BT_METADATA_PIECE
    if start >= total or len(data) != min(limits.BT_METADATA_PIECE, total - start):
        raise RemoteProtocolError(f"ut_metadata piece {piece} of {len(data)} bytes does not "
                                  f"fit a total size of {total}")
    return MetadataData(piece, total, data)


# -------------------------------------------------------------------------------- ut_pex
_COMPACT = {4: struct.Struct(">4sH"), 16: struct.Struct(">16sH")}


def encode_pex(event: Pex) -> bytes:
    """The bencoded dictionary of a ut_pex message (empty lists left out).

    Raises:
        LocalProtocolError: over ``MAX_PEX_PEERS`` added or dropped, flags not one per
            added peer, or a host that is not an address of its family.
    """
    if (len(event.added) + len(event.added6) > limits.MAX_PEX_PEERS
            or len(event.dropped) + len(event.dropped6) > limits.MAX_PEX_PEERS):
        raise LocalProtocolError(f"over {limits.MAX_PEX_PEERS} added or dropped peers")
    out: dict[bytes, bencode.Value] = {}
    for key, peers, flags, size in (
            (b"added", event.added, event.added_f, 4), (b"added6", event.added6,
                                                        event.added6_f, 16)):
        if flags and len(flags) != len(peers):
            raise LocalProtocolError(f"{key.decode()}.f needs one flag byte per peer")
        _put(out, key, _compact(peers, size))
        _put(out, key + b".f", flags)
    _put(out, b"dropped", _compact(event.dropped, 4))
    _put(out, b"dropped6", _compact(event.dropped6, 16))
    return bencode.encode(out)


def _put(out: dict[bytes, bencode.Value], key: bytes, value: bytes) -> None:
    if value:
        out[key] = value


def _compact(peers: tuple[PexPeer, ...], size: int) -> bytes:
    try:
        return b"".join(_COMPACT[size].pack(_packed(host, size), port) for host, port in peers)
    except (ValueError, struct.error) as exc:
        raise LocalProtocolError(f"not a compact IPv{4 if size == 4 else 6} peer: {exc}") \
            from None


def _packed(host: str, size: int) -> bytes:
    packed = ipaddress.ip_address(host).packed
    if len(packed) != size:
        raise ValueError(host)
    return packed


def decode_pex(payload: bytes) -> Pex:
    """The ut_pex message in ``payload``: at most ``MAX_PEX_PEERS`` added and dropped.

    Raises:
        RemoteProtocolError: not a dictionary, or a compact list of a length that is not
            a whole number of peers.
    """
    d = _dict(payload)
    added, added6 = _peers(d, b"added", 4), _peers(d, b"added6", 16)
    added6 = added6[:limits.MAX_PEX_PEERS - len(added)]
    dropped, dropped6 = _peers(d, b"dropped", 4), _peers(d, b"dropped6", 16)
    dropped6 = dropped6[:limits.MAX_PEX_PEERS - len(dropped)]
    return Pex(added, _flags(d, b"added.f", added), dropped,
               added6, _flags(d, b"added6.f", added6), dropped6)


def _peers(d: dict[bytes, bencode.Value], key: bytes, size: int) -> tuple[PexPeer, ...]:
    raw = d.get(key, b"")
    step = size + 2
    if not isinstance(raw, bytes) or len(raw) % step:
        raise RemoteProtocolError(f"ut_pex {key.decode()} is not a compact peer list")
    raw = raw[:step * limits.MAX_PEX_PEERS]
    fmt = _COMPACT[size]
    return tuple((str(ipaddress.ip_address(host)), port)
                 for host, port in fmt.iter_unpack(raw))


def _flags(d: dict[bytes, bencode.Value], key: bytes, peers: tuple[PexPeer, ...]) -> bytes:
    """One flag byte per peer kept, or none when the sender's flags do not match."""
    flags = d.get(key)
    if not isinstance(flags, bytes) or len(flags) < len(peers):
        return b""
    return flags[:len(peers)]
