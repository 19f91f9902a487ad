"""Client streams: where a client's sans-IO connection meets an asyncio socket.

Strategy (after h11's TrioHTTPWrapper): ``EventStream`` owns a StreamReader/StreamWriter
pair and a ``Connection``. ``next_event`` reads on ``NEED_DATA``; ``send`` writes
``conn.send(event)`` and drains. No protocol decision is taken here: clients decide, this
only moves bytes. Servers do not use it: they run on ``net.runtime``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable, Iterable
from typing import NamedTuple

from .. import limits, wirelog
from ..errors import LocalProtocolError, P2PError, PeerGone
from ..host import join_hostport, plain_ip
from ..protocol import NEED_DATA, PAUSED, Connection, Event, Lines, Response, wire_text
from ..protocol._events import ConnectionClosed, EndOfMessage, _Sentinel

log = logging.getLogger(__name__)


class BaseStream:
    """A ``Connection`` bound to a byte transport; subclasses say how bytes move."""

    def __init__(self, conn: Connection, peername: object) -> None:
        self.conn = conn
        # Called with ("<", bytes) for what arrives and (">", bytes) for what we send:
        # lets a peer print the messages it exchanges, as the handout asks.
        self.on_bytes: Callable[[str, bytes], None] | None = None
        # The first bytes that arrived (one line at most): a client that cannot read the
        # reply as its protocol names from them what it reached (``protocol.line_kind``).
        self.opening = bytearray()
        peer = peername if isinstance(peername, tuple) else None
        self.peername: tuple[str, int] = ((plain_ip(str(peer[0])), int(peer[1])) if peer
                                          else ("?", 0))

    @property
    def label(self) -> str:
        """The other side's ``host:port``, for logs."""
        return join_hostport(*self.peername)

    async def _recv(self) -> bytes:
        """Up to RECV_CHUNK bytes; b"" at EOF. Raises ConnectionError/OSError on reset."""
        raise NotImplementedError

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    async def drain(self) -> None:
        """Wait until written bytes are handed to the kernel. Raises PeerGone."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the socket; never raises."""
        raise NotImplementedError

    async def next_event(
        self, timeout: float | None = None, *, idle: float | None = None
    ) -> Event:
        """The next event, reading from the socket as needed.

        Args:
            timeout: seconds for the whole event to arrive once reading starts.
            idle: if set, seconds to wait for the first byte when nothing is buffered;
                ``timeout`` then counts from that byte (a head-read deadline).

        Raises:
            TimeoutError: nothing complete arrived in time.
            RemoteProtocolError: the other side broke the protocol.
        """
        event = self.conn.next_event()  # a whole event may be buffered (pipelining)
        if event is NEED_DATA and idle is not None:
            async with asyncio.timeout(idle):
                self.conn.receive_data(await self._read())
            event = self.conn.next_event()
        async with asyncio.timeout(timeout):
            while True:
                if event is PAUSED:
                    raise LocalProtocolError("read while our own message is unfinished")
                if not isinstance(event, _Sentinel):
                    if wirelog.enabled():
                        log_wire(wirelog.RECEIVED, self.label, (event,))
                    return event
                self.conn.receive_data(await self._read())
                event = self.conn.next_event()

    async def _read(self) -> bytes:
        try:
            data = await self._recv()
        except (ConnectionError, OSError):
            return b""  # a reset is an end of input; the codec decides if it was early
        if len(self.opening) < limits.MAX_LINE:
            self.opening += data[: limits.MAX_LINE - len(self.opening)]
        if self.on_bytes is not None and data:
            self.on_bytes("<", data)
        return data

    async def read_p2s_response(
        self, timeout: float = limits.RESPONSE_TIMEOUT, linger: float = limits.RESPONSE_LINGER,
        check: Callable[[Response], None] | None = None,
    ) -> tuple[Response, list[bytes]]:
        """A whole LINES-framed reply: its status and data lines.

        After the status line, a silence of ``linger`` seconds ends the reply (A2).
        ``check`` sees the head before any data line is read (and may raise).

        Raises:
            PeerGone: the server closed before replying.
        """
        head = await self.next_event(timeout)
        if not isinstance(head, Response):
            raise PeerGone("the server closed the connection without a reply")
        if check is not None:
            check(head)
        lines: list[bytes] = []
        while True:
            try:
                event = await self.next_event(linger)
            except TimeoutError:
                self.conn.receive_pause()
                continue
            if isinstance(event, Lines):
                lines.extend(event.lines)
            elif isinstance(event, (EndOfMessage, ConnectionClosed)):
                return head, lines

    async def send(self, *events: Event) -> None:
        """Encode and write ``events``, then wait for the socket to drain."""
        data = self.conn.send_all(*events)
        if data:
            if wirelog.enabled():
                log_wire(wirelog.SENT, self.label, events)
            if self.on_bytes is not None:
                self.on_bytes(">", data)
            self._write(data)
        await self.drain()

    async def send_quietly(self, *events: Event) -> None:
        """Best-effort send (an error reply before closing): never raises."""
        try:
            await self.send(*events)
        except (P2PError, OSError):
            pass



class EventStream(BaseStream):
    """A ``Connection`` bound to an asyncio StreamReader/StreamWriter pair (clients)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: Connection
    ) -> None:
        super().__init__(conn, writer.get_extra_info("peername"))
        self.reader = reader
        self.writer = writer

    async def _recv(self) -> bytes:
        return await self.reader.read(limits.RECV_CHUNK)

    def _write(self, data: bytes) -> None:
        write(self.writer, data)

    async def drain(self) -> None:
        """Wait until written bytes are handed to the kernel; a receiver that takes none of
        them for ``limits.WRITE_STALL_TIMEOUT`` is cut off (as ``sendfile`` does), so that
        one that asks for a big reply and never reads it cannot hold a slot for ever.

        Raises:
            PeerGone: the connection failed or stalled.
        """
        transport = self.writer.transport
        while True:
            left = transport.get_write_buffer_size()
            try:
                async with asyncio.timeout(limits.WRITE_STALL_TIMEOUT):
                    await self.writer.drain()
                return
            except TimeoutError as exc:
                if transport.get_write_buffer_size() < left:
                    continue  # slow, but taking bytes
                transport.abort()  # what is buffered will never leave: drop it and the socket
                raise PeerGone("receiver stalled") from exc
            except (ConnectionError, OSError) as exc:
                raise PeerGone(str(exc)) from exc

    async def aclose(self) -> None:
        """Close the socket; never raises."""
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def write(writer: asyncio.StreamWriter, data: bytes) -> None:
    """``writer.write(data)``, nothing once the connection is closing. asyncio's loop drops
    such bytes quietly and uvloop's raises RuntimeError ("the handler is closed"): with this
    every client behaves as on asyncio's, and the next read reports the end (PeerGone)."""
    if not writer.is_closing():
        writer.write(data)


def log_wire(direction: str, peer: str, events: Iterable[Event]) -> None:
    """Log each of ``events`` sent to or received from ``peer`` on the wire log
    (``wirelog``; the caller checked ``wirelog.enabled()``), ends of messages left out."""
    for event in events:
        text = wire_text(event)
        if text is not None:
            wirelog.message(direction, peer, text)


def set_keepalive(writer: asyncio.StreamWriter) -> None:
    """TCP keepalive on a stream's socket (see ``keepalive``)."""
    keepalive(writer.get_extra_info("socket"))


def keepalive(sock: socket.socket | None) -> None:
    """TCP keepalive so that a vanished host is noticed (limits.KEEPALIVE_*)."""
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", limits.KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", limits.KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", limits.KEEPALIVE_COUNT),
    ):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


async def open_stream(
    host: str, port: int, conn: Connection, timeout: float = limits.CONNECT_TIMEOUT
) -> EventStream:
    """Connect to ``host:port`` and wrap the connection.

    Raises:
        PeerGone: the connection could not be made in time, or the name is unusable.
    """
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=limits.RECV_CHUNK)
    except (OSError, TimeoutError, UnicodeError) as exc:  # UnicodeError: a name IDNA refuses
        raise PeerGone(f"cannot connect to {join_hostport(host, port)}: {exc}") from exc
    return EventStream(reader, writer, conn)


class SendTimes(NamedTuple):
    """How long a TCP socket has had bytes to send (``busy``), and of that how long it
    waited on the receiver's window (``receiver``: the receiver reads too slowly), in
    seconds since the connection began."""

    busy: float
    receiver: float


# struct tcp_info (Linux 4.10 and later): tcpi_busy_time then tcpi_rwnd_limited, each a
# __u64 of microseconds, at this offset.
_TCP_INFO_BUSY = 168
_TCP_INFO_SIZE = _TCP_INFO_BUSY + 16


def send_times(sock: socket.socket | None) -> SendTimes | None:
    """The kernel's ``SendTimes`` of ``sock``; None where it does not tell (not Linux, a
    kernel before 4.10, not a TCP socket, or closed). No library reads ``TCP_INFO``: it is
    one ``getsockopt`` and two fields at a fixed offset."""
    if sock is None or not hasattr(socket, "TCP_INFO"):
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    except OSError:
        return None
    if len(raw) < _TCP_INFO_SIZE:
        return None
    busy, receiver = struct.unpack_from("=QQ", raw, _TCP_INFO_BUSY)
    return SendTimes(busy / 1e6, receiver / 1e6)
