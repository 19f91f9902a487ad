"""The tracker's swarm table: opentracker's rules and the hostile-peer budgets, on a fake clock."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from p2pshare import limits
from p2pshare.bt.tracker import SwarmTable, TableLimits, _source
from p2pshare.protocol.bt_tracker import (
    AnnounceAnswer,
    AnnounceEvent,
    AnnounceRequest,
    TrackerFailure,
)

H1, H2 = b"\x01" * 20, b"\x02" * 20
NO_RATE = dict(burst=10**9, rate=1.0)


def table(**overrides: float) -> SwarmTable:
    return SwarmTable(TableLimits(**{"spread": 0, **NO_RATE, **overrides}),  # type: ignore[arg-type]
                      random.Random(1))


def ask(t: SwarmTable, source: str, port: int, now: float = 0.0, info_hash: bytes = H1,
        **fields: object) -> AnnounceAnswer:
    request = AnnounceRequest(info_hash, bytes([port % 256]) * 20, port,
                              **{"left": 10, **fields})  # type: ignore[arg-type]
    return t.announce(request, source, now)


def peers(answer: AnnounceAnswer) -> set[tuple[str, int]]:
    return {(p.host, p.port) for p in answer.peers}


def test_peers_meet_and_never_see_themselves() -> None:
    t = table()
    assert peers(ask(t, "10.0.0.1", 1)) == set()
    answer = ask(t, "10.0.0.2", 2)
    assert peers(answer) == {("10.0.0.1", 1)}
    assert answer.peers[0].peer_id == b"\x01" * 20
    assert (answer.interval, answer.min_interval) == (limits.TRACKER_INTERVAL,
                                                      limits.TRACKER_MIN_INTERVAL)
    assert (answer.complete, answer.incomplete) == (0, 2)
    assert peers(ask(t, "10.0.0.1", 1)) == {("10.0.0.2", 2)}


def test_a_magnet_client_announcing_left_0_finds_the_seeds() -> None:
    """aria2 announces a magnet link with ``left=0`` before it has the metadata: where
    the swarm has only seeds, it must still be given them."""
    t = table()
    ask(t, "10.0.0.1", 1, left=0)
    assert peers(ask(t, "10.0.0.2", 2, left=0)) == {("10.0.0.1", 1)}


def test_port_0_is_answered_and_never_listed() -> None:
    """A peer that accepts no connections (a magnet fetch before it listens, or one that
    uploads nothing) names port 0: it gets the swarm's peers and is never listed."""
    t = table()
    ask(t, "10.0.0.1", 1, left=0)
    ask(t, "10.0.0.3", 3)
    assert peers(ask(t, "10.0.0.2", 0)) == {("10.0.0.1", 1), ("10.0.0.3", 3)}
    assert peers(ask(t, "10.0.0.2", 0, left=0, numwant=1)) == {("10.0.0.3", 3)}
    assert peers(ask(t, "10.0.0.4", 4)) == {("10.0.0.1", 1), ("10.0.0.3", 3)}
    assert t.peers == 3 and t.holding("10.0.0.2") == 0


def test_a_record_is_its_source_addresses_alone() -> None:
    t = table()
    ask(t, "10.0.0.1", 7)
    ask(t, "10.0.0.66", 7, event=AnnounceEvent.STOPPED)  # another host "stops" it: no
    assert peers(ask(t, "10.0.0.2", 2)) == {("10.0.0.1", 7)}
    ask(t, "::ffff:10.0.0.1", 7, event=AnnounceEvent.STOPPED)  # the same host, mapped
    assert peers(ask(t, "10.0.0.2", 2)) == set()
    assert t.peers == 1 and t.holding("10.0.0.1") == 0


def test_stopped_removes_and_empty_swarms_go() -> None:
    t = table()
    ask(t, "10.0.0.1", 1)
    answer = ask(t, "10.0.0.1", 1, event=AnnounceEvent.STOPPED)
    assert answer.peers == () and t.swarms == {} and t.peers == 0


def test_peers_expire_after_a_missed_interval() -> None:
    t = table()
    ask(t, "10.0.0.1", 1, now=0)
    timeout = limits.TRACKER_PEER_TIMEOUT
    assert peers(ask(t, "10.0.0.2", 2, now=timeout - 1)) == {("10.0.0.1", 1)}
    assert peers(ask(t, "10.0.0.3", 3, now=timeout + 1)) == {("10.0.0.2", 2)}
    assert t.sweep(now=timeout * 3) == 2 and t.peers == 0 and t.swarms == {}


def test_numwant_is_capped_and_defaults() -> None:
    t = table(numwant_max=30)
    for n in range(100):
        ask(t, f"10.0.{n}.1", 1000 + n)
    assert len(ask(t, "10.9.9.9", 1, numwant=10**6).peers) == 30
    assert len(ask(t, "10.9.9.9", 1, numwant=5).peers) == 5
    assert len(ask(t, "10.9.9.9", 1, numwant=0).peers) == 0
    assert len(table().announce(AnnounceRequest(H1, b"x" * 20, 9), "1.1.1.1", 0).peers) == 0
    big = table()
    for n in range(100):
        ask(big, f"10.0.{n}.1", 1000 + n)
    assert len(ask(big, "10.9.9.9", 1).peers) == limits.TRACKER_NUMWANT_DEFAULT


def test_a_seed_is_given_leeches_first_and_a_leech_both() -> None:
    t = table()
    ask(t, "10.0.0.1", 1, left=0)
    ask(t, "10.0.0.2", 2, left=0)
    ask(t, "10.0.0.3", 3)
    assert peers(ask(t, "10.0.0.1", 1, left=0, numwant=1)) == {("10.0.0.3", 3)}
    assert peers(ask(t, "10.0.0.1", 1, left=0)) == {("10.0.0.3", 3), ("10.0.0.2", 2)}
    assert peers(ask(t, "10.0.0.4", 4)) == {("10.0.0.1", 1), ("10.0.0.2", 2), ("10.0.0.3", 3)}
    ask(t, "10.0.0.4", 4, left=0, event=AnnounceEvent.COMPLETED)  # leech -> seed
    ask(t, "10.0.0.4", 4, left=0, event=AnnounceEvent.COMPLETED)  # counted once
    stats = t.scrape([H1, H2], "10.0.0.9", 0)
    assert list(stats) == [H1]
    assert (stats[H1].complete, stats[H1].incomplete, stats[H1].downloaded) == (3, 1, 1)


def test_a_flood_from_one_source_evicts_only_its_own_records() -> None:
    t = table(per_source=10, max_swarm_peers=50)
    ask(t, "10.0.0.1", 1)
    for port in range(2, 1000):
        ask(t, "10.6.6.6", port)  # one host, a thousand ports
    assert t.holding("10.6.6.6") == 10 and t.holding("10.0.0.1") == 1
    answer = ask(t, "10.0.0.2", 2, numwant=200)
    assert ("10.0.0.1", 1) in peers(answer)
    assert {port for host, port in peers(answer) if host == "10.6.6.6"} == set(range(990, 1000))


def test_a_full_swarm_or_table_refuses_newcomers_and_keeps_its_peers() -> None:
    t = table(max_swarm_peers=3, max_swarms=2, max_peers=5)
    for n in range(3):
        ask(t, f"10.0.0.{n}", 1)
    with pytest.raises(TrackerFailure, match="swarm is full"):
        ask(t, "10.0.0.9", 1)
    ask(t, "10.0.0.1", 1)  # a member still announces
    ask(t, "10.0.0.1", 1, info_hash=H2)
    with pytest.raises(TrackerFailure, match="swarms"):
        ask(t, "10.0.0.1", 1, info_hash=b"\x03" * 20)
    ask(t, "10.0.0.2", 1, info_hash=H2)
    with pytest.raises(TrackerFailure, match="tracker is full"):  # no one holds 2 more
        ask(t, "10.0.0.0", 1, info_hash=H2)
    assert t.peers == 5


def test_a_full_swarm_or_table_takes_room_from_the_heaviest_source() -> None:
    """Attack: a few hosts fill a swarm (or the whole table) with records of their own
    ports, each under its per-source budget, and refresh them; every newcomer was then
    refused. Now the source holding the most records gives up its least recently seen
    one while it holds more than the newcomer's would, as the connection slots do."""
    t = table(max_swarm_peers=6, max_peers=10, per_source=4)
    for host in ("10.6.6.1", "10.6.6.2"):
        for port in range(1, 4):
            ask(t, host, port)
    ask(t, "10.0.0.1", 1)  # the swarm is full: 10.6.6.1 gives up its port 1
    assert t.holding("10.6.6.1") == 2 and t.holding("10.0.0.1") == 1
    ask(t, "10.0.0.2", 1)  # now 10.6.6.2 (3) gives one up
    assert (t.holding("10.6.6.1"), t.holding("10.6.6.2")) == (2, 2)
    for n in range(3, 5):
        ask(t, f"10.0.0.{n}", 1)
    assert sorted(t.holding(f"10.6.6.{n}") for n in (1, 2)) == [1, 1]
    for n in range(5, 7):  # every source holds one: a newcomer is refused again
        with pytest.raises(TrackerFailure, match="swarm is full"):
            ask(t, f"10.0.0.{n}", 1)
    for port in range(1, 5):  # the table: 6 + 4 = 10, full
        ask(t, "10.6.6.3", port, info_hash=H2)
    ask(t, "10.0.0.1", 1, info_hash=H2)
    assert t.holding("10.6.6.3") == 3 and t.peers == 10


def test_an_ipv6_slash_64_is_one_source() -> None:
    """Attack: one host is given a whole IPv6 /64, so it could announce from as many
    addresses as it liked, each a source with its own budget and rate, and fill any swarm
    with records of one each (every source then holds one: nobody gives room). Now an
    IPv6 source is its /64 (records stay its exact address: only it may change them)."""
    t = table(per_source=4, max_swarm_peers=6)
    for n in range(1, 50):
        ask(t, f"2001:db8:1:2::{n:x}", 1)
    assert t.holding("2001:db8:1:2::1") == 4 and t.holding("2001:db8:1:2:ffff::") == 4
    ask(t, "2001:db8:1:3::1", 1)  # another /64, and an IPv4 host: room for both
    ask(t, "10.0.0.1", 1)
    assert t.holding("2001:db8:1:3::1") == 1 and t.holding("10.0.0.1") == 1
    answer = ask(t, "2001:db8:1:2::31", 1, event=AnnounceEvent.STOPPED)
    assert t.holding("2001:db8:1:2::1") == 3 and answer.complete + answer.incomplete == 5
    ask(t, "2001:db8:1:2::99", 1, event=AnnounceEvent.STOPPED)  # holds none: no change
    assert t.holding("2001:db8:1:2::1") == 3
    t = table(burst=3, rate=1.0)
    for n in range(1, 4):
        ask(t, f"2001:db8::{n}", 1)
    with pytest.raises(TrackerFailure, match="slow down"):  # and one rate
        ask(t, "2001:db8::4", 1)


def test_announces_are_rate_limited_per_source() -> None:
    t = SwarmTable(TableLimits(burst=3, rate=1.0))
    for _ in range(3):
        ask(t, "10.0.0.1", 1, now=0)
    with pytest.raises(TrackerFailure, match="slow down"):
        ask(t, "10.0.0.1", 1, now=0)
    ask(t, "10.0.0.2", 2, now=0)  # another address is not affected
    ask(t, "10.0.0.1", 1, now=1.0)  # a second later: one more token
    for _ in range(3):  # scrapes have a rate of their own: polling starves no announce
        t.scrape([H1], "::ffff:10.0.0.1", 1.0)
    with pytest.raises(TrackerFailure, match="slow down"):
        t.scrape([H1], "10.0.0.1", 1.0)
    ask(t, "10.0.0.1", 1, now=2.0)


def test_intervals_are_spread() -> None:
    t = SwarmTable(TableLimits(**NO_RATE), random.Random(3))  # type: ignore[arg-type]
    seen = {ask(t, "10.0.0.1", 1).interval for _ in range(50)}
    spread = limits.TRACKER_INTERVAL_SPREAD
    assert len(seen) > 10
    assert all(limits.TRACKER_INTERVAL - spread <= i <= limits.TRACKER_INTERVAL + spread
               for i in seen)


class TableMachine(RuleBasedStateMachine):
    """Random announces, stops and time: the counts always agree with the records."""

    def __init__(self) -> None:
        super().__init__()
        self.t = table(per_source=4, max_swarm_peers=6, max_peers=12, max_swarms=3)
        self.now = 0.0

    @rule(host=st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "2001:db8::1",
                                "2001:db8::2", "2001:db8::3", "2001:db8:0:1::1"]),
          port=st.integers(1, 3), h=st.integers(0, 3),
          event=st.sampled_from(AnnounceEvent), seed=st.booleans(), pid=st.integers(0, 1))
    def announce(self, host: str, port: int, h: int, event: AnnounceEvent, seed: bool,
                 pid: int) -> None:
        try:
            answer = self.t.announce(AnnounceRequest(
                bytes([h]) * 20, bytes([pid]) * 20, port, left=0 if seed else 5, event=event,
                numwant=2), host, self.now)
        except TrackerFailure:
            return
        assert len(answer.peers) <= 2
        assert (host, port) not in {(p.host, p.port) for p in answer.peers}

    @rule(dt=st.floats(0, limits.TRACKER_PEER_TIMEOUT))
    def wait(self, dt: float) -> None:
        self.now += dt

    @rule()
    def sweep(self) -> None:
        self.t.sweep(self.now)

    @invariant()
    def counts_agree(self) -> None:
        t = self.t
        records = sum(len(s.records) for s in t.swarms.values())
        assert t.peers == records == sum(len(h) for h in t.by_source.values()) <= 12
        assert len(t.swarms) <= 3 and all(len(h) <= 4 for h in t.by_source.values())
        for swarm in t.swarms.values():
            assert swarm.records and len(swarm.records) <= 6
            listed = swarm.seeds.peers + swarm.leeches.peers
            assert sorted((p.host, p.port) for p in listed) == sorted(swarm.records)
            for key, record in swarm.records.items():
                bag = swarm.seeds if record.seed else swarm.leeches
                assert bag.peers[bag.place[key]] is record.peer
            mine = Counter(_source(host) for host, _ in swarm.records)
            assert swarm.tally.count == mine
            assert swarm.tally.top == max(mine.values())
        assert t.tally.count == {host: len(held) for host, held in t.by_source.items()}
        assert t.tally.top == max(t.tally.count.values(), default=0)


TestTableMachine = TableMachine.TestCase
TestTableMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
