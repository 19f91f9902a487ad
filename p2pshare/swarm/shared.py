"""The swarm tracker on a shared Redis store, so that several index servers track one set of
swarms.

Strategy (docs/scale-out.md#tracker-keys): the records and books of ``Tracker`` and
``Ledger``, kept in Redis and changed only by Lua scripts, each atomic, each starting with
the reap of dead nodes (``store.redis_client.Leased``: the lease, the reap and the drop on
close are the same as the index's, under the prefix ``p2pswarm:``). A member is keyed by
its connection (``node/N``); an address claim by ``port|host`` and held by one
connection on whichever node; every budget (claims per connection, per source address and
in all; swarms per connection; manifest bytes per source and in all) is a counter in
Redis checked inside the ANNOUNCE script, so the caps hold across nodes.

The piece census (``census.PieceCensus``) lives in Redis too: a ``BITFIELD`` of u32
holder counts per swarm, a hash ``count -> pieces`` (the tally) and the lowest count in
use, so FILES costs a few reads per swarm listed, as in memory. A member's pieces are
changed only by its own connection, which is on this node: the node keeps each of its
members' masks (``_held``), answers a HAVE of nothing new without Redis, and sends only the
pieces a HAVE adds, so a HAVE costs O(1) per piece it adds, as in memory. Masks are
stored as hexadecimal (what PEERS reads).

The protocol decisions are ``Tracker``'s: ``tracker.interpreted`` reads the request and
``tracker.refused`` maps a refusal, for both stores.
"""

from __future__ import annotations

import random
import sys
from array import array

from .. import limits
from ..errors import IntegrityError, OverBudget, P2PError, RemoteProtocolError, Status
from ..protocol import Request
from ..protocol import swarm as sp
from ..store.redis_client import DEFAULT_LEASE, Leased, StoreUnreachable
from . import _tracker_lua as lua
from .census import PieceCensus
from .ledger import TrackerBudget
from .manifest import Manifest
from .pieces import bits
from .rows import SwarmRow, members_shown, swarm_row
from .tracker import TrackerAnswer, chosen, interpreted, refused

# ANNOUNCE verdicts: what was refused, and whether it was this requester's share (409) or
# the tracker's (503).
_OVER = {
    "swarms": ("a connection may announce no more swarms", False),
    "srcbytes": ("its source address holds its manifest bytes", False),
    "claims": ("a connection may claim no more addresses", False),
    "srcclaims": ("its source address holds its addresses", False),
    "allbytes": ("the tracker holds its manifest bytes", True),
    "allclaims": ("the tracker holds its addresses", True),
}


class SharedTracker(Leased):
    """The swarm tracker in Redis, shared by every node given the same ``url``."""

    def __init__(self, url: str, *, lease: float = DEFAULT_LEASE,
                 budget: TrackerBudget | None = None, prefix: str = "p2pswarm:",
                 rng: random.Random | None = None) -> None:
        super().__init__(url, lua.DROP, lua.SCRIPTS, lease=lease, prefix=prefix)
        self.budget = budget or TrackerBudget()
        self._rng = rng or random.Random()
        # conn id -> swarm -> (pieces, the mask it holds): a member is changed only by its
        # own connection, which is on this node, so its mask here is the one in Redis.
        self._held: dict[str, dict[str, tuple[int, int]]] = {}

    async def handle(self, owner: object, request: Request, body: bytes, source: str = "",
                     named: bool = True) -> TrackerAnswer:
        """As ``Tracker.answer``, across nodes.

        Raises:
            StoreUnreachable: Redis cannot be reached (the connection closes).
        """
        msg = interpreted(request, body, source, named)
        if isinstance(msg, tuple):
            return msg
        try:
            return await self._apply(owner, source, msg)
        except (OverBudget, RemoteProtocolError, IntegrityError) as exc:
            return refused(msg, exc)

    async def _apply(self, owner: object, source: str, msg: sp.SwarmRequest) -> TrackerAnswer:
        if isinstance(msg, sp.ListFiles):
            return await self._files(msg)
        if isinstance(msg, sp.GetPiece):
            return sp.response(Status.BAD_REQUEST)  # pieces come from peers, not from here
        if isinstance(msg, sp.Announce):
            return await self._announce(owner, source, msg)
        if isinstance(msg, sp.GetManifest):
            found = await self.run("manifest", msg.swarm)
            return sp.response(Status.NOT_FOUND) if found is None else \
                sp.response(Status.OK, found.encode())
        if isinstance(msg, sp.GetPeers):
            return await self._peers(owner, msg.swarm)
        return await self._have(owner, msg)

    async def _announce(self, owner: object, source: str, msg: sp.Announce) -> TrackerAnswer:
        try:
            m: Manifest | None = Manifest.from_bytes(msg.manifest, msg.swarm)
            bad: P2PError | None = None
        except (RemoteProtocolError, IntegrityError) as exc:
            m, bad = None, exc
        b = self.budget
        facts = (m.size, m.piece_size, m.count, len(m.files), m.name) if m else (0, 0, 0, 0, "")
        cid = self.conn(owner)
        verdict = await self.write(
            owner, "announce", source, msg.swarm, msg.manifest, "1" if m else "0",
            f"{msg.port}|{msg.host}", *facts, b.claims_per_connection, b.claims_per_source,
            b.claims_in_all, b.swarms_per_connection, b.bytes_per_source, b.bytes_in_all)
        if verdict == "ok":
            assert m is not None
            if self.known(owner) == cid:  # not closed meanwhile
                self._held.setdefault(cid, {}).setdefault(msg.swarm, (m.count, 0))
            return sp.response(Status.OK)
        if verdict == "taken":
            return refused(msg, OverBudget("another connection's address"))
        if verdict == "bad":
            assert bad is not None
            raise bad
        if verdict == "lost":
            raise StoreUnreachable("this node's lease is lost")
        what, everyone = _OVER[str(verdict)]
        raise OverBudget(what, everyone=everyone)

    async def _have(self, owner: object, msg: sp.Have) -> TrackerAnswer:
        """As ``Tracker._have``; only the pieces new to the member go to Redis."""
        cid = self.known(owner)
        count, mask = self._held.get(cid or "", {}).get(msg.swarm, (-1, 0))
        if count < 0:
            return sp.response(Status.NOT_FOUND)  # ANNOUNCE comes first
        if msg.pieces >> count:
            return sp.response(Status.BAD_REQUEST)
        new = msg.pieces & ~mask
        if not new:
            return sp.response(Status.OK)
        assert cid is not None
        verdict = await self.run("have", cid, msg.swarm, f"{mask | new:x}", *bits(new))
        if verdict == "none":  # gone meanwhile (its node's lease lost)
            return sp.response(Status.NOT_FOUND)
        members = self._held.get(cid)
        if members is not None:  # not closed meanwhile
            members[msg.swarm] = (count, mask | new)
        return sp.response(Status.OK)

    async def drop_owner(self, owner: object) -> int:
        """As ``Leased.drop_owner``, and forget the masks of ``owner``'s members."""
        self._held.pop(self.known(owner) or "", None)
        return await super().drop_owner(owner)

    def forget_connections(self) -> None:
        super().forget_connections()
        self._held.clear()

    async def _peers(self, owner: object, swarm: str) -> TrackerAnswer:
        """Other live peers, those holding pieces first, at most MAX_PEERS_LISTED."""
        rows = await self.run("peers", swarm, self.known(owner) or "", limits.MAX_PEERS_LISTED)
        if not rows:
            return sp.response(Status.NOT_FOUND)
        others = [_member(row) for row in rows[1:]]
        return sp.response(Status.OK, sp.encode_peers(chosen(others, self._rng), int(rows[0])))

    async def swarm_rows(self, limit: int, buckets: int) -> tuple[int, list[SwarmRow]]:
        """How many swarms there are, and up to ``limit`` of them, most recently announced
        first, as the dashboard shows them (``rows.swarm_row``): one script for the list
        and one per swarm for its first ``rows.members_shown(limit)`` members
        (``_tracker_lua`` ``row``), however many a swarm has, and a GET of its census.

        Raises:
            StoreUnreachable: Redis cannot be reached.
        """
        rows = await self.run("files", "", 0, limit, "", "0")
        shown = []
        for i in range(1, len(rows), 10):
            entry = _entry(rows[i:i + 10])
            found = await self.run("row", entry.swarm, members_shown(limit))
            members = [_member(row) for row in found]
            counts = await self.get_bytes(f"sw:{entry.swarm}:n")
            census = PieceCensus.of_counts(_counts(counts or b"", int(rows[i + 3])))
            shown.append(swarm_row(entry, members, census, limit, buckets))
        return int(rows[0]), shown

    async def _files(self, msg: sp.ListFiles) -> TrackerAnswer:
        """As ``Tracker._files``: a page of swarms, most recently announced first."""
        low = msg.name.lower()
        prefix = "1" if msg.name and lua.HEX.match(low) else "0"
        rows = await self.run("files", msg.name, msg.offset, self.budget.files_listed,
                              low, prefix)
        lines = b"".join(_entry(rows[i:i + 10]).to_line() for i in range(1, len(rows), 10))
        return sp.response(Status.OK, lines, (("Total", str(rows[0])),))


def _counts(raw: bytes, pieces: int) -> array[int]:
    """The census's holder counts as Redis keeps them (``BITFIELD`` u32: big-endian; a
    piece no member ever held may lie past the string's end), one per piece."""
    counts = array("I", raw[:4 * pieces])
    if sys.byteorder == "little":
        counts.byteswap()
    counts.extend([0] * (pieces - len(counts)))
    return counts[:pieces]


def _member(row: str) -> sp.PeerEntry:
    """A member as the scripts keep it: ``held|hexmask|port|host``."""
    _, mask, port, host = row.split("|", 3)
    return sp.PeerEntry(host, int(port), int(mask, 16))


def _entry(row: list[str]) -> sp.FileEntry:
    """A FILES line from the script's ten fields: id, size, piece size, pieces, files, name,
    seeders, members, the census's lowest count and how many pieces have it."""
    swarm, size, piece_size, count, files, name, seeders, members, low, at_low = row
    n, held = int(count), int(members)
    copies = int(low) + (n - int(at_low)) / n if n else float(held)
    return sp.FileEntry(swarm, int(size), int(piece_size), int(seeders),
                        held - int(seeders), copies, name, int(files))
