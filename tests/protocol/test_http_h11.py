"""Differential test: our HTTP/1.1 request reader against h11's (an independent,
well-kept implementation) on generated request heads. Both accept or both refuse; what
both accept reads the same (method, target, headers).

Left out of the generator, as known and chosen differences: ``Transfer-Encoding`` (h11
reads chunked bodies; we answer 501), bare-LF line ends and blank lines before the
request line (the one head grammar of every p2pshare protocol tolerates them), control
characters other than NUL in a header value (h11 keeps them, as RFC 9110 section 5.5
allows; every p2pshare reader refuses them), and versions other than 1.0 and 1.1. h11
keeps one of identical Content-Length headers; the comparison does the same.
"""

from __future__ import annotations

import h11
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare.errors import RemoteProtocolError
from p2pshare.protocol import Request
from p2pshare.protocol.http import HttpConnection

from .wire import available

TOKEN = st.text("!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-",
                min_size=1, max_size=10)
VCHAR = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
VALUE = st.text(st.sampled_from([" ", "\t"]) | VCHAR, max_size=12)
HEADER = st.one_of(
    st.tuples(st.sampled_from(["Host", "host", "HOST"]), VALUE),
    st.tuples(st.just("Connection"), st.sampled_from(["close", "keep-alive", "x, close"])),
    st.tuples(st.just("Content-Length"), st.sampled_from(["0", "3", "007", "-1", "x", ""])),
    st.tuples(TOKEN, VALUE),
)


def ours(data: bytes) -> Request | None:
    conn = HttpConnection()
    conn.receive_data(data)
    try:
        events = available(conn)
    except RemoteProtocolError:
        return None
    assert events and isinstance(events[0], Request), events
    return events[0]


def theirs(data: bytes) -> h11.Request | None:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    assert isinstance(event, h11.Request), event
    return event


@given(TOKEN, st.text(VCHAR, min_size=1, max_size=30), st.sampled_from(["1.1", "1.0"]),
       st.lists(HEADER, max_size=5))
@settings(max_examples=1000, deadline=None)
def test_request_heads_read_as_h11_reads_them(method: str, target: str, version: str,
                                              headers: list[tuple[str, str]]) -> None:
    head = f"{method} {target} HTTP/{version}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    data = head.encode() + b"abc"
    mine, reference = ours(data), theirs(data)
    assert (mine is None) == (reference is None), (head, mine, reference)
    if mine is not None and reference is not None:
        assert (mine.method.encode(), mine.target.encode()) == (reference.method,
                                                                reference.target)
        assert _one_length([(k.lower().encode(), v.encode()) for k, v in mine.headers]) == list(
            reference.headers)


def _one_length(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Identical Content-Length headers after the first dropped (as h11 does)."""
    seen = False
    kept = []
    for name, value in headers:
        if name == b"content-length":
            if seen:
                continue
            seen = True
        kept.append((name, value))
    return kept
