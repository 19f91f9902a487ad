"""P2P-CI/1.0 on the wire: the handout's own messages, byte-exact, both ways (docs/p2p-ci.md#p2s).

Every fixture below is copied from the handout's examples in docs/p2p-ci.md#p2s-examples,
docs/p2p-ci.md#p2s-responses and docs/p2p-ci.md#get-response (CRLF line ends added where
the handout's grammar puts them, and left out where its examples leave them out).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.errors import LocalProtocolError, RemoteProtocolError, Status
from p2pshare.protocol import (
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Framing,
    Lines,
    Request,
    Response,
    State,
    ci,
    get_header,
)
from p2pshare.protocol._grammar import parse_http_date
from p2pshare.protocol.ci import CIRequest, Method, Record, Rejected

from .wire import available, client_after, events_of, split, tr

V = "P2P-CI/1.0"
HOST = "thishost.csc.ncsu.edu"

# ----------------------------------------------------------------------------- fixtures
# 2.2: the three P2S requests, in the handout's header order.
ADD_123 = (b"ADD RFC 123 P2P-CI/1.0\r\n"
           b"Host: thishost.csc.ncsu.edu\r\n"
           b"Port: 5678\r\n"
           b"Title: A Proferred Official ICP\r\n"
           b"\r\n")
LOOKUP_3457 = (b"LOOKUP RFC 3457 P2P-CI/1.0\r\n"
               b"Host: thishost.csc.ncsu.edu\r\n"
               b"Port: 5678\r\n"
               b"Title: Requirements for IPsec Remote Access Scenarios\r\n"
               b"\r\n")
LIST_ALL = (b"LIST ALL P2P-CI/1.0\r\n"
            b"Host: thishost.csc.ncsu.edu\r\n"
            b"Port: 5678\r\n"
            b"\r\n")
# 3: the P2P request.
GET_1234 = (b"GET RFC 1234 P2P-CI/1.0\r\n"
            b"Host: somehost.csc.ncsu.edu\r\n"
            b"OS: Mac OS 10.4.1\r\n"
            b"\r\n")
# 2.3: the ADD response exactly as printed: no blank line after the status (A1), and none
# at the end either (A2).
LINE_123 = b"RFC 123 A Proferred Official ICP thishost.csc.ncsu.edu 5678"
ADD_REPLY_AS_PRINTED = b"P2P-CI/1.0 200 OK\r\n" + LINE_123 + b"\r\n"
# 3: the GET response as printed: Content-Type text/text (A5), a single-digit hour, and
# the data right after the last header, with no blank line.
GET_HEAD_AS_PRINTED = (b"P2P-CI/1.0 200 OK\r\n"
                       b"Date: Wed, 12 Feb 2009 15:12:05 GMT\r\n"
                       b"OS: Mac OS 10.2.1\r\n"
                       b"Last-Modified: Thu, 21 Jan 2001 9:23:46 GMT\r\n"
                       b"Content-Length: 12345\r\n"
                       b"Content-Type: text/text\r\n")
GET_BODY = (b"(data data data ...)\r\n" * 600)[:12345]
# 4 (DEMO-2025): a peer's registration reply as the demo prints it.
DEMO_REPLY = b"P2P-CI/1.0 200 OK\r\nRFC 123 TCP/IP Illustrated peerA 5678\r\n"

ADD_REQ = CIRequest(Method.ADD, 123, HOST, 5678, "A Proferred Official ICP")
LOOKUP_REQ = CIRequest(Method.LOOKUP, 3457, HOST, 5678,
                       "Requirements for IPsec Remote Access Scenarios")
LIST_REQ = CIRequest(Method.LIST, None, HOST, 5678)
GET_REQ = CIRequest(Method.GET, 1234, "somehost.csc.ncsu.edu", os="Mac OS 10.4.1")
HANDOUT_REQUESTS = [
    pytest.param(ADD_123, ADD_REQ, id="ADD"),
    pytest.param(LOOKUP_3457, LOOKUP_REQ, id="LOOKUP"),
    pytest.param(LIST_ALL, LIST_REQ, id="LIST"),
    pytest.param(GET_1234, GET_REQ, id="GET"),
]


def server_for(req: CIRequest) -> Connection:
    if req.method is Method.GET:
        return ci.upload_server_connection()
    return ci.index_server_connection()


def p2s_client() -> Connection:
    """An index client that has sent LIST ALL and waits for the reply."""
    return client_after(ci.index_client_connection, ci.to_event(LIST_REQ))


def get_client() -> Connection:
    return client_after(ci.upload_client_connection, ci.to_event(GET_REQ))


def ok(reason: str = "OK", status: int = 200) -> Response:
    return Response(status, V, (), reason)


# ----------------------------------------------------------------------------- requests
@pytest.mark.parametrize(("data", "req"), HANDOUT_REQUESTS)
def test_handout_requests_are_read(data: bytes, req: CIRequest) -> None:
    event = ci.to_event(req)
    tr(lambda: server_for(req), data, [event, EndOfMessage()], trailing=b"LIST ALL P2P")
    assert ci.interpret(event) == req


@pytest.mark.parametrize(("data", "req"), HANDOUT_REQUESTS)
def test_handout_requests_are_sent_exactly(data: bytes, req: CIRequest) -> None:
    conn = ci.upload_client_connection() if req.method is Method.GET else (
        ci.index_client_connection())
    assert conn.send_all(ci.to_event(req), EndOfMessage()) == data


@pytest.mark.parametrize("data", [
    pytest.param(ADD_123.replace(b"P2P-CI/1.0\r\n", b"P2P-CI/1.0 \r\n", 1), id="trailing space"),
    pytest.param(ADD_123.replace(b"\r\n", b"\n"), id="bare LF"),
    pytest.param(ADD_123.replace(b": ", b":"), id="no space after colon"),
    pytest.param(ADD_123.replace(b"Host", b"HOST").replace(b"Title", b"title"), id="case"),
    pytest.param(ADD_123.replace(b"ADD RFC 123 P2P-CI/1.0", b"add rfc 123 p2p-ci/1.0"),
                 id="lower-case line"),
    pytest.param(ADD_123.replace(b"RFC 123", b"RFC123"), id="RFC123"),
    pytest.param(ADD_123.replace(b"RFC 123", b"RFC \t 123"), id="tab"),
    pytest.param(b"\r\n" + ADD_123, id="blank line first"),
])
def test_tolerated_request_forms(data: bytes) -> None:
    events = events_of(ci.index_server_connection(), [data])
    assert isinstance(events[0], Request) and events[1:] == [EndOfMessage()]
    assert ci.interpret(events[0]) == ADD_REQ


def test_ci_2018_second_example_with_its_trailing_space() -> None:
    data = (b"ADD RFC 2345 P2P-CI/1.0 \r\nHost: thishost.csc.ncsu.edu\r\nPort: 5678\r\n"
            b"Title: Domain Names and Company Name Retrieval\r\n\r\n")
    events = events_of(ci.index_server_connection(), [data])
    assert isinstance(events[0], Request)
    assert ci.interpret(events[0]) == CIRequest(
        Method.ADD, 2345, HOST, 5678, "Domain Names and Company Name Retrieval")


def test_extension_remove_and_tolerated_lookup_without_title() -> None:
    remove = b"REMOVE RFC 7 P2P-CI/1.0\r\nHost: h\r\nPort: 9\r\n\r\n"
    lookup = b"LOOKUP RFC 7 P2P-CI/1.0\r\n\r\n"
    assert interpreted(remove) == CIRequest(Method.REMOVE, 7, "h", 9)
    assert interpreted(lookup) == CIRequest(Method.LOOKUP, 7, "")


# ----------------------------------------------------------------------------- 400 / 505
def interpreted(data: bytes) -> CIRequest | Rejected:
    """What the index server makes of ``data``; the connection must survive it."""
    conn = ci.index_server_connection()
    events = events_of(conn, [data + LIST_ALL])
    assert isinstance(events[0], Request) and events[1] == EndOfMessage()
    result = ci.interpret(events[0])
    status = result.status if isinstance(result, Rejected) else Status.OK
    conn.send_all(ci.p2s_response(status), EndOfMessage())
    assert available(conn) == [ci.to_event(LIST_REQ), EndOfMessage()]  # and it goes on
    return result


def add(target: bytes = b"RFC 5", **headers: bytes) -> bytes:
    """An ADD with valid headers unless given; a header given as b"-" is left out."""
    values = {"Host": b"h", "Port": b"1", "Title": b"t"} | {
        k.capitalize(): v for k, v in headers.items()}
    lines = [b"%s: %s" % (k.encode(), v) for k, v in values.items() if v != b"-"]
    return b"ADD " + target + b" P2P-CI/1.0\r\n" + b"".join(x + b"\r\n" for x in lines) + b"\r\n"


BAD_REQUESTS = [
    b"FOO RFC 1 P2P-CI/1.0\r\n\r\n",
    b"ADDX RFC 1 P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\nTitle: t\r\n\r\n",
    b"LIST P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n",
    b"LIST EVERYTHING P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n",
    b"LIST RFC 1 P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n",
    add(b"RFC abc"), add(b"RFC 0"), add(b"RFC -1"), add(b"RFC 99999999999"),
    add(b"RFC %d" % (limits.MAX_RFC_NUMBER + 1)), add(b"RFC " + b"9" * 30), add(b"RFC 1.5"),
    add(b"RFC"), add(b"123"), add(b"RFC 1 2"), add(b"RFC \xd9\xa1"), add(b""),
    add(title=b"-"), add(port=b"-"), add(host=b"-"), add(title=b""), add(host=b"  "),
    add(port=b"http"), add(port=b"0"), add(port=b"70000"), add(port=b"-1"), add(port=b"1 2"),
    add(port=b"\xd9\xa1"),
    add(title=b"t" * (limits.MAX_TITLE + 1)), add(host=b"h" * (limits.MAX_HOSTNAME + 1)),
    add(host=b"a b"), add(host=b"a\tb"),
    add(title=b"caf\xe9"), add(host=b"\xff"), add(b"RFC 5\xff"), add(os=b"\x80"),
    add(os=b"o" * (limits.MAX_OS + 1)),
    b"REMOVE RFC 1 P2P-CI/1.0\r\nHost: h\r\n\r\n",
    b"GET RFC 1 P2P-CI/1.0\r\nOS: x\r\n\r\n",
    b"\xff\xfe RFC 1 P2P-CI/1.0\r\n\r\n",
]
OLD_VERSIONS = [
    b"LIST ALL P2P-CI/2.0\r\nHost: h\r\nPort: 1\r\n\r\n",
    b"ADD RFC 5 P2P-CI/1.1\r\nHost: h\r\nPort: 1\r\nTitle: t\r\n\r\n",
    b"FOO RFC 1 P2P-CI/2.0\r\n\r\n",  # the version is checked before the method (2.4)
    b"LIST P2P-CI/2.0\r\n\r\n",
    b"LIST ALL HTTP/1.1\r\n\r\n",
    b"LIST ALL garbage\r\n\r\n",
    b"ADD RFC 5\r\nHost: h\r\nPort: 1\r\nTitle: t\r\n\r\n",  # no version: "5" is not it
    b"LIST ALL P2P-CI/1.0\xff\r\n\r\n",
    b"LIST ALL P2P-DI/1.0\r\n\r\n",
]


def ids(cases: list[bytes]) -> list[str]:
    return [c.split(b"\r\n")[0].decode("ascii", "replace")[:40] + f"#{i}"
            for i, c in enumerate(cases)]


@pytest.mark.parametrize("data", BAD_REQUESTS, ids=ids(BAD_REQUESTS))
def test_bad_requests_are_400_and_keep_the_connection(data: bytes) -> None:
    result = interpreted(data)
    assert isinstance(result, Rejected) and result.status is Status.BAD_REQUEST


@pytest.mark.parametrize("data", OLD_VERSIONS, ids=ids(OLD_VERSIONS))
def test_other_versions_are_505(data: bytes) -> None:
    result = interpreted(data)
    assert isinstance(result, Rejected) and result.status is Status.VERSION_NOT_SUPPORTED


def test_interpret_never_raises_on_hand_made_requests() -> None:
    for req in (Request("", "", ""), Request("ADD", "RFC 1", V, (("Title", "\ud800"),)),
                Request("ADD", "RFC 1", V, (("Port", " 12 "), ("Host", "h"), ("Title", "t")))):
        assert isinstance(ci.interpret(req), (Rejected, CIRequest))


# ----------------------------------------------------------------------------- P2S replies
REPLY_200 = b"P2P-CI/1.0 200 OK\r\n\r\n" + LINE_123 + b"\r\n\r\n"
NEXT = b"P2P-CI/1.0 404 Not Found\r\n"


def test_grammar_reply() -> None:
    tr(p2s_client, REPLY_200, [ok(), Lines((LINE_123,)), EndOfMessage()], trailing=NEXT)


@pytest.mark.parametrize("data", [ADD_REPLY_AS_PRINTED, DEMO_REPLY])
def test_reply_without_any_blank_line_ends_by_pause_next_status_or_close(data: bytes) -> None:
    line = data.split(b"\r\n")[1]
    expected: list[Event] = [ok(), Lines((line,)), EndOfMessage()]
    tr(p2s_client, data, expected, end="pause", trailing=NEXT)  # A1 + A2
    tr(p2s_client, data, [*expected, ConnectionClosed()], end="eof")


def test_reply_without_blank_after_status_but_with_the_final_one() -> None:
    tr(p2s_client, ADD_REPLY_AS_PRINTED + b"\r\n", [ok(), Lines((LINE_123,)), EndOfMessage()],
       trailing=NEXT)


def test_reply_without_the_final_blank_line() -> None:
    data = b"P2P-CI/1.0 200 OK\r\n\r\n" + LINE_123 + b"\r\nRFC 1 One h 2\r\n"
    tr(p2s_client, data, [ok(), Lines((LINE_123, b"RFC 1 One h 2")), EndOfMessage()],
       end="pause", trailing=NEXT)


def test_last_line_without_its_end_counts_after_a_pause() -> None:
    data = b"P2P-CI/1.0 200 OK\r\n\r\n" + LINE_123
    tr(p2s_client, data, [ok(), Lines((LINE_123,)), EndOfMessage()], end="pause")
    tr(p2s_client, data + b"\r", [ok(), Lines((LINE_123,)), EndOfMessage()], end="pause")


@pytest.mark.parametrize(("data", "head"), [
    (b"P2P-CI/1.0 200 OK\r\n", ok()),
    (b"P2P-CI/1.0 200 OK\r\n\r\n", ok()),
    (b"P2P-CI/1.0 404 Not Found", ok("Not Found", 404)),
])
def test_a_status_line_then_silence(data: bytes, head: Response) -> None:
    tr(p2s_client, data, [head, EndOfMessage()], end="pause")


@pytest.mark.parametrize(("data", "head"), [
    (b"P2P-CI/1.0 404 Not Found\r\n\r\n", ok("Not Found", 404)),
    (b"P2P-CI/1.0 400 Bad Request\r\n\r\n", ok("Bad Request", 400)),
    (b"P2P-CI/1.0 505 P2P-CI Version Not Supported\r\n\r\n",
     ok("P2P-CI Version Not Supported", 505)),
    (b"P2P-CI/1.0 200 OK\r\n\r\n\r\n", ok()),  # an empty LIST (A7)
    (b"P2P-CI/1.0 404 Not Found\n\n", ok("Not Found", 404)),
])
def test_replies_without_data_end_at_once(data: bytes, head: Response) -> None:
    """A3: ``status CRLF CRLF`` is a whole error reply: no pause needed."""
    tr(p2s_client, data, [head, EndOfMessage()], trailing=b"P2P-CI/1.0 200 OK\r\n")


def test_a3_extra_crlf_is_skipped_before_the_next_reply() -> None:
    conn = p2s_client()
    assert events_of(conn, [b"P2P-CI/1.0 404 Not Found\r\n\r\n\r\n"]) == [
        ok("Not Found", 404), EndOfMessage()]
    assert conn.our_state is State.IDLE
    conn.send_all(ci.to_event(LIST_REQ), EndOfMessage())
    assert events_of(conn, [REPLY_200]) == [ok(), Lines((LINE_123,)), EndOfMessage()]


def test_the_extra_crlf_then_a_close_is_a_clean_close() -> None:
    conn = p2s_client()
    events = events_of(conn, [b"P2P-CI/1.0 404 Not Found\r\n\r\n\r\n"], end="eof")
    assert events == [ok("Not Found", 404), EndOfMessage(), ConnectionClosed()]


def test_one_connection_many_reply_styles() -> None:
    """A persistent P2S connection: each reply framed another way, all in one read."""
    replies = [REPLY_200, ADD_REPLY_AS_PRINTED, b"P2P-CI/1.0 404 Not Found\r\n\r\n\r\n",
               b"P2P-CI/1.0 200 OK\r\n\r\n\r\n", b"P2P-CI/1.0 200 OK\n\nRFC 1 a h 1\n\n"]
    conn = p2s_client()
    conn.receive_data(b"".join(replies))
    seen: list[Event] = []
    for _ in replies:
        if conn.our_state is State.IDLE:
            conn.send_all(ci.to_event(LIST_REQ), EndOfMessage())
        seen += available(conn)
    assert [e.status for e in seen if isinstance(e, Response)] == [200, 200, 404, 200, 200]
    assert [e.lines for e in seen if isinstance(e, Lines)] == [
        (LINE_123,), (LINE_123,), (b"RFC 1 a h 1",)]
    assert seen.count(EndOfMessage()) == 5


# ----------------------------------------------------------------------------- GET replies
HANDOUT_GET_HEADERS = (
    ("Date", "Wed, 12 Feb 2009 15:12:05 GMT"),
    ("OS", "Mac OS 10.2.1"),
    ("Last-Modified", "Thu, 21 Jan 2001 9:23:46 GMT"),
    ("Content-Length", "12345"),
    ("Content-Type", "text/text"),
)


def test_handout_get_reply_without_blank_line() -> None:
    head = Response(200, V, HANDOUT_GET_HEADERS, "OK")
    tr(get_client, GET_HEAD_AS_PRINTED + GET_BODY, [head, Data(GET_BODY), EndOfMessage()],
       trailing=b"junk after the body")
    last_modified = get_header(HANDOUT_GET_HEADERS, "Last-Modified")
    assert last_modified is not None
    assert parse_http_date(last_modified) == datetime(2001, 1, 21, 9, 23, 46, tzinfo=UTC)


def test_get_reply_with_the_blank_line() -> None:
    head = Response(200, V, HANDOUT_GET_HEADERS, "OK")
    tr(get_client, GET_HEAD_AS_PRINTED + b"\r\n" + GET_BODY,
       [head, Data(GET_BODY), EndOfMessage()], trailing=b"x")


def test_get_reply_whose_body_starts_like_a_header_needs_the_blank_line() -> None:
    body = b"Title: not a header\r\n"
    head = Response(200, V, (("Content-Length", str(len(body))),), "OK")
    data = b"P2P-CI/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    tr(get_client, data, [head, Data(body), EndOfMessage()], trailing=b"x")


def test_get_reply_short_body_without_blank_line_ends_at_close() -> None:
    data = b"P2P-CI/1.0 200 OK\r\nContent-Length: 5\r\nhello"
    head = Response(200, V, (("Content-Length", "5"),), "OK")
    tr(get_client, data, [head, Data(b"hello"), EndOfMessage(), ConnectionClosed()], end="eof")


def test_get_reply_without_length_runs_to_the_close() -> None:
    data = b"P2P-CI/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall the bytes"
    head = Response(200, V, (("Content-Type", "text/plain"),), "OK")
    tr(get_client, data, [head, Data(b"all the bytes"), EndOfMessage(), ConnectionClosed()],
       end="eof")


def test_get_error_reply() -> None:
    data = (b"P2P-CI/1.0 404 Not Found\r\nDate: Wed, 12 Feb 2009 15:12:05 GMT\r\n"
            b"OS: Linux\r\n\r\n")
    head = Response(404, V, (("Date", "Wed, 12 Feb 2009 15:12:05 GMT"), ("OS", "Linux")),
                    "Not Found")
    tr(get_client, data, [head, EndOfMessage()], trailing=b"x")


# ----------------------------------------------------------------------------- what we send
def p2s_server() -> Connection:
    conn = ci.index_server_connection()
    assert len(events_of(conn, [ADD_123])) == 2
    return conn


def test_p2s_200_is_status_blank_lines_blank() -> None:
    data = p2s_server().send_all(ci.p2s_response(Status.OK), Lines((ADD_REQ_LINE,)),
                                 EndOfMessage())
    assert data == b"P2P-CI/1.0 200 OK\r\n\r\n" + LINE_123 + b"\r\n\r\n"


ADD_REQ_LINE = Record(123, "A Proferred Official ICP", HOST, 5678).to_line()


def test_empty_list_is_status_and_two_blank_lines() -> None:
    data = p2s_server().send_all(ci.p2s_response(Status.OK), EndOfMessage())
    assert data == b"P2P-CI/1.0 200 OK\r\n\r\n\r\n"


@pytest.mark.parametrize(("status", "data"), [
    (Status.NOT_FOUND, b"P2P-CI/1.0 404 Not Found\r\n\r\n"),
    (Status.BAD_REQUEST, b"P2P-CI/1.0 400 Bad Request\r\n\r\n"),
    (Status.VERSION_NOT_SUPPORTED, b"P2P-CI/1.0 505 P2P-CI Version Not Supported\r\n\r\n"),
])
def test_p2s_errors_are_status_and_one_blank_line(status: Status, data: bytes) -> None:
    assert p2s_server().send_all(ci.p2s_response(status), EndOfMessage()) == data


def test_p2s_error_after_a_framing_error() -> None:
    conn = ci.index_server_connection()
    with pytest.raises(RemoteProtocolError) as info:
        events_of(conn, [b"LIST ALL P2P-CI/1.0\r\n" + b"X: y\r\n" * 40 + b"\r\n"])
    data = conn.send_all(ci.p2s_response(info.value.status), EndOfMessage())
    assert data == b"P2P-CI/1.0 400 Bad Request\r\n\r\n"


def upload_server() -> Connection:
    conn = ci.upload_server_connection()
    assert len(events_of(conn, [GET_1234])) == 2
    return conn


def test_get_200_head_in_the_handout_order() -> None:
    head = ci.file_response(12345, mtime=980069026, os_name="Linux 6.1", now=1234451525)
    data = upload_server().send_all(head)
    assert data == (b"P2P-CI/1.0 200 OK\r\n"
                    b"Date: Thu, 12 Feb 2009 15:12:05 GMT\r\n"
                    b"OS: Linux 6.1\r\n"
                    b"Last-Modified: Sun, 21 Jan 2001 09:23:46 GMT\r\n"
                    b"Content-Length: 12345\r\n"
                    b"Content-Type: text/plain\r\n"
                    b"\r\n")


def test_get_200_then_the_exact_body_then_must_close() -> None:
    conn = upload_server()
    data = conn.send_all(ci.file_response(5, 0, "x", now=0), Data(b"\x00\xffab"), Data(b"\n"),
                         EndOfMessage())
    assert data.endswith(b"Content-Type: text/plain\r\n\r\n\x00\xffab\n")
    assert conn.our_state is State.MUST_CLOSE
    events = events_of(get_client(), [data], end="eof")
    assert events[1:] == [Data(b"\x00\xffab\n"), EndOfMessage(), ConnectionClosed()]


@pytest.mark.parametrize("status", [Status.BAD_REQUEST, Status.NOT_FOUND,
                                    Status.VERSION_NOT_SUPPORTED])
def test_get_errors(status: Status) -> None:
    data = upload_server().send_all(ci.upload_error(status, "Linux", now=0), EndOfMessage())
    assert data == (f"P2P-CI/1.0 {status.value} {status.phrase}\r\n"
                    "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\nOS: Linux\r\n\r\n").encode()


# ----------------------------------------------------------------------------- to_event
@pytest.mark.parametrize(("req", "headers"), [
    (CIRequest(Method.ADD, 1, "h", 2, "t"), (("Host", "h"), ("Port", "2"), ("Title", "t"))),
    (CIRequest(Method.LOOKUP, 1, "h", 2), (("Host", "h"), ("Port", "2"))),
    (CIRequest(Method.LIST, None, "h", 2, "ignored"), (("Host", "h"), ("Port", "2"))),
    (CIRequest(Method.REMOVE, 1, "h", 2), (("Host", "h"), ("Port", "2"))),
    (CIRequest(Method.GET, 1, "h"), (("Host", "h"), ("OS", ""))),
    (CIRequest(Method.GET, 1, "h", 2, "t", "os"), (("Host", "h"), ("OS", "os"))),
])
def test_to_event_headers(req: CIRequest, headers: tuple[tuple[str, str], ...]) -> None:
    assert ci.to_event(req).headers == headers


@pytest.mark.parametrize("req", [
    CIRequest(Method.ADD, 1, "h", 2),
    CIRequest(Method.ADD, 1, "h", None, "t"),
    CIRequest(Method.ADD, 1, "", 2, "t"),
    CIRequest(Method.ADD, None, "h", 2, "t"),
    CIRequest(Method.LOOKUP, None, "h", 2),
    CIRequest(Method.REMOVE, 1, "h"),
    CIRequest(Method.GET, 1, ""),
])
def test_to_event_refuses_incomplete_requests(req: CIRequest) -> None:
    with pytest.raises(LocalProtocolError):
        ci.to_event(req)


def test_response_framing_and_connections() -> None:
    assert ci.response_framing(Request("GET", "RFC 1", V)) is Framing.LENGTH
    assert ci.response_framing(Request("get", "RFC 1", V)) is Framing.LENGTH
    for method in ("ADD", "LOOKUP", "LIST", "REMOVE", "FOO"):
        assert ci.response_framing(Request(method, "x", V)) is Framing.LINES
    assert ci.index_server_connection().keep_alive and ci.index_client_connection().keep_alive
    assert not ci.upload_server_connection().keep_alive
    assert not ci.upload_client_connection().keep_alive


# ----------------------------------------------------------------------------- records
def test_record_line_is_the_handout_example() -> None:
    assert Record(123, "A Proferred Official ICP", HOST, 5678).to_line() == LINE_123
    assert ci.parse_record(LINE_123) == Record(123, "A Proferred Official ICP", HOST, 5678)


@pytest.mark.parametrize(("line", "record"), [
    (b"RFC 1 T h 2", Record(1, "T", "h", 2)),
    (b"RFC 1  h 2", Record(1, "", "h", 2)),
    (b"RFC 1 h 2", Record(1, "", "h", 2)),
    (b"1 Title words h 2", Record(1, "Title words", "h", 2)),
    (b"rfc\t1\tTab\tsep\th\t2\t", Record(1, "Tab\tsep", "h", 2)),
    (b"  RFC 1 In  between  h 2  ", Record(1, "In  between", "h", 2)),
    (b"RFC 1 RFC 2 3 h 4", Record(1, "RFC 2 3", "h", 4)),
    (b"RFC 1 caf\xc3\xa9 h 2", Record(1, "caf\u00e9", "h", 2)),
])
def test_parse_record(line: bytes, record: Record) -> None:
    assert ci.parse_record(line) == record


@pytest.mark.parametrize("line", [
    b"", b"RFC", b"RFC 1", b"RFC 1 h", b"h 2", b"RFC x T h 2", b"RFC 0 T h 2",
    b"RFC 1 T h 0", b"RFC 1 T h 70000", b"RFC 1 T h x", b"RFC1 T h 2", b"RFC 1 T h \xd9\xa1",
    b"RFC 1 caf\xe9 h 2", b"RFC " + b"9" * 20 + b" T h 2",
])
def test_malformed_records(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        ci.parse_record(line)


# ----------------------------------------------------------------------------- hypothesis
SETTINGS = settings(max_examples=300, deadline=None)
TEXT_CHAR = st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffd")
WORD = st.text(TEXT_CHAR.filter(lambda c: not c.isspace()), min_size=1, max_size=20)
TITLE = st.text(TEXT_CHAR | st.just("\t"), min_size=1, max_size=40).map(
    lambda t: t.strip(" \t")).filter(bool)
RFC = st.integers(limits.MIN_RFC_NUMBER, limits.MAX_RFC_NUMBER)
PORT = st.integers(1, limits.MAX_PORT)


@st.composite
def ci_requests(draw: st.DrawFn) -> CIRequest:
    """Any valid request in its canonical form (the fields its method carries)."""
    method = draw(st.sampled_from(list(Method)))
    host = draw(WORD)
    if method is Method.GET:
        return CIRequest(method, draw(RFC), host, os=draw(TITLE | st.just("")))
    if method is Method.LIST:
        return CIRequest(method, None, host, draw(PORT))
    title = draw(TITLE) if method is Method.ADD else draw(st.none() | TITLE)
    return CIRequest(method, draw(RFC), host, draw(PORT), title)


@SETTINGS
@given(ci_requests(), st.lists(st.integers(0, 500), max_size=5))
def test_ci_request_round_trip(req: CIRequest, cuts: list[int]) -> None:
    data = ci.index_client_connection().send_all(ci.to_event(req), EndOfMessage())
    events = events_of(server_for(req), split(data, cuts))
    assert isinstance(events[0], Request)
    assert ci.interpret(events[0]) == req


@SETTINGS
@given(RFC, st.just("") | TITLE, WORD, PORT)
def test_record_round_trip(rfc: int, title: str, host: str, port: int) -> None:
    record = Record(rfc, title, host, port)
    assert ci.parse_record(record.to_line()) == record


@SETTINGS
@given(st.binary(max_size=100))
def test_parse_record_raises_only_remote_errors(line: bytes) -> None:
    try:
        ci.parse_record(line)
    except RemoteProtocolError as exc:
        assert exc.status == 400


@SETTINGS
@given(st.text(max_size=12), st.text(max_size=20), st.text(max_size=12),
       st.lists(st.tuples(st.sampled_from(["Host", "Port", "Title", "OS", "X"]),
                          st.text(max_size=20)), max_size=5))
def test_interpret_never_raises(method: str, target: str, version: str,
                                headers: list[tuple[str, str]]) -> None:
    for v in (version, V):
        result = ci.interpret(Request(method, target, v, tuple(headers)))
        assert isinstance(result, (CIRequest, Rejected))
