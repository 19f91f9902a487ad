"""Files on disk: hashing a file into a manifest, pieces read and written at their offset.

Strategy: every access is positional (``os.pread``/``os.pwrite``, and ``sendfile`` with an
explicit offset), so one open file serves many uploads and a download at once without a
shared file position. A download writes into a temporary file sized to the whole file up
front, piece by piece at each piece's offset; memory holds at most the pieces in flight,
whatever the file's size. ``Library`` is what a piece server may serve: the verified
pieces of the files this process shares or downloads, addressed by (swarm id, index)
only, so no path from the network ever reaches the file system.

A file shared whole may be changed under us (edited, rewritten, replaced, deleted): its
pieces would then no longer verify, and downloaders would count honest seeders as liars.
So a complete file is watched (``FileWatch``: size, mtime and inode as ``os.stat`` gives
them when it is shared, compared again at most once per ``limits.SEED_STAT_INTERVAL``
when a piece of it is asked for). A changed file is withdrawn from the library with a
warning: it is no longer served, and the library's ``on_withdrawn`` hook lets its owner
tell the tracker. Pieces are not hashed again: a file being changed may still be changing,
and a fresh ``share`` publishes the new content as the swarm it now is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .. import limits
from ..files import open_partial, safe_name
from .manifest import Manifest, default_piece_size
from .pieces import full, sha256_matches

ProgressCallback = Callable[[int], None]  # called with the bytes just processed
log = logging.getLogger(__name__)


def hash_file(path: Path, piece_size: int | None = None,
              progress: ProgressCallback | None = None) -> Manifest:
    """Read ``path`` once and build its manifest, named ``files.safe_name(path.name)`` (the
    name a fetcher will give it).

    Raises:
        OSError: the file cannot be read.
        RemoteProtocolError: the file does not fit a manifest (too many pieces).
    """
    size = path.stat().st_size
    piece = piece_size or default_piece_size(size)
    digests: list[bytes] = []
    with open(path, "rb", buffering=0) as handle:
        for offset in range(0, size, piece):
            data = os.pread(handle.fileno(), min(piece, size - offset), offset)
            digests.append(hashlib.sha256(data).digest())
            if progress is not None:
                progress(len(data))
    return Manifest(safe_name(path.name), size, piece, tuple(digests))


class FileWatch:
    """Notices that the file at ``path`` changed since the watch began: another size,
    modification time, inode or device, or no file at all. ``os.stat`` runs at most once
    per ``interval`` seconds (of ``clock``); a change, once seen, stays seen."""

    def __init__(self, path: Path, interval: float = limits.SEED_STAT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path, self.interval, self.clock = path, interval, clock
        self.signature = self._stat()
        self.checked = clock()
        self.change = ""  # what changed, once it has

    def _stat(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev

    def changed(self) -> bool:
        """Whether the file changed (``change`` then says how)."""
        now = self.clock()
        if self.change or now - self.checked < self.interval:
            return bool(self.change)
        self.checked = now
        now_sig = self._stat()
        if now_sig is None:
            self.change = "it is gone"
        elif self.signature is not None and now_sig != self.signature:
            self.change = ("its size changed" if now_sig[0] != self.signature[0] else
                           "it was modified" if now_sig[2:] == self.signature[2:] else
                           "it was replaced by another file")
        return bool(self.change)


@dataclass(eq=False)
class PieceFile:
    """One shared or partly downloaded file, and the pieces of it we hold verified.

    Attributes:
        manifest: what the file must hold.
        handle: the open file (binary, unbuffered) that pieces are read from.
        have: bit mask of verified pieces; only these are ever served.
        watch: notices changes to a complete file on disk (None: not watched).
    """

    manifest: Manifest
    handle: BinaryIO
    have: int = 0
    path: Path = field(default_factory=Path)
    watch: FileWatch | None = None

    @classmethod
    def open_complete(cls, path: Path, manifest: Manifest) -> PieceFile:
        """A file this process shares whole (hashed just before)."""
        handle = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by close())
        return cls(manifest, handle, full(manifest.count), path, FileWatch(path))

    @classmethod
    def create_partial(cls, path: Path, manifest: Manifest) -> PieceFile:
        """Open (or create) a download's temporary file at its full size.

        Raises:
            OSError: ``path`` is a symlink, or the file cannot be opened or sized.
        """
        fd = open_partial(path)
        handle = os.fdopen(fd, "r+b", buffering=0)
        if os.fstat(fd).st_size != manifest.size:
            # Sparse, not reserved with fallocate: on ext4, writing into fallocated
            # (unwritten) extents cost several times more CPU per piece (measured).
            os.ftruncate(fd, manifest.size)
        return cls(manifest, handle, 0, path)

    @property
    def fd(self) -> int:
        return self.handle.fileno()

    @property
    def complete(self) -> bool:
        return self.have == full(self.manifest.count)

    def locate(self, index: int) -> tuple[int, int] | None:
        """(offset, length) of a verified piece we may serve, or None."""
        if not 0 <= index < self.manifest.count or not self.have >> index & 1:
            return None
        return self.manifest.offset(index), self.manifest.length(index)

    def write(self, index: int, data: bytes | bytearray) -> None:
        """Store a piece that the caller has verified, and start serving it."""
        offset = self.manifest.offset(index)
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written
        self.have |= 1 << index

    def read(self, index: int) -> bytes:
        return os.pread(self.fd, self.manifest.length(index), self.manifest.offset(index))

    def check(self, index: int) -> bool:
        """Whether the bytes on disk for ``index`` match the manifest."""
        return sha256_matches(self.read(index), self.manifest.digests[index])

    def close(self) -> None:
        self.handle.close()


class Library:
    """The files a piece server may serve, by swarm id.

    Attributes:
        on_withdrawn: called with a file withdrawn because it changed on disk.
    """

    def __init__(self) -> None:
        self.files: dict[str, PieceFile] = {}
        self.on_withdrawn: Callable[[PieceFile], None] | None = None
        self._retired: list[PieceFile] = []  # withdrawn; an upload may still be sending

    def add(self, piece_file: PieceFile) -> None:
        self.files[piece_file.manifest.id] = piece_file

    def get(self, swarm: str) -> PieceFile | None:
        """The file of ``swarm`` if we serve it, and it has not changed on disk."""
        piece_file = self.files.get(swarm)
        if piece_file is not None and piece_file.watch and piece_file.watch.changed():
            self.withdraw(piece_file)
            return None
        return piece_file

    def withdraw(self, piece_file: PieceFile) -> None:
        """Stop serving a file that changed on disk, and say so."""
        watch = piece_file.watch
        log.warning("[Swarm] %s changed on disk since it was shared (%s): no longer serving "
                    "it (its pieces would fail downloaders' checks); share it again to "
                    "publish the new content", piece_file.path,
                    watch.change if watch else "changed")
        del self.files[piece_file.manifest.id]
        self._retired.append(piece_file)
        if self.on_withdrawn is not None:
            self.on_withdrawn(piece_file)

    def close(self) -> None:
        for piece_file in [*self.files.values(), *self._retired]:
            piece_file.close()
        self.files.clear()
        self._retired.clear()

