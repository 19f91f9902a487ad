"""A connection of the server runtime for a byte-stream protocol (the BitTorrent peer wire).

Strategy: the runtime's ``Link`` hands whole requests of a request/answer codec to its App.
A peer wire connection is symmetric instead: either side sends any message at any time,
so the App wants the bytes themselves. ``StreamLink`` is a ``Link`` (the same admission,
sweep, deadlines, write-stall cut-off, ``sendfile`` and closing, from the one ``Server``)
whose bytes go to a ``receiver`` the App sets in ``connected``; the App writes with
``write`` and ``sendfile_now``/``sendfile``. Its read deadline is the first-message
deadline (``Policy.first_request_timeout``) until the App calls ``greeted``, then the idle
deadline, renewed by every byte that arrives. A receiver that raises a ``P2PError`` or
``OSError`` closes the connection (the peer broke the protocol); nothing else is caught.
While the peer does not read what we write, reading pauses (as ``Link``); once it reads
again the receiver is called with ``b""`` to carry on with the input it held back.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import P2PError
from .link import Link

Receiver = Callable[[bytes], None]


class StreamLink(Link):
    """One accepted connection of a byte-stream App (``Server(link_class=StreamLink)``)."""

    __slots__ = ("receiver",)

    receiver: Receiver | None

    def connection_made(self, transport: object) -> None:
        self.receiver = None
        super().connection_made(transport)  # type: ignore[arg-type]

    def greeted(self) -> None:
        """The peer said what it must say first: from now on only the idle deadline runs."""
        self._due_first = None
        self._rest()

    def data_received(self, data: bytes) -> None:
        self.moved += len(data)
        self._rest()
        self._feed(data)

    def carry_on(self) -> None:
        """Let the receiver carry on with what it holds (its own timer's turn, or our
        peer reading again), its errors closing the link as a read's do."""
        self._feed(b"")

    def _feed(self, data: bytes) -> None:
        """Hand ``data`` to the receiver (b"": carry on with what it holds)."""
        if self._closing or self.receiver is None:
            return
        try:
            self.receiver(data)
        except (P2PError, OSError) as exc:
            self.close(f"malformed input ({exc})")

    def eof_received(self) -> bool:
        self.close("closed by the peer")
        return False

    def resume_writing(self) -> None:
        self._paused = False
        if not self._closing:
            self.stall_at = None
        self._wake_writer()
        if self._transport is not None and not self._closing:
            self._transport.resume_reading()
            self.carry_on()  # what arrived while the peer was not reading our answers

    def write(self, data: bytes) -> None:
        """Write ``data`` now (after anything corked)."""
        if self._closing or not data:
            return
        self._out.append(data)
        self._out_size += len(data)
        self.flush()

    def _note_sent(self, count: int) -> None:
        """No codec counts a byte stream's bodies."""
