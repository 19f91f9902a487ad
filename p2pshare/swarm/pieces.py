"""Sets of pieces as int bit masks, how many peers hold each piece, and hash checks.

Strategy: a set of pieces of one file is a Python int whose bit i stands for piece i:
compact (a 15,000-piece file is 2 KB per peer), and union, intersection and difference
are single C-speed operations. Availability (how many peers hold each piece) is kept as
one mask per level: ``levels[a]`` holds the pieces exactly ``a`` peers have. Adding or
removing a whole peer is then a handful of mask operations per level, not a loop over
pieces, and "the rarest pieces among these" is the first non-empty ``levels[a] & these``.
Pure code: no I/O.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator


def full(count: int) -> int:
    """The mask of all ``count`` pieces."""
    return (1 << count) - 1


def stripe(rank: int, downloaders: int, count: int) -> int:
    """The pieces of ``count`` whose index is ``rank`` modulo ``downloaders``: a repeating
    pattern, made with one division instead of a shift per piece."""
    if not 0 <= rank < downloaders:
        return 0
    reps = (count + downloaders - 1) // downloaders
    pattern = ((1 << (downloaders * reps)) - 1) // ((1 << downloaders) - 1)
    return (pattern << rank) & full(count)


def backup(rank: int, downloaders: int, count: int) -> int:
    """The pieces of ``count`` whose row (index divided by ``downloaders``) is ``rank``
    modulo ``downloaders``: every stripe's share that downloader ``rank`` may relieve its
    owner of (``picker``, rule 1). Disjoint between ranks, and spread over every stripe."""
    if not 0 <= rank < downloaders:
        return 0
    width = downloaders * downloaders
    reps = (count + width - 1) // width
    pattern = ((1 << (width * reps)) - 1) // ((1 << width) - 1)
    return (pattern * full(downloaders) << rank * downloaders) & full(count)


def bits(mask: int) -> Iterator[int]:
    """The pieces in ``mask``, ascending."""
    raw = mask.to_bytes((mask.bit_length() + 7) // 8, "little")
    for byte_index, byte in enumerate(raw):
        while byte:
            low = byte & -byte
            yield byte_index * 8 + low.bit_length() - 1
            byte ^= low


def lowest(mask: int) -> int:
    """The lowest piece of the non-empty ``mask``."""
    return (mask & -mask).bit_length() - 1


def random_bit(mask: int, rng: random.Random) -> int:
    """A piece of the non-empty ``mask``, chosen at random.

    A random starting place, then the first piece at or after it (wrapping round): O(1)
    mask operations. A piece after a long gap is likelier than one in a dense run, which
    is harmless for a tie-break whose purpose is that different peers choose differently.
    """
    return first_from(mask, rng.randrange(mask.bit_length()))


def first_from(mask: int, start: int) -> int:
    """The first piece of the non-empty ``mask`` at or after ``start``, wrapping round."""
    upper = mask >> start
    return start + lowest(upper) if upper else lowest(mask)


def last_before(mask: int, start: int) -> int:
    """The last piece of the non-empty ``mask`` before ``start``, wrapping round: the end
    of the order ``first_from`` begins."""
    lower = mask & ((1 << start) - 1)
    return (lower or mask).bit_length() - 1


def between(mask: int, start: int, end: int) -> int:
    """How many pieces of ``mask`` lie from ``start`` up to ``end`` (not included),
    wrapping round past the last piece when ``end`` is below ``start``."""
    if end >= start:
        return (mask >> start & ((1 << (end - start)) - 1)).bit_count()
    return (mask >> start).bit_count() + (mask & ((1 << end) - 1)).bit_count()


def sha256_matches(data: bytes | bytearray | memoryview, digest: bytes) -> bool:
    """Verification of one piece against its manifest digest."""
    return hashlib.sha256(data).digest() == digest


class Availability:
    """How many peers hold each of ``count`` pieces."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.levels: list[int] = [full(count)]  # at first no peer holds anything

    def add(self, mask: int) -> None:
        """One more peer holds ``mask``."""
        if not mask:
            return
        self.levels.append(0)
        for a in range(len(self.levels) - 1, 0, -1):
            self.levels[a] = (self.levels[a] & ~mask) | (self.levels[a - 1] & mask)
        self.levels[0] &= ~mask
        self._trim()

    def remove(self, mask: int) -> None:
        """A peer that held ``mask`` (counted by ``add``) no longer does."""
        if not mask:
            return
        top = len(self.levels) - 1
        for a in range(top):
            self.levels[a] = (self.levels[a] & ~mask) | (self.levels[a + 1] & mask)
        self.levels[top] &= ~mask
        self._trim()

    def _trim(self) -> None:
        while len(self.levels) > 1 and not self.levels[-1]:
            self.levels.pop()

    def of(self, index: int) -> int:
        """Peers holding piece ``index``."""
        bit = 1 << index
        return next(a for a, level in enumerate(self.levels) if level & bit)

    def rarest(self, among: int) -> int:
        """The pieces of ``among`` that the fewest peers hold (0 if ``among`` is empty)."""
        for level in self.levels:
            found = level & among
            if found:
                return found
        return 0

    def copies(self) -> float:
        """Complete copies held together: the least-held piece's count, plus the share of
        pieces held more often than that (BitTorrent's "distributed copies")."""
        if self.count == 0:
            return 0.0
        for a, level in enumerate(self.levels):
            if level:
                above = self.count - level.bit_count()
                return a + above / self.count
        return 0.0
