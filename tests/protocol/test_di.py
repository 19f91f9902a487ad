"""P2P-DI/1.0 codec: every message whole, byte by byte, with trailing bytes; hypothesis."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.errors import RemoteProtocolError, Status
from p2pshare.protocol import (
    NEED_DATA,
    PAUSED,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Request,
    Response,
    di,
)
from p2pshare.protocol._events import Event, _Sentinel

V = "P2P-DI/1.0"


# ----------------------------------------------------------------------------- helpers
def feed(conn: Connection, data: bytes, step: int | None = None) -> list[Event]:
    """Feed ``data`` (whole or ``step`` bytes at a time); collect events to the message's end."""
    events: list[Event] = []
    chunks = [data] if step is None else [data[i:i + step] for i in range(0, len(data), step)]
    for chunk in chunks:
        conn.receive_data(chunk)
        while (event := conn.next_event()) not in (NEED_DATA, PAUSED):
            assert not isinstance(event, _Sentinel)
            events.append(event)
            if isinstance(event, (EndOfMessage, ConnectionClosed)):
                return events
    return events


def merged(events: list[Event]) -> list[Event]:
    """Join consecutive Data events (byte-by-byte feeding splits bodies)."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, Data) and out and isinstance(out[-1], Data):
            out[-1] = Data(out[-1].data + event.data)
        else:
            out.append(event)
    return out


def request_bytes(msg: di.DIRequest) -> bytes:
    return di.client_connection().send_all(di.to_event(msg), EndOfMessage())


def receive_request(data: bytes, step: int | None = None) -> di.DIRequest | di.Rejected:
    events = feed(di.server_connection(), data, step)
    assert isinstance(events[0], Request) and isinstance(events[-1], EndOfMessage)
    return di.interpret(events[0])


def reply_bytes(head: Response, body: bytes = b"") -> bytes:
    """What a server sends for ``head`` and ``body`` after a GetRFC-shaped request."""
    server = di.server_connection()
    feed(server, request_bytes(di.PQuery("a")))
    events: list[Event] = [head, Data(body), EndOfMessage()] if body else [head, EndOfMessage()]
    return server.send_all(*events)


def receive_reply(data: bytes, step: int | None = None) -> list[Event]:
    client = di.client_connection()
    client.send_all(di.to_event(di.PQuery("a")), EndOfMessage())
    return merged(feed(client, data, step))


TRAILING = b"GARBAGE AFTER THE MESSAGE\r\n\r\n"
WAYS = [pytest.param(None, b"", id="whole"), pytest.param(1, b"", id="byte-by-byte"),
        pytest.param(None, TRAILING, id="trailing")]

REQUESTS = [
    (di.Register("peer-a.example", 65500, None, "Linux 6.1"),
     b"REGISTER PEER P2P-DI/1.0\r\nHost: peer-a.example\r\nPort: 65500\r\nOS: Linux 6.1\r\n\r\n"),
    (di.Register("peer-a.example", 65500, 7),
     b"REGISTER PEER P2P-DI/1.0\r\nHost: peer-a.example\r\nPort: 65500\r\nCookie: 7\r\n\r\n"),
    (di.KeepAlive("peer-a.example", 7),
     b"KEEPALIVE PEER P2P-DI/1.0\r\nHost: peer-a.example\r\nCookie: 7\r\n\r\n"),
    (di.Leave("peer-a.example", 7),
     b"LEAVE PEER P2P-DI/1.0\r\nHost: peer-a.example\r\nCookie: 7\r\n\r\n"),
    (di.PQuery("peer-a.example", 7),
     b"PQUERY ALL P2P-DI/1.0\r\nHost: peer-a.example\r\nCookie: 7\r\n\r\n"),
    (di.PQuery("peer-a.example"), b"PQUERY ALL P2P-DI/1.0\r\nHost: peer-a.example\r\n\r\n"),
    (di.RFCQuery("peer-b.example", "Linux 6.1"),
     b"GET RFC-INDEX P2P-DI/1.0\r\nHost: peer-b.example\r\nOS: Linux 6.1\r\n\r\n"),
    (di.GetRFC(2345, "peer-b.example", "Linux 6.1"),
     b"GET RFC 2345 P2P-DI/1.0\r\nHost: peer-b.example\r\nOS: Linux 6.1\r\n\r\n"),
]


# ----------------------------------------------------------------------------- requests
@pytest.mark.parametrize(("msg", "wire"), REQUESTS)
def test_request_bytes_are_exact(msg: di.DIRequest, wire: bytes) -> None:
    assert request_bytes(msg) == wire


@pytest.mark.parametrize(("step", "extra"), WAYS)
@pytest.mark.parametrize(("msg", "wire"), REQUESTS)
def test_request_is_read_back(msg: di.DIRequest, wire: bytes, step: int | None,
                              extra: bytes) -> None:
    assert receive_request(wire + extra, step) == msg


@pytest.mark.parametrize(("wire", "status"), [
    (b"PQUERY ALL P2P-DI/2.0\r\nHost: a\r\n\r\n", Status.VERSION_NOT_SUPPORTED),
    (b"FOO ALL P2P-DI/2.0\r\nHost: a\r\n\r\n", Status.VERSION_NOT_SUPPORTED),  # version first
    (b"PQUERY ALL P2P-CI/1.0\r\nHost: a\r\n\r\n", Status.VERSION_NOT_SUPPORTED),
    (b"FOO ALL P2P-DI/1.0\r\nHost: a\r\n\r\n", Status.BAD_REQUEST),
    (b"PQUERY ALL P2P-DI/1.0\r\n\r\n", Status.BAD_REQUEST),  # no Host
    (b"PQUERY ALL P2P-DI/1.0\r\nHost: a\r\nCookie: x\r\n\r\n", Status.BAD_REQUEST),
    (b"PQUERY ALL P2P-DI/1.0\r\nHost: a\r\nCookie: 0\r\n\r\n", Status.BAD_REQUEST),
    (b"PQUERY PEER P2P-DI/1.0\r\nHost: a\r\n\r\n", Status.BAD_REQUEST),
    (b"REGISTER PEER P2P-DI/1.0\r\nHost: a\r\n\r\n", Status.BAD_REQUEST),  # no Port
    (b"REGISTER PEER P2P-DI/1.0\r\nHost: a\r\nPort: 70000\r\n\r\n", Status.BAD_REQUEST),
    (b"KEEPALIVE PEER P2P-DI/1.0\r\nHost: a\r\n\r\n", Status.BAD_REQUEST),  # no Cookie
    (b"LEAVE PEER P2P-DI/1.0\r\nHost: a\r\n\r\n", Status.BAD_REQUEST),
    (b"GET RFC abc P2P-DI/1.0\r\nHost: a\r\n\r\n", Status.BAD_REQUEST),
    (b"GET RFC 0 P2P-DI/1.0\r\nHost: a\r\n\r\n", Status.BAD_REQUEST),
    (b"GET RFC-LIST P2P-DI/1.0\r\nHost: a\r\n\r\n", Status.BAD_REQUEST),
    (b"REGISTER RFC 5 P2P-DI/1.0\r\nHost: a\r\nPort: 1\r\n\r\n", Status.BAD_REQUEST),
    (b"GET RFC 1 P2P-DI/1.0\r\nHost: a\r\nOS: " + b"x" * 300 + b"\r\n\r\n",
     Status.BAD_REQUEST),
    # bytes that are not UTF-8: the host name would be stored and relayed as U+FFFD
    (b"REGISTER PEER P2P-DI/1.0\r\nHost: h\xffst\r\nPort: 1\r\n\r\n", Status.BAD_REQUEST),
    (b"GET RFC 1 P2P-DI/1.0\r\nHost: a\r\nOS: L\xc3nux\r\n\r\n", Status.BAD_REQUEST),
    (b"GET RFC 1 P2P-DI/9.9\r\nHost: h\xff\r\n\r\n", Status.VERSION_NOT_SUPPORTED),
])
def test_bad_requests_are_rejected_with_their_status(wire: bytes, status: Status) -> None:
    result = receive_request(wire)
    assert isinstance(result, di.Rejected) and result.status is status


def test_tolerant_reading_of_case_and_spacing() -> None:
    wire = b"get  rfc   12 p2p-di/1.0\nhost:b\nos:  X  \n\n"
    assert receive_request(wire) == di.GetRFC(12, "b", "X")
    assert receive_request(b"pquery all P2P-DI/1.0\r\nHOST: a\r\ncookie: 3\r\n\r\n") == \
        di.PQuery("a", 3)


def test_a_request_body_is_read_and_ignored() -> None:
    wire = b"PQUERY ALL P2P-DI/1.0\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    assert receive_request(wire, 1) == di.PQuery("a")


def test_malformed_heads_raise_remote_protocol_error() -> None:
    for wire in (b"NONSENSE\r\n\r\n", b"GET RFC 1 P2P-DI/1.0\r\nno colon here\r\n\r\n",
                 b"X" * (limits.MAX_LINE + 10)):
        with pytest.raises(RemoteProtocolError) as info:
            feed(di.server_connection(), wire)
        assert info.value.status == Status.BAD_REQUEST


# ----------------------------------------------------------------------------- responses
REPLIES = [
    (di.registered(7, 7200), b"",
     b"P2P-DI/1.0 200 OK\r\nCookie: 7\r\nTTL: 7200\r\nContent-Length: 0\r\n\r\n"),
    (di.kept_alive(7200), b"", b"P2P-DI/1.0 200 OK\r\nTTL: 7200\r\nContent-Length: 0\r\n\r\n"),
    (di.response(Status.OK), b"", b"P2P-DI/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
    (di.no_active_peers(), b"",
     b"P2P-DI/1.0 404 No Active Peers\r\nContent-Length: 0\r\n\r\n"),
    (di.unknown_cookie(), b"", b"P2P-DI/1.0 409 Unknown Cookie\r\nContent-Length: 0\r\n\r\n"),
    (di.response(Status.VERSION_NOT_SUPPORTED), b"",
     b"P2P-DI/1.0 505 P2P-DI Version Not Supported\r\nContent-Length: 0\r\n\r\n"),
    (*di.list_reply([di.PeerAddr("peer-b.example", 65501), di.PeerAddr("10.0.0.3", 6000)]),
     b"P2P-DI/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 37\r\n\r\n"
     b"peer-b.example 65501\r\n10.0.0.3 6000\r\n"),
    (*di.list_reply([di.IndexLine(2345, "Domain Names", "peer-b.example", 65501, 7200)]),
     b"P2P-DI/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 49\r\n\r\n"
     b"RFC 2345 Domain Names peer-b.example 65501 7200\r\n"),
    (di.file_reply(5, 0.0, "Linux", now=1234567925.0), b"hello",
     b"P2P-DI/1.0 200 OK\r\nDate: Fri, 13 Feb 2009 23:32:05 GMT\r\nOS: Linux\r\n"
     b"Last-Modified: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 5\r\n"
     b"Content-Type: text/plain\r\n\r\nhello"),
]


@pytest.mark.parametrize(("head", "body", "wire"), REPLIES)
def test_reply_bytes_are_exact(head: Response, body: bytes, wire: bytes) -> None:
    assert reply_bytes(head, body) == wire


@pytest.mark.parametrize(("step", "extra"), WAYS)
@pytest.mark.parametrize(("head", "body", "wire"), REPLIES)
def test_reply_is_read_back(head: Response, body: bytes, wire: bytes, step: int | None,
                            extra: bytes) -> None:
    events = receive_reply(wire + extra, step)
    assert events[0] == dataclasses.replace(head, reason=head.reason or Status(head.status).phrase)
    assert events[1:] == ([Data(body)] if body else []) + [EndOfMessage()]


def test_registered_reply_yields_cookie_and_ttl() -> None:
    assert di.parse_registered(di.registered(42, 7200)) == (42, 7200)
    with pytest.raises(RemoteProtocolError):
        di.parse_registered(di.kept_alive(7200))  # no Cookie


def test_reply_of_another_version_is_a_505_naming_what_sent_it() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        di.check_version(Response(200, "P2P-CI/1.0"), "h:1")
    assert info.value.status == Status.VERSION_NOT_SUPPORTED
    assert str(info.value) == \
        "h:1: reached a P2P-CI/1.0 index server, not a P2P-DI/1.0 server"


def test_head_text_shows_the_wire_form() -> None:
    assert di.head_text(di.to_event(di.KeepAlive("a", 3))) == \
        "KEEPALIVE PEER P2P-DI/1.0\nHost: a\nCookie: 3"
    assert di.head_text(di.no_active_peers()) == \
        "P2P-DI/1.0 404 No Active Peers\nContent-Length: 0"


# ----------------------------------------------------------------------------- list bodies
def test_index_lines_parse_titles_with_spaces_and_empty_titles() -> None:
    body = (b"RFC 1 A Title  With   Spaces host-1 10 7200\r\n"
            b"RFC 2 host-2 20 0\r\n"
            b"rfc 3 Ends With 99 host-3 30 5\n")  # lower case, bare LF, numeric title word
    parsed = di.parse_index(body)
    assert parsed.skipped == 0
    assert parsed.items == (
        di.IndexLine(1, "A Title  With   Spaces", "host-1", 10, 7200),
        di.IndexLine(2, "", "host-2", 20, 0),
        di.IndexLine(3, "Ends With 99", "host-3", 30, 5),
    )


@pytest.mark.parametrize("bad", [
    b"RFC x Title host 10 7200", b"RFC 1 Title host 10", b"RFC 1 Title host 0 7200",
    b"RFC 1 Title host 70000 7200", b"RFC 0 Title host 10 7200", b"1 Title host 10 7200",
    b"RFC 1 Title host 10 -5", b"RFC 1 \xff\xfe host 10 7200", b"RFC 1 T\x00 host 10 7200",
    b"RFC 1 Title host 10 99999999999999999999", b"RFC", b"garbage",
    b"RFC 1 " + b"t" * (limits.MAX_TITLE + 1) + b" host 10 7200",
])
def test_a_malformed_index_line_is_skipped_not_raised(bad: bytes) -> None:
    good = b"RFC 9 Good host 10 7200\r\n"
    parsed = di.parse_index(good + bad + b"\r\n" + good)
    assert parsed.skipped == 1
    assert [r.rfc for r in parsed.items] == [9, 9]


def test_peer_lines() -> None:
    parsed = di.parse_peers(b"a 1\r\nb 2\r\nbad line here\r\nc x\r\nd 65536\r\n\r\n")
    assert parsed.items == (di.PeerAddr("a", 1), di.PeerAddr("b", 2))
    assert parsed.skipped == 3


# ----------------------------------------------------------------------------- hypothesis
hosts = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,30}", fullmatch=True)
ports = st.integers(1, limits.MAX_PORT)
cookies = st.integers(1, limits.DI_MAX_COOKIE)
rfcs = st.integers(limits.MIN_RFC_NUMBER, limits.MAX_RFC_NUMBER)
os_names = st.from_regex(r"([A-Za-z0-9][A-Za-z0-9 ._-]{0,20}[A-Za-z0-9.])?", fullmatch=True)
titles = st.text(st.characters(min_codepoint=32, blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
                 max_size=60).map(lambda t: " ".join(t.split()))
requests = st.one_of(
    st.builds(di.Register, hosts, ports, st.none() | cookies, os_names),
    st.builds(di.Leave, hosts, cookies, os_names),
    st.builds(di.KeepAlive, hosts, cookies, os_names),
    st.builds(di.PQuery, hosts, st.none() | cookies, os_names,
              st.just(0) | st.integers(0, limits.DI_MAX_OFFSET)),
    st.builds(di.RFCQuery, hosts, os_names),
    st.builds(di.GetRFC, rfcs, hosts, os_names),
)
index_lines = st.builds(di.IndexLine, rfcs, titles, hosts, ports,
                        st.integers(0, limits.DI_MAX_TTL))


@given(requests, st.integers(1, 64))
def test_every_request_round_trips(msg: di.DIRequest, step: int) -> None:
    assert receive_request(request_bytes(msg), step) == msg


@given(st.lists(index_lines, max_size=20))
def test_index_bodies_round_trip(lines: list[di.IndexLine]) -> None:
    _head, body = di.list_reply(lines)
    assert di.parse_index(body) == di.Parsed(tuple(lines), 0)


@given(st.lists(st.builds(di.PeerAddr, hosts, ports), max_size=20))
def test_peer_bodies_round_trip(peers: list[di.PeerAddr]) -> None:
    _head, body = di.list_reply(peers)
    assert di.parse_peers(body) == di.Parsed(tuple(peers), 0)


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_random_bytes_give_events_or_remote_protocol_error(data: bytes) -> None:
    client = di.client_connection()
    client.send_all(di.to_event(di.PQuery("a")), EndOfMessage())
    for conn in (di.server_connection(), client):
        try:
            if not any(isinstance(e, ConnectionClosed) for e in feed(conn, data)):
                feed(conn, b"")  # then EOF
        except RemoteProtocolError:
            pass


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_random_list_bodies_never_raise(data: bytes) -> None:
    index = di.parse_index(data)
    peers = di.parse_peers(data)
    assert all(isinstance(r, di.IndexLine) for r in index.items)
    assert all(isinstance(p, di.PeerAddr) for p in peers.items)


@given(st.builds(Request, st.sampled_from(["GET", "REGISTER", "LEAVE", "KEEPALIVE",
                                           "PQUERY", "X"]),
                 st.sampled_from(["PEER", "ALL", "RFC-INDEX", "RFC 5", "RFC", "?"]),
                 st.sampled_from([V, "P2P-DI/2.0"]),
                 st.lists(st.tuples(st.sampled_from(["Host", "Port", "Cookie", "OS"]),
                                    st.text(max_size=12)), max_size=5).map(tuple)))
def test_interpret_never_raises(req: Request) -> None:
    result = di.interpret(req)
    assert isinstance(result, (di.Rejected, *di.DIRequest.__args__))


@given(st.lists(st.builds(di.PeerAddr, hosts, ports), max_size=20), st.integers(1, 25))
def test_a_reader_reads_at_most_its_limit_of_lines_and_counts_the_rest(
        peers: list[di.PeerAddr], limit: int) -> None:
    _head, body = di.list_reply(peers)
    parsed = di.parse_peers(body, limit)
    assert parsed.items == tuple(peers[:limit])
    assert parsed.cut == max(0, len(peers) - limit)


@given(st.lists(index_lines, max_size=20), st.integers(0, 2000))
def test_a_bounded_list_reply_holds_the_records_that_fit_whole(
        lines: list[di.IndexLine], max_bytes: int) -> None:
    _head, body = di.list_reply(lines, max_bytes)
    assert len(body) <= max_bytes
    kept = di.parse_index(body).items
    assert kept == tuple(lines[:len(kept)])
    if len(kept) < len(lines):
        assert len(body) + len(lines[len(kept)].to_line()) + 2 > max_bytes


def test_pquery_pages_carry_offset_and_next_offset() -> None:
    assert request_bytes(di.PQuery("a", 7, "L", 1024)) == (
        b"PQUERY ALL P2P-DI/1.0\r\nHost: a\r\nCookie: 7\r\nOffset: 1024\r\nOS: L\r\n\r\n")
    assert receive_request(b"PQUERY ALL P2P-DI/1.0\r\nHost: a\r\noffset:  3 \r\n\r\n") \
        == di.PQuery("a", None, "", 3)
    for bad in (b"-1", b"x", b"2147483648"):
        msg = receive_request(b"PQUERY ALL P2P-DI/1.0\r\nHost: a\r\nOffset: " + bad
                              + b"\r\n\r\n")
        assert isinstance(msg, di.Rejected) and msg.status == 400
    head = di.list_head(b"a 1\r\n", 1024)
    assert di.next_offset(head) == 1024 and di.next_offset(di.list_head(b"")) is None
