"""The choker: tit-for-tat, optimistic unchoke, anti-snubbing, fair shares per address.

Strategy: a few exact tables (who is unchoked after given transfers), then a
``RuleBasedStateMachine`` that adds and removes peers on a handful of addresses, moves
bytes, flips interest and lets time pass, and checks the invariants after every step.
"""

from __future__ import annotations

import random
from collections.abc import Hashable
from typing import cast

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from p2pshare import limits
from p2pshare.bt.choker import Choker

TICK = limits.BT_RECHOKE_INTERVAL


def choker_with(rates: dict[str, tuple[str, int]], slots: int = 4, seed: int = 1) -> Choker:
    """Peers named by ``rates``: (address, bytes they sent us), all interested."""
    choker = Choker(slots, rng=random.Random(seed))
    for peer, (address, _) in rates.items():
        choker.add(peer, address, 0.0)
        choker.interest(peer, theirs=True)
    for peer, (_, nbytes) in rates.items():
        choker.received(peer, nbytes, 1.0)
    return choker


def test_tit_for_tat_and_one_optimistic() -> None:
    rates = {f"p{i}": (f"10.0.0.{i}", i * 1000) for i in range(8)}
    choker = choker_with(rates)
    out = choker.rechoke(TICK)
    assert {"p7", "p6", "p5"} <= out.unchoked and len(out.unchoked) == 4
    assert out.unchoke == out.unchoked and out.choke == frozenset()


def test_not_interested_peers_get_no_slot() -> None:
    choker = choker_with({"a": ("10.0.0.1", 5000), "b": ("10.0.0.2", 1)})
    choker.interest("a", theirs=False)
    assert choker.rechoke(TICK).unchoked == {"b"}


def test_one_address_cannot_take_every_slot() -> None:
    rates = {f"m{i}": ("10.9.9.9", 10**6 + i) for i in range(10)}
    rates |= {"x": ("10.0.0.1", 10), "y": ("10.0.0.2", 5)}
    unchoked = choker_with(rates).rechoke(TICK).unchoked
    regular = {"x", "y"} & unchoked
    assert regular == {"x", "y"}  # each other address got a regular slot
    assert len([p for p in unchoked if str(p).startswith("m")]) <= 2


def test_optimistic_rotates_every_30_seconds() -> None:
    choker = choker_with({f"p{i}": (f"10.0.{i}.1", 0) for i in range(30)}, slots=1)
    first = choker.rechoke(TICK).unchoked
    assert choker.rechoke(2 * TICK).unchoked == first  # 10 s later: kept
    seen = {first}
    now = 2 * TICK
    for _ in range(10):
        now += limits.BT_OPTIMISTIC_INTERVAL
        seen.add(choker.rechoke(now).unchoked)
    assert len(seen) > 2


def test_seeding_ranks_by_what_we_sent() -> None:
    choker = choker_with({f"p{i}": (f"10.0.0.{i}", 0) for i in range(6)}, slots=2)
    choker.seeding = True
    choker.sent("p4", 10**6)
    assert "p4" in choker.rechoke(TICK).unchoked


def test_snubbed_peers_lose_their_regular_slots() -> None:
    """s1 and s2 (we want their pieces) sent nothing for BT_SNUB_TIME: the two regular
    slots go to n1 and n2, whose pieces we do not want, and a snubbed peer can only be
    the optimistic one."""
    choker = choker_with({"s1": ("10.0.0.1", 0), "s2": ("10.0.0.2", 0),
                          "n1": ("10.0.0.3", 0), "n2": ("10.0.0.4", 0)}, slots=3)
    choker.interest("s1", ours=True)
    choker.interest("s2", ours=True)
    later = limits.BT_SNUB_TIME + 1.0
    assert choker.snubbed("s1", later) and not choker.snubbed("n1", later)
    unchoked = choker.rechoke(later).unchoked
    assert {"n1", "n2"} <= unchoked and len(unchoked & {"s1", "s2"}) == 1


class ChokerMachine(RuleBasedStateMachine):
    ADDRESSES = ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5")

    def __init__(self) -> None:
        super().__init__()
        self.choker = Choker(4, rng=random.Random(0))
        self.now = 0.0
        self.peers: dict[int, str] = {}
        self.interested: set[int] = set()
        self.next_id = 0
        self.last_unchoked: frozenset[Hashable] = frozenset()

    @rule(address=st.sampled_from(ADDRESSES))
    def connect(self, address: str) -> None:
        self.choker.add(self.next_id, address, self.now)
        self.peers[self.next_id] = address
        self.next_id += 1

    @rule(address=st.sampled_from(ADDRESSES))
    def crowd(self, address: str) -> None:
        """One address opens many fast connections, all interested."""
        for _ in range(4):
            peer = self.next_id
            self.connect(address)
            self.choker.interest(peer, theirs=True)
            self.interested.add(peer)
            self.choker.received(peer, 10**7, self.now)

    @precondition(lambda self: self.peers)
    @rule(data=st.data())
    def disconnect(self, data: st.DataObject) -> None:
        peer = data.draw(st.sampled_from(sorted(self.peers)))
        self.choker.remove(peer)
        del self.peers[peer]
        self.interested.discard(peer)
        self.last_unchoked -= {peer}

    @precondition(lambda self: self.peers)
    @rule(data=st.data(), theirs=st.booleans(), ours=st.booleans())
    def interest(self, data: st.DataObject, theirs: bool, ours: bool) -> None:
        peer = data.draw(st.sampled_from(sorted(self.peers)))
        self.choker.interest(peer, theirs=theirs, ours=ours)
        (self.interested.add if theirs else self.interested.discard)(peer)

    @precondition(lambda self: self.peers)
    @rule(data=st.data(), nbytes=st.integers(1, 10**6), up=st.booleans())
    def transfer(self, data: st.DataObject, nbytes: int, up: bool) -> None:
        peer = data.draw(st.sampled_from(sorted(self.peers)))
        if up:
            self.choker.sent(peer, nbytes)
        else:
            self.choker.received(peer, nbytes, self.now)

    @rule(seconds=st.sampled_from([1.0, TICK, limits.BT_OPTIMISTIC_INTERVAL]))
    def rechoke(self, seconds: float) -> None:
        self.now += seconds
        out = self.choker.rechoke(self.now)
        assert out.unchoke == out.unchoked - self.last_unchoked
        assert out.choke == self.last_unchoked - out.unchoked
        self.last_unchoked = out.unchoked
        assert out.unchoked <= self.interested
        snubbed = [p for p in out.unchoked if self.choker.snubbed(p, self.now)]
        assert len(snubbed) <= 1  # only through the optimistic slot
        eligible = [p for p in self.interested if not self.choker.snubbed(p, self.now)]
        addresses = {self.peers[p] for p in eligible}
        if len(addresses) >= 3:  # every regular slot went to another address
            per_address = [sum(1 for p in out.unchoked if self.peers[cast(int, p)] == a)
                           for a in addresses]
            assert max(per_address) <= 2  # one regular slot, and maybe the optimistic one

    @invariant()
    def within_the_rules(self) -> None:
        unchoked = self.choker.unchoked
        assert len(unchoked) <= 4
        assert unchoked <= set(self.peers)


ChokerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40,
                                           deadline=None)
TestChoker = ChokerMachine.TestCase
