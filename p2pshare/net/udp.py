"""Datagram sockets: the one place p2pshare binds one (a UDP server) or opens one (a client).

Strategy: UDP has no connection, so the runtime's admission and deadlines have nothing
to hold on to; what is left to defend is the rate. ``UdpServer`` reads each datagram in
asyncio's callback, drops it unread when it is longer than ``max_datagram`` or its source
address is over its rate (``SourceRates``: a burst, then a steady rate, per address, in
bounded memory), and otherwise hands it to the handler, a plain function that returns
the answer's bytes or None, which is sent back at once. No task, no queue: a flood costs
one dictionary update a datagram. Like ``runtime.Server``, host None binds every address
on one dual-stack socket, and an IPv4 source read from it (``::ffff:a.b.c.d``) is given to
the handler as its IPv4 address (``host.plain_ip``).

``UdpClient`` is one socket connected to one server (from the address we listen on, when
that is one address: ``net.origin``): ``ask`` sends a datagram and waits,
under a deadline, for an answer its reader accepts; datagrams the reader refuses (late
answers to an earlier try, another transaction) are skipped, not trusted.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from .. import limits
from ..errors import PeerGone, RemoteProtocolError
from ..host import join_hostport, plain_ip
from .origin import ANYWHERE, Origin
from .sources import SourceRates

__all__ = ["DatagramHandler", "UdpClient", "UdpServer"]

log = logging.getLogger(__name__)
T = TypeVar("T")
DatagramHandler = Callable[[bytes, str, int], "bytes | None"]  # data, source host, port


class UdpServer:
    """Answers datagrams with ``handler(data, host, port)`` (module docstring).

    Args:
        handler: returns the answer's bytes, or None to send nothing.
        name: for logs.
        burst, rate: datagrams a source address may send at once, and a second after.
        max_datagram: longer datagrams are dropped.
    """

    def __init__(self, handler: DatagramHandler, name: str = "udp", *,
                 burst: float = limits.UDP_DATAGRAM_BURST,
                 rate: float = limits.UDP_DATAGRAM_RATE,
                 max_datagram: int = limits.MAX_UDP_DATAGRAM) -> None:
        self.handler = handler
        self.name = name
        self.rates = SourceRates(burst, rate, limits.MAX_RATE_SOURCES)
        self.max_datagram = max_datagram
        self.received = 0  # datagrams read
        self.dropped = 0  # of those, too long or over the rate
        self._transport: asyncio.DatagramTransport | None = None
        self.address: tuple[str, int] = ("", 0)

    async def start(self, host: str | None = None, port: int = 0) -> tuple[str, int]:
        """Bind (host None or ``""``: every address, IPv4 and IPv6); returns the address.

        Raises:
            OSError: the address cannot be bound.
        """
        loop = asyncio.get_running_loop()
        if host:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), local_addr=(host, port))
        else:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), sock=_every_address(port))
        self._transport = transport
        self.address = transport.get_extra_info("sockname")[:2]
        log.info("[%s] UDP on %s", self.name, join_hostport(*self.address))
        return self.address

    def datagram(self, data: bytes, source: tuple[str, int]) -> None:
        host, port = plain_ip(source[0]), source[1]
        self.received += 1
        if len(data) > self.max_datagram or not self.rates.allow(host, time.monotonic()):
            self.dropped += 1
            return
        answer = self.handler(data, host, port)
        if answer is not None and self._transport is not None:
            self._transport.sendto(answer, source)

    async def aclose(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: UdpServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server.datagram(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable from a client
        log.debug("[%s] %s", self.server.name, exc)


def _every_address(port: int) -> socket.socket:
    """One dual-stack datagram socket on ``::``, or ``0.0.0.0`` without IPv6."""
    if socket.has_dualstack_ipv6():
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address = "::"
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        address = "0.0.0.0"
    try:
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


# ------------------------------------------------------------------ client
class UdpClient:
    """A datagram socket connected to one server (module docstring)."""

    def __init__(self, transport: asyncio.DatagramTransport, inbox: _Inbox) -> None:
        self._transport = transport
        self._inbox = inbox
        peer = transport.get_extra_info("peername")
        self.ipv6 = ":" in plain_ip(peer[0])  # the family the server sees us by

    @classmethod
    async def open(cls, host: str, port: int, origin: Origin = ANYWHERE) -> UdpClient:
        """A socket connected to ``host:port``, bound first to ``origin``'s address of
        the server's family, if any (``net.origin``).

        Raises: PeerGone: the name does not resolve or the address is unusable.
        """
        loop = asyncio.get_running_loop()
        try:
            transport, inbox = await loop.create_datagram_endpoint(
                _Inbox, remote_addr=(host, port),
                local_addr=await origin.local_addr(host, port))
        except OSError as exc:
            raise PeerGone(f"cannot reach {join_hostport(host, port)}: {exc}") from exc
        return cls(transport, inbox)

    async def ask(self, data: bytes, read: Callable[[bytes], T], wait: float) -> T:
        """Send ``data`` and return ``read(answer)`` for the first answer ``read`` accepts
        (it raises ``RemoteProtocolError`` for others) within ``wait`` seconds.

        Raises:
            TimeoutError: no acceptable answer in time.
            PeerGone: the server's host says nothing listens on that port.
        """
        self._inbox.drain()
        self._transport.sendto(data)
        async with asyncio.timeout(wait):
            while True:
                answer = await self._inbox.get()
                if not answer:  # the marker of an ICMP error: nobody listens there
                    raise PeerGone(f"nothing listens: {self._inbox.failure}")
                try:
                    return read(answer)
                except RemoteProtocolError as exc:
                    log.debug("skipped a datagram: %s", exc)

    def close(self) -> None:
        self._transport.close()


class _Inbox(asyncio.DatagramProtocol):
    """Datagrams received, at most a few kept (a client expects one answer at a time)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(limits.UDP_CLIENT_QUEUE)
        self.failure: Exception | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) <= limits.MAX_UDP_DATAGRAM and not self.queue.full():
            self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:  # ICMP: nobody listens there
        self.failure = exc
        if not self.queue.full():
            self.queue.put_nowait(b"")

    async def get(self) -> bytes:
        return await self.queue.get()

    def drain(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
