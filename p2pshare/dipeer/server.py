"""A P2P-DI peer's RFC server: RFCQuery (the whole index) and GetRFC (one file).

Strategy: one request per connection (PROTOCOLS.md section 6), read and refused or
answered by ``registry.wire.serve_one``. RFCQuery returns every record the index holds,
local and remote. GetRFC serves only ``rfc<N>.txt`` truly inside the folder
(``peer.paths.resolve_rfc``), with Content-Length and the exact bytes by ``sendfile``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from .. import limits
from ..errors import Status
from ..host import os_name
from ..net.server import TCPServer
from ..net.stream import EventStream
from ..peer import paths
from ..protocol import EndOfMessage, Request, di
from ..registry import wire
from .index import RFCIndex

log = logging.getLogger(__name__)


class RFCServer:
    """Answers other peers' RFCQuery and GetRFC for one folder and one index."""

    def __init__(self, folder: Path, index: RFCIndex, trace: wire.Trace | None = None,
                 *, max_connections: int = limits.MAX_UPLOADS) -> None:
        self.folder = folder
        self.index = index
        self.trace = trace
        self.os_name = os_name()
        self.served = 0
        self.server = TCPServer(self._handle, max_connections=max_connections, name="rfc")

    async def start(self, host: str = "0.0.0.0", port: int = 0) -> tuple[str, int]:
        return await self.server.start(host, port)

    @property
    def port(self) -> int:
        return self.server.address[1]

    async def aclose(self) -> None:
        await self.server.aclose()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await wire.serve_one(reader, writer, self._respond, self.trace)

    async def _respond(self, stream: EventStream, request: Request) -> None:
        msg = di.interpret(request)
        if isinstance(msg, di.RFCQuery):
            await wire.reply(stream, *di.list_reply(self.index.records()), self.trace)
        elif isinstance(msg, di.GetRFC):
            await self._send_file(stream, msg.rfc)
        elif isinstance(msg, di.Rejected):
            await wire.reply(stream, di.rejected(msg), b"", self.trace)
        else:
            head = di.response(Status.BAD_REQUEST, reason="Not A Peer Request")
            await wire.reply(stream, head, b"", self.trace)

    async def _send_file(self, stream: EventStream, rfc: int) -> None:
        path = paths.resolve_rfc(self.folder, rfc)
        try:  # a local open takes microseconds: cheaper than a hop to a worker thread
            handle = open(path, "rb") if path is not None else None  # noqa: ASYNC230
        except OSError:
            handle = None
        if handle is None:
            await wire.reply(stream, di.response(Status.NOT_FOUND), b"", self.trace)
            return
        with handle:
            info = os.fstat(handle.fileno())
            head = di.file_reply(info.st_size, info.st_mtime, self.os_name)
            if self.trace is not None:
                self.trace(wire.show(f">>> to {stream.peername[0]}:{stream.peername[1]}", head)
                           + f"[{info.st_size} bytes of {path.name if path else ''}]\n")
            await stream.send(head)
            await stream.sendfile(handle, 0, info.st_size)
            await stream.send(EndOfMessage())
        self.served += 1
