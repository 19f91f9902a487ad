"""The UDP tracker protocol (BEP 15), both sides, over datagrams as bytes.

Strategy: every message is one datagram of fixed-width big-endian fields, so each side
is a pair of functions per message: ``parse_udp_request`` gives the server a
``UdpConnect``, ``UdpAnnounce`` or ``UdpScrape`` (or raises ``RemoteProtocolError``: the
server drops the datagram, or answers an error packet when it can name the transaction);
the client encodes its requests and reads answers with ``parse_udp_answer``, which checks
the action and the transaction id it chose (a datagram for another exchange, or forged,
is refused, not trusted). The announce carries the same ``AnnounceRequest`` as an HTTP
query (``bt_tracker``); bytes after the 98 of an announce (BEP 41 URL options) are
ignored, as opentracker does.

An announce answer lists peers of the family the request came in by: 6-byte entries to
an IPv4 source, 18-byte ones to an IPv6 source (BEP 15, "IPv6"), so the client reads
them by the family of the tracker's address.

Connection ids (BEP 15: they stop a forged source address from announcing) are a keyed
hash of the source address and a time slot (``udp_connection_id``), as opentracker does
with its key of the hour: the server keeps no table a flood of connects could grow, and
an id is valid only from the address it was given to.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import RemoteProtocolError
from .bt_tracker import (
    HASH_SIZE,
    AnnounceAnswer,
    AnnounceEvent,
    AnnounceRequest,
    AnnounceResult,
    ScrapeStats,
    TrackerFailure,
    pack_peers,
    unpack_peers,
)

__all__ = ["PROTOCOL_ID", "UdpAction", "UdpAnnounce", "UdpConnect", "UdpScrape",
           "encode_udp_announce", "encode_udp_announce_answer", "encode_udp_connect",
           "encode_udp_connect_answer", "encode_udp_error", "encode_udp_scrape",
           "encode_udp_scrape_answer", "parse_udp_answer", "parse_udp_request",
           "udp_connection_id", "udp_transaction_id"]

PROTOCOL_ID = 0x41727101980  # the magic a connect request opens with
_HEAD = struct.Struct(">qii")  # connection id (or the magic), action, transaction id
_ANSWER = struct.Struct(">ii")  # action, transaction id
_ANNOUNCE = struct.Struct(">20s20sqqqiIIiH")  # after the head: 98 bytes in all
_ANNOUNCE_ANSWER = struct.Struct(">iii")  # interval, leechers, seeders
_SCRAPE_ENTRY = struct.Struct(">iii")  # seeders, completed, leechers
_INT32_MAX = 2**31 - 1


class UdpAction:
    CONNECT = 0
    ANNOUNCE = 1
    SCRAPE = 2
    ERROR = 3


@dataclass(frozen=True, slots=True)
class UdpConnect:
    transaction_id: int


@dataclass(frozen=True, slots=True)
class UdpAnnounce:
    connection_id: int
    transaction_id: int
    request: AnnounceRequest


@dataclass(frozen=True, slots=True)
class UdpScrape:
    connection_id: int
    transaction_id: int
    hashes: tuple[bytes, ...]


def udp_connection_id(key: bytes, address: str, slot: int) -> int:
    """The connection id given to ``address`` in time ``slot``: 64 bits of a hash keyed
    with the server's secret ``key`` (BLAKE2b, up to 64 bytes of key)."""
    digest = hashlib.blake2b(f"{address}|{slot}".encode(), key=key, digest_size=8).digest()
    return int.from_bytes(digest, signed=True)


def udp_transaction_id(data: bytes) -> int | None:
    """The transaction id of a request datagram, if it is long enough to hold one."""
    return _HEAD.unpack_from(data)[2] if len(data) >= _HEAD.size else None


# ------------------------------------------------------------------ server side
def parse_udp_request(data: bytes, max_hashes: int) -> UdpConnect | UdpAnnounce | UdpScrape:
    """One request datagram.

    Raises:
        RemoteProtocolError: too short, an unknown action, a connect without the magic,
            a bad field, or a scrape of none or more than ``max_hashes`` hashes.
    """
    if len(data) < _HEAD.size:
        raise RemoteProtocolError("datagram shorter than a request head")
    connection, action, transaction = _HEAD.unpack_from(data)
    if action == UdpAction.CONNECT:
        if connection != PROTOCOL_ID:
            raise RemoteProtocolError("connect without the protocol id")
        return UdpConnect(transaction)
    if action == UdpAction.ANNOUNCE:
        return UdpAnnounce(connection, transaction, _announce(data))
    if action == UdpAction.SCRAPE:
        return UdpScrape(connection, transaction, _scrape(data, max_hashes))
    raise RemoteProtocolError("unknown action")


def _announce(data: bytes) -> AnnounceRequest:
    if len(data) < _HEAD.size + _ANNOUNCE.size:
        raise RemoteProtocolError("announce shorter than 98 bytes")
    (info_hash, peer_id, downloaded, left, uploaded, event, ip, key, numwant,
     port) = _ANNOUNCE.unpack_from(data, _HEAD.size)
    if not 0 <= event <= 3:
        raise RemoteProtocolError("unknown event")
    if min(downloaded, left, uploaded) < 0:
        raise RemoteProtocolError("negative byte count")
    return AnnounceRequest(
        info_hash=info_hash, peer_id=peer_id, port=port, uploaded=uploaded,
        downloaded=downloaded, left=left, event=AnnounceEvent(event),
        numwant=None if numwant < 0 else numwant, compact=True,
        ip=str(ipaddress.IPv4Address(ip)) if ip else "", key=key.to_bytes(4))


def _scrape(data: bytes, max_hashes: int) -> tuple[bytes, ...]:
    body = data[_HEAD.size:]
    if not body or len(body) % HASH_SIZE:
        raise RemoteProtocolError("scrape hashes are not a whole number of 20 bytes")
    if len(body) // HASH_SIZE > max_hashes:
        raise RemoteProtocolError(f"a scrape names at most {max_hashes} hashes")
    return tuple(body[i:i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE))


def encode_udp_connect_answer(transaction_id: int, connection_id: int) -> bytes:
    return _ANSWER.pack(UdpAction.CONNECT, transaction_id) + struct.pack(">q", connection_id)


def encode_udp_announce_answer(transaction_id: int, answer: AnnounceAnswer, *,
                               ipv6: bool) -> bytes:
    """Action, transaction, interval, leechers, seeders, then the compact peers of the
    requester's family (the others are left out: the client could not read them)."""
    peers = [p for p in answer.peers if (":" in p.host) == ipv6]
    return (_ANSWER.pack(UdpAction.ANNOUNCE, transaction_id)
            + _ANNOUNCE_ANSWER.pack(_clip(answer.interval), _clip(answer.incomplete),
                                    _clip(answer.complete))
            + pack_peers(peers, ipv6=ipv6))


def encode_udp_scrape_answer(transaction_id: int, stats: Iterable[ScrapeStats]) -> bytes:
    return _ANSWER.pack(UdpAction.SCRAPE, transaction_id) + b"".join(
        _SCRAPE_ENTRY.pack(_clip(s.complete), _clip(s.downloaded), _clip(s.incomplete))
        for s in stats)


def encode_udp_error(transaction_id: int, message: str) -> bytes:
    return _ANSWER.pack(UdpAction.ERROR, transaction_id) + message.encode("utf-8", "replace")


def _clip(count: int) -> int:
    return min(count, _INT32_MAX)


# ------------------------------------------------------------------ client side
def encode_udp_connect(transaction_id: int) -> bytes:
    return _HEAD.pack(PROTOCOL_ID, UdpAction.CONNECT, transaction_id)


def encode_udp_announce(connection_id: int, transaction_id: int,
                        request: AnnounceRequest) -> bytes:
    """A 98-byte announce; ``numwant`` None is sent as -1 (the tracker's default)."""
    return _HEAD.pack(connection_id, UdpAction.ANNOUNCE, transaction_id) + _ANNOUNCE.pack(
        request.info_hash, request.peer_id, request.downloaded,
        request.left if request.left is not None else 0, request.uploaded,
        request.event, 0, int.from_bytes(request.key[:4].rjust(4, b"\0")),
        -1 if request.numwant is None else min(request.numwant, _INT32_MAX), request.port)


def encode_udp_scrape(connection_id: int, transaction_id: int,
                      hashes: Sequence[bytes]) -> bytes:
    return _HEAD.pack(connection_id, UdpAction.SCRAPE, transaction_id) + b"".join(hashes)


def parse_udp_answer(data: bytes, transaction_id: int, action: int, *,
                     ipv6: bool = False) -> int | AnnounceResult | list[ScrapeStats]:
    """The answer to our request ``action`` with ``transaction_id``: a connection id
    (connect), an ``AnnounceResult`` or the scrape's stats in the order asked.

    Raises:
        TrackerFailure: an error packet for this transaction.
        RemoteProtocolError: too short, another transaction or action, garbled peers.
    """
    if len(data) < _ANSWER.size:
        raise RemoteProtocolError("answer shorter than 8 bytes")
    got, transaction = _ANSWER.unpack_from(data)
    if transaction != transaction_id:
        raise RemoteProtocolError("answer to another transaction")
    body = data[_ANSWER.size:]
    if got == UdpAction.ERROR:
        raise TrackerFailure(f"tracker refused: {body.decode('utf-8', 'replace')}")
    if got != action:
        raise RemoteProtocolError("answer to another action")
    if action == UdpAction.CONNECT:
        if len(body) < 8:
            raise RemoteProtocolError("connect answer shorter than 16 bytes")
        return int.from_bytes(body[:8], signed=True)
    if action == UdpAction.ANNOUNCE:
        if len(body) < _ANNOUNCE_ANSWER.size:
            raise RemoteProtocolError("announce answer shorter than 20 bytes")
        interval, leechers, seeders = _ANNOUNCE_ANSWER.unpack_from(body)
        if min(interval, leechers, seeders) < 0:
            raise RemoteProtocolError("negative interval or count")
        peers = unpack_peers(body[_ANNOUNCE_ANSWER.size:], ipv6=ipv6)
        return AnnounceResult(interval, peers, complete=seeders, incomplete=leechers)
    if len(body) % _SCRAPE_ENTRY.size:
        raise RemoteProtocolError("scrape answer is not a whole number of entries")
    return [ScrapeStats(complete=s, downloaded=d, incomplete=i)
            for s, d, i in _SCRAPE_ENTRY.iter_unpack(body)]
