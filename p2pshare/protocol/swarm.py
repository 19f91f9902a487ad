"""P2P-SWARM/1.0: the swarm's messages, typed (docs/swarm.md has every one, byte-exact).

Strategy: the same framing as P2P-CI's P2P exchange (``Connection`` with LENGTH framing:
request line, headers, blank line, a body of Content-Length bytes), with our own version
token. ``interpret`` turns a framed request and its body into one typed message or a
``Rejected`` (400 or 505; the framing is intact, so the connection goes on); ``to_request``
is its inverse. Bodies that list things (pieces, peers, files) are text lines; a set of
pieces is an int bit mask (bit i = piece i) written as ranges (``0-3,7``) or as a base64
bitfield. ``PipelinedClient`` lets a client have many requests in flight on one
connection, which the framing codec alone does not allow, and returns answers whole.
Nothing here does I/O.

Tracker messages travel on a peer's persistent index-server connection; ``PIECE`` and
``MANIFEST`` on a connection to another peer's piece server.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from .. import limits
from ..errors import RemoteProtocolError, Status
from ._buffer import ReceiveBuffer
from ._checked import Rejected, checked
from ._connection import Connection, Role
from ._events import Data, EndOfMessage, Event, Framing, Request, Response
from ._grammar import content_length, get_header, parse_int, status_start
from ._heads import HeadReader

__all__ = [
    "VERSION",
    "Announce",
    "FileEntry",
    "GetManifest",
    "GetPeers",
    "GetPiece",
    "Have",
    "ListFiles",
    "Method",
    "PeerEntry",
    "PipelinedClient",
    "Rejected",
    "SwarmRequest",
    "interpret",
    "to_request",
]

VERSION = "P2P-SWARM/1.0"
PREFIX = "P2P-SWARM/"
VERSION_PHRASE = "P2P-SWARM Version Not Supported"
_ID = re.compile(r"[0-9a-f]{64}\Z")


class Method(StrEnum):
    ANNOUNCE = "ANNOUNCE"  # tracker: join a swarm (body: its manifest)
    HAVE = "HAVE"  # tracker: I now hold these pieces (body: ranges)
    PEERS = "PEERS"  # tracker: who holds what (answer: one line per peer)
    FILES = "FILES"  # tracker: every swarm (answer: one line per swarm)
    MANIFEST = "MANIFEST"  # tracker or peer: a swarm's manifest
    PIECE = "PIECE"  # peer: one piece's bytes


@dataclass(frozen=True, slots=True)
class Announce:
    swarm: str
    host: str
    port: int
    manifest: bytes


@dataclass(frozen=True, slots=True)
class Have:
    swarm: str
    pieces: int  # bit mask


@dataclass(frozen=True, slots=True)
class GetPeers:
    swarm: str


@dataclass(frozen=True, slots=True)
class ListFiles:
    """FILES: at most ``MAX_FILES_LISTED`` swarms, most recently announced first, after
    skipping ``offset`` of them; with ``name``, only those it names (an exact name or, if
    it is hex, an id prefix)."""

    offset: int = 0
    name: str = ""


@dataclass(frozen=True, slots=True)
class GetManifest:
    swarm: str


@dataclass(frozen=True, slots=True)
class GetPiece:
    swarm: str
    index: int


SwarmRequest = Announce | Have | GetPeers | ListFiles | GetManifest | GetPiece


def framing(_request: Request) -> Framing:
    """Every P2P-SWARM answer carries Content-Length."""
    return Framing.LENGTH


def server_connection() -> Connection:
    return Connection(Role.SERVER, framing)


def client_connection(max_body: int = limits.MAX_TRACKER_BODY) -> Connection:
    return Connection(Role.CLIENT, framing, max_response_body=max_body)


# ----------------------------------------------------------------------------- requests
def to_request(msg: SwarmRequest) -> tuple[Request, bytes]:
    """The request head and body that carry ``msg``."""
    body = b""
    headers: list[tuple[str, str]] = []
    if isinstance(msg, ListFiles):
        target = "ALL"
    elif isinstance(msg, GetPiece):
        target = f"{msg.swarm} {msg.index}"
    else:
        target = msg.swarm
    if isinstance(msg, ListFiles):
        headers += [("Offset", str(msg.offset))] if msg.offset else []
        headers += [("Name", msg.name)] if msg.name else []
    if isinstance(msg, Announce):
        headers += [("Host", msg.host), ("Port", str(msg.port))]
        body = msg.manifest
    elif isinstance(msg, Have):
        body = encode_ranges(msg.pieces).encode("ascii")
    if body or isinstance(msg, (Announce, Have)):
        headers.append(("Content-Length", str(len(body))))
    return Request(_METHOD_OF[type(msg)], target, VERSION, tuple(headers)), body


_METHOD_OF: dict[type, Method] = {
    Announce: Method.ANNOUNCE,
    Have: Method.HAVE,
    GetPeers: Method.PEERS,
    ListFiles: Method.FILES,
    GetManifest: Method.MANIFEST,
    GetPiece: Method.PIECE,
}


def interpret(req: Request, body: bytes) -> SwarmRequest | Rejected:
    """Validate a framed request as P2P-SWARM/1.0; never raises.

    The version is checked first (505), then method, target and headers (400), as for
    P2P-CI (docs/p2p-ci.md#check-order).
    """
    return checked(req, VERSION, lambda r: _interpret(r, body))


def _interpret(req: Request, body: bytes) -> SwarmRequest:
    try:
        method = Method(req.method.upper())
    except ValueError:
        raise RemoteProtocolError(f"unknown method {req.method[:20]!r}") from None
    if method is Method.FILES:
        if req.target.upper() != "ALL":
            raise RemoteProtocolError("FILES takes ALL")
        offset = (get_header(req.headers, "Offset") or "0").strip()
        name = (get_header(req.headers, "Name") or "").strip()
        if len(name.encode()) > limits.MAX_SWARM_NAME:
            raise RemoteProtocolError("Name is longer than a file name")
        return ListFiles(parse_int(offset, "Offset", 0, 2**31), name)
    if method is Method.PIECE:
        swarm, _, index = req.target.partition(" ")
        return GetPiece(parse_id(swarm), parse_int(index, "piece", 0, limits.MAX_PIECES - 1))
    swarm = parse_id(req.target)
    if method is Method.ANNOUNCE:
        return Announce(swarm, _host(req), _port(req), body)
    if method is Method.HAVE:
        return Have(swarm, decode_ranges(_ascii(body, "HAVE body"), limits.MAX_PIECES))
    return GetPeers(swarm) if method is Method.PEERS else GetManifest(swarm)


def parse_id(text: str) -> str:
    """A swarm id: 64 lower-case hex digits (SHA-256 of the manifest without its name).

    Raises:
        RemoteProtocolError: anything else.
    """
    if _ID.match(text) is None:
        raise RemoteProtocolError("a swarm id is 64 lower-case hex digits")
    return text


def _host(req: Request) -> str:
    host = get_header(req.headers, "Host") or ""
    if not host or len(host) > limits.MAX_HOSTNAME or any(c.isspace() for c in host):
        raise RemoteProtocolError("ANNOUNCE needs a Host without white space")
    return host


def _port(req: Request) -> int:
    return parse_int((get_header(req.headers, "Port") or "").strip(), "Port", 1,
                     limits.MAX_PORT)


def _ascii(body: bytes, what: str) -> str:
    try:
        return body.decode("ascii")
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"{what} is not ASCII") from None


# ----------------------------------------------------------------------------- responses
def response(status: Status = Status.OK, body: bytes = b"",
             extra: tuple[tuple[str, str], ...] = ()) -> tuple[Response, bytes]:
    """A LENGTH-framed answer; 505 says which protocol's version is unsupported."""
    reason = VERSION_PHRASE if status == Status.VERSION_NOT_SUPPORTED else ""
    headers = (*extra, ("Content-Length", str(len(body))))
    return Response(int(status), VERSION, headers, reason), body


def busy(retry_after: float) -> tuple[Response, bytes]:
    """503: the piece server is at its upload limit; ask again after ``retry_after`` s."""
    return response(Status.BUSY, extra=(("Retry-After", str(max(1, round(retry_after)))),))


def piece_head(length: int, have: str = "", full: bool = False, sent: str = "") -> Response:
    """The head of a 200 to PIECE; the piece's bytes follow (by sendfile). ``full``: the
    ``Uplink: full`` header (``UPLINK_FULL``); ``sent``: the ``Sent`` header's ranges
    (``sent_header``)."""
    return Response(int(Status.OK), VERSION,
                    (*have_header(have), *sent_header(sent), *(UPLINK_FULL if full else ()),
                     ("Content-Length", str(length))))


# On a PIECE answer: a seeder's upload is limited by the network, not by its receivers
# (``limits.UPLINK_JUDGED_AFTER``); downloaders repeat it on their own answers.
UPLINK_FULL = (("Uplink", "full"),)


def uplink_full(head: Response) -> bool:
    """Whether an answer says ``Uplink: full`` (any other value, or none: no)."""
    return get_header(head.headers, "Uplink") == "full"


def have_header(have: str) -> tuple[tuple[str, str], ...]:
    """``Have: <ranges>`` on a PIECE answer: pieces the server holds verified and has not
    yet told this connection about (none: no header)."""
    return (("Have", have),) if have else ()


def sent_header(sent: str) -> tuple[tuple[str, str], ...]:
    """``Sent: <ranges>`` on a seeder's PIECE answer: pieces it began sending to other
    connections within ``limits.SENT_SECONDS`` that it has not yet told this one of (none:
    no header). A downloader does not ask that seeder for them as first copies for as
    long: they reach it from the downloader they went to (``picker``, rule 1)."""
    return (("Sent", sent),) if sent else ()


def news(held: int, told: int, limit: int = limits.MAX_HAVE_HEADER) -> tuple[str, int]:
    """What to put in a Have header: (ranges text, the pieces it covers).

    At most ``limit`` characters: the lowest pieces first, the rest in later answers.
    """
    fresh = held & ~told
    text = encode_ranges(fresh)
    if len(text) <= limit:
        return text, fresh  # what it covers is what was encoded: no decoding back
    text = text[: text.rindex(",", 0, limit + 1)]
    return text, decode_ranges(text, held.bit_length())


# ----------------------------------------------------------------------------- bodies
def encode_ranges(mask: int) -> str:
    """Pieces as ascending ranges: ``0-3,7,9-10`` (empty for no piece)."""
    out: list[str] = []
    start = -1
    pos = 0
    while mask:
        zeros = (mask & -mask).bit_length() - 1
        pos += zeros
        mask >>= zeros
        ones = (~mask & (mask + 1)).bit_length() - 1  # length of the run of 1 bits
        start, end = pos, pos + ones - 1
        out.append(str(start) if start == end else f"{start}-{end}")
        pos += ones
        mask >>= ones
    return ",".join(out)


_RANGES = re.compile(r"\d{1,19}(?:-\d{1,19})?(?:,\d{1,19}(?:-\d{1,19})?)*\Z")


def decode_ranges(text: str, count: int) -> int:
    """Inverse of ``encode_ranges``; every index must be below ``count``.

    Raises:
        RemoteProtocolError: malformed, or an index out of range.
    """
    text = text.strip()
    if not text:
        return 0
    if not text.isascii() or _RANGES.match(text) is None:
        raise RemoteProtocolError("pieces are ranges like 0-3,7")
    mask = 0
    for part in text.split(","):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if not first <= last < count:
            raise RemoteProtocolError(f"piece range {part[:40]} is outside 0..{count - 1}")
        mask |= ((1 << (last - first + 1)) - 1) << first
    return mask


def encode_bitfield(mask: int, count: int) -> str:
    """Pieces as base64 of ceil(count/8) bytes, piece i in bit (i % 8) of byte i // 8."""
    return base64.b64encode(mask.to_bytes((count + 7) // 8, "little")).decode("ascii")


def decode_bitfield(text: str, count: int) -> int:
    """Inverse of ``encode_bitfield``.

    Raises:
        RemoteProtocolError: not base64, wrong length, or bits set past ``count``.
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise RemoteProtocolError("bitfield is not base64") from None
    mask = int.from_bytes(raw, "little")
    if len(raw) != (count + 7) // 8 or mask >> count:
        raise RemoteProtocolError("bitfield does not fit the piece count")
    return mask


@dataclass(frozen=True, slots=True)
class PeerEntry:
    """One line of a PEERS answer: ``<host> <port> <bitfield>``."""

    host: str
    port: int
    pieces: int


def encode_peers(entries: list[PeerEntry], count: int) -> bytes:
    return b"".join(f"{e.host} {e.port} {encode_bitfield(e.pieces, count)}\r\n".encode()
                    for e in entries)


def decode_peers(body: bytes, count: int) -> list[PeerEntry]:
    """Raises: RemoteProtocolError for a malformed line."""
    entries = []
    for line in _lines(body):
        parts = line.split()
        if len(parts) != 3:
            raise RemoteProtocolError("a PEERS line is <host> <port> <bitfield>")
        port = parse_int(parts[1], "port", 1, limits.MAX_PORT)
        entries.append(PeerEntry(parts[0], port, decode_bitfield(parts[2], count)))
    return entries


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One line of a FILES answer:
    ``<id> <size> <piece size> <seeders> <leechers> <copies> <files> <name>``.

    ``copies`` is the availability: complete copies the live peers hold together;
    ``files`` the number of files of a folder (a collection), 0 for a single file.
    """

    swarm: str
    size: int
    piece_size: int
    seeders: int
    leechers: int
    copies: float
    name: str
    files: int = 0

    @property
    def kind(self) -> str:
        return "folder" if self.files else "file"

    def to_line(self) -> bytes:
        return (f"{self.swarm} {self.size} {self.piece_size} {self.seeders} {self.leechers} "
                f"{self.copies:.3f} {self.files} {self.name}\r\n").encode()


def decode_files(body: bytes) -> list[FileEntry]:
    """Raises: RemoteProtocolError for a malformed line."""
    entries = []
    for line in _lines(body):
        parts = line.split(" ", 7)
        if len(parts) != 8 or not parts[7]:
            raise RemoteProtocolError("malformed FILES line")
        try:
            copies = float(parts[5])
        except ValueError:
            copies = -1.0
        if not 0 <= copies < math.inf:  # NaN and infinities too
            raise RemoteProtocolError("copies is not a finite number of copies")
        n = [parse_int(p, "FILES field", 0, 2**62) for p in parts[1:5]]
        files = parse_int(parts[6], "FILES field", 0, limits.MAX_COLLECTION_FILES)
        entries.append(FileEntry(parse_id(parts[0]), n[0], n[1], n[2], n[3], copies, parts[7],
                                 files))
    return entries


def _lines(body: bytes) -> list[str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError("body is not UTF-8") from None
    return [line for line in text.split("\r\n") if line]


# ----------------------------------------------------------------------------- pipelining
def piece_request(swarm: str, index: int) -> bytes:
    """The bytes of ``PIECE <swarm> <index>``: exactly what ``to_request`` and the framing
    codec make of ``GetPiece`` (a test holds them to it), without building either; a
    downloader sends one for every piece."""
    return b"PIECE %s %d P2P-SWARM/1.0\r\n\r\n" % (swarm.encode("ascii"), index)


_QUICK_PIECE = re.compile(rb"PIECE ([0-9a-f]{64}) (0|[1-9][0-9]{0,9}) P2P-SWARM/1\.0\r\n\r\n")


def quick_pieces(data: bytes, most: int) -> list[tuple[str, int]] | None:
    """(swarm, index) of every request if ``data`` is exactly 1 to ``most`` PIECE requests
    as ``piece_request`` writes them (what a downloader pipelines), else None: the general
    path then reads ``data`` (and refuses what it must). A seeder answers such a read in
    one pass (``PieceServer.quick``), without the framing codec."""
    asked: list[tuple[str, int]] = []
    at, end = 0, len(data)
    while at < end:
        m = _QUICK_PIECE.match(data, at)
        if m is None or len(asked) == most or int(m[2]) >= limits.MAX_PIECES:
            return None
        asked.append((m[1].decode("ascii"), int(m[2])))
        at = m.end()
    return asked or None


def piece_head_bytes(length: int, have: str = "", full: bool = False, sent: str = "") -> bytes:
    """The bytes of ``piece_head(length, have, full, sent)``, exactly the codec's (a test
    holds them to it), from a template: ``have`` and ``sent`` are ``news`` text (digits,
    commas, dashes)."""
    return b"P2P-SWARM/1.0 200 OK\r\n%s%s%sContent-Length: %d\r\n\r\n" % (
        b"Have: %s\r\n" % have.encode("ascii") if have else b"",
        b"Sent: %s\r\n" % sent.encode("ascii") if sent else b"",
        b"Uplink: full\r\n" if full else b"", length)


_QUICK_TRACKER = re.compile(
    rb"PEERS ([0-9a-f]{64}) P2P-SWARM/1\.0\r\n\r\n\Z"
    rb"|HAVE ([0-9a-f]{64}) P2P-SWARM/1\.0\r\nContent-Length: ([1-9][0-9]{0,%d})\r\n\r\n"
    % (len(str(limits.MAX_REQUEST_BODY)) - 1))


def quick_tracker(data: bytes) -> Have | GetPeers | None:
    """The request if ``data`` is exactly one PEERS, or one HAVE with its whole body, as
    ``to_request`` and the framing codec write them (what a downloader sends every few
    tenths of a second), else None: the general path (the server's codec, then
    ``interpret``) then reads ``data`` and refuses what it must. A test holds both to the
    same result; the tracker answers these in one pass (``Tracker.quick``)."""
    m = _QUICK_TRACKER.match(data)
    if m is None:
        return None
    if m[1] is not None:
        return GetPeers(m[1].decode("ascii"))
    length = int(m[3])
    if length > limits.MAX_REQUEST_BODY or len(data) - m.end() != length:
        return None
    try:
        pieces = decode_ranges(data[m.end():].decode("ascii"), limits.MAX_PIECES)
    except (UnicodeDecodeError, RemoteProtocolError):
        return None
    return Have(m[2].decode("ascii"), pieces)


def ok_answer(body: bytes = b"") -> bytes:
    """The bytes of ``response(Status.OK, body)`` as the codec writes it (a test holds
    them to it), from a template."""
    return b"P2P-SWARM/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


_QUICK_HEAD = re.compile(
    rb"P2P-SWARM/1\.0 200 OK\r\n(?:Have: ([0-9][0-9,-]{0,%d})\r\n)?"
    rb"(?:Sent: ([0-9][0-9,-]{0,%d})\r\n)?"
    rb"(Uplink: full\r\n)?Content-Length: (0|[1-9][0-9]{0,18})\r\n\r\n"
    % (limits.MAX_HAVE_HEADER - 1, limits.MAX_HAVE_HEADER - 1))


def quick_head(buf: ReceiveBuffer, max_body: int) -> tuple[Response, int] | None:
    """(head, Content-Length) of the answer at the front of ``buf`` if its head is exactly
    what a piece server sends for a piece (``piece_head_bytes``: 200, maybe a Have header
    and a Sent header of news text, maybe ``Uplink: full``, a Content-Length up to
    ``max_body`` without leading zeros), taken out of ``buf``; else None, ``buf``
    untouched, and the general path (``HeadReader``, ``status_start``,
    ``content_length``) reads the head and refuses what it must. A test holds both to the
    same result; this one skips the general grammar for the head a downloader reads for
    every piece."""
    found = buf.match(_QUICK_HEAD)
    if found is None or (length := int(found[4])) > max_body:
        return None
    have, sent, text = found[1], found[2], found[4].decode("ascii")  # before bytes move
    headers = (*(() if have is None else (("Have", have.decode("ascii")),)),
               *(() if sent is None else (("Sent", sent.decode("ascii")),)),
               *(UPLINK_FULL if found[3] else ()), ("Content-Length", text))
    buf.extract_bytes(found.end())
    return Response(int(Status.OK), VERSION, headers, "OK"), length


class PipelinedClient:
    """The client side of a connection with many requests in flight.

    ``Connection`` follows one request/response cycle at a time and yields a body as many
    ``Data`` events. A downloader asks a peer for several pieces ahead and wants each one
    whole, so this reader is built for that case (and measured to matter: the generic
    codec's per-event work was a tenth of a busy leech's CPU). Requests are encoded by the
    framing codec (a fresh one each), so their bytes are exactly the framing's, except
    PIECE, the one a downloader sends per piece, which ``piece_request`` writes from a
    template. An answer head is found and parsed by what the codec uses (``HeadReader``,
    which ends in ``parse_head``), so both accept the same heads, except the head a piece
    server sends with a piece, read by one pattern (``quick_head``, held to the general
    path's result by a test). The body of an answer
    to ``send_piece`` no longer than the piece gets a ``bytearray`` of Content-Length
    bytes at once: bytes already buffered are moved into it, and the caller may receive
    the rest straight into it (``body_view`` and ``body_received``: ``recv_into``, no
    copy in between). A body the caller is done with may be handed back (``recycle``)
    and is then the next such body of its size: the pages of a fresh 256 KiB buffer per
    piece (allocated, zeroed, faulted in) cost more than the copy into them. Any other
    body (a longer one, or one to ``send``) is held as it arrives and cut from the buffer
    once whole, so that a head alone never makes us allocate more than the piece asked
    for.
    """

    def __init__(self, max_body: int = limits.MAX_PIECE_SIZE) -> None:
        self.max_body = max_body
        self.in_flight = 0  # requests sent whose answer has not been returned yet
        self.closed = False  # the server closed its side
        self._buf = ReceiveBuffer()
        self._heads = HeadReader(of_responses=True)
        self._head: Response | None = None
        self._body = bytearray()  # the current answer's body, if received in place
        self._filled = 0  # bytes of it received
        self._length = 0  # the current answer's Content-Length
        self._in_place = False  # its body goes into ``_body``
        self._room: deque[int] = deque()  # per request in flight: the body allowed in place
        self._spare: bytearray | None = None  # a body handed back, for the next one

    def send(self, request: Request, body: bytes = b"") -> bytes:
        """Bytes of ``request`` for the wire; its answer comes after earlier ones."""
        self.in_flight += 1
        self._room.append(0)
        return client_connection().send_all(request, *_body_events(body), EndOfMessage())

    def send_piece(self, swarm: str, index: int, length: int) -> bytes:
        """``send`` of ``GetPiece(swarm, index)``, from the template (``piece_request``);
        ``length``: the piece's size, the most of its answer's body received in place."""
        self.in_flight += 1
        self._room.append(length)
        return piece_request(swarm, index)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed received bytes; ``b""`` means the server closed."""
        if data:
            self._buf.feed(data)
        else:
            self.closed = True

    @property
    def in_body(self) -> bool:
        """Whether the current answer's body is under way in place, with no byte buffered
        before the next ones (``body_view`` says where they go)."""
        return self._in_place and not self._buf and self._filled < len(self._body)

    def body_view(self, limit: int) -> memoryview | None:
        """Where the current answer's next body bytes may be received directly: at most
        ``limit`` bytes of it; None when no body is under way (or bytes are buffered
        before it: ``next_answer`` or ``advance`` moves them first)."""
        if not self.in_body:
            return None
        return memoryview(self._body)[self._filled:self._filled + limit]

    def advance(self) -> None:
        """What ``next_answer`` does first, for a head ``quick_head`` reads: start the
        oldest unanswered request's answer and move the bytes after the head into its
        body. A piece link calls this as a piece's head arrives, so that the rest of the
        body arrives in place at once, without a turn of its caller first. Never raises:
        any other head is left to ``next_answer``."""
        if self._head is None and self.in_flight and not self._heads.started:
            quick = quick_head(self._buf, self.max_body)
            if quick is not None:
                self._begin(*quick)
        self._move_body()

    def recycle(self, body: bytearray) -> None:
        """The caller is done with ``body`` (an answer's): it may hold the next body of
        its size. Its old bytes are never returned: an answer is returned only once every
        byte of its body was received into it."""
        self._spare = body

    def body_received(self, count: int) -> None:
        """``count`` bytes were written into the last ``body_view``."""
        self._filled += count

    @property
    def wanted(self) -> int:
        """Bytes still missing from the current answer's body (0 if none is started)."""
        return max(0, self._length - self._filled - len(self._buf)) if self._head else 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned in an answer."""
        return len(self._buf) + self._filled

    @property
    def held(self) -> int:
        """Bytes received and not yet parsed or moved into a body."""
        return len(self._buf)

    @property
    def ready(self) -> bool:
        """Whether the current answer's body is complete (``next_answer`` returns it)."""
        return self._head is not None and self._filled + len(self._buf) >= self._length

    def next_answer(self) -> tuple[Response, bytearray] | None:
        """The oldest unanswered request's whole answer, or None until more bytes arrive.

        Raises:
            RemoteProtocolError: the server broke the protocol, or closed mid-answer, or
                sent bytes that no request asked for.
        """
        if self._head is None and not self._read_head():
            return None
        self._move_body()
        if not self.ready:
            if self.closed:
                raise RemoteProtocolError("connection closed in the middle of an answer")
            return None
        head = self._head
        body = self._body if self._in_place else bytearray(self._buf.extract_bytes(self._length))
        self._head, self.in_flight = None, self.in_flight - 1
        self._body, self._filled, self._in_place = bytearray(), 0, False
        assert head is not None
        return head, body

    def _read_head(self) -> bool:
        if not self.in_flight:
            self._buf.skip_blank_lines()  # as the codec does between answers (A3)
            if self._buf:
                raise RemoteProtocolError("the server sent bytes no request asked for")
            return False
        if not self._heads.started and not self._buf:
            return False  # nothing of the head yet: what ``HeadReader.read`` would find
        quick = None if self._heads.started else quick_head(self._buf, self.max_body)
        if quick is not None:
            self._begin(*quick)
            return True
        head = self._heads.read(self._buf, Framing.LENGTH, self.max_body, eof=self.closed)
        if not isinstance(head, tuple):
            return False
        start, headers = head
        version, status, reason = status_start(start)
        length = content_length(headers, self.max_body)
        if length is None and status == Status.OK:
            raise RemoteProtocolError("a 200 answer needs a Content-Length")
        self._begin(Response(status, version, headers, reason), length or 0)
        return True

    def _begin(self, head: Response, length: int) -> None:
        """The oldest unanswered request's answer starts: ``head``, ``length`` bytes of
        body (received in place if the request allows that many)."""
        self._head, self._length, self._filled = head, length, 0
        self._in_place = 0 < self._length <= self._room.popleft()
        spare, self._spare = self._spare, None
        if not self._in_place:
            self._body = bytearray()
        elif spare is not None and len(spare) == self._length:
            self._body = spare
        else:
            self._body = bytearray(self._length)

    def _move_body(self) -> None:
        """Move the current answer's buffered body bytes into its body (in place)."""
        if self._in_place and self._buf and self._filled < self._length:
            run = self._buf.extract_bytes(self._length - self._filled)
            self._body[self._filled:self._filled + len(run)] = run
            self._filled += len(run)


def _body_events(body: bytes) -> tuple[Event, ...]:
    return (Data(body),) if body else ()
