"""A whole P2P-CI peer: upload server, index connection, and the GET-then-ADD routine.

Strategy: the handout's start-up order (docs/p2p-ci.md#startup-order): upload server first,
then the connection to the index, then one ADD per local RFC. ``get`` is LOOKUP, then the
holders (first answer wins, ``client.download``), then ADD (A10: after a complete,
length-checked download). ``stay_connected`` re-opens the index connection with
exponential backoff (``backoff.Backoff``) when the server goes away and re-registers every
RFC, so a restarted index server fills up again by itself; given several servers that
serve one index (docs/scale-out.md), it moves to the next on each loss or failed attempt.
``start(wait=True)`` leaves a first connection that failed to it too, so a peer may start
before its server
(docs/p2p-ci.md#startup-order). Meanwhile ``watch_folder`` looks at the folder every
``limits.FOLDER_RESCAN_INTERVAL`` and ADDs the RFC files that appeared; P2P-CI has no
REMOVE, so a file that went is no longer served (404) and its record stays until the
peer disconnects (docs/p2p-ci.md#folder-rescan).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..backoff import Backoff
from ..errors import P2PError, PeerGone, Status
from ..host import join_hostport
from ..net.advertise import Advertised, advertised_host
from . import paths
from .client import IndexClient, P2SReply, Printer, RFCDownload, download
from .upload import UploadServer

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CIGetResult:
    """The outcome of ``Peer.get``: the LOOKUP reply, the download if one was tried, the ADD."""

    lookup: P2SReply
    download: RFCDownload | None
    add: P2SReply | None


def _addresses(server: tuple[str, int] | Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """One index server's address, or several's, as a list."""
    if isinstance(server, tuple) and len(server) == 2 and isinstance(server[0], str):
        host, port = server
        return [(host, int(port))]
    return [(str(h), int(p)) for h, p in server]


class Peer:
    """A P2P-CI peer sharing the ``rfc<N>.txt`` files of ``folder``."""

    def __init__(self, folder: Path, server: tuple[str, int] | Sequence[tuple[str, int]], *,
                 hostname: str | None = None,
                 upload_host: str | None = None, upload_port: int = 0,
                 printer: Printer | None = None) -> None:
        self.folder = folder
        self.servers = _addresses(server)
        self.server = self.servers[0]
        self._advertise = hostname  # A11: configurable
        self.advertised = Advertised(hostname or "")  # settled by ``start``
        self.hostname = self.advertised.host
        self._settled = False
        self.upload = UploadServer(folder)
        self._upload_addr = (upload_host, upload_port)
        self.printer = printer
        self.index: IndexClient | None = None
        self.unregistered: set[int] = set()  # RFCs the server refused to ADD (retried)
        self.watch = paths.FolderWatch(folder)

    @property
    def upload_port(self) -> int:
        return self.upload.server.address[1]

    async def start(self, *, wait: bool = False) -> list[P2SReply]:
        """Start the upload server, connect to the index, settle the host we advertise
        (``net.advertise``: the given one, else our address on that connection), ADD every
        local RFC.

        ``wait``: an index server that cannot be reached yet is left to ``stay_connected``
        (which retries with backoff, a log line per attempt); the upload server serves
        meanwhile, and the result is then empty.

        Raises:
            PeerGone: the index server cannot be reached (without ``wait``).
        """
        await self.upload.start(*self._upload_addr)
        self.index = IndexClient(*self.server, self.hostname, self.upload_port, self.printer)
        try:
            await self.index.connect()
        except PeerGone as exc:
            if not wait:
                raise
            log.warning("[Peer] index server %s not reachable yet (%s); retrying",
                        join_hostport(*self.server), exc)
            return []
        await self._settle_advertised()
        return await self.register()

    async def _settle_advertised(self) -> None:
        """Choose the host we advertise once we first reach the index (``net.advertise``)."""
        assert self.index is not None
        if self._settled:
            return
        self._settled = True
        self.advertised = await advertised_host(self._advertise, self.server[0],
                                                self.index.local_host)
        self.hostname = self.index.me_host = self.advertised.host

    async def register(self, only: set[int] | None = None) -> list[P2SReply]:
        """ADD every RFC in the folder (or those in ``only``), on start and after a reconnect.

        RFCs the server refused with 400 are kept in ``unregistered`` for a later retry:
        after a quick reconnect the server may still hold our previous, half-dead
        connection, which owns our host:port until keepalive drops it. The folder is
        listed in a worker thread: a big one takes seconds, and the loop serves uploads.
        """
        found = await asyncio.to_thread(paths.scan, self.folder)
        self.watch.known |= set(found)
        if only is not None:
            found = {rfc: title for rfc, title in found.items() if rfc in only}
        replies, self.unregistered = await self._add(found)
        return replies

    async def _add(self, titles: dict[int, str]) -> tuple[list[P2SReply], set[int]]:
        """ADD each RFC of ``titles``: the replies, and the RFCs refused with 400."""
        assert self.index is not None
        replies = []
        refused = set()
        for rfc, title in titles.items():
            log.info("[Peer] Registering RFC %d: %s", rfc, title)
            reply = await self.index.add(rfc, title)
            replies.append(reply)
            if reply.status == Status.BAD_REQUEST:
                refused.add(rfc)
        if refused:
            log.warning("[Peer] the index server refused %d RFC(s); will retry", len(refused))
        return replies, refused

    async def get(self, rfc: int) -> CIGetResult:
        """LOOKUP ``rfc``, download it from a holder, then ADD it."""
        assert self.index is not None
        found = await self.index.lookup(rfc)
        if not found.ok:
            return CIGetResult(found, None, None)
        result = await download(self.folder, rfc, found.records,
                                skip=(self.hostname, self.upload_port), printer=self.printer)
        if result.path is None:
            return CIGetResult(found, result, None)
        self.watch.known.add(rfc)  # ADDed below, not by the folder watch
        winner = result.attempts[-1][0]  # its title was checked before it was asked
        title = winner.title or f"RFC {rfc}"
        return CIGetResult(found, result, await self.index.add(rfc, title))

    async def stay_connected(self) -> None:
        """Run until cancelled: reconnect and re-register whenever the index connection
        drops (or until the first connection is made); follow the folder meanwhile."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.watch_folder())
            await self._keep_index()

    async def watch_folder(self) -> None:
        """Run until cancelled: ADD the RFC files that appear in the folder (module text)."""
        await paths.follow(self.watch, self._folder_changed)

    async def _folder_changed(self, added: dict[int, str], removed: set[int]) -> None:
        if removed:
            log.info("[Peer] P2P-CI has no REMOVE: the record of RFC(s) %s stays until this "
                     "peer disconnects", ", ".join(map(str, sorted(removed))))
        if self.index is None or not self.index.connected or not added:
            return  # a reconnect registers the whole folder
        try:
            self.unregistered |= (await self._add(added))[1]
        except P2PError as exc:  # the reconnect registers the whole folder again
            log.info("[Peer] ADD of new RFCs failed: %s", exc)

    async def _keep_index(self) -> None:
        assert self.index is not None
        backoff = Backoff()
        while True:
            if self.index.connected and self.unregistered:
                if not await self._closed_within(backoff.next_delay()):
                    await self.register(self.unregistered)
                continue
            if self.index.connected:
                await self.index.wait_closed()
                log.warning("[Peer] lost the index server; reconnecting")
                self._next_server()
            try:
                await self.index.connect()
                await self._settle_advertised()
                await self.register()
                backoff.reset()
            except P2PError as exc:  # unreachable, or it answered something malformed
                delay = backoff.next_delay()
                log.info("[Peer] index server unreachable (%s); retry in %.2f s", exc, delay)
                self._next_server()
                await asyncio.sleep(delay)  # backoff between attempts, not synchronisation

    def _next_server(self) -> None:
        """Move to the next of several index servers serving one index (if there are)."""
        assert self.index is not None
        if len(self.servers) > 1:
            at = self.servers.index(self.server)
            self.server = self.servers[(at + 1) % len(self.servers)]
            self.index.host, self.index.port = self.server
            log.info("[Peer] trying index server %s", join_hostport(*self.server))

    async def _closed_within(self, seconds: float) -> bool:
        """Whether the index connection closes within ``seconds`` (a retry backoff)."""
        assert self.index is not None
        try:
            async with asyncio.timeout(seconds):
                await self.index.wait_closed()
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        if self.index is not None:
            await self.index.aclose()
        await self.upload.aclose()
