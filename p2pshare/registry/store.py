"""The registration server's peer list (docs/p2p-di.md#di-peer-record), pure and clock-driven.

Strategy: nothing ticks. A record stores when the peer last contacted the RS, and its TTL
is computed on demand from an injectable monotonic clock: ``ttl - (now - last_contact)``,
floored at 0 (the handout's "decremented periodically" without a timer). A peer is active
while its flag is set and its TTL is above 0.

``_active`` holds only the active records, ordered by last contact, so the record to expire
next is always first: expiry pops from the front, and PQuery walks only active peers, so
its cost does not grow with peers that left or timed out.

PQuery's reply body is kept ready: ``_listed`` holds each active peer's ``<host> <port>``
line, in the order the peers became active, and ``_body`` those lines joined, built again
only after a peer joined or left the active set. A PQuery then costs one copy of the body
less the asker's line (C speed), not a Python step per active peer.

Cookies are random integers below 2**63, checked against every cookie this RS ever issued
(records are never deleted), so none is given out twice. Randomness, not a counter, keeps
them unique across an RS restart too (a counter would start again at 1 and hand a new
peer the cookie an old peer still holds), and makes another peer's cookie unguessable, so
no peer can send Leave or KeepAlive on another's behalf.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from .. import limits
from ..protocol.di import PeerAddr

Clock = Callable[[], float]


class Refusal(Enum):
    """Why the RS cannot act on a cookie."""

    UNKNOWN = "unknown cookie"  # never issued by this RS
    INACTIVE = "not active"  # issued, but the peer left or its TTL ran out


@dataclass(slots=True)
class PeerRecord:
    """One peer as the RS keeps it; ``view`` gives the handout's seven fields."""

    hostname: str
    cookie: int
    port: int
    active: bool  # the flag: cleared by Leave; TTL expiry is checked beside it
    last_contact: float  # monotonic seconds
    last_registered: float  # wall-clock seconds (shown as a date)
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


class Registry:
    """Active and past peers of one RS.

    Args:
        ttl: seconds a peer stays active after its last contact (``limits.DI_TTL``).
        clock: monotonic seconds, for TTLs and the 30-day window (inject one in tests).
        wall: wall-clock seconds, for the registration date shown to people.
    """

    def __init__(
        self, ttl: float = limits.DI_TTL, clock: Clock = time.monotonic, wall: Clock = time.time
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._wall = wall
        self._peers: dict[int, PeerRecord] = {}
        self._active: OrderedDict[int, PeerRecord] = OrderedDict()  # by last contact
        self._by_addr: dict[tuple[str, int], int] = {}  # (host, port) -> cookie, active only
        self._listed: dict[int, bytes] = {}  # cookie -> its PQuery line, active only
        self._body: bytes | None = None  # the lines of _listed joined; None: build again

    # ----------------------------------------------------------------- messages
    def register(self, host: str, port: int, cookie: int | None) -> PeerRecord | Refusal:
        """Register a peer: a new cookie the first time, the same one afterwards.

        A peer that registers an address an active peer holds replaces that peer (it
        restarted without its cookie), so PQuery never lists one address twice.
        """
        now = self._clock()
        if cookie is None:
            rec = PeerRecord(host, self._new_cookie(), port, True, now, self._wall())
            self._peers[rec.cookie] = rec
        elif (found := self._peers.get(cookie)) is None:
            return Refusal.UNKNOWN
        else:
            rec = found
            if (rec.hostname, rec.port) != (host, port):
                self._deactivate(rec)  # its old address leaves _by_addr and the PQuery list
            rec.hostname, rec.port, rec.last_registered = host, port, self._wall()
        rec.registrations.append(now)
        self._supersede(rec)
        self._touch(rec, now)
        return rec

    def leave(self, cookie: int) -> Refusal | None:
        """Mark a peer inactive (a second Leave is harmless)."""
        rec = self._peers.get(cookie)
        if rec is None:
            return Refusal.UNKNOWN
        self._deactivate(rec)
        return None

    def keep_alive(self, cookie: int) -> Refusal | None:
        """Reset an active peer's TTL."""
        rec = self._live(cookie)
        if isinstance(rec, Refusal):
            return rec
        self._touch(rec, self._clock())
        return None

    def query(self, cookie: int | None) -> list[PeerAddr] | Refusal:
        """The active peers other than the asker, whose TTL is reset (anonymous: all)."""
        refusal = self._ask(cookie)
        if refusal is not None:
            return refusal
        peers = (self._peers[c] for c in self._listed if c != cookie)
        return [PeerAddr(rec.hostname, rec.port) for rec in peers]

    def listing(self, cookie: int | None) -> bytes | Refusal:
        """``query`` as PQuery's reply body: one ``<host> <port>`` CRLF line per peer."""
        refusal = self._ask(cookie)
        if refusal is not None:
            return refusal
        if self._body is None:
            self._body = b"".join(self._listed.values())
        return self._body if cookie is None else _without(self._body, self._listed[cookie])

    # ----------------------------------------------------------------- reading
    def view(self, cookie: int) -> PeerView | None:
        rec = self._peers.get(cookie)
        return None if rec is None else self._view(rec, self._clock())

    def views(self) -> list[PeerView]:
        """Every record, active or not, in cookie order."""
        now = self._clock()
        return [self._view(rec, now) for rec in self._peers.values()]

    def active_count(self) -> int:
        self._expire()
        return len(self._active)

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
        return None

    def _touch(self, rec: PeerRecord, now: float) -> None:
        rec.active, rec.last_contact = True, now
        self._active[rec.cookie] = rec
        self._active.move_to_end(rec.cookie)
        self._by_addr[rec.hostname, rec.port] = rec.cookie
        if rec.cookie not in self._listed:
            self._listed[rec.cookie] = PeerAddr(rec.hostname, rec.port).to_line() + b"\r\n"
            self._body = None

    def _supersede(self, rec: PeerRecord) -> None:
        other = self._by_addr.get((rec.hostname, rec.port))
        if other is not None and other != rec.cookie:
            self._deactivate(self._peers[other])

    def _deactivate(self, rec: PeerRecord) -> None:
        rec.active = False
        self._active.pop(rec.cookie, None)
        if self._listed.pop(rec.cookie, None) is not None:
            self._body = None
        if self._by_addr.get((rec.hostname, rec.port)) == rec.cookie:
            del self._by_addr[rec.hostname, rec.port]

    def _expire(self) -> None:
        """Flag every peer whose TTL reached 0; the oldest contact is always first."""
        now = self._clock()
        while self._active:
            rec = next(iter(self._active.values()))
            if self._remaining(rec, now) > 0:
                break
            self._deactivate(rec)


def _without(body: bytes, line: bytes) -> bytes:
    """``body`` less its line ``line``. Every line ends in LF and holds no other (a host
    name has no white space), so a match of LF + ``line`` is that whole line."""
    if body.startswith(line):
        at = 0
    elif (found := body.find(b"\n" + line)) >= 0:
        at = found + 1
    else:
        return body  # not listed (cannot happen: the asker was just made active)
    view = memoryview(body)
    return b"".join((view[:at], view[at + len(line):]))
