"""A peer's upload server: one GET per connection, the file's exact bytes, then close.

Strategy: the handout's P2P exchange (docs/p2p-ci.md#upload-server,
docs/p2p-ci.md#p2p-get), served by the one server runtime (``net.runtime``: one exchange
per connection, an idle and a head deadline); ``protocol.ci.interpret`` decides 400/505;
``paths.resolve_rfc`` decides 404 (only ``rfc<N>.txt`` inside the folder can ever be
served); a 200 carries the five headers in the handout's order and the body goes out by
``sendfile`` (zero copy). At most ``limits.MAX_UPLOADS`` uploads run at once, at most
``limits.MAX_UPLOADS_PER_SOURCE`` of them for one source address; beyond that a connection
is closed at once. A small file leaves in one write with its headers.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .. import limits
from ..errors import Status
from ..host import join_hostport, os_name
from ..net.runtime import Answer, Link, Policy, Server
from ..protocol import EndOfMessage, Event, Request, ci
from ..protocol.ci import CIRequest, Method
from . import paths

log = logging.getLogger(__name__)


class UploadServer:
    """Serves the RFC files of ``folder`` to other peers."""

    def __init__(self, folder: Path, *, max_uploads: int = limits.MAX_UPLOADS) -> None:
        self.folder = folder
        self.os_name = os_name()
        policy = Policy("upload", max_connections=max_uploads,
                        max_per_source=min(max_uploads, limits.MAX_UPLOADS_PER_SOURCE),
                        idle_timeout=limits.UPLOAD_IDLE_TIMEOUT, one_exchange=True,
                        keepalive=False)
        self.server = Server(self, ci.upload_server_connection, policy)
        self.served = 0

    async def start(self, host: str | None = None, port: int = 0) -> tuple[str, int]:
        address = await self.server.start(host, port)
        log.info("[Peer] upload server listening on %s", join_hostport(*address))
        return address

    async def aclose(self) -> None:
        await self.server.aclose()

    # ------------------------------------------------------------------ App
    def request(self, link: Link, request: Request, body: bytes) -> Answer:
        req = ci.interpret(request)
        if isinstance(req, ci.Rejected):
            log.info("[Peer] %s: %d %s", link.label, req.status, req.detail)
            return self.error(link, req.status)
        path = paths.resolve_rfc(self.folder, req.rfc or 0) if req.method is Method.GET else None
        if path is None:
            status = Status.NOT_FOUND if req.method is Method.GET else Status.BAD_REQUEST
            log.info("[Peer] GET RFC %s from %s -> %d", req.rfc, link.label, status)
            return self.error(link, status)
        return self._send_file(link, path, req)

    def error(self, link: Link, status: Status) -> list[Event]:
        return [ci.upload_error(status, self.os_name), EndOfMessage()]

    def connected(self, link: Link) -> None:
        pass

    def disconnected(self, link: Link) -> None:
        pass

    async def _send_file(self, link: Link, path: Path, req: CIRequest) -> None:
        try:  # a local open takes microseconds: cheaper than a hop to a worker thread
            handle = open(path, "rb")  # noqa: ASYNC230, SIM115 (closed below)
        except OSError:
            link.send_now(*self.error(link, Status.NOT_FOUND))
            return
        with handle:
            info = os.fstat(handle.fileno())
            link.send_now(ci.file_response(info.st_size, info.st_mtime, self.os_name))
            await link.sendfile(handle, 0, info.st_size)
            link.send_now(EndOfMessage())
        self.served += 1
        log.info("[Peer] sent RFC %s (%d bytes) to %s", req.rfc, info.st_size, link.label)
