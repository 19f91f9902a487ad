"""A sans-IO connection: bytes in, events out; events in, bytes out.

Strategy (after h11): one ``Connection`` object per TCP connection keeps two state
machines, one per role, driven by an explicit transition table. Reading and writing are
separate: ``receive_data``/``next_event`` parse what the other side sent, ``send`` encodes
what we send and checks that it is legal now. Nothing here touches a socket.

Every message is a head (start line, ``Name: value`` headers, blank line) and a body.
Requests carry a body only with Content-Length. Responses are framed in one of two ways
(``Framing``), chosen per request by the ``framing_for`` callable, because P2P-CI's P2S
responses (status, blank, data lines, blank) are not self-describing.

Heads are found by ``_heads.HeadReader`` and parsed by ``_grammar.parse_head``, the one head
grammar and set of head limits (the pipelined swarm client reads heads through the same
two). Tolerance when reading (docs/p2p-ci.md#tolerances): bare LF line ends; blank lines
before a start line are skipped (A3's optional extra CRLF); a P2S 200 whose first line after
the status is data, not blank (A1); a P2S body whose terminating blank line never comes ends
on ``receive_pause()`` (A2) or when the next status line appears, and a last line without
its line end then counts as a line; a P2S error's data part is empty, so its message ends
right after ``status CRLF CRLF`` (A3); a GET response whose body starts without the blank
line, once Content-Length is known (handout example).

What is fatal when reading (``RemoteProtocolError``, the connection is unusable): going
over a limit, a head line that is not ``Name: value``, a control character, a bad
Content-Length, a request line of fewer than two words. Everything else about a request's
start line and header values (unknown method, missing target, text that is not UTF-8) is
left to the protocol module, which answers 400 or 505 and keeps the connection.

Strict when writing: exactly the handout's grammar. ``send`` first checks the transition
table, then the event itself (tokens, no CR/LF or control characters anywhere, a sane
Content-Length); any failure raises ``LocalProtocolError`` and puts our side in ERROR.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum

from .. import limits
from ..errors import LocalProtocolError, RemoteProtocolError, Status
from ._buffer import ReceiveBuffer, strip_eol
from ._events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Framing,
    Lines,
    Request,
    Response,
    _Sentinel,
)
from ._grammar import (
    Headers,
    check_text,
    check_token,
    check_word,
    content_length,
    encode_head,
    is_version,
    parse_status_line,
    request_start,
    status_start,
)
from ._heads import HeadReader


class Role(Enum):
    CLIENT = "client"
    SERVER = "server"
    # Members are singletons: identity hashing is correct and far cheaper than Enum's
    # name hashing on the hot path (state-table lookups on every event).
    __hash__ = object.__hash__


class State(Enum):
    IDLE = "idle"
    SEND_BODY = "send_body"
    DONE = "done"
    MUST_CLOSE = "must_close"
    CLOSED = "closed"
    ERROR = "error"
    __hash__ = object.__hash__


_C, _S = Role.CLIENT, Role.SERVER
_OPEN = (State.IDLE, State.DONE, State.MUST_CLOSE)

# (role that emits the event, that role's state, event type) -> that role's next state.
# Any triple missing here is illegal: sending it raises LocalProtocolError.
TRANSITIONS: dict[tuple[Role, State, type[Event]], State] = {
    (_C, State.IDLE, Request): State.SEND_BODY,
    (_C, State.SEND_BODY, Data): State.SEND_BODY,
    (_C, State.SEND_BODY, EndOfMessage): State.DONE,
    (_S, State.IDLE, Response): State.SEND_BODY,
    (_S, State.SEND_BODY, Data): State.SEND_BODY,
    (_S, State.SEND_BODY, Lines): State.SEND_BODY,
    (_S, State.SEND_BODY, EndOfMessage): State.DONE,
    **{(r, s, ConnectionClosed): State.CLOSED for r in Role for s in _OPEN},
}


def _other(role: Role) -> Role:
    return _S if role is _C else _C


class Connection:
    """One side of one connection.

    Args:
        our_role: CLIENT sends requests, SERVER sends responses.
        framing_for: how the response to a given request is framed.
        keep_alive: False for one-exchange connections (P2P GET): after one request and
            its response both sides are MUST_CLOSE.
        default_framing: framing of a response sent after a request we could not parse.
        max_request_body: largest request body accepted (Content-Length).
        max_response_body: largest response body accepted.
    """

    def __init__(
        self,
        our_role: Role,
        framing_for: Callable[[Request], Framing] = lambda _r: Framing.LENGTH,
        *,
        keep_alive: bool = True,
        default_framing: Framing = Framing.LENGTH,
        max_request_body: int = limits.MAX_REQUEST_BODY,
        max_response_body: int = 2**62,
    ) -> None:
        self.our_role = our_role
        self.their_role = _other(our_role)
        self.keep_alive = keep_alive
        self.states = {Role.CLIENT: State.IDLE, Role.SERVER: State.IDLE}
        self._framing_for = framing_for
        self._default_framing = default_framing
        self._max_body = {_C: max_request_body, _S: max_response_body}
        self._buf = ReceiveBuffer()
        self._eof = False
        self._paused = False
        self.request: Request | None = None  # the current cycle's request
        self._status = 0  # status of the response in this cycle
        self._framing = default_framing
        self._heads = HeadReader(of_responses=self.their_role is _S)
        self._in_left: int | None = 0  # incoming body bytes left; None = until EOF
        self._in_lines = 0
        self._end_pending = False
        self._out_left: int | None = 0  # outgoing body bytes left; None = unbounded

    # ------------------------------------------------------------------ state
    @property
    def our_state(self) -> State:
        return self.states[self.our_role]

    @property
    def their_state(self) -> State:
        return self.states[self.their_role]

    @property
    def at_rest(self) -> bool:
        """Between requests with nothing buffered: the next bytes start a new request."""
        return (self.states[_C] is State.IDLE and self.states[_S] is State.IDLE
                and not self._buf and not self._heads.started and not self._eof)

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not yet parsed, and whether the other side closed (as h11)."""
        return self._buf.peek(), self._eof

    def _advance(self, role: Role, event: Event) -> None:
        key = (role, self.states[role], type(event))
        if key not in TRANSITIONS:
            self.states[role] = State.ERROR
            raise LocalProtocolError(f"{role.value} cannot emit {type(event).__name__} in "
                                     f"state {key[1].value}")
        self.states[role] = TRANSITIONS[key]
        self._maybe_next_cycle()

    def _maybe_next_cycle(self) -> None:
        if self.states[_C] is State.DONE and self.states[_S] is State.DONE:
            nxt = State.IDLE if self.keep_alive else State.MUST_CLOSE
            self.states = {_C: nxt, _S: nxt}
            self.request = None

    # ------------------------------------------------------------------ reading
    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the socket; ``b""`` means the other side closed."""
        if data:
            self._buf.feed(data)
            self._paused = False  # the silence is over
        else:
            self._eof = True

    def receive_pause(self) -> None:
        """The other side has been silent a while: end a P2S reply that lacks its blank line.

        Only a LINES-framed reply is ended this way (A2). The pause holds until bytes
        arrive: one silence ends both a head without its blank line and an empty body.
        """
        self._paused = True

    def next_event(self) -> Event | _Sentinel:
        """Parse the next event from received bytes.

        Returns:
            An event, ``NEED_DATA`` (feed more bytes) or ``PAUSED`` (the other side's next
            message waits until ours is sent).

        Raises:
            RemoteProtocolError: the bytes break the protocol; the connection is unusable.
        """
        if self.their_state is State.ERROR:
            raise RemoteProtocolError("cannot read after a protocol error")
        try:
            event = self._read()
        except RemoteProtocolError:
            self.states[self.their_role] = State.ERROR
            raise
        if not isinstance(event, _Sentinel) and self.their_state is not State.CLOSED:
            self._advance(self.their_role, event)
        return event

    def _read(self) -> Event | _Sentinel:
        state = self.their_state
        if state is State.CLOSED:
            return ConnectionClosed()
        waiting_for_request = self.their_role is _S and self.our_state in (State.IDLE,
                                                                           State.MUST_CLOSE)
        if state in (State.DONE, State.MUST_CLOSE) or waiting_for_request:
            return self._read_eof_only()
        if state is State.IDLE:
            return self._read_head()
        return self._read_body()

    def _read_eof_only(self) -> Event | _Sentinel:
        self._buf.skip_blank_lines()  # A3's extra CRLF after a reply that already ended
        if self._eof and not self._buf:
            return ConnectionClosed()
        return PAUSED

    # --- heads
    def _read_head(self) -> Event | _Sentinel:
        head = self._heads.read(self._buf, self._framing, self._max_body[_S], eof=self._eof,
                                paused=self._paused)
        if not isinstance(head, tuple):
            return head
        start, headers = head
        if self.their_role is _C:
            return self._request_head(Request(*request_start(start), headers))
        version, status, reason = status_start(start)
        length = content_length(headers, self._max_body[_S])
        self._in_lines = 0
        self._status = status
        # A 200 without Content-Length runs until EOF; an error without one has no body.
        self._in_left = length if status == Status.OK else (length or 0)
        return Response(status, version, headers, reason)

    def _request_head(self, request: Request) -> Request:
        length = content_length(request.headers, self._max_body[_C])
        self._in_lines = 0
        self.request = request
        self._framing = self._framing_for(request)
        self._in_left = length or 0
        return request

    # --- bodies
    def _read_body(self) -> Event | _Sentinel:
        if self.their_role is _S and self._framing is Framing.LINES:
            return self._read_lines()
        if self._in_left == 0:
            return EndOfMessage()
        wanted = self._in_left if self._in_left is not None else limits.RECV_CHUNK
        chunk = self._buf.extract_bytes(wanted)
        if chunk:
            if self._in_left is not None:
                self._in_left -= len(chunk)
            return Data(chunk)
        if self._eof:
            if self._in_left is None:
                return EndOfMessage()
            raise RemoteProtocolError(f"connection closed with {self._in_left} body bytes due")
        return NEED_DATA

    def _read_lines(self) -> Event | _Sentinel:
        if self._end_pending or self._status != Status.OK:  # A3: an error has no data part
            self._end_pending = False
            return EndOfMessage()
        lines: list[bytes] = []
        while (raw := self._buf.peek_line(limits.MAX_LINE)) is not None:
            line = strip_eol(raw)
            if line.startswith(b"P2P-") and _looks_like_status(line):
                return self._lines_then_end(lines)  # the next reply began (A2)
            self._buf.extract_bytes(len(raw))
            if not line:
                return self._lines_then_end(lines)
            lines.append(line)
            self._count_lines()
        if lines:
            return Lines(tuple(lines))
        if self._eof or self._paused:  # A2: no blank line came; a last line may lack its end
            rest = self._buf.extract_bytes(len(self._buf)).removesuffix(b"\r")
            return self._lines_then_end([rest] if rest else [])
        return NEED_DATA

    def _count_lines(self) -> None:
        self._in_lines += 1
        if self._in_lines > limits.MAX_RESPONSE_LINES:
            raise RemoteProtocolError("too many data lines")

    def _lines_then_end(self, lines: list[bytes]) -> Event:
        if lines:
            self._end_pending = True
            return Lines(tuple(lines))
        return EndOfMessage()

    # ------------------------------------------------------------------ writing
    def send(self, event: Event) -> bytes:
        """Encode ``event`` for the wire.

        Raises:
            LocalProtocolError: the event is not legal in the current state, or malformed
                (our side then is in ERROR, as in h11).
        """
        key = (self.our_role, self.our_state, type(event))
        try:
            if key not in TRANSITIONS:
                raise LocalProtocolError(f"{self.our_role.value} cannot send "
                                         f"{type(event).__name__} in state {key[1].value}")
            data = self._encode(event)
        except LocalProtocolError:
            self.states[self.our_role] = State.ERROR
            raise
        self._advance(self.our_role, event)
        return data

    def send_all(self, *events: Event) -> bytes:
        return b"".join(self.send(e) for e in events)

    def note_body_sent(self, count: int) -> None:
        """Account for ``count`` body bytes we sent ourselves (``sendfile``)."""
        if self.our_state is not State.SEND_BODY:
            raise LocalProtocolError("no body is being sent")
        self._spend(count)

    def _spend(self, count: int) -> None:
        if self._out_left is not None:
            if count > self._out_left:
                raise LocalProtocolError("body longer than its Content-Length")
            self._out_left -= count

    def _encode(self, event: Event) -> bytes:
        if isinstance(event, Request):
            return self._encode_request(event)
        if isinstance(event, Response):
            return self._encode_response(event)
        if isinstance(event, Data):
            if self._out_framing() is Framing.LINES:
                raise LocalProtocolError("a LINES body is sent as Lines, not Data")
            self._spend(len(event.data))
            return event.data
        if isinstance(event, Lines):
            return self._encode_lines(event)
        if isinstance(event, EndOfMessage):
            return self._encode_end()
        return b""

    def _out_framing(self) -> Framing:
        return Framing.LENGTH if self.our_role is _C else self._framing

    def _encode_request(self, req: Request) -> bytes:
        check_token(req.method, "method")
        check_text(req.target, "target")
        check_word(req.version, "version")
        self._out_left = _own_length(req.headers) or 0
        self.request = req
        self._framing = self._framing_for(req)
        self._paused = False  # a silence before our request does not end its reply
        start = " ".join(part for part in (req.method, req.target, req.version) if part)
        return encode_head(start, req.headers) + b"\r\n"

    def _encode_response(self, resp: Response) -> bytes:
        answered = self.request is not None and self.their_state is State.CLOSED
        if self.their_state not in (State.DONE, State.ERROR) and not answered:
            raise LocalProtocolError("a response must follow a whole request")
        if self.request is None:
            self._framing = self._default_framing
        self._status = resp.status
        # P2S replies have no headers: a handful of distinct heads, each encoded once.
        head = _response_head(resp) if resp.headers else _bare_head(resp)
        self._out_left = _own_length(resp.headers) if resp.headers else None
        if self._framing is Framing.LENGTH and self._out_left is None and resp.status != 200:
            self._out_left = 0
        return head

    def _encode_lines(self, event: Lines) -> bytes:
        if self._out_framing() is not Framing.LINES or self._status != Status.OK:
            raise LocalProtocolError("data lines belong only in a 200 P2S response")
        for line in event.lines:
            if b"\n" in line or b"\r" in line or not line:
                raise LocalProtocolError("a data line must be non-empty and hold no CR/LF")
            if line.startswith(b"P2P-") and _looks_like_status(line):
                raise LocalProtocolError("a data line must not read as a status line")
        return b"".join(line + b"\r\n" for line in event.lines)

    def _encode_end(self) -> bytes:
        if self.our_role is _S and self._framing is Framing.LINES:
            return b"\r\n" if self._status == Status.OK else b""
        if self._out_left:
            raise LocalProtocolError(f"body ended {self._out_left} bytes short")
        return b""


def _response_head(resp: Response) -> bytes:
    """A response's head, checked; raises LocalProtocolError."""
    if not (100 <= resp.status <= 999 and is_version(resp.version)):
        raise LocalProtocolError(f"bad status line {resp.version!r} {resp.status}")
    check_text(resp.reason, "reason")
    _own_length(resp.headers)
    reason = resp.reason or _phrase(resp.status)
    return encode_head(f"{resp.version} {resp.status} {reason}", resp.headers) + b"\r\n"


@functools.lru_cache(maxsize=64)
def _bare_head(resp: Response) -> bytes:
    """``_response_head`` of a response with no headers, memoised (a hot path)."""
    return _response_head(resp)


def _own_length(headers: Headers) -> int | None:
    """The Content-Length of a message we send; checks the headers on the way."""
    for name, value in headers:
        check_token(name, "header name")
        check_text(value, "header value")
    try:
        return content_length(headers, 2**62)
    except RemoteProtocolError as exc:
        raise LocalProtocolError(str(exc)) from None


def _looks_like_status(line: bytes) -> bool:
    try:
        parse_status_line(line)
    except RemoteProtocolError:
        return False
    return True


def _phrase(status: int) -> str:
    try:
        return Status(status).phrase
    except ValueError:
        return "Unknown"
