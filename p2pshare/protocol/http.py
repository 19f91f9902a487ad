"""HTTP/1.1, server side, for small requests: the dashboard, /metrics, a BitTorrent tracker.

Strategy: HTTP/1.1 messages are framed like every other p2pshare message (start line,
``Name: value`` headers, blank line, Content-Length body), so ``HttpConnection`` is the
shared ``Connection`` (heads found by ``_heads.HeadReader``, parsed by
``_grammar.parse_head``: the one head grammar and its limits) with the HTTP rules that
decide framing checked as each request head arrives (``check_request``, RFC 9112):

* the version: ``HTTP/1.1`` or ``HTTP/1.0``; another ``HTTP/x.y`` is a 505, anything else
  (``http/1.1`` too: the name is case-sensitive) a 400 (section 2.3);
* the request line has exactly three words (section 3); a target longer than
  ``MAX_HTTP_TARGET`` is a 414 (section 3);
* no white space between a header's name and its colon (section 5.1: a 400; the head
  grammar of the other protocols tolerates it, but a proxy in front may read
  ``Content-Length : 5`` as another header and forward no body: request smuggling);
* HTTP/1.1 needs exactly one Host header, HTTP/1.0 at most one (section 3.2);
* a Transfer-Encoding is a 501: we read bodies by Content-Length only, and a body we did
  not frame would be read as the next request (section 6.1, request smuggling);
* a Content-Length over ``MAX_HTTP_BODY`` is a 413 (RFC 9110 section 15.5.14).

Each of those is a ``RemoteProtocolError`` with its status: the server answers it and
closes, as after any framing error. Keep-alive follows RFC 9112 section 9.3: HTTP/1.1
stays open unless ``Connection: close``; HTTP/1.0 closes unless ``Connection:
keep-alive``; the ``Connection`` state machine then closes after the answer.

What the target means is ``interpret``'s: origin form (``/path?query``) or absolute form
(``http://host/path?query``), percent-decoded strictly (a ``%`` not followed by two hex
digits is a 400) into a text path and a query of raw byte values (a BitTorrent
``info_hash=%12%ab...`` is 20 arbitrary bytes, not text), ``+`` read as a space as HTML
forms write it (RFC 3986 and the WHATWG URL standard's urlencoded parser). A bad target is
a 400 and a close. ``response`` builds an answer's events: status line, Content-Type,
Content-Length, ``Connection: close`` when the connection ends after it, and no body for
HEAD (RFC 9110 section 9.3.2). An answer we send with ``Connection: close`` (an error,
a handler's 500) ends the connection whatever the request asked (RFC 9112 section 9.6).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from .. import limits
from ..errors import LocalProtocolError, RemoteProtocolError, Status
from ._connection import Connection, Role, State
from ._events import Data, EndOfMessage, Event, Request, Response, _Sentinel
from ._grammar import Headers, content_length, is_version
from ._heads import HeadReader

__all__ = ["HTTP_11", "HttpConnection", "HttpRequest", "Query", "check_request",
           "error_response", "interpret", "keeps_alive", "response"]

HTTP_11 = "HTTP/1.1"
_VERSIONS = ("HTTP/1.1", "HTTP/1.0")
Query = dict[str, list[bytes]]  # field name -> every value given for it, raw bytes
_ANY_LENGTH = 2**62  # a Content-Length read before MAX_HTTP_BODY judges it (a 413)

# A ``%`` not followed by two hex digits; characters a target may not hold (RFC 3986:
# visible ASCII only; ``#`` starts a fragment, which a client never sends).
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_BAD_CHAR = re.compile(r"[^\x21-\x7e]|#")
_ABSOLUTE = re.compile(r"https?://[^/?]*", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_PHRASES = {
    Status.OK: "OK",
    Status.VERSION_NOT_SUPPORTED: "HTTP Version Not Supported",
    500: "Internal Server Error",
}


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What a request asks for, decoded.

    Attributes:
        method: as sent (methods are case-sensitive: RFC 9110 section 9.1).
        path: the percent-decoded path, UTF-8 text, starting with ``/``.
        query: each field's values in order, percent-decoded raw bytes.
    """

    method: str
    path: str
    query: Query


class HttpConnection(Connection):
    """The server side of one HTTP/1.1 connection (``Connection`` with HTTP's rules)."""

    def __init__(self) -> None:
        # Content-Length is bounded by check_request (a 413), not by the generic 400.
        super().__init__(Role.SERVER, max_request_body=_ANY_LENGTH)
        self._heads = HeadReader(of_responses=False, strict_names=True)

    def next_event(self) -> Event | _Sentinel:
        """As ``Connection.next_event``; a request head is checked by ``check_request``.

        Raises:
            RemoteProtocolError: bad framing, or a request ``check_request`` refuses (with
                its status); the connection is unusable.
        """
        event = super().next_event()
        if isinstance(event, Request):
            try:
                check_request(event)
            except RemoteProtocolError:
                self.states[self.their_role] = State.ERROR
                raise
            self.keep_alive = keeps_alive(event)
        return event

    def send(self, event: Event) -> bytes:
        """As ``Connection.send``; the answer to HEAD has a Content-Length but no body:
        its Data events are dropped (RFC 9110 section 9.3.2)."""
        head = self.request is not None and self.request.method == "HEAD"
        if head and isinstance(event, Data) and self.our_state is State.SEND_BODY:
            return b""
        if isinstance(event, Response) and "close" in _connection_tokens(event.headers):
            self.keep_alive = False  # we said we close: we do (RFC 9112 section 9.6)
        data = super().send(event)
        if head and isinstance(event, Response):
            self.note_body_sent(content_length(event.headers, _ANY_LENGTH) or 0)
        return data


def check_request(request: Request) -> None:
    """The framing rules of an HTTP/1.1 request head (module docstring).

    Raises:
        RemoteProtocolError: with status 400, 413, 414, 501 or 505.
    """
    version = request.version
    if version not in _VERSIONS:
        http_like = version.startswith("HTTP/") and is_version(version)  # case-sensitive
        raise RemoteProtocolError(f"version {version[:20]!r}", Status.VERSION_NOT_SUPPORTED
                                  if http_like else Status.BAD_REQUEST)
    if not request.target or " " in request.target:
        raise RemoteProtocolError("request line must be METHOD TARGET VERSION")
    if len(request.target) > limits.MAX_HTTP_TARGET:
        raise RemoteProtocolError("request target too long", Status.URI_TOO_LONG)
    headers = request.headers
    hosts = sum(name.lower() == "host" for name, _ in headers)
    if hosts > 1 or (hosts == 0 and version == HTTP_11):
        raise RemoteProtocolError("a request has one Host header (HTTP/1.0: at most one)")
    if any(name.lower() == "transfer-encoding" for name, _ in headers):
        raise RemoteProtocolError("Transfer-Encoding is not supported", Status.NOT_IMPLEMENTED)
    length = content_length(headers, _ANY_LENGTH) or 0
    if length > limits.MAX_HTTP_BODY:
        raise RemoteProtocolError(f"body of {length} bytes", Status.CONTENT_TOO_LARGE)


def keeps_alive(request: Request) -> bool:
    """Whether the connection stays open after answering ``request`` (RFC 9112 9.3)."""
    tokens = _connection_tokens(request.headers)
    if "close" in tokens:
        return False
    return request.version == HTTP_11 or "keep-alive" in tokens


def _connection_tokens(headers: Headers) -> set[str]:
    """The options of every Connection header, lower case."""
    return {token.strip().lower() for name, value in headers
            if name.lower() == "connection" for token in value.split(",")}


def interpret(request: Request) -> HttpRequest:
    """Decode ``request``'s target (module docstring).

    Raises:
        RemoteProtocolError: (400) a character a target may not hold, a bad escape, a
            path that is not UTF-8 or holds a control character, a field name that is not
            UTF-8, more than ``MAX_QUERY_FIELDS`` fields.
    """
    target = request.target
    if _BAD_CHAR.search(target) or _BAD_ESCAPE.search(target):
        raise RemoteProtocolError("malformed request target")
    absolute = _ABSOLUTE.match(target)
    if absolute is not None:
        target = target[absolute.end():] or "/"
    raw_path, _, raw_query = target.partition("?")
    if not raw_path.startswith("/"):
        raise RemoteProtocolError("request target must be a path")
    path = _text(urllib.parse.unquote_to_bytes(raw_path), "path")
    return HttpRequest(request.method, path, parse_query(raw_query))


def parse_query(raw: str) -> Query:
    """``a=1&b=%ff&a`` -> ``{"a": [b"1", b""], "b": [b"\\xff"]}``.

    Raises:
        RemoteProtocolError: (400) a bad escape, a name that is not UTF-8, too many fields.
    """
    if _BAD_ESCAPE.search(raw):
        raise RemoteProtocolError("malformed query")
    fields = [field for field in raw.split("&") if field]
    if len(fields) > limits.MAX_QUERY_FIELDS:
        raise RemoteProtocolError(f"more than {limits.MAX_QUERY_FIELDS} query fields")
    query: Query = {}
    for field in fields:
        name, _, value = field.partition("=")
        key = _text(_unquote_plus(name), "query field name")
        query.setdefault(key, []).append(_unquote_plus(value))
    return query


def _unquote_plus(text: str) -> bytes:
    return urllib.parse.unquote_to_bytes(text.replace("+", " "))


def _text(raw: bytes, what: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"{what} is not UTF-8") from None
    if _CONTROL.search(text):
        raise RemoteProtocolError(f"{what} holds a control character")
    return text


def response(request: Request, status: int, content_type: str, body: bytes,
             headers: Headers = ()) -> list[Event]:
    """The events answering ``request``: head, body, end (``HttpConnection`` sends no body
    for HEAD).

    Raises:
        LocalProtocolError: a status outside 200..599.
    """
    if not 200 <= status <= 599:
        raise LocalProtocolError(f"status {status} is not a final status")
    head: Headers = (("Content-Type", content_type), ("Content-Length", str(len(body))),
                     *headers)
    if not keeps_alive(request):
        head += (("Connection", "close"),)
    return [Response(status, HTTP_11, head, phrase(status)), Data(body), EndOfMessage()]


def error_response(status: int) -> list[Event]:
    """The answer to a request that broke a rule: a short text body, then the close."""
    body = f"{status} {phrase(status)}\n".encode()
    return [Response(status, HTTP_11, (("Content-Type", "text/plain; charset=utf-8"),
                                       ("Content-Length", str(len(body))),
                                       ("Connection", "close")), phrase(status)),
            Data(body), EndOfMessage()]


def phrase(status: int) -> str:
    """The reason phrase of ``status`` in HTTP (RFC 9110 section 15)."""
    if status in _PHRASES:
        return _PHRASES[status]
    try:
        return Status(status).phrase
    except ValueError:
        return "Unknown"
