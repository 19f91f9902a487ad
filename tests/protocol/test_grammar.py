"""Line grammar: tolerant of spacing, strict of structure, only RemoteProtocolError out."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.errors import LocalProtocolError, RemoteProtocolError
from p2pshare.protocol import get_header
from p2pshare.protocol._grammar import (
    REPLACEMENT,
    check_text,
    check_token,
    check_word,
    content_length,
    decode_head_text,
    decode_text,
    encode_head,
    http_date,
    is_header_line,
    is_version,
    parse_head,
    parse_http_date,
    parse_int,
    parse_status_line,
    request_start,
    split_blanks,
    status_start,
)


def parse_header(line: bytes) -> tuple[str, str]:
    """The one header of a head whose start line is ``S``."""
    (header,) = parse_head(b"S\r\n" + line + b"\r\n")[1]
    return header


def parse_request_line(line: bytes) -> tuple[str, str, str]:
    return request_start(parse_head(line + b"\r\n")[0])


# ----------------------------------------------------------------------------- headers
@pytest.mark.parametrize(("line", "parsed"), [
    (b"Host: thishost.csc.ncsu.edu", ("Host", "thishost.csc.ncsu.edu")),
    (b"host:thishost", ("host", "thishost")),  # the name keeps its case
    (b"Title: A Proferred Official ICP", ("Title", "A Proferred Official ICP")),
    (b"Title:\t  spaced  \t", ("Title", "spaced")),
    (b"Title : before colon", ("Title", "before colon")),
    (b"Empty:", ("Empty", "")),
    (b"Odd: a:b: c", ("Odd", "a:b: c")),
    (b"Tab: a\tb", ("Tab", "a\tb")),
    (b"Latin: caf\xe9", ("Latin", f"caf{REPLACEMENT}")),  # not UTF-8: judged later
    (b"Utf: caf\xc3\xa9", ("Utf", "caf\u00e9")),
])
def test_parse_header(line: bytes, parsed: tuple[str, str]) -> None:
    assert is_header_line(line)
    assert parse_header(line) == parsed


@pytest.mark.parametrize("line", [
    b"no colon here", b": no name", b"Bad Name: x", b"", b"N\xe9: x", b"(x): y",
])
def test_malformed_header_lines(line: bytes) -> None:
    assert not is_header_line(line)
    with pytest.raises(RemoteProtocolError):
        parse_header(line)


@pytest.mark.parametrize("value", [b"a\x00b", b"a\rb", b"\x7f", b"\x1b[31m"])
def test_control_characters_in_a_value_are_fatal(value: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="control"):
        parse_header(b"X: " + value)


def test_get_header_is_case_insensitive_and_last_wins() -> None:
    headers = (("Host", "a"), ("PORT", "1"), ("host", "b"))
    assert get_header(headers, "HOST") == "b"
    assert get_header(headers, "port") == "1"
    assert get_header(headers, "Title") is None


@pytest.mark.parametrize(("headers", "length"), [
    ((), None),
    ((("Content-Length", "0"),), 0),
    ((("content-length", "12345"),), 12345),
    ((("Content-Length", "7"), ("CONTENT-LENGTH", "7")), 7),  # the same twice is fine
])
def test_content_length(headers: tuple[tuple[str, str], ...], length: int | None) -> None:
    assert content_length(headers, 10**6) == length


@pytest.mark.parametrize("headers", [
    (("Content-Length", "1"), ("Content-Length", "2")),
    (("Content-Length", "-1"),),
    (("Content-Length", "+1"),),
    (("Content-Length", "1 2"),),
    (("Content-Length", "0x10"),),
    (("Content-Length", ""),),
    (("Content-Length", "1000001"),),
    (("Content-Length", "9" * 40),),
])
def test_bad_content_length(headers: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        content_length(headers, 10**6)
    assert info.value.status == 400


# ----------------------------------------------------------------------------- whole heads
HEAD = b"ADD RFC 1 P2P-CI/1.0\r\nHost: h\nPort: 1 \r\n"


def test_a_head_is_its_start_line_and_headers() -> None:
    assert parse_head(HEAD) == ("ADD RFC 1 P2P-CI/1.0", (("Host", "h"), ("Port", "1")))
    assert parse_head(HEAD.removesuffix(b"\r\n")) == parse_head(HEAD)  # a reply cut short
    start, headers = parse_head(b"P2P-CI/1.0  404 Not  Found\n")
    assert (status_start(start), headers) == (("P2P-CI/1.0", 404, "Not  Found"), ())


def _head(lines: int, length: int) -> bytes:
    """A start line and ``lines - 1`` headers, each line ``length`` bytes before its CRLF."""
    return b"".join(b"X: " + b"a" * (length - 3) + b"\r\n" for _ in range(lines))


@pytest.mark.parametrize(("lines", "length", "ok"), [
    (limits.MAX_HEADERS + 1, 10, True),
    (limits.MAX_HEADERS + 2, 10, False),
    (1, limits.MAX_LINE, True),
    (1, limits.MAX_LINE + 1, False),
    (2, limits.MAX_HEAD // 2 - 2, True),  # exactly MAX_HEAD bytes with the line ends
    (2, limits.MAX_HEAD // 2 - 1, False),
])
def test_head_limits(lines: int, length: int, ok: bool) -> None:
    head = _head(lines, length)
    if ok:
        parse_head(head)
    else:
        with pytest.raises(RemoteProtocolError) as info:
            parse_head(head)
        assert info.value.status == 400


def test_a_line_end_is_not_counted_in_the_line() -> None:
    line = b"X: " + b"a" * (limits.MAX_LINE - 3)
    parse_head(line + b"\r\n")
    parse_head(line + b"\n")
    with pytest.raises(RemoteProtocolError):
        parse_head(line + b"\r\r\n")  # a CR inside the line


# ----------------------------------------------------------------------------- start lines
@pytest.mark.parametrize(("line", "parsed"), [
    (b"ADD RFC 123 P2P-CI/1.0", ("ADD", "RFC 123", "P2P-CI/1.0")),
    (b"ADD RFC 2345 P2P-CI/1.0 ", ("ADD", "RFC 2345", "P2P-CI/1.0")),  # CI-2018's trailing space
    (b"  LOOKUP\tRFC   3457 \t P2P-CI/1.0\t", ("LOOKUP", "RFC 3457", "P2P-CI/1.0")),
    (b"LIST ALL P2P-CI/1.0", ("LIST", "ALL", "P2P-CI/1.0")),
    (b"LIST P2P-CI/1.0", ("LIST", "", "P2P-CI/1.0")),  # a 400 for ci.interpret to give
    (b"A(D RFC x y P2P-CI/9", ("A(D", "RFC x y", "P2P-CI/9")),
    (b"ADD RFC 1 P2P-CI/1.0\xff", ("ADD", "RFC 1", f"P2P-CI/1.0{REPLACEMENT}")),
    (b"ADD RFC\xc2\xa01 P2P-CI/1.0", ("ADD", "RFC\u00a01", "P2P-CI/1.0")),  # only SP/HT split
])
def test_parse_request_line(line: bytes, parsed: tuple[str, str, str]) -> None:
    assert parse_request_line(line) == parsed


@pytest.mark.parametrize("line", [b"", b"   ", b"ADD", b"ADD\x00 RFC 1 P2P-CI/1.0"])
def test_unusable_request_lines(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_request_line(line)


@pytest.mark.parametrize(("line", "parsed"), [
    (b"P2P-CI/1.0 200 OK", ("P2P-CI/1.0", 200, "OK")),
    (b"P2P-CI/1.0 505 P2P-CI Version Not Supported",
     ("P2P-CI/1.0", 505, "P2P-CI Version Not Supported")),
    (b"P2P-CI/1.0 404", ("P2P-CI/1.0", 404, "")),
    (b"P2P-CI/1.0\t400  Bad   Request ", ("P2P-CI/1.0", 400, "Bad   Request")),
    (b"HTTP/1.1 200 OK", ("HTTP/1.1", 200, "OK")),
])
def test_parse_status_line(line: bytes, parsed: tuple[str, int, str]) -> None:
    assert parse_status_line(line) == parsed


@pytest.mark.parametrize("line", [
    b"", b"P2P-CI/1.0", b"P2P-CI/1.0 OK 200", b"P2P-CI 200 OK", b"P2P-CI/1.0 99 Low",
    b"P2P-CI/1.0 1000 High", b"P2P-CI/1.0 -20 Neg", b"RFC 123 A title host 5678",
    b"\xff\xfe 200 OK", b"P2P-CI/1.0 2\xd9\xa00 OK",
])
def test_malformed_status_lines(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_status_line(line)


@pytest.mark.parametrize(("token", "ok"), [
    ("P2P-CI/1.0", True), ("P2P-DI/1.0", True), ("HTTP/1.1", True), ("P2P-CI/10.25", True),
    ("P2P-CI", False), ("P2P-CI/1", False), ("P2P-CI/1.0 ", False), ("/1.0", False),
    ("P2P_CI/1.0", False), ("P2P-CI/\u0661.0", False),
])
def test_is_version(token: str, ok: bool) -> None:
    assert is_version(token) is ok


# ----------------------------------------------------------------------------- numbers
@pytest.mark.parametrize(("text", "value"), [("0", 0), ("7734", 7734), ("007", 7),
                                             ("9" * 19, 10**19 - 1)])
def test_parse_int(text: str, value: int) -> None:
    assert parse_int(text, "n", 0, 10**19) == value


@pytest.mark.parametrize("text", [
    "", " 1", "1 ", "-1", "+1", "1.0", "1e3", "0x1", "\u0661", "\uff11", "\u00b2", "9" * 20,
    "five",
])
def test_parse_int_rejects(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_int(text, "n", 0, 10**20)


def test_parse_int_range_is_inclusive() -> None:
    assert parse_int("1", "n", 1, 5) == 1 and parse_int("5", "n", 1, 5) == 5
    for text in ("0", "6"):
        with pytest.raises(RemoteProtocolError, match="outside"):
            parse_int(text, "n", 1, 5)


# ----------------------------------------------------------------------------- text
def test_decode_text_is_strict_and_head_text_tolerant() -> None:
    with pytest.raises(RemoteProtocolError, match="UTF-8"):
        decode_text(b"caf\xe9", "x")
    assert decode_head_text(b"caf\xe9", "x") == f"caf{REPLACEMENT}"
    assert decode_text(b"a\tb", "x") == "a\tb"
    for decode in (decode_text, decode_head_text):
        with pytest.raises(RemoteProtocolError, match="control"):
            decode(b"a\x01b", "x")


def test_split_blanks_splits_only_on_space_and_tab() -> None:
    assert split_blanks(" a \t b\u00a0c  ") == ["a", "b\u00a0c"]
    assert split_blanks("") == []


# ----------------------------------------------------------------------------- writing
def test_encode_head() -> None:
    head = encode_head("ADD RFC 1 P2P-CI/1.0", (("Host", "h"), ("Title", "caf\u00e9")))
    assert head == b"ADD RFC 1 P2P-CI/1.0\r\nHost: h\r\nTitle: caf\xc3\xa9\r\n"


@pytest.mark.parametrize(("check", "text"), [
    (check_token, "GET"), (check_token, "X-Custom_1"),
    (check_word, "P2P-CI/2.0"), (check_word, "garbage"),
    (check_text, "A Proferred Official ICP"), (check_text, "a\tb"), (check_text, ""),
])
def test_checks_pass(check: object, text: str) -> None:
    assert callable(check)
    check(text, "what")


@pytest.mark.parametrize(("check", "text"), [
    (check_token, ""), (check_token, "A D"), (check_token, "A(D"), (check_token, "\u00e9"),
    (check_word, ""), (check_word, "two words"), (check_word, "tab\there"),
    (check_text, "a\r\nInjected: 1"), (check_text, "a\nb"), (check_text, "\x00"),
    (check_text, "\ud800"),
])
def test_checks_fail_as_local_errors(check: object, text: str) -> None:
    assert callable(check)
    with pytest.raises(LocalProtocolError):
        check(text, "what")


# ----------------------------------------------------------------------------- dates
def test_http_date_is_the_handout_form() -> None:
    assert http_date(1234451525) == "Thu, 12 Feb 2009 15:12:05 GMT"
    assert parse_http_date(http_date(1234451525)) == datetime(2009, 2, 12, 15, 12, 5, tzinfo=UTC)


@pytest.mark.parametrize(("text", "when"), [
    ("Wed, 12 Feb 2009 15:12:05 GMT", datetime(2009, 2, 12, 15, 12, 5, tzinfo=UTC)),
    ("Thu, 21 Jan 2001 9:23:46 GMT", datetime(2001, 1, 21, 9, 23, 46, tzinfo=UTC)),  # 1 digit
    ("Thu, 21 Jan 2001 09:23:46 GMT", datetime(2001, 1, 21, 9, 23, 46, tzinfo=UTC)),
    ("Thu, 21 Jan 2001 09:23:46", datetime(2001, 1, 21, 9, 23, 46, tzinfo=UTC)),
])
def test_parse_http_date(text: str, when: datetime) -> None:
    assert parse_http_date(text) == when


@pytest.mark.parametrize("text", ["", "yesterday", "Thu, 99 Foo 2001 99:99:99 GMT", "1 2 3"])
def test_unparsable_dates_are_none(text: str) -> None:
    assert parse_http_date(text) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parse_http_date_never_raises(text: str) -> None:
    parse_http_date(text)


# ----------------------------------------------------------------------------- robustness
@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_line_parsers_raise_only_remote_errors(line: bytes) -> None:
    for parse in (parse_header, parse_request_line, parse_status_line):
        try:
            parse(line)
        except RemoteProtocolError as exc:
            assert exc.status == 400


def test_patterns_are_linear_on_crafted_lines() -> None:
    """Runs of blanks between words made the old patterns backtrack quadratically."""
    lines = [b"X: a" + b" \t" * (limits.MAX_LINE // 2 - 4) + b"b",
             b"X: a" + b" " * (limits.MAX_LINE - 6) + b"\x00",
             b"P2P-CI/1.0 200" + b" " * (limits.MAX_LINE - 20) + b"x"]
    start = time.perf_counter()
    for line in lines * 20:
        for parse in (parse_header, parse_request_line, parse_status_line):
            try:
                parse(line)
            except RemoteProtocolError:
                pass
    assert time.perf_counter() - start < 2.0
