"""What each peer holds and in which order it downloads: the handout's tasks, pure.

Strategy (docs/p2p-di.md#di-experiments): with ``peers`` peers and ``per_peer``
RFCs each (the handout: 6 and 10, so 60 RFCs and 50 downloads per peer):

- Task 1, centralized: P0 holds all RFCs; P1.. each download the first ``total - per_peer``
  of them from P0, all at the same time.
- Task 2: Pi holds the i-th block of ``per_peer`` RFCs and downloads every other block.
  Worst case: every peer walks the holders in the same order (P0, P1, ...), so they crowd
  the same holder at once. Best case: Pi starts at P(i+1) and walks round, so at each stage
  every holder serves exactly one downloader.

Sample sizes are log-normal around the size of a typical RFC text (median ~40 KiB), from a
fixed seed, clipped to a few KiB .. a few hundred KiB.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import StrEnum

from .. import limits
from ..errors import P2PError

FIRST_RFC = 9601  # "use the 60 most recent RFCs": numbers in the recent range
MEDIAN_SIZE = 40 * limits.KiB
SIZE_SIGMA = 0.9  # log-normal spread: most files 10-200 KiB
MIN_SIZE = 3 * limits.KiB
MAX_SIZE = 400 * limits.KiB
SEED = 573  # the course number: the same files in every run


class ExperimentError(P2PError):
    """A run could not go as planned: a worker died, or a peer could not follow its plan."""


class Case(StrEnum):
    CENTRALIZED = "centralized"  # Task 1
    BEST = "best"  # Task 2
    WORST = "worst"  # Task 2

    @property
    def task(self) -> str:
        return "task1" if self is Case.CENTRALIZED else "task2"


@dataclass(frozen=True, slots=True)
class Plan:
    """``holdings[i]``: the RFCs Pi starts with; ``orders[i]``: (rfc, holder index) to get."""

    case: Case
    holdings: tuple[tuple[int, ...], ...]
    orders: tuple[tuple[tuple[int, int], ...], ...]


def rfc_numbers(peers: int, per_peer: int) -> list[int]:
    return list(range(FIRST_RFC, FIRST_RFC + peers * per_peer))


def sample_sizes(rfcs: list[int], low: int = MIN_SIZE, high: int = MAX_SIZE) -> dict[int, int]:
    """A realistic, reproducible size in [low, high] bytes for each RFC."""
    rng = random.Random(SEED)
    mu = math.log(MEDIAN_SIZE)
    return {rfc: min(high, max(low, int(rng.lognormvariate(mu, SIZE_SIGMA)))) for rfc in rfcs}


def make_plan(case: Case, rfcs: list[int], peers: int) -> Plan:
    """The plan of ``case`` for ``peers`` peers sharing ``rfcs`` (a multiple of ``peers``)."""
    per_peer = len(rfcs) // peers
    if peers < 2 or per_peer < 1 or len(rfcs) % peers:
        raise ValueError("the experiment needs 2 or more peers, the same number of RFCs each")
    if case is Case.CENTRALIZED:
        wanted = tuple((rfc, 0) for rfc in rfcs[: len(rfcs) - per_peer])
        holdings = (tuple(rfcs), *(() for _ in range(peers - 1)))
        return Plan(case, holdings, ((), *(wanted for _ in range(peers - 1))))
    blocks = [tuple(rfcs[i * per_peer:(i + 1) * per_peer]) for i in range(peers)]
    orders = []
    for me in range(peers):
        start = me + 1 if case is Case.BEST else 0
        holders = [(start + k) % peers for k in range(peers)]
        orders.append(tuple((rfc, h) for h in holders if h != me for rfc in blocks[h]))
    return Plan(case, tuple(blocks), tuple(orders))
