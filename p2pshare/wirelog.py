"""The wire log, and text from the network made safe to show.

Strategy: every protocol message that crosses a socket (client or server side, P2P-CI,
P2P-DI or the swarm) may be logged on the logger ``p2pshare.wire`` at level ``WIRE`` (15,
between DEBUG and INFO; ``p2pshare -v`` shows it), one record per message:
``> HOST:PORT text`` for what we sent, ``< HOST:PORT text`` for what we received. The
callers (``net``, the swarm's links) ask ``enabled()`` once per message and build no text
when it is off, so a server that does not log pays one level check per read.

A title, host name or reason read from the network reaches a terminal only through
``shown``: every character that is not printable (ESC, CR, a bidirectional override...)
is written as its Python escape (``\\x1b``, ``\\r``, ``\\u202e``), so no peer can move
our cursor, recolour or rewrite what we print. The wire log's messages pass through it,
so a message's CRLFs read ``\\r\\n``, as on the wire. The command line's output uses the
same function (``cli.text``), the only copy.
"""

from __future__ import annotations

import logging

WIRE = 15  # the wire log's level: above DEBUG, below INFO
WIRE_NAME = "WIRE"
logging.addLevelName(WIRE, WIRE_NAME)
wire_log = logging.getLogger("p2pshare.wire")

SENT = ">"
RECEIVED = "<"


def enabled() -> bool:
    """Whether the wire log records anything now (one cached level check)."""
    return wire_log.isEnabledFor(WIRE)


def message(direction: str, peer: str, text: str) -> None:
    """Log one message ``text`` sent to (``SENT``) or received from (``RECEIVED``) ``peer``."""
    wire_log.log(WIRE, "%s %s %s", direction, peer, shown(text))


def shown(text: str) -> str:
    """``text`` with every non-printable character (but the space) as a visible escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def shown_lines(text: str) -> str:
    """``shown`` for each line of ``text``, the line breaks kept."""
    return "\n".join(shown(line) for line in text.split("\n"))


def _escape(c: str) -> str:
    code = ord(c)
    if code <= 0xFF:
        return {"\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(c, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
