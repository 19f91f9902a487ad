"""Files on disk: hashing a file or a folder into a manifest, pieces read and written at
their offset in their file.

Strategy: every access is positional (``os.pread``/``os.pwrite``, and ``sendfile`` with an
explicit offset), so one open file serves many uploads and a download at once without a
shared file position. A download writes into temporary files sized to their whole size
up front, piece by piece at each piece's offset in its file; memory holds at most the
pieces in flight, whatever the size. ``Library`` is what a piece server may serve: the
verified pieces of the swarms this process shares or downloads, addressed by (swarm id,
index) only, so no path from the network ever reaches the file system.

A shared folder is walked without following symbolic links (a link inside it, to a file
or a folder, is skipped with a note: sharing must not reach out of the folder), and only
regular files are listed; each path component gets its local form (``manifest.local``),
the name a fetcher will write. Empty folders are not listed (a collection is its files).

A swarm shared whole may be changed under us (edited, rewritten, replaced, deleted): its
pieces would then no longer verify, and downloaders would count honest seeders as liars.
So its files are watched (``FileWatch``: size, mtime and inode as ``os.stat`` gives
them when they are shared, compared again at most once per ``limits.SEED_STAT_INTERVAL``
when a piece of it is asked for). A changed file is withdrawn from the library with a
warning: it is no longer served, and the library's ``on_withdrawn`` hook lets its owner
tell the tracker. Pieces are not hashed again: a file being changed may still be changing,
and a fresh ``share`` publishes the new content as the swarm it now is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .. import limits
from ..errors import RemoteProtocolError
from ..files import Writeback, open_partial, write_at
from ..net.runtime import raise_fd_limit
from .manifest import Manifest, TreeFile, default_piece_size, local
from .pieces import full, sha256_matches

log = logging.getLogger(__name__)
ProgressCallback = Callable[[int], None]  # called with the bytes just processed
# Descriptors a peer needs besides its shared files (sockets, the loop, logs).
DESCRIPTORS_SPARE = 1024


@dataclass(frozen=True, slots=True)
class Source:
    """A file to share: its path in the manifest, where it is, its size."""

    path: str
    where: Path
    size: int


def hash_file(path: Path, piece_size: int | None = None,
              progress: ProgressCallback | None = None) -> Manifest:
    """Read ``path`` once and build its manifest, named ``manifest.local(path.name)`` (the
    name a fetcher will give it).

    Raises:
        OSError: the file cannot be read.
        RemoteProtocolError: the file does not fit a manifest (too many pieces).
    """
    size = path.stat().st_size
    piece = piece_size or default_piece_size(size)
    return Manifest(local(path.name), size, piece,
                    _digests(path, size, piece, progress, follow=True))


def scan_tree(root: Path) -> list[Source]:
    """The regular files under ``root``, in manifest path order (symlinks skipped).

    Raises:
        OSError: a folder cannot be listed.
        RemoteProtocolError: over ``limits.MAX_COLLECTION_FILES`` files, a path too deep
            or too long, two files whose local names coincide, or no file at all.
    """
    found: list[Source] = []
    _scan(root, (), found)
    if not found:
        raise RemoteProtocolError(f"{root} holds no file to share")
    found.sort(key=lambda s: s.path)
    for one, two in zip(found, found[1:], strict=False):
        if one.path == two.path:
            raise RemoteProtocolError(f"{one.where} and {two.where} would both be {one.path}")
    return found


def _scan(folder: Path, prefix: tuple[str, ...], found: list[Source]) -> None:
    if len(prefix) >= limits.MAX_PATH_DEPTH:
        raise RemoteProtocolError(f"{folder} is more than {limits.MAX_PATH_DEPTH} deep")
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            parts = (*prefix, local(entry.name))
            if entry.is_symlink():
                log.warning("[Swarm] not following the symbolic link %s", entry.path)
            elif entry.is_dir(follow_symlinks=False):
                _scan(Path(entry.path), parts, found)
            elif entry.is_file(follow_symlinks=False):
                path = "/".join(parts)
                if len(path.encode("utf-8", "surrogatepass")) > limits.MAX_PATH_BYTES:
                    raise RemoteProtocolError(f"{entry.path}: path over "
                                              f"{limits.MAX_PATH_BYTES} bytes")
                found.append(Source(path, Path(entry.path),
                                    entry.stat(follow_symlinks=False).st_size))
                if len(found) > limits.MAX_COLLECTION_FILES:
                    raise RemoteProtocolError(f"more than {limits.MAX_COLLECTION_FILES} "
                                              "files in one folder")


def tree_piece_size(sizes: list[int]) -> int:
    """The default piece size of a collection: ``default_piece_size`` of its total, doubled
    while its files (each starting at a new piece) have more than
    ``limits.SWARM_TARGET_PIECES`` pieces."""
    piece = default_piece_size(sum(sizes))
    while piece < limits.MAX_PIECE_SIZE and \
            sum(-(-s // piece) for s in sizes) > limits.SWARM_TARGET_PIECES:
        piece *= 2
    return piece


def hash_tree(root: Path, sources: list[Source], piece_size: int | None = None,
              progress: ProgressCallback | None = None) -> Manifest:
    """The manifest of the folder ``root`` whose files ``scan_tree`` listed as ``sources``.

    Raises:
        OSError: a file cannot be read.
        RemoteProtocolError: the folder does not fit a manifest.
    """
    piece = piece_size or tree_piece_size([s.size for s in sources])
    digests: list[bytes] = []
    for source in sources:
        digests += _digests(source.where, source.size, piece, progress, follow=False)
    files = tuple(TreeFile(s.path, s.size) for s in sources)
    return Manifest(local(root.resolve().name), sum(s.size for s in sources), piece,
                    tuple(digests), files)


def _digests(path: Path, size: int, piece: int, progress: ProgressCallback | None, *,
             follow: bool) -> tuple[bytes, ...]:
    if -(-size // piece) > limits.MAX_PIECES:
        raise RemoteProtocolError(f"{path}: more than {limits.MAX_PIECES} pieces")
    digests: list[bytes] = []
    with open_regular(path, follow=follow) as handle:
        for offset in range(0, size, piece):
            data = os.pread(handle.fileno(), min(piece, size - offset), offset)
            digests.append(hashlib.sha256(data).digest())
            if progress is not None:
                progress(len(data))
    return tuple(digests)


def open_regular(path: Path, *, follow: bool = False) -> BinaryIO:
    """``path`` opened for reading, only if a regular file (a FIFO does not block the
    open); through a symlink only if ``follow`` (a path the user named, not one found
    inside a shared folder).

    Raises:
        OSError: anything else is there, or nothing.
    """
    nofollow = 0 if follow else os.O_NOFOLLOW
    fd = os.open(path, os.O_RDONLY | nofollow | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb", buffering=0)


class FileWatch:
    """Notices that a file of ``paths`` (a file, or a folder's files) changed since the
    watch began: another size, modification time, inode or device, or no file at all.
    ``os.stat`` runs at most once per ``interval`` seconds (of ``clock``); a change, once
    seen, stays seen."""

    def __init__(self, paths: Path | Sequence[Path], interval: float = limits.SEED_STAT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.paths = [paths] if isinstance(paths, Path) else list(paths)
        self.interval, self.clock = interval, clock
        self.signatures = [_signature(path) for path in self.paths]
        self.checked = clock()
        self.change = ""  # what changed, once it has

    def changed(self) -> bool:
        """Whether a file changed (``change`` then says which and how)."""
        now = self.clock()
        if self.change or now - self.checked < self.interval:
            return bool(self.change)
        self.checked = now
        for path, before in zip(self.paths, self.signatures, strict=True):
            how = _how_changed(before, _signature(path))
            if how:
                self.change = how if len(self.paths) == 1 else f"{path.name}: {how}"
                break
        return bool(self.change)


def _signature(path: Path) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev


def _how_changed(before: tuple[int, ...] | None, now: tuple[int, ...] | None) -> str:
    if now is None:
        return "it is gone"
    if before is None or now == before:
        return ""
    return ("its size changed" if now[0] != before[0] else
            "it was modified" if now[2:] == before[2:] else "it was replaced by another file")


@dataclass(eq=False)
class PieceFile:
    """One shared or partly downloaded swarm (a file, or a folder's files), and the pieces
    of it we hold verified.

    Attributes:
        manifest: what the files must hold.
        handles: per file of ``manifest.layout``, the open file (binary, unbuffered) its
            pieces are read from and written to; None for a file we do not hold.
        have: bit mask of verified pieces; only these are ever served.
        path: the file, or the collection's folder (for messages).
        watch: notices changes to a complete swarm's files on disk (None: not watched).
        uplink_full: a seeder of this swarm said ``Uplink: full`` (``limits.UPLINK_*``), or
            we did as its seeder: our answers for it say so too.
        writeback: starts the disk writing downloaded pieces as they come (``files``).
    """

    manifest: Manifest
    handles: list[BinaryIO | None]
    have: int = 0
    path: Path = field(default_factory=Path)
    watch: FileWatch | None = None
    uplink_full: bool = False
    writeback: Writeback = field(default_factory=Writeback, repr=False)

    @classmethod
    def open_complete(cls, path: Path, manifest: Manifest,
                      sources: list[Source] | None = None) -> PieceFile:
        """A swarm this process shares whole (hashed just before): the file ``path``, or
        the folder ``path`` with its ``sources``."""
        wheres = [s.where for s in sources] if sources else [path]
        raise_fd_limit(len(wheres) + DESCRIPTORS_SPARE)  # each file stays open, for sendfile
        handles: list[BinaryIO | None] = []
        try:
            for where in wheres:
                handles.append(open_regular(where, follow=not sources))
        except OSError:
            for handle in handles:
                assert handle is not None
                handle.close()
            raise
        return cls(manifest, handles, full(manifest.count), path, FileWatch(wheres))

    @classmethod
    def create_partial(cls, path: Path, manifest: Manifest) -> PieceFile:
        """Open (or create) a single file's temporary file at its full size.

        Raises:
            OSError: ``path`` is a symlink, or the file cannot be opened or sized.
        """
        return cls(manifest, [sized(open_partial(path), manifest.size)], 0, path)

    @property
    def handle(self) -> BinaryIO:
        """The first file's handle (a single file's)."""
        handle = self.handles[0]
        assert handle is not None
        return handle

    @property
    def fd(self) -> int:
        return self.handle.fileno()

    @property
    def complete(self) -> bool:
        return self.have == full(self.manifest.count)

    def handle_of(self, index: int) -> BinaryIO:
        handle = self.handles[self.manifest.file_of(index)]
        if handle is None:
            raise OSError(f"piece {index} is in a file we do not hold")
        return handle

    def locate(self, index: int) -> tuple[BinaryIO, int, int] | None:
        """(file, offset, length) of a verified piece we may serve, or None."""
        if not 0 <= index < self.manifest.count or not self.have >> index & 1:
            return None
        return self.handle_of(index), self.manifest.offset(index), self.manifest.length(index)

    def write(self, index: int, data: bytes | bytearray) -> None:
        """Store a piece that the caller has verified, and start serving it."""
        write_at(self.handle_of(index).fileno(), data, self.manifest.offset(index),
                 self.writeback)
        self.have |= 1 << index

    def read(self, index: int) -> bytes:
        return os.pread(self.handle_of(index).fileno(), self.manifest.length(index),
                        self.manifest.offset(index))

    def check(self, index: int) -> bool:
        """Whether the bytes on disk for ``index`` match the manifest."""
        return sha256_matches(self.read(index), self.manifest.digests[index])

    def close(self) -> None:
        for handle in self.handles:
            if handle is not None:
                handle.close()


def sized(fd: int, size: int) -> BinaryIO:
    """The file open as ``fd`` (read-write), made ``size`` bytes long if it is not.

    Raises:
        OSError: it cannot be sized (it is then closed).
    """
    handle = os.fdopen(fd, "r+b", buffering=0)
    try:
        if os.fstat(fd).st_size != size:
            # Sparse, not reserved with fallocate: on ext4, writing into fallocated
            # (unwritten) extents cost several times more CPU per piece (measured).
            os.ftruncate(fd, size)
    except OSError:
        handle.close()
        raise
    return handle


class Library:
    """The swarms a piece server may serve, by swarm id.

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

