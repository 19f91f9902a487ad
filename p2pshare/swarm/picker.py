"""The piece picker: which piece to ask of which peer next. Pure code, no I/O.

Strategy (the BitTorrent rules, on bit masks; see ``pieces``):

1. Rarest first: of the pieces a peer can give us and nobody has been asked for, take one
   held by the fewest peers, so that rare pieces spread before their holders leave.
   Ties go first to our *stripe*, then at random. Downloaders that know each other agree
   on stripes (piece index modulo their number, by their rank in address order): at the
   start, when the seed alone holds everything, each asks the seed for a different share
   of the pieces and gets the rest from the others, so the seed's upload, the scarce
   resource, carries each piece about once. Random ties alone would let downloaders that
   cannot yet see each other's requests ask the seed for the same pieces. So a seeder (a
   peer holding every piece that we never saw hold only some: a downloader that finished
   has an upload with nothing else to do, and is asked like any other) is
   asked only for first copies, pieces no downloader still downloading that we can get
   them from holds (what a peer we hold no live link to merely claims does not count:
   ``sources``; nor what one that finished holds, or a seed whose uplink is full would
   sit idle while we crawl at that one's upload); the rest
   come from those that hold them, as asking a seeder would spend its upload, what a
   swarm has least of, on second copies. And while some first copies are in others'
   stripes (their owners are asking for them), only our stripe's, in its order (from
   the owner's start, rank * count / downloaders, wrapping round: after the stripes
   change, an owner's first picks seldom lie where another's requests are in flight,
   unless every rank moved), even with nothing
   in flight: the others' reach us relayed. Once ours are all asked for, we relieve
   owners that are behind (a TCP flow from the seeder can get a quarter of the others'
   rate for seconds): their first copies in our *backup share* (``pieces.backup``:
   disjoint between downloaders), from the end of their order backwards, but never the
   first of a stripe's order, which its owner is fetching now or will have asked for
   before we hear of it (``limits.SPARE_MARGIN``, more for an owner that gains pieces fast:
   ``set_stripe(paces=...)``). The stripe of a downloader that has gained no
   piece for a while (gone, behind NAT, a Sybil, or wanting only some files) is shared
   by the others (the caller tells: ``set_stripe(idle=...)``), and the caller lifts the
   restraint when we are starved (``restrain=False``).
2. Reassignment: a request past its deadline (the downloader decides) is *released*: the
   piece may then be asked of another peer too, while the slow request stays in flight.
3. Endgame: when every missing piece that anyone holds has been asked for, a peer with a
   free slot asks for a piece already in flight elsewhere (fewest requests first, at most
   ``endgame_max`` at once), so that the last pieces do not wait on the slowest peer.
   The first good copy wins; later copies are dropped by the caller. A seeder is not
   asked for a second copy of a piece in flight from a downloader still downloading (a
   seeder's upload is what a swarm has least of; a late request is released, and then
   anyone may be asked).
4. The leader: the downloader that holds the most pieces (decided by the caller from what
   the tracker lists, so that downloaders agree; ``limits.LEADER_MARGIN``) gets every
   seeder's upload: it asks a seeder for any piece it lacks (``leading``: the restraint
   of 1 and 3 is lifted), while the others ask a seeder for nothing (``leader``: the
   restraint of 1 made whole, which the caller lifts when we are starved, as in 1).
   The others ask the leader only for pieces of their own stripe
   (stripes are shared among the others) that no other downloader still downloading
   holds (one that finished is asked for any piece, and spares no one), and trade the
   rest among themselves. So each piece leaves a seeder once, for the leader, and goes
   on from the leader once, to its stripe's owner: the leader finishes first, at the
   rate a seeder alone could give one downloader, and then seeds (``fetch --seed``) or
   leaves; the next most complete downloader leads. Where the downloaders' uploads are
   the bottleneck, they finish one after another instead of all together at the end
   (as BitTorrent's unchoking of the fastest peers makes them), and a seeder's upload
   still carries each piece about once.
   Not when the network limits a seeder's upload: a seeder that finds so says ``Uplink:
   full`` on its answers (``seeder``), and a downloader that hears it (from the seeder,
   or repeated by another downloader) has no leader from then on (the caller leaves
   ``leader`` None): each asks seeders for its own stripe, as in 1. A single flow to a
   leader whose own uplink is full of what it relays carries less than the seeder's
   link (its ACKs queue behind its uploads); one flow per downloader fills it.

A peer that sent a piece failing its hash is never asked for that piece again.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable
from collections.abc import Set as AbstractSet

from .. import limits
from .pieces import (
    Availability,
    backup,
    between,
    bits,
    first_from,
    full,
    last_before,
    random_bit,
    stripe,
)

PeerId = Hashable  # whatever the caller tells its peers apart by (the downloader: an address)
_UP, _DOWN = 1, -1  # the orders a seeder's first copies are asked in (rule 1)


class Picker:
    """Request bookkeeping for one download of ``count`` pieces.

    Args:
        count: pieces in the file.
        have: pieces already verified (a resumed download).
        rng: source of the random tie-break.
        endgame_max: most requests for one piece at once in endgame.
    """

    def __init__(self, count: int, have: int = 0, rng: random.Random | None = None,
                 endgame_max: int = limits.ENDGAME_MAX_REQUESTS) -> None:
        self.count = count
        self.whole = full(count)  # every piece: what a seeder holds
        self.have = have
        self.availability = Availability(count)
        self.rng = rng or random.Random()
        self.endgame_max = endgame_max
        self.peers: dict[PeerId, int] = {}  # what each known peer holds
        self.requests: dict[int, set[PeerId]] = {}  # piece -> peers asked for it now
        self.asked: dict[PeerId, int] = {}  # peer -> pieces asked of it now
        self.requested = 0  # pieces with at least one request in flight
        self.released = 0  # requested pieces that another peer may be asked for too
        self.excluded: dict[PeerId, int] = {}  # peer -> pieces it sent corrupted
        self.stripe = (0, 1)  # (our rank, downloaders): our share of the tie-breaks
        self.leading = False  # we hold the most pieces of any downloader (rule 4)
        self.leader: PeerId | None = None  # the downloader that does, if another (rule 4)
        # The peers we can get pieces from now (the caller's live links); None: every peer.
        # What others merely claim (a peer behind NAT, gone, a Sybil) is no first copy.
        self.sources: AbstractSet[PeerId] | None = None
        # Per seeder: pieces it told us it began sending to other downloaders lately (its
        # Sent news, kept fresh by the caller): no first copies of it (rule 1).
        self.taken: dict[PeerId, int] = {}
        self._own = self._stripe_mask = full(count)  # our stripe; with the idle ones'
        self._idle: tuple[int, ...] = ()  # ranks of downloaders whose stripes we share
        # By rank (alone, so far): its stripe, where its owner begins it, and how many of
        # its first copies we leave the owner when we relieve it.
        self._stripes: tuple[int, ...] = (self.whole,)
        self._starts: tuple[int, ...] = (0,)
        self._margins: tuple[int, ...] = (limits.SPARE_MARGIN,)
        self._backup = 0  # the share of others' stripes we may relieve them of
        self._downloading: set[PeerId] = set()  # peers seen holding some pieces, not all

    def set_stripe(self, rank: int, downloaders: int, idle: tuple[int, ...] = (),
                   paces: tuple[float, ...] = ()) -> None:
        """Prefer pieces whose index is ``rank`` modulo ``downloaders`` among equals; also
        those of the ranks in ``idle``, downloaders that fetch nothing of their stripes
        (gone, behind NAT, Sybils, or wanting only some files): nobody else asks for
        them. ``paces``: by rank, the pieces of its stripe each downloader gained per
        second lately, which sets how many of the first copies first in its stripe's
        order we leave it when we relieve it of the rest (rule 1,
        ``limits.SPARE_SECONDS``)."""
        if not 0 <= rank < downloaders:
            return
        if (rank, downloaders, idle) != (*self.stripe, self._idle):
            self.stripe, self._idle = (rank, downloaders), idle
            self._stripes = tuple(stripe(r, downloaders, self.count)
                                  for r in range(downloaders))
            self._starts = tuple(r * self.count // downloaders for r in range(downloaders))
            self._own = self._stripe_mask = self._stripes[rank]
            for r in idle:
                self._stripe_mask |= self._stripes[r]
            self._backup = backup(rank, downloaders, self.count)
        self._margins = tuple(
            limits.SPARE_MARGIN + math.ceil(pace * limits.SPARE_SECONDS)
            for pace in (*paces[:downloaders], *[0.0] * (downloaders - len(paces))))

    # ------------------------------------------------------------------ peers
    def set_peer(self, peer: PeerId, mask: int) -> None:
        """``peer`` holds ``mask`` (replaces what it held before)."""
        old = self.peers.get(peer, 0)
        if mask == old and peer in self.peers:
            return
        self.availability.remove(old)
        self.availability.add(mask)
        self.peers[peer] = mask
        if mask and mask != self.whole:
            self._downloading.add(peer)

    def remove_peer(self, peer: PeerId) -> None:
        """``peer`` left: forget what it holds and what was asked of it."""
        self.availability.remove(self.peers.pop(peer, 0))
        self._downloading.discard(peer)
        self.taken.pop(peer, None)
        for index in bits(self.asked.get(peer, 0)):
            self._end_request(index, peer)
        self.asked.pop(peer, None)

    # ------------------------------------------------------------------ picking
    @property
    def missing(self) -> int:
        return self.whole & ~self.have

    @property
    def complete(self) -> bool:
        return self.missing == 0

    @property
    def endgame(self) -> bool:
        """Every missing piece that some peer holds has been asked for."""
        held = ~self.availability.levels[0]
        return not self.missing & held & ~self.requested

    def pick(self, peer: PeerId, *, restrain: bool = True) -> int | None:
        """The next piece to ask of ``peer``, recorded as requested; None if none fits.

        ``restrain=False`` lifts, for this pick, the seeder restraint (rule 1: first copies,
        our stripe's first) and the leader's (rule 4: a seeder left to the leader, the
        leader spared).
        """
        found = self._open(peer, restrain)
        if found is None:
            return None
        theirs, fresh, order = found
        if fresh and order:  # a seeder's first copies, in stripe order (rule 1)
            index = first_from(fresh, self._starts[self.stripe[0]]) if order == _UP \
                else fresh.bit_length() - 1
            return self._ask(index, peer)
        if fresh:
            rarest = self.availability.rarest(fresh)
            ours = rarest & self._stripe_mask
            return self._ask(random_bit(ours or rarest, self.rng), peer)
        again = theirs & self.released
        if again:
            return self._ask(random_bit(self.availability.rarest(again), self.rng), peer)
        if theirs and self.endgame:
            return self._endgame_pick(theirs, peer)
        return None

    def may_pick(self, peer: PeerId, *, restrain: bool = True) -> bool:
        """Whether ``pick(peer, restrain=restrain)`` may find a piece now: False only when
        it would return None (in endgame it may still find none), so that a task waiting
        for a piece to ask of ``peer`` need not be woken. Records nothing and draws no
        random number. (It is False even for a peer holding pieces we lack: a seeder left
        to the leader, or restrained to first copies, holds pieces that ``pick`` will not
        ask of it yet.)"""
        found = self._open(peer, restrain)
        if found is None:
            return False
        theirs, fresh, _ = found
        return bool(fresh or theirs & self.released or theirs and self.endgame)

    def _open(self, peer: PeerId, restrain: bool) -> tuple[int, int, int] | None:
        """(the pieces ``pick`` may ask of ``peer``, those of them nobody is asked for (in
        relief, ``_DOWN``: of each stripe, the last in its owner's order that we may take),
        the order to take those in: ``_UP``, ``_DOWN`` or 0 for rarest first), after the
        restraints of rules 1 and 4 (``restrain``); None when a restraint leaves nothing
        to ask of ``peer`` now."""
        theirs = self.peers.get(peer, 0) & self.missing & ~self.excluded.get(peer, 0)
        theirs &= ~self.asked.get(peer, 0)
        if restrain and peer == self.leader:  # spared: our stripe, that no other has
            theirs &= self._stripe_mask & ~self._others_hold(peer)
        fresh = theirs & ~self.requested
        if fresh and restrain and not self.leading and self._seeding(peer):
            if self.leader is not None:
                return None  # a seeder's upload goes to the leader (rule 4)
            # First copies only (rule 1): what no downloader still downloading that we
            # can get it from holds, nor is being sent one (``taken``); and
            # while some of those are in others' stripes (their owners are asking for
            # them), our stripe's in its order, then our backup share of theirs from
            # the end of their order.
            first = self.missing & ~self._others_hold(peer) & ~self.taken.get(peer, 0)
            if not first & ~self._stripe_mask:
                return theirs, fresh & first, 0
            if fresh & first & self._own:
                return theirs, fresh & first & self._own, _UP
            if fresh & first & self._stripe_mask:  # idle owners': shared, at random
                return theirs, fresh & first & self._stripe_mask, 0
            return theirs, self._spares(first, fresh & first), _DOWN
        return theirs, fresh, 0

    def _spares(self, first: int, fresh: int) -> int:
        """Of the first copies ``fresh`` (among ``first``), the last in its owner's order
        of each other stripe that we may take (rule 1): in our backup share, with no fewer
        than its margin of the stripe's first copies before it in that order, which its
        owner is fetching now or will have asked for before we hear of it
        (``set_stripe``). The last of a stripe alone: an earlier one has fewer before it;
        ``pick`` takes the highest index of these. A few big-int
        operations a stripe, however large the margins."""
        wanted = fresh & self._backup & ~self._stripe_mask
        spares = 0
        for owned, start, margin in zip(self._stripes, self._starts, self._margins,
                                        strict=True) if wanted else ():
            if wanted & owned:
                top = last_before(wanted & owned, start)
                if between(first & owned, start, top) >= margin:
                    spares |= 1 << top
        return spares

    def sole_source(self, peer: PeerId) -> bool:
        """Whether ``peer`` alone holds some piece we lack: no other peer we can get it
        from (``sources``) holds it, or all that do sent it corrupted."""
        others = self._others_hold(peer, seeders=True)
        return bool(self.peers.get(peer, 0) & self.missing & ~others
                    & ~self.excluded.get(peer, 0))

    def _seeding(self, peer: PeerId) -> bool:
        """Whether ``peer`` is a seeder whose upload the restraints spare: it holds every
        piece, and we never saw it hold only some (a downloader that finished has an
        upload with nothing else to do)."""
        return self.peers.get(peer) == self.whole and peer not in self._downloading

    def _others_hold(self, but: PeerId, *, seeders: bool = False) -> int:
        """Pieces some peer other than ``but`` can give us: one of ``sources`` (all peers
        while that is None) holds it and did not send it corrupted (peers holding every
        piece left out unless ``seeders``: a seeder, or a downloader that finished, whose
        pieces neither spare a seeder nor the leader, rule 1 and 4)."""
        whole, held, sources = self.whole, 0, self.sources
        for peer, mask in self.peers.items():
            if peer != but and (seeders or mask != whole) and (
                    sources is None or peer in sources):
                void = self.excluded.get(peer)
                held |= mask & ~void if void else mask
        return held

    def _endgame_pick(self, theirs: int, peer: PeerId) -> int | None:
        if self._seeding(peer) and not self.leading:  # a seeder: not for pieces a
            # downloader still downloading sends (rule 3)
            whole = self.whole
            for other, asked in self.asked.items():
                if self.peers.get(other) != whole:
                    theirs &= ~asked
        fewest = self.endgame_max
        choices: list[int] = []
        for index in bits(theirs):
            asked = len(self.requests.get(index, ()))
            if asked >= self.endgame_max:
                continue
            if asked < fewest:
                fewest, choices = asked, [index]
            elif asked == fewest:
                choices.append(index)
        return self._ask(self.rng.choice(choices), peer) if choices else None

    def _ask(self, index: int, peer: PeerId) -> int:
        bit = 1 << index
        self.requests.setdefault(index, set()).add(peer)
        self.asked[peer] = self.asked.get(peer, 0) | bit
        self.requested |= bit
        return index

    # ------------------------------------------------------------------ outcomes
    def received(self, index: int, peer: PeerId) -> bool:
        """A verified copy of ``index`` came from ``peer``; False if we already had it."""
        self._end_request(index, peer)
        bit = 1 << index
        if self.have & bit:
            return False
        self.have |= bit
        for other in self.requests.pop(index, set()):
            self.asked[other] &= ~bit
        self.requested &= ~bit
        self.released &= ~bit
        return True

    def failed(self, index: int, peer: PeerId, *, corrupt: bool = False) -> None:
        """The request for ``index`` to ``peer`` ended without a good copy."""
        self._end_request(index, peer)
        if corrupt:
            self.excluded[peer] = self.excluded.get(peer, 0) | (1 << index)

    def release(self, index: int) -> None:
        """The request for ``index`` is late: another peer may be asked for it too."""
        if self.requested >> index & 1:
            self.released |= 1 << index

    def _end_request(self, index: int, peer: PeerId) -> None:
        bit = 1 << index
        if peer in self.asked:
            self.asked[peer] &= ~bit
        askers = self.requests.get(index)
        if askers is None:
            return
        askers.discard(peer)
        if not askers:
            del self.requests[index]
            self.requested &= ~bit
            self.released &= ~bit
