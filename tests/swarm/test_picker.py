"""The pure piece picker and availability counts: rules by example, then a hypothesis
state machine that checks every invariant after every step."""

from __future__ import annotations

import copy
import math
import random
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from p2pshare import limits
from p2pshare.swarm import pieces as masks
from p2pshare.swarm.fetch import Samples, pace
from p2pshare.swarm.picker import Picker
from p2pshare.swarm.pieces import Availability, backup, bits, full, random_bit, stripe


def mask(*indices: int) -> int:
    return sum(1 << i for i in set(indices))


def picks(picker: Picker, peer: str, count: int) -> list[int]:
    """``count`` pieces picked for ``peer``, sorted; each pick must find one."""
    found = [picker.pick(peer) for _ in range(count)]
    assert None not in found, found
    return sorted(i for i in found if i is not None)


def test_rarest_piece_first() -> None:
    picker = Picker(5, rng=random.Random(1))
    picker.set_peer("a", mask(0, 1, 2, 3))
    picker.set_peer("b", mask(0, 1, 2))
    picker.set_peer("c", mask(0, 1))
    assert picker.pick("a") == 3  # held by a only
    assert picker.pick("a") == 2  # then by a and b
    assert picker.pick("a") in (0, 1)


def test_ties_are_broken_at_random() -> None:
    seen = set()
    for seed in range(40):
        picker = Picker(8, rng=random.Random(seed))
        picker.set_peer("seed", full(8))
        seen.add(picker.pick("seed"))
    assert len(seen) >= 4


def test_a_seeder_is_asked_only_for_our_stripe_while_it_alone_holds_others() -> None:
    picker = Picker(6, rng=random.Random(10))
    picker.set_peer("seed", full(6))
    picker.set_stripe(0, 2)  # pieces 0, 2, 4 are ours; 1, 3, 5 the other downloader's
    assert picks(picker, "seed", 3) == [0, 2, 4]
    assert picker.pick("seed") is None  # 1, 3, 5 are left to their owner
    for index in sorted(picker.requests):
        picker.received(index, "seed")
    assert not picker.requested
    assert picker.pick("seed") is None  # nothing in flight: still left to their owner
    assert not picker.may_pick("seed")
    assert picker.pick("seed", restrain=False) in (1, 3, 5)  # a caller starved
    picker.set_stripe(0, 2, idle=(1,))  # the owner gained nothing for a while
    assert picker.pick("seed") in (1, 3, 5)


def test_stripes_are_every_nth_piece() -> None:
    for downloaders in (1, 2, 3, 8):
        for count in (0, 1, 7, 256, 1001):
            whole = 0
            for rank in range(downloaders):
                mine = stripe(rank, downloaders, count)
                assert mine == sum(1 << i for i in range(rank, count, downloaders))
                assert not whole & mine
                whole |= mine
            assert whole == full(count)
    assert stripe(3, 3, 10) == 0


def test_backup_shares_are_rows_of_stripes() -> None:
    """Downloader ``rank``'s backup share: the pieces whose row (index divided by the
    downloaders) is ``rank`` modulo the downloaders; every piece in exactly one share."""
    for downloaders in (1, 2, 3, 8):
        for count in (0, 1, 7, 64, 256, 1001):
            whole = 0
            for rank in range(downloaders):
                mine = backup(rank, downloaders, count)
                assert mine == sum(1 << i for i in range(count)
                                   if i // downloaders % downloaders == rank)
                assert not whole & mine
                whole |= mine
            assert whole == full(count)
    assert backup(2, 2, 10) == 0


def test_a_downloader_done_with_its_stripe_relieves_the_other_owner_from_the_end() -> None:
    """Each owner asks for its stripe in order from its own start (rank * count /
    downloaders, wrapping round); once ours are all asked for, we take the other owner's
    first copies in our backup share from the end of its order backwards, leaving it the
    first ``SPARE_MARGIN``, which it is fetching now."""
    picker = Picker(64, rng=random.Random(14))
    picker.set_peer("seed", full(64))
    picker.set_stripe(0, 2)  # ours: the even pieces from 0; the other's: the odd from 32
    assert [picker.pick("seed") for _ in range(32)] == list(range(0, 64, 2))
    relieved = [picker.pick("seed") for _ in range(14)]
    # odd, row (i // 2) even, from the end of 33, 35 .. 63, 1 .. 31; not 33 .. 39
    assert relieved == [*range(29, 0, -4), *range(61, 40, -4)]
    assert limits.SPARE_MARGIN == 4 and picker.pick("seed") is None
    other = Picker(64, rng=random.Random(15))
    other.set_peer("seed", full(64))
    other.set_stripe(1, 2)
    assert [other.pick("seed") for _ in range(3)] == [33, 35, 37]  # its owner: from 32


def test_an_owner_that_gains_pieces_fast_is_left_more() -> None:
    """The margin grows by what the owner gained in ``SPARE_SECONDS`` at its recent pace:
    a fast owner will have asked for more before we hear of it."""
    picker = Picker(64, rng=random.Random(16))
    picker.set_peer("seed", full(64))
    picker.set_stripe(0, 2, paces=(0.0, 10 / limits.SPARE_SECONDS))
    picks(picker, "seed", 32)  # ours
    relieved = [picker.pick("seed") for _ in range(9)]
    assert relieved == [*range(29, 0, -4), 61]  # after its first 4 + 10: 33 .. 59
    assert picker.pick("seed") is None
    picker.set_stripe(0, 2, paces=(0.0, 0.0))  # it slowed down: the first 4 are its
    assert [picker.pick("seed") for _ in range(6)] == [57, 53, 49, 45, 41, None]


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_relief_takes_the_last_spare_however_large_the_margins(
        data: st.DataObject) -> None:
    """Once our stripe's first copies are asked for, each pick from the seed is the
    highest of the last first copies, in their owners' orders, in our backup share of
    each other stripe with no fewer than that stripe's margin of its first copies before
    it in that order. A margin is a number of pieces, and a
    claimed pace may make it far more than a stripe holds: the pick's cost must not grow
    with it (it stepped through the margin one big-int operation at a time)."""
    draw = data.draw
    count, downloaders = draw(st.integers(1, 60)), draw(st.integers(2, 4))
    rank = draw(st.integers(0, downloaders - 1))
    paces = draw(st.lists(st.sampled_from([0.0, 1.5, 3.0, 1e18]), min_size=downloaders,
                          max_size=downloaders))
    have = draw(st.integers(0, full(count)))
    picker = Picker(count, have=have, rng=random.Random(0))
    picker.set_peer("seed", full(count))
    picker.set_stripe(rank, downloaders, paces=tuple(paces))
    own = stripe(rank, downloaders, count)
    picks(picker, "seed", (own & ~have).bit_count())
    first = full(count) & ~have
    margins = [limits.SPARE_MARGIN + math.ceil(p * limits.SPARE_SECONDS) for p in paces]
    starts = [r * count // downloaders for r in range(downloaders)]

    def place(i: int) -> int:  # where piece i comes in its owner's order
        return (i - starts[i % downloaders]) % count

    asked = 0
    while True:
        tops = []  # of each other stripe, the last in our backup share, if far enough
        for r in range(downloaders):
            mine = first & backup(rank, downloaders, count) & ~own & ~asked
            candidates = list(bits(mine & stripe(r, downloaders, count)))
            if candidates:
                top = max(candidates, key=place)
                ahead = [j for j in bits(first & stripe(r, downloaders, count))
                         if place(j) < place(top)]
                if len(ahead) >= margins[r]:
                    tops.append(top)
        index = picker.pick("seed")
        assert index == (max(tops) if tops else None)
        if index is None:
            break
        asked |= 1 << index


def test_a_stripes_pace_is_over_the_last_window() -> None:
    samples: Samples = deque()
    window = limits.SPARE_PACE_WINDOW
    assert pace(samples, 0, 10.0) == 0
    assert pace(samples, 5, 10.0 + window / 2) == 10 / window
    assert pace(samples, 5, 10.0 + 2 * window) == 0  # nothing gained within the window
    assert len(samples) == 2
    assert pace(samples, 3, 10.0 + 3 * window) == 0  # a new stripe with fewer: no pace


def test_a_pace_over_less_than_a_poll_is_over_a_poll() -> None:
    """Two samples closer than a PEERS poll (a link's slot freed between polls) make no
    burst: the gain is spread over the poll interval at least."""
    samples: Samples = deque()
    assert limits.PEERS_POLL_INTERVAL < limits.SPARE_PACE_WINDOW / 2
    assert pace(samples, 0, 10.0) == 0
    assert pace(samples, 2, 10.05) == 2 / limits.PEERS_POLL_INTERVAL


def test_a_change_of_stripes_is_no_gain_nor_loss_of_pace() -> None:
    """When the list of downloaders changes, an owner holds another count of its new
    stripe: its pace carries on (it read as thousands of pieces a second when its stripe
    grew, and nothing when it shrank)."""
    window = limits.SPARE_PACE_WINDOW
    samples: Samples = deque()
    pace(samples, 1000, 10.0, (0, 3))
    assert pace(samples, 1005, 10.0 + window / 2, (0, 3)) == 10 / window
    assert pace(samples, 1510, 10.0 + window / 2, (0, 2)) == 10 / window  # one left
    assert pace(samples, 1015, 10.0 + window / 2, (1, 3)) == 10 / window  # one came
    assert pace(samples, 1020, 10.0 + window, (1, 3)) == 10 / window  # 10 more, since 1000


def test_a_seeder_is_asked_only_for_first_copies() -> None:
    picker = Picker(6, rng=random.Random(12))
    picker.set_peer("seed", full(6))
    picker.set_peer("other", mask(0, 1, 2, 3))  # a downloader: it gives us these
    picker.set_stripe(0, 2)
    assert picker.pick("seed") == 4  # ours of the pieces only the seeder holds
    assert picker.pick("seed") is None  # 5 is the other's stripe; 0-3 the other has
    picker.set_stripe(0, 1)  # alone: every first copy is ours
    assert picker.pick("seed") == 5
    assert picker.pick("seed") is None  # nothing in flight and still: 0-3 from "other"
    assert picker.pick("seed", restrain=False) in (0, 1, 2, 3)  # a caller starved
    assert picker.pick("other") in (0, 1, 2, 3)


def test_a_seeder_is_not_asked_for_what_it_said_it_sends_to_others() -> None:
    """Its Sent news (``taken``, kept fresh by the caller): those pieces reach us relayed
    from the downloader they went to. Another seeder is asked for them as before, and so
    is this one once the news is no longer fresh."""
    picker = Picker(8, rng=random.Random(3))
    picker.set_peer("seed", full(8))
    picker.set_peer("seed2", full(8))
    picker.set_stripe(0, 2)  # ours: 0, 2, 4, 6 in that order
    picker.taken["seed"] = mask(0, 2)
    assert [picker.pick("seed"), picker.pick("seed"), picker.pick("seed")] == [4, 6, None]
    assert not picker.may_pick("seed")
    assert picker.pick("seed2") == 0
    del picker.taken["seed"]
    assert picker.pick("seed") == 2
    picker.taken["seed2"] = mask(1)
    picker.remove_peer("seed2")  # gone: so is what it said
    assert "seed2" not in picker.taken


def test_what_a_seeder_sends_the_owner_is_no_first_copy_relief_counts() -> None:
    """Relief leaves an owner its margin of first copies before the piece it takes: the
    pieces the seeder said it is sending (the owner's requests in flight) are not among
    them, so that relief does not take the next piece the owner will ask for."""
    count = 32
    ours = stripe(0, 2, count)
    order = [*range(17, 32, 2), *range(1, 16, 2)]  # the other stripe, from its start 16

    def relief(taken: int) -> int | None:
        picker = Picker(count, have=ours, rng=random.Random(0))
        picker.set_peer("seed", full(count))
        picker.set_stripe(0, 2)
        picker.taken["seed"] = taken
        return picker.pick("seed")

    last = max(i for i in order if backup(0, 2, count) >> i & 1 and i < 16)
    assert last == 13 and order.index(13) >= limits.SPARE_MARGIN
    assert relief(0) == 13
    in_flight = mask(*order[:order.index(13) - limits.SPARE_MARGIN + 1])
    assert relief(in_flight) is None  # a first copy fewer than the margin before 13
    assert relief(mask(*order[:order.index(13) - limits.SPARE_MARGIN])) == 13


def test_a_downloader_that_finished_is_no_seeder() -> None:
    """A peer seen holding some pieces and then all of them finished downloading: its
    upload has nothing else to do, so it is asked for any piece; but what it holds is
    still a first copy to ask the seed for (whose upload has nothing better to do), and
    the seed may send a second copy of a piece it is sending in endgame."""
    picker = Picker(4, rng=random.Random(17))
    picker.set_peer("seed", full(4))
    picker.set_peer("done", mask(1))
    picker.set_peer("done", full(4))  # it finished
    picker.set_stripe(0, 2)  # "done"'s stripe, 1 and 3, no longer binds
    assert picks(picker, "done", 4) == [0, 1, 2, 3]
    picker = Picker(4, rng=random.Random(18))
    picker.set_peer("seed", full(4))
    picker.set_peer("done", mask(1))
    picker.set_peer("done", full(4))
    assert picks(picker, "seed", 4) == [0, 1, 2, 3]  # it did not stop the seed
    assert picker.pick("done") in (0, 1, 2, 3)  # endgame: a second copy of one
    assert picker.pick("seed") is None  # each asked of the seed once already
    picker = Picker(4, rng=random.Random(19))
    picker.set_peer("seed", full(4))
    picker.set_peer("done", mask(1))
    picker.set_peer("done", full(4))
    assert picks(picker, "done", 4) == [0, 1, 2, 3]
    assert picker.pick("seed") in (0, 1, 2, 3)  # endgame: what the finished one sends
    picker = Picker(4, rng=random.Random(20))
    picker.set_peer("seed", full(4))
    picker.set_peer("done", mask(1))
    picker.set_peer("done", full(4))
    picker.remove_peer("done")  # gone, then listed again with every piece: a seeder
    picker.set_peer("done", full(4))
    picker.set_stripe(0, 2)
    assert picks(picker, "done", 2) == [0, 2] and picker.pick("done") is None  # restrained


def test_what_a_peer_we_hold_no_link_to_claims_is_no_first_copy() -> None:
    picker = Picker(4, rng=random.Random(13))
    picker.set_peer("seed", full(4))
    picker.set_peer("ghost", mask(0, 1, 2))  # listed, claims 0-2; no live link to it
    picker.sources = {"seed"}
    assert picks(picker, "seed", 4) == [0, 1, 2, 3]
    assert picker.sole_source("seed")
    picker = Picker(4, rng=random.Random(13))
    picker.set_peer("seed", full(4))
    picker.set_peer("other", mask(0, 1, 2))
    picker.sources = {"seed", "other"}  # linked: it gives us 0-2
    assert picker.pick("seed") == 3 and picker.pick("seed") is None
    picker.failed(1, "other", corrupt=True)  # except what it sent corrupted
    assert picker.pick("seed") == 1


def test_the_sole_source_of_a_piece() -> None:
    picker = Picker(4)
    picker.set_peer("seed", full(4))
    picker.set_peer("other", mask(0, 1, 2))
    assert picker.sole_source("seed")  # piece 3
    assert not picker.sole_source("other")
    picker.received(3, "seed")
    assert not picker.sole_source("seed")  # 3 is ours now; the rest "other" has too
    picker.failed(0, "other", corrupt=True)  # what "other" sent corrupted is no reason
    picker.set_peer("seed", mask(1, 2, 3))
    assert not picker.sole_source("other")  # 0: only from "other", which failed it


def test_the_leader_asks_a_seeder_for_any_piece() -> None:
    picker = Picker(6, rng=random.Random(10))
    picker.set_peer("seed", full(6))
    picker.set_stripe(0, 2)
    picker.leading = True  # rule 4: the others' stripes are no reason to wait
    assert picks(picker, "seed", 6) == list(range(6))


def test_the_others_leave_the_seeder_to_the_leader_and_spare_it() -> None:
    picker = Picker(6, rng=random.Random(11))
    picker.set_peer("seed", full(6))
    picker.set_peer("lead", mask(0, 1, 2, 3))
    picker.set_peer("other", mask(3))
    picker.set_stripe(0, 2)  # ours among the others: 0, 2, 4
    picker.leader = "lead"
    assert picker.pick("seed") is None  # the seeder's upload goes to the leader
    assert picker.peers["seed"] & picker.missing and not picker.may_pick("seed")  # no wake-up
    assert picker.may_pick("seed", restrain=False)
    assert picks(picker, "lead", 2) == [0, 2]  # our stripe only
    assert picker.pick("lead") is None  # 1 is the other's stripe, 3 the other holds
    assert picker.pick("other") == 3
    assert picker.pick("seed", restrain=False) in (1, 4, 5)  # tired of waiting


def test_a_downloader_that_finished_does_not_spare_the_leader() -> None:
    """The leader is asked for our stripe's pieces that no downloader still downloading
    holds, though one that finished holds them: its upload alone (shared by all but the
    leader) would leave the leader's idle."""
    picker = Picker(6, rng=random.Random(21))
    picker.set_peer("seed", full(6))
    picker.set_peer("done", mask(5))
    picker.set_peer("done", full(6))  # it led, and finished
    picker.set_peer("lead", mask(0, 1, 2, 3))
    picker.set_stripe(0, 2)  # ours among the others: 0, 2, 4
    picker.leader = "lead"
    assert picker.pick("seed") is None  # the seeder's upload goes to the leader
    assert picks(picker, "lead", 2) == [0, 2]
    assert picks(picker, "done", 4) == [1, 3, 4, 5]  # any piece


@given(st.data())
@settings(max_examples=500, deadline=None)
def test_may_pick_is_true_whenever_pick_finds_a_piece(data: st.DataObject) -> None:
    """``may_pick`` (whether an idle peer task is woken) on random states, stripes and
    leaders included: never False when ``pick`` would ask for something."""
    draw = data.draw
    count = 24
    picker = Picker(count, have=draw(st.integers(0, full(count))),
                    rng=random.Random(draw(st.integers(0, 99))), endgame_max=2)
    peers = ["seed", "p0", "p1", "p2"]
    for peer in peers:
        if draw(st.booleans()):
            whole = peer == "seed" and draw(st.booleans())
            picker.set_peer(peer, full(count) if whole else draw(st.integers(0, full(count))))
    downloaders = draw(st.integers(1, 4))
    paces = draw(st.lists(st.floats(0, 10), max_size=downloaders))
    picker.set_stripe(draw(st.integers(0, downloaders - 1)), downloaders, paces=tuple(paces))
    picker.leading = draw(st.booleans())
    picker.leader = draw(st.sampled_from([None, *peers]))
    for _ in range(draw(st.integers(0, 8))):  # requests in flight, some released
        index = picker.pick(draw(st.sampled_from(peers)), restrain=draw(st.booleans()))
        if index is not None and draw(st.booleans()):
            picker.release(index)
    for peer in [*peers, "stranger"]:
        for restrain in (True, False):
            may = picker.may_pick(peer, restrain=restrain)
            if copy.deepcopy(picker).pick(peer, restrain=restrain) is not None:
                assert may, (peer, restrain)


def test_only_pieces_the_peer_has_and_we_lack() -> None:
    picker = Picker(4, have=mask(0), rng=random.Random(2))
    picker.set_peer("p", mask(0, 2))
    assert picker.pick("p") == 2
    assert picker.pick("p") is None  # 2 is in flight, 0 we have, 1 and 3 it lacks


def test_endgame_asks_a_second_peer_for_pieces_in_flight() -> None:
    picker = Picker(2, rng=random.Random(3))
    picker.set_peer("slow", full(2))
    picker.set_peer("fast", full(2))
    first, second = picker.pick("slow"), picker.pick("slow")
    assert {first, second} == {0, 1}
    assert picker.endgame
    again = picker.pick("fast")
    assert again in (0, 1)
    assert picker.received(again, "fast")
    assert not picker.received(again, "slow")  # the late duplicate is dropped
    assert picker.pick("fast") == 1 - again


def test_endgame_spares_a_seeder_what_a_downloader_is_sending() -> None:
    picker = Picker(2, rng=random.Random(3))
    picker.set_peer("leech", mask(0))
    picker.set_peer("seed", full(2))
    assert picker.pick("leech") == 0
    assert picker.pick("seed") == 1
    assert picker.endgame
    assert picker.pick("seed") is None  # 0 is coming from the leech
    picker.release(0)  # late: now anyone may be asked
    assert picker.pick("seed") == 0


def test_endgame_asks_at_most_endgame_max_peers_for_one_piece() -> None:
    picker = Picker(1, rng=random.Random(9), endgame_max=2)
    for peer in "abc":
        picker.set_peer(peer, full(1))
    assert picker.pick("a") == 0
    assert picker.pick("b") == 0
    assert picker.pick("c") is None


def test_endgame_waits_while_fresh_pieces_remain() -> None:
    picker = Picker(3, rng=random.Random(4))
    picker.set_peer("a", mask(0, 1))
    picker.set_peer("b", mask(2))
    picker.pick("a")
    assert not picker.endgame
    assert picker.pick("b") == 2


def test_released_piece_goes_to_another_peer_before_endgame() -> None:
    picker = Picker(4, rng=random.Random(5))
    picker.set_peer("slow", mask(0))
    picker.set_peer("other", mask(0, 1, 2, 3))
    assert picker.pick("slow") == 0
    picker.release(0)
    assert not picker.endgame
    assert picker.pick("other") in (1, 2, 3)  # fresh pieces still come first
    picker.pick("other"), picker.pick("other")
    assert picker.pick("other") == 0


def test_corrupt_piece_is_never_asked_of_that_peer_again() -> None:
    picker = Picker(1, rng=random.Random(6))
    picker.set_peer("liar", full(1))
    picker.set_peer("honest", full(1))
    assert picker.pick("liar") == 0
    picker.failed(0, "liar", corrupt=True)
    assert picker.pick("liar") is None
    assert picker.pick("honest") == 0


def test_peer_leaving_frees_its_requests() -> None:
    picker = Picker(2, rng=random.Random(7))
    picker.set_peer("a", full(2))
    picker.set_peer("b", mask(1))
    picker.pick("a"), picker.pick("a")
    picker.remove_peer("a")
    assert picker.pick("b") == 1
    assert picker.availability.of(0) == 0


def test_availability_and_copies() -> None:
    av = Availability(4)
    av.add(full(4))
    av.add(mask(0, 1))
    assert [av.of(i) for i in range(4)] == [2, 2, 1, 1]
    assert av.copies() == 1.5
    assert av.rarest(mask(0, 2)) == mask(2)
    av.remove(full(4))
    assert [av.of(i) for i in range(4)] == [1, 1, 0, 0]
    assert av.copies() == 0.5


def test_random_bit_and_bits() -> None:
    rng = random.Random(8)
    m = mask(3, 64, 200)
    assert list(bits(m)) == [3, 64, 200]
    assert {random_bit(m, rng) for _ in range(200)} == {3, 64, 200}


@given(st.integers(1, 200).flatmap(lambda count: st.tuples(
    st.just(count), st.integers(0, full(count)), st.integers(0, count),
    st.integers(0, count))))
@settings(max_examples=500)
def test_an_order_from_a_start_on_masks_is_the_plain_one(
        case: tuple[int, int, int, int]) -> None:
    """``first_from``, ``last_before`` and ``between`` against a list of the pieces in
    order from ``start``, wrapping round: start 0, start = count, empty masks."""
    count, held, start, end = case
    pieces = list(bits(held))
    order = [i for i in pieces if i >= start] + [i for i in pieces if i < start]
    if order:
        assert masks.first_from(held, start) == order[0]
        assert masks.last_before(held, start) == order[-1]
        assert [masks.between(held, start, i) for i in order] == list(range(len(order)))
    span = range(start, end) if end >= start else [*range(start, count), *range(end)]
    assert masks.between(held, start, end) == sum(held >> i & 1 for i in span)


COUNT = 12
PEERS = ["p0", "p1", "p2", "p3"]


class PickerMachine(RuleBasedStateMachine):
    """Random joins, leaves, picks, arrivals, failures and releases; the model is plain
    Python sets and counts, checked against the picker after every step."""

    @initialize(have=st.integers(0, full(COUNT)), seed=st.integers(0, 2**16))
    def start(self, have: int, seed: int) -> None:
        self.picker = Picker(COUNT, have=have, rng=random.Random(seed), endgame_max=2)
        self.holds: dict[str, int] = {}
        self.in_flight: dict[int, set[str]] = {}
        self.corrupt: set[tuple[str, int]] = set()
        self.downloading: set[str] = set()  # seen holding some pieces, not all

    @rule(peer=st.sampled_from(PEERS), pieces=st.integers(0, full(COUNT)))
    def peer_holds(self, peer: str, pieces: int) -> None:
        self.picker.set_peer(peer, pieces)
        self.holds[peer] = pieces
        if pieces and pieces != full(COUNT):
            self.downloading.add(peer)

    @rule(peer=st.sampled_from(PEERS))
    def peer_leaves(self, peer: str) -> None:
        self.picker.remove_peer(peer)
        self.holds.pop(peer, None)
        self.downloading.discard(peer)
        for askers in self.in_flight.values():
            askers.discard(peer)

    @rule(peer=st.sampled_from(PEERS), restrain=st.booleans())
    def pick(self, peer: str, restrain: bool) -> None:
        p = self.picker
        open_before = {i for i in range(COUNT) if not self.in_flight.get(i)}
        endgame = p.endgame
        released = p.released
        offers = p.peers.get(peer, 0) & p.missing  # it holds a piece we lack
        may = p.may_pick(peer, restrain=restrain)
        index = p.pick(peer, restrain=restrain)
        if index is None:
            return
        assert offers, "picked for a peer that offers nothing"
        assert may, "picked when may_pick said it would not"
        theirs = self.holds.get(peer, 0)
        assert theirs >> index & 1, "asked a peer for a piece it lacks"
        assert not p.have >> index & 1, "asked for a piece we have"
        assert (peer, index) not in self.corrupt
        assert peer not in self.in_flight.get(index, set()), "asked one peer twice"
        fresh = [i for i in bits(theirs & p.missing) if i in open_before
                 and (peer, i) not in self.corrupt]
        if index in open_before:
            counts = {i: self._count(i) for i in fresh}
            assert counts[index] == min(counts.values()), "not the rarest"
        else:
            assert not fresh, "duplicated a request while a fresh piece was available"
            assert released >> index & 1 or endgame
            assert len(self.in_flight[index]) < 2 or released >> index & 1
            seeder = theirs == full(COUNT) and peer not in self.downloading  # not finished
            if seeder and not released >> index & 1:
                assert all(self.holds.get(other) == full(COUNT)
                           for other in self.in_flight[index]), "a seeder asked for a copy " \
                    "a downloader is sending"
        self.in_flight.setdefault(index, set()).add(peer)

    @precondition(lambda self: any(self.in_flight.values()))
    @rule(data=st.data(), outcome=st.sampled_from(["good", "lost", "corrupt", "late"]))
    def answer(self, data: st.DataObject, outcome: str) -> None:
        index = data.draw(st.sampled_from(sorted(i for i, a in self.in_flight.items() if a)))
        peer = data.draw(st.sampled_from(sorted(self.in_flight[index])))
        if outcome == "late":
            self.picker.release(index)
            return
        self.in_flight[index].discard(peer)
        if outcome == "good":
            new = not self.picker.have >> index & 1
            assert self.picker.received(index, peer) == new
            self.in_flight[index] = set()
        else:
            self.picker.failed(index, peer, corrupt=outcome == "corrupt")
            if outcome == "corrupt":
                self.corrupt.add((peer, index))

    def _count(self, index: int) -> int:
        return sum(1 for m in self.holds.values() if m >> index & 1)

    @invariant()
    def availability_matches_the_model(self) -> None:
        if not hasattr(self, "picker"):
            return
        for i in range(COUNT):
            assert self.picker.availability.of(i) == self._count(i)

    @invariant()
    def requests_match_the_model(self) -> None:
        if not hasattr(self, "picker"):
            return
        p = self.picker
        model = {i: a for i, a in self.in_flight.items() if a and not p.have >> i & 1}
        assert {i: a for i, a in p.requests.items()} == model
        assert p.requested == mask(*model)
        assert p.released & ~p.requested == 0


TestPickerMachine = PickerMachine.TestCase
