"""The receive buffer: lines and byte runs, whole or byte by byte, never past a limit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare.errors import RemoteProtocolError
from p2pshare.protocol._buffer import ReceiveBuffer, strip_eol

from .wire import byte_by_byte, split


def lines_of(chunks: list[bytes], max_len: int = 100) -> tuple[list[bytes], bytes]:
    """Feed ``chunks``, extracting every whole line after each; (lines, what is left)."""
    buf = ReceiveBuffer()
    lines: list[bytes] = []
    for chunk in chunks:
        buf.feed(chunk)
        while (line := buf.extract_line(max_len)) is not None:
            lines.append(line)
    return lines, buf.peek()


@pytest.mark.parametrize("data", [
    b"one\r\ntwo\r\n\r\nrest",
    b"one\ntwo\n\nrest",  # bare LF (tolerant reading)
    b"one\r\ntwo\n\r\nrest",
])
def test_lines_whole_and_byte_by_byte(data: bytes) -> None:
    expected = ([b"one", b"two", b""], b"rest")
    assert lines_of([data]) == expected
    assert lines_of(byte_by_byte(data)) == expected


def test_peek_line_leaves_the_line_in_place() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"abc\r\ndef")
    assert buf.peek_line(10) == b"abc\r\n"
    assert buf.peek_line(10) == b"abc\r\n"
    assert buf.extract_line(10) == b"abc"
    assert buf.peek_line(10) is None
    assert buf.peek() == b"def" and len(buf) == 3 and buf


def test_a_lone_cr_is_not_a_line_end() -> None:
    assert lines_of([b"a\rb\r\n"]) == ([b"a\rb"], b"")


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_the_limit_counts_the_line_without_its_end(eol: bytes) -> None:
    assert lines_of([b"x" * 8 + eol], max_len=8) == ([b"x" * 8], b"")
    with pytest.raises(RemoteProtocolError) as info:
        lines_of([b"x" * 9 + eol], max_len=8)
    assert info.value.status == 400


def test_an_unfinished_line_is_bounded_too() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"x" * 8 + b"\r")  # may still become a line of 8: wait
    assert buf.peek_line(8) is None
    buf.feed(b"x")
    with pytest.raises(RemoteProtocolError):
        buf.peek_line(8)


def test_extract_bytes() -> None:
    buf = ReceiveBuffer()
    assert buf.extract_bytes(5) == b"" and not buf
    buf.feed(b"0123456789")
    assert buf.extract_bytes(4) == b"0123"
    assert buf.extract_bytes(100) == b"456789"
    assert len(buf) == 0


def test_extract_bytes_then_lines_rescans() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"abcdef")
    assert buf.peek_line(100) is None  # scanned up to the end
    buf.extract_bytes(2)
    buf.feed(b"\nxy")
    assert buf.extract_line(100) == b"cdef"


@pytest.mark.parametrize(("data", "left"), [
    (b"\r\n\r\nX", b"X"), (b"\n\nX", b"X"), (b"\r\n\n", b""), (b"\r", b"\r"),
    (b"\r\nX\r\n", b"X\r\n"), (b"X", b"X"), (b"", b""),
])
def test_skip_blank_lines(data: bytes, left: bytes) -> None:
    buf = ReceiveBuffer()
    buf.feed(data)
    buf.skip_blank_lines()
    assert buf.peek() == left


@pytest.mark.parametrize(("raw", "line"), [
    (b"a\r\n", b"a"), (b"a\n", b"a"), (b"a", b"a"), (b"a\r", b"a\r"), (b"\r\n", b""),
])
def test_strip_eol(raw: bytes, line: bytes) -> None:
    assert strip_eol(raw) == line


def test_a_long_line_byte_by_byte_is_linear() -> None:
    """Each byte rescans nothing already scanned: 200 KB one byte at a time stays fast."""
    buf = ReceiveBuffer()
    for _ in range(200_000):
        buf.feed(b"x")
        assert buf.peek_line(1_000_000) is None
    buf.feed(b"\n")
    assert buf.extract_line(1_000_000) == b"x" * 200_000


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")), max_size=10),
       st.lists(st.integers(0, 400), max_size=8), st.sampled_from([b"\r\n", b"\n"]))
def test_any_split_gives_the_same_lines(body: list[bytes], cuts: list[int], eol: bytes) -> None:
    data = b"".join(line + eol for line in body)
    expected = [line.removesuffix(b"\r") if eol == b"\n" else line for line in body]
    assert lines_of(split(data, cuts)) == (expected, b"")
