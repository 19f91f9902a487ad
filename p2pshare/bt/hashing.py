"""Hashing files for a new torrent: v1 piece SHA-1s and v2 merkle trees, on every core.

Strategy: one thread reads (large chunks: ``CHUNK``) and cuts the data into jobs that
need nothing from each other: a run of whole v1 pieces, a chunk of whole 16 KiB v2 blocks.
``HASH_THREADS`` threads hash the jobs at once (``hashlib`` lets go of the GIL while it
hashes a buffer over 2 KiB), and their results are folded into the pieces and trees by the
reading thread, in the order the jobs were made (``_InOrder``): no state is shared between
threads, and at most ``JOBS_AHEAD`` chunks are held. A v1 piece cut by the end of a chunk
or of a file (a v1 torrent's files follow each other without padding) is hashed a part at
a time by the reading thread itself. Only the piece layer of a v2 file is kept, never all
its leaves, so memory stays 32 bytes a piece.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from .. import limits
from ..protocol import merkle

CHUNK = 4 * limits.MiB  # bytes read from a file at a time (a multiple of merkle.BLOCK)
HASH_THREADS = min(8, os.cpu_count() or 1)
JOBS_AHEAD = 2 * HASH_THREADS + 2  # jobs queued or running at most (each holds a chunk)


class HashInput(Protocol):
    """A file of the piece space, in torrent order (``bt.create.InputFile``)."""

    @property
    def path(self) -> tuple[str, ...]: ...
    @property
    def disk(self) -> Path: ...
    @property
    def size(self) -> int: ...
    @property
    def pad(self) -> bool: ...  # a BEP 47 pad file: zeros, not read


@dataclass
class TorrentHashes:
    """What hashing gives: v1 piece SHA-1s, and each v2 file's root and piece layer."""

    pieces: bytearray
    roots: dict[tuple[str, ...], bytes | None]
    layers: dict[bytes, bytes]


def hash_files(files: Sequence[HashInput], piece_length: int, *, v1: bool, v2: bool,
               progress: Callable[[int], None] = lambda n: None) -> TorrentHashes:
    """Hash ``files`` (in torrent order) for the v1 pieces and/or the v2 trees of real
    files; ``progress`` gets the bytes read.

    Raises:
        OSError: a file could not be read, or changed size while read.
    """
    hashes = TorrentHashes(bytearray(), {}, {})
    with ThreadPoolExecutor(HASH_THREADS) as executor:
        jobs = _InOrder(executor)
        pieces = _V1Pieces(piece_length, jobs, hashes.pieces) if v1 else None
        for source in files:
            tree = _V2File(piece_length) if v2 and not source.pad else None
            for chunk in _chunks(source):
                if pieces is not None:
                    pieces.update(chunk)
                if tree is not None:
                    jobs.submit(partial(merkle.block_hashes, chunk), tree.add)
                if not source.pad:  # pad zeros are not the user's bytes
                    progress(len(chunk))
            if tree is not None:
                jobs.then(partial(tree.finish, source, hashes))
        if pieces is not None:
            pieces.finish()
        jobs.drain()
    return hashes


class _InOrder:
    """Jobs run by a pool; each result folded by the submitting thread, in order."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor
        self.pending: deque[tuple[Future[Any] | None, Callable[[Any], None]]] = deque()

    def submit(self, work: Callable[[], Any], fold: Callable[[Any], None]) -> None:
        self.pending.append((self.executor.submit(work), fold))
        while len(self.pending) > JOBS_AHEAD:
            self._settle()

    def then(self, fold: Callable[[], None]) -> None:
        """Run ``fold`` once every job submitted so far is folded."""
        self.pending.append((None, lambda _: fold()))

    def drain(self) -> None:
        while self.pending:
            self._settle()

    def _settle(self) -> None:
        future, fold = self.pending.popleft()
        fold(future.result() if future is not None else None)


def _chunks(source: HashInput) -> Iterator[memoryview]:
    if source.pad:
        for at in range(0, source.size, CHUNK):
            yield memoryview(bytes(min(CHUNK, source.size - at)))
        return
    left = source.size
    with open(source.disk, "rb", buffering=0) as file:
        while left > 0:
            chunk = file.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield memoryview(chunk)
        if left or file.read(1):
            raise OSError(f"{source.disk} changed size while it was hashed")


def _sha1_run(run: memoryview, piece_length: int) -> bytes:
    """The SHA-1s of consecutive whole pieces."""
    return b"".join(hashlib.sha1(run[at : at + piece_length]).digest()
                    for at in range(0, len(run), piece_length))


class _V1Pieces:
    """The v1 piece space's SHA-1s, fed in chunks of any size by the reading thread."""

    def __init__(self, piece_length: int, jobs: _InOrder, out: bytearray) -> None:
        self.piece_length = piece_length
        self.jobs = jobs
        self.out = out
        self.cut = hashlib.sha1()  # the piece a chunk or file boundary cut
        self.filled = 0

    def update(self, chunk: memoryview) -> None:
        if self.filled:
            take = min(len(chunk), self.piece_length - self.filled)
            self.cut.update(chunk[:take])
            self.filled += take
            chunk = chunk[take:]
            if self.filled < self.piece_length:
                return
            self._cut_done()
        whole = len(chunk) // self.piece_length * self.piece_length
        if whole:
            self.jobs.submit(partial(_sha1_run, chunk[:whole], self.piece_length),
                             self.out.extend)
        if whole < len(chunk):
            self.cut.update(chunk[whole:])
            self.filled = len(chunk) - whole

    def finish(self) -> None:
        if self.filled:
            self._cut_done()

    def _cut_done(self) -> None:
        digest = self.cut.digest()
        self.jobs.then(partial(self.out.extend, digest))
        self.cut, self.filled = hashlib.sha1(), 0


class _V2File:
    """One file's v2 tree, fed its leaves in order."""

    def __init__(self, piece_length: int) -> None:
        self.piece_length = piece_length
        self.per = piece_length // merkle.BLOCK
        self.leaves: list[bytes] = []
        self.layer: list[bytes] = []

    def add(self, leaves: list[bytes]) -> None:
        for leaf in leaves:
            self.leaves.append(leaf)
            if len(self.leaves) == self.per:
                self.layer.append(merkle.root_of(self.leaves))
                self.leaves = []

    def root(self) -> bytes | None:
        if not self.layer:
            return merkle.root_of(self.leaves) if self.leaves else None
        if self.leaves:
            self.layer.append(merkle.root_of(self.leaves, size=self.per))
            self.leaves = []
        return merkle.layer_root(self.layer, self.piece_length)

    def finish(self, source: HashInput, hashes: TorrentHashes) -> None:
        """Record this file's root (and its piece layer if over one piece) in ``hashes``."""
        hashes.roots[source.path] = root = self.root()
        if root is not None and source.size > self.piece_length:
            hashes.layers[root] = b"".join(self.layer)
