"""A receive buffer that hands out lines and byte runs, never more than a named limit.

Strategy: bytes are appended to one ``bytearray``; a line is extracted only once its
terminator has arrived. We remember how far we already scanned for ``\\n`` so that a line
arriving one byte at a time costs O(n), not O(n^2). A line longer than the limit raises
``RemoteProtocolError`` (400) instead of growing the buffer without bound; the limit counts
the line's bytes without its terminator, so it is the same for CRLF and bare LF lines.
Bare ``\\n`` is accepted as a line end and a ``\\r`` before it is dropped (tolerant reading).
"""

from __future__ import annotations

import re

from ..errors import RemoteProtocolError


class ReceiveBuffer:
    """Bytes received but not yet consumed by a reader."""

    __slots__ = ("_data", "_scanned")

    def __init__(self) -> None:
        self._data = bytearray()
        self._scanned = 0  # bytes of _data already known to hold no b"\n"

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._data += data

    def peek_line(self, max_len: int) -> bytes | None:
        """The next whole line including its terminator, left in place; None if incomplete.

        Raises:
            RemoteProtocolError: the line (so far) holds more than ``max_len`` bytes,
                not counting its terminator.
        """
        end = self._data.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(self._data)
            self._check_length(self._scanned, max_len)
            return None
        self._check_length(end, max_len)
        self._scanned = end  # the next call finds the same terminator at once
        return bytes(self._data[: end + 1])

    def _check_length(self, end: int, max_len: int) -> None:
        """``end`` bytes precede the line end (or the buffer end); a final CR is no content."""
        if end > max_len and end - (self._data[end - 1] == 0x0D) > max_len:
            raise RemoteProtocolError(f"line longer than {max_len} bytes")

    def extract_line(self, max_len: int) -> bytes | None:
        """Remove and return one line without its terminator, or None if incomplete.

        Raises:
            RemoteProtocolError: the line (so far) is longer than ``max_len``.
        """
        raw = self.peek_line(max_len)
        if raw is None:
            return None
        self.extract_bytes(len(raw))
        return strip_eol(raw)

    def extract_bytes(self, limit: int) -> bytes:
        """Remove and return up to ``limit`` bytes (possibly none)."""
        if limit >= len(self._data):
            out = bytes(self._data)
            self._data.clear()
        else:
            out = bytes(self._data[:limit])
            del self._data[:limit]
        self._scanned = 0
        return out

    def skip_blank_lines(self) -> None:
        """Drop whole empty lines (CRLF or bare LF) at the front of the buffer."""
        start = 0
        while True:
            if self._data.startswith(b"\n", start):
                start += 1
            elif self._data.startswith(b"\r\n", start):
                start += 2
            else:
                break
        if start:
            self.extract_bytes(start)

    def match(self, pattern: re.Pattern[bytes]) -> re.Match[bytes] | None:
        """``pattern`` matched at the front of the buffer (nothing is removed). The match
        reads the buffer itself: take its groups before anything is removed."""
        return pattern.match(self._data)

    def peek(self) -> bytes:
        return bytes(self._data)

    def peek_head(self, max_head: int) -> tuple[bytes, int] | None:
        """A whole message head (its lines with their ends, without the blank line that
        ends it) and the bytes it takes up with that blank line, left in place; None if no
        whole head is buffered within ``max_head`` bytes. A fast path: one search instead
        of one per line; the caller still checks every limit (``_grammar.parse_head``)."""
        data = self._data
        first = data.find(b"\n", self._scanned, max_head)
        if first < 0:  # a first line arriving byte by byte is scanned once, not once a byte
            self._scanned = min(len(data), max_head)
            return None
        crlf, lf = data.find(b"\n\r\n", first, max_head), data.find(b"\n\n", first, max_head)
        if crlf < 0 and lf < 0:
            return None
        if lf < 0 or 0 <= crlf < lf:
            return bytes(data[:crlf + 1]), crlf + 3
        return bytes(data[:lf + 1]), lf + 2


def strip_eol(raw: bytes) -> bytes:
    """A line without its ``\\n`` or ``\\r\\n`` terminator."""
    if raw.endswith(b"\r\n"):
        return raw[:-2]
    return raw[:-1] if raw.endswith(b"\n") else raw
