"""The index server's quick LOOKUP path against the codec's general path.

``ci.quick_lookup`` may only ever answer what the general path (the server's
``Connection``, then ``ci.interpret``) reads as that same LOOKUP, alone, with nothing left
over; ``ci.lookup_answer`` must give the bytes the general path encodes. And it must
actually take the forms peers send (the handout's, p2pshare's own client's), or it is
useless.
"""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import example, given, settings

from p2pshare import limits
from p2pshare.errors import RemoteProtocolError, Status
from p2pshare.index.server import _connection as server_connection
from p2pshare.protocol import PAUSED, Connection, EndOfMessage, Event, Lines, Request, Role, ci
from p2pshare.protocol.ci import CIRequest, Method, Record

from ..helpers import mutated

HANDOUT_LOOKUP = (b"LOOKUP RFC 3457 P2P-CI/1.0\r\n"
                  b"Host: thishost.csc.ncsu.edu\r\n"
                  b"Port: 5678\r\n"
                  b"Title: Requirements for IPsec Remote Access Scenarios\r\n\r\n")


def general(data: bytes) -> CIRequest | str:
    """What the general path makes of ``data``: a LOOKUP alone, or why not."""
    conn = server_connection()
    conn.receive_data(data)
    try:
        head, end, rest = conn.next_event(), conn.next_event(), conn.next_event()
    except RemoteProtocolError:
        return "framing error"
    if not isinstance(head, Request) or not isinstance(end, EndOfMessage):
        return "not one whole request"
    if rest is not PAUSED or conn.trailing_data != (b"", False):
        return "bytes left over"
    req = ci.interpret(head)
    if not isinstance(req, CIRequest) or req.method is not Method.LOOKUP:
        return f"not a LOOKUP: {req}"
    return req


def client_bytes(req: CIRequest) -> bytes:
    return Connection(Role.CLIENT).send_all(ci.to_event(req), EndOfMessage())


def agrees(data: bytes) -> int | None:
    """quick_lookup's answer, checked against the general path whenever it is not None."""
    rfc = ci.quick_lookup(data)
    if rfc is not None:
        req = general(data)
        assert isinstance(req, CIRequest), (data, req)
        assert req.rfc == rfc
    return rfc


# ------------------------------------------------------------------ what it takes
def test_the_handouts_lookup_takes_the_quick_path() -> None:
    assert agrees(HANDOUT_LOOKUP) == 3457


@given(st.integers(limits.MIN_RFC_NUMBER, limits.MAX_RFC_NUMBER),
       st.from_regex(r"[a-z0-9.-]{1,60}", fullmatch=True),
       st.integers(1, limits.MAX_PORT),
       st.none() | st.from_regex(r"[ -~]{0,80}", fullmatch=True).map(str.strip))
@settings(max_examples=300, deadline=None)
def test_our_clients_lookups_take_the_quick_path(rfc: int, host: str, port: int,
                                                 title: str | None) -> None:
    data = client_bytes(CIRequest(Method.LOOKUP, rfc, host, port, title))
    assert agrees(data) == rfc


def test_the_longest_fields_still_take_the_quick_path() -> None:
    data = client_bytes(CIRequest(Method.LOOKUP, limits.MAX_RFC_NUMBER,
                                  "h" * limits.MAX_HOSTNAME, limits.MAX_PORT,
                                  "t" * limits.MAX_TITLE))
    assert agrees(data) == limits.MAX_RFC_NUMBER


# ------------------------------------------------------------------ what it leaves
LEFT_TO_THE_GENERAL_PATH = {
    "lower-case method": HANDOUT_LOOKUP.replace(b"LOOKUP", b"lookup"),
    "lower-case version": HANDOUT_LOOKUP.replace(b"P2P-CI/1.0", b"p2p-ci/1.0"),
    "other version": HANDOUT_LOOKUP.replace(b"P2P-CI/1.0", b"P2P-CI/2.0"),
    "LF line ends": HANDOUT_LOOKUP.replace(b"\r\n", b"\n"),
    "two spaces": HANDOUT_LOOKUP.replace(b"RFC 3457", b"RFC  3457"),
    "no space after RFC": HANDOUT_LOOKUP.replace(b"RFC 3457", b"RFC3457"),
    "leading zero": HANDOUT_LOOKUP.replace(b"RFC 3457", b"RFC 03457"),
    "RFC 0": HANDOUT_LOOKUP.replace(b"RFC 3457", b"RFC 0"),
    "RFC too large": HANDOUT_LOOKUP.replace(b"RFC 3457", b"RFC 1000000"),
    "port 0": HANDOUT_LOOKUP.replace(b"Port: 5678", b"Port: 0"),
    "port too large": HANDOUT_LOOKUP.replace(b"Port: 5678", b"Port: 65536"),
    "port leading zero": HANDOUT_LOOKUP.replace(b"Port: 5678", b"Port: 05678"),
    "port not a number": HANDOUT_LOOKUP.replace(b"Port: 5678", b"Port: x"),
    "headers swapped": HANDOUT_LOOKUP.replace(
        b"Host: thishost.csc.ncsu.edu\r\nPort: 5678",
        b"Port: 5678\r\nHost: thishost.csc.ncsu.edu"),
    "lower-case header": HANDOUT_LOOKUP.replace(b"Host:", b"host:"),
    "no Host": HANDOUT_LOOKUP.replace(b"Host: thishost.csc.ncsu.edu\r\n", b""),
    "an OS header": HANDOUT_LOOKUP.replace(b"\r\n\r\n", b"\r\nOS: Linux\r\n\r\n"),
    "host with a space": HANDOUT_LOOKUP.replace(b"thishost.csc", b"this host.csc"),
    "host too long": HANDOUT_LOOKUP.replace(b"thishost.csc.ncsu.edu",
                                            b"h" * (limits.MAX_HOSTNAME + 1)),
    "non-ASCII host": HANDOUT_LOOKUP.replace(b"thishost", "thishöst".encode()),
    "title too long": HANDOUT_LOOKUP.replace(b"Requirements for IPsec Remote Access Scenarios",
                                             b"t" * (limits.MAX_TITLE + 1)),
    "title with a tab": HANDOUT_LOOKUP.replace(b"for IPsec", b"for\tIPsec"),
    "not UTF-8": HANDOUT_LOOKUP.replace(b"IPsec", b"IP\xffsec"),
    "a CRLF before": b"\r\n" + HANDOUT_LOOKUP,
    "cut short": HANDOUT_LOOKUP[:-2],
    "two requests": HANDOUT_LOOKUP * 2,
    "another request's start after": HANDOUT_LOOKUP + b"LOOKUP",
    "ADD": HANDOUT_LOOKUP.replace(b"LOOKUP", b"ADD"),
    "GET": HANDOUT_LOOKUP.replace(b"LOOKUP", b"GET"),
}


def test_every_other_form_is_left_to_the_general_path() -> None:
    taken = {name for name, data in LEFT_TO_THE_GENERAL_PATH.items()
             if ci.quick_lookup(data) is not None}
    assert taken == set()


# ------------------------------------------------------------------ never disagrees
# Each list starts with the common form; a drawn request is mostly common, with one or two
# parts changed, so that the near misses (which the quick path must refuse) are many.
PARTS = {
    "method": [b"LOOKUP", b"lookup", b"LOOKUP ", b"ADD", b"LOOK", b"REMOVE"],
    "target": [b"RFC 7", b"RFC 999999", b"RFC 1000000", b"RFC 0", b"RFC 007", b"rfc 7",
               b"RFC\t7", b"RFC7", b"RFC 7x", b"RFC  7", b"RFC -7", b"RFC 1" + b"0" * 19],
    "version": [b"P2P-CI/1.0", b"P2P-CI/1.1", b"p2p-ci/1.0", b"P2P-CI/1.0 ", b"P2P-CI/1.00"],
    "host": [b"Host: h", b"Host: a.b-c:9", b"Host:h", b"Host: ", b"Host:  h", b"Host: h ",
             b"Host: h h", b"Host: \xc3\xa9", b"Host: \xff", b" Host: h", b"Host : h",
             b"host: h", b"Host: " + b"h" * 255, b"Host: " + b"h" * 256, b"Host: h\x00"],
    "port": [b"Port: 1", b"Port: 65535", b"Port: 65536", b"Port: 0", b"Port: 01",
             b"Port: 99999", b"Port: 100000", b"Port: x", b"Port:", b"Port: 1 ", b"Port: +1",
             b"Port: -1", b"PORT: 1"],
    "title": [b"", b"Title: ", b"Title: t", b"Title:  t ", b"Title: a\tb",
              b"Title: " + b"t" * 512, b"Title: " + b"t" * 513, b"Title: \x7f",
              b"OS: x", b"X: y", b"Title: t\r\nTitle: u"],
    "end": [b"\r\n", b"\n", b"", b"\r\n\r\n", b"\r\nLOOKUP", b" \r\n", b"\r\n\x00"],
}


def pick(draw: st.DrawFn, part: str) -> bytes:
    options = PARTS[part]
    return options[0] if draw(st.integers(0, 9)) < 7 else draw(st.sampled_from(options))


@st.composite
def lookups(draw: st.DrawFn) -> bytes:
    line = b" ".join([pick(draw, "method"), pick(draw, "target"), pick(draw, "version")])
    headers = [pick(draw, "host"), pick(draw, "port"), pick(draw, "title")]
    headers = [h for h in headers if h]
    if headers and draw(st.integers(0, 9)) == 0:
        headers.reverse()
    if draw(st.integers(0, 9)) == 0:
        headers.insert(draw(st.integers(0, len(headers))),
                       draw(st.sampled_from(PARTS["host"] + PARTS["port"])))
    eol = b"\n" if draw(st.integers(0, 19)) == 0 else b"\r\n"
    return eol.join([line, *headers, b""]) + pick(draw, "end")


@given(lookups())
@example(HANDOUT_LOOKUP)
@settings(max_examples=3000, deadline=None)
def test_the_quick_path_never_disagrees_with_the_general_path(data: bytes) -> None:
    agrees(data)


@given(st.data())
@settings(max_examples=1000, deadline=None)
def test_mutated_lookups_never_disagree(data: st.DataObject) -> None:
    agrees(mutated(data, HANDOUT_LOOKUP, b" \t\r\n:0A\xff"))


@given(st.binary(max_size=200))
@settings(max_examples=500, deadline=None)
def test_random_bytes_never_disagree(data: bytes) -> None:
    agrees(data)


# ------------------------------------------------------------------ the answer
records = st.builds(Record, st.integers(1, limits.MAX_RFC_NUMBER),
                    st.from_regex(r"[ -~]{0,40}", fullmatch=True).map(str.strip),
                    st.from_regex(r"[a-z0-9.]{1,20}", fullmatch=True),
                    st.integers(1, limits.MAX_PORT))


@given(st.lists(records, max_size=5))
@settings(max_examples=300, deadline=None)
def test_the_quick_answer_is_the_general_paths_bytes(found: list[Record]) -> None:
    conn = server_connection()
    conn.receive_data(HANDOUT_LOOKUP)
    conn.next_event()
    conn.next_event()
    lines = [record.to_line() for record in found]
    events: tuple[Event, ...]
    if lines:
        events = (ci.p2s_response(Status.OK), Lines(tuple(lines)), EndOfMessage())
    else:
        events = (ci.p2s_response(Status.NOT_FOUND), EndOfMessage())
    assert ci.lookup_answer(lines) == conn.send_all(*events)
    assert conn.at_rest
