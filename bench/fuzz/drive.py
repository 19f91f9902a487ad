"""Drive the sans-IO codecs over fuzzed bytes the way the asyncio layer drives them.

Strategy: one fuzz input is a control byte and a payload. The payload is what the other
side sent; the control byte says how it arrives (``reads``: whole, the first 256 bytes one
at a time, 7-byte pieces, line by line), whether a silence follows every read that left
the codec waiting (``receive_pause``, P2P-CI A2), and whether the input ends with a
silence before the close. ``serve`` plays a server (answers every whole request with what
``answer`` returns, and a framing error with what ``malformed`` returns, as
``net.protocol`` does); ``fetch`` plays a client (sends the next request whenever the
connection is idle and hands each whole reply to ``on_reply``).

A codec that keeps producing events without consuming bytes would hang a server: every
driver counts its steps and raises ``NoProgress`` (a finding) past a bound that is linear
in the input's length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from p2pshare.errors import LocalProtocolError, RemoteProtocolError
from p2pshare.protocol import (
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Lines,
    Request,
    Response,
    State,
)
from p2pshare.protocol._events import _Sentinel

Answer = Callable[[Request, bytes], list[Event]]
Malformed = Callable[[RemoteProtocolError], list[Event]]
OnReply = Callable[[int, Response, list[bytes], bytes], None]
RequestFor = Callable[[int], list[Event]]

BYTEWISE = 256  # bytes fed one at a time in mode 1 (more only slows every execution)
PIECE = 7  # bytes per read in mode 2: cuts CRLF pairs and headers at odd places


class NoProgress(Exception):
    """The codec made more events than its input can justify: it would spin for ever."""


def merged(events: list[Event]) -> list[Event]:
    """Runs of Data and of Lines joined, empty ones dropped: how bytes were cut into reads
    changes how a body is cut into events, and nothing else. (The same as the tests'
    ``wire.merged``; bench code does not import the test suite.)"""
    out: list[Event] = []
    for event in events:
        last = out[-1] if out else None
        if event in (Data(b""), Lines(())):
            continue
        if isinstance(event, Data) and isinstance(last, Data):
            out[-1] = Data(last.data + event.data)
        elif isinstance(event, Lines) and isinstance(last, Lines):
            out[-1] = Lines(last.lines + event.lines)
        else:
            out.append(event)
    return out


def split(data: bytes) -> tuple[int, bytes]:
    """(control byte, payload); an empty input has control 0."""
    return (data[0], data[1:]) if data else (0, b"")


def reads(ctl: int, payload: bytes) -> Iterator[bytes]:
    """The payload cut into reads as the control byte's low two bits say."""
    mode = ctl & 3
    if mode == 0:
        yield payload
    elif mode == 1:
        yield from (payload[i:i + 1] for i in range(min(len(payload), BYTEWISE)))
        yield payload[BYTEWISE:]
    elif mode == 2:
        yield from (payload[i:i + PIECE] for i in range(0, len(payload), PIECE))
    else:
        yield from payload.splitlines(keepends=True)


@dataclass(slots=True)
class Steps:
    """A bound on the events one input may produce."""

    left: int

    @classmethod
    def for_input(cls, payload: bytes) -> Steps:
        return cls(8 * len(payload) + 64)

    def take(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise NoProgress("events keep coming without input being consumed")


@dataclass(slots=True)
class _Message:
    head: Request | Response | None = None
    body: list[bytes] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)


def _feed(conn: Connection, ctl: int, payload: bytes, pump: Callable[[], bool]) -> None:
    """Feed the reads, pausing when the control byte says, then close; stop when done."""
    for chunk in reads(ctl, payload):
        conn.receive_data(chunk)
        if not pump():
            return
        if ctl & 4:
            conn.receive_pause()
            if not pump():
                return
    if ctl & 8:
        conn.receive_pause()
        if not pump():
            return
    conn.receive_data(b"")
    pump()


def serve(conn: Connection, data: bytes, answer: Answer, malformed: Malformed,
          seen: list[Event] | None = None) -> None:
    """Play the server: ``answer`` every whole request; a framing error ends the input.

    Every event read, then a framing error's status (as ``Response(status, "error")``), is
    appended to ``seen``, if given.
    """
    ctl, payload = split(data)
    steps, msg = Steps.for_input(payload), _Message()

    def pump() -> bool:
        while True:
            steps.take()
            event = conn.next_event()
            if isinstance(event, _Sentinel):  # NEED_DATA, or PAUSED: bytes past a
                return True  # one-exchange connection wait unread
            if seen is not None:
                seen.append(event)
            if isinstance(event, ConnectionClosed):
                return False
            if isinstance(event, Request):
                msg.head, msg.body = event, []
            elif isinstance(event, Data):
                msg.body.append(event.data)
            elif isinstance(event, EndOfMessage):
                assert isinstance(msg.head, Request)
                conn.send_all(*answer(msg.head, b"".join(msg.body)))

    try:
        _feed(conn, ctl, payload, pump)
    except RemoteProtocolError as exc:
        if seen is not None:
            seen.append(Response(exc.status, "error"))
        try:  # what net.protocol does: answer the error if the state allows, then close
            conn.send_all(*malformed(exc))
        except LocalProtocolError:
            pass


def fetch(conn: Connection, data: bytes, request_for: RequestFor, on_reply: OnReply,
          seen: list[Event] | None = None) -> None:
    """Play the client: send ``request_for(n)`` whenever idle, ``on_reply`` every reply.

    A ``RemoteProtocolError`` from the codec ends the input (the client closes). ``seen``
    gets what ``serve`` gives it.
    """
    ctl, payload = split(data)
    steps, msg = Steps.for_input(payload), _Message()
    sent = [0]

    def pump() -> bool:
        while True:
            steps.take()
            if conn.our_state is State.IDLE:
                conn.send_all(*request_for(sent[0]))
                sent[0] += 1
            event = conn.next_event()
            if isinstance(event, _Sentinel):  # NEED_DATA or PAUSED
                return True
            if seen is not None:
                seen.append(event)
            if isinstance(event, ConnectionClosed):
                return False
            if isinstance(event, Response):
                msg.head, msg.body, msg.lines = event, [], []
            elif isinstance(event, Data):
                msg.body.append(event.data)
            elif isinstance(event, Lines):
                msg.lines.extend(event.lines)
            elif isinstance(event, EndOfMessage):
                assert isinstance(msg.head, Response)
                on_reply(sent[0] - 1, msg.head, msg.lines, b"".join(msg.body))

    try:
        _feed(conn, ctl, payload, pump)
    except RemoteProtocolError as exc:
        if seen is not None:
            seen.append(Response(exc.status, "error"))
