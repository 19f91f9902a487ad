"""Sans-IO protocol codecs: pure code over bytes, no sockets, no asyncio.

``Connection`` frames messages for every p2pshare protocol; ``ci``, ``di`` and ``swarm``
give those messages meaning. A test keeps this package free of I/O imports.
"""

from __future__ import annotations

from ._connection import TRANSITIONS, Connection, Role, State
from ._events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Framing,
    Lines,
    Request,
    Response,
)
from ._grammar import Headers, get_header
from ._reached import INDEX_SERVER, foreign, line_kind, server_kind, wrong_server
from ._show import head_text, wire_text

__all__ = [
    "INDEX_SERVER",
    "NEED_DATA",
    "PAUSED",
    "TRANSITIONS",
    "Connection",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "Framing",
    "Headers",
    "Lines",
    "Request",
    "Response",
    "Role",
    "State",
    "foreign",
    "get_header",
    "head_text",
    "line_kind",
    "server_kind",
    "wire_text",
    "wrong_server",
]
