"""The download's peer policy, without sockets: whom to connect to, when a link goes, and
how long a dropped peer stays away (``swarm/roster.py``)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.swarm.roster import (
    LinkState,
    LinkVerdict,
    Roster,
    judge,
    piece_deadline,
    quiet_until,
    slow_bar,
)

KiB = 1024
MiB = 1024 * KiB
PIECE = 256 * KiB
SYBILS = [("127.0.0.2", 7000 + i) for i in range(32)]
SEED = ("127.0.0.1", 6881)


def roster(seed: int = 0) -> Roster:
    return Roster(random.Random(seed))


# ---------------------------------------------------------------------- choosing links
def test_untested_peers_are_probed_a_few_at_a_time() -> None:
    r = roster()
    chosen = r.choose(SYBILS, [], now=0.0)
    assert len(chosen) == limits.MAX_UNTESTED_LINKS
    # the rest wait for a probe: an untested link's drop frees one, a tested link's not
    assert r.wanted(tested=False) and not r.wanted(tested=True)
    # with two probes open, only the rest of the allowance is added
    assert len(r.choose(SYBILS, chosen[:2], now=0.0)) == limits.MAX_UNTESTED_LINKS - 2


def test_a_drop_is_wanted_only_when_a_ready_peer_would_take_the_slot() -> None:
    """``wanted`` counts only peers ready now and left out (not those linked, nor those
    cooling down after a drop), and only if the drop would let one in."""
    r = roster()
    few = SYBILS[:limits.MAX_UNTESTED_LINKS]
    assert len(r.choose(few, [], now=0.0)) == len(few)
    assert not r.wanted(tested=False) and not r.wanted(tested=True)
    r.dropped(SYBILS[-1], 0.0)
    assert r.choose([*few, SYBILS[-1]], few, now=0.0) == []
    assert not r.wanted(tested=False)  # it cools down
    assert r.choose([*few, SYBILS[-1]], few, now=limits.PEER_RETRY_DELAY) == []
    assert r.wanted(tested=False) and not r.wanted(tested=True)  # every probe is held
    # room, not probes, is what proven peers and newcomers lack: any drop lets one in
    good = [("10.0.0.1", 6000 + i) for i in range(limits.MAX_PEER_CONNECTIONS + 1)]
    for address in good:
        r.delivered(address, PIECE)
    linked = good[:limits.MAX_PEER_CONNECTIONS]
    assert r.choose([good[-1]], linked, now=0.0) == []
    assert r.wanted(tested=True) and r.wanted(tested=False)
    assert r.choose([SYBILS[-1]], linked, now=limits.PEER_RETRY_DELAY) == []
    assert r.wanted(tested=True)  # a probe is free; the newcomer lacks room


def test_peers_that_delivered_get_the_slots_the_probes_leave() -> None:
    r = roster()
    good = [("10.0.0.1", 6000 + i) for i in range(40)]
    for address in good:
        r.delivered(address, PIECE)
    chosen = r.choose(SYBILS + good, [], now=0.0)
    assert len(chosen) == limits.MAX_PEER_CONNECTIONS
    # every slot went to a peer that delivered; no stranger displaced one
    assert set(chosen) <= set(good)
    # with fewer proven peers, the probes come on top of them
    chosen = r.choose(SYBILS + good[:3], [], now=0.0)
    assert chosen[:3] and set(chosen[:3]) <= set(good)
    assert len(chosen) == 3 + limits.MAX_UNTESTED_LINKS


def test_a_lone_honest_host_is_probed_before_a_crowd_of_fakes_from_one_host() -> None:
    for seed in range(50):
        chosen = roster(seed).choose([*SYBILS, SEED], [], now=0.0)
        assert SEED in chosen
        assert sum(1 for a in chosen if a[0] == "127.0.0.2") == len(chosen) - 1


def test_hosts_already_linked_or_slow_queue_behind_others() -> None:
    r = roster()
    third = ("127.0.0.3", 5000)
    chosen = r.choose([*SYBILS, third], [SYBILS[0]], now=0.0)
    assert chosen[0] == third  # 127.0.0.2 already holds a link
    r.dropped(SYBILS[1], 0.0, slow=True)
    other = ("127.0.0.4", 5000)
    chosen = r.choose([*SYBILS[2:], third, other], [], now=0.0)
    assert chosen[:2] in ([third, other], [other, third])  # 127.0.0.2 was slow before


def test_never_more_links_than_the_cap() -> None:
    r = roster()
    good = [("10.0.0.1", 6000 + i) for i in range(40)]
    for address in good:
        r.delivered(address, PIECE)
    linked = good[:30]
    assert len(r.choose(SYBILS + good, linked, now=0.0)) == 2


def test_dropped_peers_cool_down_and_slow_ones_exponentially_longer() -> None:
    r = roster()
    peer = SYBILS[0]
    assert r.dropped(peer, 100.0) == limits.PEER_RETRY_DELAY
    assert peer not in r.choose([peer], [], now=100.0)
    assert r.choose([peer], [], now=100.0 + limits.PEER_RETRY_DELAY) == [peer]
    assert r.dropped(peer, 0.0, wait=limits.BUSY_RETRY_AFTER) == limits.BUSY_RETRY_AFTER
    delays = [r.dropped(peer, 0.0, slow=True) for _ in range(12)]
    assert delays[:3] == [limits.PEER_RETRY_DELAY, 2 * limits.PEER_RETRY_DELAY,
                          4 * limits.PEER_RETRY_DELAY]
    assert delays[-1] == limits.SLOW_PEER_MAX_DELAY
    assert r.slow_drops(peer) == 12 and r.slow_hosts["127.0.0.2"] == 12
    assert r.choose([peer], [], now=limits.SLOW_PEER_MAX_DELAY - 1) == []


# ---------------------------------------------------------------------- judging links
def state(progress: int, *, rate: float | None = None, tested: bool = False,
          slow: int = 0, sole: bool = False, wanted: bool = False,
          share: float | None = None) -> LinkState:
    return LinkState(0.0, PIECE, progress, rate, tested, slow, sole, wanted, share)


def test_a_new_request_is_not_judged_before_its_time() -> None:
    j = judge(state(0), [], now=0.1)
    assert j.verdict is LinkVerdict.KEEP and j.again == limits.LINK_JUDGE_AFTER


def test_a_trickler_is_dropped_when_judged_with_no_other_link() -> None:
    j = judge(state(10), [], now=limits.LINK_JUDGE_AFTER)
    assert j.verdict is LinkVerdict.DROP and "under" in j.why
    # an honest slow link above the floor stays
    floor = limits.MIN_LINK_RATE
    j = judge(state(int(2 * floor * limits.LINK_JUDGE_AFTER)), [], now=limits.LINK_JUDGE_AFTER)
    assert j.verdict is LinkVerdict.KEEP


def test_a_proven_peer_that_pauses_is_judged_at_its_deadline() -> None:
    deadline = piece_deadline(0.0, PIECE, [])
    assert judge(state(0, tested=True), [], now=limits.LINK_JUDGE_AFTER).verdict \
        is LinkVerdict.KEEP
    j = judge(state(0, tested=True), [], now=deadline)
    assert j.verdict is LinkVerdict.DROP and "under" in j.why


def test_a_link_far_below_the_others_is_dropped_when_a_peer_waits_for_its_slot() -> None:
    others = [10 * MiB, 12 * MiB, 30 * MiB]
    assert slow_bar(others) == 12 * MiB / limits.SLOW_LINK_FRACTION
    t = limits.LINK_JUDGE_AFTER
    assert judge(state(int(MiB * t), wanted=True), others, now=t).verdict is LinkVerdict.DROP
    assert judge(state(int(2 * MiB * t), wanted=True), others, now=t).verdict \
        is not LinkVerdict.DROP
    # nobody waits: an honest relay shared among many keeps its link above the floor,
    # its requests released to others at its deadline, dropped if it still owes then
    assert judge(state(int(MiB * t)), others, now=t).verdict is LinkVerdict.KEEP
    deadline = piece_deadline(0.0, PIECE, others)
    assert judge(state(int(MiB * deadline)), others, now=deadline).verdict \
        is LinkVerdict.RELEASE
    steady = int(2 * limits.MIN_LINK_RATE * 2 * deadline)
    assert steady < PIECE
    assert judge(state(steady), others, now=2 * deadline).verdict is LinkVerdict.DROP
    j = judge(state(10), others, now=t)  # under the floor: gone, whoever waits
    assert j.verdict is LinkVerdict.DROP and "under" in j.why


def test_the_sole_holder_of_pieces_is_judged_by_the_floor_only() -> None:
    """A seeder shared by many, slow next to the others but the only source of pieces we
    lack: kept while above the floor, released past its deadline, never dropped for
    owing; a fake claiming pieces nobody else has still goes when it trickles."""
    others = [10 * MiB, 12 * MiB, 30 * MiB]
    t = limits.LINK_JUDGE_AFTER
    shared = int(MiB * t)  # 1 MiB/s: under the others' bar
    assert judge(state(shared, wanted=True), others, now=t).verdict is LinkVerdict.DROP
    assert judge(state(shared, sole=True, wanted=True), others, now=t).verdict \
        is LinkVerdict.KEEP
    deadline = piece_deadline(0.0, PIECE, others)
    late = 8 * deadline
    steady = int(2 * limits.MIN_LINK_RATE * late)  # above the floor all along
    assert judge(state(steady), [], now=late).verdict is LinkVerdict.DROP
    assert judge(state(steady, sole=True), others, now=late).verdict is LinkVerdict.RELEASE
    j = judge(state(10, sole=True), others, now=t)
    assert j.verdict is LinkVerdict.DROP and "under" in j.why


def test_no_link_is_dropped_for_the_pace_our_download_limit_holds_it_to() -> None:
    """Under our own download limit a link's ``share`` lowers the floor to half of it: a
    link paid for in turns at 4 KiB/s is not dropped under 8 KiB/s; one at a third of
    that is. A waiting peer's bar is never under the floor, with or without a share."""
    share = 4 * KiB
    t = limits.LINK_JUDGE_AFTER
    turned = int(0.6 * share * t)  # 60% of its share so far: under the usual floor
    assert turned / t < limits.MIN_LINK_RATE
    assert judge(state(turned), [], now=t).verdict is LinkVerdict.DROP
    assert judge(state(turned, share=share), [], now=t).verdict is LinkVerdict.KEEP
    assert judge(state(turned // 3, share=share), [], now=t).verdict is LinkVerdict.DROP
    assert judge(state(turned, share=10 * MiB), [], now=t).verdict is LinkVerdict.DROP
    # others at 32 KiB/s make a bar of 4 KiB/s: the floor still holds while a peer waits
    slow = int(5 * KiB * t)
    others = [32.0 * KiB] * 3
    assert judge(state(slow), others, now=t).verdict is LinkVerdict.DROP
    assert judge(state(slow, wanted=True), others, now=t).verdict is LinkVerdict.DROP
    # the only link that delivers, a peer waiting: no other to compare it with, so the
    # share's floor alone (it was dropped under the usual floor, for our own pace)
    assert slow_bar([]) == 0
    assert judge(state(turned, share=share, wanted=True), [], now=t).verdict \
        is LinkVerdict.KEEP
    assert judge(state(turned, wanted=True), [], now=t).verdict is LinkVerdict.DROP


def test_past_the_deadline_requests_are_released_then_the_link_goes() -> None:
    deadline = piece_deadline(0.0, PIECE, [])
    assert deadline == max(limits.PIECE_DEADLINE_MIN,
                           limits.PIECE_DEADLINE_FACTOR * PIECE / limits.ASSUMED_RATE)
    steady = PIECE // 2  # half the piece by twice the deadline: above the floor throughout
    assert steady / (2 * deadline) > limits.MIN_LINK_RATE
    j = judge(state(steady), [], now=deadline)
    assert j.verdict is LinkVerdict.RELEASE and j.again > deadline
    j = judge(state(steady), [], now=2 * deadline)
    assert j.verdict is LinkVerdict.DROP and "owes" in j.why
    # a peer dropped for slowness before gets twice the time
    assert judge(state(steady, slow=1), [], now=2 * deadline).verdict is LinkVerdict.RELEASE
    # a proven peer that is all we have stays while above the floor
    assert judge(state(steady, tested=True), [], now=2 * deadline).verdict is LinkVerdict.RELEASE
    # ... but not when another link delivers
    others = [float(limits.ASSUMED_RATE)]
    assert judge(state(steady, tested=True), others, now=2 * deadline).verdict is LinkVerdict.DROP


@given(head=st.floats(0, 1e4), length=st.integers(1, 16 * MiB),
       progress=st.integers(0, 16 * MiB), rate=st.none() | st.floats(1, 1e9),
       others=st.lists(st.floats(1, 1e9), max_size=8), tested=st.booleans(),
       slow=st.integers(0, 10), later=st.floats(0, 1e3), wanted=st.booleans(),
       share=st.none() | st.floats(1, 1e9))
def test_judging_always_moves_on(head: float, length: int, progress: int, rate: float | None,
                                 others: list[float], tested: bool, slow: int,
                                 later: float, wanted: bool, share: float | None) -> None:
    """No link is dropped before its judging time, and a link kept is judged again later:
    the driver never spins on a link nor drops one unheard."""
    now = head + later
    j = judge(LinkState(head, length, progress, rate, tested, slow, wanted=wanted,
                        share=share), others, now)
    if j.verdict is LinkVerdict.DROP:
        assert now >= head + limits.LINK_JUDGE_AFTER
    else:
        assert j.again > now
    if j.verdict is LinkVerdict.RELEASE:
        assert now >= piece_deadline(head, length, [*others, rate] if rate else others)


@given(head=st.floats(0, 1e4), length=st.integers(1, 16 * MiB),
       progress=st.integers(0, 16 * MiB), rate=st.none() | st.floats(1e-3, 1e12),
       others=st.lists(st.floats(1e-3, 1e12), max_size=8), tested=st.booleans(),
       slow=st.integers(0, 10), early=st.floats(0, 1), wanted=st.booleans(),
       share=st.none() | st.floats(1e-3, 1e12))
def test_a_link_is_kept_until_its_quiet_time_whatever_its_state(
        head: float, length: int, progress: int, rate: float | None, others: list[float],
        tested: bool, slow: int, early: float, wanted: bool, share: float | None) -> None:
    """Before ``quiet_until`` no verdict but KEEP is possible, and the next judgement is
    no sooner: a downloader may skip judging a link so young."""
    quiet = quiet_until(head)
    now = head + (quiet - head) * early
    if now >= quiet:
        return
    j = judge(LinkState(head, length, progress, rate, tested, slow, wanted=wanted,
                        share=share), others, now)
    assert j.verdict is LinkVerdict.KEEP and j.again >= quiet
