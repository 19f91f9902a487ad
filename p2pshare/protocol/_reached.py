"""What kind of server a reply came from, named for a one-line error.

Strategy: a client that asked one kind of server and got a reply from another names what
it reached. The reply's head, parsed by the one head grammar, gives its version token
(``Response.version``); a reply that did not parse as a head is named from the first
token of its first line (``_grammar.split_blanks``, ``is_version``: no second parser),
read no further than the bytes the client kept (at most one line, ``MAX_LINE``). The
servers of p2pshare tell themselves apart by their replies: the registration server and
P2P-DI peers answer in P2P-DI/1.0; the index server in P2P-CI/1.0 with no headers; a
peer's upload server in P2P-CI/1.0 with its Date and OS headers; a swarm piece server in
P2P-SWARM/1.0 (the index server is the tracker, and answers P2P-CI requests in P2P-CI);
a web server in HTTP/1.x, or (Python's, to a request line it cannot read) in bare HTML.
Pure text.
"""

from __future__ import annotations

from ..errors import Status, WrongServer
from ._events import Response
from ._grammar import get_header, is_version, split_blanks

INDEX_SERVER = "a P2P-CI/1.0 index server"
UPLOAD_SERVER = "a P2P-CI/1.0 upload server (a peer's upload port?)"
_KINDS = {
    "P2P-DI/1.0": "a P2P-DI/1.0 server (a registration server or a P2P-DI peer?)",
    "P2P-SWARM/1.0": "a P2P-SWARM/1.0 server (a swarm piece server?)",
}
_SHOWN = 60  # characters of a foreign first line quoted


def server_kind(reply: Response) -> str:
    """The kind of server that sent ``reply``, for a message. A P2P-CI/1.0 error with an OS
    header is an upload server's (the index server's P2S replies have no headers)."""
    return _kind(reply.version, reply.status != Status.OK and
                 get_header(reply.headers, "OS") is not None)


def _kind(version: str, uploads: bool = False) -> str:
    token = version.upper()
    if token == "P2P-CI/1.0":
        return UPLOAD_SERVER if uploads else INDEX_SERVER
    if token.startswith("HTTP/"):
        return f"an HTTP server ({version[:12]})"
    return _KINDS.get(token, f"a {version[:40]} server")


def line_kind(opening: bytes, ours: str) -> str | None:
    """The kind of server whose reply began with ``opening``, from its first line; None if
    that line starts with our version ``ours`` (the reply is ours, only malformed)."""
    line = opening.split(b"\n", 1)[0].rstrip(b"\r")
    text = line.decode("utf-8", "replace")
    words = split_blanks(text)
    if not words:
        return "a server that sent no status line"
    if words[0].upper() == ours.upper():
        return None
    if is_version(words[0]):
        return _kind(words[0])
    if words[0].startswith("<"):  # an old web server answers a request it cannot read so
        return "an HTTP server (it answered with HTML)"
    return f"something that speaks no protocol of ours (its first line: {text[:_SHOWN]!r})"


def wrong_server(where: str, reached: str, wanted: str) -> str:
    """The one-line message: ``where``: reached ``reached``, not ``wanted``."""
    return f"{where}: reached {reached}, not {wanted}"


def foreign(opening: bytes, where: str, ours: str, wanted: str) -> WrongServer | None:
    """For a reply from ``where`` that broke protocol ``ours``: a WrongServer naming what
    its first line (``opening``) says we reached instead of ``wanted``, or None if that
    line is of ``ours`` (then the reply is only malformed)."""
    kind = line_kind(opening, ours)
    return None if kind is None else WrongServer(wrong_server(where, kind, wanted))
