"""The piece server: serves verified pieces of the files in a ``Library`` to other peers.

Strategy: one task per connection, many requests per connection, answered in order (the
codec leaves pipelined requests in its buffer until the current answer is sent). A piece
goes out by ``sendfile`` from its offset (zero copy). Only (swarm id, piece index) pairs
that the library holds verified can be reached; anything else is a 404. Beyond
``max_uploads`` connections, a newcomer's first request gets ``503`` with Retry-After and
the connection is closed. A connection that sends no request for
``limits.SWARM_IDLE_TIMEOUT`` is closed, and so is one whose request head (or body) does
not arrive whole within ``limits.HEAD_TIMEOUT``. An optional rate limit (bytes per
second, all connections together) paces uploads; tests use it to keep a download in
progress long enough to interrupt it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .. import limits
from ..errors import PeerGone, RemoteProtocolError, Status
from ..net.server import TCPServer
from ..net.stream import EventStream
from ..protocol import ConnectionClosed, Data, EndOfMessage, Request
from ..protocol import swarm as sp
from .storage import Library

log = logging.getLogger(__name__)


class Throttle:
    """Paces a flow to ``rate`` bytes per second (a token bucket without burst)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._free_at = time.monotonic()

    async def take(self, count: int) -> None:
        now = time.monotonic()
        start = max(now, self._free_at)
        self._free_at = start + count / self.rate
        if start > now:
            await asyncio.sleep(start - now)  # pacing, not waiting for an event


class PieceServer:
    """Serves ``library`` on a TCP port.

    Args:
        library: the files (and verified pieces) that may be served.
        max_uploads: connections served at once; more get 503.
        rate_limit: bytes per second for all uploads together, or None.
    """

    def __init__(self, library: Library, *, max_uploads: int = limits.SWARM_MAX_UPLOADS,
                 rate_limit: float | None = None) -> None:
        self.library = library
        self.max_uploads = max_uploads
        self.throttle = Throttle(rate_limit) if rate_limit else None
        # Connections past max_uploads are accepted only to be told 503; past twice as
        # many they are closed at once.
        self.server = TCPServer(self._serve, max_connections=2 * max_uploads, name="pieces")
        self.uploads = 0
        self.bytes_sent = 0
        self.refused = 0  # connections told 503

    async def start(self, host: str = "0.0.0.0", port: int = 0) -> tuple[str, int]:
        address = await self.server.start(host, port)
        log.info("[Swarm] piece server listening on %s port %d", *address)
        return address

    async def aclose(self) -> None:
        await self.server.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = EventStream(reader, writer, sp.server_connection())
        try:
            if self.uploads >= self.max_uploads:
                await self._refuse(stream)
                return
            self.uploads += 1
            try:
                await self._loop(stream)
            finally:
                self.uploads -= 1
        except RemoteProtocolError as exc:
            log.info("[Swarm] bad request from %s:%d: %s", *stream.peername, exc)
            await stream.send_quietly(sp.response(exc.status)[0], EndOfMessage())
        except (TimeoutError, PeerGone, OSError) as exc:
            log.debug("[Swarm] upload to %s:%d ended: %r", *stream.peername, exc)

    async def _refuse(self, stream: EventStream) -> None:
        if await self._read_request(stream, limits.HEAD_TIMEOUT) is not None:
            log.info("[Swarm] busy: 503 to %s:%d", *stream.peername)
            self.refused += 1
            head, _ = sp.busy(limits.BUSY_RETRY_AFTER)
            await stream.send(head, EndOfMessage())

    async def _loop(self, stream: EventStream) -> None:
        told: dict[str, int] = {}  # per swarm, the pieces this connection was told of
        while (found := await self._read_request(stream, limits.SWARM_IDLE_TIMEOUT)) is not None:
            request, body = found
            msg = sp.interpret(request, body)
            if isinstance(msg, sp.GetPiece):
                await self._send_piece(stream, msg, told)
            elif isinstance(msg, sp.GetManifest) and (pf := self.library.get(msg.swarm)):
                head, payload = sp.response(Status.OK, pf.manifest.to_bytes())
                await stream.send(head, Data(payload), EndOfMessage())
            else:
                status = msg.status if isinstance(msg, sp.Rejected) else (
                    Status.NOT_FOUND if isinstance(msg, sp.GetManifest) else Status.BAD_REQUEST)
                await stream.send(sp.response(status)[0], EndOfMessage())

    async def _read_request(self, stream: EventStream, idle: float
                            ) -> tuple[Request, bytes] | None:
        # Up to ``idle`` for a request to begin (a pipelined one may already be buffered);
        # from its first byte, HEAD_TIMEOUT for the head and another for the whole body, so
        # that a request trickled byte by byte cannot hold an upload slot.
        event = await stream.next_event(limits.HEAD_TIMEOUT, idle=idle)
        if isinstance(event, ConnectionClosed):
            return None
        if not isinstance(event, Request):
            raise RemoteProtocolError("expected a request")
        parts: list[bytes] = []
        async with asyncio.timeout(limits.HEAD_TIMEOUT):
            while not isinstance(part := await stream.next_event(), EndOfMessage):
                if isinstance(part, Data):
                    parts.append(part.data)
        return event, b"".join(parts)

    async def _send_piece(self, stream: EventStream, msg: sp.GetPiece,
                          told: dict[str, int]) -> None:
        pf = self.library.get(msg.swarm)
        place = pf.locate(msg.index) if pf is not None else None
        have = ""
        if pf is not None:  # news of our pieces travels with every answer
            have, covered = sp.news(pf.have, told.get(msg.swarm, 0))
            told[msg.swarm] = told.get(msg.swarm, 0) | covered
        if pf is None or place is None:
            await stream.send(sp.response(Status.NOT_FOUND, extra=sp.have_header(have))[0],
                              EndOfMessage())
            return
        offset, length = place
        if self.throttle is not None:
            await self.throttle.take(length)
        await stream.send(sp.piece_head(length, have))
        await stream.sendfile(pf.handle, offset, length)
        await stream.send(EndOfMessage())
        self.bytes_sent += length
