"""HTTP/1.1 server codec (protocol.http): requests whole, byte by byte and with trailing
bytes; every refusal with its status; answers byte for byte; hypothesis properties."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.errors import LocalProtocolError, RemoteProtocolError, Status
from p2pshare.protocol import (
    Connection,
    Data,
    EndOfMessage,
    Event,
    Request,
    Response,
    Role,
    State,
)
from p2pshare.protocol.http import (
    HttpConnection,
    error_response,
    interpret,
    keeps_alive,
    parse_query,
    response,
)

from .test_connection import CUTS
from .test_connection import mutated as mutated_from
from .wire import available, drive, split, tr

FUZZ = settings(max_examples=400, deadline=None)


def head(method: str = "GET", target: str = "/", version: str = "HTTP/1.1",
         *headers: tuple[str, str]) -> Request:
    return Request(method, target, version, headers or (("Host", "h"),))


# ------------------------------------------------------------------ reading requests
def test_get_whole_byte_by_byte_and_with_trailing_bytes() -> None:
    data = b"GET /api/state?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nAccept: */*\r\n\r\n"
    expected: list[Event] = [Request("GET", "/api/state?x=1", "HTTP/1.1",
                                   (("Host", "localhost:8080"), ("Accept", "*/*"))),
                             EndOfMessage()]
    tr(HttpConnection, data, expected, trailing=b"GET / HTTP/1.1\r\n")


def test_a_small_body_is_read_and_bare_lf_is_tolerated() -> None:
    data = b"POST /x HTTP/1.0\nContent-Length: 3\n\nabc"
    expected: list[Event] = [Request("POST", "/x", "HTTP/1.0", (("Content-Length", "3"),)),
                             Data(b"abc"), EndOfMessage()]
    tr(HttpConnection, data, expected, trailing=b"GET")


@pytest.mark.parametrize(("data", "status"), [
    (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", Status.VERSION_NOT_SUPPORTED),
    (b"GET / HTTP/1.2\r\nHost: h\r\n\r\n", Status.VERSION_NOT_SUPPORTED),
    (b"GET / P2P-CI/1.0\r\nHost: h\r\n\r\n", Status.BAD_REQUEST),
    (b"GET /\r\n\r\n", Status.BAD_REQUEST),  # HTTP/0.9
    (b"GET / x HTTP/1.1\r\nHost: h\r\n\r\n", Status.BAD_REQUEST),
    (b"GET / HTTP/1.1\r\n\r\n", Status.BAD_REQUEST),  # no Host
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Status.BAD_REQUEST),
    (b"GET /" + b"a" * limits.MAX_HTTP_TARGET + b" HTTP/1.1\r\nHost: h\r\n\r\n",
     Status.URI_TOO_LONG),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
     Status.NOT_IMPLEMENTED),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % (limits.MAX_HTTP_BODY + 1),
     Status.CONTENT_TOO_LARGE),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", Status.BAD_REQUEST),
    (b"GET / HTTP/1.1\r\nHost h\r\n\r\n", Status.BAD_REQUEST),
])
def test_refusals_carry_their_status(data: bytes, status: Status) -> None:
    for chunks in ([data], [data[i:i + 1] for i in range(len(data))]):
        conn = HttpConnection()
        with pytest.raises(RemoteProtocolError) as caught:
            for chunk in chunks:
                conn.receive_data(chunk)
                available(conn)
        assert caught.value.status == status
        assert conn.their_state is State.ERROR
        assert conn.send_all(*error_response(status)).startswith(
            f"HTTP/1.1 {int(status)} ".encode())


def test_the_505_phrase_names_http() -> None:
    conn = HttpConnection()
    conn.receive_data(b"GET / HTTP/3.0\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        available(conn)
    assert conn.send_all(*error_response(Status.VERSION_NOT_SUPPORTED)) == (
        b"HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain; charset=utf-8"
        b"\r\nContent-Length: 31\r\nConnection: close\r\n\r\n"
        b"505 HTTP Version Not Supported\n")


# ------------------------------------------------------------------ keep-alive
@pytest.mark.parametrize(("version", "connection", "alive"), [
    ("HTTP/1.1", None, True), ("HTTP/1.1", "close", False), ("HTTP/1.1", "Keep-Alive, Close",
                                                             False),
    ("HTTP/1.0", None, False), ("HTTP/1.0", "keep-alive", True),
])
def test_keep_alive_rules(version: str, connection: str | None, alive: bool) -> None:
    headers = (("Host", "h"),) + ((("Connection", connection),) if connection else ())
    request = Request("GET", "/", version, headers)
    assert keeps_alive(request) is alive
    conn = HttpConnection()
    conn.receive_data(Connection(Role.CLIENT).send_all(request, EndOfMessage()))
    assert available(conn) == [request, EndOfMessage()]
    out = conn.send_all(*response(request, 200, "text/plain", b"ok"))
    assert (b"Connection: close" in out) is not alive
    assert conn.our_state is (State.IDLE if alive else State.MUST_CLOSE)


# ------------------------------------------------------------------ answers
def test_response_byte_for_byte() -> None:
    conn = HttpConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    request = available(conn)[0]
    assert isinstance(request, Request)
    assert conn.send_all(*response(request, 200, "text/html", b"<p>hi</p>",
                                   (("Date", "Fri, 04 Dec 2026 14:00:00 GMT"),))) == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 9\r\n"
        b"Date: Fri, 04 Dec 2026 14:00:00 GMT\r\n\r\n<p>hi</p>")
    assert conn.our_state is State.IDLE


def test_head_gets_the_length_but_no_body() -> None:
    conn = HttpConnection()
    conn.receive_data(b"HEAD /m HTTP/1.1\r\nHost: h\r\n\r\nGET /m HTTP/1.1\r\nHost: h\r\n\r\n")
    request = available(conn)[0]
    assert isinstance(request, Request)
    assert conn.send_all(*response(request, 200, "text/plain", b"12345")) == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n")
    assert available(conn)[0] == head("GET", "/m")  # the next request follows at once
    assert conn.send_all(*response(head("GET", "/m"), 200, "text/plain", b"12345")).endswith(
        b"\r\n\r\n12345")


def test_a_response_must_be_final_and_its_body_as_long_as_it_says() -> None:
    with pytest.raises(LocalProtocolError):
        response(head(), 101, "text/plain", b"")
    conn = HttpConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    available(conn)
    with pytest.raises(LocalProtocolError):
        conn.send_all(Response(200, "HTTP/1.1", (("Content-Length", "2"),)), Data(b"abc"))


# ------------------------------------------------------------------ targets
def test_interpret_origin_and_absolute_forms() -> None:
    got = interpret(head("GET", "/announce?info_hash=%00%ff%20+a&port=6881&info_hash=x&flag"))
    assert got.path == "/announce"
    assert got.query == {"info_hash": [b"\x00\xff  a", b"x"], "port": [b"6881"], "flag": [b""]}
    got = interpret(head("GET", "http://example.org:80/a%20b?%C3%A9=1"))
    assert (got.path, got.query) == ("/a b", {"\u00e9": [b"1"]})
    assert interpret(head("GET", "HTTP://h")).path == "/"


@pytest.mark.parametrize("target", [
    "*", "api", "/a%2", "/a%zz", "/a?b=%g0", "/%ff", "/a%00", "/a#frag", "/\u00e9",
    "/\ufffd", "/?%ff=1", "/?" + "&".join(["a"] * (limits.MAX_QUERY_FIELDS + 1)),
])
def test_bad_targets_are_400(target: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        interpret(head("GET", target))
    assert caught.value.status == Status.BAD_REQUEST


@given(st.dictionaries(st.text(min_size=1, max_size=10),
                       st.lists(st.binary(max_size=24), min_size=1, max_size=3), max_size=6))
@settings(max_examples=300, deadline=None)
def test_query_round_trip(query: dict[str, list[bytes]]) -> None:
    """What ``urllib.parse.urlencode`` (an independent encoder) writes reads back."""
    clean = {k: v for k, v in query.items() if not any(c < " " or c == "\x7f" for c in k)}
    encoded = urllib.parse.urlencode([(k, v) for k, vs in clean.items() for v in vs])
    assert parse_query(encoded) == clean


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_path_round_trip(path: str) -> None:
    quoted = "/" + urllib.parse.quote(path, safe="")
    if any(c < " " or c == "\x7f" for c in path):
        with pytest.raises(RemoteProtocolError):
            interpret(head("GET", quoted))
    else:
        assert interpret(head("GET", quoted)).path == "/" + path


# ------------------------------------------------------------------ random bytes
CORPUS = [
    b"GET /announce?info_hash=%12%34&port=1 HTTP/1.1\r\nHost: t\r\n\r\n",
    b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab",
]


@FUZZ
@given(st.binary(max_size=300) | mutated_from(CORPUS), CUTS, st.booleans())
def test_random_bytes_give_events_or_remote_protocol_error(data: bytes, cuts: list[int],
                                                          eof: bool) -> None:
    """Random or mutated requests: events or RemoteProtocolError (4xx/5xx), nothing else;
    each request that comes out is one ``interpret`` decodes or refuses with a 400."""
    for event in drive(HttpConnection(), split(data, cuts), eof=eof):
        if isinstance(event, Request):
            try:
                interpret(event)
            except RemoteProtocolError as exc:
                assert exc.status == Status.BAD_REQUEST


# ------------------------------------------------------------------ round trips
TOKEN = st.text("!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-",
                min_size=1, max_size=12)
TARGET = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
                 max_size=60).map(lambda t: "/" + t)
VALUE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20)


@given(TOKEN, TARGET, st.sampled_from(["HTTP/1.1", "HTTP/1.0"]),
       st.lists(st.tuples(TOKEN.filter(lambda n: n.lower() not in {
           "host", "content-length", "transfer-encoding"}), VALUE), max_size=5),
       st.binary(max_size=40), CUTS)
@settings(max_examples=300, deadline=None)
def test_request_round_trip(method: str, target: str, version: str,
                            headers: list[tuple[str, str]], body: bytes,
                            cuts: list[int]) -> None:
    """Any request our client side writes is read back as it was, however it is cut."""
    head = (("Host", "h"), *headers, ("Content-Length", str(len(body))))
    request = Request(method, target, version, head)
    data = Connection(Role.CLIENT).send_all(request, Data(body), EndOfMessage())
    conn = HttpConnection()
    events = []
    for chunk in split(data, cuts):
        conn.receive_data(chunk)
        events += available(conn)
    got = b"".join(e.data for e in events if isinstance(e, Data))
    assert events[0] == request and events[-1] == EndOfMessage() and got == body
    assert conn.keep_alive is keeps_alive(request)
