"""Which peers a download keeps links to, and when a link loses its slot. Pure code, no I/O.

Strategy: Sybil members, fake peers that register with the tracker, accept a downloader's
connections and trickle a byte now and then, must not hold its link slots (issue #12: 32 of
them held all ``MAX_PEER_CONNECTIONS``, and the download waited for each to fall silent).
The downloader asks this module, giving it the time (``now``); it does the I/O.

* **Whom to connect to** (``Roster.choose``). A peer that has not yet delivered a good
  piece to this download is *untested*: at most ``limits.MAX_UNTESTED_LINKS`` untested
  links are open at once, each a probe with one request in flight, so the other slots stay
  for peers that deliver. Peers that delivered come first (fewest slow drops, then most
  bytes); untested ones follow, those on the hosts we hold the fewest links to and that
  were dropped for slowness least first, at random among equals: fakes registered from
  one host queue behind each other instead of in front of honest peers on other hosts.
* **When a link goes** (``judge``). A link's *progress* is what its oldest request's
  answer has delivered per second since it began to be served. From ``LINK_JUDGE_AFTER``
  seconds on (from its piece deadline for a peer that delivered before), a link below the
  *bar* is dropped: ``MIN_LINK_RATE``, the floor (under our own download limit at most
  half of what it leaves the link); and while a peer waits for the slot a drop would free
  (``Roster.wanted``), 1/``SLOW_LINK_FRACTION`` of the median rate of the other links
  that delivered good pieces, if higher. Dropping a link frees its slot and loses a source: an
  honest relay whose upload many downloaders share (a FIFO uplink gives some flows a
  tenth of the others' rate) is kept while nobody needs the slot, judged by the floor and
  its deadline (a trickler still goes: under the floor when judged, above it once it
  owes its piece). Past the piece deadline (``PIECE_DEADLINE_*``) its requests are
  released to other peers. Past twice the deadline's time (four times, eight times ...
  for a peer dropped for slowness before) it is dropped too, unless it is a tested peer
  and no other link delivers: an honest slow peer that is all we have stays while it is
  above the floor; a trickler under it goes within a second, above it within twice its
  deadline (4 s at the least). A link to the only holder of pieces we lack (a
  seeder whose upload is shared among many, as at a swarm's start) is judged only by the
  floor, ``MIN_LINK_RATE``: dropping it would leave those pieces with nobody, and a fake
  claiming them still goes when it trickles below the floor.
* **How long it stays away** (``Roster.dropped``): ``PEER_RETRY_DELAY``, or a 503's
  Retry-After; a peer dropped for slowness ``PEER_RETRY_DELAY`` the first time and twice
  as long at each further drop (``backoff.Backoff``), up to ``SLOW_PEER_MAX_DELAY``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from .. import limits
from ..backoff import Backoff

PeerAddress = tuple[str, int]  # (host, port) as the tracker lists it


def _slow_backoff() -> Backoff:
    return Backoff(limits.PEER_RETRY_DELAY, limits.SLOW_PEER_MAX_DELAY, jitter=0.0)


@dataclass(slots=True)
class PeerHistory:
    """What one download learned of one peer."""

    delivered: int = 0  # bytes of good pieces it sent
    slow: int = 0  # times its link was dropped for slowness
    retry_at: float = 0.0  # not connected to again before this time
    backoff: Backoff = field(default_factory=_slow_backoff)


class Roster:
    """The peers of one download: their records, and which to connect to next."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.records: dict[PeerAddress, PeerHistory] = {}
        self.slow_hosts: Counter[str] = Counter()  # drops for slowness, per host
        self.rng = rng or random.Random()
        # What the last ``choose`` left out of the peers ready then: proven ones (for want
        # of room), untested ones, and whether a probe was still free (then room was what
        # they lacked). ``wanted`` reads it.
        self._left: tuple[int, int, bool] = (0, 0, True)

    def tested(self, address: PeerAddress) -> bool:
        """Whether ``address`` has delivered a good piece to this download."""
        record = self.records.get(address)
        return record is not None and record.delivered > 0

    def slow_drops(self, address: PeerAddress) -> int:
        record = self.records.get(address)
        return record.slow if record is not None else 0

    def choose(self, candidates: Iterable[PeerAddress], linked: Collection[PeerAddress],
               now: float) -> list[PeerAddress]:
        """Of ``candidates`` (peers holding pieces we lack), those to connect to now, in
        order, given the peers ``linked`` (connected or connecting)."""
        ready = [a for a in candidates if a not in linked and now >= self._retry_at(a)]
        room = limits.MAX_PEER_CONNECTIONS - len(linked)
        proven = sorted((a for a in ready if self.tested(a)),
                        key=lambda a: (self.records[a].slow, -self.records[a].delivered))
        chosen = proven[:room]
        picked = len(chosen)  # proven ones; probes follow
        probes = limits.MAX_UNTESTED_LINKS - sum(1 for a in linked if not self.tested(a))
        fresh = [a for a in ready if not self.tested(a)]
        self.rng.shuffle(fresh)
        hosts = Counter(a[0] for a in (*linked, *chosen))
        for _ in range(max(0, min(room - len(chosen), probes))):
            if not fresh:
                break
            best = min(fresh, key=lambda a: (hosts[a[0]], self.slow_hosts[a[0]]))
            fresh.remove(best)
            chosen.append(best)
            hosts[best[0]] += 1
        self._left = (len(proven) - picked, len(fresh), probes > len(chosen) - picked)
        return chosen

    def wanted(self, tested: bool) -> bool:
        """Whether dropping a link (to a peer that delivered, if ``tested``) would let in
        a peer the last ``choose`` left waiting: a proven one takes any freed slot; an
        untested one needs a probe too, which only an untested link's drop frees while
        the probes are all in use."""
        proven, untested, probe_free = self._left
        return proven > 0 or untested > 0 and (not tested or probe_free)

    def delivered(self, address: PeerAddress, count: int) -> None:
        """``address`` sent ``count`` bytes of a good piece."""
        self._record(address).delivered += count

    def dropped(self, address: PeerAddress, now: float, *, slow: bool = False,
                wait: float | None = None) -> float:
        """The link to ``address`` ended (``slow``: dropped for slowness; ``wait``: how long
        the peer asked us to stay away). Returns the seconds before it may be tried again."""
        record = self._record(address)
        if slow:
            record.slow += 1
            self.slow_hosts[address[0]] += 1
            delay = record.backoff.next_delay()
        else:
            delay = limits.PEER_RETRY_DELAY if wait is None else wait
        record.retry_at = now + delay
        return delay

    def _retry_at(self, address: PeerAddress) -> float:
        record = self.records.get(address)
        return record.retry_at if record is not None else 0.0

    def _record(self, address: PeerAddress) -> PeerHistory:
        record = self.records.get(address)
        if record is None:  # made only when needed: a good piece's ``delivered`` asks
            record = self.records[address] = PeerHistory()
        return record


class LinkVerdict(Enum):
    KEEP = "keep"
    RELEASE = "release"  # past its piece deadline: its requests go to other peers too
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class LinkState:
    """What a link with a request in flight is judged by."""

    head_since: float  # when its oldest request began to be served
    head_length: int  # bytes that request's answer body brings
    progress: int  # bytes of that answer received so far
    rate: float | None = None  # its own measured rate, once a piece arrived on it
    tested: bool = False  # its peer delivered a good piece to this download
    slow: int = 0  # times its peer was dropped for slowness before
    sole: bool = False  # its peer alone holds pieces we lack (as far as we know)
    wanted: bool = False  # a peer waits for the slot its drop would free (``Roster.wanted``)
    # What our own download limit leaves it, bytes per second (the limit over it and the
    # other links that delivered good pieces), or None without a limit: the floor is at
    # most half of it, so no link is dropped for the pace we hold it to.
    share: float | None = None


@dataclass(frozen=True, slots=True)
class Judgement:
    """``verdict``, and when to judge the link again if no answer comes first."""

    verdict: LinkVerdict
    again: float
    why: str = ""


def piece_deadline(head_since: float, length: int, rates: Sequence[float]) -> float:
    """When a request for ``length`` bytes that began at ``head_since`` is late:
    ``PIECE_DEADLINE_FACTOR`` times what the median of ``rates`` needs for it."""
    rate = _median(rates) if rates else limits.ASSUMED_RATE
    return head_since + max(limits.PIECE_DEADLINE_MIN,
                            limits.PIECE_DEADLINE_FACTOR * length / rate)


def floor(share: float | None = None) -> float:
    """Bytes per second below which a link goes whoever waits: ``MIN_LINK_RATE``, or half
    of ``share``, what our own download limit leaves the link, if less."""
    return limits.MIN_LINK_RATE if share is None else min(limits.MIN_LINK_RATE, share / 2)


def slow_bar(others: Sequence[float]) -> float:
    """Bytes per second below which a link is too slow to keep while another peer waits
    for its slot (where above the ``floor``), given the measured rates of the other links
    that delivered good pieces; none: 0, nothing to compare with, the floor alone (which
    our own download limit lowers: a bar of its own here would undo that)."""
    return _median(others) / limits.SLOW_LINK_FRACTION if others else 0.0


def _median(values: Sequence[float]) -> float:
    """The median of ``values`` (not empty), as ``statistics.median`` gives it; here so
    that a swarm process does not import ``statistics`` (and its fractions, decimal)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def quiet_until(head_since: float) -> float:
    """Until when ``judge`` keeps a link whose oldest request began to be served at
    ``head_since``, whatever else its state and the others' rates are (it is judged from
    ``LINK_JUDGE_AFTER`` on, and late from ``PIECE_DEADLINE_MIN`` on at the soonest). A
    downloader that would judge every link after every piece judges none so young: it
    waits until then, and judges it then if no answer came first (a test holds ``judge``
    to this)."""
    return head_since + min(limits.LINK_JUDGE_AFTER, limits.PIECE_DEADLINE_MIN)


def judge(link: LinkState, others: Sequence[float], now: float) -> Judgement:
    """Keep, release the requests of, or drop ``link`` (see the module's Strategy).

    Args:
        link: the link's state.
        others: measured rates of the download's other links that delivered good pieces.
        now: the time, on the clock of ``link.head_since``.
    """
    rates = [*others, link.rate] if link.rate else others
    deadline = piece_deadline(link.head_since, link.head_length, rates)
    give_up = link.head_since + (deadline - link.head_since) * 2 ** (1 + link.slow)
    judged_from = link.head_since + limits.LINK_JUDGE_AFTER
    if link.tested:  # it proved itself: a pause (a busy or paced peer) is judged at its deadline
        judged_from = max(judged_from, deadline)
    if now >= judged_from:
        progress = link.progress / (now - link.head_since)
        bar = floor(link.share)
        if link.wanted and not link.sole:
            bar = max(bar, slow_bar(others))
        if progress < bar:
            return Judgement(LinkVerdict.DROP, now, f"delivers {progress:,.0f} B/s, "
                                                f"under {bar:,.0f} B/s")
        if now >= give_up and not link.sole and (others or not link.tested):
            return Judgement(LinkVerdict.DROP, now, f"still owes a piece due "
                                                f"{now - deadline:.1f} s ago")
    again = judged_from if now < judged_from else now + limits.LINK_JUDGE_AFTER
    if give_up > now:
        again = min(again, give_up)
    if now < deadline:
        return Judgement(LinkVerdict.KEEP, min(again, deadline))
    return Judgement(LinkVerdict.RELEASE, again, "past its piece deadline")
