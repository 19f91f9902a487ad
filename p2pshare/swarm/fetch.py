"""The downloader: every missing piece, from every holder at once, each one verified.

Strategy: one task polls the tracker (who holds what) and reports our verified pieces
(HAVE, batched: whatever was verified while the previous report was in flight or in the
``limits.HAVE_REPORT_INTERVAL`` since it was sent); one task
per connected peer keeps that peer's pipeline full with pieces from the ``Picker`` and
takes the answers. A piece is hashed as soon as it arrives: a good one is written at its
offset in the temporary file and is at once served by our own piece server; a bad one is
discarded, never asked of that peer again, and counts against the peer, which is dropped
after ``limits.MAX_BAD_PIECES``. Which peers get a link, and when a link is judged too
slow to keep (a Sybil trickler) or late (its pieces are released to other peers and it
gets no new request until it delivers), is decided by pure code (``roster``) given the
link's state and the time; a peer that has not yet delivered is probed with one request
at a time. Every task lives in one TaskGroup, which the task that verifies the last piece
ends (``_Complete``).

When the tracker connection fails and a ``rejoin`` was given, the download goes on with
the peers it is connected to while ``rejoin`` reconnects (with backoff, for as long as it
takes) and announces our pieces again; polling resumes once it is back. A download that
completes meanwhile ends normally: its last HAVE is then simply not sent.

Options: a shared ``RateLimiter`` paces the reads of every piece link (the process's
download rate limit); a download with no address of its own (``me`` None: a leech that
does not upload) never announces or reports pieces, so no peer is told to connect to it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .. import limits
from ..errors import LocalIOError, P2PError, PeerGone, RemoteProtocolError, Status
from ..host import join_hostport
from ..net.rate import RateLimiter
from ..protocol import Response, get_header
from ..protocol.swarm import PeerEntry, decode_ranges, uplink_full
from .client import TrackerClient
from .link import Address, PeerLink
from .manifest import Manifest
from .picker import Picker
from .pieces import full, sha256_matches, stripe
from .resume import save
from .roster import LinkState, LinkVerdict, Roster, judge, quiet_until
from .storage import PieceFile

log = logging.getLogger(__name__)


class _Complete(Exception):
    """Every piece is verified: ends the download's task group."""


class _Dropped(P2PError):
    """A peer is disconnected on purpose (bad pieces, or busy)."""


class _Slow(P2PError):
    """A peer is disconnected for delivering too slowly (``roster.judge``)."""


class WriteFailed(LocalIOError):
    """A verified piece could not be written to the temporary file (e.g. the disk is full):
    the download stops, keeping what it verified so far for a resume (exit status 7)."""


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot for progress displays."""

    done: int  # bytes of verified pieces
    size: int
    pieces: int
    count: int
    peers: int  # connected peers
    sources: int = 0  # peers that have sent good pieces to this download


class SwarmDownload:
    """Fetches the missing pieces of ``piece_file`` (resumed pieces already in ``have``).

    Args:
        piece_file: the temporary file; also served by our piece server meanwhile.
        tracker: our tracker connection (the swarm must already be announced).
        me: our own piece server's address as announced, never connected to; None when we
            serve nothing (then we never report pieces to the tracker).
        resume_path: where the verified pieces are recorded, or None.
        rng: source of the picker's random tie-breaks.
        rejoin: reconnects the tracker and announces us again (returns once back); without
            it a tracker failure ends the download.
        wanted: the pieces to fetch (of the files asked for); None: every piece.
        limiter: paces the reads of every piece link together, or None.
    """

    def __init__(self, piece_file: PieceFile, tracker: TrackerClient, me: Address | None, *,
                 resume_path: Path | None = None, rng: random.Random | None = None,
                 rejoin: Callable[[], Awaitable[None]] | None = None,
                 wanted: int | None = None, limiter: RateLimiter | None = None) -> None:
        self.file = piece_file
        self.manifest: Manifest = piece_file.manifest
        self.tracker = tracker
        self.me = me
        self.resume_path = resume_path
        self.rejoin = rejoin
        self.limiter = limiter
        self.wanted = full(self.manifest.count) if wanted is None else wanted
        # The picker counts the pieces we do not want as held: it never asks for them.
        self.picker = Picker(self.manifest.count, piece_file.have | ~self.wanted
                             & full(self.manifest.count), rng)
        self._sources: set[Address] = set()  # peers with a live link that is not late
        self.picker.sources = self._sources
        self.links: dict[Address, PeerLink | None] = {}  # None while connecting
        self.strikes: Counter[Address] = Counter()
        self.banned: set[Address] = set()
        self.roster = Roster(rng)
        self.learned: dict[Address, int] = {}  # pieces peers told us of on their links
        self.unreported = piece_file.have
        self.received = 0  # bytes of good pieces received this run
        self.wasted = 0  # bytes received but not used (duplicates, bad pieces)
        self._idlers: dict[asyncio.Future[None], Address] = {}  # peer tasks waiting for news
        self._wake_tracker = asyncio.Event()  # a piece to report, or a link slot freed
        self._listed: list[PeerEntry] = []  # the last PEERS answer
        self._slot_freed = False
        self._report_due = 0.0  # monotonic time before which no HAVE report is sent
        self._fed_at = 0.0  # monotonic time of the start, or of the last new good piece
        self._lifted_until = 0.0  # starved: the restraints are off until then
        # per listed downloader: the pieces it held when that last rose, and when
        self._grew: dict[Address, tuple[int, float]] = {}
        # per listed downloader: (when, pieces of its stripe it held) over the last
        # limits.SPARE_PACE_WINDOW, whence its pace (``pace``)
        self._stripe_counts: dict[Address, Samples] = {}
        # per seeder: (when first heard, pieces) of its Sent news over the last
        # limits.SENT_SECONDS, in eighths of it, whence ``picker.taken``
        self._sent_news: dict[Address, deque[tuple[float, int]]] = {}

    def progress(self) -> Progress:
        m, have = self.manifest, self.file.have & self.wanted
        connected = sum(1 for link in self.links.values() if link is not None)
        sources = sum(1 for record in self.roster.records.values() if record.delivered)
        return Progress(m.bytes_in(have), self._size, have.bit_count(),
                        self.wanted.bit_count(), connected, sources)

    @cached_property
    def _size(self) -> int:
        return self.manifest.bytes_in(self.wanted)

    async def run(self) -> None:
        """Return once every piece is verified in the temporary file.

        Raises:
            WriteFailed: a piece could not be written to the temporary file.
            P2PError, OSError: the tracker connection failed (peers' failures are not
                errors: their pieces are fetched from others).
        """
        try:
            if not self.picker.complete:
                try:
                    await until_complete(self._start)
                except BaseExceptionGroup as group:
                    raise first_error(group) from None
            try:
                await self._report(now=True)
            except (P2PError, OSError, TimeoutError):
                if self.rejoin is None:
                    raise
                log.info("[Swarm] complete; the index server is away, so it was not told")
        finally:  # also when interrupted: keep what was verified since the last save
            if self.resume_path is not None:
                save(self.resume_path, self.manifest, self.file.have)

    def _start(self, tg: asyncio.TaskGroup) -> None:
        self._fed_at = time.monotonic()
        tg.create_task(self._tracker_loop(tg))
        if self.resume_path is not None:
            tg.create_task(self._save_loop(self.resume_path))

    # ------------------------------------------------------------------ tracker
    async def _tracker_loop(self, tg: asyncio.TaskGroup) -> None:
        next_poll = 0.0
        while True:
            try:
                await self._report()
                if time.monotonic() >= next_poll:
                    self._listed = await self.tracker.peers(self.manifest)
                    next_poll = time.monotonic() + limits.PEERS_POLL_INTERVAL
                    self._update_peers(tg)
                elif self._slot_freed:  # fill it now from what we know, not at the next poll
                    self._update_peers(tg)
            except (P2PError, OSError, TimeoutError) as exc:
                if self.rejoin is None:
                    raise
                connected = sum(1 for link in self.links.values() if link is not None)
                log.warning("[Swarm] lost the index server (%s); going on with %d peer(s), "
                            "reconnecting", exc, connected)
                await self.rejoin()  # announces every piece we hold again
                next_poll = 0.0
                continue
            telling = self.unreported and self.me is not None
            due = min(next_poll, self._report_due) if telling else next_poll
            await _wait(self._wake_tracker, due - time.monotonic())
            self._wake_tracker.clear()

    async def _report(self, *, now: bool = False) -> None:
        """Tell the tracker of our new pieces, unless the last report was under
        ``limits.HAVE_REPORT_INTERVAL`` ago (``now``: whatever the time)."""
        pieces = self.unreported
        if not now and time.monotonic() < self._report_due:
            return
        # Forgotten only once told: a report cut short is sent again. Unannounced: never.
        if pieces and self.me is not None:
            self._report_due = time.monotonic() + limits.HAVE_REPORT_INTERVAL
            await self.tracker.have(self.manifest.id, pieces)
            self.unreported &= ~pieces

    def _listing(self) -> dict[Address, int]:
        """Every peer the last PEERS answer lists but us, with the pieces it holds."""
        return {(e.host, e.port): e.pieces for e in self._listed if (e.host, e.port) != self.me}

    def _update_peers(self, tg: asyncio.TaskGroup) -> None:
        listed = self._listing()
        for address in [a for a in self.picker.peers if a not in listed]:
            if address not in self.links:
                self.picker.remove_peer(address)
        holders = []
        for address, pieces in listed.items():
            if address in self.banned:
                continue
            pieces |= self.learned.get(address, 0)
            self.picker.set_peer(address, pieces)
            if pieces & self.picker.missing:
                holders.append(address)
        self._slot_freed = False
        now = time.monotonic()
        for address, news in list(self._sent_news.items()):
            self._taken(address, news, now)
        for address in self.roster.choose(holders, self.links, now):
            self.links[address] = None
            tg.create_task(self._peer(address))
        self._arrange(listed)
        self._notify()

    def _arrange(self, listed: dict[Address, int]) -> None:
        """Stripes and the leader (``picker``, rules 1 and 4) from what the tracker lists;
        no leader once a seeder's uplink is full (``Uplink: full``): each downloader then
        asks seeders for its own stripe."""
        whole = full(self.manifest.count)
        me = self.me or ("", 0)  # unlisted: stripe 0, which the first listed one shares
        downloaders = sorted([a for a, p in listed.items() if p != whole] + [me])
        if self.file.uplink_full:
            self.picker.leading, self.picker.leader = False, None
            self._stripes(downloaders, me, listed)
            return
        first = leader(downloaders, {**listed, me: self.file.have}, self.manifest.count)
        self.picker.leading = self.me is not None and first == me
        # Followed while it holds nothing yet (no link until then), or while we are
        # connected to it (or connecting) and it is not late: a member that only claims
        # pieces (a Sybil, a trickler) keeps no one from a seeder for long.
        link = self.links.get(first)
        followed = first != me and (not listed.get(first) or first in self.links
                                    and not (link and link.snubbed))
        self.picker.leader = first if followed else None
        if len(downloaders) > 1:  # the others share the stripes; the leader takes any piece
            downloaders.remove(first)
        self._stripes(downloaders, me, listed)

    def _stripes(self, downloaders: list[Address], me: Address,
                 listed: dict[Address, int]) -> None:
        """Our stripe among ``downloaders`` (``picker``, rule 1), sharing those of the
        downloaders that claim pieces we lack but never gave us one and that we hold no
        link to (nor are connecting to), and of those that gained no piece for
        ``limits.STRIPE_IDLE``: a peer that only claims ever more pieces at the tracker,
        but cannot be reached, reserves nothing."""
        now, grew, counts = time.monotonic(), self._grew, self._stripe_counts
        for table in (grew, counts):  # per listed downloader: forget the unlisted
            for gone in [a for a in table if a not in listed]:
                del table[gone]
        idle, missing, paces = [], self.picker.missing, []
        for rank, address in enumerate(downloaders):
            if address == me:
                paces.append(0.0)
                continue
            pieces = listed[address] | self.learned.get(address, 0)
            mine = pieces & stripe(rank, len(downloaders), self.manifest.count)
            paces.append(pace(counts.setdefault(address, deque()), mine.bit_count(), now,
                              (rank, len(downloaders))))
            held = pieces.bit_count()
            before = grew.get(address)
            if before is None or held > before[0]:
                grew[address] = before = (held, now)
            # It claims pieces we lack, never gave us one, and we hold no link to it
            # (unreachable, banned): what it claims, however it grows, helps no one here.
            unlinked = pieces & missing and address not in self.links \
                and not self.roster.tested(address)
            if unlinked or now - before[1] >= limits.STRIPE_IDLE:
                idle.append(rank)
        rank = downloaders.index(me) if me in downloaders else 0
        self.picker.set_stripe(rank, len(downloaders), tuple(idle), tuple(paces))

    async def _save_loop(self, path: Path) -> None:
        saved = self.file.have
        while True:
            await asyncio.sleep(limits.RESUME_SAVE_INTERVAL)  # periodic work, not a wait
            if self.file.have != saved:
                saved = self.file.have
                await asyncio.to_thread(save, path, self.manifest, saved)

    # ------------------------------------------------------------------ peers
    async def _peer(self, address: Address) -> None:
        link = None
        slow, wait = False, limits.PEER_RETRY_DELAY
        try:
            link = await PeerLink.connect(address, self.limiter)
            self.links[address] = link
            self._sources.add(address)
            await self._drive(link)
        except _Slow as exc:
            slow = True
            log.info("[Swarm] %s dropped as too slow: %s", join_hostport(*address), exc)
        except _Dropped as exc:
            log.info("[Swarm] %s dropped: %s", join_hostport(*address), exc)
            wait = limits.BUSY_RETRY_AFTER
        except (PeerGone, RemoteProtocolError, TimeoutError, OSError) as exc:
            log.info("[Swarm] %s: %s", join_hostport(*address), exc or type(exc).__name__)
        finally:
            if link is not None:
                link.close()
            self.links.pop(address, None)
            self._sources.discard(address)
            self.learned.pop(address, None)
            self._sent_news.pop(address, None)
            self.picker.remove_peer(address)
            self.roster.dropped(address, time.monotonic(), slow=slow, wait=wait)
            self._slot_freed = True
            self._wake_tracker.set()
            self._notify()

    async def _drive(self, link: PeerLink) -> None:
        while True:
            self._fill(link)
            if not link.queue:
                if link.snubbed:  # asked nothing until it delivers, and it owes nothing
                    raise _Slow("late, and what it owed ended without a good piece")
                await self._idle(link.address, self._patience(time.monotonic()))
                continue
            try:
                index, head, body = await link.read_piece(self._review(link))
            except TimeoutError:
                continue  # judged again at the top of the loop
            self._answer(link, index, head, body)
            link.client.recycle(body)  # hashed and written: its pages serve the next piece

    def _fill(self, link: PeerLink) -> None:
        if link.snubbed:
            return
        probe = not self.roster.tested(link.address)  # one request at a time until it delivers
        depth = 1 if probe else link.depth(self.manifest.piece_size)
        restrain = self._restrained(time.monotonic())
        while len(link.queue) < depth:
            index = self.picker.pick(link.address, restrain=restrain)
            if index is None:
                return
            link.request(self.manifest.id, index, self.manifest.length(index))

    def _review(self, link: PeerLink) -> float:
        """Judge ``link`` (``roster.judge``); returns when to judge it next: at once
        after every piece, so a link too young for any verdict is not judged until it
        can be (``roster.quiet_until``).

        Raises:
            _Slow: the link is dropped for slowness.
        """
        assert link.head_index is not None
        now = time.monotonic()
        quiet = quiet_until(link.head_since)
        if now < quiet:
            return quiet
        others = [other.rate for other in self.links.values()
                  if other and other is not link and other.rate and other.good]
        # Our own limit's share: over the links that deliver (a trickler counts for none).
        share = self.limiter.rate / (len(others) + 1) if self.limiter else None
        tested = self.roster.tested(link.address)
        state = LinkState(link.head_since, self.manifest.length(link.head_index),
                          link.progress, link.rate, tested,
                          self.roster.slow_drops(link.address),
                          self.picker.sole_source(link.address), self.roster.wanted(tested),
                          share)
        verdict = judge(state, others, now)
        if verdict.verdict is not LinkVerdict.KEEP:
            self._snub(link)
        if verdict.verdict is LinkVerdict.DROP:
            if link.wake_for_every_byte():  # the kernel may hold bytes we were not shown
                return now + limits.LOWAT_SECONDS
            raise _Slow(verdict.why)
        return verdict.again

    def _snub(self, link: PeerLink) -> None:
        """``link`` is late: its requests go to others too, and it gets no new one (and
        wakes us for every byte) until it delivers."""
        if not link.snubbed:
            log.info("[Swarm] %s is slow: its %d requests go to others too",
                     join_hostport(*link.address), len(link.queue))
            link.snubbed = True
            self._sources.discard(link.address)
            for index in link.queue:
                self.picker.release(index)
            self._notify()

    def _answer(self, link: PeerLink, index: int, head: Response, body: bytearray) -> None:
        self._learn(link.address, get_header(head.headers, "Have"))
        self._heard_sent(link.address, get_header(head.headers, "Sent"))
        if head.status == Status.OK and len(body) == self.manifest.length(index) \
                and sha256_matches(body, self.manifest.digests[index]):
            if not self.file.uplink_full and uplink_full(head):  # from a good source only
                log.info("[Swarm] %s: Uplink: full; every downloader asks seeders for its "
                         "stripe", join_hostport(*link.address))
                self.file.uplink_full = True  # and our answers say so too
                self._arrange(self._listing())
            self._good(link, index, body)
        elif head.status == Status.OK:
            self.wasted += len(body)
            self._strike(link, index, "failed its SHA-256 check")
        elif head.status == Status.NOT_FOUND:  # it claimed it and has it not: ask others
            self._strike(link, index, "was not found (404), though claimed")
        elif head.status == Status.BUSY:
            raise _Dropped("busy (503)")
        else:
            raise _Dropped(f"answered {head.status}")

    def _learn(self, address: Address, have: str | None) -> None:
        """A peer told us of pieces it now holds: use them before the tracker tells us."""
        if have:
            news = decode_ranges(have, self.manifest.count)
            self.learned[address] = self.learned.get(address, 0) | news
            held = self.picker.peers.get(address, 0)
            if news & ~held:
                self.picker.set_peer(address, held | news)
                self._notify()

    def _heard_sent(self, address: Address, text: str | None) -> None:
        """A seeder named pieces it began sending to other downloaders (Sent): they are
        not asked of it as first copies for ``limits.SENT_SECONDS`` (``picker.taken``)."""
        if not text and address not in self._sent_news:
            return
        news = self._sent_news.setdefault(address, deque())
        now = time.monotonic()
        pieces = decode_ranges(text, self.manifest.count) if text else 0
        if pieces and news and news[-1][0] > now - limits.SENT_SECONDS / 8:
            news[-1] = (news[-1][0], news[-1][1] | pieces)  # at most 9 entries: cheap ORs
        elif pieces:
            news.append((now, pieces))
        self._taken(address, news, now, pieces)

    def _taken(self, address: Address, news: deque[tuple[float, int]], now: float,
               added: int = 0) -> None:
        """``picker.taken`` of ``address`` from its Sent ``news`` still fresh at ``now``
        (``added``: what just joined it)."""
        before = self.picker.taken.get(address, 0)
        taken = before | added
        if news and news[0][0] <= now - limits.SENT_SECONDS:
            while news and news[0][0] <= now - limits.SENT_SECONDS:
                news.popleft()
            taken = 0
            for _, pieces in news:
                taken |= pieces
        if taken:
            self.picker.taken[address] = taken
        else:
            self.picker.taken.pop(address, None)
            del self._sent_news[address]
        if before & ~taken:  # pieces it may be asked for again
            self._notify()

    def _good(self, link: PeerLink, index: int, body: bytearray) -> None:
        link.snubbed = False
        self._sources.add(link.address)
        link.good += 1
        self.roster.delivered(link.address, len(body))
        if not self.picker.received(index, link.address):
            self.wasted += len(body)
            return
        try:
            self.file.write(index, body)
        except OSError as exc:  # our disk, not the peer: every peer would fail the same
            raise WriteFailed(f"cannot write {self.file.path}: {exc.strerror or exc}; the "
                              "verified pieces are kept: run the same command again to "
                              "resume", exc.errno) from exc
        self.received += len(body)
        self._fed_at = time.monotonic()
        self.unreported |= 1 << index
        if time.monotonic() >= self._report_due:
            self._wake_tracker.set()  # else the tracker task wakes when the report is due
        if self.picker.complete:
            raise _Complete
        self._notify()

    def _strike(self, link: PeerLink, index: int, what: str) -> None:
        """``link``'s peer failed us on a piece it claimed: never asked for it again, and
        dropped for the rest of the download after ``MAX_BAD_PIECES`` such failures (a
        wrong piece, or a 404: whether it lies or lost the file, its claims are void)."""
        self.picker.failed(index, link.address, corrupt=True)
        self.strikes[link.address] += 1
        log.warning("[Swarm] piece %d from %s %s (%d of %d allowed)", index,
                    join_hostport(*link.address), what, self.strikes[link.address],
                    limits.MAX_BAD_PIECES)
        self._notify()
        if self.strikes[link.address] >= limits.MAX_BAD_PIECES:
            self.banned.add(link.address)
            raise _Dropped("failed on pieces it claimed")

    def _restrained(self, now: float) -> bool:
        """Whether the picker's restraints hold (``pick(restrain=...)``): until we are
        starved, no new good piece for ``RESERVE_PATIENCE`` (a slow or stuck stripe owner,
        or a leader, holds us back); then they are off for as long, even as pieces come.
        While pieces come, however slowly, a seeder's upload is left to first copies and
        to the leader."""
        if now < self._lifted_until:
            return False
        if now - self._fed_at < limits.RESERVE_PATIENCE:
            return True
        self._lifted_until = now + limits.RESERVE_PATIENCE
        return False

    def _patience(self, now: float) -> float:
        """How long an idle peer task waits for news (``_idle``): until the restraints
        lift if they hold, else ``RESERVE_PATIENCE`` (news wakes it sooner)."""
        left = self._fed_at + limits.RESERVE_PATIENCE - now
        return left if left > 0 and now >= self._lifted_until else limits.RESERVE_PATIENCE

    async def _idle(self, address: Address, timeout: float) -> None:
        """Wait until ``_notify`` wakes the task of the link to ``address`` or ``timeout``
        seconds pass. A peer task waits here whenever it has nothing to ask for, and a
        good piece notifies: a future and a timer, without an Event to replace or a
        timeout context."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        timer = loop.call_later(timeout, _settle, waiter)
        self._idlers[waiter] = address
        try:
            await waiter
        finally:
            timer.cancel()
            del self._idlers[waiter]

    def _notify(self) -> None:
        """Wake every peer task waiting for something new to ask for (``_idle``) whose
        ``_fill`` may now pick a piece (``Picker.may_pick``, with the restraint ``_fill``
        would use): the others would find nothing, and are notified again when the picker
        learns more, or wake when their wait ends. (A leading downloader holds what most
        peers do: its links to them woke for every piece; so did every other
        downloader's link to a seeder left to the leader, or restrained.)"""
        now = time.monotonic()
        for waiter, address in self._idlers.items():
            link = self.links.get(address)
            if link is None:
                _settle(waiter)
            elif not link.snubbed and self.picker.may_pick(
                    address, restrain=self._restrained(now)):
                _settle(waiter)



Samples = deque[tuple[float, int, tuple[int, int]]]  # (when, held, its stripe): ``pace``


def pace(samples: Samples, held: int, now: float, which: tuple[int, int] = (0, 1)) -> float:
    """Pieces gained per second over the last ``limits.SPARE_PACE_WINDOW``, given ``held`` of
    the stripe ``which`` (rank, downloaders) at ``now``; ``samples`` keeps (time, held, stripe)
    across calls (one at or before the window's start). How fast a downloader fetches its stripe
    (``picker.set_stripe``). When its stripe changes (the list of downloaders did), the
    counts of the old one are moved by the difference, so that the pace carries on: what
    it held of another set of pieces is no gain nor loss."""
    if samples and samples[-1][2] != which:
        shift = held - samples[-1][1]
        moved = [(when, count + shift, which) for when, count, _ in samples]
        samples.clear()
        samples.extend(moved)
    samples.append((now, held, which))
    while len(samples) > 1 and samples[1][0] <= now - limits.SPARE_PACE_WINDOW:
        samples.popleft()
    since, before, _ = samples[0]
    return max(held - before, 0) / max(now - since, limits.PEERS_POLL_INTERVAL)


def leader(downloaders: list[Address], pieces: dict[Address, int], count: int) -> Address:
    """The downloader that leads (``picker``, rule 4): the first in ``downloaders``
    (address order, so that every downloader names the same one) holding no fewer than
    ``limits.LEADER_MARGIN`` of the ``count`` pieces less than the most any holds."""
    held = [pieces[a].bit_count() for a in downloaders]
    least = max(held) - count * limits.LEADER_MARGIN
    return next(a for a, n in zip(downloaders, held, strict=True) if n >= least)


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception a task group collected (what callers report)."""
    first = group.exceptions[0]
    return first_error(first) if isinstance(first, BaseExceptionGroup) else first


async def until_complete(start: Callable[[asyncio.TaskGroup], None]) -> None:
    """Run a download's task group, its tasks made by ``start``, until one of them raises
    ``_Complete`` (every piece verified), and end cancelled if this task was cancelled
    meanwhile. The group runs in a task of its own: a group that ends by a child's error
    raises it even when a cancel of its task came as it ended, and ``except* _Complete``
    would then drop the cancel (on 3.11 the group also leaves its own cancel counted, so
    the group's task cannot tell); this task's count is ours alone.

    Raises:
        asyncio.CancelledError: this task was cancelled.
        BaseExceptionGroup: a task failed (``first_error`` picks what to report).
    """
    async def group() -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                start(tg)
        except* _Complete:
            pass

    task = asyncio.current_task()
    before = task.cancelling() if task is not None else 0
    await asyncio.create_task(group())
    if task is not None and task.cancelling() > before:
        raise asyncio.CancelledError


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    """Wait until ``event`` is set or ``timeout`` seconds pass."""
    try:
        async with asyncio.timeout(max(timeout, 0)):
            await event.wait()
    except TimeoutError:
        pass
