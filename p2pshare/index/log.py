"""The order of the index's records, for LIST ALL readers that walk it while it changes.

Strategy: an append-only log of record keys, one entry per (re-)add, each stamped with the
tick (a counter of mutations) at which it was written and, once the record is removed or
added again, the tick at which it stopped being current. A reader notes the tick at which
it starts (``begin``) and walks the log backwards from there: an entry written before that
tick and still current at it is exactly a record that was live when the reader started, at
its place then. So a LIST ALL holds two integers and the index is never copied per request
(a reader that stops reading holds nothing more until the write-stall deadline cuts it
off). Entries that no reader can see any more (each open reader began before they were
written or after they were retired) are dropped when they outnumber the current ones
(``compact``): each compaction at least halves the log or waits for it to double (while
open readers still need what it could not drop), so its cost is O(1) per mutation,
amortized, and the log holds at most about twice the records plus what open readers need.

Sequence numbers never change, so a compaction cannot lose a reader's place: a reader
finds its entry again by bisection after one (``epoch`` tells it), and moves by index
otherwise. Pure code: no I/O.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from itertools import compress, count

CURRENT = 2**62  # the end tick of an entry still current
MIN_COMPACT = 1024  # entries below which a log is never compacted


def _seen(seq: int, end: int, starts: list[int]) -> bool:
    """Whether an entry written at ``seq`` and retired at ``end`` is current, or seen by a
    reader that began at one of ``starts`` (ascending)."""
    later = bisect_right(starts, seq)
    return end == CURRENT or (later < len(starts) and starts[later] <= end)


class KeyLog:
    """Record keys in the order they were added, newest last."""

    def __init__(self, min_compact: int = MIN_COMPACT) -> None:
        self._min_compact = min_compact
        self._seqs = array("q")  # each entry's tick, ascending
        self._keys = array("q")
        self._ends = array("q")  # the tick at which each entry stopped being current
        self._clock = 0
        self._retired = 0  # entries not current
        self._compact_at = min_compact
        self._readers: dict[int, int] = {}  # reader token -> the tick it began at
        self._tokens = count()
        self.epoch = 0  # compactions so far

    def __len__(self) -> int:
        """Entries held, current or not."""
        return len(self._seqs)

    def append(self, key: int) -> int:
        """Log ``key`` as the newest record; returns its entry's tick."""
        seq = self._clock
        self._clock += 1
        self._seqs.append(seq)
        self._keys.append(key)
        self._ends.append(CURRENT)
        return seq

    def retire(self, seq: int) -> None:
        """The entry of tick ``seq`` is no longer current (its record removed or re-added)."""
        self._ends[self._find(seq)] = self._clock
        self._clock += 1
        self._retired += 1
        if self._retired * 2 > len(self._seqs) and len(self._seqs) >= self._compact_at:
            self.compact()

    def _find(self, seq: int) -> int:
        return bisect_left(self._seqs, seq)

    def compact(self) -> None:
        """Drop the entries that no open reader (nor any later one) can see: an entry is
        seen by a reader that began after it was written and before it was retired."""
        starts = sorted(set(self._readers.values()))
        if starts:
            keep = [_seen(seq, end, starts) for seq, end in zip(self._seqs, self._ends,
                                                                 strict=True)]
        else:
            keep = [end == CURRENT for end in self._ends]
        self._seqs = array("q", compress(self._seqs, keep))
        self._keys = array("q", compress(self._keys, keep))
        self._ends = array("q", compress(self._ends, keep))
        self._retired = sum(1 for end in self._ends if end != CURRENT)
        self._compact_at = max(self._min_compact, 2 * len(self._seqs))
        self.epoch += 1

    def begin(self) -> int:
        """Open a reader: returns its token (``walk`` it, then ``end`` it)."""
        token = next(self._tokens)
        self._readers[token] = self._clock
        return token

    def end(self, token: int) -> None:
        """Close reader ``token``; once none is open, the next retirement may compact."""
        self._readers.pop(token, None)
        if not self._readers:
            self._compact_at = self._min_compact

    def walk(self, token: int) -> Iterator[int]:
        """The keys live when reader ``token`` began, newest first (a record removed since
        may still be among them: the caller checks that it still exists)."""
        start = self._readers[token]
        epoch, i = self.epoch, self._find(start) - 1
        while i >= 0:
            if self._ends[i] >= start:
                seq = self._seqs[i]
                yield self._keys[i]
                if epoch != self.epoch:  # compacted while we were away: find our place
                    epoch, i = self.epoch, self._find(seq)
            i -= 1
