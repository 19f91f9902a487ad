"""The registration server's peer list (docs/p2p-di.md#di-peer-record), pure and clock-driven.

Strategy: nothing ticks. A record stores when the peer last contacted the RS, and its TTL
is computed on demand from an injectable monotonic clock: ``ttl - (now - last_contact)``,
floored at 0 (the handout's "decremented periodically" without a timer). A peer is active
while its flag is set and its TTL is above 0.

``_active`` holds only the active records, ordered by last contact, so the record to expire
next is always first: expiry pops from the front, and PQuery walks only active peers, so
its cost does not grow with peers that left or timed out. ``_idle`` holds the inactive
ones in the order the RS found them inactive: a record idle for ``forget_after`` is
deleted from the front, at most ``DI_PURGE_STEP`` per request (docs/p2p-di.md#rs-budgets).

Budgets (docs/p2p-di.md#rs-budgets): each record belongs to the source address (IP) that
last registered it. A source at ``max_per_source`` records, or an RS at ``max_peers``,
makes room by forgetting its oldest inactive record (the source's own, or any); when every
record there is active the Register is refused. So one host cannot fill the RS, and the
RS's memory is bounded by the budgets, not by its history.

PQuery's list: ``_listed`` holds each active peer's ``<host> <port>`` line, and
``_listed_by`` the same lines per source address, in the order the peers became active. A
page is at most ``listed`` lines, from an offset, less the asker's line, in turns: one
peer of each source address (the source that listed a peer most recently first), each
source's newest first, then the next of each, and so on. So a host that registered a
thousand peers gets one line a turn like every other host, and cannot push them off the
first page, which is all that a download reads (docs/p2p-di.md#pquery-paging). A page
costs its offset plus its length, however many sources there are (``_in_turn``).

Cookies are random integers below 2**63, checked against every cookie this RS holds, so
none is given out twice while its record lives. Randomness, not a counter, keeps them
unique across an RS restart and past a forgotten record too (a counter would start again
at 1 and hand a new peer the cookie an old peer still holds), and makes another peer's
cookie unguessable, so no peer can send Leave or KeepAlive on another's behalf.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from itertools import islice
from typing import Protocol

from .. import limits
from ..protocol import di
from ..protocol.di import PeerAddr

Clock = Callable[[], float]


class Refusal(Enum):
    """Why the RS cannot act on a request."""

    UNKNOWN = "unknown cookie"  # never issued by this RS (or forgotten)
    INACTIVE = "not active"  # issued, but the peer left or its TTL ran out
    ADDRESS_TAKEN = "address in use"  # a live peer registered from elsewhere holds it
    SOURCE_FULL = "source over budget"  # max_per_source records from there, all active
    FULL = "registry full"  # max_peers records, all active


@dataclass(slots=True)
class PeerRecord:
    """One peer as the RS keeps it; ``view`` gives the handout's seven fields."""

    hostname: str
    cookie: int
    port: int
    active: bool  # the flag: cleared by Leave; TTL expiry is checked beside it
    last_contact: float  # monotonic seconds
    last_registered: float  # wall-clock seconds (shown as a date)
    source: str = ""  # the address (IP) that last registered it
    registrations: deque[float] = field(
        default_factory=lambda: deque(maxlen=limits.DI_MAX_REGISTRATIONS_KEPT)
    )  # monotonic times of registrations, oldest first


@dataclass(frozen=True, slots=True)
class PeerView:
    """The handout's seven fields of a peer record, as of one instant."""

    hostname: str
    cookie: int
    active: bool
    ttl: int
    port: int
    registrations: int  # in the last 30 days
    last_registered: datetime


@dataclass(frozen=True, slots=True)
class Page:
    """One PQuery reply: its lines, and where the next page starts (None: the last)."""

    body: bytes
    next_offset: int | None = None


@dataclass(frozen=True, slots=True)
class Budgets:
    """The RS's budgets (docs/p2p-di.md#rs-budgets); tests lower them."""

    max_peers: int = limits.DI_MAX_PEERS
    max_per_source: int = limits.DI_MAX_PEERS_PER_SOURCE
    forget_after: float = limits.DI_FORGET_AFTER
    listed: int = limits.DI_MAX_PEERS_LISTED


# What a store makes of one RS message: Register's cookie, PQuery's page, None (KeepAlive
# and Leave done), or why not.
Outcome = int | Page | Refusal | None


class RegistryStore(Protocol):
    """Where an RS keeps its peer list: ``Registry`` (this process's memory, the default)
    or ``registry.shared.SharedRegistry`` (Redis, several RS nodes; docs/scale-out.md)."""

    ttl: float

    async def start(self) -> None: ...

    async def apply(self, msg: di.RSRequest, source: str = "") -> Outcome: ...

    async def aclose(self) -> None: ...


class Registry:
    """Active and recently inactive peers of one RS.

    Args:
        ttl: seconds a peer stays active after its last contact (``limits.DI_TTL``).
        clock: monotonic seconds, for TTLs and the 30-day window (inject one in tests).
        wall: wall-clock seconds, for the registration date shown to people.
        budgets: records held, per source and in all; how long idle ones are kept; a page.
    """

    def __init__(
        self, ttl: float = limits.DI_TTL, clock: Clock = time.monotonic, wall: Clock = time.time,
        budgets: Budgets | None = None,
    ) -> None:
        self.ttl = ttl
        self.budgets = budgets if budgets is not None else Budgets()
        self._clock = clock
        self._wall = wall
        self._peers: dict[int, PeerRecord] = {}
        self._active: OrderedDict[int, PeerRecord] = OrderedDict()  # by last contact
        self._by_addr: dict[tuple[str, int], int] = {}  # (host, port) -> cookie, active only
        self._listed: dict[int, bytes] = {}  # cookie -> its PQuery line, active only
        self._listed_by: dict[str, dict[int, bytes]] = {}  # source -> its lines, oldest first
        self._listed_at: dict[int, str] = {}  # cookie -> the source it is listed under
        self._sources: dict[str, None] = {}  # sources with listed peers, latest to list last
        self._idle: OrderedDict[int, float] = OrderedDict()  # cookie -> found inactive at
        self._idle_of: dict[str, OrderedDict[int, None]] = {}  # source -> its idle cookies
        self._held: dict[str, int] = {}  # source -> records it holds

    # ----------------------------------------------------------------- messages
    def outcome(self, msg: di.RSRequest, source: str = "") -> Outcome:
        """The store's part of the answer to ``msg`` from ``source`` (an IP)."""
        if isinstance(msg, di.Register):
            rec = self.register(msg.host, msg.port, msg.cookie, source)
            return rec if isinstance(rec, Refusal) else rec.cookie
        if isinstance(msg, di.KeepAlive):
            return self.keep_alive(msg.cookie)
        if isinstance(msg, di.Leave):
            return self.leave(msg.cookie)
        return self.listing(msg.cookie, msg.offset)

    async def apply(self, msg: di.RSRequest, source: str = "") -> Outcome:
        """``outcome`` as the coroutine of ``RegistryStore``."""
        return self.outcome(msg, source)

    async def start(self) -> None:
        """Nothing to start: the list is in this process's memory."""

    async def aclose(self) -> None:
        """Nothing to close."""

    def register(self, host: str, port: int, cookie: int | None,
                 source: str = "") -> PeerRecord | Refusal:
        """Register a peer from ``source``: a new cookie the first time, the same one after.

        An address another active peer holds is refused (``ADDRESS_TAKEN``) unless that peer
        was registered from the same source (it restarted without its cookie): then it is
        replaced, so PQuery never lists one address twice. Over a budget: ``SOURCE_FULL``
        or ``FULL`` (module doc).
        """
        now = self._clock()
        self._expire()
        self._purge(now)
        rec = None if cookie is None else self._peers.get(cookie)
        if cookie is not None and rec is None:
            return Refusal.UNKNOWN
        refusal = self._claim(host, port, cookie, source) or self._room(rec, source)
        if refusal is not None:
            return refusal
        if rec is None:
            rec = PeerRecord(host, self._new_cookie(), port, False, now, self._wall(), source)
            self._peers[rec.cookie] = rec
            self._hold(rec)
        else:
            self._unlist(rec)  # its old address leaves _by_addr and the PQuery list
            self._move(rec, source)
            rec.hostname, rec.port, rec.last_registered = host, port, self._wall()
        rec.registrations.append(now)
        self._touch(rec, now)
        return rec

    def leave(self, cookie: int) -> Refusal | None:
        """Mark a peer inactive (a second Leave is harmless)."""
        rec = self._peers.get(cookie)
        if rec is None:
            return Refusal.UNKNOWN
        if rec.active:
            self._deactivate(rec, self._clock())
        return None

    def keep_alive(self, cookie: int) -> Refusal | None:
        """Reset an active peer's TTL."""
        rec = self._live(cookie)
        if isinstance(rec, Refusal):
            return rec
        self._touch(rec, self._clock())
        return None

    def query(self, cookie: int | None) -> list[PeerAddr] | Refusal:
        """Every active peer other than the asker, newest first, whose TTL is reset
        (anonymous: all). In-process use and tests; PQuery answers with ``listing``."""
        refusal = self._ask(cookie)
        if refusal is not None:
            return refusal
        peers = (self._peers[c] for c in reversed(self._listed) if c != cookie)
        return [PeerAddr(rec.hostname, rec.port) for rec in peers]

    def listing(self, cookie: int | None, offset: int = 0) -> Page | Refusal:
        """PQuery's reply: the ``listed`` active peers from ``offset`` (in turns by source
        address, each source's newest first: module doc; the asker counts in the offsets
        but is left out), one ``<host> <port>`` CRLF line each."""
        refusal = self._ask(cookie)
        if refusal is not None:
            return refusal
        end = offset + self.budgets.listed
        page = islice(self._in_turn(), offset, end)
        body = b"".join(line for c, line in page if c != cookie)
        return Page(body, end if end < len(self._listed) else None)

    # ----------------------------------------------------------------- reading
    def view(self, cookie: int) -> PeerView | None:
        rec = self._peers.get(cookie)
        return None if rec is None else self._view(rec, self._clock())

    def views(self) -> list[PeerView]:
        """Every record held, active or not, in the order first registered."""
        now = self._clock()
        return [self._view(rec, now) for rec in self._peers.values()]

    def active_count(self) -> int:
        self._expire()
        return len(self._active)

    def held(self, source: str | None = None) -> int:
        """Records held in all, or registered from ``source``."""
        return len(self._peers) if source is None else self._held.get(source, 0)

    # ----------------------------------------------------------------- internals
    def _new_cookie(self) -> int:
        while (cookie := 1 + secrets.randbelow(limits.DI_MAX_COOKIE)) in self._peers:
            pass  # a repeat is astronomically rare; draw again
        return cookie

    def _remaining(self, rec: PeerRecord, now: float) -> float:
        return self.ttl - (now - rec.last_contact)

    def _view(self, rec: PeerRecord, now: float) -> PeerView:
        remaining = self._remaining(rec, now) if rec.active else 0.0
        window = now - limits.DI_REGISTRATION_WINDOW
        while rec.registrations and rec.registrations[0] <= window:
            rec.registrations.popleft()
        return PeerView(rec.hostname, rec.cookie, remaining > 0, max(0, math.ceil(remaining)),
                        rec.port,
                        len(rec.registrations),
                        datetime.fromtimestamp(rec.last_registered, UTC))

    def _live(self, cookie: int) -> PeerRecord | Refusal:
        self._expire()
        rec = self._peers.get(cookie)
        if rec is None:
            return Refusal.UNKNOWN
        return rec if rec.active else Refusal.INACTIVE

    def _ask(self, cookie: int | None) -> Refusal | None:
        """A PQuery's check and contact: the asker must be active; its TTL is reset."""
        if cookie is not None:
            rec = self._live(cookie)
            if isinstance(rec, Refusal):
                return rec
            self._touch(rec, self._clock())
        self._expire()
        self._purge(self._clock())
        return None

    def _claim(self, host: str, port: int, cookie: int | None, source: str) -> Refusal | None:
        """May ``cookie`` (None: a new peer) from ``source`` take ``host:port``? A live
        holder registered from the same source is replaced; from elsewhere, it stays."""
        other = self._by_addr.get((host, port))
        if other is None or other == cookie:
            return None
        holder = self._peers[other]
        if holder.source != source:
            return Refusal.ADDRESS_TAKEN
        self._deactivate(holder, self._clock())
        return None

    def _room(self, rec: PeerRecord | None, source: str) -> Refusal | None:
        """Room for ``rec`` (None: a new record) under ``source``'s budget and the RS's."""
        if rec is not None and rec.source == source:
            return None
        if self._held.get(source, 0) >= self.budgets.max_per_source:
            idle = self._idle_of.get(source)
            if not idle:
                return Refusal.SOURCE_FULL
            self._forget(next(iter(idle)))
        if rec is None and len(self._peers) >= self.budgets.max_peers:
            if not self._idle:
                return Refusal.FULL
            self._forget(next(iter(self._idle)))
        return None

    def _hold(self, rec: PeerRecord) -> None:
        self._held[rec.source] = self._held.get(rec.source, 0) + 1

    def _release(self, rec: PeerRecord) -> None:
        left = self._held.pop(rec.source) - 1
        if left:
            self._held[rec.source] = left

    def _move(self, rec: PeerRecord, source: str) -> None:
        if rec.source != source:
            self._unidle(rec)
            self._release(rec)
            rec.source = source
            self._hold(rec)

    def _touch(self, rec: PeerRecord, now: float) -> None:
        if not rec.active:
            self._unidle(rec)
        rec.active, rec.last_contact = True, now
        self._active[rec.cookie] = rec
        self._active.move_to_end(rec.cookie)
        self._by_addr[rec.hostname, rec.port] = rec.cookie
        if rec.cookie not in self._listed:
            self._listed[rec.cookie] = PeerAddr(rec.hostname, rec.port).to_line() + b"\r\n"
            self._list_under(rec.cookie, rec.source)
        elif self._listed_at[rec.cookie] != rec.source:  # registered again from elsewhere
            self._unlist_source(rec.cookie)
            self._list_under(rec.cookie, rec.source)

    def _list_under(self, cookie: int, source: str) -> None:
        self._listed_by.setdefault(source, {})[cookie] = self._listed[cookie]
        self._listed_at[cookie] = source
        self._sources.pop(source, None)
        self._sources[source] = None

    def _unlist_source(self, cookie: int) -> None:
        source = self._listed_at.pop(cookie, None)
        if source is None:
            return
        lines = self._listed_by[source]
        del lines[cookie]
        if not lines:
            del self._listed_by[source], self._sources[source]

    def _in_turn(self) -> Iterator[tuple[int, bytes]]:
        """Every listed peer, one source address after another in turns (module doc). The
        first turn walks the sources lazily, so a page near the start touches only as
        many sources as it has lines."""
        left: list[Iterator[tuple[int, bytes]]] = []
        for source in reversed(self._sources):
            lines = reversed(self._listed_by[source].items())
            yield next(lines)  # never empty: an emptied source is dropped
            left.append(lines)
        while left:
            going = []
            for lines in left:
                item = next(lines, None)
                if item is not None:
                    yield item
                    going.append(lines)
            left = going

    def _unlist(self, rec: PeerRecord) -> None:
        self._listed.pop(rec.cookie, None)
        self._unlist_source(rec.cookie)
        if self._by_addr.get((rec.hostname, rec.port)) == rec.cookie:
            del self._by_addr[rec.hostname, rec.port]

    def _deactivate(self, rec: PeerRecord, now: float) -> None:
        rec.active = False
        self._active.pop(rec.cookie, None)
        self._unlist(rec)
        self._idle[rec.cookie] = now
        self._idle_of.setdefault(rec.source, OrderedDict())[rec.cookie] = None

    def _unidle(self, rec: PeerRecord) -> None:
        if self._idle.pop(rec.cookie, None) is not None:
            mine = self._idle_of[rec.source]
            del mine[rec.cookie]
            if not mine:
                del self._idle_of[rec.source]

    def _forget(self, cookie: int) -> None:
        rec = self._peers.pop(cookie)
        self._unidle(rec)
        self._release(rec)

    def _expire(self) -> None:
        """Flag every peer whose TTL reached 0; the oldest contact is always first."""
        now = self._clock()
        while self._active:
            rec = next(iter(self._active.values()))
            if self._remaining(rec, now) > 0:
                break
            self._deactivate(rec, now)

    def _purge(self, now: float) -> None:
        """Forget up to DI_PURGE_STEP records idle for ``forget_after``, oldest first."""
        for _ in range(limits.DI_PURGE_STEP):
            if not self._idle:
                return
            cookie, since = next(iter(self._idle.items()))
            if now - since < self.budgets.forget_after:
                return
            self._forget(cookie)
