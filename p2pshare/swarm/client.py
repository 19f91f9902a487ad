"""A peer's tracker client: P2P-SWARM requests on its persistent index-server connection.

Strategy: one connection per process, kept open while the peer takes part (its records
vanish when it closes, docs/p2p-ci.md#leaving); one exchange at a time under a lock, so the
download's HAVE reports and PEERS polls can come from different tasks. An exchange that
is cancelled half-way (its task group ended) leaves its answer owed: the next exchange
reads and drops it first, so the connection stays usable. Every non-200 answer that the
caller cannot act on becomes ``TrackerRefused``. Reaching the server, the first time
(``reach``: a peer may start before its index server) and after losing it (``rejoin``),
retries with ``Backoff`` delays and one log line per failed attempt (``_retrying``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from .. import limits
from ..backoff import Backoff
from ..errors import P2PError, Status
from ..host import address_problem, join_hostport
from ..net.stream import open_stream, set_keepalive
from ..protocol import Response, get_header
from ..protocol import swarm as sp
from .link import PipelinedStream
from .manifest import Manifest
from .storage import PieceFile

log = logging.getLogger(__name__)


class TrackerRefused(P2PError):
    """The tracker answered a request with an error status."""

    def __init__(self, what: str, status: int) -> None:
        super().__init__(f"tracker refused {what}: {status}")
        self.status = status


@dataclass(frozen=True, slots=True)
class FilePage:
    """One FILES answer: ``entries`` from ``offset`` of ``total`` swarms."""

    entries: list[sp.FileEntry]
    offset: int
    total: int

    @property
    def cut(self) -> bool:
        """Swarms exist that this page does not show."""
        return self.offset > 0 or self.offset + len(self.entries) < self.total


class TrackerClient:
    """Requests to the swarm tracker over one open connection."""

    def __init__(self, stream: PipelinedStream) -> None:
        self.stream = stream
        self._lock = asyncio.Lock()
        self._owed = 0  # answers to requests whose exchange was cut short

    @classmethod
    async def connect(cls, host: str, port: int) -> TrackerClient:
        """Raises: PeerGone if the server cannot be reached."""
        return cls(await _open(host, port))

    @classmethod
    async def reach(cls, host: str, port: int, give_up: float | None = None) -> TrackerClient:
        """Connect, retrying with backoff while the server is not up (yet).

        Args:
            give_up: seconds after which a failed attempt is final; None: never.

        Raises:
            PeerGone, OSError: the last attempt failed, ``give_up`` seconds on.
        """
        client: list[TrackerClient] = []

        async def attempt() -> None:
            client.append(await cls.connect(host, port))

        await _retrying(attempt, (host, port), give_up)
        return client[0]

    async def reopen(self) -> None:
        """Replace a lost connection with a new one to the same server. The tracker knows
        nothing of us on it: announce again.

        Raises:
            PeerGone: the server cannot be reached.
        """
        self.stream.close()
        self.stream = await _open(*self.stream.address)
        self._owed = 0

    @property
    def local_host(self) -> str:
        """Our address as the tracker sees it: what other peers can reach us at."""
        return str(self.stream.writer.get_extra_info("sockname")[0])

    async def request(self, msg: sp.SwarmRequest) -> tuple[Response, bytes]:
        """One exchange.

        Raises:
            PeerGone: the connection ended.
            RemoteProtocolError: the tracker broke the protocol.
            TimeoutError: no whole answer within ``limits.RESPONSE_TIMEOUT``.
        """
        async with self._lock, asyncio.timeout(limits.RESPONSE_TIMEOUT):
            self.stream.send(msg)
            self._owed += 1
            await self.stream.drain()
            while True:
                head, body = await self.stream.read_answer()
                self._owed -= 1
                if not self._owed:
                    return head, bytes(body)

    async def _ok(self, msg: sp.SwarmRequest) -> bytes:
        head, body = await self.request(msg)
        if head.status != Status.OK:
            raise TrackerRefused(type(msg).__name__, head.status)
        return body

    async def announce(self, manifest: Manifest, host: str, port: int) -> None:
        await self._ok(sp.Announce(manifest.id, host, port, manifest.to_bytes()))

    async def have(self, swarm: str, pieces: int) -> None:
        await self._ok(sp.Have(swarm, pieces))

    async def peers(self, manifest: Manifest) -> list[sp.PeerEntry]:
        """The swarm's peers, less those whose address cannot be used (``valid_host``)."""
        entries = sp.decode_peers(await self._ok(sp.GetPeers(manifest.id)), manifest.count)
        usable = [e for e in entries if address_problem(e.host, e.port) is None]
        if len(usable) < len(entries):
            log.warning("[Swarm] the tracker listed %d peer(s) with an unusable address; "
                        "skipped", len(entries) - len(usable))
        return usable

    async def files(self, name: str = "") -> list[sp.FileEntry]:
        """The first page of FILES (``file_page``); a cut list is logged."""
        page = await self.file_page(name=name)
        if page.cut:
            log.warning("[Swarm] the tracker listed %d of %d swarms", len(page.entries),
                        page.total)
        return page.entries

    async def file_page(self, offset: int = 0, name: str = "") -> FilePage:
        """FILES from ``offset``, newest first; with ``name``, only the swarms it names
        (an exact name, or an id prefix)."""
        head, body = await self.request(sp.ListFiles(offset, name))
        if head.status != Status.OK:
            raise TrackerRefused("ListFiles", head.status)
        entries = sp.decode_files(body)
        total = get_header(head.headers, "Total")
        try:
            count = int(total) if total else offset + len(entries)
        except ValueError:
            count = offset + len(entries)
        return FilePage(entries, offset, max(count, offset + len(entries)))

    async def manifest(self, swarm: str) -> Manifest | None:
        """The swarm's manifest, checked against its id; None if the tracker has none.

        Raises:
            IntegrityError: the tracker sent bytes that do not match the id.
        """
        head, body = await self.request(sp.GetManifest(swarm))
        if head.status == Status.NOT_FOUND:
            return None
        if head.status != Status.OK:
            raise TrackerRefused("MANIFEST", head.status)
        return Manifest.from_bytes(body, swarm)

    async def rejoin(self, files: Iterable[PieceFile], address: tuple[str, int]) -> None:
        """Reconnect (retrying with a growing delay, for as long as it takes) and announce
        ``files`` as served at ``address`` again, each with the pieces it holds verified."""

        async def attempt() -> None:
            await self.reopen()
            for piece_file in list(files):
                await self.announce(piece_file.manifest, *address)
                if piece_file.have:
                    await self.have(piece_file.manifest.id, piece_file.have)

        await _retrying(attempt, self.stream.address)
        log.info("[Swarm] back with the index server")

    async def wait_closed(self) -> None:
        """Return when the tracker closes the connection (it never speaks unasked)."""
        async with self._lock:
            with contextlib.suppress(ConnectionError, OSError):  # a reset is a close too
                while await self.stream.reader.read(limits.RECV_CHUNK):
                    pass

    async def aclose(self) -> None:
        self.stream.close()
        try:
            await self.stream.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def _retrying(attempt: Callable[[], Awaitable[None]], server: tuple[str, int],
                    give_up: float | None = None) -> None:
    """Await ``attempt()`` until it succeeds, waiting ``Backoff`` delays between failures
    (and, with ``give_up`` seconds, until the next attempt would start past them: then
    its failure is raised)."""
    backoff = Backoff()
    end = None if give_up is None else time.monotonic() + give_up
    while True:
        try:
            await attempt()
            return
        except (P2PError, OSError, TimeoutError) as exc:
            delay = backoff.next_delay()
            if end is not None and time.monotonic() + delay > end:
                raise
            log.info("[Swarm] index server at %s not reachable (%s); retry in %.2f s",
                     join_hostport(*server), exc or type(exc).__name__, delay)
        await asyncio.sleep(delay)  # backoff between attempts, not synchronisation


async def _open(host: str, port: int) -> PipelinedStream:
    raw = await open_stream(host, port, sp.client_connection())
    set_keepalive(raw.writer)
    return PipelinedStream((host, port), raw.reader, raw.writer, limits.MAX_TRACKER_BODY)
