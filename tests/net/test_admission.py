"""Admission, the pure part of the runtime's slot sharing, by example and as a state machine."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from p2pshare.net.admission import SAMPLE, Admission


def zero(_key: int) -> float:
    return 0.0


def test_caps_with_room_admit() -> None:
    slots: Admission[int] = Admission(3, 2)
    assert slots.admit(1, "a", zero).admitted and slots.admit(2, "b", zero).admitted
    assert slots.total == 2 and slots.count("a") == 1


def test_an_address_at_its_cap_gives_up_its_least_productive() -> None:
    slots: Admission[int] = Admission(10, 3)
    for key in (1, 2, 3):
        slots.admit(key, "a", zero)
    verdict = slots.admit(4, "a", {1: 5.0, 2: 0.5, 3: 9.0}.__getitem__)
    assert verdict.admitted and verdict.evict == 2
    assert slots.remove(2, "a") and slots.count("a") == 3


def test_a_full_server_takes_from_the_biggest_address_only_beyond_a_fair_share() -> None:
    slots: Admission[int] = Admission(4, 10)
    for key in (1, 2, 3):
        slots.admit(key, "flood", zero)
    slots.admit(4, "b", zero)
    verdict = slots.admit(5, "c", zero)
    assert verdict.admitted and verdict.evict == 1  # the longest held of the biggest
    slots.remove(1, "flood")
    assert not slots.admit(6, "flood", zero).admitted  # flood 2, b 1, c 1: flood is refused
    assert not slots.admit(7, "b", zero).admitted  # b would hold 2, as many as flood
    assert slots.admit(8, "d", zero).evict in (2, 3)


def test_a_full_server_lets_an_address_replace_its_own_finished_connection() -> None:
    """A connection that is over (closing: a negative score) does not count against its
    address: a newcomer from it takes its place, however the others stand."""
    slots: Admission[int] = Admission(4, 10)
    for key, source in ((1, "a"), (2, "a"), (3, "b"), (4, "c")):
        slots.admit(key, source, zero)
    verdict = slots.admit(5, "b", {3: -1.0}.get)  # type: ignore[arg-type]
    assert verdict.admitted and verdict.evict == 3


def test_without_eviction_every_newcomer_over_a_cap_is_refused() -> None:
    slots: Admission[int] = Admission(1, 1, evict=False)
    slots.admit(1, "a", zero)
    assert slots.admit(2, "b", zero).admitted is False
    assert slots.admit(3, "a", zero).admitted is False


def test_choosing_looks_at_a_bounded_sample() -> None:
    """An address holding many connections costs SAMPLE score calls, not one per slot."""
    slots: Admission[int] = Admission(100_000, 100_000)
    for key in range(50_000):
        slots.admit(key, "a", zero)
    slots.max_total = 50_000
    calls: list[int] = []

    def score(key: int) -> float:
        calls.append(key)
        return float(key)

    verdict = slots.admit(-1, "b", score)
    assert verdict.evict == 0 and len(calls) == SAMPLE


class Slots(RuleBasedStateMachine):
    """Random arrivals and departures from five addresses: the caps always hold, every
    eviction is fair, and a newcomer is refused only when no address holds more than it
    would."""

    def __init__(self) -> None:
        super().__init__()
        self.slots: Admission[int] = Admission(8, 4)
        self.held: dict[int, str] = {}
        self.next = 0

    @rule(source=st.sampled_from("abcde"), score=st.floats(0, 100))
    def arrive(self, source: str, score: float) -> None:
        self.next += 1
        counts = {s: self.slots.count(s) for s in "abcde"}
        verdict = self.slots.admit(self.next, source, lambda key: score)
        if verdict.evict is not None:
            loser = self.held.pop(verdict.evict)
            assert loser == source or counts[loser] > counts[source] + 1
            assert self.slots.remove(verdict.evict, loser)
        if verdict.admitted:
            self.held[self.next] = source
        else:  # refused only when full and no address holds more than its share
            assert sum(counts.values()) == self.slots.max_total
            assert max(counts.values()) <= counts[source] + 1

    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        if self.held:
            key = data.draw(st.sampled_from(sorted(self.held)))
            assert self.slots.remove(key, self.held.pop(key))

    @invariant()
    def caps_hold(self) -> None:
        assert self.slots.total == len(self.held) <= self.slots.max_total
        for source in "abcde":
            count = sum(1 for s in self.held.values() if s == source)
            assert self.slots.count(source) == count <= self.slots.max_per_source


TestSlots = Slots.TestCase
