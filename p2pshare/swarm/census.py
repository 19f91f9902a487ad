"""The tracker's count of who holds which piece of a swarm: O(1) per piece reported.

Strategy: the tracker needs, per swarm, only the availability a FILES line shows (the
least-held piece's count, and how many pieces are held more often), never "the rarest of
these pieces", which is what ``pieces.Availability`` (one mask per level) answers for the
picker at O(levels) mask operations per change. A flood of HAVE reports from a swarm of
many members would pay that per message; here each piece a member gains or loses costs a
few integer operations: a count per piece, a tally of pieces per count and the lowest
count in use. A member can gain each piece once per ANNOUNCE, whose manifest body is
longer than the pieces it lists, so HAVE costs O(1) amortized per message byte. Pure code.
"""

from __future__ import annotations

from array import array
from collections import Counter

from .pieces import bits


class PieceCensus:
    """How many members hold each of ``count`` pieces."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._held = array("I", bytes(4 * count))  # members holding each piece
        self._tally = [count]  # _tally[c]: pieces held by exactly c members
        self._low = 0  # the least count any piece has
        self.held = 0  # pieces held, summed over the members (the dashboard's rates)

    @classmethod
    def of_counts(cls, counts: array[int]) -> PieceCensus:
        """The census whose pieces have these holder counts (the shared store's)."""
        census = cls(0)
        census.count, census._held = len(counts), counts
        census.held = sum(counts)
        census._low = min(counts, default=0)
        tally = Counter(counts)
        census._tally = [tally[c] for c in range(max(counts, default=0) + 1)]
        return census

    def add(self, mask: int) -> None:
        """One member gained the pieces of ``mask`` (none of which it held)."""
        held, tally = self._held, self._tally
        self.held += mask.bit_count()
        for index in bits(mask):
            c = held[index]
            held[index] = c + 1
            tally[c] -= 1
            if c + 1 == len(tally):
                tally.append(0)
            tally[c + 1] += 1
        while self.count and not tally[self._low]:  # one step per piece at most
            self._low += 1

    def remove(self, mask: int) -> None:
        """A member that held the pieces of ``mask`` (counted by ``add``) left."""
        held, tally = self._held, self._tally
        self.held -= mask.bit_count()
        for index in bits(mask):
            c = held[index]
            held[index] = c - 1
            tally[c] -= 1
            tally[c - 1] += 1
            self._low = min(self._low, c - 1)

    def of(self, index: int) -> int:
        """Members holding piece ``index``."""
        return self._held[index]

    def copies(self) -> float:
        """Complete copies held together: the least-held piece's count, plus the share of
        pieces held more often than that (BitTorrent's "distributed copies")."""
        if self.count == 0:
            return 0.0
        return self._low + (self.count - self._tally[self._low]) / self.count

    def slices(self, buckets: int) -> list[int]:
        """The fewest holders of any piece in each of up to ``buckets`` runs of pieces
        of (nearly) equal length, in piece order: availability at a glance (dashboard)."""
        n = min(buckets, self.count)
        return [min(self._held[i * self.count // n:(i + 1) * self.count // n])
                for i in range(n)]
