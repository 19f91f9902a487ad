"""Where each piece of a torrent lies in its files: pure arithmetic, no I/O.

Strategy: a torrent's pieces are numbered in one *piece space*, the concatenation of its
files. In a v1 torrent a piece may span several files, and pad files (BEP 47) only hold
zeros to align the next file; in a v2 torrent (BEP 52) each file starts a new piece, as if
every file were followed by padding to a piece boundary (a hybrid torrent writes those
pads as BEP 47 pad files, so its v1 and v2 piece spaces are the same). ``Layout`` places
each file of a torrent (pads included) at its offset in that space and answers, for a
piece or a block, which runs of which files hold it: every read, write and ``sendfile``
of the session goes through ``runs``. A pad file or the gap after a v2 file has no file on
disk: its bytes read as zeros and are never written.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from ..protocol._bt_state import Geometry
from ..swarm.pieces import full

BLOCK = 16 * 1024  # the unit of requests and of v2 merkle leaves (BEP 3, BEP 52)


@dataclass(frozen=True, slots=True)
class Placed:
    """One file of the torrent in the piece space.

    Attributes:
        index: its place in the torrent's file list (pads included).
        path: its path components below the torrent's name (() for a single file).
        length: its bytes.
        offset: where it starts in the piece space.
        pad: a BEP 47 pad file (zeros, never stored).
        root: its v2 ``pieces root``, or None (v1, or an empty file).
    """

    index: int
    path: tuple[str, ...]
    length: int
    offset: int
    pad: bool = False
    root: bytes | None = None


@dataclass(frozen=True, slots=True)
class Run:
    """Bytes ``[start, start + length)`` of file ``file`` (a ``Placed.index``), or, with
    ``file`` None, zeros (a pad, or the gap after a v2 file)."""

    file: int | None
    start: int
    length: int


class Layout:
    """The piece space of a torrent: its files placed, its pieces counted.

    Args:
        files: (path, length, pad, root) of each file, in the torrent's order.
        piece_length: bytes per piece (a power of two, at least 16 KiB).
        aligned: each file starts a new piece (v2, and hybrid where pads already do it).
    """

    def __init__(self, files: list[tuple[tuple[str, ...], int, bool, bytes | None]],
                 piece_length: int, *, aligned: bool) -> None:
        self.piece_length = piece_length
        self.aligned = aligned
        placed: list[Placed] = []
        offset = 0
        for i, (path, length, pad, root) in enumerate(files):
            if aligned and not pad:
                offset = -(-offset // piece_length) * piece_length
            placed.append(Placed(i, path, length, offset, pad, root))
            offset += length
        self.files = tuple(placed)
        self.by_root: dict[bytes, list[Placed]] = {}  # files by v2 root (equal files share one)
        for f in placed:
            if f.root is not None and not f.pad:
                self.by_root.setdefault(f.root, []).append(f)
        self.size = offset  # the end of the last file: the piece space's length
        self.count = -(-offset // piece_length)
        self._starts = [f.offset for f in placed]

    @property
    def stored(self) -> tuple[Placed, ...]:
        """The files that are on disk (not pads)."""
        return tuple(f for f in self.files if not f.pad)

    def length(self, index: int) -> int:
        """Bytes of piece ``index`` on the wire: the last piece may be short, and in a v2
        space (``aligned``) so is the last piece of each file (BEP 52), whose gap up to
        the next piece is no part of it."""
        end = self.size
        if self.aligned:
            place = self.v2_place(index)
            if place is not None:
                end = place[0].offset + place[0].length
        return min(self.piece_length, end - index * self.piece_length)

    def short_pieces(self) -> dict[int, int]:
        """Pieces shorter than ``piece_length``, with their lengths."""
        ends = [f.offset + f.length for f in self.files if f.length and
                (self.aligned or f is self.files[-1])]
        short = {}
        for end in ends:
            index = (end - 1) // self.piece_length
            if self.length(index) != self.piece_length:
                short[index] = self.length(index)
        return short

    def runs(self, start: int, length: int) -> list[Run]:
        """The runs of files (and zeros) that hold ``[start, start + length)`` of the space."""
        out: list[Run] = []
        end = start + length
        at = start
        i = max(bisect_right(self._starts, at) - 1, 0)
        while at < end:
            f = self.files[i] if i < len(self.files) else None
            if f is None or at < f.offset:  # a gap before a file (aligned), or past the end
                stop = min(end, f.offset if f is not None else end)
                out.append(Run(None, 0, stop - at))
                at = stop
                continue
            stop = min(end, f.offset + f.length)
            if stop > at:
                out.append(Run(None if f.pad else f.index, at - f.offset, stop - at))
                at = stop
            i += 1
        return out

    def piece_runs(self, index: int) -> list[Run]:
        return self.runs(index * self.piece_length, self.length(index))

    def pieces_of(self, file: Placed) -> range:
        """The pieces that hold any byte of ``file`` (none for an empty file)."""
        if not file.length:
            return range(0)
        first = file.offset // self.piece_length
        return range(first, (file.offset + file.length - 1) // self.piece_length + 1)

    def mask_of(self, files: list[Placed]) -> int:
        mask = 0
        for f in files:
            r = self.pieces_of(f)
            if r:
                mask |= ((1 << len(r)) - 1) << r.start
        return mask

    def v2_place(self, index: int) -> tuple[Placed, int] | None:
        """(file, piece within the file) of piece ``index`` in an aligned space, or None
        for a piece of a pad."""
        at = index * self.piece_length
        i = bisect_right(self._starts, at) - 1
        while i >= 0 and (self.files[i].pad or not self.files[i].length):
            i -= 1
        if i < 0:
            return None
        f = self.files[i]
        if at >= f.offset + f.length:
            return None
        return f, (at - f.offset) // self.piece_length

    def bytes_in(self, mask: int) -> int:
        """Bytes of the pieces of ``mask``."""
        whole = mask.bit_count() * self.piece_length
        for index, length in self.short_pieces().items():
            if mask >> index & 1:
                whole -= self.piece_length - length
        return whole


def geometry_of(layout: Layout) -> Geometry:
    """The pieces as the peer wire codec checks them."""
    return Geometry(layout.count, layout.piece_length, layout.short_pieces())


def serving_geometry(layout: Layout) -> Geometry:
    """The pieces as a seed accepts requests for them. BEP 52 makes the last piece of each
    v2 file short, and libtorrent 2.1 asks only for its bytes; libtorrent 2.0 (qBittorrent
    4.5) pads every file of a v2 torrent to a whole piece, the last one included, and asks
    for whole 16 KiB blocks at a file's end. So in a v2 space (``aligned``) every piece is
    whole; the bytes past a file's end are zeros (``runs``), and both are answered. A v1
    space is as the wire has it (its last piece short)."""
    if layout.aligned:
        return Geometry(layout.count, layout.piece_length)
    return Geometry.v1(layout.size, layout.piece_length)


_REVERSED = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def mask_of_bitfield(bitfield: bytes, count: int) -> int:
    """A BEP 3 bitfield (piece 0 is the high bit of the first byte) as a piece mask (piece
    i is bit i)."""
    return int.from_bytes(bitfield.translate(_REVERSED), "little") & full(count)


def bitfield_of(mask: int, count: int) -> bytes:
    """A piece mask as a BEP 3 bitfield."""
    return mask.to_bytes(-(-count // 8), "little").translate(_REVERSED)
