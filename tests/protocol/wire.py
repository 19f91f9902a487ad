"""Feeding codecs in every way: whole, byte by byte, with trailing bytes (after h11's tr()).

Strategy: a test names a connection factory, the bytes of one message and the events they
must give. ``tr`` feeds them whole, one byte at a time, and followed by the start of the
next message, and checks that each way gives the same events (runs of ``Data`` and of
``Lines`` are joined, since how a body is cut depends on how bytes arrive) and that the
trailing bytes are left untouched. ``drive`` plays the other side's part just enough for
the exchange to go on, for the "random bytes" properties.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

from p2pshare.errors import RemoteProtocolError
from p2pshare.protocol import (
    NEED_DATA,
    PAUSED,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Lines,
    Request,
    Response,
    Role,
    State,
)
from p2pshare.protocol._events import _Sentinel

# How a message that is not self-delimiting ends: it is (none), the other side goes
# silent (pause, A2), or closes (eof).
Ending = Literal["none", "pause", "eof"]
Factory = Callable[[], Connection]


def available(conn: Connection) -> list[Event]:
    """Every event the received bytes make, up to NEED_DATA, PAUSED or the close."""
    out: list[Event] = []
    while not isinstance(event := conn.next_event(), _Sentinel):
        out.append(event)
        if isinstance(event, ConnectionClosed):
            break
    return out


def events_of(conn: Connection, chunks: Iterable[bytes], end: Ending = "none") -> list[Event]:
    """Feed ``chunks`` one by one, then the ending; the events, joined (``merged``)."""
    out: list[Event] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        out += available(conn)
    if end == "eof":
        conn.receive_data(b"")
    elif end == "pause":
        conn.receive_pause()
    if end != "none":
        out += available(conn)
    return merged(out)


def merged(events: Iterable[Event]) -> list[Event]:
    """Join consecutive Data and consecutive Lines events; drop empty ones."""
    out: list[Event] = []
    for event in events:
        if event in (Data(b""), Lines(())):
            continue
        last = out[-1] if out else None
        if isinstance(event, Data) and isinstance(last, Data):
            out[-1] = Data(last.data + event.data)
        elif isinstance(event, Lines) and isinstance(last, Lines):
            out[-1] = Lines(last.lines + event.lines)
        else:
            out.append(event)
    return out


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


def tr(make: Factory, data: bytes, expected: list[Event], *, end: Ending = "none",
       trailing: bytes = b"") -> None:
    """``data`` gives ``expected`` whole, byte by byte and (if given) before ``trailing``.

    ``trailing`` starts the next message: for a message that ends only by a pause or a
    close, it is what ends it instead (a next status line, A2).
    """
    assert events_of(make(), [data], end) == expected
    assert events_of(make(), byte_by_byte(data), end) == expected
    if trailing:
        conn = make()
        assert events_of(conn, [data + trailing]) == expected
        assert conn.trailing_data == (trailing, False)


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` cut at the given offsets (taken modulo its length, in any order)."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


def client_after(make: Factory, request: Request) -> Connection:
    """A client connection that has sent ``request`` whole and waits for its response."""
    conn = make()
    conn.send_all(request, EndOfMessage())
    return conn


# ------------------------------------------------------------------------ driving a peer
def drive(conn: Connection, chunks: Iterable[bytes], *, pause: bool = False,
          eof: bool = False, next_request: Request | None = None) -> list[Event]:
    """Feed ``chunks`` and play our part so the exchange goes on; stop at a protocol error.

    A server answers each request with 400; a client sends ``next_request`` each time its
    previous exchange ended. Only events, NEED_DATA, PAUSED and RemoteProtocolError may
    come out of the codec: anything else propagates and fails the test.
    """
    out: list[Event] = []
    try:
        for chunk in chunks:
            conn.receive_data(chunk)
            out += _take(conn, next_request)
            if pause:
                conn.receive_pause()
                out += _take(conn, next_request)
        if eof:
            conn.receive_data(b"")
            out += _take(conn, next_request)
    except RemoteProtocolError as exc:
        assert conn.their_state is State.ERROR
        assert 400 <= exc.status <= 599
    return out


def _take(conn: Connection, next_request: Request | None) -> list[Event]:
    out: list[Event] = []
    for _ in range(10_000):  # each turn consumes bytes or sends; a bound guards a bug
        event = conn.next_event()
        if event is NEED_DATA or isinstance(event, ConnectionClosed):
            return out
        if event is PAUSED:
            if not _our_turn(conn, next_request):
                return out
            continue
        assert isinstance(event, (Request, Response, Data, Lines, EndOfMessage))
        out.append(event)
    raise AssertionError("the codec made no progress")


def _our_turn(conn: Connection, next_request: Request | None) -> bool:
    """Send what lets the other side's next message be read; False if nothing can."""
    if conn.our_state is not State.IDLE:
        return False
    if conn.our_role is Role.SERVER:
        conn.send_all(Response(400, "P2P-CI/1.0"), EndOfMessage())
    elif next_request is not None:
        conn.send_all(next_request, EndOfMessage())
    else:
        return False
    return True
