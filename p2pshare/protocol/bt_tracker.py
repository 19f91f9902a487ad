"""The BitTorrent HTTP tracker protocol (BEP 3, 7, 23, 48), both sides, over bytes.

Strategy: an announce is a GET whose query carries raw bytes (``info_hash`` and
``peer_id`` are 20 arbitrary bytes, percent-encoded) and whose answer is one bencoded
dictionary; a scrape is the same with a ``files`` dictionary. Everything here is pure:
the HTTP server hands ``parse_announce`` the query already split into fields of raw byte
values, and the announce client hands ``parse_announce_answer`` the body. The same types
serve the UDP tracker (``bt_udp``): ``AnnounceRequest`` in, ``AnnounceAnswer`` out.

Strict where a value matters (hash and peer id exactly 20 bytes, integers in range, one
copy of each field: a query naming two hashes is ambiguous), tolerant where BEP 3
leaves room (``uploaded``/``downloaded`` may be missing, ``left`` missing means "not a
seed", unknown fields are ignored, BEP 21's ``event=paused`` is a plain announce). Every
refusal is a ``RemoteProtocolError`` whose message the tracker sends back as the
``failure reason``. Answers list IPv4 peers in ``peers`` (6 bytes each, BEP 23) and IPv6
peers in ``peers6`` (18 bytes each, BEP 7), or both in one list of dictionaries when the
client asked ``compact=0`` (BEP 3's original form, with ``peer id`` unless
``no_peer_id=1``). A BEP 52 (v2) torrent is announced under the first 20 bytes of its
SHA-256 info-hash (``tracker_hash``).
"""

from __future__ import annotations

import ipaddress
import struct
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from .. import limits
from ..errors import P2PError, RemoteProtocolError
from . import bencode
from ._grammar import content_length, get_header, parse_head, status_start

__all__ = ["AnnounceAnswer", "AnnounceEvent", "AnnounceRequest", "AnnounceResult",
           "ScrapeStats", "TrackerFailure", "TrackerPeer", "announce_query",
           "encode_announce_answer", "encode_failure", "encode_scrape_answer",
           "http_get", "pack_peers", "parse_announce", "parse_announce_answer",
           "parse_http_answer", "parse_scrape", "parse_scrape_answer", "scrape_query",
           "tracker_hash", "unpack_peers"]

HASH_SIZE = 20  # a v1 info-hash, or a v2 one truncated (BEP 52)
PEER_ID_SIZE = 20
_MAX_COUNTER = 2**63 - 1  # uploaded / downloaded / left: signed 64-bit, as BEP 15 sends
_MAX_DIGITS = 20


class AnnounceEvent(IntEnum):
    """The ``event`` of an announce, numbered as BEP 15 sends it."""

    NONE = 0
    COMPLETED = 1
    STARTED = 2
    STOPPED = 3

    @property
    def word(self) -> str:
        """The HTTP spelling: ``""``, ``completed``, ``started``, ``stopped``."""
        return "" if self is AnnounceEvent.NONE else self.name.lower()


_EVENTS = {"": AnnounceEvent.NONE, "paused": AnnounceEvent.NONE, "empty": AnnounceEvent.NONE,
           "completed": AnnounceEvent.COMPLETED, "started": AnnounceEvent.STARTED,
           "stopped": AnnounceEvent.STOPPED}


class TrackerFailure(P2PError):
    """A tracker refused an announce or scrape; the message is its ``failure reason``."""


@dataclass(frozen=True, slots=True)
class AnnounceRequest:
    """One announce, from an HTTP query or a UDP packet.

    ``left`` None: the client did not say (counted as a leech, as opentracker does);
    ``numwant`` None: the tracker's default. ``ip`` and ``key`` are what the client sent,
    kept for logs: the tracker lists a peer at the address its announce came from.
    """

    info_hash: bytes
    peer_id: bytes
    port: int
    uploaded: int = 0
    downloaded: int = 0
    left: int | None = None
    event: AnnounceEvent = AnnounceEvent.NONE
    numwant: int | None = None
    compact: bool = True
    no_peer_id: bool = False
    ip: str = ""
    key: bytes = b""


@dataclass(frozen=True, slots=True)
class TrackerPeer:
    """A peer in an announce answer: its address and (dictionary form) its peer id."""

    host: str
    port: int
    peer_id: bytes = b""


@dataclass(frozen=True, slots=True)
class AnnounceAnswer:
    """What a tracker answers an announce (``complete`` seeds, ``incomplete`` leeches,
    ``downloaded`` completions seen)."""

    interval: int
    min_interval: int
    complete: int
    incomplete: int
    downloaded: int
    peers: tuple[TrackerPeer, ...] = ()


@dataclass(frozen=True, slots=True)
class AnnounceResult:
    """What an announce client learns: when to come back and whom to try."""

    interval: int
    peers: list[tuple[str, int]]
    min_interval: int | None = None
    complete: int | None = None
    incomplete: int | None = None
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class ScrapeStats:
    """One torrent in a scrape answer (BEP 48)."""

    complete: int = 0
    downloaded: int = 0
    incomplete: int = 0


def tracker_hash(info_hash: bytes) -> bytes:
    """The 20 bytes a tracker knows a torrent by: a v1 hash, or a v2 (SHA-256) hash cut
    to its first 20 bytes (BEP 52)."""
    if len(info_hash) not in (20, 32):
        raise ValueError("an info-hash is 20 (v1) or 32 (v2) bytes")
    return info_hash[:HASH_SIZE]


# ------------------------------------------------------------------ server: queries
_Fields = Mapping[str, Sequence[bytes]]  # query fields: raw byte values


def parse_announce(query: _Fields) -> AnnounceRequest:
    """An announce's query fields (raw byte values) as an ``AnnounceRequest``.

    Raises:
        RemoteProtocolError: a field is missing, repeated or out of range; the message
            is the failure reason to send back.
    """
    numwant = _optional_int(query, "numwant", -(2**31), _MAX_COUNTER)
    left = _optional_int(query, "left", 0, _MAX_COUNTER)
    return AnnounceRequest(
        info_hash=_binary(query, "info_hash", HASH_SIZE),
        peer_id=_binary(query, "peer_id", PEER_ID_SIZE),
        port=_int(query, "port", 0, limits.MAX_PORT),  # 0: accepts no peers
        uploaded=_optional_int(query, "uploaded", 0, _MAX_COUNTER) or 0,
        downloaded=_optional_int(query, "downloaded", 0, _MAX_COUNTER) or 0,
        left=left,
        event=_event(query),
        numwant=None if numwant is None or numwant < 0 else numwant,
        compact=_flag(query, "compact", True),
        no_peer_id=_flag(query, "no_peer_id", False),
        ip=_text(query, "ip", limits.MAX_TRACKER_IP),
        key=_one(query, "key", b"")[: limits.MAX_TRACKER_KEY],
    )


def parse_scrape(query: _Fields) -> list[bytes]:
    """The info-hashes a scrape names (one or more ``info_hash`` fields, BEP 48).

    Raises:
        RemoteProtocolError: none, more than ``MAX_SCRAPE_HASHES``, or one not 20 bytes.
    """
    hashes = list(query.get("info_hash", ()))
    if not hashes:
        raise RemoteProtocolError("a scrape names at least one info_hash")
    if len(hashes) > limits.MAX_SCRAPE_HASHES:
        raise RemoteProtocolError(f"a scrape names at most {limits.MAX_SCRAPE_HASHES} hashes")
    if any(len(h) != HASH_SIZE for h in hashes):
        raise RemoteProtocolError("info_hash must be 20 bytes")
    return list(dict.fromkeys(hashes))


def _one(query: _Fields, name: str, default: bytes | None = None) -> bytes:
    values = query.get(name, ())
    if len(values) > 1:
        raise RemoteProtocolError(f"{name} given more than once")
    if values:
        return values[0]
    if default is None:
        raise RemoteProtocolError(f"missing {name}")
    return default


def _binary(query: _Fields, name: str, size: int) -> bytes:
    value = _one(query, name)
    if len(value) != size:
        raise RemoteProtocolError(f"{name} must be {size} bytes")
    return value


def _int(query: _Fields, name: str, low: int, high: int) -> int:
    value = _optional_int(query, name, low, high)
    if value is None:
        raise RemoteProtocolError(f"missing {name}")
    return value


def _optional_int(query: _Fields, name: str, low: int, high: int) -> int | None:
    raw = _one(query, name, b"")
    if not raw:
        return None
    digits = raw[1:] if raw[:1] == b"-" else raw
    if not (digits.isdigit() and len(digits) <= _MAX_DIGITS):
        raise RemoteProtocolError(f"{name} is not a number")
    value = int(raw)
    if not low <= value <= high:
        raise RemoteProtocolError(f"{name} is out of range")
    return value


def _flag(query: _Fields, name: str, default: bool) -> bool:
    raw = _one(query, name, b"")
    if raw not in (b"", b"0", b"1"):
        raise RemoteProtocolError(f"{name} must be 0 or 1")
    return default if not raw else raw == b"1"


def _event(query: _Fields) -> AnnounceEvent:
    event = _EVENTS.get(_text(query, "event", 16))
    if event is None:
        raise RemoteProtocolError("unknown event")
    return event


def _text(query: _Fields, name: str, limit: int) -> str:
    raw = _one(query, name, b"")
    if len(raw) > limit or not raw.isascii() or not raw.decode().isprintable():
        raise RemoteProtocolError(f"{name} is not short printable text")
    return raw.decode()


# ------------------------------------------------------------------ server: answers
def encode_announce_answer(answer: AnnounceAnswer, *, compact: bool = True,
                           no_peer_id: bool = False) -> bytes:
    """The bencoded answer: counts, intervals and peers (compact: ``peers`` and
    ``peers6``; else one list of dictionaries)."""
    out: dict[bytes, bencode.Value] = {
        b"complete": answer.complete, b"incomplete": answer.incomplete,
        b"downloaded": answer.downloaded, b"interval": answer.interval,
        b"min interval": answer.min_interval}
    if compact:
        v4 = [p for p in answer.peers if ":" not in p.host]
        v6 = [p for p in answer.peers if ":" in p.host]
        out[b"peers"] = pack_peers(v4, ipv6=False)
        if v6:
            out[b"peers6"] = pack_peers(v6, ipv6=True)
    else:
        out[b"peers"] = [_peer_dict(p, no_peer_id) for p in answer.peers]
    return bencode.encode(out)


def _peer_dict(peer: TrackerPeer, no_peer_id: bool) -> bencode.Value:
    entry: dict[bytes, bencode.Value] = {b"ip": peer.host.encode(), b"port": peer.port}
    if not no_peer_id:
        entry[b"peer id"] = peer.peer_id
    return entry


def encode_failure(reason: str) -> bytes:
    """A refusal: ``d14:failure reason...e`` (BEP 3)."""
    return bencode.encode({b"failure reason": reason.encode("utf-8", "replace")})


def encode_scrape_answer(files: Mapping[bytes, ScrapeStats]) -> bytes:
    """``d5:filesd<hash>d8:completei..e10:downloadedi..e10:incompletei..eeee`` (BEP 48)."""
    return bencode.encode({b"files": {h: {b"complete": s.complete, b"downloaded": s.downloaded,
                                          b"incomplete": s.incomplete}
                                      for h, s in files.items()}})


def pack_peers(peers: Iterable[TrackerPeer | tuple[str, int]], *, ipv6: bool) -> bytes:
    """Compact peers: 4 (or 16) address bytes and a 2-byte port each, big-endian."""
    pack = ipaddress.IPv6Address if ipv6 else ipaddress.IPv4Address
    out = bytearray()
    for peer in peers:
        host, port = (peer.host, peer.port) if isinstance(peer, TrackerPeer) else peer
        out += pack(host).packed + struct.pack(">H", port)
    return bytes(out)


def unpack_peers(data: bytes, *, ipv6: bool) -> list[tuple[str, int]]:
    """The inverse of ``pack_peers``.

    Raises:
        RemoteProtocolError: the length is not a whole number of entries.
    """
    size = 18 if ipv6 else 6
    if len(data) % size:
        raise RemoteProtocolError(f"compact peers are not a multiple of {size} bytes")
    make = ipaddress.IPv6Address if ipv6 else ipaddress.IPv4Address
    return [(str(make(data[i:i + size - 2])), int.from_bytes(data[i + size - 2:i + size]))
            for i in range(0, len(data), size)]


# ------------------------------------------------------------------ client side
def announce_query(request: AnnounceRequest) -> str:
    """The query string of an HTTP announce (without ``?``), raw bytes percent-encoded."""
    fields: list[tuple[str, bytes | str | int]] = [
        ("info_hash", request.info_hash), ("peer_id", request.peer_id),
        ("port", request.port), ("uploaded", request.uploaded),
        ("downloaded", request.downloaded)]
    if request.left is not None:
        fields.append(("left", request.left))
    if request.event is not AnnounceEvent.NONE:
        fields.append(("event", request.event.word))
    if request.numwant is not None:
        fields.append(("numwant", request.numwant))
    fields.append(("compact", int(request.compact)))
    if request.no_peer_id:
        fields.append(("no_peer_id", 1))
    if request.key:
        fields.append(("key", request.key))
    return _urlencode(fields)


def scrape_query(hashes: Iterable[bytes]) -> str:
    """The query string of a scrape naming ``hashes``."""
    return _urlencode(("info_hash", h) for h in hashes)


def _urlencode(fields: Iterable[tuple[str, bytes | str | int]]) -> str:
    def quote(value: bytes | str | int) -> str:
        raw = value if isinstance(value, bytes) else str(value).encode()
        return urllib.parse.quote_from_bytes(raw, safe="")
    return "&".join(f"{name}={quote(value)}" for name, value in fields)


def parse_announce_answer(body: bytes) -> AnnounceResult:
    """A tracker's bencoded announce answer, either form of peers.

    Raises:
        TrackerFailure: the answer is a ``failure reason``.
        RemoteProtocolError: it is not bencoded, or lacks or garbles a field.
    """
    answer = _answer_dict(body)
    interval = _count(answer, b"interval")
    if interval is None:
        raise RemoteProtocolError("tracker answer without an interval")
    peers = _peers(answer.get(b"peers", b""))
    six = answer.get(b"peers6", b"")
    if not isinstance(six, bytes):
        raise RemoteProtocolError("peers6 is not a string")
    peers += unpack_peers(six, ipv6=True)
    warning = answer.get(b"warning message")
    return AnnounceResult(
        interval=interval, peers=peers, min_interval=_count(answer, b"min interval"),
        complete=_count(answer, b"complete"), incomplete=_count(answer, b"incomplete"),
        warning=warning.decode("utf-8", "replace") if isinstance(warning, bytes) else None)


def parse_scrape_answer(body: bytes) -> dict[bytes, ScrapeStats]:
    """A scrape answer's ``files`` (BEP 48).

    Raises:
        TrackerFailure: the answer is a ``failure reason``.
        RemoteProtocolError: malformed.
    """
    files = _answer_dict(body).get(b"files")
    if not isinstance(files, dict):
        raise RemoteProtocolError("scrape answer without files")
    out = {}
    for info_hash, stats in files.items():
        if not isinstance(stats, dict) or len(info_hash) != HASH_SIZE:
            raise RemoteProtocolError("malformed scrape entry")
        out[info_hash] = ScrapeStats(*(_count(stats, key) or 0 for key in (
            b"complete", b"downloaded", b"incomplete")))
    return out


def _answer_dict(body: bytes) -> dict[bytes, bencode.Value]:
    answer = bencode.decode(body, ordered=False,  # nobody hashes it: take any key order
                            max_values=limits.MAX_TRACKER_ANSWER_VALUES)
    if not isinstance(answer, dict):
        raise RemoteProtocolError("tracker answer is not a dictionary")
    reason = answer.get(b"failure reason")
    if reason is not None:
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else "?"
        raise TrackerFailure(f"tracker refused: {text}")
    return answer


def _count(answer: Mapping[bytes, bencode.Value], key: bytes) -> int | None:
    value = answer.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or value < 0:
        raise RemoteProtocolError(f"{key.decode()} is not a count")
    return value


def _peers(value: bencode.Value) -> list[tuple[str, int]]:
    if isinstance(value, bytes):
        return unpack_peers(value, ipv6=False)
    if not isinstance(value, list):
        raise RemoteProtocolError("peers is neither a string nor a list")
    return [peer for peer in map(_dict_peer, value) if peer is not None]


def _dict_peer(entry: bencode.Value) -> tuple[str, int] | None:
    """A listed peer, or None for one we cannot use: BEP 3 lets ``ip`` be a DNS name (we
    look up no name a tracker gives), and a port 0 cannot be reached; the rest of the
    answer stays good."""
    if not isinstance(entry, dict):
        raise RemoteProtocolError("a peer is not a dictionary")
    host, port = entry.get(b"ip"), entry.get(b"port")
    if not isinstance(host, bytes) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise RemoteProtocolError("a peer lacks its ip or port")
    try:
        address = str(ipaddress.ip_address(host.decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        return None
    return (address, port) if port else None



def http_get(host: str, port: int, target: str) -> bytes:
    """An HTTP/1.0 GET (so the answer ends at the connection's end and is never chunked)."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return (f"GET {target} HTTP/1.0\r\nHost: {authority}\r\nAccept-Encoding: identity\r\n"
            f"Connection: close\r\n\r\n").encode("ascii")


def parse_http_answer(data: bytes) -> tuple[int, bytes]:
    """A whole HTTP answer (read to the end of the connection) -> (status, body).

    Raises:
        RemoteProtocolError: no complete head, a malformed one, a chunked body or one
            shorter than its Content-Length.
    """
    end = data.find(b"\r\n\r\n")
    cut = end + 4
    if end < 0 or b"\n\n" in data[:end]:
        end = data.find(b"\n\n")
        cut = end + 2
    if end < 0:
        raise RemoteProtocolError("tracker answer without a complete head")
    start, headers = parse_head(data[:end])
    _version, status, _phrase = status_start(start)
    if (get_header(headers, "Transfer-Encoding") or "identity").lower() != "identity":
        raise RemoteProtocolError("chunked answer to an HTTP/1.0 request")
    body = data[cut:]
    length = content_length(headers, limits.MAX_BENCODE_SIZE)
    if length is not None:
        if len(body) < length:
            raise RemoteProtocolError("tracker answer shorter than its Content-Length")
        body = body[:length]
    return status, body
