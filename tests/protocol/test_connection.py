"""The generic sans-IO connection: framing, limits, the state table, round trips, fuzzing.

P2P-CI's own messages (the handout's examples, A1-A3) are in ``test_ci``; here every
message is generic: any method, target, headers and body the framing allows.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.errors import LocalProtocolError, RemoteProtocolError
from p2pshare.protocol import (
    NEED_DATA,
    PAUSED,
    TRANSITIONS,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Framing,
    Headers,
    Lines,
    Request,
    Response,
    Role,
    State,
    ci,
)

from .wire import available, client_after, drive, events_of, merged, split, tr

V = "P2P-CI/1.0"
FUZZ = settings(max_examples=500, deadline=None)
ROUND_TRIP = settings(max_examples=250, deadline=None)


def lines_framing(_request: Request) -> Framing:
    return Framing.LINES


def server(framing: Framing = Framing.LENGTH, *, keep_alive: bool = True) -> Connection:
    return Connection(Role.SERVER, lambda _r: framing, keep_alive=keep_alive,
                      default_framing=framing)


def client(framing: Framing = Framing.LENGTH, *, keep_alive: bool = True) -> Connection:
    return Connection(Role.CLIENT, lambda _r: framing, keep_alive=keep_alive)


def wire(conn: Connection, *events: Event) -> bytes:
    return conn.send_all(*events)


def request_bytes(request: Request, body: bytes = b"") -> bytes:
    return wire(client(), request, *([Data(body)] if body else []), EndOfMessage())


def served(framing: Framing = Framing.LENGTH, request: Request | None = None, *,
           keep_alive: bool = True) -> Connection:
    """A server that has received ``request`` whole and may answer."""
    conn = server(framing, keep_alive=keep_alive)
    conn.receive_data(request_bytes(request or Request("LIST", "ALL", V)))
    assert isinstance(conn.next_event(), Request)
    assert conn.next_event() == EndOfMessage()
    return conn


LIST_REQ = Request("LIST", "ALL", V, (("Host", "h"), ("Port", "1")))


# ------------------------------------------------------------------------ requests
def test_request_whole_byte_by_byte_and_with_trailing_bytes() -> None:
    data = b"LIST ALL P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n"
    tr(server, data, [LIST_REQ, EndOfMessage()], trailing=b"LIST ALL P2P-CI/1.0\r\n")


def test_request_with_a_body() -> None:
    head = Request("PUT", "x", V, (("Content-Length", "5"),))
    tr(server, b"PUT x P2P-CI/1.0\r\nContent-Length: 5\r\n\r\nhello",
       [head, Data(b"hello"), EndOfMessage()], trailing=b"PUT")


def test_bare_lf_and_blank_lines_before_a_request() -> None:
    tr(server, b"\r\n\n\r\nLIST ALL P2P-CI/1.0\nHost: h\nPort: 1\n\n",
       [LIST_REQ, EndOfMessage()], trailing=b"X")


def test_pipelined_requests_wait_for_our_response() -> None:
    conn = server()
    conn.receive_data(request_bytes(LIST_REQ) * 2)
    assert available(conn) == [LIST_REQ, EndOfMessage()]
    assert conn.next_event() is PAUSED  # the second waits until we answered the first
    wire(conn, Response(200, V, (("Content-Length", "0"),)), EndOfMessage())
    assert conn.our_state is State.IDLE and conn.their_state is State.IDLE
    assert available(conn) == [LIST_REQ, EndOfMessage()]


def test_closed_connection_keeps_saying_so() -> None:
    conn = server()
    conn.receive_data(b"")
    for _ in range(3):
        assert conn.next_event() == ConnectionClosed()
    assert conn.their_state is State.CLOSED


def test_close_in_the_middle_of_a_request_is_an_error() -> None:
    for data in (b"LIST ALL P2P", b"LIST ALL P2P-CI/1.0\r\nHost: h\r\n",
                 b"PUT x P2P-CI/1.0\r\nContent-Length: 5\r\n\r\nhel"):
        conn = server()
        with pytest.raises(RemoteProtocolError):
            events_of(conn, [data], end="eof")
        assert conn.their_state is State.ERROR
        with pytest.raises(RemoteProtocolError):
            conn.next_event()  # and it stays unusable


def test_pause_means_nothing_to_a_server() -> None:
    conn = server(Framing.LINES)
    conn.receive_data(b"LIST ALL P2P-CI/1.0\r\n")
    conn.receive_pause()
    assert conn.next_event() is NEED_DATA


def test_server_may_answer_after_the_client_half_closed() -> None:
    conn = server(Framing.LINES)
    assert events_of(conn, [request_bytes(LIST_REQ)], end="eof") == [
        LIST_REQ, EndOfMessage(), ConnectionClosed()]
    assert wire(conn, Response(200, V), Lines((b"RFC 1 t h 1",)), EndOfMessage()) == (
        b"P2P-CI/1.0 200 OK\r\n\r\nRFC 1 t h 1\r\n\r\n")
    assert conn.our_state is State.DONE and conn.next_event() == ConnectionClosed()


def test_no_response_before_a_request() -> None:
    conn = server()
    with pytest.raises(LocalProtocolError):
        conn.send(Response(200, V))
    assert conn.our_state is State.ERROR


def test_answer_to_a_request_we_could_not_read() -> None:
    conn = server(Framing.LINES)
    conn.receive_data(b"\x00\r\n\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.status == 400 and conn.their_state is State.ERROR
    assert wire(conn, Response(400, V), EndOfMessage()) == b"P2P-CI/1.0 400 Bad Request\r\n\r\n"


# ------------------------------------------------------------------------ responses
def test_response_with_content_length() -> None:
    head = Response(200, V, (("Content-Length", "3"),), "OK")
    tr(lambda: client_after(client, LIST_REQ), b"P2P-CI/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc",
       [head, Data(b"abc"), EndOfMessage()], trailing=b"P2P-CI/1.0 200")


def test_ok_without_content_length_runs_until_close() -> None:
    tr(lambda: client_after(client, LIST_REQ), b"P2P-CI/1.0 200 OK\r\n\r\nall of it", [
        Response(200, V, (), "OK"), Data(b"all of it"), EndOfMessage(), ConnectionClosed()],
       end="eof")


def test_error_without_content_length_has_no_body() -> None:
    tr(lambda: client_after(client, LIST_REQ), b"P2P-CI/1.0 404 Not Found\r\n\r\n",
       [Response(404, V, (), "Not Found"), EndOfMessage()], trailing=b"P2P-CI/1.0 200 OK\r\n")


def test_response_body_cut_short_by_a_close_is_an_error() -> None:
    conn = client_after(client, LIST_REQ)
    with pytest.raises(RemoteProtocolError, match="2 body bytes"):
        events_of(conn, [b"P2P-CI/1.0 200 OK\r\nContent-Length: 5\r\n\r\nabc"], end="eof")


def test_server_closing_before_answering() -> None:
    conn = client_after(client, LIST_REQ)
    assert events_of(conn, [], end="eof") == [ConnectionClosed()]


def test_unsolicited_bytes_wait_for_our_request() -> None:
    conn = client()
    conn.receive_data(b"P2P-CI/1.0 200 OK\r\n")
    assert conn.next_event() is PAUSED
    conn.receive_data(b"")
    assert conn.next_event() is PAUSED  # bytes are left: not yet a clean close


def test_keep_alive_false_ends_in_must_close() -> None:
    conn = client_after(lambda: client(keep_alive=False), LIST_REQ)
    events = events_of(conn, [b"P2P-CI/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx"])
    assert events[-1] == EndOfMessage()
    assert conn.states == {Role.CLIENT: State.MUST_CLOSE, Role.SERVER: State.MUST_CLOSE}
    with pytest.raises(LocalProtocolError):
        conn.send(LIST_REQ)
    assert events_of(conn, [], end="eof") == [ConnectionClosed()]


def test_trailing_data_reports_bytes_and_close() -> None:
    conn = server()
    conn.receive_data(request_bytes(LIST_REQ) + b"NEXT")
    available(conn)
    assert conn.trailing_data == (b"NEXT", False)
    conn.receive_data(b"")
    assert conn.trailing_data == (b"NEXT", True)


# ------------------------------------------------------------------------ limits
def fatal(make: Callable[[], Connection], data: bytes, *, chunk: int = 4096) -> None:
    """``data`` raises RemoteProtocolError(400) before the codec holds more than a limit."""
    conn = make()
    with pytest.raises(RemoteProtocolError) as info:
        for i in range(0, len(data), chunk):
            conn.receive_data(data[i:i + chunk])
            available(conn)
            assert len(conn.trailing_data[0]) <= limits.MAX_HEAD + chunk
    assert info.value.status == 400
    assert conn.their_state is State.ERROR


LONG = limits.MAX_LINE + 1


@pytest.mark.parametrize("data", [
    pytest.param(b"L" * (LONG * 4), id="request line with no end"),
    pytest.param(b"LIST " + b"A" * LONG + b" P2P-CI/1.0\r\n\r\n", id="request line"),
    pytest.param(b"LIST ALL P2P-CI/1.0\r\nHost: " + b"h" * LONG + b"\r\n\r\n", id="header line"),
    pytest.param(b"LIST ALL P2P-CI/1.0\r\n" + b"X-A: b\r\n" * (limits.MAX_HEADERS + 1) + b"\r\n",
                 id="too many headers"),
    pytest.param(b"LIST ALL P2P-CI/1.0\r\n" + (b"X: " + b"v" * 4000 + b"\r\n") * 5 + b"\r\n",
                 id="head too large"),
    pytest.param(b"PUT x P2P-CI/1.0\r\nContent-Length: %d\r\n\r\n" % (
        limits.MAX_REQUEST_BODY + 1), id="body over the limit"),
    pytest.param(b"PUT x P2P-CI/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                 id="conflicting lengths"),
    pytest.param(b"LIST ALL P2P-CI/1.0\r\nno colon\r\n\r\n", id="malformed header"),
])
def test_request_limits(data: bytes) -> None:
    fatal(server, data)


def test_exactly_at_the_limits_is_fine() -> None:
    line = b"X: " + b"v" * (limits.MAX_LINE - 3)
    head = b"A B C\r\n" + b"X: y\r\n" * (limits.MAX_HEADERS - 1) + line + b"\r\n\r\n"
    events = events_of(server(), [head])
    assert isinstance(events[0], Request) and len(events[0].headers) == limits.MAX_HEADERS


@pytest.mark.parametrize(("framing", "data"), [
    pytest.param(Framing.LENGTH, b"P2P-CI/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % (
        2**62 + 1), id="length"),
    pytest.param(Framing.LINES, b"P2P-CI/1.0 200 OK\r\n\r\n" + b"R" * (LONG * 3),
                 id="data line"),
    pytest.param(Framing.LENGTH, b"P2P-CI/1.0 200 OK\r\nX: " + b"v" * LONG, id="header line"),
])
def test_response_limits(framing: Framing, data: bytes) -> None:
    fatal(lambda: client_after(lambda: client(framing), LIST_REQ), data)


def small_client() -> Connection:
    return client_after(lambda: Connection(Role.CLIENT, max_response_body=10), LIST_REQ)


def test_response_body_limit_is_per_connection() -> None:
    fatal(small_client, b"P2P-CI/1.0 200 OK\r\nContent-Length: 11\r\n\r\n")
    events = events_of(small_client(), [b"P2P-CI/1.0 200 OK\r\nContent-Length: 10\r\n\r\n"
                                        b"0123456789"])
    assert events[1] == Data(b"0123456789")


# ------------------------------------------------------------------------ what we send
def test_request_bytes() -> None:
    assert request_bytes(LIST_REQ) == b"LIST ALL P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n"
    assert request_bytes(Request("LIST", "", V)) == b"LIST P2P-CI/1.0\r\n\r\n"
    assert request_bytes(Request("PUT", "x", V, (("Content-Length", "2"),)), b"ab") == (
        b"PUT x P2P-CI/1.0\r\nContent-Length: 2\r\n\r\nab")


def test_response_bytes() -> None:
    assert wire(served(), Response(404, V), EndOfMessage()) == b"P2P-CI/1.0 404 Not Found\r\n\r\n"
    assert wire(served(), Response(299, V), EndOfMessage()) == b"P2P-CI/1.0 299 Unknown\r\n\r\n"
    assert wire(served(), Response(200, V, (("Content-Length", "1"),), "Fine"), Data(b"x"),
                EndOfMessage()) == b"P2P-CI/1.0 200 Fine\r\nContent-Length: 1\r\n\r\nx"


def test_lines_bytes() -> None:
    conn = served(Framing.LINES)
    assert wire(conn, Response(200, V), Lines((b"a", b"b")), Lines((b"c",)), EndOfMessage()) == (
        b"P2P-CI/1.0 200 OK\r\n\r\na\r\nb\r\nc\r\n\r\n")


def bad_send(conn: Connection, *events: Event) -> None:
    """The last of ``events`` is refused with LocalProtocolError; our side is in ERROR."""
    conn.send_all(*events[:-1])
    with pytest.raises(LocalProtocolError):
        conn.send(events[-1])
    assert conn.our_state is State.ERROR


@pytest.mark.parametrize("request_", [
    Request("ADD", "RFC 1", V, (("Title", "a\r\nInjected: yes"),)),
    Request("ADD", "RFC 1", V, (("Bad Name", "x"),)),
    Request("ADD", "RFC 1", V, (("", "x"),)),
    Request("A D", "RFC 1", V),
    Request("", "RFC 1", V),
    Request("ADD", "RFC\r\n1", V),
    Request("ADD", "RFC 1", "P2P CI/1.0"),
    Request("ADD", "RFC 1", ""),
    Request("ADD", "RFC 1", V, (("Title", "\ud800"),)),
    Request("PUT", "x", V, (("Content-Length", "-1"),)),
    Request("PUT", "x", V, (("Content-Length", "1"), ("Content-Length", "2"))),
])
def test_malformed_requests_are_not_sent(request_: Request) -> None:
    bad_send(client(), request_)


@pytest.mark.parametrize("response", [
    Response(200, V, (), "OK\r\nX: y"),
    Response(99, V),
    Response(1000, V),
    Response(200, "P2P-CI"),
    Response(200, V, (("X", "a\nb"),)),
    Response(200, V, (("Content-Length", "x"),)),
])
def test_malformed_responses_are_not_sent(response: Response) -> None:
    bad_send(served(), response)


@pytest.mark.parametrize("events", [
    pytest.param((Response(200, V), Data(b"x")), id="Data in a LINES body"),
    pytest.param((Response(404, V), Lines((b"a",))), id="Lines in an error"),
    pytest.param((Response(200, V), Lines((b"",))), id="empty line"),
    pytest.param((Response(200, V), Lines((b"a\r\nb",))), id="CRLF in a line"),
    pytest.param((Response(200, V), Lines((b"P2P-CI/1.0 200 OK",))), id="status-like line"),
])
def test_lines_rules(events: tuple[Event, ...]) -> None:
    bad_send(served(Framing.LINES), *events)


def test_status_like_text_is_fine_when_it_is_not_a_status_line() -> None:
    conn = served(Framing.LINES)
    assert wire(conn, Response(200, V), Lines((b"P2P-CI rocks",))).endswith(b"P2P-CI rocks\r\n")


@pytest.mark.parametrize("events", [
    pytest.param((Response(200, V, (("Content-Length", "1"),)), Lines((b"a",))), id="Lines"),
    pytest.param((Response(200, V, (("Content-Length", "1"),)), Data(b"ab")), id="too long"),
    pytest.param((Response(200, V, (("Content-Length", "2"),)), Data(b"a"), EndOfMessage()),
                 id="too short"),
    pytest.param((Response(404, V), Data(b"a")), id="body on an error without length"),
])
def test_length_rules(events: tuple[Event, ...]) -> None:
    bad_send(served(), *events)


def test_body_sent_by_sendfile_is_counted() -> None:
    conn = served(keep_alive=False)
    conn.send(Response(200, V, (("Content-Length", "10"),)))
    conn.note_body_sent(6)
    conn.note_body_sent(4)
    assert conn.send(EndOfMessage()) == b"" and conn.our_state is State.MUST_CLOSE
    with pytest.raises(LocalProtocolError):
        conn.note_body_sent(1)


def test_request_body_rules() -> None:
    bad_send(client(), Request("PUT", "x", V, (("Content-Length", "1"),)), Data(b"ab"))
    bad_send(client(), Request("PUT", "x", V, (("Content-Length", "1"),)), EndOfMessage())
    bad_send(client(), Request("PUT", "x", V), Lines((b"a",)))


# ------------------------------------------------------------------------ the state table
EVENTS: dict[type, Callable[[], Event]] = {
    Request: lambda: Request("LIST", "ALL", V),
    Response: lambda: Response(200, V),
    Data: lambda: Data(b"x"),
    Lines: lambda: Lines((b"RFC 1 t h 1",)),
    EndOfMessage: EndOfMessage,
    ConnectionClosed: ConnectionClosed,
}
TRIPLES = [(r, s, e) for r in Role for s in State for e in EVENTS]


def connection_in(role: Role, state: State, event_type: type) -> Connection:
    """A connection whose side ``role`` is in ``state``, set up so that an event of
    ``event_type`` meets its own conditions (framing, length) where the table allows it."""
    framing = Framing.LINES if event_type is Lines else Framing.LENGTH
    conn = Connection(role, lambda _r: framing, keep_alive=state is not State.MUST_CLOSE)
    if state is State.CLOSED:
        conn.send(ConnectionClosed())
    elif state is State.ERROR:
        bad_send(conn, Data(b"x"))
    elif role is Role.CLIENT:
        _client_to(conn, state, event_type)
    else:
        _server_to(conn, state)
    assert conn.our_state is state
    return conn


def _client_to(conn: Connection, state: State, event_type: type) -> None:
    if state is State.IDLE:
        return
    body = event_type is Data and state is State.SEND_BODY
    length = (("Content-Length", "1"),) if body else ()
    conn.send(Request("PUT", "x", V, length))
    if state is not State.SEND_BODY:
        conn.send(EndOfMessage())
    if state is State.MUST_CLOSE:
        conn.receive_data(b"P2P-CI/1.0 404 Not Found\r\n\r\n")  # ends in either framing
        available(conn)


def _server_to(conn: Connection, state: State) -> None:
    if state is State.DONE:  # only while the client is not DONE: it is in ERROR here
        conn.receive_data(b"\x00\r\n\r\n")
        with pytest.raises(RemoteProtocolError):
            conn.next_event()
        conn.send_all(Response(400, V), EndOfMessage())
        return
    conn.receive_data(request_bytes(Request("LIST", "ALL", V)))
    available(conn)
    if state in (State.SEND_BODY, State.MUST_CLOSE):
        conn.send(Response(200, V))
    if state is State.MUST_CLOSE:
        conn.send(EndOfMessage())


@pytest.mark.parametrize(("role", "state", "event_type"), TRIPLES,
                         ids=[f"{r.value}-{s.value}-{e.__name__}" for r, s, e in TRIPLES])
def test_every_pair_of_the_table(role: Role, state: State, event_type: type) -> None:
    """Legal (state, event) pairs succeed; every other pair raises and moves to ERROR."""
    conn = connection_in(role, state, event_type)
    expected = TRANSITIONS.get((role, state, event_type))
    if expected is None:
        bad_send(conn, EVENTS[event_type]())
        return
    conn.send(EVENTS[event_type]())
    cycled = expected is State.DONE and conn.our_state in (State.IDLE, State.MUST_CLOSE)
    assert conn.our_state is expected or cycled


SENDABLE = st.sampled_from(list(EVENTS))
THEIRS = st.sampled_from([b"LIST ALL P2P-CI/1.0\r\n\r\n", b"P2P-CI/1.0 200 OK\r\n\r\n",
                          b"P2P-CI/1.0 404 Not Found\r\n\r\n", b"", b"\x00\r\n\r\n", b"x\r\n"])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(list(Role)), st.sampled_from(list(Framing)), st.booleans(),
       st.lists(st.one_of(SENDABLE, THEIRS), max_size=12))
def test_random_sequences_follow_the_table(role: Role, framing: Framing, keep_alive: bool,
                                           steps: list[type | bytes]) -> None:
    """Whatever we send and receive, in any order: a send the table forbids raises
    LocalProtocolError and leaves ERROR; a send that succeeds moves as the table says."""
    conn = Connection(role, lambda _r: framing, keep_alive=keep_alive, default_framing=framing)
    for step in steps:
        if isinstance(step, bytes):
            drive(conn, [step], eof=not step)
            continue
        before = conn.our_state
        expected = TRANSITIONS.get((role, before, step))
        try:
            conn.send(EVENTS[step]())
        except LocalProtocolError:
            assert conn.our_state is State.ERROR
            continue
        assert expected is not None
        cycled = expected is State.DONE and conn.our_state in (State.IDLE, State.MUST_CLOSE)
        assert conn.our_state is expected or cycled


# ------------------------------------------------------------------------ round trips
TOKEN = st.from_regex(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}", fullmatch=True)
CHAR = st.characters(blacklist_categories=("Cc", "Cs"))
WORD = st.text(CHAR.filter(lambda c: c not in " \t"), min_size=1, max_size=10)
VALUE = st.text(CHAR | st.just("\t"), max_size=20).map(lambda v: v.strip(" \t"))
VERSION = st.from_regex(r"[A-Za-z0-9-]{1,8}/[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True)
NAME = TOKEN.filter(lambda n: n.lower() != "content-length")
HEADERS = st.lists(st.tuples(NAME, VALUE), max_size=4).map(tuple)
BODY = st.binary(max_size=200)
CUTS = st.lists(st.integers(0, 10_000), max_size=6)


def with_length(headers: Headers, body: bytes) -> Headers:
    return (*headers, ("Content-Length", str(len(body))))


def body_events(body: bytes, cuts: list[int]) -> list[Event]:
    return [Data(part) for part in split(body, cuts)]


@ROUND_TRIP
@given(TOKEN, st.lists(WORD, max_size=3).map(" ".join), VERSION | WORD, HEADERS, BODY,
       CUTS, CUTS)
def test_request_round_trip(method: str, target: str, version: str, headers: Headers,
                            body: bytes, send_cuts: list[int], recv_cuts: list[int]) -> None:
    head = Request(method, target, version, with_length(headers, body) if body else headers)
    data = wire(client(), head, *body_events(body, send_cuts), EndOfMessage())
    expected = merged([head, Data(body), EndOfMessage()])
    assert events_of(server(), split(data, recv_cuts)) == expected


@ROUND_TRIP
@given(st.integers(100, 999), VERSION, HEADERS, VALUE.filter(bool), BODY, CUTS, CUTS)
def test_response_round_trip(status: int, version: str, headers: Headers, reason: str,
                             body: bytes, send_cuts: list[int], recv_cuts: list[int]) -> None:
    head = Response(status, version, with_length(headers, body), reason)
    data = wire(served(), head, *body_events(body, send_cuts), EndOfMessage())
    expected = merged([head, Data(body), EndOfMessage()])
    assert events_of(client_after(client, LIST_REQ), split(data, recv_cuts)) == expected


LINE = st.binary(min_size=1, max_size=30).filter(
    lambda b: b"\r" not in b and b"\n" not in b and not b.startswith(b"P2P-"))


@ROUND_TRIP
@given(HEADERS, st.lists(st.lists(LINE, max_size=4), max_size=4), CUTS, st.booleans())
def test_lines_round_trip(headers: Headers, batches: list[list[bytes]], cuts: list[int],
                          bare_lf: bool) -> None:
    head = Response(200, V, headers, "OK")
    data = wire(served(Framing.LINES), head, *(Lines(tuple(b)) for b in batches), EndOfMessage())
    if bare_lf:
        data = data.replace(b"\r\n", b"\n")
    expected = merged([head, Lines(tuple(x for b in batches for x in b)), EndOfMessage()])
    assert events_of(client_after(lambda: client(Framing.LINES), LIST_REQ),
                     split(data, cuts)) == expected


# ------------------------------------------------------------------------ fuzzing
SERVERS: dict[str, Callable[[], Connection]] = {
    "index": ci.index_server_connection,
    "upload": ci.upload_server_connection,
    "generic": lambda: Connection(Role.SERVER),
}
GET = Request("GET", "RFC 1", V, (("Host", "h"), ("OS", "x")))
CLIENTS: dict[str, tuple[Callable[[], Connection], Request]] = {
    "index": (ci.index_client_connection, LIST_REQ),
    "upload": (ci.upload_client_connection, GET),
    "generic": (lambda: Connection(Role.CLIENT), GET),
}
REQUEST_CORPUS = [
    b"ADD RFC 123 P2P-CI/1.0\r\nHost: thishost.csc.ncsu.edu\r\nPort: 5678\r\n"
    b"Title: A Proferred Official ICP\r\n\r\n",
    b"LIST ALL P2P-CI/1.0\nHost: h\nPort: 1\n\n",
    b"GET RFC 1234 P2P-CI/1.0\r\nHost: somehost.csc.ncsu.edu\r\nOS: Mac OS 10.4.1\r\n\r\n",
    b"PUT x P2P-CI/1.0\r\nContent-Length: 4\r\n\r\nbody" + b"LIST ALL P2P-CI/1.0\r\n\r\n",
]
RESPONSE_CORPUS = [
    b"P2P-CI/1.0 200 OK\r\n\r\nRFC 123 A Proferred Official ICP thishost.csc.ncsu.edu 5678\r\n"
    b"\r\n",
    b"P2P-CI/1.0 200 OK\r\nRFC 123 A Proferred Official ICP thishost.csc.ncsu.edu 5678\r\n",
    b"P2P-CI/1.0 404 Not Found\r\n\r\n\r\nP2P-CI/1.0 200 OK\r\n\r\n\r\n",
    b"P2P-CI/1.0 200 OK\r\nDate: Wed, 12 Feb 2009 15:12:05 GMT\r\nContent-Length: 4\r\n"
    b"Content-Type: text/text\r\n(data",
    b"P2P-CI/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc",
]
INSERTS = st.sampled_from([b"\r\n", b"\n", b"\r", b" ", b":", b"\x00", b"\xff\xfe", b"\t",
                           b"P2P-CI/1.0 200 OK\r\n", b"Content-Length: 5\r\n", b"RFC 1 t h 1\r\n",
                           b"9" * 25]) | st.binary(min_size=1, max_size=8)


@st.composite
def mutated(draw: st.DrawFn, corpus: list[bytes]) -> bytes:
    """A valid message with a few random edits: bytes changed, inserted, cut or repeated."""
    data = bytearray(draw(st.sampled_from(corpus)))
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(data)))
        to = draw(st.integers(at, min(len(data), at + 12)))
        edit = draw(st.sampled_from(["set", "insert", "delete", "repeat", "truncate"]))
        if edit == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif edit == "insert":
            data[at:at] = draw(INSERTS)
        elif edit == "delete":
            del data[at:to]
        elif edit == "repeat":
            data[at:at] = data[at:to]
        elif edit == "truncate":
            del data[at:]
    return bytes(data)


@FUZZ
@given(st.sampled_from(list(SERVERS)), st.binary(max_size=300) | mutated(REQUEST_CORPUS),
       CUTS, st.booleans(), st.booleans())
def test_random_and_mutated_bytes_to_servers(name: str, data: bytes, cuts: list[int],
                                             pause: bool, eof: bool) -> None:
    """Random bytes, or valid requests with random edits, give events or RemoteProtocolError."""
    drive(SERVERS[name](), split(data, cuts), pause=pause, eof=eof)


@FUZZ
@given(st.sampled_from(list(CLIENTS)), st.binary(max_size=300) | mutated(RESPONSE_CORPUS),
       CUTS, st.booleans(), st.booleans())
def test_random_and_mutated_bytes_to_clients(name: str, data: bytes, cuts: list[int],
                                             pause: bool, eof: bool) -> None:
    """The same for replies, the client sending its next request after each one."""
    make, request = CLIENTS[name]
    drive(client_after(make, request), split(data, cuts), pause=pause, eof=eof,
          next_request=request)


@given(st.integers(1, 5), st.binary(max_size=30))
@settings(max_examples=100, deadline=None)
def test_at_rest_only_between_requests(cut: int, body: bytes) -> None:
    """``at_rest`` (the index server's quick path may answer) holds before a request's
    first byte and after its response is sent, never while any part of it is held."""
    request = Request("PUT", "x", V, (("Content-Length", str(len(body))), ("A", "b")))
    data = Connection(Role.CLIENT).send_all(request, Data(body), EndOfMessage())
    conn = Connection(Role.SERVER)
    assert conn.at_rest
    for i in range(0, len(data), cut):
        conn.receive_data(data[i:i + cut])
        available(conn)
        assert not conn.at_rest
    conn.send_all(Response(200, V, (("Content-Length", "0"),)), EndOfMessage())
    assert conn.at_rest
    conn.receive_data(b"\r\n")  # the next request's first bytes (blank lines are skipped)
    assert not conn.at_rest
