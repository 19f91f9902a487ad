"""Stripes change whenever the list of downloaders does (one joins, finishes, or a Sybil
announces and leaves over and over): the seed's first copies that the others have in
flight then lie in our new stripe. Each owner asks for its stripe in order from its own
start (rank * count / downloaders), so that after a change its first picks seldom lie
where another's requests are in flight (unless a newcomer sorting first moves every
rank, and every start). Pickers only, each downloader with a pipeline of requests to the
seed, news of each piece received at once. (With every owner asking from the lowest index
up, the model below sent 317 of 1,221 pieces twice; in a real swarm on loopback, 3
downloaders of 128 pieces, the seed at 4 MiB/s, a peer announcing and leaving every 0.3 s,
the seed then sent 1.15-1.20 times the file, against 1.02-1.04 with no such peer.)"""

from __future__ import annotations

import random

import pytest

from p2pshare.swarm.picker import Picker
from p2pshare.swarm.pieces import full


def second_copies(downloaders: int, ahead: int, count: int, flip_every: int,
                  steps: int, first: bool = False) -> tuple[int, int]:
    """(pieces the seed sent, second copies among them) while a Sybil joins and leaves
    the list every ``flip_every`` steps (each step, each downloader gets one piece); it
    sorts last, or ``first`` (then every rank, and every start, moves when it comes)."""
    pickers = [Picker(count, rng=random.Random(i)) for i in range(downloaders)]
    for picker in pickers:
        picker.set_peer("seed", full(count))
    sent, held = [0] * count, [0] * downloaders
    flight: list[list[int]] = [[] for _ in range(downloaders)]
    listed = downloaders
    for step in range(steps):
        if step % flip_every == 0:
            listed = downloaders + 1 if listed == downloaders else downloaders
        for rank, picker in enumerate(pickers):
            picker.set_stripe(rank + (first and listed > downloaders), listed)
            for other in range(downloaders):
                if other != rank:
                    picker.set_peer(other, held[other])
            while len(flight[rank]) < ahead and (index := picker.pick("seed")) is not None:
                sent[index] += 1
                flight[rank].append(index)
        for rank, picker in enumerate(pickers):
            if flight[rank]:
                index = flight[rank].pop(0)
                picker.received(index, "seed")
                held[rank] |= 1 << index
    return sum(sent), sum(copies - 1 for copies in sent if copies > 1)


def test_a_listed_peer_that_comes_and_goes_costs_the_seed_few_second_copies() -> None:
    sent, second = second_copies(downloaders=3, ahead=8, count=3000, flip_every=10,
                                 steps=400)
    assert sent > 1000
    assert second <= sent // 50, f"{second} of {sent} pieces sent twice"


@pytest.mark.xfail(strict=True, reason="an owner's start is rank * count / downloaders: a"
                   " Sybil sorting first moves every rank, and with it every start, so"
                   " that an owner's first picks may come to where another one's requests"
                   " are in flight (156 of 2,721 pieces sent twice; bottom-up: 728)")
def test_a_listed_peer_that_sorts_first_costs_the_seed_few_second_copies() -> None:
    sent, second = second_copies(downloaders=3, ahead=8, count=3000, flip_every=10,
                                 steps=900, first=True)
    assert sent > 2000
    assert second <= sent // 50, f"{second} of {sent} pieces sent twice"
