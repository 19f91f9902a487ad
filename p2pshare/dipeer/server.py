"""A P2P-DI peer's RFC server: RFCQuery (the whole index) and GetRFC (one file).

Strategy: one request per connection (docs/p2p-di.md#di-connections), on the one server
runtime (``net.runtime``), which reads it and answers a malformed one with its status.
RFCQuery returns every record the index holds, local first, then remote, as many as fit
in ``DI_MAX_INDEX_BODY`` (what a client accepts). GetRFC serves only
``rfc<N>.txt`` truly inside the folder (``peer.paths.resolve_rfc``), with Content-Length
and the exact bytes by ``sendfile``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .. import limits
from ..errors import Status
from ..host import os_name
from ..net.runtime import Answer, Link, Policy, Server
from ..peer import paths
from ..protocol import Data, EndOfMessage, Event, Request, Response, di
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
        policy = Policy("rfc", max_connections=max_connections,
                        max_per_source=min(max_connections, limits.MAX_UPLOADS_PER_SOURCE),
                        first_request_timeout=limits.FIRST_REQUEST_TIMEOUT,
                        one_exchange=True, keepalive=False)
        self.server = Server(self, di.server_connection, policy)

    async def start(self, host: str | None = None, port: int = 0) -> tuple[str, int]:
        return await self.server.start(host, port)

    @property
    def port(self) -> int:
        return self.server.address[1]

    async def aclose(self) -> None:
        await self.server.aclose()

    # ------------------------------------------------------------------ App
    def request(self, link: Link, request: Request, body: bytes) -> Answer:
        if self.trace is not None:
            self.trace(wire.show(f"<<< from {link.label}", request))
        msg = di.interpret(request)
        if isinstance(msg, di.RFCQuery):
            return self._reply(link, *di.list_reply(self.index.records(),
                                                    limits.DI_MAX_INDEX_BODY))
        if isinstance(msg, di.GetRFC):
            return self._send_file(link, msg.rfc)
        if isinstance(msg, di.Rejected):
            return self._reply(link, di.rejected(msg))
        return self._reply(link, di.response(Status.BAD_REQUEST, reason="Not A Peer Request"))

    def error(self, link: Link, status: Status) -> list[Event]:
        return self._reply(link, di.response(status))

    def connected(self, link: Link) -> None:
        pass

    def disconnected(self, link: Link) -> None:
        pass

    def _reply(self, link: Link, head: Response, body: bytes = b"") -> list[Event]:
        if self.trace is not None:
            self.trace(wire.show(f">>> to {link.label}", head, body))
        return [head, Data(body), EndOfMessage()] if body else [head, EndOfMessage()]

    async def _send_file(self, link: Link, rfc: int) -> None:
        path = paths.resolve_rfc(self.folder, rfc)
        try:  # a local open takes microseconds: cheaper than a hop to a worker thread
            handle = open(path, "rb") if path is not None else None  # noqa: ASYNC230
        except OSError:
            handle = None
        if handle is None:
            link.send_now(*self._reply(link, di.response(Status.NOT_FOUND)))
            return
        with handle:
            info = os.fstat(handle.fileno())
            head = di.file_reply(info.st_size, info.st_mtime, self.os_name)
            if self.trace is not None:
                self.trace(wire.show(f">>> to {link.label}", head)
                           + f"[{info.st_size} bytes of {path.name if path else ''}]\n")
            link.send_now(head)
            await link.sendfile(handle, 0, info.st_size)
            link.send_now(EndOfMessage())
        self.served += 1
