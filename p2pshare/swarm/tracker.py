"""The swarm tracker, served by the index server on the same connections as P2P-CI.

Strategy: per swarm, the manifest (checked against the swarm id before it is stored) and
each live peer's pieces, keyed by the connection (``owner``) that announced them; a peer
can change only its own records, and ``drop`` removes them all when its connection ends,
exactly like P2P-CI records (docs/p2p-ci.md#leaving). A swarm with no peer left is
forgotten, and its manifest with it.

Addresses: a member is recorded at the address its connection comes from (``source``)
and the port it names, as BitTorrent trackers do, so that nobody can make others believe
that someone else's piece server holds pieces; the host an ANNOUNCE names is used only
when the server trusts named hosts (NAT set-ups and demos, ``named``). An address (host,
port) belongs to the live connection that announced it: another connection announcing it
gets 409. Every claim belongs to its connection (released when it ends, or when no
swarm of that connection uses it any more).

Budgets (``TrackerBudget``, docs/swarm.md#tracker-budgets): claims per connection, per
source address and in all; manifest bytes per source (each swarm its connections are in,
once) and in all. Over this requester's share: 409; over the server's: 503. The books are
kept by ``Ledger``. Availability is counted per piece (``census.PieceCensus``), so a HAVE
costs O(1) per piece it adds, and FILES a few operations per swarm listed.
``protocol.swarm.interpret`` makes every protocol decision about the bytes; this module
only keeps the records.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import count, islice
from typing import Protocol, TypeVar

from .. import limits
from ..errors import IntegrityError, OverBudget, P2PError, RemoteProtocolError, Status
from ..host import join_hostport, plain_ip
from ..protocol import Request, Response
from ..protocol import swarm as sp
from .census import PieceCensus
from .ledger import ClaimedAddress, Ledger, TrackerBudget
from .manifest import Manifest
from .pieces import full
from .rows import SwarmRow, members_shown, swarm_row

log = logging.getLogger(__name__)

TrackerAnswer = tuple[Response, bytes]
_HEX = re.compile(r"[0-9a-f]{1,64}\Z")


@dataclass(eq=False)
class _Member:
    host: str
    port: int
    pieces: int = 0


@dataclass(eq=False)
class _Swarm:
    manifest: Manifest
    size: int  # bytes of the manifest's canonical form
    announced: int = 0  # tick of the latest ANNOUNCE: FILES lists the newest first
    members: dict[object, _Member] = field(default_factory=dict)
    seeders: int = 0
    census: PieceCensus = field(init=False)

    def __post_init__(self) -> None:
        self.census = PieceCensus(self.manifest.count)

    def gain(self, member: _Member, mask: int) -> None:
        """``member`` now also holds ``mask``: O(1) per piece it did not hold."""
        new = mask & ~member.pieces
        if not new:
            return
        self.census.add(new)
        member.pieces |= new
        self.seeders += member.pieces == full(self.manifest.count)

    def lose(self, owner: object) -> None:
        member = self.members.pop(owner)
        self.census.remove(member.pieces)
        self.seeders -= member.pieces == full(self.manifest.count)

    def row(self, limit: int, buckets: int) -> SwarmRow:
        """The swarm as the dashboard shows it (``rows.swarm_row``): O(``limit``), not
        O(members), for a page polled each second."""
        members = [sp.PeerEntry(m.host, m.port, m.pieces)
                   for m in islice(self.members.values(), members_shown(limit))]
        return swarm_row(self.entry(), members, self.census, limit, buckets)

    def entry(self) -> sp.FileEntry:
        m = self.manifest
        copies = self.census.copies() if m.count else float(len(self.members))
        return sp.FileEntry(m.id, m.size, m.piece_size, self.seeders,
                            len(self.members) - self.seeders, copies, m.name, len(m.files))


class TrackerStore(Protocol):
    """Where the tracker keeps its records: ``Tracker`` (this process's memory, the
    default) or ``swarm.shared.SharedTracker`` (Redis, several nodes; docs/scale-out.md).
    Each answers one request of the connection ``owner`` from ``source`` (``named``: trust
    the host an ANNOUNCE names), and forgets everything of ``owner`` when it closes."""

    async def start(self) -> None: ...

    async def handle(self, owner: object, request: Request, body: bytes, source: str = "",
                     named: bool = True) -> TrackerAnswer: ...

    async def drop_owner(self, owner: object) -> object: ...

    async def aclose(self) -> None: ...


def interpreted(request: Request, body: bytes, source: str, named: bool
                ) -> sp.SwarmRequest | TrackerAnswer:
    """The request ``protocol.swarm.interpret`` makes of the bytes, with the member's host
    set to ``source`` unless ``named``; or the answer to a rejected one."""
    msg = sp.interpret(request, body)
    if isinstance(msg, sp.Rejected):
        log.info("[Tracker] %s %s: %d %s", request.method[:20], request.target[:20],
                 msg.status, msg.detail)
        return sp.response(msg.status)
    if isinstance(msg, sp.Announce) and not named and source:
        msg = sp.Announce(msg.swarm, plain_ip(source), msg.port, msg.manifest)
    return msg


def refused(msg: sp.SwarmRequest, exc: P2PError) -> TrackerAnswer:
    """The answer to ``msg`` refused by ``exc``: over a budget, 409 (this requester's) or
    503 (the server's); a bad manifest or mask, 400."""
    log.info("[Tracker] refused %s: %s", type(msg).__name__, exc)
    if isinstance(exc, OverBudget):
        return sp.response(Status.BUSY if exc.everyone else Status.CONFLICT)
    return sp.response(Status.BAD_REQUEST)


class Tracker:
    """Swarm records of the index server; ``answer`` answers one P2P-SWARM request."""

    def __init__(self, rng: random.Random | None = None,
                 budget: TrackerBudget | None = None) -> None:
        self.swarms: dict[str, _Swarm] = {}  # oldest announce first
        self.books = Ledger(budget or TrackerBudget())
        self._named: dict[str, dict[str, None]] = {}  # file name -> swarm ids
        self._ticks = count()
        self._rng = rng or random.Random()

    async def start(self) -> None:
        """Nothing to start: the records are in this process's memory."""

    async def aclose(self) -> None:
        """Nothing to close."""

    async def handle(self, owner: object, request: Request, body: bytes, source: str = "",
                     named: bool = True) -> TrackerAnswer:
        """``answer`` as the coroutine of ``TrackerStore`` (tests, other stores' peers)."""
        return self.answer(owner, request, body, source, named)

    async def drop_owner(self, owner: object) -> None:
        """``drop`` as the coroutine of ``TrackerStore``."""
        self.drop(owner)

    def answer(self, owner: object, request: Request, body: bytes, source: str = "",
               named: bool = True) -> TrackerAnswer:
        """``handle`` without the coroutine: the tracker never waits for anything, so a
        server may answer in its read callback, with no task per request. ``source`` is
        the address ``owner`` connects from; unless ``named``, a member is recorded there."""
        msg = interpreted(request, body, source, named)
        if isinstance(msg, tuple):
            return msg
        try:
            return self._apply(owner, source, msg)
        except (OverBudget, RemoteProtocolError, IntegrityError) as exc:
            return refused(msg, exc)

    def quick(self, owner: object, msg: sp.Have | sp.GetPeers) -> bytes | None:
        """The whole answer to ``msg`` (``sp.quick_tracker``) when ``answer`` would give
        a 200, from a template (``sp.ok_answer``); None when it would not: ``answer`` then
        gives it. The index server answers a downloader's HAVE reports and PEERS polls
        this way, without the codec's general path."""
        swarm = self.swarms.get(msg.swarm)
        if swarm is None:
            return None
        if isinstance(msg, sp.GetPeers):
            return sp.ok_answer(self._peers(owner, swarm))
        return sp.ok_answer() if self._gain(owner, swarm, msg) is Status.OK else None

    def swarm_rows(self, limit: int, buckets: int) -> list[SwarmRow]:
        """Up to ``limit`` swarms, most recently announced first, each with up to
        ``rows.members_shown(limit)`` members and its availability in ``buckets`` runs of
        pieces (``_Swarm.row``)."""
        return [s.row(limit, buckets) for s in islice(reversed(self.swarms.values()), limit)]

    def swarm_count(self) -> int:
        return len(self.swarms)

    def leecher_count(self) -> int:
        """Members of every swarm that do not hold all of it yet: transfers under way."""
        return sum(len(s.members) - s.seeders for s in self.swarms.values())

    def drop(self, owner: object) -> None:
        """The connection ``owner`` closed: remove every record and claim it made."""
        for swarm_id in self.books.leave(owner):
            self._leave_swarm(owner, self.swarms[swarm_id])

    def _leave_swarm(self, owner: object, swarm: _Swarm) -> None:
        swarm.lose(owner)
        if swarm.members:
            return
        m = swarm.manifest
        del self.swarms[m.id]
        ids = self._named[m.name]
        del ids[m.id]
        if not ids:
            del self._named[m.name]
        self.books.forget(m.id, swarm.size)
        log.info("[Tracker] swarm %s (%s) has no peer left", m.id[:12], m.name)

    def _apply(self, owner: object, source: str, msg: sp.SwarmRequest) -> TrackerAnswer:
        if isinstance(msg, sp.ListFiles):
            return self._files(msg)
        if isinstance(msg, sp.GetPiece):
            return sp.response(Status.BAD_REQUEST)  # pieces come from peers, not from here
        if isinstance(msg, sp.Announce):
            return self._announce(owner, source, msg)
        swarm = self.swarms.get(msg.swarm)
        if swarm is None:
            return sp.response(Status.NOT_FOUND)
        if isinstance(msg, sp.GetManifest):
            return sp.response(Status.OK, swarm.manifest.to_bytes())
        if isinstance(msg, sp.GetPeers):
            return sp.response(Status.OK, self._peers(owner, swarm))
        return self._have(owner, swarm, msg)

    def _announce(self, owner: object, source: str, msg: sp.Announce) -> TrackerAnswer:
        address: ClaimedAddress = (msg.host, msg.port)
        if self.books.holder(address, owner) is not owner:
            log.info("[Tracker] refused ANNOUNCE of %s: another connection's address",
                     join_hostport(*address))
            return sp.response(Status.CONFLICT)
        swarm = self.swarms.get(msg.swarm)
        if swarm is not None and msg.manifest != swarm.manifest.to_bytes():
            # Another name for the same content is the same swarm (the id does not cover
            # the name): it must still be a canonical manifest of this id. The first
            # announcer's name stays the swarm's.
            Manifest.from_bytes(msg.manifest, msg.swarm)
        member = swarm.members.get(owner) if swarm else None
        old = (member.host, member.port) if member else None
        self.books.check_join(owner, source, msg.swarm, len(msg.manifest), address, old,
                              new_swarm=swarm is None)
        if swarm is None:
            swarm = self._open(msg)
        self.books.join(owner, source, msg.swarm, swarm.size, address, old)
        if member is None:
            swarm.members[owner] = _Member(*address)
        else:
            member.host, member.port = address
        swarm.announced = next(self._ticks)
        self.swarms[msg.swarm] = self.swarms.pop(msg.swarm)  # the newest last
        log.info("[Tracker] %s joined swarm %s (%s)", join_hostport(*address), msg.swarm[:12],
                 swarm.manifest.name)
        return sp.response(Status.OK)

    def _open(self, msg: sp.Announce) -> _Swarm:
        """A new swarm for ``msg``'s manifest (checked against the id: raises if not)."""
        swarm = _Swarm(Manifest.from_bytes(msg.manifest, msg.swarm), len(msg.manifest))
        self.swarms[msg.swarm] = swarm
        self._named.setdefault(swarm.manifest.name, {})[msg.swarm] = None
        return swarm

    def _have(self, owner: object, swarm: _Swarm, msg: sp.Have) -> TrackerAnswer:
        return sp.response(self._gain(owner, swarm, msg))

    def _gain(self, owner: object, swarm: _Swarm, msg: sp.Have) -> Status:
        """A HAVE report taken (OK), or why not; nothing changes unless OK (so the quick
        path may leave a refusal to the general one)."""
        member = swarm.members.get(owner)
        if member is None:
            return Status.NOT_FOUND  # ANNOUNCE comes first
        if msg.pieces >> swarm.manifest.count:
            return Status.BAD_REQUEST
        swarm.gain(member, msg.pieces)
        return Status.OK

    def _files(self, msg: sp.ListFiles) -> TrackerAnswer:
        """At most MAX_FILES_LISTED swarms, most recently announced first, from
        ``msg.offset``; ``Total`` says how many there are (docs/swarm.md#files)."""
        chosen, total = self._chosen(msg.name)
        page = islice(chosen, msg.offset, msg.offset + self.books.budget.files_listed)
        lines = b"".join(s.entry().to_line() for s in page)
        return sp.response(Status.OK, lines, (("Total", str(total)),))

    def _chosen(self, name: str) -> tuple[Iterable[_Swarm], int]:
        if not name:
            return reversed(self.swarms.values()), len(self.swarms)
        ids = dict(self._named.get(name, {}))
        low = name.lower()
        if _HEX.match(low):
            ids.update((i, None) for i in self.swarms if i.startswith(low))
        found = sorted((self.swarms[i] for i in ids), key=lambda s: -s.announced)
        return found, len(found)

    def _peers(self, owner: object, swarm: _Swarm) -> bytes:
        """Other live peers, those holding pieces first, at most MAX_PEERS_LISTED."""
        others = [m for o, m in swarm.members.items() if o is not owner]
        entries = [sp.PeerEntry(m.host, m.port, m.pieces) for m in chosen(others, self._rng)]
        return sp.encode_peers(entries, swarm.manifest.count)


class _Holding(Protocol):
    @property
    def pieces(self) -> int: ...


_H = TypeVar("_H", bound=_Holding)


def chosen(others: list[_H], rng: random.Random) -> list[_H]:
    """The members a PEERS answer lists: in random order, those holding pieces first, at
    most MAX_PEERS_LISTED (``others`` is shuffled in place)."""
    rng.shuffle(others)
    others.sort(key=lambda m: m.pieces == 0)
    return others[: limits.MAX_PEERS_LISTED]
