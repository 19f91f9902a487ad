"""Line-level grammar shared by every p2pshare protocol.

Strategy: pure functions from one line (bytes, terminator removed) to typed tuples. They
are strict about structure and tolerant about spacing: runs of spaces or tabs separate
tokens, trailing white space is ignored (the CI-2018 handout prints a request line with a
trailing space), header names are matched case-insensitively. Anything else raises
``RemoteProtocolError`` with status 400; nothing here raises ValueError or
UnicodeDecodeError.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from ..errors import RemoteProtocolError

Headers = tuple[tuple[str, str], ...]

# RFC 9110 "token" characters for header names and methods.
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*:[ \t]*(.*?)[ \t]*\Z", re.S)
_VERSION = re.compile(r"[A-Za-z0-9-]+/[0-9]+\.[0-9]+\Z")


def decode_text(raw: bytes, what: str) -> str:
    """Decode UTF-8 text from the wire, mapping failure to a 400."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"{what} is not valid UTF-8") from None
    if any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in text):
        raise RemoteProtocolError(f"{what} holds a control character")
    return text


def is_header_line(line: bytes) -> bool:
    return _HEADER.match(line) is not None


def parse_header(line: bytes) -> tuple[str, str]:
    """``Name: value`` -> (name, value); the name keeps its case."""
    m = _HEADER.match(line)
    if m is None:
        raise RemoteProtocolError("malformed header line")
    return m.group(1).decode("ascii"), decode_text(m.group(2), "header value")


def parse_request_line(line: bytes) -> tuple[str, str, str]:
    """``METHOD <target...> VERSION`` -> (method, target, version).

    The target is everything between the method and the version, with inner runs of
    white space folded to one space: ``RFC 123`` in P2P-CI, ``ALL`` for LIST.
    """
    parts = decode_text(line, "request line").split()
    if len(parts) < 3:
        raise RemoteProtocolError("request line needs a method, a target and a version")
    method, version = parts[0], parts[-1]
    if _TOKEN.match(method.encode()) is None:
        raise RemoteProtocolError("malformed method")
    return method, " ".join(parts[1:-1]), version


def parse_status_line(line: bytes) -> tuple[str, int, str]:
    """``VERSION CODE PHRASE`` -> (version, code, phrase)."""
    parts = decode_text(line, "status line").split(None, 2)
    if len(parts) < 2 or not is_version(parts[0]):
        raise RemoteProtocolError("malformed status line")
    code = parse_int(parts[1], "status code", 100, 999)
    return parts[0], code, parts[2].strip() if len(parts) > 2 else ""


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
    lines = [start, *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def http_date(when: float | None = None) -> str:
    """``Wed, 12 Feb 2009 15:12:05 GMT`` (the handout's Date and Last-Modified form)."""
    return email.utils.formatdate(when, usegmt=True)


def parse_http_date(text: str) -> datetime | None:
    """Parse an HTTP date, accepting the handout's single-digit hour; None if unparsable."""
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
