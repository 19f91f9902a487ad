"""The head and line grammar shared by every p2pshare protocol.

Strategy: pure functions from bytes to typed tuples. ``parse_head`` is the one parser of a
message head (start line and headers) and applies the head limits (``MAX_LINE``,
``MAX_HEADERS``, ``MAX_HEAD``); every reader of a head calls it, whatever finds where the
head ends (``_heads.HeadReader``). The functions are strict about structure and tolerant
about spacing: runs of spaces or tabs separate tokens, trailing white space is ignored (the
CI-2018 handout prints a request line with a trailing space), header names are matched
case-insensitively. Anything else raises
``RemoteProtocolError`` with status 400; nothing here raises ValueError or
UnicodeDecodeError. Every pattern is linear in the line's length (no nested or adjacent
lazy repeats that could backtrack for seconds on a crafted 8 KiB line).

Text in a message head is UTF-8; bytes that are not become U+FFFD (``REPLACEMENT``) rather
than an error, so that a request with a mis-encoded title stays a well-framed request the
protocol module can answer with 400 and the connection survives. Control characters are a
framing error. What we send is checked by the ``check_*`` functions, which raise
``LocalProtocolError``: a value with CR or LF would forge a header line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import limits
from ..errors import LocalProtocolError, RemoteProtocolError

if TYPE_CHECKING:
    from datetime import datetime

Headers = tuple[tuple[str, str], ...]

# RFC 9110 "token" characters for header names and methods.
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_VERSION = re.compile(r"[A-Za-z0-9-]+/[0-9]+\.[0-9]+\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL_BUT_LF = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TOKEN_TEXT = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_BLANKS = re.compile(r"[ \t]+")
REPLACEMENT = "\ufffd"  # what a byte that is not UTF-8 becomes in a head


def decode_text(raw: bytes, what: str) -> str:
    """Decode strict UTF-8 text from the wire, mapping failure to a 400."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"{what} is not valid UTF-8") from None
    return _no_control(text, what)


def decode_head_text(raw: bytes, what: str) -> str:
    """Decode head text, bytes that are not UTF-8 becoming ``REPLACEMENT``; controls are a 400."""
    return _no_control(raw.decode("utf-8", "replace"), what)


def _no_control(text: str, what: str) -> str:
    if _CONTROL.search(text) is not None:
        raise RemoteProtocolError(f"{what} holds a control character")
    return text


def is_header_line(line: bytes) -> bool:
    """``line`` (no line end) reads as ``Name: value``: the rule ``parse_head`` applies."""
    name, colon, _value = line.partition(b":")
    return bool(colon) and _TOKEN.match(name.rstrip(b" \t")) is not None


def check_head_size(size: int, lines: int) -> None:
    """Raises: RemoteProtocolError: a head of ``size`` bytes (line ends included) in
    ``lines`` lines (start line included) is over ``MAX_HEAD`` or ``MAX_HEADERS``."""
    if size > limits.MAX_HEAD or lines > limits.MAX_HEADERS + 1:
        raise RemoteProtocolError("message head too large")


def parse_head(head: bytes, strict_names: bool = False) -> tuple[str, Headers]:
    """The one head parser: every reader of a message head ends here.

    ``head`` is the start line and the header lines, each ended by CRLF or a bare LF (the
    last one's end may be missing: a reply cut short), without the blank line that ends
    the head. Returns the start line, decoded (left to ``request_start`` or
    ``status_start``), and the headers: names keep their case, values lose their outer
    blanks. One decode and one control-character scan cover the whole head.
    ``strict_names``: white space between a header's name and its colon is a 400, not
    tolerated (HTTP: RFC 9112 section 5.1, a request-smuggling vector).

    Raises:
        RemoteProtocolError: a limit (``MAX_HEAD``, ``MAX_HEADERS``, ``MAX_LINE``) is
            exceeded, a control character, or a header line that is not ``Name: value``.
    """
    _check_lines(head)
    text = head.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if _CONTROL_BUT_LF.search(text) is not None:
        raise RemoteProtocolError("message head holds a control character")
    start, *rest = text.removesuffix("\n").split("\n")
    check_head_size(len(head), len(rest) + 1)
    headers = []
    for line in rest:
        name, colon, value = line.partition(":")
        if not strict_names:
            name = name.rstrip(" \t")
        if not colon or _TOKEN_TEXT.match(name) is None:
            raise RemoteProtocolError("malformed header line")
        headers.append((name, value.strip(" \t")))
    return start, tuple(headers)


def _check_lines(head: bytes) -> None:
    """``MAX_LINE`` on every line, its end (CRLF or LF) not counted."""
    if len(head) > limits.MAX_LINE:  # else no line can be too long: skip the split
        for line in head.split(b"\n"):
            if len(line) - line.endswith(b"\r") > limits.MAX_LINE:
                raise RemoteProtocolError(f"line longer than {limits.MAX_LINE} bytes")


def request_start(line: str) -> tuple[str, str, str]:
    """``METHOD <target...> VERSION`` -> (method, target, version).

    The target is everything between the method and the version, with inner runs of
    white space folded to one space: ``RFC 123`` in P2P-CI, ``ALL`` for LIST, and empty in
    a two-token line such as ``LIST P2P-CI/1.0``. Whether the tokens make sense is for the
    protocol module to judge (a 400 or 505 that keeps the connection), not for framing.
    """
    parts = split_blanks(line)
    if len(parts) < 2:
        raise RemoteProtocolError("request line needs a method and a version")
    return parts[0], " ".join(parts[1:-1]), parts[-1]


def status_start(line: str) -> tuple[str, int, str]:
    """``VERSION CODE PHRASE`` -> (version, code, phrase); the phrase keeps inner blanks."""
    parts = _BLANKS.split(line.strip(" \t"), maxsplit=2)
    if len(parts) < 2 or not is_version(parts[0]):
        raise RemoteProtocolError("malformed status line")
    code = parse_int(parts[1], "status code", 100, 999)
    return parts[0], code, parts[2] if len(parts) > 2 else ""


def parse_status_line(line: bytes) -> tuple[str, int, str]:
    """One status line alone (a P2S data line is told from the next reply's start by it)."""
    return status_start(decode_head_text(line, "status line"))


def split_blanks(text: str) -> list[str]:
    """Tokens separated by runs of spaces and tabs (only those: not Unicode blanks)."""
    return [part for part in _BLANKS.split(text) if part]


def is_version(token: str) -> bool:
    return _VERSION.match(token) is not None


def parse_int(text: str, what: str, low: int, high: int) -> int:
    """A decimal integer in [low, high]; no sign, no spaces, at most 19 digits."""
    if not (0 < len(text) <= 19 and text.isascii() and text.isdigit()):
        raise RemoteProtocolError(f"{what} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise RemoteProtocolError(f"{what} {value} is outside {low}..{high}")
    return value


def get_header(headers: Headers, name: str) -> str | None:
    """The last value of header ``name`` (case-insensitive), or None."""
    wanted = name.lower()
    found = None
    for key, value in headers:
        if key.lower() == wanted:
            found = value
    return found


def content_length(headers: Headers, max_value: int) -> int | None:
    """The Content-Length header as an int, or None; conflicting copies are a 400."""
    values = {v for k, v in headers if k.lower() == "content-length"}
    if not values:
        return None
    if len(values) > 1:
        raise RemoteProtocolError("conflicting Content-Length headers")
    return parse_int(values.pop(), "Content-Length", 0, max_value)


def encode_head(start: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """Start line and headers, each CRLF-terminated (the blank line is the caller's)."""
    lines = [start, *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def check_token(text: str, what: str) -> None:
    """Raises: LocalProtocolError: ``text`` is not an RFC 9110 token (method, header name)."""
    if _TOKEN.match(text.encode("utf-8", "replace")) is None:
        raise LocalProtocolError(f"{what} {text[:40]!r} is not a token")


def check_word(text: str, what: str) -> None:
    """Raises: LocalProtocolError: ``text`` is empty or holds white space or a control."""
    check_text(text, what)
    if not text or split_blanks(text) != [text]:
        raise LocalProtocolError(f"{what} {text[:40]!r} must be one word")


def check_text(text: str, what: str) -> None:
    """Raises: LocalProtocolError: ``text`` holds a control character or is not UTF-8."""
    if _CONTROL.search(text) is not None:
        raise LocalProtocolError(f"{what} {text[:40]!r} holds a control character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"{what} {text[:40]!r} is not valid UTF-8") from None


def http_date(when: float | None = None) -> str:
    """``Wed, 12 Feb 2009 15:12:05 GMT`` (the handout's Date and Last-Modified form)."""
    import email.utils  # here, not at the top: the swarm's messages carry no date

    return email.utils.formatdate(when, usegmt=True)


def parse_http_date(text: str) -> datetime | None:
    """Parse an HTTP date, accepting the handout's single-digit hour; None if unparsable."""
    import email.utils
    from datetime import UTC

    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
