"""A callback-driven server for persistent request/response connections (the index server).

Strategy: where ``EventStream`` runs one task per connection and awaits every read, this
runs no task per connection at all. asyncio calls ``data_received``; the bytes go to the
sans-IO ``Connection``; each whole request is handed to the application, whose answer is
written at once. Only a request whose answer must wait (a LIST streamed under
backpressure, a swarm tracker call) runs as a task, and reading from that connection
pauses until it is done, so replies keep the order of requests. This is what lets one
process hold ten thousand peers at a few KiB each and answer small requests at a rate
close to a bare asyncio Protocol server (README, benchmark 2).

Quick answers: an application may also give ``quick``, which sees the bytes of one read
when the connection is at rest (between requests, nothing buffered) and may answer them
whole, as bytes, without the codec's general path; it returns None for anything it does
not recognise, and those bytes go to the ``Connection`` as usual. The index server uses
it for LOOKUP (``protocol.ci.quick_lookup``).

One exchange per connection (P2P-DI's registration server): when the ``Connection`` says
so after an answer (``keep_alive=False``: MUST_CLOSE), the link closes; with
``first_request_timeout`` the whole request must arrive within that time of the connection
being made (and TCP keepalive, pointless for so short a life, is not set up).

Backpressure: when a client stops reading our replies, asyncio calls ``pause_writing``;
we stop reading its requests until it catches up, so a slow reader cannot make us buffer
without bound. Deadlines: a request must arrive whole within ``head_timeout`` of its
first byte; a closing link whose unsent bytes make no progress for ``SEND_STALL_TIMEOUT``
is aborted (a client that never reads cannot hold a connection by not reading our last
reply); one sweep closes connections past their deadline (one timer for the whole server
instead of one per request).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

from .. import limits
from ..errors import P2PError, PeerGone, RemoteProtocolError
from ..protocol import NEED_DATA, Connection, Data, EndOfMessage, Event, Request, State
from ..protocol._events import ConnectionClosed
from .server import FD_SPARE, Listener, raise_fd_limit
from .stream import keepalive

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 1.0 * limits.SECONDS  # how often deadlines are checked


Quick = Callable[[bytes], "bytes | None"]  # one whole request's bytes -> its whole answer


class App(Protocol):
    """What a ``ProtocolServer`` needs from the application it serves."""

    def request(self, link: Link, request: Request, body: bytes
                ) -> list[Event] | Awaitable[None]:
        """Answer at once (events to send) or later (a coroutine that sends via ``link``)."""

    def malformed(self, link: Link, exc: RemoteProtocolError) -> list[Event]:
        """The reply to a framing error, sent before the connection closes."""

    def connected(self, link: Link) -> None:
        """A connection was admitted."""

    def disconnected(self, link: Link) -> None:
        """The connection ended, for any reason."""


class Link(asyncio.Protocol):
    """One connection: bytes to a ``Connection``, whole requests to the ``App``."""

    def __init__(self, server: ProtocolServer, conn: Connection) -> None:
        self.server = server
        self.conn = conn
        self.owner = object()  # identifies this connection's records in any index
        self.peername: tuple[str, int] = ("?", 0)
        self.deadline: float | None = None  # loop time by which the current request is due
        self._partial = False  # bytes arrived since the last whole request
        self._transport: asyncio.Transport | None = None
        self._request: Request | None = None
        self._body: list[bytes] = []
        self._busy = False  # an answer is being produced by a task
        self._quick = server.quick
        self._at_rest = False  # between requests, nothing buffered: ``quick`` may answer
        self._unsent = 0  # bytes still buffered when we closed (for the send-stall deadline)
        self._closing = False
        self._writable = asyncio.Event()
        self._writable.set()

    # ----------------------------------------------------------- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peername = (str(peer[0]), int(peer[1])) if peer else ("?", 0)
        if not self.server.admit(self):
            self._closing = True
            transport.abort()
            return
        if self.server.first_request_timeout is None:
            keepalive(transport.get_extra_info("socket"))
        else:
            self.deadline = self.server.now() + self.server.first_request_timeout
        self._at_rest = self._quick is not None
        self.server.app.connected(self)

    def data_received(self, data: bytes) -> None:
        if self._at_rest:  # never once closing: close() and connection_lost clear it
            answer = self._quick(data)  # type: ignore[misc]
            if answer is not None:
                self._transport.write(answer)  # type: ignore[union-attr]
                return
        if self._closing:
            return  # lingering after an error: late input is dropped
        self._at_rest = False
        self.conn.receive_data(data)
        self._partial = True
        self._process()

    def eof_received(self) -> bool:
        self.conn.receive_data(b"")
        self._process()
        return True  # keep our sending half open until our last reply is written

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._at_rest = False
        self._writable.set()  # wake a task waiting to write; it will see the close
        self.server.forget(self)

    def pause_writing(self) -> None:
        self._writable.clear()
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._writable.set()
        if self._transport is not None and not self._busy:
            self._transport.resume_reading()
            self._process()  # requests that arrived while we held back

    # ----------------------------------------------------------- reading
    def _process(self) -> None:
        # Not while the client is not reading our answers (``pause_writing``): requests it
        # pipelined wait in the buffer, so what we hold for it stays bounded.
        while not self._busy and not self._closing and self._writable.is_set():
            try:
                event = self.conn.next_event()
            except RemoteProtocolError as exc:
                self._fail(exc)
                return
            if event is NEED_DATA:
                self._arm_deadline()
                self._at_rest = self._quick is not None and self.conn.at_rest
                return
            if isinstance(event, Request):
                self._request, self._body = event, []
            elif isinstance(event, Data):
                self._body.append(event.data)
            elif isinstance(event, EndOfMessage):
                self._dispatch()
            elif isinstance(event, ConnectionClosed):
                self.close()
                return
            else:  # PAUSED cannot happen: we answer before reading on
                return

    def _arm_deadline(self) -> None:
        """Start the head deadline when a request has begun to arrive; none while nothing
        of one is held (bytes that were only blank lines between requests), except the
        first-request deadline of a one-exchange connection."""
        if self.conn.at_rest:
            self._partial = False
            if self.server.first_request_timeout is None:
                self.deadline = None
        elif self._partial and self.deadline is None:
            self.deadline = self.server.now() + self.server.head_timeout

    def _dispatch(self) -> None:
        request, body = self._request, b"".join(self._body)
        assert request is not None
        self._request, self._body, self.deadline, self._partial = None, [], None, False
        answer = self.server.app.request(self, request, body)
        if isinstance(answer, list):
            self.send_now(*answer)
            self._close_if_done()
            return
        self._busy = True
        if self._transport is not None:
            self._transport.pause_reading()
        self.server.spawn(self._finish(answer))

    async def _finish(self, answer: Awaitable[None]) -> None:
        try:
            await answer
        except (P2PError, OSError) as exc:
            log.info("%s:%d: answer failed: %s", *self.peername, exc)
            self.close()
            return
        self._busy = False
        self._close_if_done()
        if not self._closing and self._transport is not None:
            if self._writable.is_set():
                self._transport.resume_reading()
            self._process()

    def _close_if_done(self) -> None:
        """Close a one-exchange connection once its answer is written."""
        if self.conn.our_state is State.MUST_CLOSE:
            self.close(linger=bool(self.conn.trailing_data[0]))

    def expire(self, now: float) -> None:
        """The sweep found this link past its deadline."""
        transport = self._transport
        if not self._closing:
            log.info("%s: %s:%d too slow to send a request; closing", self.server.name,
                     *self.peername)
            self.close()
        elif transport is not None:
            left = transport.get_write_buffer_size()
            if left == 0:  # all sent: the close goes on as asked
                self.deadline = None
            elif left < self._unsent:  # slow, but taking bytes
                self._unsent, self.deadline = left, now + self.server.stall_timeout
            else:
                transport.abort()  # what is buffered will never leave: drop it
                self.deadline = None

    def _fail(self, exc: RemoteProtocolError) -> None:
        log.info("%s:%d sent a malformed message (%s); closing", *self.peername, exc)
        try:
            self.send_now(*self.server.app.malformed(self, exc))
        except P2PError:
            pass
        self.close(linger=True)

    # ----------------------------------------------------------- writing
    def send_now(self, *events: Event) -> None:
        """Encode and write ``events`` without waiting (small replies)."""
        data = self.conn.send_all(*events)
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    async def send(self, *events: Event) -> None:
        """Write ``events`` once the client is reading again (large, streamed replies).

        Raises:
            PeerGone: the connection closed.
        """
        await self._writable.wait()
        if self._closing:
            raise PeerGone("connection closed")
        self.send_now(*events)

    def close(self, *, linger: bool = False) -> None:
        """Close after what was written is sent; ``linger``: half-close first and drop late
        input for up to CLOSE_LINGER, so that our last reply is not cut off by a reset."""
        transport = self._transport
        self._closing = True
        self._at_rest = False
        if transport is None or transport.is_closing():
            return
        self._unsent = transport.get_write_buffer_size()
        self.deadline = self.server.now() + self.server.stall_timeout if self._unsent else None
        if linger and transport.can_write_eof():
            transport.write_eof()
            asyncio.get_running_loop().call_later(limits.CLOSE_LINGER, transport.close)
            return
        transport.close()


class ProtocolServer(Listener):
    """Listens, admits up to ``max_connections``, sweeps deadlines, runs answer tasks."""

    def __init__(self, app: App, conn_factory: Callable[[], Connection], *,
                 quick: Quick | None = None, max_connections: int | None = None,
                 head_timeout: float | None = None,
                 first_request_timeout: float | None = None, name: str = "") -> None:
        self.app = app
        self.conn_factory = conn_factory
        self.quick = quick
        # Defaults are read when the server is made, so limits can be changed at run time.
        self.max_connections = max_connections or limits.MAX_CONNECTIONS
        self.head_timeout = head_timeout or limits.HEAD_TIMEOUT
        if quick is not None and first_request_timeout is not None:
            raise ValueError("quick answers are for persistent connections only")
        self.first_request_timeout = first_request_timeout
        self.stall_timeout = limits.SEND_STALL_TIMEOUT
        self._sweep_every = min(SWEEP_INTERVAL, self.head_timeout / 2,
                                (first_request_timeout or SWEEP_INTERVAL) / 2,
                                self.stall_timeout / 2)
        self.name = name
        self.links: set[Link] = set()
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def active(self) -> int:
        return len(self.links)

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and listen; returns the bound address (port 0 picks a free port)."""
        raise_fd_limit(self.max_connections + FD_SPARE)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Link(self, self.conn_factory()), host, port, backlog=4096,
            reuse_address=True)
        self.spawn(self._sweep())
        return self.address

    def admit(self, link: Link) -> bool:
        if len(self.links) >= self.max_connections:
            self.refused += 1
            log.warning("%s: connection limit %d reached, refusing %s:%d", self.name,
                        self.max_connections, *link.peername)
            return False
        self.links.add(link)
        return True

    def forget(self, link: Link) -> None:
        if link in self.links:
            self.links.discard(link)
            self.app.disconnected(link)

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run ``coro`` as a task owned by this server (cancelled by ``aclose``)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_every)  # a periodic timer, not synchronisation
            now = self.now()
            for link in [lk for lk in self.links if lk.deadline is not None
                         and lk.deadline < now]:
                link.expire(now)

    async def aclose(self) -> None:
        """Stop listening, close every connection, end every task."""
        for link in list(self.links):
            link.close()
            self.forget(link)
        await self._shutdown(self._tasks)

