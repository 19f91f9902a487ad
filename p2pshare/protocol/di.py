"""P2P-DI/1.0: registration-server and peer-to-peer messages, typed.

Strategy: the handout leaves the wire format to us (docs/p2p-di.md#di-wire-format), so
P2P-DI is P2P-CI's family with one framing: a request line ``METHOD <target> P2P-DI/1.0``,
``Name: value`` headers, a blank line, and a body of exactly Content-Length bytes (LENGTH
framing). Every exchange uses its own TCP connection, one request and one response
(docs/p2p-di.md#di-connections: "the TCP connection is closed at the end of each message
exchange"), so connections are built with ``keep_alive=False``. ``Connection`` frames;
this module gives meaning: ``interpret`` turns a framed request into a typed message or a
``Rejected``; ``to_event`` builds the exact request; the ``parse_*`` functions read
replies. The full grammar, with byte-exact examples, is in docs/p2p-di.md.

Check order (as P2P-CI, docs/p2p-ci.md#check-order): version (505), then method, target
and headers (400), then the operation itself (404, 409 are ordinary responses, not errors).

Robustness: list bodies (PQuery, RFCQuery) come from remote peers. A malformed line is
skipped and counted, never raised past ``parse_peers``/``parse_index``: one bad record
must not cost a peer the good ones, nor crash it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from .. import limits
from ..errors import RemoteProtocolError, Status, WrongServer
from ._checked import Rejected as Rejected  # the same in every protocol: framed, refused
from ._checked import checked
from ._connection import Connection, Role
from ._events import Framing, Request, Response
from ._grammar import Headers, decode_text, get_header, http_date, parse_int
from ._reached import server_kind, wrong_server
from ._show import head_text as head_text  # a message as the menus print it
from .ci import _cut_last_word

VERSION = "P2P-DI/1.0"
CONTENT_TYPE = "text/plain"
# the reason phrase of PQuery's 404 (docs/p2p-di.md#di-messages)
NO_ACTIVE_PEERS = "No Active Peers"
UNKNOWN_COOKIE = "Unknown Cookie"  # 409: the RS never issued this cookie
NOT_ACTIVE = "Not Active"  # 409: the peer left or its TTL ran out; register again
ADDRESS_IN_USE = "Address In Use"  # 409: another live peer, registered elsewhere, holds it
SOURCE_FULL = "Too Many Peers From Your Address"  # 503: DI_MAX_PEERS_PER_SOURCE active
RS_FULL = "Too Many Peers"  # 503: DI_MAX_PEERS records, all active
VERSION_PHRASE = "P2P-DI Version Not Supported"


class Method(StrEnum):
    REGISTER = "REGISTER"
    LEAVE = "LEAVE"
    KEEPALIVE = "KEEPALIVE"
    PQUERY = "PQUERY"
    GET = "GET"  # RFCQuery (target RFC-INDEX) and GetRFC (target RFC <n>)


# ---------------------------------------------------------------------------- requests
@dataclass(frozen=True, slots=True)
class Register:
    """Peer -> RS. ``cookie`` is None the first time, the RS's cookie afterwards."""

    host: str
    port: int
    cookie: int | None = None
    os: str = ""


@dataclass(frozen=True, slots=True)
class Leave:
    """Peer -> RS: mark me inactive."""

    host: str
    cookie: int
    os: str = ""


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """Peer -> RS: reset my TTL."""

    host: str
    cookie: int
    os: str = ""


@dataclass(frozen=True, slots=True)
class PQuery:
    """Peer -> RS: the active peers. Without a cookie nobody is excluded (docs: anonymous);
    ``offset`` pages through a list longer than ``DI_MAX_PEERS_LISTED``."""

    host: str
    cookie: int | None = None
    os: str = ""
    offset: int = 0


@dataclass(frozen=True, slots=True)
class RFCQuery:
    """Peer -> peer: the whole RFC index. ``host`` names the peer asked (as P2P-CI A4)."""

    host: str
    os: str = ""


@dataclass(frozen=True, slots=True)
class GetRFC:
    """Peer -> peer: the file of RFC ``rfc``."""

    rfc: int
    host: str
    os: str = ""


DIRequest = Register | Leave | KeepAlive | PQuery | RFCQuery | GetRFC
RSRequest = Register | Leave | KeepAlive | PQuery
PeerRequest = RFCQuery | GetRFC


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True)
class PeerAddr:
    """One line of a PQuery reply: ``<hostname> <port>``."""

    host: str
    port: int

    def to_line(self) -> bytes:
        return f"{self.host} {self.port}".encode()


@dataclass(frozen=True, slots=True)
class IndexLine:
    """One line of an RFCQuery reply: ``RFC <n> <title> <hostname> <port> <ttl>``."""

    rfc: int
    title: str
    host: str
    port: int
    ttl: int

    def to_line(self) -> bytes:
        title = f" {self.title}" if self.title else ""
        return f"RFC {self.rfc}{title} {self.host} {self.port} {self.ttl}".encode()


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Parsed(Generic[T]):
    """The well-formed records of a list body, how many lines were skipped, and how many
    were left unread beyond the reader's cap (``cut``)."""

    items: tuple[T, ...]
    skipped: int
    cut: int = 0


# ------------------------------------------------------------------------- connections
def _length(_request: Request) -> Framing:
    return Framing.LENGTH


def server_connection() -> Connection:
    """The server side of one P2P-DI exchange (RS or RFC server)."""
    return Connection(Role.SERVER, _length, keep_alive=False)


def client_connection(max_body: int = limits.DI_MAX_PEER_LIST_BODY) -> Connection:
    """The client side of one P2P-DI exchange accepting a reply body up to ``max_body``."""
    return Connection(Role.CLIENT, _length, keep_alive=False, max_response_body=max_body)


# ---------------------------------------------------------------------- encode requests
def to_event(msg: DIRequest) -> Request:
    """The request for ``msg``; headers in the order Host, Port, Cookie, Offset, OS."""
    headers: list[tuple[str, str]] = [("Host", msg.host)]
    if isinstance(msg, Register):
        headers.append(("Port", str(msg.port)))
    cookie = getattr(msg, "cookie", None)
    if cookie is not None:
        headers.append(("Cookie", str(cookie)))
    if isinstance(msg, PQuery) and msg.offset:
        headers.append(("Offset", str(msg.offset)))
    if msg.os:
        headers.append(("OS", msg.os))
    method, target = _start(msg)
    return Request(method.value, target, VERSION, tuple(headers))


def _start(msg: DIRequest) -> tuple[Method, str]:
    if isinstance(msg, Register):
        return Method.REGISTER, "PEER"
    if isinstance(msg, Leave):
        return Method.LEAVE, "PEER"
    if isinstance(msg, KeepAlive):
        return Method.KEEPALIVE, "PEER"
    if isinstance(msg, PQuery):
        return Method.PQUERY, "ALL"
    if isinstance(msg, RFCQuery):
        return Method.GET, "RFC-INDEX"
    return Method.GET, f"RFC {msg.rfc}"


# -------------------------------------------------------------------- interpret requests
_RFC_TARGET = re.compile(r"RFC[ \t]*(\d{1,19})\Z", re.I)


def interpret(req: Request) -> DIRequest | Rejected:
    """Validate a framed request as P2P-DI; never raises."""
    return checked(req, VERSION, _interpret)


def _interpret(req: Request) -> DIRequest:
    try:
        method = Method(req.method.upper())
    except ValueError:
        raise RemoteProtocolError(f"unknown method {req.method[:20]!r}") from None
    target = req.target.upper()
    host = _host(get_header(req.headers, "Host"))
    os_name = _bounded(get_header(req.headers, "OS") or "", limits.MAX_OS, "OS")
    build = _BUILDERS.get((method, target))
    if build is not None:
        return build(req.headers, host, os_name)
    m = _RFC_TARGET.match(req.target) if method is Method.GET else None
    if m is None:
        raise RemoteProtocolError(f"{method} does not take the target {req.target[:40]!r}")
    rfc = parse_int(m.group(1), "RFC number", limits.MIN_RFC_NUMBER, limits.MAX_RFC_NUMBER)
    return GetRFC(rfc, host, os_name)


def _register(headers: Headers, host: str, os_name: str) -> DIRequest:
    port = _required(headers, "Port")
    cookie = get_header(headers, "Cookie")
    return Register(host, parse_int(port, "Port", 1, limits.MAX_PORT),
                    None if cookie is None else _cookie(cookie), os_name)


def _leave(headers: Headers, host: str, os_name: str) -> DIRequest:
    return Leave(host, _cookie(_required(headers, "Cookie")), os_name)


def _keepalive(headers: Headers, host: str, os_name: str) -> DIRequest:
    return KeepAlive(host, _cookie(_required(headers, "Cookie")), os_name)


def _pquery(headers: Headers, host: str, os_name: str) -> DIRequest:
    cookie = get_header(headers, "Cookie")
    offset = get_header(headers, "Offset")
    return PQuery(host, None if cookie is None else _cookie(cookie), os_name,
                  0 if offset is None else parse_int(offset.strip(), "Offset", 0,
                                                     limits.DI_MAX_OFFSET))


def _rfcquery(_headers: Headers, host: str, os_name: str) -> DIRequest:
    return RFCQuery(host, os_name)


_Builder = Callable[[Headers, str, str], DIRequest]
_BUILDERS: dict[tuple[Method, str], _Builder] = {
    (Method.REGISTER, "PEER"): _register,
    (Method.LEAVE, "PEER"): _leave,
    (Method.KEEPALIVE, "PEER"): _keepalive,
    (Method.PQUERY, "ALL"): _pquery,
    (Method.GET, "RFC-INDEX"): _rfcquery,
}


def _required(headers: Headers, name: str) -> str:
    value = get_header(headers, name)
    if not value:
        raise RemoteProtocolError(f"missing {name} header")
    return value


def _cookie(value: str) -> int:
    return parse_int(value.strip(), "Cookie", 1, limits.DI_MAX_COOKIE)


def _host(value: str | None) -> str:
    host = _bounded(value or "", limits.MAX_HOSTNAME, "Host")
    if not host or any(c.isspace() for c in host):
        raise RemoteProtocolError("Host must be one non-empty token")
    return host


def _bounded(value: str, limit: int, what: str) -> str:
    if len(value) > limit:
        raise RemoteProtocolError(f"{what} longer than {limit} characters")
    return value


# --------------------------------------------------------------------------- responses
def response(status: Status, headers: Headers = (), reason: str = "") -> Response:
    """A reply with no body (``Content-Length: 0`` is added last)."""
    if status is Status.VERSION_NOT_SUPPORTED and not reason:
        reason = VERSION_PHRASE
    return Response(int(status), VERSION, (*headers, ("Content-Length", "0")), reason)


def rejected(rej: Rejected) -> Response:
    return response(rej.status)


def registered(cookie: int, ttl: int) -> Response:
    """200 to Register: the peer's cookie and TTL."""
    return response(Status.OK, (("Cookie", str(cookie)), ("TTL", str(ttl))))


def kept_alive(ttl: int) -> Response:
    return response(Status.OK, (("TTL", str(ttl)),))


def unknown_cookie() -> Response:
    return response(Status.CONFLICT, reason=UNKNOWN_COOKIE)


def no_active_peers() -> Response:
    return response(Status.NOT_FOUND, reason=NO_ACTIVE_PEERS)


def list_reply(records: Iterable[PeerAddr | IndexLine], max_bytes: int | None = None
               ) -> tuple[Response, bytes]:
    """200 with one record per CRLF-terminated line (PQuery and RFCQuery replies); with
    ``max_bytes``, the records that fit whole in that many bytes, in order."""
    lines = (r.to_line() + b"\r\n" for r in records)
    body = b"".join(lines if max_bytes is None else _within(lines, max_bytes))
    return list_head(body), body


def _within(lines: Iterable[bytes], max_bytes: int) -> Iterable[bytes]:
    for line in lines:
        max_bytes -= len(line)
        if max_bytes < 0:
            return
        yield line


def list_head(body: bytes, next_offset: int | None = None) -> Response:
    """The 200 head of a list reply whose lines, already encoded, are ``body``;
    ``next_offset``: a PQuery page with more peers after it."""
    more = () if next_offset is None else (("Next-Offset", str(next_offset)),)
    headers = (("Content-Type", CONTENT_TYPE), *more, ("Content-Length", str(len(body))))
    return Response(int(Status.OK), VERSION, headers)


def file_reply(size: int, mtime: float, os_name: str, now: float | None = None) -> Response:
    """200 to GetRFC: P2P-CI's five headers in P2P-CI's order (docs/p2p-ci.md#get-response)."""
    headers: Headers = (
        ("Date", http_date(now)),
        ("OS", os_name),
        ("Last-Modified", http_date(mtime)),
        ("Content-Length", str(size)),
        ("Content-Type", CONTENT_TYPE),
    )
    return Response(int(Status.OK), VERSION, headers)


# ----------------------------------------------------------------------- read responses
WANTED = "a P2P-DI/1.0 server"


def check_version(resp: Response, where: str) -> None:
    """Raises: WrongServer(505): the reply from ``where`` is not P2P-DI/1.0 (the message
    names the kind of server that sent it)."""
    if resp.version.upper() != VERSION:
        raise WrongServer(wrong_server(where, server_kind(resp), WANTED),
                          Status.VERSION_NOT_SUPPORTED)


def header_int(resp: Response, name: str, high: int) -> int:
    """A required positive integer header of a reply.

    Raises:
        RemoteProtocolError: the header is missing or not a number in 1..high.
    """
    value = get_header(resp.headers, name)
    if value is None:
        raise RemoteProtocolError(f"reply lacks a {name} header")
    return parse_int(value.strip(), name, 1, high)


def parse_registered(resp: Response) -> tuple[int, int]:
    """(cookie, ttl) from a 200 to Register. Raises: RemoteProtocolError."""
    return header_int(resp, "Cookie", limits.DI_MAX_COOKIE), parse_ttl(resp)


def parse_ttl(resp: Response) -> int:
    return header_int(resp, "TTL", limits.DI_MAX_TTL)


def next_offset(resp: Response) -> int | None:
    """A PQuery page's ``Next-Offset`` (the rest of the list starts there), None if absent.

    Raises:
        RemoteProtocolError: the header is not a number in 1..DI_MAX_OFFSET.
    """
    if get_header(resp.headers, "Next-Offset") is None:
        return None
    return header_int(resp, "Next-Offset", limits.DI_MAX_OFFSET)


# Host, port and TTL are the last words, cut from the right; the title (possibly empty,
# possibly with spaces) is what stands between the number and them. (One pattern for the
# whole index line backtracked in cubic time: 800 blanks took a second, as in P2P-CI.)
_PEER_LINE = re.compile(r"(\S+)[ \t]+(\d{1,19})\Z")
_INDEX_HEAD = re.compile(r"RFC[ \t]+(\d{1,19})(?:[ \t]+|\Z)", re.I)


def parse_peer_line(line: bytes) -> PeerAddr:
    """Raises: RemoteProtocolError: not ``<hostname> <port>``."""
    m = _PEER_LINE.match(decode_text(line, "peer line").strip())
    if m is None:
        raise RemoteProtocolError("malformed peer line")
    return PeerAddr(_host(m.group(1)), parse_int(m.group(2), "port", 1, limits.MAX_PORT))


def parse_index_line(line: bytes) -> IndexLine:
    """Raises: RemoteProtocolError: not ``RFC <n> <title> <hostname> <port> <ttl>``."""
    rest, ttl = _cut_last_word(decode_text(line, "index line").strip())
    rest, port = _cut_last_word(rest)
    rest, host = _cut_last_word(rest)
    m = _INDEX_HEAD.match(rest)
    if m is None or not host:
        raise RemoteProtocolError("malformed index line")
    return IndexLine(
        parse_int(m.group(1), "RFC number", limits.MIN_RFC_NUMBER, limits.MAX_RFC_NUMBER),
        _bounded(rest[m.end():], limits.MAX_TITLE, "title"),
        _host(host),
        parse_int(port, "port", 1, limits.MAX_PORT),
        parse_int(ttl, "TTL", 0, limits.DI_MAX_TTL),
    )


def parse_peers(body: bytes, limit: int = limits.DI_MAX_PEERS_LISTED) -> Parsed[PeerAddr]:
    """The records of a PQuery reply body, at most ``limit`` lines of it read; malformed
    lines are skipped and counted, lines beyond ``limit`` counted as ``cut``."""
    return _parse_lines(body, parse_peer_line, limit)


def parse_index(body: bytes, limit: int = limits.DI_MAX_RECORDS_PER_PEER
                ) -> Parsed[IndexLine]:
    """The records of an RFCQuery reply body, as ``parse_peers``."""
    return _parse_lines(body, parse_index_line, limit)


def _parse_lines(body: bytes, parse: Callable[[bytes], T], limit: int) -> Parsed[T]:
    items: list[T] = []
    skipped = 0
    lines = body.split(b"\n", limit)  # a hostile body of tiny lines is not split whole
    rest = lines.pop() if len(lines) > limit else b""
    for line in lines:
        line = line.removesuffix(b"\r")
        if not line.strip():
            continue
        try:
            items.append(parse(line))
        except RemoteProtocolError:
            skipped += 1
    return Parsed(tuple(items), skipped, _count_lines(rest))


def _count_lines(text: bytes) -> int:
    """Lines (not only white space) in ``text``, without splitting it (C speed)."""
    if not text.strip():
        return 0
    return text.count(b"\n") + (not text.endswith(b"\n"))
