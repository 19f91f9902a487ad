"""The central index server (P2P-CI section 1-2, TCP 7734), also the swarm tracker.

Strategy: one task per peer connection, which stays open while the peer is active
(PROTOCOLS.md 1.3). The task reads a request, answers it, and repeats; every protocol
decision is made by ``protocol.ci.interpret`` and ``MemoryIndex``. When the connection
ends for any reason (clean close, reset, keepalive failure, framing error, head deadline) the
``finally`` removes every record the connection owned (1.8). Requests whose version is
``P2P-SWARM/...`` go to the swarm tracker on the same connection.

A well-framed but invalid request gets its 400/505 and the connection goes on (the peer's
records stay); a framing error gets a 400 and the connection closes, since the next
request's start can no longer be found.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator
from typing import Protocol

from .. import limits
from ..errors import PeerGone, RemoteProtocolError, Status, StoreError
from ..net.server import TCPServer
from ..net.stream import EventStream, set_keepalive
from ..protocol import (
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Framing,
    Lines,
    Request,
    Response,
    Role,
    ci,
)
from ..protocol.ci import CIRequest, Method, Record, Rejected
from .store import MemoryIndex

log = logging.getLogger(__name__)

SWARM_PREFIX = "P2P-SWARM/"
LIST_BATCH = 512  # records encoded per write while streaming LIST


class Tracker(Protocol):
    """What the index server needs from the swarm tracker."""

    async def handle(self, owner: object, request: Request, body: bytes) -> tuple[Response, bytes]:
        ...

    def drop(self, owner: object) -> None:
        ...


def _framing(request: Request) -> Framing:
    if request.version.upper().startswith(SWARM_PREFIX):
        return Framing.LENGTH
    return ci.response_framing(request)


class IndexServer:
    """Serves P2S requests (and swarm tracker requests) over persistent connections."""

    def __init__(self, index: MemoryIndex | None = None, tracker: Tracker | None = None,
                 *, max_connections: int = limits.MAX_CONNECTIONS) -> None:
        self.index = index if index is not None else MemoryIndex()
        self.tracker = tracker
        self.server = TCPServer(self._serve, max_connections=max_connections, name="index")

    async def start(self, host: str = "0.0.0.0", port: int = 7734) -> tuple[str, int]:
        address = await self.server.start(host, port)
        log.info("[Server] listening on %s port %d", address[0], address[1])
        return address

    async def aclose(self) -> None:
        await self.server.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        set_keepalive(writer)
        conn = Connection(Role.SERVER, _framing, default_framing=Framing.LINES)
        stream = EventStream(reader, writer, conn)
        owner = object()
        log.info("[Server] connection from %s:%d", *stream.peername)
        try:
            await self._loop(stream, owner)
        except RemoteProtocolError as exc:
            log.info("[Server] %s:%d sent a malformed message (%s); closing",
                     *stream.peername, exc)
            await stream.send_quietly(ci.p2s_response(exc.status), EndOfMessage())
            await stream.linger_close()
        except (TimeoutError, PeerGone, OSError) as exc:
            log.info("[Server] %s:%d dropped: %s", *stream.peername, type(exc).__name__)
        finally:
            self._leave(owner, stream.peername)

    async def _loop(self, stream: EventStream, owner: object) -> None:
        while True:
            # A peer may stay connected, silent, as long as it is active (1.3), even before
            # a first request (a peer with no RFCs has nothing to ADD): no idle limit, TCP
            # keepalive notices a vanished host. HEAD_TIMEOUT runs from a request's first byte.
            event = await stream.next_event(limits.HEAD_TIMEOUT, idle=math.inf)
            if isinstance(event, ConnectionClosed):
                return
            if not isinstance(event, Request):
                raise RemoteProtocolError("expected a request")
            body = await self._read_body(stream)
            if event.version.upper().startswith(SWARM_PREFIX) and self.tracker is not None:
                response, payload = await self.tracker.handle(owner, event, body)
                await stream.send(response, Data(payload), EndOfMessage())
            else:
                await self._answer(stream, owner, ci.interpret(event))

    async def _read_body(self, stream: EventStream) -> bytes:
        parts: list[bytes] = []
        while True:
            event = await stream.next_event(limits.HEAD_TIMEOUT)
            if isinstance(event, EndOfMessage):
                return b"".join(parts)
            if isinstance(event, Data):
                parts.append(event.data)

    async def _answer(self, stream: EventStream, owner: object, req: CIRequest | Rejected) -> None:
        if isinstance(req, Rejected):
            log.info("[Server] %s:%d: %d %s", *stream.peername, req.status, req.detail)
            await stream.send(ci.p2s_response(req.status), EndOfMessage())
            return
        if req.method is Method.LIST:
            await self._stream_list(stream)
            return
        status, records = self._apply(owner, req)
        events: list[Event] = [ci.p2s_response(status)]
        if status == Status.OK:
            events.append(Lines(tuple(r.to_line() for r in records)))
        await stream.send(*events, EndOfMessage())

    def _apply(self, owner: object, req: CIRequest) -> tuple[Status, list[Record]]:
        assert req.rfc is not None  # only LIST has no number
        if req.method is Method.LOOKUP:
            found = self.index.lookup(req.rfc)
            return (Status.OK if found else Status.NOT_FOUND), found
        if req.method is Method.GET:  # GET is for a peer's upload server, not the index
            return Status.BAD_REQUEST, []
        assert req.port is not None  # ADD and REMOVE require Port
        if req.method is Method.REMOVE:
            gone = self.index.remove(owner, req.rfc, req.host, req.port)
            return (Status.OK, [gone]) if gone else (Status.NOT_FOUND, [])
        return self._add(owner, req.rfc, req.title or "", req.host, req.port)

    def _add(self, owner: object, rfc: int, title: str, host: str, port: int
             ) -> tuple[Status, list[Record]]:
        first = not self.index.has_peer(host, port)
        try:
            record = self.index.add(owner, rfc, title, host, port)
        except StoreError as exc:
            log.warning("[Server] refused ADD RFC %d: %s", rfc, exc)
            return Status.BAD_REQUEST, []
        if first:
            log.info("[Server] Added %s:%d", host, port)
        log.info("[Server] Added RFC %d from %s:%d", rfc, host, port)
        return Status.OK, [record]

    async def _stream_list(self, stream: EventStream) -> None:
        """LIST ALL, newest first, written in batches: never one string of the whole index."""
        await stream.send(ci.p2s_response(Status.OK))
        for batch in _batches(self.index.records(self.index.snapshot()), LIST_BATCH):
            await stream.send(Lines(batch))
        await stream.send(EndOfMessage())

    def _leave(self, owner: object, peername: tuple[str, int]) -> None:
        peers = self.index.peers_of(owner)
        removed = self.index.drop_owner(owner)
        if self.tracker is not None:
            self.tracker.drop(owner)
        names = ", ".join(f"{h}:{p}" for h, p in peers) or f"{peername[0]}:{peername[1]}"
        log.info("[Server] %s left; removed %d records (%d remain)", names, removed,
                 len(self.index))


def _batches(records: Iterator[Record], size: int) -> Iterator[tuple[bytes, ...]]:
    batch: list[bytes] = []
    for record in records:
        batch.append(record.to_line())
        if len(batch) >= size:
            yield tuple(batch)
            batch = []
    if batch:
        yield tuple(batch)

