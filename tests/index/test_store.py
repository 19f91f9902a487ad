"""MemoryIndex: order, ownership, removal, LOOKUP by number, budgets, LIST walks; a stateful
model check of all of them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from p2pshare.errors import OverBudget, StoreError
from p2pshare.index.log import MIN_COMPACT, KeyLog
from p2pshare.index.store import IndexBudget, Listing, MemoryIndex
from p2pshare.protocol.ci import Record

A, B = "owner-a", "owner-b"


def rfcs(index: MemoryIndex) -> list[int]:
    with index.listing() as walk:
        return [r.rfc for r in walk]


def test_empty_index() -> None:
    index = MemoryIndex()
    assert len(index) == 0 and index.peer_count == 0
    assert index.lookup(123) == [] and rfcs(index) == [] and index.peers() == []


def test_add_echoes_the_record() -> None:
    index = MemoryIndex()
    record = index.add(A, 123, "A Proferred Official ICP", "thishost.csc.ncsu.edu", 5678)
    assert record == Record(123, "A Proferred Official ICP", "thishost.csc.ncsu.edu", 5678)
    assert record.to_line() == b"RFC 123 A Proferred Official ICP thishost.csc.ncsu.edu 5678"


def test_newest_first() -> None:
    index = MemoryIndex()
    for rfc in (1, 2, 3):
        index.add(A, rfc, f"t{rfc}", "h", 1)
    index.add(B, 4, "t4", "h", 2)
    assert rfcs(index) == [4, 3, 2, 1]
    assert index.peers() == [("h", 2), ("h", 1)]


def test_re_add_moves_to_front_and_updates_title() -> None:
    index = MemoryIndex()
    index.add(A, 1, "old", "h", 1)
    index.add(B, 1, "other", "g", 2)
    index.add(A, 2, "two", "h", 1)
    index.add(A, 1, "new", "h", 1)
    assert rfcs(index) == [1, 2, 1] and len(index) == 3
    assert index.lookup(1) == [Record(1, "new", "h", 1), Record(1, "other", "g", 2)]


def test_lookup_by_number_newest_first() -> None:
    index = MemoryIndex()
    index.add(A, 7, "seven", "h", 1)
    index.add(A, 8, "eight", "h", 1)
    index.add(B, 7, "seven too", "h", 2)
    assert index.lookup(7) == [Record(7, "seven too", "h", 2), Record(7, "seven", "h", 1)]
    assert index.lookup(9) == []


def test_same_host_other_port_is_another_peer() -> None:
    index = MemoryIndex()
    index.add(A, 1, "t", "localhost", 1000)
    index.add(B, 1, "t", "localhost", 1001)
    assert index.peer_count == 2 and len(index.lookup(1)) == 2


def test_another_owner_cannot_add_to_a_claimed_peer() -> None:
    index = MemoryIndex()
    index.add(A, 1, "t", "h", 1)
    with pytest.raises(StoreError):
        index.add(B, 2, "t", "h", 1)
    with pytest.raises(StoreError):
        index.add(B, 1, "replaced", "h", 1)
    assert index.lookup(1) == [Record(1, "t", "h", 1)] and index.lookup(2) == []


def test_another_owner_cannot_remove() -> None:
    index = MemoryIndex()
    index.add(A, 1, "t", "h", 1)
    assert index.remove(B, 1, "h", 1) is None
    assert len(index) == 1


def test_remove_own_record() -> None:
    index = MemoryIndex()
    index.add(A, 1, "t", "h", 1)
    index.add(A, 2, "u", "h", 1)
    assert index.remove(A, 1, "h", 1) == Record(1, "t", "h", 1)
    assert index.remove(A, 1, "h", 1) is None
    assert rfcs(index) == [2] and index.lookup(1) == []


def test_drop_owner_removes_exactly_its_records() -> None:
    index = MemoryIndex()
    index.add(A, 1, "t", "h", 1)
    index.add(B, 1, "t", "g", 2)
    index.add(A, 2, "t", "h", 3)  # one owner may claim several host:port pairs
    index.add(B, 3, "t", "g", 2)
    assert sorted(index.peers_of(A)) == [("h", 1), ("h", 3)]
    assert index.drop_owner(A) == 2
    assert rfcs(index) == [3, 1] and index.peers() == [("g", 2)]
    assert index.drop_owner(A) == 0
    index.add(B, 4, "t", "h", 1)  # the released host:port can be claimed again
    assert index.lookup(4) == [Record(4, "t", "h", 1)]


def test_snapshot_survives_changes() -> None:
    index = MemoryIndex()
    for rfc in range(5):
        index.add(A, rfc + 1, "t", "h", 1)
    with index.listing() as walk:
        index.remove(A, 3, "h", 1)
        index.add(A, 9, "t", "h", 1)
        index.add(A, 2, "moved", "h", 1)  # to the front, but the walk began before
        assert [(r.rfc, r.title) for r in walk] == [(5, "t"), (4, "t"), (2, "moved"),
                                                    (1, "t")]
    assert rfcs(index) == [2, 9, 5, 4, 1]


def test_a_walk_leaves_out_what_goes_before_it_gets_there() -> None:
    index = MemoryIndex()
    for rfc in range(1, 6):
        index.add(A, rfc, "t", "h", 1)
    with index.listing() as walk:
        records = iter(walk)
        assert next(records).rfc == 5
        index.remove(A, 2, "h", 1)
        index.add(B, 7, "t", "g", 2)
        assert [r.rfc for r in records] == [4, 3, 1]


def test_the_log_is_compacted_and_open_walks_keep_their_place() -> None:
    index = MemoryIndex()
    for rfc in [*range(1, 101), *range(1, 51)]:  # 50 entries retired before the walk
        index.add(A, rfc, "t", "h", 1)
    walk = index.listing()
    records = iter(walk)
    assert [next(records).rfc for _ in range(51)] == list(range(50, 0, -1)) + [100]
    for _ in range(30):  # churn: every record re-added, many times over
        for rfc in range(1, 101):
            index.add(A, rfc, "t", "h", 1)
    assert [r.rfc for r in records] == list(range(99, 50, -1))  # its place survived
    walk.close()
    for rfc in range(1, 101):
        index.add(A, rfc, "t", "h", 1)
    assert index.log_entries <= 2 * len(index) + MIN_COMPACT
    assert rfcs(index) == list(range(100, 0, -1))
    assert index._log.epoch > 0  # it was compacted under the open walk


def test_a_stalled_walk_holds_no_copy() -> None:
    """An open walk is two integers: the index is never copied for it."""
    index = MemoryIndex()
    for rfc in range(1, 1001):
        index.add(A, rfc, "t", "h", 1)
    walks = [index.listing() for _ in range(50)]
    assert Listing.__slots__ == ("_index", "_token")  # an index and an int
    assert not any(hasattr(w, "__dict__") for w in walks)
    for w in walks:
        w.close()


# ------------------------------------------------------------------------- budgets
def small(**budget: int) -> MemoryIndex:
    return MemoryIndex(IndexBudget(**{"per_connection": 3, "claims_per_connection": 2,
                                      "per_source": 5, "in_all": 8, **budget}))


def test_records_per_connection() -> None:
    index = small()
    for rfc in (1, 2, 3):
        index.add(A, rfc, "t", "h", 1, "s")
    with pytest.raises(OverBudget):
        index.add(A, 4, "t", "h", 1, "s")
    index.add(A, 2, "again", "h", 1, "s")  # a re-add is not a new record
    assert rfcs(index) == [2, 3, 1] and index.records_of(A) == 3
    index.remove(A, 3, "h", 1)
    index.add(A, 4, "t", "h", 1, "s")  # room again
    assert index.records_of(A) == 3


def test_claims_per_connection() -> None:
    index = small(per_connection=10)
    index.add(A, 1, "t", "h", 1, "s")
    index.add(A, 1, "t", "h", 2, "s")
    with pytest.raises(OverBudget):
        index.add(A, 1, "t", "h", 3, "s")
    assert index.peer_count == 2 and not index.has_peer("h", 3)


def test_records_per_source_and_in_all() -> None:
    index = small()
    index.add(A, 1, "t", "a", 1, "s")
    index.add(A, 2, "t", "a", 1, "s")
    index.add(A, 3, "t", "a", 1, "s")
    index.add(B, 1, "t", "b", 1, "s")
    index.add(B, 2, "t", "b", 1, "s")
    with pytest.raises(OverBudget) as caught:
        index.add(B, 3, "t", "b", 1, "s")  # the source holds 5
    assert not caught.value.everyone and index.records_from("s") == 5
    index.add("c", 1, "t", "c", 1, "other")
    index.add("c", 2, "t", "c", 1, "other")
    index.add("c", 3, "t", "c", 1, "other")
    with pytest.raises(OverBudget) as caught:
        index.add("d", 1, "t", "d", 1, "third")  # the index holds 8
    assert caught.value.everyone and not index.has_peer("d", 1)
    assert index.drop_owner(A) == 3 and index.records_from("s") == 2
    index.add("d", 1, "t", "d", 1, "third")


def test_a_refused_add_changes_nothing() -> None:
    index = small()
    for rfc in (1, 2, 3):
        index.add(A, rfc, "t", "h", 1, "s")
    before = (rfcs(index), index.peers(), index.records_from("s"), index.log_entries)
    for host, port in (("h", 1), ("h", 2)):
        with pytest.raises(OverBudget):
            index.add(A, 9, "t", host, port, "s")
    assert (rfcs(index), index.peers(), index.records_from("s"), index.log_entries) == before


# ------------------------------------------------------------------------- model check
OWNERS = st.sampled_from(["o1", "o2", "o3"])
SOURCE = {"o1": "s1", "o2": "s1", "o3": "s2"}  # o1 and o2 connect from one address
NUMBERS = st.integers(1, 6)
HOSTS = st.sampled_from(["h", "g"])
PORTS = st.integers(1, 3)
TITLES = st.sampled_from(["x", "y", "a title"])
BUDGET = IndexBudget(per_connection=5, claims_per_connection=2, per_source=7, in_all=9)
Key = tuple[int, str, int]


class IndexModel(RuleBasedStateMachine):
    """MemoryIndex against a list of records, newest first, a dict of owners, the budgets
    counted afresh, and one LIST walk at a time against the list as it was when it began."""

    def __init__(self) -> None:
        super().__init__()
        self.index = MemoryIndex(BUDGET)
        self.index._log = KeyLog(min_compact=4)  # compacted often, walks open or not
        self.peak = 0
        self.walked_ever = False
        self.records: list[Record] = []
        self.owner: dict[tuple[str, int], str] = {}
        self.walk: Listing | None = None
        self.walked: Iterator[Record] | None = None
        self.pending: list[tuple[Key, int]] = []  # what the open walk has still to visit
        self.claim: dict[tuple[str, int], int] = {}  # host:port -> claims of it ended so far

    def over(self, owner: str, host: str, port: int, key: Key) -> bool:
        held = [r for r in self.records if self.owner[(r.host, r.port)] == owner]
        source = [r for r in self.records if SOURCE[self.owner[(r.host, r.port)]]
                  == SOURCE[owner]]
        claims = [k for k, o in self.owner.items() if o == owner]
        if (host, port) not in self.owner and len(claims) >= BUDGET.claims_per_connection:
            return True
        new = all((r.rfc, r.host, r.port) != key for r in self.records)
        return new and (len(self.records) >= BUDGET.in_all or len(held) >= BUDGET.per_connection
                        or len(source) >= BUDGET.per_source)

    @rule(owner=OWNERS, rfc=NUMBERS, title=TITLES, host=HOSTS, port=PORTS)
    def add(self, owner: str, rfc: int, title: str, host: str, port: int) -> None:
        if self.owner.get((host, port), owner) != owner:
            with pytest.raises(StoreError):
                self.index.add(owner, rfc, title, host, port, SOURCE[owner])
            return
        if self.over(owner, host, port, (rfc, host, port)):
            with pytest.raises(OverBudget):
                self.index.add(owner, rfc, title, host, port, SOURCE[owner])
            return
        self.owner[(host, port)] = owner
        record = Record(rfc, title, host, port)
        assert self.index.add(owner, rfc, title, host, port, SOURCE[owner]) == record
        self.records = [record] + [r for r in self.records
                                   if (r.rfc, r.host, r.port) != (rfc, host, port)]

    @rule(owner=OWNERS, rfc=NUMBERS, host=HOSTS, port=PORTS)
    def remove(self, owner: str, rfc: int, host: str, port: int) -> None:
        mine = [r for r in self.records if (r.rfc, r.host, r.port) == (rfc, host, port)]
        expected = mine[0] if mine and self.owner.get((host, port)) == owner else None
        assert self.index.remove(owner, rfc, host, port) == expected
        if expected is not None:
            self.records.remove(expected)

    @rule(owner=OWNERS)
    def drop_owner(self, owner: str) -> None:
        keys = {k for k, o in self.owner.items() if o == owner}
        kept = [r for r in self.records if (r.host, r.port) not in keys]
        assert self.index.drop_owner(owner) == len(self.records) - len(kept)
        self.records = kept
        self.owner = {k: o for k, o in self.owner.items() if o != owner}
        for key in keys:  # claimed again, it is another peer: its records are new ones
            self.claim[key] = self.claim.get(key, 0) + 1

    @rule(rfc=NUMBERS)
    def lookup(self, rfc: int) -> None:
        assert self.index.lookup(rfc) == [r for r in self.records if r.rfc == rfc]

    @rule()
    def begin_walk(self) -> None:
        if self.walk is not None:
            self.walk.close()
        self.walk = self.index.listing()
        self.walked_ever = True
        self.walked = iter(self.walk)
        self.pending = [self.identity(r) for r in self.records]

    def identity(self, r: Record) -> tuple[Key, int]:
        return (r.rfc, r.host, r.port), self.claim.get((r.host, r.port), 0)

    @rule(steps=st.integers(1, 4))
    def step_walk(self, steps: int) -> None:
        """The next records of the open walk: those of its start that exist now."""
        if self.walked is None:
            return
        for _ in range(steps):
            now = {self.identity(r): r for r in self.records}
            while self.pending and self.pending[0] not in now:
                self.pending.pop(0)
            expected = now[self.pending.pop(0)] if self.pending else None
            assert next(self.walked, None) == expected

    @invariant()
    def same_list(self) -> None:
        with self.index.listing() as walk:
            assert list(walk) == self.records
        assert len(self.index) == len(self.records)
        assert set(self.index.peers()) == set(self.owner)
        for owner in SOURCE:
            held = [r for r in self.records if self.owner[(r.host, r.port)] == owner]
            assert self.index.records_of(owner) == len(held) <= BUDGET.per_connection
        for source in set(SOURCE.values()):
            assert self.index.records_from(source) <= BUDGET.per_source
        self.peak = max(self.peak, len(self.records))
        if not self.walked_ever:
            assert self.index.log_entries <= 2 * self.peak + 4 + 1


IndexModel.TestCase.settings = settings(max_examples=200, stateful_step_count=40,
                                        deadline=None)
test_index_model = IndexModel.TestCase
