"""Pipelined P2P-SWARM client connections: to another peer's piece server, or the tracker.

Strategy: requests are written as soon as they are made (``send``); answers come back in
order and ``read_answer`` returns one whole answer at a time. All reading state lives in
the object, so a ``read_answer`` cut short by a timeout or a cancellation loses nothing
and the next call carries on. The tracker connection reads through an asyncio stream; a
piece link is its own ``asyncio.BufferedProtocol``: once an answer's head is parsed, the
kernel copies its body straight into the ``bytearray`` that the downloader then hashes and
writes (``recv_into``; no copy through a stream's buffer or the codec's), heads and the
first bytes after them going through a small scratch buffer. A piece link reads on
only while its caller wants the next answer, or while nothing is complete and little is
held (``limits.MAX_HEAD`` bytes), so a peer can never make it hold more than one answer.
The link also measures its peer: bytes per second over recent pieces, when the oldest
request started to be served (the moment the previous answer ended) and how much of its
answer has arrived (``progress``), by which the downloader judges it (``roster.judge``).
While a piece's body arrives, the socket's receive low-water mark (``SO_RCVLOWAT``) makes
the kernel wake us for whole runs of it instead of every few packets
(``limits.MAX_RCVLOWAT``). Piece links may share a download rate limiter (``net.rate``):
each read is at most one run of it and is paid for before the next, so the kernel's
receive window, filling while we wait, slows every sender to the limit together.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
from asyncio.trsock import TransportSocket
from collections import deque
from typing import cast

from .. import limits, wirelog
from ..errors import PeerGone, RemoteProtocolError, WrongServer
from ..host import join_hostport
from ..net.rate import RateLimiter
from ..net.stream import log_wire, write
from ..protocol import Data, Request, Response, foreign, server_kind, wrong_server
from ..protocol import swarm as sp

Address = tuple[str, int]
_RATE_WEIGHT = 0.3  # weight of the newest piece in the rate average


class _Pipelined:
    """Requests written at once, answers read in order; reading survives cancellation.
    Subclasses move the bytes (``_write``, ``_receive``)."""

    def __init__(self, address: Address, max_body: int, limiter: RateLimiter | None,
                 wanted: str) -> None:
        self.address = address
        self.limiter = limiter
        self.wanted = wanted  # the kind of server we mean to reach, for a WrongServer
        self.opening = bytearray()  # the first bytes that arrived (one line at most)
        self.client = sp.PipelinedClient(max_body)
        self.last_byte = time.monotonic()
        self.received = 0  # bytes read in all
        self._sock: socket.socket | None = None
        self._lowat = 1

    def send(self, msg: sp.SwarmRequest) -> None:
        """Write a request."""
        head, body = sp.to_request(msg)
        self._write(self.client.send(head, body))
        if wirelog.enabled():
            self._log_wire(wirelog.SENT, head, body)

    async def read_answer(self) -> tuple[Response, bytearray]:
        """The next answer's head and body.

        Raises:
            PeerGone: the peer closed or reset the connection.
            WrongServer: the answer is not P2P-SWARM/1.0 (the message names what sent it).
            RemoteProtocolError: the peer broke the protocol.
        """
        try:
            while (answer := self.client.next_answer()) is None:
                if self.client.closed:
                    raise PeerGone(f"{join_hostport(*self.address)} closed the connection")
                await self._receive()
        except RemoteProtocolError as exc:
            wrong = foreign(bytes(self.opening), join_hostport(*self.address), sp.VERSION,
                            self.wanted)
            if wrong is None:
                raise
            raise wrong from exc
        if answer[0].version.upper() != sp.VERSION:
            raise WrongServer(wrong_server(join_hostport(*self.address),
                                           server_kind(answer[0]), self.wanted))
        if wirelog.enabled():
            self._log_wire(wirelog.RECEIVED, *answer)
        return answer

    def _log_wire(self, direction: str, head: Request | Response,
                  body: bytes | bytearray) -> None:
        """A message on the wire log: its head, its body by length (``net.log_wire``)."""
        log_wire(direction, join_hostport(*self.address),
                 (head, Data(bytes(body))) if body else (head,))

    def _arrived(self, data: bytes | memoryview, count: int) -> None:
        """``count`` bytes arrived (``data``: those that may open the connection)."""
        self.last_byte = time.monotonic()
        self.received += count
        if len(self.opening) < limits.MAX_LINE:
            self.opening += data[: limits.MAX_LINE - len(self.opening)]

    def _low_water(self) -> int:
        """Bytes the kernel should hold before waking us: 1 unless a body is arriving."""
        return 1

    def _set_low_water(self, lowat: int) -> None:
        if lowat != self._lowat and self._sock is not None:
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
            except OSError:
                self._sock = None  # not supported here: read as data comes
            self._lowat = lowat

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    async def _receive(self) -> None:
        """Wait for more bytes (or the end) to reach ``client``."""
        raise NotImplementedError


class PipelinedStream(_Pipelined):
    """A pipelined connection over an asyncio stream (the tracker's)."""

    def __init__(self, address: Address, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, max_body: int,
                 limiter: RateLimiter | None = None,
                 wanted: str = "the P2P-SWARM tracker (an index server)") -> None:
        super().__init__(address, max_body, limiter, wanted)
        self.reader, self.writer = reader, writer
        self._sock = writer.get_extra_info("socket")

    def _write(self, data: bytes) -> None:
        write(self.writer, data)

    async def drain(self) -> None:
        """Raises: PeerGone if the connection broke."""
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            raise PeerGone(str(exc)) from exc

    async def _receive(self) -> None:
        self._set_low_water(self._low_water())
        pace = self.limiter
        try:
            data = await self.reader.read(pace.run if pace else limits.RECV_CHUNK)
        except (ConnectionError, OSError):
            data = b""
        if data:
            self._arrived(data, len(data))
        self.client.receive_data(data)  # kept, even if the wait below is cancelled
        if pace is not None and data:
            await pace.take(len(data))

    def close(self) -> None:
        self.writer.close()


class PeerLink(_Pipelined, asyncio.BufferedProtocol):
    """A pipelined piece connection to ``address``: the protocol of its transport."""

    def __init__(self, address: Address, limiter: RateLimiter | None = None) -> None:
        super().__init__(address, limits.MAX_PIECE_SIZE, limiter, "a P2P-SWARM piece server")
        self.transport: asyncio.Transport | None = None
        self._scratch = memoryview(bytearray(limits.MAX_HEAD))  # heads, and what follows
        self._into_body = False  # the last buffer handed out was the body's
        self._waiter: asyncio.Future[None] | None = None  # a ``_receive`` waiting
        self._own_sock: socket.socket | None = None  # see ``connection_made``
        self._unpaid = 0  # bytes read and not yet paid to the limiter
        self.queue: deque[int] = deque()  # pieces asked, oldest first
        self.rate: float | None = None  # bytes per second, once a piece has arrived
        self.head_since = time.monotonic()  # when the oldest request began to be served
        self._head_mark = 0  # ``received`` when it began, less what earlier answers used
        self.snubbed = False  # late: no new request until it delivers
        self.good = 0  # good pieces it delivered (the downloader counts them)
        self._deadline = math.inf  # the read under way's (``read_piece``), loop clock
        self._timer: asyncio.TimerHandle | None = None  # wakes ``_receive`` by then
        self._armed_at = math.inf  # when ``_timer`` fires
        self._late = False  # ``_timer`` fired at or after ``_deadline``

    @classmethod
    async def connect(cls, address: Address, limiter: RateLimiter | None = None) -> PeerLink:
        """A link whose reads ``limiter`` paces, if given.

        Raises: PeerGone if the peer cannot be reached."""
        link = cls(address, limiter)
        try:
            async with asyncio.timeout(limits.CONNECT_TIMEOUT):
                await asyncio.get_running_loop().create_connection(lambda: link, *address)
        except (OSError, TimeoutError, UnicodeError) as exc:  # UnicodeError: IDNA refuses
            raise PeerGone(f"cannot connect to {join_hostport(*address)}: {exc}") from exc
        return link

    # ----------------------------------------------------------- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keeps the socket to set its low-water mark (twice a piece): uvloop's stand-in
        for it makes a socket object per ``setsockopt``, so the link makes one of its own
        instead, on a duplicate of the descriptor, closed with the connection (asyncio's
        stand-in sets options on its socket itself: no second descriptor for it)."""
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and not isinstance(sock, socket.socket | TransportSocket):
            try:
                sock = self._own_sock = socket.fromfd(sock.fileno(), sock.family, sock.type)
            except OSError:
                pass  # the stand-in will do
        self._sock = sock

    def get_buffer(self, sizehint: int) -> memoryview:
        run = self.limiter.run if self.limiter else limits.RECV_CHUNK
        body = self.client.body_view(run)
        self._into_body = body is not None
        return body if body is not None else self._scratch[:run]

    def buffer_updated(self, nbytes: int) -> None:
        if self._into_body:
            self.client.body_received(nbytes)
            self._arrived(b"", nbytes)
        else:
            data = self._scratch[:nbytes]
            self.client.receive_data(data)
            self._arrived(data, nbytes)
            if self._waiter is not None:  # as the caller would, at once: a piece's head
                self.client.advance()  # starts its body, which goes on arriving in place
        if self.limiter is not None:
            self._unpaid += nbytes
            self._hold()  # until the limiter is paid (``_receive``)
        elif self.client.ready or self.client.held >= limits.MAX_HEAD:
            self._hold()  # until the caller takes it (``_receive``)
        elif self._into_body or self.client.in_body:  # nothing for the caller to do yet
            self._set_low_water(self._low_water())  # never above what the body lacks
            return
        self._wake()

    def eof_received(self) -> bool:
        self._ended()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._own_sock is not None:
            self._own_sock.close()
            self._own_sock = self._sock = None
        self._ended()

    def _ended(self) -> None:
        if not self.client.closed:
            self.client.receive_data(b"")
        self._wake()

    def _hold(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ----------------------------------------------------------- moving bytes
    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def _receive(self) -> None:
        await self._pay()  # for a read a cancelled wait left unpaid
        self._set_low_water(self._low_water())
        transport = self.transport
        if transport is None or transport.is_closing():
            self._ended()
            return
        if self._late:
            raise TimeoutError
        transport.resume_reading()
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self._late:
            raise TimeoutError
        await self._pay()

    async def _pay(self) -> None:
        """Pay the limiter for what was read; reading stays held until then."""
        if self._unpaid and self.limiter is not None:
            owed, self._unpaid = self._unpaid, 0
            await self.limiter.take(owed)  # granted at once: kept if this is cancelled

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            self.transport.close()

    # ----------------------------------------------------------- pieces
    def request(self, swarm: str, index: int, length: int = limits.MAX_PIECE_SIZE) -> None:
        """Ask for piece ``index`` of ``length`` bytes (answers come in the order asked;
        a longer answer is received as it arrives, not into a buffer made for it)."""
        if not self.queue:
            self._head_began(time.monotonic())
        self._write(self.client.send_piece(swarm, index, length))
        if wirelog.enabled():
            self._log_wire(wirelog.SENT, *sp.to_request(sp.GetPiece(swarm, index)))
        self.queue.append(index)

    async def read_piece(self, deadline: float | None = None,
                         ) -> tuple[int, Response, bytearray]:
        """The next answer: (piece asked, status head, body); see ``read_answer``.

        Raises:
            TimeoutError: ``deadline`` (on the loop's clock) came before the answer was
                whole; as under ``asyncio.timeout_at``, nothing read is lost and the
                next call carries on. A downloader gives one for every piece, so an
                unpaced link keeps one timer (``_arm``) instead of a timeout context and
                a timer per read; a paced one (a rate limiter) takes the context, which
                also cuts short a wait in the limiter.
        """
        if deadline is None:
            head, body = await self.read_answer()
        elif self.limiter is not None:
            async with asyncio.timeout_at(deadline):
                head, body = await self.read_answer()
        else:
            self._arm(deadline)
            try:
                head, body = await self.read_answer()
            finally:
                self._deadline, self._late = math.inf, False
        now = time.monotonic()
        index = self.queue.popleft()
        if head.status == 200 and body:
            rate = len(body) / max(now - self.head_since, 1e-6)
            self.rate = rate if self.rate is None else (
                _RATE_WEIGHT * rate + (1 - _RATE_WEIGHT) * self.rate)
        self._head_began(now)
        return index, head, body

    def _arm(self, deadline: float) -> None:
        """Make ``_receive`` raise TimeoutError once ``deadline`` comes. The link's one
        timer is moved only to come earlier; one set for earlier than a read's deadline
        (an earlier read's) fires, and is set again for the deadline (``_expired``): as
        deadlines move on piece after piece, a timer per piece is not made."""
        self._deadline, self._late = deadline, False
        if self._timer is None or self._armed_at > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_at(deadline, self._expired)
            self._armed_at = deadline

    def _expired(self) -> None:
        """The timer fired: the read under way is late, or its deadline is later."""
        self._timer = None
        if self._deadline == math.inf:
            return  # no read under way
        if self._deadline > self._armed_at:
            self._arm(self._deadline)
            return
        self._late = True
        self._wake()

    def _head_began(self, now: float) -> None:
        self.head_since = now
        self._head_mark = self.received - self.client.buffered

    @property
    def progress(self) -> int:
        """Bytes of the oldest request's answer received so far."""
        return self.received - self._head_mark

    def _low_water(self) -> int:
        if self.snubbed:  # late: see every byte it sends, however slowly
            return 1
        rate = self.rate if self.rate is not None else limits.ASSUMED_RATE
        return max(1, min(self.client.wanted, limits.MAX_RCVLOWAT,
                          int(rate * limits.LOWAT_SECONDS)))

    def wake_for_every_byte(self) -> bool:
        """Drop the low-water mark to one byte. Returns whether it was higher: then the
        kernel may hold bytes of a peer that slowed down, which we were not woken for, and
        its silence is not proven."""
        raised = self._lowat > 1
        self._set_low_water(1)
        return raised

    @property
    def head_index(self) -> int | None:
        return self.queue[0] if self.queue else None

    def depth(self, piece_size: int) -> int:
        """Requests to keep in flight: PIPELINE_SECONDS of this peer's rate."""
        rate = self.rate if self.rate is not None else limits.ASSUMED_RATE
        wanted = int(rate * limits.PIPELINE_SECONDS / max(piece_size, 1)) + 1
        return max(limits.MIN_PIPELINE, min(limits.MAX_PIPELINE, wanted))
