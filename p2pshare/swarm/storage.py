"""Files on disk: hashing a file into a manifest, pieces read and written at their offset.

Strategy: every access is positional (``os.pread``/``os.pwrite``, and ``sendfile`` with an
explicit offset), so one open file serves many uploads and a download at once without a
shared file position. A download writes into a temporary file sized to the whole file up
front, piece by piece at each piece's offset; memory holds at most the pieces in flight,
whatever the file's size. ``Library`` is what a piece server may serve: the verified
pieces of the files this process shares or downloads, addressed by (swarm id, index)
only, so no path from the network ever reaches the file system.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..files import open_partial, safe_name
from .manifest import Manifest, default_piece_size
from .pieces import full, sha256_matches

ProgressCallback = Callable[[int], None]  # called with the bytes just processed


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


@dataclass(eq=False)
class PieceFile:
    """One shared or partly downloaded file, and the pieces of it we hold verified.

    Attributes:
        manifest: what the file must hold.
        handle: the open file (binary, unbuffered) that pieces are read from.
        have: bit mask of verified pieces; only these are ever served.
    """

    manifest: Manifest
    handle: BinaryIO
    have: int = 0
    path: Path = field(default_factory=Path)

    @classmethod
    def open_complete(cls, path: Path, manifest: Manifest) -> PieceFile:
        """A file this process shares whole (hashed just before)."""
        handle = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by close())
        return cls(manifest, handle, full(manifest.count), path)

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
    """The files a piece server may serve, by swarm id."""

    def __init__(self) -> None:
        self.files: dict[str, PieceFile] = {}

    def add(self, piece_file: PieceFile) -> None:
        self.files[piece_file.manifest.id] = piece_file

    def get(self, swarm: str) -> PieceFile | None:
        return self.files.get(swarm)

    def close(self) -> None:
        for piece_file in self.files.values():
            piece_file.close()
        self.files.clear()

