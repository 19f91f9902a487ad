"""An outgoing peer wire connection: the sans-IO codec over an asyncio stream.

Strategy: the thin wrapper of STYLE.md, one per connection: ``next_event`` reads on
``NEED_DATA`` and returns the codec's events; ``send`` writes what the codec encodes.
Protocol decisions stay in the codec (``protocol.bt_wire``) and the downloader. Reads are
paid for to the download's rate limiter, if any, before the next read, so the kernel's
receive window slows every sender together (as the swarm's piece links do). Opening a
connection exchanges the handshakes (BEP 3) and the extension handshakes (BEP 10) within
``limits.BT_HANDSHAKE_TIMEOUT``; the peer must name the torrent we asked for.
"""

from __future__ import annotations

import asyncio
import os
import time

from .. import limits, wirelog
from ..errors import PeerGone, RemoteProtocolError
from ..host import join_hostport
from ..net.origin import ANYWHERE, Origin
from ..net.rate import RateLimiter
from ..net.stream import write
from ..protocol import bt_events as w
from ..protocol._bt_state import Geometry
from ..protocol._events import ConnectionClosed, _Sentinel
from ..protocol.bt_wire import NEED_DATA, BtConnection, BtRole
from ..swarm.link import Address


def bt_wire_text(event: w.BtEvent) -> str:
    """A message for the wire log (``-v``): its fields, a block by its length only."""
    if isinstance(event, w.Piece):
        return f"Piece(index={event.index}, begin={event.begin}, [{len(event.block)} bytes])"
    text = repr(event)
    return text if len(text) <= 200 else text[:200] + "..."


def new_peer_id() -> bytes:
    """Our peer id: the Azureus-style client prefix, then random bytes (BEP 20)."""
    return b"-PS0100-" + os.urandom(12)


class PeerWire:
    """One connection to a peer, handshakes done.

    Attributes:
        address: the peer's (host, port).
        conn: the codec.
        theirs: the peer's handshake; ``extended``: its extension handshake, if any.
    """

    def __init__(self, address: Address, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, conn: BtConnection,
                 limiter: RateLimiter | None) -> None:
        self.address = address
        self.reader, self.writer = reader, writer
        self.conn = conn
        self.limiter = limiter
        self.theirs: w.Handshake | None = None
        self.extended: w.ExtendedHandshake | None = None
        self.received = 0
        self.sent_at = time.monotonic()  # when we last sent a message

    @property
    def label(self) -> str:
        return join_hostport(*self.address)

    @classmethod
    async def connect(cls, address: Address, hello: w.Handshake, ext: w.ExtendedHandshake,
                      limiter: RateLimiter | None = None,
                      geometry: Geometry | None = None, upgrade: bytes | None = None,
                      origin: Origin = ANYWHERE) -> PeerWire:
        """Connect, and exchange handshakes for the torrent ``hello`` names (the peer may
        answer with ``upgrade`` instead, the truncated v2 info-hash of a hybrid torrent:
        BEP 52's upgrade to v2, which names the same torrent), from ``origin``'s address
        (the one we listen on, if one: ``net.origin``).

        Raises:
            OSError, TimeoutError: the connection failed.
            PeerGone: the peer closed it.
            RemoteProtocolError: the peer broke the protocol or serves another torrent.
        """
        async with asyncio.timeout(limits.BT_HANDSHAKE_TIMEOUT):
            reader, writer = await origin.open_connection(*address)
            conn = BtConnection(BtRole.INITIATOR, geometry=geometry)
            wire = cls(address, reader, writer, conn, limiter)
            try:
                wire.send(hello)
                theirs = await wire.next_event()
                if not isinstance(theirs, w.Handshake) or \
                        theirs.info_hash not in (hello.info_hash, upgrade):
                    raise RemoteProtocolError("the peer answered for another torrent")
                wire.theirs = theirs
                if theirs.extended:
                    wire.send(ext)
            except BaseException:
                wire.close()
                raise
        return wire

    def send(self, *events: w.BtEvent) -> None:
        write(self.writer, b"".join(self.conn.send(event) for event in events))
        self.sent_at = time.monotonic()
        if wirelog.enabled():
            for event in events:
                wirelog.message(wirelog.SENT, self.label, bt_wire_text(event))

    async def next_event(self) -> w.BtEvent:
        """The next message from the peer (the codec's own replies are written at once).

        Raises:
            PeerGone: it closed the connection.
            RemoteProtocolError: it broke the protocol.
        """
        while True:
            event = self.conn.next_event()
            owed = self.conn.data_to_send()
            if owed:
                write(self.writer, owed)
            if isinstance(event, ConnectionClosed):
                raise PeerGone(f"{self.label} closed the connection")
            if event is not NEED_DATA:
                assert not isinstance(event, _Sentinel)
                if isinstance(event, w.ExtendedHandshake):
                    self.extended = event
                if wirelog.enabled():
                    wirelog.message(wirelog.RECEIVED, self.label, bt_wire_text(event))
                return event
            await self.writer.drain()
            # Limited: one run of the limiter at a time, paid before the next read.
            data = await self.reader.read(self.limiter.run if self.limiter else
                                          limits.RECV_CHUNK)
            self.conn.receive_data(data)  # b"": the peer closed (ConnectionClosed next)
            self.received += len(data)
            if self.limiter is not None and data:
                await self.limiter.take(len(data))

    def close(self) -> None:
        self.writer.close()
