"""Fuzz targets for P2P-CI: both sides of P2S (LINES framing) and of GET (LENGTH framing).

Each target takes one fuzz input and returns, or raises ``RemoteProtocolError`` (the
allowed outcome); anything else is a finding. Beyond "no crash", the server targets check
that what the index server would store from an accepted ADD reads back, through
``parse_record``, as the same record: what one peer may add, every peer can parse.
``ci_quick`` is differential: the index server's quick LOOKUP path against the codec.
"""

from __future__ import annotations

from collections.abc import Callable

from drive import fetch, merged, serve, split

from p2pshare.errors import RemoteProtocolError, Status
from p2pshare.protocol import PAUSED, Data, EndOfMessage, Event, Lines, Request, Response, ci
from p2pshare.protocol._grammar import get_header, parse_http_date

OS_NAME = "Linux 6.1"


def _p2s_answer(req: Request, _body: bytes) -> list[Event]:
    """What the index server answers (index.server), with one record for a good request."""
    parsed = ci.interpret(req)
    if isinstance(parsed, ci.Rejected):
        return [ci.p2s_response(parsed.status), EndOfMessage()]
    if parsed.method is ci.Method.GET:
        return [ci.p2s_response(Status.BAD_REQUEST), EndOfMessage()]
    record = ci.Record(parsed.rfc or 1, parsed.title or "t", parsed.host or "h",
                       parsed.port or 1)
    if parsed.method is ci.Method.ADD and parsed.title is not None:
        again = ci.parse_record(record.to_line())
        assert again == record, f"ADD stored {record!r}, a peer reads {again!r}"
    return [ci.p2s_response(Status.OK), Lines((record.to_line(),)), EndOfMessage()]


def _p2s_malformed(exc: RemoteProtocolError) -> list[Event]:
    return [ci.p2s_response(exc.status), EndOfMessage()]


def ci_server_p2s(data: bytes) -> None:
    """Index server: request bytes -> Connection(SERVER, LINES replies) -> interpret."""
    serve(ci.index_server_connection(), data, _p2s_answer, _p2s_malformed)


def _get_answer(req: Request, _body: bytes) -> list[Event]:
    """What a peer's upload server answers (peer.upload)."""
    parsed = ci.interpret(req)
    if isinstance(parsed, ci.Rejected):
        return [ci.upload_error(parsed.status, OS_NAME, 0), EndOfMessage()]
    if parsed.method is not ci.Method.GET:
        return [ci.upload_error(Status.BAD_REQUEST, OS_NAME, 0), EndOfMessage()]
    return [ci.file_response(5, 0, OS_NAME, 0), Data(b"hello"), EndOfMessage()]


def _get_malformed(exc: RemoteProtocolError) -> list[Event]:
    return [ci.upload_error(exc.status, OS_NAME, 0), EndOfMessage()]


def ci_server_get(data: bytes) -> None:
    """Upload server: one GET per connection, LENGTH-framed answer."""
    serve(ci.upload_server_connection(), data, _get_answer, _get_malformed)


_P2S_REQUESTS = (
    ci.CIRequest(ci.Method.LOOKUP, 123, "thishost.csc.ncsu.edu", 5678, "A Proferred Official ICP"),
    ci.CIRequest(ci.Method.LIST, None, "thishost.csc.ncsu.edu", 5678),
    ci.CIRequest(ci.Method.ADD, 123, "thishost.csc.ncsu.edu", 5678, "A Proferred Official ICP"),
    ci.CIRequest(ci.Method.REMOVE, 123, "thishost.csc.ncsu.edu", 5678),
)


def _p2s_request(n: int) -> list[Event]:
    return [ci.to_event(_P2S_REQUESTS[n % len(_P2S_REQUESTS)]), EndOfMessage()]


def _p2s_reply(_n: int, _head: Response, lines: list[bytes], _body: bytes) -> None:
    for line in lines:  # peer.client parses every line of a 200; one bad line ends it
        try:
            ci.parse_record(line)
        except RemoteProtocolError:
            pass


def ci_client_p2s(data: bytes) -> None:
    """Peer's index client: P2S replies (LINES framing, A1-A3 tolerance) -> parse_record."""
    fetch(ci.index_client_connection(), data, _p2s_request, _p2s_reply)


_GET = ci.to_event(ci.CIRequest(ci.Method.GET, 123, "somehost.csc.ncsu.edu", os="Linux"))


def _get_reply(_n: int, head: Response, _lines: list[bytes], _body: bytes) -> None:
    for name in ("Date", "Last-Modified"):
        value = get_header(head.headers, name)
        if value is not None:
            parse_http_date(value)


def ci_client_get(data: bytes) -> None:
    """Peer's download client: a GET reply (LENGTH framing, or until close)."""
    fetch(ci.upload_client_connection(), data, lambda _n: [_GET, EndOfMessage()], _get_reply)


def ci_record(data: bytes) -> None:
    """One P2S data line -> parse_record; a record that parses prints back the same."""
    record = ci.parse_record(data)
    assert ci.parse_record(record.to_line()) == record


def _transcript(run: Callable[[bytes, list[Event]], None], data: bytes) -> list[Event]:
    seen: list[Event] = []
    run(data, seen)
    return merged(seen)


_SIDES: tuple[Callable[[bytes, list[Event]], None], ...] = (
    lambda data, seen: serve(ci.index_server_connection(), data, _p2s_answer, _p2s_malformed,
                             seen),
    lambda data, seen: fetch(ci.index_client_connection(), data, _p2s_request, _p2s_reply,
                             seen),
)


def ci_split(data: bytes) -> None:
    """The same bytes give the same events fed whole (the server's whole-head path), one
    byte at a time and in 7-byte reads (the line-by-line reader); bit 4 of the control
    byte picks the side (index server, or a peer reading P2S replies). Silences come only
    at the end (bit 3), since a silence mid-reply may end a P2S reply early (A2). When
    one way ends in a protocol error, every way must, with the same status."""
    ctl, payload = split(data)
    run = _SIDES[ctl >> 4 & 1]
    ways = [_transcript(run, bytes([ctl & 8 | mode]) + payload) for mode in (0, 1, 2)]
    errors = [w[-1].status if w and isinstance(w[-1], Response) and w[-1].version == "error"
              else None for w in ways]
    assert len(set(errors)) == 1, f"errors differ by how bytes arrive: {errors}"
    if errors[0] is None:
        assert ways[0] == ways[1] == ways[2], "events differ by how bytes arrive"


def ci_quick(data: bytes) -> None:
    """The input taken as one read of a connection at rest: whatever ``ci.quick_lookup``
    answers, the general path (server ``Connection``, then ``interpret``) must read as the
    same LOOKUP, alone, with no byte left over. The general path runs on every input, so
    that its coverage guides the fuzzer towards LOOKUPs (the quick path is one regular
    expression, which coverage cannot see into). No error is allowed: the input is raw."""
    conn = ci.index_server_connection()
    conn.receive_data(data)
    try:
        events: list[object] = [conn.next_event() for _ in range(3)]
    except RemoteProtocolError as exc:
        events = [exc]
    rfc = ci.quick_lookup(data)
    if rfc is None:
        return
    head, end, rest = events if len(events) == 3 else (events[0], None, None)
    assert isinstance(head, Request) and isinstance(end, EndOfMessage), events
    assert rest is PAUSED and conn.trailing_data == (b"", False), "bytes left over"
    req = ci.interpret(head)
    assert isinstance(req, ci.CIRequest) and req.method is ci.Method.LOOKUP, req
    assert req.rfc == rfc, (req.rfc, rfc)
