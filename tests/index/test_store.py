"""MemoryIndex: order, ownership, removal, LOOKUP by number; a stateful model check."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from p2pshare.errors import StoreError
from p2pshare.index.store import MemoryIndex
from p2pshare.protocol.ci import Record

A, B = "owner-a", "owner-b"


def rfcs(index: MemoryIndex) -> list[int]:
    return [r.rfc for r in index.records(index.snapshot())]


def test_empty_index() -> None:
    index = MemoryIndex()
    assert len(index) == 0 and index.peer_count == 0
    assert index.lookup(123) == [] and index.snapshot() == [] and index.peers() == []


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
    keys = index.snapshot()
    index.remove(A, 3, "h", 1)
    index.add(A, 9, "t", "h", 1)
    assert [r.rfc for r in index.records(keys)] == [5, 4, 2, 1]


# ------------------------------------------------------------------------- model check
OWNERS = st.sampled_from(["o1", "o2", "o3"])
NUMBERS = st.integers(1, 6)
HOSTS = st.sampled_from(["h", "g"])
PORTS = st.integers(1, 3)
TITLES = st.sampled_from(["x", "y", "a title"])


class IndexModel(RuleBasedStateMachine):
    """MemoryIndex against a list of records, newest first, and a dict of owners."""

    def __init__(self) -> None:
        super().__init__()
        self.index = MemoryIndex()
        self.records: list[Record] = []
        self.owner: dict[tuple[str, int], str] = {}

    @rule(owner=OWNERS, rfc=NUMBERS, title=TITLES, host=HOSTS, port=PORTS)
    def add(self, owner: str, rfc: int, title: str, host: str, port: int) -> None:
        claimed = self.owner.setdefault((host, port), owner)
        if claimed != owner:
            with pytest.raises(StoreError):
                self.index.add(owner, rfc, title, host, port)
            return
        record = Record(rfc, title, host, port)
        assert self.index.add(owner, rfc, title, host, port) == record
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

    @rule(rfc=NUMBERS)
    def lookup(self, rfc: int) -> None:
        assert self.index.lookup(rfc) == [r for r in self.records if r.rfc == rfc]

    @invariant()
    def same_list(self) -> None:
        assert list(self.index.records(self.index.snapshot())) == self.records
        assert len(self.index) == len(self.records)
        assert set(self.index.peers()) == set(self.owner)


IndexModel.TestCase.settings = settings(max_examples=100, stateful_step_count=30,
                                        deadline=None)
test_index_model = IndexModel.TestCase
