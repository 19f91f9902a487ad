"""The swarm tracker, served by the index server on the same connections as P2P-CI.

Strategy: per swarm, the manifest (checked against the swarm id before it is stored) and
each live peer's pieces, keyed by the connection (``owner``) that announced them; a peer
can change only its own records, and ``drop`` removes them all when its connection ends,
exactly like P2P-CI records (docs/p2p-ci.md#leaving). As in P2P-CI, an address (host, port)
belongs to the first live connection that announced it: another connection announcing it
gets 409, so it cannot make others believe that address holds pieces it does not. A swarm
with no peer left is forgotten. Availability is kept per swarm incrementally
(``pieces.Availability``), so FILES costs a few mask operations per swarm.
``protocol.swarm.interpret`` makes every protocol decision about the bytes; this module
only keeps the records.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

from .. import limits
from ..errors import IntegrityError, RemoteProtocolError, Status
from ..host import join_hostport
from ..protocol import Request, Response
from ..protocol import swarm as sp
from .manifest import Manifest
from .pieces import Availability, full

log = logging.getLogger(__name__)

TrackerAnswer = tuple[Response, bytes]


@dataclass(eq=False)
class _Member:
    host: str
    port: int
    pieces: int = 0


@dataclass(eq=False)
class _Swarm:
    manifest: Manifest
    members: dict[object, _Member] = field(default_factory=dict)
    availability: Availability = field(init=False)

    def __post_init__(self) -> None:
        self.availability = Availability(self.manifest.count)

    def set_pieces(self, member: _Member, mask: int) -> None:
        self.availability.remove(member.pieces)
        member.pieces = mask
        self.availability.add(mask)

    def entry(self) -> sp.FileEntry:
        m = self.manifest
        whole = full(m.count)
        seeders = sum(1 for p in self.members.values() if p.pieces == whole)
        return sp.FileEntry(m.id, m.size, m.piece_size, seeders, len(self.members) - seeders,
                            self.copies(), m.name)

    def copies(self) -> float:
        if self.manifest.count == 0:
            return float(len(self.members))
        return self.availability.copies()


class Tracker:
    """Swarm records of the index server; ``handle`` answers one P2P-SWARM request."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.swarms: dict[str, _Swarm] = {}
        self._joined: dict[object, set[str]] = {}  # owner -> swarms it announced
        self._claims: dict[tuple[str, int], object] = {}  # address -> owner announcing it
        self._claimed: dict[object, set[tuple[str, int]]] = {}  # owner -> its addresses
        self._rng = rng or random.Random()

    async def handle(self, owner: object, request: Request, body: bytes) -> TrackerAnswer:
        """Answer one request from the connection ``owner`` (always LENGTH-framed)."""
        return self.answer(owner, request, body)

    def answer(self, owner: object, request: Request, body: bytes) -> TrackerAnswer:
        """``handle`` without the coroutine: the tracker never waits for anything, so a
        server may answer in its read callback, with no task per request."""
        msg = sp.interpret(request, body)
        if isinstance(msg, sp.Rejected):
            log.info("[Tracker] %s %s: %d %s", request.method[:20], request.target[:20],
                     msg.status, msg.detail)
            return sp.response(msg.status)
        try:
            return self._apply(owner, msg)
        except (RemoteProtocolError, IntegrityError) as exc:
            log.info("[Tracker] refused %s: %s", type(msg).__name__, exc)
            return sp.response(Status.BAD_REQUEST)

    def drop(self, owner: object) -> None:
        """The connection ``owner`` closed: remove every record it made."""
        for address in self._claimed.pop(owner, set()):
            del self._claims[address]
        for swarm_id in self._joined.pop(owner, set()):
            swarm = self.swarms[swarm_id]
            swarm.set_pieces(swarm.members.pop(owner), 0)
            if not swarm.members:
                del self.swarms[swarm_id]
                log.info("[Tracker] swarm %s (%s) has no peer left", swarm_id[:12],
                         swarm.manifest.name)

    def _apply(self, owner: object, msg: sp.SwarmRequest) -> TrackerAnswer:
        if isinstance(msg, sp.ListFiles):
            lines = b"".join(s.entry().to_line() for s in self.swarms.values())
            return sp.response(Status.OK, lines)
        if isinstance(msg, sp.GetPiece):
            return sp.response(Status.BAD_REQUEST)  # pieces come from peers, not from here
        if isinstance(msg, sp.Announce):
            return self._announce(owner, msg)
        swarm = self.swarms.get(msg.swarm)
        if swarm is None:
            return sp.response(Status.NOT_FOUND)
        if isinstance(msg, sp.GetManifest):
            return sp.response(Status.OK, swarm.manifest.to_bytes())
        if isinstance(msg, sp.GetPeers):
            return sp.response(Status.OK, self._peers(owner, swarm))
        return self._have(owner, swarm, msg)

    def _announce(self, owner: object, msg: sp.Announce) -> TrackerAnswer:
        if self._claims.get((msg.host, msg.port), owner) is not owner:
            log.info("[Tracker] refused ANNOUNCE of %s: another connection's address",
                     join_hostport(msg.host, msg.port))
            return sp.response(Status.CONFLICT)
        swarm = self.swarms.get(msg.swarm)
        if swarm is None:
            if len(self._joined.get(owner, ())) >= limits.MAX_SWARMS_PER_PEER:
                return sp.response(Status.CONFLICT)
            swarm = _Swarm(Manifest.from_bytes(msg.manifest, msg.swarm))
            self.swarms[msg.swarm] = swarm
        elif msg.manifest != swarm.manifest.to_bytes():
            raise IntegrityError("manifest does not match its id")
        member = swarm.members.get(owner)
        if member is None:
            swarm.members[owner] = _Member(msg.host, msg.port)
            self._joined.setdefault(owner, set()).add(msg.swarm)
        else:
            member.host, member.port = msg.host, msg.port
        self._claims[msg.host, msg.port] = owner
        self._claimed.setdefault(owner, set()).add((msg.host, msg.port))
        log.info("[Tracker] %s joined swarm %s (%s)", join_hostport(msg.host, msg.port),
                 msg.swarm[:12], swarm.manifest.name)
        return sp.response(Status.OK)

    def _have(self, owner: object, swarm: _Swarm, msg: sp.Have) -> TrackerAnswer:
        member = swarm.members.get(owner)
        if member is None:
            return sp.response(Status.NOT_FOUND)  # ANNOUNCE comes first
        if msg.pieces >> swarm.manifest.count:
            return sp.response(Status.BAD_REQUEST)
        swarm.set_pieces(member, member.pieces | msg.pieces)
        return sp.response(Status.OK)

    def _peers(self, owner: object, swarm: _Swarm) -> bytes:
        """Other live peers, those holding pieces first, at most MAX_PEERS_LISTED."""
        others = [m for o, m in swarm.members.items() if o is not owner]
        self._rng.shuffle(others)
        others.sort(key=lambda m: m.pieces == 0)
        entries = [sp.PeerEntry(m.host, m.port, m.pieces)
                   for m in others[: limits.MAX_PEERS_LISTED]]
        return sp.encode_peers(entries, swarm.manifest.count)
