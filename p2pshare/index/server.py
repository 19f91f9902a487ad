"""The central index server (P2P-CI section 1-2, TCP 7734), also the swarm tracker.

Strategy: each peer's connection stays open while the peer is active
(docs/p2p-ci.md#persistent-connection). The server runtime (``net.runtime``) feeds its
bytes to the sans-IO codec and hands each whole request here;
every protocol decision is made by ``protocol.ci.interpret`` and ``MemoryIndex``. Small
answers (ADD, LOOKUP, REMOVE, errors) are computed and written at once, with no task and
no await (a LOOKUP in the common form arriving alone takes ``quick``, which skips the
codec's general path and gives the same bytes); LIST ALL is streamed in batches under
backpressure; requests whose version is ``P2P-SWARM/...`` go to the swarm tracker on the
same connection (a downloader's HAVE reports and PEERS polls, arriving alone in their
common form, take the tracker's ``quick`` in the same way). When the connection ends for
any reason (clean close, reset, keepalive failure, framing error, head deadline)
``disconnected`` removes every record the connection owned (1.8).

Budgets: ``MemoryIndex`` counts records and claims per connection and per source address
(the connection's IP); an ADD over one is a 400 (docs/p2p-ci.md#budgets). The tracker is
given the source address too, and records members there unless ``trust_named_hosts``.
LIST ALL walks a ``Listing`` (no copy of the index), so a client that stops reading holds
O(1) memory until the write-stall deadline cuts it off.

Given ``shared`` (``index.shared``, ``--store redis://...``), the P2P-CI requests are answered
from a Redis store that several servers share (docs/scale-out.md): each answer is then a
coroutine (one Lua script per request), there is no quick LOOKUP path and no answer cache
(another node may change the index at any time), and a closed connection's records are
dropped by a task the server owns. Without it, nothing of the above runs.

A well-framed but invalid request gets its 400/505 and the connection goes on (the peer's
records stay); a framing error gets a 400 and the connection closes, since the next
request's start can no longer be found. A peer may stay silent, even before its first
request (a peer with no RFCs has nothing to ADD): TCP keepalive notices a vanished host,
and HEAD_TIMEOUT runs from the first byte of a request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from .. import limits
from ..errors import P2PError, Status, StoreError
from ..host import join_hostport
from ..net.runtime import Answer, Link, Policy, Server
from ..protocol import (
    Connection,
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
from ..protocol import swarm as sp
from ..protocol.ci import CIRequest, Method, Record, Rejected
from .store import MemoryIndex

if TYPE_CHECKING:
    from .shared import SharedIndex

log = logging.getLogger(__name__)

SWARM_PREFIX = "P2P-SWARM/"
LIST_BATCH = 512  # records encoded per write while streaming LIST
_TRACKER_FIRST = (b"H", b"P")  # the first byte of a HAVE or PEERS (``sp.quick_tracker``)


class TrackerService(Protocol):
    """What the index server needs from the swarm tracker (``swarm.tracker.Tracker``)."""

    def answer(self, owner: object, request: Request, body: bytes, source: str = "",
               named: bool = True) -> tuple[Response, bytes]:
        """Answer at once: the tracker never waits, so no task is needed per request.
        ``source`` is the address ``owner`` connects from; ``named`` trusts the host an
        ANNOUNCE names instead of it."""
        ...

    def quick(self, owner: object, msg: sp.Have | sp.GetPeers) -> bytes | None:
        """The whole answer to a HAVE or PEERS read by ``sp.quick_tracker`` when it is a
        200, else None (``answer`` gives it)."""
        ...

    def drop(self, owner: object) -> None:
        ...

    def swarm_rows(self, limit: int, buckets: int) -> list[dict[str, object]]:
        """The swarms as the dashboard shows them (docs/dashboard.md#api-state)."""
        ...

    def swarm_count(self) -> int:
        ...

    def leecher_count(self) -> int:
        ...


class SharedTrackerService(Protocol):
    """The swarm tracker on a shared store (``swarm.shared.SharedTracker``): each answer
    is a coroutine (one Lua script)."""

    async def start(self) -> None: ...

    async def handle(self, owner: object, request: Request, body: bytes, source: str = "",
                     named: bool = True) -> tuple[Response, bytes]: ...

    async def swarm_rows(self, limit: int, buckets: int
                         ) -> tuple[int, list[dict[str, object]]]:
        """How many swarms, and the newest ``limit`` as the dashboard shows them."""
        ...

    async def drop_owner(self, owner: object) -> int: ...

    async def aclose(self) -> None: ...

    async def renew(self) -> bool: ...

    on_lost: Callable[[], object] | None


def _framing(request: Request) -> Framing:
    if request.version.upper().startswith(SWARM_PREFIX):
        return Framing.LENGTH
    return ci.response_framing(request)


def _connection() -> Connection:
    return Connection(Role.SERVER, _framing, default_framing=Framing.LINES)


class IndexServer:
    """Serves P2S requests (and swarm tracker requests) over persistent connections."""

    def __init__(self, index: MemoryIndex | None = None, tracker: TrackerService | None = None,
                 *, max_connections: int | None = None,
                 head_timeout: float | None = None, trust_named_hosts: bool = False,
                 shared: SharedIndex | None = None,
                 shared_tracker: SharedTrackerService | None = None) -> None:
        self.index = index if index is not None else MemoryIndex()
        self.shared = shared  # several nodes on one Redis store (``index.shared``)
        self.trust_named_hosts = trust_named_hosts  # tracker: named hosts over source IPs
        self.index.on_change = self._stale
        self._answers: dict[int, bytes] = {}  # rfc -> quick LOOKUP answer, while current
        self._cached = 0  # bytes in _answers
        self.tracker = tracker
        policy = Policy("index", max_connections=max_connections or limits.MAX_CONNECTIONS,
                        head_timeout=head_timeout or limits.HEAD_TIMEOUT)
        self.server = Server(self, _connection, policy,
                             quick=self._quick if shared is None else None)
        self.shared_tracker = shared_tracker  # the tracker on the same store
        self._recovering = False  # renewing the leases after one was lost
        for store in (shared, shared_tracker):
            if store is not None:
                store.on_lost = self._lease_lost

    @property
    def active(self) -> int:
        """Connections open now."""
        return self.server.active

    async def start(self, host: str | None = None, port: int = 7734) -> tuple[str, int]:
        if self.shared is not None:
            await self.shared.start()
        if self.shared_tracker is not None:
            await self.shared_tracker.start()
        address = await self.server.start(host, port)
        log.info("[Server] listening on %s", join_hostport(*address))
        return address

    async def serve_forever(self) -> None:
        await self.server.serve_forever()

    async def aclose(self) -> None:
        await self.server.aclose()
        if self.shared is not None:
            await self.shared.aclose()
        if self.shared_tracker is not None:
            await self.shared_tracker.aclose()

    # ------------------------------------------------------------------ App
    def request(self, link: Link, request: Request, body: bytes) -> Answer:
        if request.version.upper().startswith(SWARM_PREFIX) and self.tracker is not None:
            response, payload = self.tracker.answer(link.owner, request, body,
                                                    link.peername[0], self.trust_named_hosts)
            return [response, Data(payload), EndOfMessage()]
        if request.version.upper().startswith(SWARM_PREFIX) and self.shared_tracker is not None:
            return self._track_shared(link, request, body, self.shared_tracker)
        req = ci.interpret(request)
        if isinstance(req, Rejected):
            log.info("[Server] %s: %d %s", link.label, req.status, req.detail)
            return [ci.p2s_response(req.status), EndOfMessage()]
        if self.shared is not None:
            return self._shared_answer(link, req, self.shared)
        if req.method is Method.LIST:
            return self._stream_list(link)
        status, records = self._apply(link, req)
        if status != Status.OK:
            return [ci.p2s_response(status), EndOfMessage()]
        return [ci.p2s_response(status), Lines(tuple(r.to_line() for r in records)),
                EndOfMessage()]

    def _quick(self, link: Link, data: bytes) -> bytes | None:
        if data[:1] in _TRACKER_FIRST and self.tracker is not None:
            msg = sp.quick_tracker(data)  # a downloader's HAVE report or PEERS poll
            return None if msg is None else self.tracker.quick(link.owner, msg)
        return self.quick(data)

    def quick(self, data: bytes) -> bytes | None:
        """The answer to one LOOKUP in the common form, or None (``ci.quick_lookup``)."""
        rfc = ci.quick_lookup(data)
        if rfc is None:
            return None
        answer = self._answers.get(rfc)
        if answer is None:
            answer = ci.lookup_answer([record.to_line() for record in self.index.lookup(rfc)])
            if len(answer) <= limits.LOOKUP_CACHE_MAX_ANSWER:
                if self._cached + len(answer) > limits.LOOKUP_CACHE_BYTES:
                    self._answers.clear()
                    self._cached = 0
                self._answers[rfc] = answer
                self._cached += len(answer)
        return answer

    def _stale(self, rfc: int) -> None:
        answer = self._answers.pop(rfc, None)
        if answer is not None:
            self._cached -= len(answer)

    def error(self, link: Link, status: Status) -> list[Event]:
        return [ci.p2s_response(status), EndOfMessage()]

    def disconnected(self, link: Link) -> None:
        if self.shared_tracker is not None:
            self.server.tasks.spawn(self._leave_shared(link.owner, self.shared_tracker))
        if self.shared is not None:
            self.server.tasks.spawn(self._leave_shared(link.owner, self.shared))
            if self.tracker is not None:
                self.tracker.drop(link.owner)
            return
        self._leave(link.owner, link.peername)

    def connected(self, link: Link) -> None:
        log.info("[Server] connection from %s", link.label)

    def _apply(self, link: Link, req: CIRequest) -> tuple[Status, list[Record]]:
        assert req.rfc is not None  # only LIST has no number
        if req.method is Method.LOOKUP:
            found = self.index.lookup(req.rfc)
            return (Status.OK if found else Status.NOT_FOUND), found
        if req.method is Method.GET:  # GET is for a peer's upload server, not the index
            return Status.BAD_REQUEST, []
        assert req.port is not None  # ADD and REMOVE require Port
        if req.method is Method.REMOVE:
            gone = self.index.remove(link.owner, req.rfc, req.host, req.port)
            return (Status.OK, [gone]) if gone else (Status.NOT_FOUND, [])
        return self._add(link.owner, req.rfc, req.title or "", req.host, req.port,
                         link.peername[0])

    def _add(self, owner: object, rfc: int, title: str, host: str, port: int,
             source: str = "") -> tuple[Status, list[Record]]:
        """ADD; a claim or record over a budget is a 400 (docs/p2p-ci.md#budgets)."""
        first = not self.index.has_peer(host, port)
        try:
            record = self.index.add(owner, rfc, title, host, port, source)
        except StoreError as exc:
            log.warning("[Server] refused ADD RFC %d: %s", rfc, exc)
            return Status.BAD_REQUEST, []
        if first:
            log.info("[Server] Added %s", join_hostport(host, port))
        log.info("[Server] Added RFC %d from %s", rfc, join_hostport(host, port))
        return Status.OK, [record]

    async def _stream_list(self, link: Link) -> None:
        """LIST ALL, newest first, written in batches: never one string of the whole index."""
        await link.send(ci.p2s_response(Status.OK))
        with self.index.listing() as records:
            for batch in _batches(iter(records), LIST_BATCH):
                await link.send(Lines(batch))
        await link.send(EndOfMessage())

    def _leave(self, owner: object, peername: tuple[str, int]) -> None:
        peers = self.index.peers_of(owner)
        removed = self.index.drop_owner(owner)
        if self.tracker is not None:
            self.tracker.drop(owner)
        names = ", ".join(join_hostport(h, p) for h, p in peers) or join_hostport(*peername)
        log.info("[Server] %s left; removed %d records (%d remain)", names, removed,
                 len(self.index))


    # ------------------------------------------------------- on a shared store
    async def _shared_answer(self, link: Link, req: CIRequest, shared: SharedIndex) -> None:
        """The answer to ``req`` from the shared store (docs/scale-out.md)."""
        if req.method is Method.LIST:
            await link.send(ci.p2s_response(Status.OK))
            below = "+inf"
            while below:
                records, below = await shared.page(below, LIST_BATCH)
                if records:
                    await link.send(Lines(tuple(r.to_line() for r in records)))
            await link.send(EndOfMessage())
            return
        status, records = await self._apply_shared(link, req, shared)
        await link.send(ci.p2s_response(status))
        if status == Status.OK:
            await link.send(Lines(tuple(r.to_line() for r in records)))
        await link.send(EndOfMessage())

    async def _apply_shared(self, link: Link, req: CIRequest,
                            shared: SharedIndex) -> tuple[Status, list[Record]]:
        assert req.rfc is not None  # only LIST has no number
        if req.method is Method.LOOKUP:
            found = await shared.lookup(req.rfc)
            return (Status.OK if found else Status.NOT_FOUND), found
        if req.method is Method.GET:
            return Status.BAD_REQUEST, []
        assert req.port is not None  # ADD and REMOVE require Port
        if req.method is Method.REMOVE:
            gone = await shared.remove(link.owner, req.rfc, req.host, req.port)
            return (Status.OK, [gone]) if gone else (Status.NOT_FOUND, [])
        try:
            record = await shared.add(link.owner, req.rfc, req.title or "", req.host,
                                      req.port, link.peername[0])
        except StoreError as exc:
            log.warning("[Server] refused ADD RFC %d: %s", req.rfc, exc)
            return Status.BAD_REQUEST, []
        log.info("[Server] Added RFC %d from %s", req.rfc, join_hostport(req.host, req.port))
        return Status.OK, [record]

    async def _leave_shared(self, owner: object,
                            shared: SharedIndex | SharedTrackerService) -> None:
        try:
            removed = await shared.drop_owner(owner)
        except P2PError as exc:  # the store unreachable: the node's lease ends them instead
            log.warning("[Server] could not drop a connection's records: %s", exc)
            return
        log.info("[Server] a connection left; removed %d records of %s", removed,
                 type(shared).__name__)

    async def _track_shared(self, link: Link, request: Request, body: bytes,
                            tracker: SharedTrackerService) -> None:
        """A P2P-SWARM request answered from the shared store."""
        response, payload = await tracker.handle(link.owner, request, body,
                                                 link.peername[0], self.trust_named_hosts)
        await link.send(response)
        await link.send(Data(payload))
        await link.send(EndOfMessage())

    def _lease_lost(self) -> None:
        """The shared store forgot this node: renew every store's lease, then close every
        connection, so that each peer reconnects and registers again, once however many
        stores noticed (docs/scale-out.md#failures)."""
        if not self._recovering:
            self._recovering = True
            self.server.tasks.spawn(self._recover())

    async def _recover(self) -> None:
        try:
            for store in (self.shared, self.shared_tracker):
                for _ in range(2):  # a second time on a fresh connection to Redis
                    try:
                        if store is not None:
                            await store.renew()
                        break
                    except P2PError as exc:
                        log.warning("[Server] cannot renew a lease: %s", exc)
        finally:
            self._recovering = False
            for link in list(self.server.links):
                link.close("the node's lease in the shared store was lost")


def _batches(records: Iterator[Record], size: int) -> Iterator[tuple[bytes, ...]]:
    batch: list[bytes] = []
    for record in records:
        batch.append(record.to_line())
        if len(batch) >= size:
            yield tuple(batch)
            batch = []
    if batch:
        yield tuple(batch)

