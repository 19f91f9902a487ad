"""Messages as text, for people: the menus' printing and the wire log (``wirelog``).

Strategy: an event is shown as the bytes it stands for on the wire, rebuilt from the event
(a head's start line and headers in order), so a sent and a received message read alike.
A body is summarised, never dumped: ``Data`` by its length, ``Lines`` (P2S data lines) by
the first ``WIRE_LINES`` of them and a count of the rest. Pure text; escaping for a
terminal is the caller's (``wirelog.shown``).
"""

from __future__ import annotations

from ._connection import _phrase
from ._events import ConnectionClosed, Data, Event, Lines, Request, Response
from ._grammar import encode_head

WIRE_LINES = 8  # data lines of one Lines event the wire log shows; the rest are counted


def head_text(event: Request | Response) -> str:
    """A message head as it stands on the wire, for printing (without the blank line)."""
    if isinstance(event, Request):
        start = f"{event.method} {event.target} {event.version}"
    else:
        start = f"{event.version} {event.status} {event.reason or _phrase(event.status)}"
    return encode_head(start, event.headers).decode("utf-8").rstrip("\r\n").replace("\r", "")


def wire_text(event: Event) -> str | None:
    """``event`` as one wire-log message (CRLFs kept), or None for an end of message."""
    if isinstance(event, Request | Response):
        return head_text(event).replace("\n", "\r\n") + "\r\n\r\n"
    if isinstance(event, Data):
        return f"[{len(event.data)} body bytes]"
    if isinstance(event, Lines):
        shown = "".join(line.decode("utf-8", "replace") + "\r\n"
                        for line in event.lines[:WIRE_LINES])
        rest = event.lines[WIRE_LINES:]
        if rest:
            shown += f"[{len(rest)} more lines, {sum(len(x) + 2 for x in rest)} bytes]"
        return shown
    if isinstance(event, ConnectionClosed):
        return "[closed]"
    return None
