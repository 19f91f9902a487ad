"""Every reader of a message head against every other: one grammar, one set of limits.

A head is generated (valid ones, and near misses: lines around ``MAX_LINE``, header counts
around ``MAX_HEADERS``, sizes around ``MAX_HEAD``, a missing colon, an empty name, bytes
that are not UTF-8, bare LF, folded lines, NULs and other controls) and the same bytes go
to every reader of that kind of head, whole, byte by byte, and followed by the start of
the next message. They must all accept it and read the same fields, or all refuse it.

Request heads: the server ``Connection`` of every protocol (and the index server's own),
and the index server's quick LOOKUP path, which may refuse what the others accept but
never the reverse. Response heads: the client ``Connection`` of every LENGTH-framed
exchange and the pipelined swarm client. A P2S reply (LINES framing) is read by the same
grammar with one more tolerance of its own (A1: a line that is not a header ends the head
and starts the data), so it is compared on heads whose lines are all ``Name: value``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import hypothesis.strategies as st
from hypothesis import example, given, settings

from p2pshare import limits
from p2pshare.errors import RemoteProtocolError, Status
from p2pshare.index.server import _connection as index_server_connection
from p2pshare.protocol import Connection, Data, EndOfMessage, Lines, Request, Response, ci, di
from p2pshare.protocol import swarm as sp

from .wire import available, byte_by_byte, client_after, merged

BIG = 2**62  # every client reader takes bodies this large, so that they compare
SWARM_ID = "a" * 64
TRAILING = {"request": b"LOOKUP RFC 1", "response": b"P2P-CI/1.0 20"}  # a next message
BODY = b"abc"  # after every head: a body of Content-Length 3, or the next bytes

# ------------------------------------------------------------------------ the readers
# (head, body, whether it ended, the bytes left after it) or why there is none
Outcome = tuple[Request | Response, bytes, bool, bytes] | str
REFUSED = "refused"

REQUEST_READERS: dict[str, Callable[[], Connection]] = {
    "P2P-CI index server": ci.index_server_connection,
    "the index server": index_server_connection,
    "P2P-CI upload server": ci.upload_server_connection,
    "P2P-DI server": di.server_connection,
    "P2P-SWARM server": sp.server_connection,
}
LENGTH_CLIENTS: dict[str, Callable[[], Connection]] = {
    "P2P-CI GET client": lambda: client_after(
        ci.upload_client_connection, Request("GET", "RFC 1", ci.VERSION, (("Host", "h"),))),
    "P2P-DI client": lambda: client_after(
        lambda: di.client_connection(BIG), Request("GETRFC", "RFC 1", "P2P-DI/1.0")),
    "P2P-SWARM client": lambda: client_after(
        lambda: sp.client_connection(BIG), sp.to_request(sp.GetPiece(SWARM_ID, 0))[0]),
}


def p2s_client() -> Connection:
    return client_after(ci.index_client_connection,
                        Request("LOOKUP", "RFC 1", ci.VERSION, (("Host", "h"), ("Port", "1"))))


def connection_outcome(conn: Connection, chunks: list[bytes], trailing: bytes) -> Outcome:
    """The first message the codec reads: its head, its body, whether it ended, and the
    bytes left after it but for ``trailing`` (which must be left untouched)."""
    events = []
    try:
        for chunk in chunks:
            conn.receive_data(chunk)
            events += available(conn)
    except RemoteProtocolError as exc:
        assert exc.status == 400
        return REFUSED
    events = merged(events)
    if not events:
        return "nothing"
    head, body = events[0], b""
    assert isinstance(head, (Request, Response))
    for event in events[1:]:
        if isinstance(event, Data):
            body += event.data
        elif isinstance(event, Lines):
            body += b"".join(line + b"\n" for line in event.lines)
    if not isinstance(events[-1], EndOfMessage):  # a 200 without length runs until the close
        return head, b"", False, b""  # (the next message's bytes are its body)
    left, closed = conn.trailing_data
    assert left.endswith(trailing) and not closed
    return head, body, True, left.removesuffix(trailing)


def pipelined_outcome(chunks: list[bytes]) -> tuple[Response, bytes | bytearray] | str:
    client = sp.PipelinedClient(BIG)
    client.send(*sp.to_request(sp.GetPiece(SWARM_ID, 0)))
    try:
        for chunk in chunks:
            client.receive_data(chunk)
            answer = client.next_answer()
            if answer is not None:
                return answer
    except RemoteProtocolError as exc:
        assert exc.status == 400
        return REFUSED
    return "nothing"


# ------------------------------------------------------------------------ the heads
CRLF_MOSTLY = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"])
REQUEST_STARTS = [
    b"LOOKUP RFC 3457 P2P-CI/1.0", b"GET RFC 1 P2P-CI/1.0", b"LIST ALL P2P-CI/1.0 ",
    b"PIECE " + SWARM_ID.encode() + b" 0 P2P-SWARM/1.0", b"REGISTER P2P-DI/1.0",
    b"  ADD\tRFC  1 \t P2P-CI/1.0\t", b"ADD", b"", b" \t", b"ADD RFC 1 P2P-CI/1.0\x00",
    b"ADD RFC \xff1 P2P-CI/1.0", b"A\x7fD RFC 1 P2P-CI/1.0", b"ADD RFC 1\rP2P-CI/1.0",
    b"\x00", b"ADD RFC\xc2\xa01 P2P-CI/1.0",
]
RESPONSE_STARTS = [
    b"P2P-CI/1.0 200 OK", b"P2P-SWARM/1.0 404 Not  Found", b"P2P-DI/1.0 200",
    b"P2P-CI/1.0\t503 Busy ", b"  P2P-CI/1.0 400 Bad Request", b"P2P-CI/1.0 2000 OK",
    b"HTTP 200 OK", b"P2P-CI/1.0", b"P2P-CI/1.0 200 caf\xe9", b"P2P-CI/1.0 200 O\x00K",
    b"200 OK", b"P2P-CI/1.0 200 OK\r", b"", b"P2P-CI/1.0 2\xd9\xa00 OK",
]
HEADERS = [
    b"Host: thishost.csc.ncsu.edu", b"Port: 5678", b"Title: A  title ", b"host:h",
    b"Title : spaced name", b"Empty:", b"Odd: a:b: c", b"Tab:\tv\t", b"Utf: caf\xc3\xa9",
    b"Content-Length: 0", b"Content-Length: 3", b"Content-Length:  3 ",
    b"Content-Length: x", b"Content-Length: -1", b"Content-Length: " + b"9" * 19,
    # near misses
    b"no colon", b": empty name", b"Bad Name: x", b" Host: folded", b"\tfolded",
    b"X: a\x00b", b"X: caf\xe9", b"N\xe9: x", b"X: a\rb", b"X: \x7f", b"(x): y",
    b"RFC 1 A title host 1", b"X:\x1b[31m", b"\xff\xfe", b"X: \r",
]
AROUND = (-1, 0, 1)


def filler(length: int) -> bytes:
    """A header line of exactly ``length`` bytes (at least 3)."""
    return b"F:" + b"f" * (length - 2)


@st.composite
def heads(draw: st.DrawFn, starts: list[bytes]) -> bytes:
    """One head, its blank line and ``BODY``: mostly valid, often just over a limit."""
    start = draw(st.sampled_from(starts))
    headers = draw(st.lists(st.sampled_from(HEADERS), max_size=4))
    limit = draw(st.sampled_from(["none", "none", "count", "line", "start line", "size"]))
    if limit == "count":  # header lines around MAX_HEADERS
        headers += [b"H: v"] * (limits.MAX_HEADERS - len(headers) + draw(st.sampled_from(AROUND)))
    elif limit == "line":  # one header line around MAX_LINE (its end not counted)
        at = draw(st.integers(0, len(headers)))
        headers.insert(at, filler(limits.MAX_LINE + draw(st.sampled_from(AROUND))))
    elif limit == "start line":  # trailing blanks are tolerated, but count
        start += b" " * (limits.MAX_LINE - len(start) + draw(st.sampled_from(AROUND)))
    eols = [draw(CRLF_MOSTLY) for _ in range(len(headers) + 1)]
    if limit == "size":  # the whole head around MAX_HEAD, line ends included
        missing = limits.MAX_HEAD + draw(st.sampled_from(AROUND)) - sum(
            len(line) + len(eol) for line, eol in zip([start, *headers], eols, strict=True))
        while missing > 0:  # lines of at most MAX_LINE
            share = min(missing - 2, limits.MAX_LINE)
            if 0 < missing - share - 2 < 5:
                share -= 5  # no filler line is shorter than 3 bytes
            headers.append(filler(share))
            eols.append(b"\r\n")
            missing -= share + 2
    lead = draw(st.lists(CRLF_MOSTLY, max_size=2))  # blank lines before the start line
    lines = b"".join(line + eol for line, eol in zip([start, *headers], eols, strict=True))
    return b"".join(lead) + lines + draw(CRLF_MOSTLY) + BODY


def feeds(data: bytes, kind: str) -> list[tuple[list[bytes], bytes]]:
    """Whole, byte by byte, and followed by the next message's start (what must be left)."""
    return [([data], b""), (byte_by_byte(data), b""), ([data + TRAILING[kind]], TRAILING[kind])]


# ------------------------------------------------------------------------ requests
HANDOUT_LOOKUP = (b"LOOKUP RFC 3457 P2P-CI/1.0\r\nHost: thishost.csc.ncsu.edu\r\n"
                  b"Port: 5678\r\nTitle: Requirements for IPsec Remote Access Scenarios\r\n\r\n")


def read_alike(readers: dict[str, Callable[[], Connection]], data: bytes, kind: str
               ) -> Outcome:
    """What every one of ``readers`` makes of ``data`` fed every way: one and the same."""
    seen = {(name, way): connection_outcome(make(), chunks, trailing)
            for way, (chunks, trailing) in enumerate(feeds(data, kind))
            for name, make in readers.items()}
    assert len(set(seen.values())) == 1, (data, seen)
    return next(iter(seen.values()))


def check_requests(data: bytes) -> Outcome:
    """Every request reader reads ``data`` alike, fed every way; returns that reading."""
    outcome = read_alike(REQUEST_READERS, data, "request")
    rfc = ci.quick_lookup(data)  # what the index server sees of one read at rest
    if rfc is not None:
        assert not isinstance(outcome, str)
        assert outcome[0] == Request("LOOKUP", f"RFC {rfc}", ci.VERSION, outcome[0].headers)
    return outcome


@given(heads(REQUEST_STARTS))
@example(HANDOUT_LOOKUP)
@example(b"LOOKUP RFC 1 P2P-CI/1.0\r\n" + b"H: v\r\n" * (limits.MAX_HEADERS + 1) + b"\r\n")
@settings(max_examples=200, deadline=None)
def test_every_request_reader_reads_a_head_alike(data: bytes) -> None:
    check_requests(data)


# ------------------------------------------------------------------------ responses
HEADER_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+[ \t]*:")  # RFC 9110 token, colon


def check_responses(data: bytes) -> Outcome:
    """Every LENGTH-framed response reader reads ``data`` alike (the pipelined swarm client
    also refuses a 200 without Content-Length: it cannot read a body until the close),
    and the P2S client reads the same head when every line is ``Name: value``."""
    outcome = read_alike(LENGTH_CLIENTS, data, "response")
    for chunks, trailing in feeds(data, "response"):
        if isinstance(outcome, str):
            assert pipelined_outcome(chunks) == outcome, data
        else:
            ended = outcome[:2] if outcome[2] else REFUSED  # a 200 that runs until the close
            assert pipelined_outcome(chunks) == ended, data
        if all_header_lines(data):
            p2s = connection_outcome(p2s_client(), chunks, trailing)
            assert head_of(p2s) == head_of(outcome), (data, p2s, outcome)
    return outcome


def head_of(outcome: Outcome) -> object:
    return outcome if isinstance(outcome, str) else outcome[0]


def all_header_lines(data: bytes) -> bool:
    lines = data.lstrip(b"\r\n").split(b"\n")
    end = next((i for i, line in enumerate(lines) if line in (b"", b"\r")), len(lines))
    return all(HEADER_LINE.match(line) for line in lines[1:end])


@given(heads(RESPONSE_STARTS))
@example(b"P2P-SWARM/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc")
@example(b"P2P-SWARM/1.0 200 OK\r\n" + b"H: v\r\n" * (limits.MAX_HEADERS + 8)
         + b"Content-Length: 3\r\n\r\nabc")  # the old swarm client took 40 headers
@example(b"P2P-SWARM/1.0 200 OK\r\nX: " + b"x" * (9 * 1024) + b"\r\nContent-Length: 3\r\n\r\nabc")
@settings(max_examples=200, deadline=None)
def test_every_response_reader_reads_a_head_alike(data: bytes) -> None:
    check_responses(data)


# ------------------------------------------------------------------------ the generator
def test_the_heads_reach_every_verdict() -> None:
    """The comparison is only worth what it is fed: valid heads, and refusals at each limit."""
    request = b"LOOKUP RFC 1 P2P-CI/1.0\r\n"
    answer = b"P2P-SWARM/1.0 404 Not Found\r\n"
    for start, check in ((request, check_requests), (answer, check_responses)):
        assert check(start + b"Port: 1\r\n\r\n") != REFUSED
        for count, verdict in ((limits.MAX_HEADERS, True), (limits.MAX_HEADERS + 1, False)):
            assert (check(start + b"H: v\r\n" * count + b"\r\n") != REFUSED) is verdict
        for size, verdict in ((limits.MAX_LINE, True), (limits.MAX_LINE + 1, False)):
            assert (check(start + filler(size) + b"\r\n\r\n") != REFUSED) is verdict
        big = filler(5000) + b"\r\n"
        rest = limits.MAX_HEAD - len(start) - 3 * len(big) - 2  # MAX_HEAD bytes exactly
        for size, verdict in ((rest, True), (rest + 1, False)):
            assert (check(start + big * 3 + filler(size) + b"\r\n\r\n") != REFUSED) is verdict
    assert check_responses(b"P2P-CI/1.0 200 OK\r\nContent-Length: 3\r\nno colon\r\n\r\n") == (
        Response(Status.OK, ci.VERSION, (("Content-Length", "3"),), "OK"), b"no ", True,
        b"colon\r\n\r\n")
