"""P2P-CI/1.0: the messages of the course handout, typed.

Strategy: ``Connection`` (``_connection``) frames messages; this module gives them P2P-CI
meaning. ``interpret`` turns a framed ``Request`` into a ``CIRequest`` or a ``Rejected``
(a well-framed request we answer with 400 or 505 and then carry on: the framing is intact,
so the connection survives). ``to_event`` builds the exact request the handout shows.
Section numbers (2.4, A1, ...) are those of docs/p2p-ci.md#contents.

Check order (section 2.4): version first (505), then method and format (400), then the
lookup itself (404 is an ordinary response, not an error). Head text that was not UTF-8
reaches ``interpret`` as U+FFFD (``_grammar``) and is a 400 here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from .. import limits
from ..errors import LocalProtocolError, RemoteProtocolError, Status
from ._checked import Rejected as Rejected  # re-exported: ci.Rejected
from ._checked import checked
from ._connection import Connection, Role, _response_head
from ._events import Framing, Request, Response
from ._grammar import Headers, http_date, parse_int

VERSION = "P2P-CI/1.0"
CONTENT_TYPE = "text/plain"  # A5: the prose says text/plain


class Method(StrEnum):
    ADD = "ADD"
    LOOKUP = "LOOKUP"
    LIST = "LIST"
    GET = "GET"
    REMOVE = "REMOVE"  # extension: withdraw one's own record (docs/p2p-ci.md#remove)


P2S_METHODS = frozenset({Method.ADD, Method.LOOKUP, Method.LIST, Method.REMOVE})
# Headers each method must carry (2.1, 3). A4: GET's Host is checked for presence only.
_REQUIRED = {
    Method.ADD: ("Host", "Port", "Title"),
    Method.REMOVE: ("Host", "Port"),
    Method.GET: ("Host",),
    Method.LOOKUP: (),
    Method.LIST: (),
}


@dataclass(frozen=True, slots=True)
class CIRequest:
    """A valid P2P-CI request. ``rfc`` is None only for LIST; ``port`` None only for GET."""

    method: Method
    rfc: int | None
    host: str
    port: int | None = None
    title: str | None = None
    os: str | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """One index entry as a P2S data line shows it: ``RFC <n> <title> <host> <port>`` (2.3)."""

    rfc: int
    title: str
    host: str
    port: int

    def to_line(self) -> bytes:
        return f"RFC {self.rfc} {self.title} {self.host} {self.port}".encode()


# The title may hold spaces, so host and port are the last two words (2.3), cut from the
# right; what precedes the title is matched from the left. The leading "RFC" is tolerated
# missing. (One regex for the whole line backtracks for seconds on a line of blanks.)
_RECORD_HEAD = re.compile(r"(?:RFC[ \t]+)?([0-9]{1,19})(?:[ \t]+|\Z)", re.I)
_WHITE = re.compile(r"\s")
_TARGET = re.compile(r"RFC[ \t]*(\d{1,19})\Z", re.I)


def parse_record(line: bytes) -> Record:
    """Decode one P2S data line.

    Raises:
        RemoteProtocolError: the line is not ``RFC <n> <title> <host> <port>``.
    """
    try:
        text = line.decode("utf-8").strip(" \t")
    except UnicodeDecodeError:
        raise RemoteProtocolError("data line is not valid UTF-8") from None
    rest, port = _cut_last_word(text)
    rest, host = _cut_last_word(rest)
    m = _RECORD_HEAD.match(rest)
    if m is None or not host:
        raise RemoteProtocolError(f"malformed data line: {text[:80]!r}")
    rfc = parse_int(m.group(1), "RFC number", limits.MIN_RFC_NUMBER, limits.MAX_RFC_NUMBER)
    return Record(rfc, rest[m.end():], host, parse_int(port, "port", 1, limits.MAX_PORT))


def _cut_last_word(text: str) -> tuple[str, str]:
    """(``text`` without its last blank-separated word, that word); ``text`` ends in no blank."""
    cut = max(text.rfind(" "), text.rfind("\t"))
    return (text[:cut].rstrip(" \t") if cut >= 0 else ""), text[cut + 1:]


def response_framing(request: Request) -> Framing:
    """GET answers carry Content-Length; P2S answers are data lines (2.3, 3)."""
    return Framing.LENGTH if request.method.upper() == Method.GET else Framing.LINES


def index_server_connection() -> Connection:
    """The server side of a persistent peer-to-index connection (P2S)."""
    return Connection(Role.SERVER, response_framing, default_framing=Framing.LINES)


def index_client_connection() -> Connection:
    return Connection(Role.CLIENT, response_framing, default_framing=Framing.LINES)


def upload_server_connection() -> Connection:
    """The server side of a one-GET connection to a peer's upload server (1.9)."""
    return Connection(Role.SERVER, response_framing, keep_alive=False)


def upload_client_connection() -> Connection:
    return Connection(Role.CLIENT, response_framing, keep_alive=False)


# Headers of each request, in the handout's order (2.2, 3).
_SENT = {
    Method.ADD: ("Host", "Port", "Title"),
    Method.LOOKUP: ("Host", "Port", "Title"),
    Method.REMOVE: ("Host", "Port", "Title"),
    Method.LIST: ("Host", "Port"),
    Method.GET: ("Host", "OS"),
}


def to_event(req: CIRequest) -> Request:
    """The handout's exact request for ``req`` (headers in the handout's order).

    A field that is None is left out, except GET's OS, which is always sent.

    Raises:
        LocalProtocolError: ``req`` lacks its RFC number or a header its method requires.
    """
    if req.rfc is None and req.method is not Method.LIST:
        raise LocalProtocolError(f"{req.method} needs an RFC number")
    target = "ALL" if req.method is Method.LIST else f"RFC {req.rfc}"
    values = {"Host": req.host, "Port": None if req.port is None else str(req.port),
              "Title": req.title, "OS": req.os or ""}
    headers = tuple((name, value) for name in _SENT[req.method]
                    if (value := values[name]) is not None)
    for name in _REQUIRED[req.method]:
        if not values[name]:
            raise LocalProtocolError(f"{req.method} needs a {name} header")
    return Request(req.method.value, target, VERSION, headers)


def interpret(req: Request) -> CIRequest | Rejected:
    """Validate a framed request as P2P-CI; never raises."""
    return checked(req, VERSION, _interpret)


def _interpret(req: Request) -> CIRequest:
    try:
        method = Method(req.method.upper())
    except ValueError:
        raise RemoteProtocolError(f"unknown method {req.method[:20]!r}") from None
    fields = {name.lower(): value for name, value in req.headers}  # the last copy wins
    for name in _REQUIRED[method]:
        if not fields.get(name.lower()):
            raise RemoteProtocolError(f"{method} needs a {name} header")
    return CIRequest(
        method,
        _target(method, req.target),
        _host(fields.get("host")),
        _port(fields.get("port")),
        _bounded(fields.get("title"), limits.MAX_TITLE, "Title"),
        _bounded(fields.get("os"), limits.MAX_OS, "OS"),
    )


def _target(method: Method, target: str) -> int | None:
    if method is Method.LIST:
        if target.upper() != "ALL":
            raise RemoteProtocolError("LIST takes ALL")
        return None
    m = _TARGET.match(target)
    if m is None:
        raise RemoteProtocolError("target must be RFC <number>")
    return parse_int(m.group(1), "RFC number", limits.MIN_RFC_NUMBER, limits.MAX_RFC_NUMBER)


def _host(value: str | None) -> str:
    host = _bounded(value, limits.MAX_HOSTNAME, "Host") or ""
    if _WHITE.search(host) is not None:
        raise RemoteProtocolError("Host holds white space")
    return host


def _port(value: str | None) -> int | None:
    return None if value is None else parse_int(value.strip(), "Port", 1, limits.MAX_PORT)


def _bounded(value: str | None, limit: int, what: str) -> str | None:
    if value is not None and len(value) > limit:
        raise RemoteProtocolError(f"{what} longer than {limit} characters")
    return value


# ----------------------------------------------------------------------------- responses
def p2s_response(status: Status) -> Response:
    """A P2S status line: body lines follow for a 200 (2.3)."""
    return Response(int(status), VERSION)


def file_response(size: int, mtime: float, os_name: str, now: float | None = None) -> Response:
    """A 200 to GET with the five headers in the handout's order (3)."""
    headers: Headers = (
        ("Date", http_date(now)),
        ("OS", os_name),
        ("Last-Modified", http_date(mtime)),
        ("Content-Length", str(size)),
        ("Content-Type", CONTENT_TYPE),
    )
    return Response(int(Status.OK), VERSION, headers)


def upload_error(status: Status, os_name: str, now: float | None = None) -> Response:
    """A 400/404/505 to GET: status, Date and OS, blank line, no data (3)."""
    return Response(int(status), VERSION, (("Date", http_date(now)), ("OS", os_name)))


# --------------------------------------------------------------------------- quick path
# The index server's answer to its commonest request, without the general path's layers
# (README, benchmark 2). ``quick_lookup`` recognises one LOOKUP written the way the handout
# and p2pshare's own client write it (exact version, Host, Port, optional Title, in that
# order, printable ASCII) and nothing else: every other spelling the codec accepts, and
# everything it refuses, gets None and takes the general path. It never accepts a request
# the general path would refuse or read differently; tests/protocol/test_ci_quick.py checks
# the two paths against each other.
_QUICK_LOOKUP = re.compile(
    rb"LOOKUP RFC ([1-9][0-9]{0,%d}) P2P-CI/1\.0\r\n"
    rb"Host: [!-~]{1,%d}\r\n"
    rb"Port: ([1-9][0-9]{0,4})\r\n"
    rb"(?:Title: [ -~]{0,%d}\r\n)?"
    rb"\r\n" % (len(str(limits.MAX_RFC_NUMBER)) - 1, limits.MAX_HOSTNAME, limits.MAX_TITLE))
# the heads as the codec encodes them (a P2S head is its status line and a blank line)
_LOOKUP_FOUND, _LOOKUP_NOT_FOUND = (_response_head(p2s_response(s))
                                    for s in (Status.OK, Status.NOT_FOUND))


def quick_lookup(data: bytes) -> int | None:
    """The RFC number if ``data`` is exactly one LOOKUP in the common form, else None."""
    m = _QUICK_LOOKUP.fullmatch(data)
    if m is None or int(m[2]) > limits.MAX_PORT or int(m[1]) > limits.MAX_RFC_NUMBER:
        return None
    return int(m[1])


def lookup_answer(lines: list[bytes]) -> bytes:
    """The whole P2S reply to a LOOKUP whose records are ``lines``: 200 with them, or 404."""
    if not lines:
        return _LOOKUP_NOT_FOUND
    return b"".join([_LOOKUP_FOUND, b"\r\n".join(lines), b"\r\n\r\n"])
