"""A torrent's files on disk: pieces read, checked and written through the ``Layout``.

Strategy: the same file discipline as the swarm (``swarm.tree``): a download writes its
files under short hidden temporary names derived from the info-hash, in folders opened one
component at a time without following links, and renames them only once every wanted piece
is verified; a seed opens the files under ``--dir`` read-only. Every access is positional
(``os.pread``/``os.pwrite``, and ``sendfile`` by the seeder), so one open file serves
uploads and a download at once. A piece is verified against every hash the torrent gives:
its v1 SHA-1, and, when the file's piece layer is known, its v2 merkle root (BEP 52: the
root of the piece's 16 KiB block hashes, the bytes past the file's end not included).
``TorrentShape`` is what ``swarm.tree`` and ``swarm.resume`` need to know of a torrent.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..files import Writeback, write_at
from ..protocol.merkle import BLOCK, block_hashes, file_root, root_of
from ..protocol.metainfo import Torrent
from ..swarm.manifest import TreeFile
from ..swarm.pieces import bits, full
from ..swarm.storage import open_regular
from .layout import Layout, Placed

SHA1 = 20
SHA256 = 32


def layout_of(torrent: Torrent) -> Layout:
    """The piece space of ``torrent`` (files aligned to pieces for a v2-only torrent)."""
    files = [(f.path[1:], f.length, f.pad, f.pieces_root) for f in torrent.files]
    return Layout(files, torrent.piece_length, aligned=torrent.v1_hash is None)


def hex_id(torrent: Torrent) -> str:
    """The info-hash that names a torrent's hidden files: v2 if it has one, else v1."""
    digest = torrent.v2_hash or torrent.v1_hash
    assert digest is not None
    return digest.hex()


@dataclass(frozen=True)
class TorrentShape:
    """A torrent as ``swarm.tree.Shape`` and ``swarm.resume.Recorded`` see it: its stored
    files in order (``files`` is () for a single file, whose ``layout`` entry has no path)."""

    id: str
    name: str
    files: tuple[TreeFile, ...]
    layout: tuple[TreeFile, ...]
    count: int

    @classmethod
    def of(cls, torrent: Torrent, layout: Layout) -> TorrentShape:
        stored = layout.stored
        entries = tuple(TreeFile("/".join(f.path), f.length) for f in stored)
        single = len(stored) == 1 and not stored[0].path
        return cls(hex_id(torrent), torrent.name, () if single else entries, entries,
                   layout.count)


@dataclass(eq=False)
class TorrentStore:
    """The files of one torrent and the pieces of it we hold verified.

    Attributes:
        torrent: what the files must hold.
        layout: its piece space.
        handles: per ``Placed.index``, the open file (None for pads and files not held).
        have: bit mask of verified pieces; only these are served.
    """

    torrent: Torrent
    layout: Layout
    handles: dict[int, BinaryIO] = field(default_factory=dict)
    have: int = 0
    layers: dict[bytes, bytes] = field(default_factory=dict)  # v2 piece layers by root
    # the rows of each file's tree above its piece layer, built at its first hash request
    hash_rows: dict[bytes, list[list[bytes]]] = field(default_factory=dict, repr=False)
    # starts the disk writing downloaded pieces as they come (``files``)
    writeback: Writeback = field(default_factory=Writeback, repr=False)

    def __post_init__(self) -> None:
        self.layers = dict(self.torrent.piece_layers) | self.layers

    @property
    def count(self) -> int:
        return self.layout.count

    @property
    def complete(self) -> bool:
        return self.have == full(self.count)

    @classmethod
    def open_seed(cls, torrent: Torrent, data_dir: Path) -> TorrentStore:
        """The complete files of ``torrent`` under ``data_dir`` (``NAME`` for a single
        file, ``NAME/PATH`` for a folder, as every client lays them out), read-only.

        Raises:
            OSError: a file is missing, not a regular file, or of another size.
        """
        layout = layout_of(torrent)
        store = cls(torrent, layout)
        try:
            for f in layout.stored:
                where = data_dir.joinpath(torrent.name, *f.path)
                handle = open_regular(where, follow=True)
                store.handles[f.index] = handle
                size = os.fstat(handle.fileno()).st_size
                if size != f.length:
                    raise OSError(f"{where} holds {size} bytes, not {f.length}")
        except BaseException:
            store.close()
            raise
        return store

    def read(self, start: int, length: int) -> bytes:
        """Bytes ``[start, start + length)`` of the piece space (zeros in pads)."""
        parts: list[bytes] = []
        for run in self.layout.runs(start, length):
            if run.file is None:
                parts.append(bytes(run.length))
                continue
            data = os.pread(self._handle(run.file).fileno(), run.length, run.start)
            if len(data) != run.length:
                raise OSError(f"a file of {self.torrent.name} is shorter than it should be")
            parts.append(data)
        return b"".join(parts)

    def read_piece(self, index: int) -> bytes:
        return self.read(index * self.layout.piece_length, self.layout.length(index))

    def write(self, index: int, data: bytes | bytearray) -> None:
        """Store a piece the caller has verified, and start serving it.

        Raises:
            OSError: the disk refused.
        """
        view = memoryview(data)
        at = 0
        for run in self.layout.piece_runs(index):
            if run.file is not None:
                write_at(self._handle(run.file).fileno(), view[at:at + run.length], run.start,
                         self.writeback)
            at += run.length
        self.have |= 1 << index

    def _handle(self, file: int) -> BinaryIO:
        handle = self.handles.get(file)
        if handle is None:
            raise OSError(f"file {file} of {self.torrent.name} is not open")
        return handle

    def verify(self, index: int, data: bytes | bytearray) -> bool:
        """Whether ``data`` is piece ``index``: its SHA-1 (v1) and, where its file's piece
        layer is known, its merkle root (v2) match. False when no hash can check it."""
        checked = False
        pieces = self.torrent.pieces
        if pieces:
            if hashlib.sha1(data).digest() != pieces[index * SHA1:(index + 1) * SHA1]:
                return False
            checked = True
        if self.torrent.v2_hash is not None:
            v2 = self._v2_check(index, data)
            if v2 is False:
                return False
            checked = checked or v2 is True
        return checked

    def _v2_check(self, index: int, data: bytes | bytearray) -> bool | None:
        """The v2 verdict on a piece: None when its layer is not known (yet)."""
        place = self.layout.v2_place(index)
        if place is None:  # a pad's piece: zeros
            return not any(data)
        f, k = place
        assert f.root is not None
        start = f.offset + k * self.layout.piece_length - index * self.layout.piece_length
        own = memoryview(data)[start:start + min(self.layout.piece_length,
                                                 f.length - k * self.layout.piece_length)]
        leaves = block_hashes(own)
        if f.length <= self.layout.piece_length:
            return file_root(leaves, self.layout.piece_length) == f.root
        layer = self.layers.get(f.root)
        if layer is None:
            return None
        per = self.layout.piece_length // BLOCK
        return root_of(leaves, size=per) == layer[k * SHA256:(k + 1) * SHA256]

    def check(self, index: int) -> bool:
        """Whether the bytes on disk for piece ``index`` verify."""
        try:
            return self.verify(index, self.read_piece(index))
        except OSError:
            return False

    def check_all(self, mask: int | None = None) -> int:
        """Hash the pieces of ``mask`` (all) on disk; hold and return those that verify."""
        good = 0
        for index in bits(full(self.count) if mask is None else mask):
            if self.check(index):
                good |= 1 << index
        self.have |= good
        return good

    def files_of(self, mask: int) -> list[Placed]:
        """The stored files all of whose pieces are in ``mask``."""
        return [f for f in self.layout.stored
                if self.layout.mask_of([f]) & ~mask == 0]

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()
