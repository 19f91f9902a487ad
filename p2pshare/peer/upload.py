"""A peer's upload server: one GET per connection, the file's exact bytes, then close.

Strategy: the handout's P2P exchange (PROTOCOLS.md 1.9, 3). Read one request under a
head deadline; ``protocol.ci.interpret`` decides 400/505; ``paths.resolve_rfc`` decides
404 (only ``rfc<N>.txt`` inside the folder can ever be served); a 200 carries the five
headers in the handout's order and the body goes out by ``sendfile`` (zero copy). At most
``limits.MAX_UPLOADS`` uploads run at once; beyond that a connection is closed at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from .. import limits
from ..errors import PeerGone, RemoteProtocolError, Status
from ..host import join_hostport, os_name
from ..net.server import TCPServer
from ..net.stream import EventStream
from ..protocol import EndOfMessage, Request, ci
from ..protocol.ci import CIRequest, Method
from . import paths

log = logging.getLogger(__name__)


class UploadServer:
    """Serves the RFC files of ``folder`` to other peers."""

    def __init__(self, folder: Path, *, max_uploads: int = limits.MAX_UPLOADS) -> None:
        self.folder = folder
        self.os_name = os_name()
        self.server = TCPServer(self._serve, max_connections=max_uploads, name="upload")
        self.served = 0

    async def start(self, host: str = "0.0.0.0", port: int = 0) -> tuple[str, int]:
        address = await self.server.start(host, port)
        log.info("[Peer] upload server listening on %s port %d", *address)
        return address

    async def aclose(self) -> None:
        await self.server.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = EventStream(reader, writer, ci.upload_server_connection())
        try:
            event = await stream.next_event(limits.HEAD_TIMEOUT, idle=limits.UPLOAD_IDLE_TIMEOUT)
            if not isinstance(event, Request):
                return
            # A GET has no body; one sent anyway is drained, all of it within one deadline
            # (a deadline per chunk would let a body trickled byte by byte hold the slot).
            async with asyncio.timeout(limits.HEAD_TIMEOUT):
                while not isinstance(await stream.next_event(), EndOfMessage):
                    pass
            await self._answer(stream, ci.interpret(event))
        except RemoteProtocolError as exc:
            log.info("[Peer] bad request from %s: %s", join_hostport(*stream.peername), exc)
            await stream.send_quietly(ci.upload_error(exc.status, self.os_name), EndOfMessage())
        except (TimeoutError, PeerGone, OSError) as exc:
            log.info("[Peer] upload to %s ended: %s", join_hostport(*stream.peername),
                     type(exc).__name__)
        finally:
            await stream.linger_close()  # one GET per connection (1.9)

    async def _answer(self, stream: EventStream, req: CIRequest | ci.Rejected) -> None:
        if isinstance(req, ci.Rejected):
            log.info("[Peer] %s: %d %s", join_hostport(*stream.peername), req.status, req.detail)
            await stream.send(ci.upload_error(req.status, self.os_name), EndOfMessage())
            return
        path = paths.resolve_rfc(self.folder, req.rfc or 0) if req.method is Method.GET else None
        if path is None:
            status = Status.NOT_FOUND if req.method is Method.GET else Status.BAD_REQUEST
            log.info("[Peer] GET RFC %s from %s -> %d", req.rfc, join_hostport(*stream.peername),
                     status)
            await stream.send(ci.upload_error(status, self.os_name), EndOfMessage())
            return
        await self._send_file(stream, path, req)

    async def _send_file(self, stream: EventStream, path: Path, req: CIRequest) -> None:
        try:
            handle = open(path, "rb")  # noqa: SIM115 (closed below, after sendfile)
        except OSError:
            await stream.send(ci.upload_error(Status.NOT_FOUND, self.os_name), EndOfMessage())
            return
        with handle:
            info = os.fstat(handle.fileno())
            await stream.send(ci.file_response(info.st_size, info.st_mtime, self.os_name))
            await stream.sendfile(handle, 0, info.st_size)
            await stream.send(EndOfMessage())
        self.served += 1
        log.info("[Peer] sent RFC %s (%d bytes) to %s", req.rfc, info.st_size,
                 join_hostport(*stream.peername))

