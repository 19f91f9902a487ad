"""A whole P2P-DI peer: RFC server, RFC index, the RS messages, and the download algorithm.

Strategy: ``start`` scans the folder into the index as local records, starts the RFC server
and settles the address it advertises (``net.advertise``: ``--advertise``, else the local address
that routes to the RS). ``join`` registers, retrying an RS that cannot be reached yet with backoff
(``backoff.Backoff``, a log line per attempt) while the RFC server already serves.
``stay_registered`` sends KeepAlive after a third of the TTL the RS stated, so two
KeepAlives may be lost before the RS flags us, and meanwhile follows the folder
(``paths.FolderWatch``, every ``limits.FOLDER_RESCAN_INTERVAL``): an RFC file that appears
becomes a local record (RFCQuery answers show it), one that goes is dropped. ``get`` is the
handout's algorithm (docs/p2p-di.md#di-download): PQuery; try the active holders already in
the index; then RFCQuery each active peer in turn, merge, and try the active holders it
revealed; stop at the first complete download or when the active peers are exhausted. The
RFCQueries run a few peers ahead (``QUERIES_AHEAD``) under the holders' connect and
first-byte deadlines, so fake peers that accept and never answer cost seconds, not minutes.
The holders of one step are asked at once with staggered starts (``peer.holders``: the first
valid reply wins); a record with an unusable host, port or title is skipped with its reason,
and our own folder refusing the file (``LocalIOError``) ends the download without blaming
anyone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import limits
from ..backoff import Backoff
from ..errors import LocalIOError, PeerGone, RemoteProtocolError, Status
from ..host import address_problem, join_hostport
from ..net.advertise import Advertised, advertised_host, local_address_towards
from ..peer import paths
from ..peer.client import Offer, holder_problem, room_in
from ..peer.holders import DEFAULT_PATIENCE, HOLDER_FAILURES, Patience, fetch_first
from ..protocol import di
from ..registry import wire
from ..registry.client import RSClient
from .client import Declined, Fetched, offer_getrfc, rfc_query, save_rfc
from .index import MergeResult, Remote, RFCIndex
from .server import RFCServer

log = logging.getLogger(__name__)

# What a failed exchange with another peer may raise; the algorithm moves on to the next.
PEER_FAILURES = HOLDER_FAILURES


@dataclass(slots=True)
class DIGetResult:
    """The outcome of ``DIPeer.get``: the file, or None, and what each step said."""

    rfc: int
    fetched: Fetched | None = None
    already_local: bool = False  # the RFC was in our folder: nothing was asked
    active: list[di.PeerAddr] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # one line per RFCQuery / GetRFC
    local_error: str | None = None  # our folder refused the file: no holder could help
    tried: set[tuple[str, int]] = field(default_factory=set)  # holders already asked


# RFCQueries started ahead of the one whose answer the algorithm uses next.
QUERIES_AHEAD = 4


class DIPeer:
    """A P2P-DI peer sharing the ``rfc<N>.txt`` files of ``folder``.

    Args:
        rs: the registration server's (host, port).
        folder: where the RFC files are read from and downloaded to.
        hostname: the name to advertise; default the local address that routes to the RS.
        bind, port: where the RFC server listens (None: every address, IPv4 and IPv6;
            port 0: any free port).
        trace: called with every message sent and received, ready to print.
        index: inject an index (e.g. one with a test clock).
        patience: how long holders get (``peer.holders``); tests shorten it.
    """

    def __init__(
        self, rs: tuple[str, int], folder: Path, *, hostname: str | None = None,
        bind: str | None = None, port: int = 0, trace: wire.Trace | None = None,
        index: RFCIndex | None = None, patience: Patience = DEFAULT_PATIENCE,
    ) -> None:
        self.folder = folder
        self.patience = patience
        self.trace = trace
        self.index = index if index is not None else RFCIndex()
        self.rs = RSClient(*rs, trace=trace)
        self.server = RFCServer(folder, self.index, trace)
        self._hostname = hostname
        self._bind = (bind, port)
        self.advertised = Advertised("")  # settled by ``start``
        self.watch = paths.FolderWatch(folder)

    @property
    def me(self) -> di.PeerAddr:
        if self.index.me is None:
            raise RuntimeError("peer not started")
        return self.index.me

    async def start(self) -> None:
        """Index the folder, start the RFC server, and settle our advertised address.

        Raises:
            OSError: the RFC server cannot listen, or the RS's host does not resolve.
        """
        self.index_folder()
        await self.server.start(*self._bind)
        local = "" if self._hostname else await local_address_towards(self.rs.host, self.rs.port)
        self.advertised = await advertised_host(self._hostname, self.rs.host, local)
        self.index.me = di.PeerAddr(self.advertised.host, self.server.port)

    def index_folder(self) -> None:
        """Add every RFC file of the folder to the index as a local record."""
        found = paths.scan(self.folder)
        self.watch.known |= set(found)
        for rfc, title in found.items():
            self.index.add_local(rfc, title)

    async def __aenter__(self) -> DIPeer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ----------------------------------------------------------------- RS messages
    async def register(self) -> wire.DIReply:
        return await self.rs.register(self.me)

    async def join(self) -> wire.DIReply:
        """Register, retrying while the RS cannot be reached (module text); the RS's reply.

        Raises:
            RemoteProtocolError: the RS's reply was malformed (or not P2P-DI).
        """
        backoff = Backoff()
        while True:
            try:
                return await self.register()
            except (PeerGone, TimeoutError) as exc:
                delay = backoff.next_delay()
                log.warning("[Peer] RS %s not reachable (%s); retry in %.2f s",
                            join_hostport(self.rs.host, self.rs.port), exc, delay)
                await asyncio.sleep(delay)  # backoff between attempts, not synchronisation

    async def keep_alive(self) -> wire.DIReply:
        return await self.rs.keep_alive()

    async def pquery(self) -> list[di.PeerAddr]:
        """The active peers other than us (empty when the RS says none is active)."""
        _reply, peers = await self.rs.pquery()
        return list(peers.items)

    async def leave(self) -> wire.DIReply:
        return await self.rs.leave()

    async def stay_registered(self) -> None:
        """Run until cancelled: KeepAlive after each third of the TTL the RS stated; follow
        the folder meanwhile."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.watch_folder())
            await self._keep_alive()

    async def watch_folder(self) -> None:
        """Run until cancelled: the folder's RFC files that came and went update the local
        records (module text)."""
        await paths.follow(self.watch, self._folder_changed)

    async def _folder_changed(self, added: dict[int, str], removed: set[int]) -> None:
        for rfc, title in added.items():
            log.info("[Peer] RFC %d appeared in the folder: %s", rfc, title)
            self.index.add_local(rfc, title)
        for rfc in removed:
            self.index.drop_local(rfc)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.rs.ttl * limits.DI_KEEPALIVE_SHARE)  # a period, not a sync
            if not self.rs.registered:
                continue
            try:
                reply = await self.rs.keep_alive()
            except PEER_FAILURES as exc:
                log.warning("KeepAlive to the RS failed: %s", exc)
                continue
            if reply.status != Status.OK:
                log.warning("KeepAlive refused: %d %s", reply.status, reply.response.reason)

    # ----------------------------------------------------------------- peer messages
    async def rfc_query(self, peer: di.PeerAddr, patience: Patience | None = None
                        ) -> MergeResult:
        """RFCQuery ``peer`` and merge its index into ours; with ``patience``, under its
        connect and first-byte deadlines (else the usual client ones).

        Raises:
            PeerGone, RemoteProtocolError, TimeoutError: the exchange failed.
        """
        if patience is None:
            reply, parsed = await rfc_query(peer, self.trace)
        else:
            reply, parsed = await rfc_query(peer, self.trace, connect_timeout=patience.connect,
                                            first_byte=patience.first_byte)
        where = join_hostport(peer.host, peer.port)
        if parsed.skipped:
            log.warning("%s sent %d malformed index line(s); skipped", where, parsed.skipped)
        merged = self.index.merge(parsed.items, peer)
        if parsed.cut or merged.dropped:  # one line per reply, however many were dropped
            log.warning("%s: %d index record(s) dropped over budget (%d a peer, %d in all)",
                        where, parsed.cut + merged.dropped, self.index.max_per_peer,
                        self.index.max_records)
        return merged

    async def get(self, rfc: int) -> DIGetResult:
        """Download RFC ``rfc`` by the handout's algorithm (module doc); never raises for
        a peer's failure, only for the RS's (PeerGone, TimeoutError, RemoteProtocolError)."""
        if self.index.has_local(rfc):
            return DIGetResult(rfc, already_local=True)
        result = DIGetResult(rfc, active=await self.pquery())
        sources = result.active
        async with asyncio.TaskGroup() as group:
            # RFCQueries run QUERIES_AHEAD peers ahead of the one whose answer is used,
            # under the holders' short deadlines: peers that accept and never answer
            # cost seconds together, not RESPONSE_TIMEOUT each in turn.
            queries: dict[int, asyncio.Task[tuple[bool, str]]] = {}
            for i in range(-1, len(sources)):  # -1: the holders the index knows already
                for j in range(i, min(i + QUERIES_AHEAD, len(sources)) if i >= 0 else i):
                    if j not in queries:
                        queries[j] = group.create_task(self._query(sources[j]))
                if i >= 0:
                    answered, step = await queries.pop(i)
                    result.steps.append(step)
                    if not answered:
                        continue
                if await self._try_holders(rfc, result) or result.local_error is not None:
                    for task in queries.values():
                        task.cancel()
                    break
        return result

    async def _try_holders(self, rfc: int, result: DIGetResult) -> bool:
        """GetRFC from the active holders the index knows of and not yet tried."""
        active = {(p.host, p.port) for p in result.active}
        holders = [h for h in self.index.holders(rfc)
                   if (h.host, h.port) in active and (h.host, h.port) not in result.tried]
        result.tried.update((h.host, h.port) for h in holders)
        result.fetched = await self._fetch(holders, rfc, result)
        if result.fetched is None:
            return False
        winner = next(h for h in holders if h.addr == result.fetched.source)
        self.watch.known.add(rfc)
        self.index.add_local(rfc, winner.title or paths.title_of(result.fetched.path, rfc))
        return True

    async def _query(self, source: di.PeerAddr) -> tuple[bool, str]:
        """RFCQuery ``source`` and merge its index: whether it answered, and the step's
        line (noted by the caller in the order of the peers, whatever order they end)."""
        where = join_hostport(source.host, source.port)
        try:
            problem = address_problem(source.host, source.port)
            if problem is not None:
                raise RemoteProtocolError(problem)
            merged = await self.rfc_query(source, self.patience)
        except PEER_FAILURES as exc:
            return False, f"RFCQuery {where}: {exc!r}"
        return True, f"RFCQuery {where}: {merged.added} new, {merged.refreshed} refreshed"

    async def _fetch(self, holders: list[Remote], rfc: int, result: DIGetResult
                     ) -> Fetched | None:
        """GetRFC from the first of ``holders`` to answer (``peer.holders``)."""
        usable = []
        for holder in holders:
            problem = holder_problem(holder.host, holder.port, holder.title)
            if problem is not None:
                result.steps.append(f"{_where(rfc, holder)}: skipped: {problem}")
            else:
                usable.append(holder)
        start = time.perf_counter()

        def failed(holder: Remote, exc: BaseException) -> None:
            if isinstance(exc, Declined):
                result.steps.append(f"{_where(rfc, holder)}: {exc}")
                self.index.drop(rfc, holder.addr)
            else:
                result.steps.append(f"{_where(rfc, holder)}: {exc!r}")

        async def attempt(holder: Remote) -> Offer:
            return await offer_getrfc(holder.addr, rfc, room, self.trace, self.patience)

        async def save(holder: Remote, offer: Offer) -> Fetched:
            return await save_rfc(holder.addr, rfc, self.folder, offer, start, self.trace)

        try:
            room = room_in(self.folder)
            won = await fetch_first(usable, attempt, save, Offer.release, failed,
                                    self.patience.stagger)
        except LocalIOError as exc:
            result.local_error = str(exc)
            return None
        if won is None:
            return None
        holder, got = won
        result.steps.append(f"{_where(rfc, holder)}: {got.size} bytes in "
                            f"{got.seconds * 1000:.1f} ms")
        return got

    async def aclose(self) -> None:
        """Leave the system if registered (best effort), then stop the RFC server."""
        if self.rs.registered:
            try:
                await self.rs.leave()
            except PEER_FAILURES as exc:
                log.warning("Leave to the RS failed: %s", exc)
        await self.server.aclose()


def _where(rfc: int, holder: Remote) -> str:
    return f"GetRFC {rfc} from {join_hostport(holder.host, holder.port)}"
