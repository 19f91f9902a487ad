"""Events: what a connection produces when it reads, and consumes when it writes.

Every protocol of p2pshare frames messages the same way (a start line, ``Name: value``
headers, a blank line, then a body), so these generic events serve all of them. The
protocol modules (``ci``, ``di``, ``swarm``) give them meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ._grammar import Headers


@dataclass(frozen=True, slots=True)
class Request:
    """A request head. ``target`` is what stands between method and version."""

    method: str
    target: str
    version: str
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Response:
    """A response head. An empty ``reason`` is sent as the status code's standard phrase."""

    status: int
    version: str
    headers: Headers = ()
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Data:
    """A run of body bytes (LENGTH framing)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Lines:
    """Data lines of a LINES-framed body, each without its CRLF."""

    lines: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The current message is complete."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The other side closed its sending half; nothing more will arrive."""


Event = Request | Response | Data | Lines | EndOfMessage | ConnectionClosed


class _Sentinel(Enum):
    NEED_DATA = "NEED_DATA"  # feed more bytes, then call next_event again
    PAUSED = "PAUSED"  # the other side's next message waits until ours is done


NEED_DATA = _Sentinel.NEED_DATA
PAUSED = _Sentinel.PAUSED


class Framing(Enum):
    """How a response body is delimited.

    LINES: P2S (docs/p2p-ci.md#p2s-responses): status line, blank line, data lines, blank line.
    LENGTH: P2P GET and the extensions: headers, blank line, Content-Length bytes
    (a 200 without Content-Length runs until the connection closes).
    """

    LINES = "lines"
    LENGTH = "length"
