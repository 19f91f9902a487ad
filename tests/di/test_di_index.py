"""A peer's RFC index: merge rules, local records fixed at 7200, remote ones expiring."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from p2pshare.dipeer.index import RFCIndex
from p2pshare.protocol.di import IndexLine, PeerAddr

from .clock import FakeClock

ME = PeerAddr("me", 5000)
B = PeerAddr("b", 6000)


def index(max_records: int = 1000) -> tuple[RFCIndex, FakeClock]:
    clock = FakeClock()
    idx = RFCIndex(clock=clock, max_records=max_records)
    idx.me = ME
    return idx, clock


def line(rfc: int, host: str = "b", port: int = 6000, title: str = "T", ttl: int = 7200
         ) -> IndexLine:
    return IndexLine(rfc, title, host, port, ttl)


def test_merge_adds_new_records_and_refreshes_known_ones_without_duplicates() -> None:
    idx, clock = index()
    result = idx.merge([line(1), line(2), line(1, "c", 7000)])
    assert (result.added, result.refreshed) == (3, 0)
    clock.advance(1000)
    result = idx.merge([line(1, title="New Title"), line(3)])
    assert (result.added, result.refreshed) == (1, 1)
    records = idx.records()
    assert len(records) == 4
    by_key = {(r.rfc, r.host, r.port): r for r in records}
    assert by_key[1, "b", 6000] == line(1, title="New Title", ttl=7200)  # refreshed
    assert by_key[2, "b", 6000].ttl == 6200  # decremented since it was received
    assert by_key[1, "c", 7000].ttl == 6200


def test_the_same_record_twice_in_one_reply_is_kept_once() -> None:
    idx, _clock = index()
    result = idx.merge([line(1), line(1), line(1)])
    assert (result.added, result.refreshed) == (1, 2)
    assert len(idx) == 1


def test_local_records_stay_at_7200_and_come_first() -> None:
    idx, clock = index()
    idx.add_local(9, "Local One")
    idx.merge([line(1)])
    clock.advance(7200 * 10)
    assert idx.records() == [IndexLine(9, "Local One", "me", 5000, 7200)]


def test_remote_records_expire_after_their_ttl() -> None:
    idx, clock = index()
    idx.merge([line(1)])
    clock.advance(7199)
    assert [h.rfc for h in idx.holders(1)] == [1]
    assert idx.records()[0].ttl == 1
    clock.advance(1)
    assert idx.holders(1) == [] and idx.records() == [] and len(idx) == 0


def test_a_refresh_restarts_the_ttl() -> None:
    idx, clock = index()
    idx.merge([line(1)])
    clock.advance(7000)
    idx.merge([line(1)])
    clock.advance(7000)
    assert idx.records()[0].ttl == 200


def test_records_about_ourselves_are_ignored() -> None:
    idx, _clock = index()
    idx.add_local(1, "Mine")
    result = idx.merge([line(1, "me", 5000), line(2, "me", 5000), line(2)])
    assert (result.added, result.ignored) == (1, 2)
    assert [(r.rfc, r.host) for r in idx.records()] == [(1, "me"), (2, "b")]


def test_merging_beyond_the_record_limit_drops_new_records() -> None:
    idx, _clock = index(max_records=3)
    result = idx.merge([line(n) for n in range(1, 6)])
    assert (result.added, result.dropped, result.evicted) == (3, 2, 0)
    assert idx.merge([line(1)]).refreshed == 1  # known records are still refreshed


def test_one_reply_brings_at_most_max_per_peer_records() -> None:
    idx, _clock = index()
    idx.max_per_peer = 4
    result = idx.merge(iter([line(n) for n in range(1, 11)]), source=B)
    assert (result.added, result.dropped) == (4, 6)
    # and a source holds at most that many, whatever it sends later
    result = idx.merge([line(n) for n in range(11, 14)], source=B)
    assert (result.added, result.dropped) == (0, 3)
    assert idx.held_from(B) == 4 and len(idx.records()) == 4


def test_a_full_index_makes_room_for_a_peer_holding_fewer_records() -> None:
    """Fair share: the flooding source gives up its oldest records, down to one more
    than the newcomer holds; local records are never touched."""
    idx, _clock = index(max_records=10)
    idx.add_local(500, "Mine")
    flood = PeerAddr("x", 1)
    assert idx.merge([line(n, "x", 1) for n in range(1, 11)], source=flood).added == 10
    result = idx.merge([line(n, "b") for n in range(100, 104)], source=B)
    assert (result.added, result.evicted, result.dropped) == (4, 4, 0)
    assert idx.held_from(flood) == 6 and idx.held_from(B) == 4
    assert [h.host for h in idx.holders(1)] == []  # the flood's oldest went first
    assert [h.host for h in idx.holders(10)] == ["x"]
    assert idx.local() == {500: "Mine"}
    # even shares: nobody gives way any more
    c = PeerAddr("c", 7000)
    result = idx.merge([line(n, "c", 7000) for n in range(200, 210)], source=c)
    assert idx.held_from(c) <= idx.held_from(flood) + 1
    assert len(idx.records()) == 1 + 10
    result = idx.merge([line(n, "b") for n in range(300, 310)], source=B)
    assert result.added == result.evicted and len(idx.records()) == 1 + 10


@given(st.lists(st.tuples(st.sampled_from("xyz"), st.integers(0, 30), st.integers(0, 8)),
                max_size=30))
def test_budgets_always_hold(merges: list[tuple[str, int, int]]) -> None:
    """Whatever sources send, the index and each source stay within their budgets, and a
    source that holds fewer than another (less one) is never refused for room."""
    idx, clock = index(max_records=12)
    idx.max_per_peer = 6
    for host, first, count in merges:
        src = PeerAddr(host, 1)
        clock.advance(100)
        before = {h: idx.held_from(PeerAddr(h, 1)) for h in "xyz"}
        result = idx.merge([line(n, host, 1) for n in range(first, first + count)], src)
        assert len(idx.records()) <= 12
        assert all(idx.held_from(PeerAddr(h, 1)) <= 6 for h in "xyz")
        if result.dropped and count <= 6:
            mine = idx.held_from(src)
            assert mine == 6 or all(n <= mine + 1 for n in
                                    (idx.held_from(PeerAddr(h, 1)) for h in "xyz"))
        assert sum(before.values()) + result.added - result.evicted == \
            sum(idx.held_from(PeerAddr(h, 1)) for h in "xyz")


def test_holders_are_per_rfc_and_drop_forgets_one() -> None:
    idx, _clock = index()
    idx.merge([line(1, "b"), line(2, "b"), line(1, "c"), line(1, "d")])
    assert [h.host for h in idx.holders(1)] == ["b", "c", "d"]
    idx.drop(1, PeerAddr("c", 6000))
    assert [h.host for h in idx.holders(1)] == ["b", "d"]
    assert [h.host for h in idx.holders(2)] == ["b"]
    assert idx.holders(3) == []


@given(st.lists(st.tuples(st.integers(1, 5), st.sampled_from("bcd"), st.integers(0, 9000)),
                max_size=40))
def test_never_a_duplicate_and_never_an_expired_record(steps: list[tuple[int, str, int]]) -> None:
    idx, clock = index()
    last_seen: dict[tuple[int, str], float] = {}
    for rfc, host, wait in steps:
        clock.advance(wait)
        idx.merge([line(rfc, host)])
        last_seen[rfc, host] = clock.now
    records = idx.records()
    keys = [(r.rfc, r.host, r.port) for r in records]
    assert len(keys) == len(set(keys))
    expected = {k for k, t in last_seen.items() if clock.now - t < 7200}
    assert {(r.rfc, r.host) for r in records} == expected


def test_the_senders_own_records_get_the_full_ttl_relayed_ones_keep_theirs() -> None:
    idx, _clock = index()
    idx.merge([line(1, "b", 6000, ttl=10), line(2, "c", 7000, ttl=100)], source=B)
    ttls = {(r.rfc, r.host): r.ttl for r in idx.records() if r.host != "me"}
    assert ttls == {(1, "b"): 7200, (2, "c"): 100}


def test_a_relayed_record_dies_with_its_ttl_however_often_it_is_relayed_back() -> None:
    """Two peers relaying a departed third peer's record to each other must not keep it
    alive for ever: each relay carries the remaining TTL, never a fresh 7200."""
    a, clock_a = index()
    b, clock_b = index()
    b.me = B
    a.merge([line(5, "c", 7000, ttl=7200)], source=PeerAddr("c", 7000))  # c then leaves
    for _ in range(10):  # every 1,000 s a and b RFCQuery each other
        clock_a.advance(1000)
        clock_b.advance(1000)
        b.merge(a.records(), source=a.me)
        a.merge(b.records(), source=B)
    assert a.holders(5) == [] and b.holders(5) == []


def test_a_refresh_never_shortens_a_records_life() -> None:
    idx, _clock = index()
    idx.merge([line(3, "c", 7000, ttl=5000)], source=B)
    idx.merge([line(3, "c", 7000, ttl=50)], source=B)
    assert [r.ttl for r in idx.records() if r.rfc == 3] == [5000]
