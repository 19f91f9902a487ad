"""The BitTorrent tracker's table: the peers of each swarm, under budgets a flood cannot beat.

Strategy: pure bookkeeping with the clock passed in (``now``), shared by the HTTP and
UDP front ends (``bt.tracker_server``), tested without sockets. opentracker's behaviour
is the reference, with its values (``limits``, "BitTorrent tracker"):

* a peer is known by the address its announce came from and the port it gives, never by
  what it claims (its ``ip`` field or peer id): so a record can be changed or removed
  (``event=stopped``) only from its own address, and one host cannot announce others
  into a swarm. An IPv4-mapped address counts as the IPv4 address (``host.plain_ip``).
* clients are told to come back every ``interval`` (spread at random, so a swarm started
  together spreads out), not before ``min interval``; a peer not heard from for
  ``peer_timeout`` (one missed announce) is dropped. Each swarm keeps its records in
  order of last announce, so dropping the stale ones costs only what is dropped.
* budgets: swarms in all, peers in one swarm and in all, and records per source (an
  address; for IPv6 its /64, what one host is given).
  A source at its budget announcing something new loses its own least recently seen
  record (it crowds out only itself). In a full swarm (or table) the source holding the
  most records there gives up its least recently seen one, provided it holds more than
  the newcomer's source would after admission (as ``net.admission`` shares connection
  slots); otherwise the newcomer is refused. So a few hosts announcing many ports hold
  at most an equal share, and a host with one record always gets in while another holds
  more (``_Tally`` finds the heaviest source in O(1)). An announce costs one token of the
  source's rate (``net.sources``), a scrape one of another rate of the same size, so that
  a monitor polling scrapes cannot starve the announces of clients on its host; without a
  token the answer is a failure reason.
* an answer lists up to ``numwant`` (capped) peers drawn at random, never the asker, and
  to a seed leeches first, seeds only to fill ``numwant`` (a magnet client may announce
  ``left=0`` before it knows the size). Each swarm keeps its seeds and its leeches in two
  bags that draw a random sample in O(numwant).

Refusals are ``TrackerFailure``: the front end sends their message as the failure reason.
"""

from __future__ import annotations

import ipaddress
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import islice

from .. import limits
from ..host import plain_ip
from ..net.sources import SourceRates
from ..protocol.bt_tracker import (
    AnnounceAnswer,
    AnnounceEvent,
    AnnounceRequest,
    ScrapeStats,
    TrackerFailure,
    TrackerPeer,
)

__all__ = ["SwarmTable", "TableLimits"]

_Key = tuple[str, int]  # the source address and the port it announced
_IPV6_SOURCE = 64  # prefix bits of an IPv6 address that make one source (one host's /64)


@dataclass(frozen=True, slots=True)
class TableLimits:
    """The table's timing and budgets; ``limits`` gives the defaults."""

    interval: float = limits.TRACKER_INTERVAL
    spread: float = limits.TRACKER_INTERVAL_SPREAD
    min_interval: float = limits.TRACKER_MIN_INTERVAL
    peer_timeout: float = limits.TRACKER_PEER_TIMEOUT
    numwant_default: int = limits.TRACKER_NUMWANT_DEFAULT
    numwant_max: int = limits.TRACKER_NUMWANT_MAX
    max_swarms: int = limits.TRACKER_MAX_SWARMS
    max_swarm_peers: int = limits.TRACKER_MAX_SWARM_PEERS
    max_peers: int = limits.TRACKER_MAX_PEERS
    per_source: int = limits.TRACKER_PEERS_PER_SOURCE
    burst: float = limits.TRACKER_ANNOUNCE_BURST
    rate: float = limits.TRACKER_ANNOUNCE_RATE


@dataclass(slots=True)
class _Record:
    peer: TrackerPeer  # as answers list it: made once, not at every answer
    seed: bool
    seen: float
    left: int | None  # bytes the peer still lacks, as last announced (None: not said)
    completed: bool = False


class _Bag:
    """Peers with O(1) add, remove and replace, indexable for a random draw (a list and
    each peer's place in it, by key)."""

    def __init__(self) -> None:
        self.peers: list[TrackerPeer] = []
        self.place: dict[_Key, int] = {}

    def add(self, peer: TrackerPeer) -> None:
        self.place[(peer.host, peer.port)] = len(self.peers)
        self.peers.append(peer)

    def remove(self, key: _Key) -> None:
        at = self.place.pop(key)
        last = self.peers.pop()
        if (last.host, last.port) != key:
            self.peers[at] = last
            self.place[(last.host, last.port)] = at

    def replace(self, peer: TrackerPeer) -> None:
        self.peers[self.place[(peer.host, peer.port)]] = peer


class _Tally:
    """Records per source, bucketed by count so that the heaviest source is found at once."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.by_count: dict[int, dict[str, None]] = {}
        self.top = 0

    def add(self, source: str, step: int) -> None:
        """Count one record more (``step`` 1) or less (-1) for ``source``."""
        old = self.count.pop(source, 0)
        if old:
            bucket = self.by_count[old]
            del bucket[source]
            if not bucket:
                del self.by_count[old]
        new = old + step
        if new:
            self.count[source] = new
            self.by_count.setdefault(new, {})[source] = None
        self.top = max(self.top, new)
        while self.top and self.top not in self.by_count:
            self.top -= 1

    def heaviest(self) -> tuple[str | None, int]:
        """A source holding the most records (the first to get there), and how many."""
        return (next(iter(self.by_count[self.top])), self.top) if self.top else (None, 0)


@dataclass(slots=True)
class _Swarm:
    records: OrderedDict[_Key, _Record] = field(default_factory=OrderedDict)  # oldest first
    seeds: _Bag = field(default_factory=_Bag)
    leeches: _Bag = field(default_factory=_Bag)
    tally: _Tally = field(default_factory=_Tally)
    downloaded: int = 0

    def bag(self, record: _Record) -> _Bag:
        return self.seeds if record.seed else self.leeches


class SwarmTable:
    """Every swarm the tracker knows (module docstring)."""

    def __init__(self, table_limits: TableLimits | None = None,
                 rng: random.Random | None = None) -> None:
        self.limits = table_limits or TableLimits()
        self.rng = rng or random.Random()
        self.rates = SourceRates(self.limits.burst, self.limits.rate, limits.MAX_RATE_SOURCES)
        self.scrape_rates = SourceRates(self.limits.burst, self.limits.rate,
                                        limits.MAX_RATE_SOURCES)
        self.swarms: dict[bytes, _Swarm] = {}
        self.by_source: dict[str, OrderedDict[tuple[bytes, _Key], None]] = {}
        self.tally = _Tally()
        self.peers = 0

    # ------------------------------------------------------------------ announce
    def announce(self, request: AnnounceRequest, source: str, now: float) -> AnnounceAnswer:
        """Record (or, ``stopped``, remove) ``source``'s peer and answer with others; a
        peer that names port 0 accepts no connections: it is answered, never recorded.

        Raises:
            TrackerFailure: over the source's rate, or a full swarm or table.
        """
        key = (plain_ip(source), request.port)
        self._charge(self.rates, _source(key[0]), now)
        swarm = self.swarms.get(request.info_hash)
        if swarm is not None:
            self._expire(request.info_hash, swarm, now)
        if request.event is AnnounceEvent.STOPPED:
            if swarm is not None and key in swarm.records:
                self._remove(request.info_hash, swarm, key)
            return self._answer(self.swarms.get(request.info_hash), None, 0)
        want = self.limits.numwant_default if request.numwant is None else request.numwant
        if request.port != 0:
            swarm = self._record(request, key, now)
        return self._answer(swarm, key if request.port else None,
                            min(want, self.limits.numwant_max), request.left == 0)

    def _record(self, request: AnnounceRequest, key: _Key, now: float) -> _Swarm:
        swarm = self.swarms.get(request.info_hash)
        record = swarm.records.get(key) if swarm is not None else None
        if swarm is None or record is None:
            source = _source(key[0])
            swarm = self._admit(request.info_hash, swarm, source)
            record = _Record(TrackerPeer(*key, request.peer_id), request.left == 0, now,
                             request.left)
            swarm.records[key] = record
            swarm.bag(record).add(record.peer)
            self.by_source.setdefault(source, OrderedDict())[(request.info_hash, key)] = None
            self.tally.add(source, 1)
            swarm.tally.add(source, 1)
            self.peers += 1
        else:
            self._refresh(request, swarm, key, record, now)
        if request.event is AnnounceEvent.COMPLETED and not record.completed:
            record.completed = True
            swarm.downloaded += 1
        return swarm

    def _refresh(self, request: AnnounceRequest, swarm: _Swarm, key: _Key, record: _Record,
                 now: float) -> None:
        if request.peer_id != record.peer.peer_id:
            record.peer = TrackerPeer(*key, request.peer_id)
            swarm.bag(record).replace(record.peer)
        seed = request.left == 0
        if seed != record.seed:
            swarm.bag(record).remove(key)
            record.seed = seed
            swarm.bag(record).add(record.peer)
        record.seen, record.left = now, request.left
        swarm.records.move_to_end(key)
        self.by_source[_source(key[0])].move_to_end((request.info_hash, key))

    def _admit(self, info_hash: bytes, swarm: _Swarm | None, source: str) -> _Swarm:
        """Make room for one new record of ``source`` in ``info_hash``'s swarm."""
        held = self.by_source.get(source)
        if held is not None and len(held) >= self.limits.per_source:
            old_hash, old_key = next(iter(held))  # its least recently seen record
            self._remove(old_hash, self.swarms[old_hash], old_key)
            swarm = self.swarms.get(info_hash)
        if swarm is not None and len(swarm.records) >= self.limits.max_swarm_peers:
            self._make_room(swarm.tally, source, info_hash, "this swarm is full")
        if self.peers >= self.limits.max_peers:
            self._make_room(self.tally, source, None, "the tracker is full")
        swarm = self.swarms.get(info_hash)
        if swarm is None:
            if len(self.swarms) >= self.limits.max_swarms:
                raise TrackerFailure("the tracker holds as many swarms as it can")
            swarm = self.swarms[info_hash] = _Swarm()
        return swarm

    def _make_room(self, tally: _Tally, source: str, info_hash: bytes | None,
                   why: str) -> None:
        """Remove the least recently seen record (in ``info_hash``'s swarm, or anywhere)
        of the heaviest source of ``tally``, if it holds more than ``source`` would.

        Raises:
            TrackerFailure: ``why``, when no source holds more.
        """
        heavy, most = tally.heaviest()
        if heavy is None or most <= tally.count.get(source, 0) + 1:
            raise TrackerFailure(why)
        for held_hash, key in self.by_source[heavy]:  # its least recently seen first
            if info_hash is None or held_hash == info_hash:
                self._remove(held_hash, self.swarms[held_hash], key)
                return

    def _answer(self, swarm: _Swarm | None, asker: _Key | None, want: int,
                seed: bool = False) -> AnnounceAnswer:
        """Counts and up to ``want`` peers for ``asker`` (None: not recorded), only
        leeches to a ``seed``."""
        lim = self.limits
        interval = lim.interval + self.rng.uniform(-lim.spread, lim.spread)
        if swarm is None:
            return AnnounceAnswer(round(interval), round(lim.min_interval), 0, 0, 0)
        return AnnounceAnswer(
            round(interval), round(lim.min_interval), complete=len(swarm.seeds.peers),
            incomplete=len(swarm.leeches.peers), downloaded=swarm.downloaded,
            peers=self._sample(swarm, asker, want, seed) if want else ())

    def _sample(self, swarm: _Swarm, asker: _Key | None, want: int,
                seed: bool) -> tuple[TrackerPeer, ...]:
        """Up to ``want`` peers other than ``asker``: for a leech, uniformly from the
        leeches and the seeds; for a seed, leeches first and seeds only to fill ``want``
        (a magnet client that does not know the size yet may announce ``left=0``, as
        aria2 does, and must still find the seeds)."""
        mine = swarm.records[asker].peer if asker is not None else None
        if not seed:
            return self._draw([swarm.leeches, swarm.seeds], mine, want)
        first = self._draw([swarm.leeches], mine, want)
        return first + self._draw([swarm.seeds], mine, want - len(first))

    def _draw(self, bags: list[_Bag], mine: TrackerPeer | None,
              want: int) -> tuple[TrackerPeer, ...]:
        """Up to ``want`` peers other than ``mine``, one uniform draw over ``bags`` as if
        they were one list."""
        total = sum(len(bag.peers) for bag in bags)
        if want <= 0:
            return ()
        if want + 1 >= total:
            picked = [peer for bag in bags for peer in bag.peers]
        else:
            picked = []
            for index in self.rng.sample(range(total), want + 1):
                for bag in bags:
                    if index < len(bag.peers):
                        picked.append(bag.peers[index])
                        break
                    index -= len(bag.peers)
        return tuple(peer for peer in picked if peer is not mine)[:want]

    # ------------------------------------------------------------------ scrape, expiry
    def scrape(self, hashes: list[bytes], source: str, now: float) -> dict[bytes, ScrapeStats]:
        """The counts of the swarms named that exist (BEP 48; unknown ones are left out,
        as opentracker does).

        Raises:
            TrackerFailure: over the source's rate.
        """
        self._charge(self.scrape_rates, _source(plain_ip(source)), now)
        out = {}
        for info_hash in hashes:
            swarm = self.swarms.get(info_hash)
            if swarm is not None:
                self._expire(info_hash, swarm, now)
            swarm = self.swarms.get(info_hash)
            if swarm is not None:
                out[info_hash] = ScrapeStats(len(swarm.seeds.peers), swarm.downloaded,
                                             len(swarm.leeches.peers))
        return out

    def sweep(self, now: float) -> int:
        """Drop every stale peer of every swarm; returns how many."""
        before = self.peers
        for info_hash, swarm in list(self.swarms.items()):
            self._expire(info_hash, swarm, now)
        return before - self.peers

    def dashboard_state(self, rows: int, members: int) -> dict[str, object]:
        """The swarms as /api/state shows them (docs/dashboard.md#api-state): the counts,
        and the ``rows`` newest swarms, each with its ``members`` most recently announced
        peers. O(rows * members) whatever the swarms hold, as every count is kept. A peer
        gone silent shows until dropped (``sweep``)."""
        return {"total": len(self.swarms), "peers": self.peers, "rows": [
            {"info_hash": info_hash.hex(), "seeds": len(swarm.seeds.peers),
             "leeches": len(swarm.leeches.peers), "completed": swarm.downloaded,
             "peers": [{"host": r.peer.host, "port": r.peer.port, "seed": r.seed,
                        "left": r.left}
                       for r in islice(reversed(swarm.records.values()), members)]}
            for info_hash, swarm in islice(reversed(self.swarms.items()), rows)]}

    def holding(self, source: str) -> int:
        """Records ``source`` holds, over all swarms."""
        return len(self.by_source.get(_source(plain_ip(source)), ()))

    def _charge(self, rates: SourceRates, source: str, now: float) -> None:
        if not rates.allow(source, now):
            raise TrackerFailure("too many requests from your address: slow down")

    def _expire(self, info_hash: bytes, swarm: _Swarm, now: float) -> None:
        deadline = now - self.limits.peer_timeout
        while swarm.records:
            key, record = next(iter(swarm.records.items()))
            if record.seen > deadline:
                break
            self._remove(info_hash, swarm, key)

    def _remove(self, info_hash: bytes, swarm: _Swarm, key: _Key) -> None:
        record = swarm.records.pop(key)
        swarm.bag(record).remove(key)
        source = _source(key[0])
        held = self.by_source[source]
        del held[(info_hash, key)]
        if not held:
            del self.by_source[source]
        self.tally.add(source, -1)
        swarm.tally.add(source, -1)
        self.peers -= 1
        if not swarm.records:
            del self.swarms[info_hash]


def _source(host: str) -> str:
    """The source a plain IP address counts as: itself (IPv4), or its /64 (IPv6: one
    host is given a whole /64, and could otherwise announce from as many addresses as it
    liked, each with its own budget)."""
    if ":" not in host:
        return host
    return str(ipaddress.IPv6Network((host, _IPV6_SOURCE), strict=False))
