"""Where a message head ends in a byte stream: one reader for every codec that reads heads.

Strategy: a ``HeadReader`` takes lines out of a ``ReceiveBuffer`` until the head is whole
and parses its bytes with ``_grammar.parse_head``; the codec (``Connection``) and the
pipelined swarm client both read heads through it, so they cannot drift apart on what a
head is. A head that arrived whole (the usual case) is found in one search and parsed at
once; otherwise lines are taken one by one, and the head parsed when it ends.
Lines are bounded as they arrive (``MAX_LINE`` by the buffer, ``MAX_HEAD`` and
``MAX_HEADERS`` by ``check_head_size``), so a flood is refused before it is buffered; the
parser checks the same limits on the whole head, so the early refusal changes no verdict.

Tolerance (docs/p2p-ci.md#tolerances): blank lines before a start line are skipped (A3's
extra CRLF). A response head may also end without its blank line: at a line that is not a
header, in a P2S reply (A1) or once Content-Length is known (the handout's GET example);
at the close; and in a P2S reply at a pause (A2). What came is then the head, and a last
line without its end counts as a line only if it is all there is.
"""

from __future__ import annotations

from .. import limits
from ..errors import RemoteProtocolError
from ._buffer import ReceiveBuffer, strip_eol
from ._events import NEED_DATA, ConnectionClosed, Framing, _Sentinel
from ._grammar import Headers, check_head_size, content_length, is_header_line, parse_head

Head = tuple[str, Headers]  # the start line and the headers


class HeadReader:
    """Reads the heads of the messages one side sends (requests, or responses)."""

    __slots__ = ("_lines", "_of_responses", "_size", "_strict_names")

    def __init__(self, of_responses: bool, strict_names: bool = False) -> None:
        self._of_responses = of_responses
        self._strict_names = strict_names  # parse_head's: no blank before a colon
        self._lines: list[bytes] = []  # the head's lines so far, with their ends
        self._size = 0

    @property
    def started(self) -> bool:
        """Part of a head has been taken out of the buffer."""
        return bool(self._lines)

    def read(self, buf: ReceiveBuffer, framing: Framing, max_body: int, *, eof: bool = False,
             paused: bool = False) -> Head | ConnectionClosed | _Sentinel:
        """The next whole head, parsed (start line, headers: ``parse_head``), ``NEED_DATA``,
        or ``ConnectionClosed`` if the other side closed between messages.

        Args:
            framing: how the response being read is framed (decides A1 and A2).
            max_body: largest Content-Length accepted.
            eof: the other side closed its sending half.
            paused: the other side has been silent a while (A2).

        Raises:
            RemoteProtocolError: the head breaks the grammar (``parse_head``), or the
                other side closed in the middle of a request head.
        """
        if not self._lines:
            buf.skip_blank_lines()
            whole = self._read_whole(buf)
            if whole is not None:
                return whole
        while (raw := buf.peek_line(limits.MAX_LINE)) is not None:
            line = strip_eol(raw)
            if self._lines and line and self._ends_before(line, framing, max_body):
                return self._take()
            buf.extract_bytes(len(raw))
            if not line:
                if self._lines:
                    return self._take()
                continue  # a blank line before a start line
            self._size += len(raw)
            check_head_size(self._size, len(self._lines) + 1)
            self._lines.append(raw)
        return self._stalled(buf, framing, eof, paused)

    def _read_whole(self, buf: ReceiveBuffer) -> Head | None:
        """The fast path: a head that arrived whole, up to its blank line, parsed at once.

        A response head that does not parse may still be a head that ends before a line
        that is not a header (A1): the line-by-line path decides. If it parses, every
        line is a header line, so that path would have read the same head.
        """
        found = buf.peek_head(limits.MAX_HEAD)
        if found is None:
            return None
        head, size = found
        try:
            parsed = parse_head(head, self._strict_names)
        except RemoteProtocolError:
            if not self._of_responses:
                raise
            return None
        buf.extract_bytes(size)
        return parsed

    def _take(self) -> Head:
        head = b"".join(self._lines)
        self._lines, self._size = [], 0
        return parse_head(head, self._strict_names)

    def _ends_before(self, line: bytes, framing: Framing, max_body: int) -> bool:
        """A response head may end without a blank line (A1, handout GET example)."""
        if not self._of_responses or is_header_line(line):
            return False
        if framing is Framing.LINES:
            return True
        return content_length(parse_head(b"".join(self._lines))[1], max_body) is not None

    def _stalled(self, buf: ReceiveBuffer, framing: Framing, eof: bool,
                 paused: bool) -> Head | ConnectionClosed | _Sentinel:
        if self._of_responses and (eof or (paused and framing is Framing.LINES)):
            return self._cut(buf, eof)
        if eof:
            if not self._lines and not buf:
                return ConnectionClosed()
            raise RemoteProtocolError("connection closed in the middle of a message head")
        return NEED_DATA

    def _cut(self, buf: ReceiveBuffer, eof: bool) -> Head | ConnectionClosed | _Sentinel:
        """A reply that stopped short (closed, or silent after a P2S status line: A2).

        What came is its head; an unterminated last line is its status line if nothing
        came before it, else it stays for the body reader.
        """
        if not self._lines:
            rest = buf.extract_bytes(len(buf)).removesuffix(b"\r")
            if not rest:
                return ConnectionClosed() if eof else NEED_DATA
            self._lines.append(rest)
        return self._take()
