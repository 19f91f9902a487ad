"""Pipelined P2P-SWARM client connections: to another peer's piece server, or the tracker.

Strategy: requests are written as soon as they are made (``send``); answers come back in
order and ``read_answer`` returns one whole answer at a time. All reading state lives in
the object, so a ``read_answer`` cut short by a timeout or a cancellation loses nothing
and the next call carries on. The link also measures its peer: bytes per
second over recent pieces, when the oldest request started to be served (the moment
the previous answer ended) and how much of its answer has arrived (``progress``), by which
the downloader judges it (``roster.judge``). While a piece's
body arrives, the socket's receive low-water mark (``SO_RCVLOWAT``) makes the kernel wake
us for whole runs of it instead of every few packets (``limits.MAX_RCVLOWAT``). Piece
links may share a download rate limiter (``net.rate``): each read is at most one run of
it and is paid for before the next, so the kernel's receive window, filling while we
wait, slows every sender to the limit together.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque

from .. import limits, wirelog
from ..errors import PeerGone, RemoteProtocolError, WrongServer
from ..host import join_hostport
from ..net.rate import RateLimiter
from ..net.stream import log_wire, open_stream
from ..protocol import Data, Request, Response, foreign, server_kind, wrong_server
from ..protocol import swarm as sp

Address = tuple[str, int]
_RATE_WEIGHT = 0.3  # weight of the newest piece in the rate average


class PipelinedStream:
    """Requests written at once, answers read in order; reading survives cancellation."""

    def __init__(self, address: Address, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, max_body: int,
                 limiter: RateLimiter | None = None,
                 wanted: str = "the P2P-SWARM tracker (an index server)") -> None:
        self.address = address
        self.limiter = limiter
        self.wanted = wanted  # the kind of server we mean to reach, for a WrongServer
        self.opening = bytearray()  # the first bytes that arrived (one line at most)
        self.reader, self.writer = reader, writer
        self.client = sp.PipelinedClient(max_body)
        self.last_byte = time.monotonic()
        self.received = 0  # bytes read in all
        self._sock: socket.socket | None = writer.get_extra_info("socket")
        self._lowat = 1

    def send(self, msg: sp.SwarmRequest) -> None:
        """Write a request (see ``drain`` for big bodies)."""
        head, body = sp.to_request(msg)
        self.writer.write(self.client.send(head, body))
        if wirelog.enabled():
            self._log_wire(wirelog.SENT, head, body)

    async def drain(self) -> None:
        """Raises: PeerGone if the connection broke."""
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            raise PeerGone(str(exc)) from exc

    async def read_answer(self) -> tuple[Response, bytes]:
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

    def _log_wire(self, direction: str, head: Request | Response, body: bytes) -> None:
        """A message on the wire log: its head, its body by length (``net.log_wire``)."""
        log_wire(direction, join_hostport(*self.address), (head, Data(body)) if body else (head,))

    def _low_water(self) -> int:
        """Bytes the kernel should hold before waking us: 1 unless a body is arriving."""
        return 1

    async def _receive(self) -> None:
        self._set_low_water(self._low_water())
        pace = self.limiter
        try:
            data = await self.reader.read(pace.run if pace else limits.RECV_CHUNK)
        except (ConnectionError, OSError):
            data = b""
        if data:
            self.last_byte = time.monotonic()
            self.received += len(data)
            if len(self.opening) < limits.MAX_LINE:
                self.opening += data[: limits.MAX_LINE - len(self.opening)]
        self.client.receive_data(data)  # kept, even if the wait below is cancelled
        if pace is not None and data:
            await pace.take(len(data))

    def _set_low_water(self, lowat: int) -> None:
        if lowat != self._lowat and self._sock is not None:
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
            except OSError:
                self._sock = None  # not supported here: read as data comes
            self._lowat = lowat

    def close(self) -> None:
        self.writer.close()


class PeerLink(PipelinedStream):
    """A pipelined piece connection to ``address``."""

    def __init__(self, address: Address, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, limiter: RateLimiter | None = None) -> None:
        super().__init__(address, reader, writer, limits.MAX_PIECE_SIZE, limiter,
                         "a P2P-SWARM piece server")
        self.queue: deque[int] = deque()  # pieces asked, oldest first
        self.rate: float | None = None  # bytes per second, once a piece has arrived
        self.head_since = time.monotonic()  # when the oldest request began to be served
        self._head_mark = 0  # ``received`` when it began, less what earlier answers used
        self.snubbed = False  # late: no new request until it delivers
        self.good = 0  # good pieces it delivered (the downloader counts them)
        self.idle_since: float | None = None  # when it last had nothing to ask for

    @classmethod
    async def connect(cls, address: Address, limiter: RateLimiter | None = None) -> PeerLink:
        """A link whose reads ``limiter`` paces, if given.

        Raises: PeerGone if the peer cannot be reached."""
        stream = await open_stream(*address, sp.client_connection())
        return cls(address, stream.reader, stream.writer, limiter)

    def request(self, swarm: str, index: int) -> None:
        """Ask for piece ``index`` (answers come in the order asked)."""
        if not self.queue:
            self._head_began(time.monotonic())
        self.send(sp.GetPiece(swarm, index))
        self.queue.append(index)

    async def read_piece(self) -> tuple[int, Response, bytes]:
        """The next answer: (piece asked, status head, body); see ``read_answer``."""
        head, body = await self.read_answer()
        now = time.monotonic()
        index = self.queue.popleft()
        if head.status == 200 and body:
            rate = len(body) / max(now - self.head_since, 1e-6)
            self.rate = rate if self.rate is None else (
                _RATE_WEIGHT * rate + (1 - _RATE_WEIGHT) * self.rate)
        self._head_began(now)
        return index, head, body

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
