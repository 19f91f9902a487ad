"""Where a fetch writes: the download folder, its lock, temporary names and final names.

Strategy: every name we add to the download folder is short, fixed and derived from the
swarm id, never from the name a sender chose: ``.p2pshare-<16 hex>.part`` (a file's
temporary file; ``-<i>.part`` for file *i* of a folder, in its own folder),
``.resume.json`` (the verified pieces) and ``.lock``. So a name of 255 bytes, the file
system's limit, is fetched under its own name.

A collection is recreated under ``OUT/<name>/`` with its files' relative paths. Every
folder on the way is opened (or created) one component at a time relative to the one
before (``dir_fd``) with ``O_NOFOLLOW | O_DIRECTORY``, so a symbolic link planted anywhere
in the tree is refused, never followed; each component already passed the name rules
(``manifest.check_path``). The download folder itself (``--out``) is the user's choice and
is followed if it is a link (``~/Downloads`` may be one, ``/tmp`` is on macOS). Files are
written under their temporary names and each given its final name (a hard link, then the
temporary name is removed) only once every piece of the download is verified; a file whose final
name already holds exactly its content counts as held, and one holding anything else stops
the fetch, at the start or, if it appeared while the download ran, at the end (it is never
replaced). Only the files asked for (``--only``) and their folders are created. Folders
appear while the download runs, holding only hidden temporary files until the end. Files
are created ``FETCHED_MODE`` (0o666) less the umask, folders 0o777 less the umask, as any
program's. Every wanted file stays open for the whole fetch (its pieces are served while
it downloads), and every folder until the renames: the process's soft open-file limit is
raised to fit (``net.runtime.raise_fd_limit``); its hard limit bounds how many files of a
folder one process can fetch or share, and a fetch that would not fit is refused before it
creates anything.

Two fetches of one swarm into one folder would write the same temporary files: the lock
file (``fcntl.flock``, held for the whole fetch) makes the second stop at once. The lock
file is removed by its holder before release; a process that locked a file already
removed (its inode is no longer at the name) tries again.
"""

from __future__ import annotations

import errno
import fcntl
import fnmatch
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from ..errors import LocalIOError
from ..files import FILE_MODE, open_partial, start_writeback, sync_folder
from ..net.runtime import raise_fd_limit
from .manifest import Manifest, TreeFile, local
from .pieces import bits
from .storage import DESCRIPTORS_SPARE, PieceFile, sized

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# The download folder itself is the user's choice: a link they made there is followed.
_ROOT = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# A fetched file's mode before the umask, as for any file a program creates (``touch``,
# ``cp``): 0o644 under the usual umask 022, 0o664 under 002.
FETCHED_MODE = 0o666
# Descriptors a fetch needs beside its files and folders, at the least: its sockets, its
# standard streams, the lock. Below this the fetch is refused before it creates anything.
DESCRIPTORS_LEAST = 64
LOCK_ATTEMPTS = 3  # a lock file removed under us each time means someone else is busy


class Locked(LocalIOError):
    """Another fetch of the same swarm into the same folder is running."""


class Occupied(LocalIOError):
    """A final name already holds something else (another file, a link): the user must move
    it away. Our folder's trouble, not the data's (exit status 7, not 5)."""


class Shape(Protocol):
    """What naming and opening a download's files needs of what is downloaded: a swarm's
    ``Manifest``, or a torrent's files (``bt.store.TorrentShape``)."""

    @property
    def id(self) -> str: ...  # names the hidden files: a swarm id, or an info-hash in hex
    @property
    def name(self) -> str: ...
    @property
    def files(self) -> tuple[TreeFile, ...]: ...  # () for a single file
    @property
    def layout(self) -> tuple[TreeFile, ...]: ...


def stem(manifest: Shape) -> str:
    return f".p2pshare-{manifest.id[:16]}"


def part_name(manifest: Shape, file_index: int) -> str:
    suffix = f"-{file_index}" if manifest.files else ""
    return f"{stem(manifest)}{suffix}.part"


def record_path(out_dir: Path, manifest: Shape) -> Path:
    return out_dir / f"{stem(manifest)}.resume.json"


def final_path(out_dir: Path, manifest: Shape) -> Path:
    """The file, or the collection's folder, a fetch into ``out_dir`` produces."""
    return out_dir / local(manifest.name)


def selected(manifest: Manifest, patterns: list[str]) -> list[int]:
    """The files of ``manifest.layout`` that ``patterns`` (fnmatch globs on the relative
    path, or on the name of a single file) pick; every file without patterns."""
    if not patterns:
        return list(range(len(manifest.layout)))
    return [i for i, entry in enumerate(manifest.layout)
            if any(fnmatch.fnmatchcase(entry.path or local(manifest.name), p) for p in patterns)]


@contextmanager
def fetch_lock(out_dir: Path, manifest: Shape) -> Iterator[None]:
    """Hold ``OUT/.p2pshare-<id16>.lock`` for the block.

    Raises:
        Locked: another process holds it.
        OSError: the lock file cannot be created.
    """
    path = out_dir / f"{stem(manifest)}.lock"
    for _ in range(LOCK_ATTEMPTS):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(fd, path):
                break
        except BlockingIOError:
            os.close(fd)
            raise Locked(f"another fetch of {manifest.id[:16]} into {out_dir} is running "
                         "(it holds the lock)") from None
        os.close(fd)
    else:
        raise Locked(f"the lock of {manifest.id[:16]} in {out_dir} keeps being replaced")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        info = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (info.st_dev, info.st_ino) == (mine.st_dev, mine.st_ino)


@dataclass(eq=False)
class _Slot:
    """One wanted file: its folder (open), its final and temporary names."""

    index: int
    folder: int  # descriptor of its folder
    name: str
    temp: str
    shown: Path  # its final path, for messages
    done: bool = False  # the final name already holds it


class Target:
    """The files of ``manifest`` that a fetch into ``out_dir`` writes (``wanted``)."""

    def __init__(self, out_dir: Path, manifest: Shape, wanted: list[int],
                 mode: int = FETCHED_MODE) -> None:
        self.out_dir = out_dir
        self.manifest = manifest
        self.wanted = wanted
        self.mode = mode
        self.slots: list[_Slot] = []
        self._folders: dict[tuple[str, ...], int] = {}  # open folders, shared by their files

    @property
    def final(self) -> Path:
        return final_path(self.out_dir, self.manifest)

    def final_files(self) -> list[Path]:
        """Where each wanted file is once published."""
        m = self.manifest
        return [self.final / m.layout[i].path if m.layout[i].path else self.final
                for i in self.wanted]

    @property
    def mask(self) -> int:
        """The pieces of the wanted files."""
        assert isinstance(self.manifest, Manifest)
        return self.manifest.mask_of(self.wanted)

    def open(self) -> PieceFile:
        """Create the folders, open each wanted file's final (if complete) or temporary file.

        Raises:
            OSError: a symlink or non-folder on the way, or the file system refused.
            Occupied: a final name holds something else.
        """
        assert isinstance(self.manifest, Manifest)
        piece_file = PieceFile(self.manifest, self.open_handles(), 0, self.final)
        try:
            for slot in self.slots:
                if slot.done:
                    _check_whole(piece_file, slot)
        except BaseException:
            piece_file.close()
            raise
        return piece_file

    def open_handles(self) -> list[BinaryIO | None]:
        """``open`` for any ``Shape``: the handles by file of its ``layout`` (None for those
        not wanted); the caller checks the files found complete (``slots``, ``done``).

        Raises:
            as ``open``.
        """
        m = self.manifest
        handles: list[BinaryIO | None] = [None] * len(m.layout)
        self._check_descriptors()
        root = os.open(self.out_dir, _ROOT)
        try:
            for i in self.wanted:
                slot = self._slot(root, i)
                self.slots.append(slot)
                handle = _open_final(slot, m.layout[i].size)
                slot.done = handle is not None
                if handle is None:
                    handle = sized(open_partial(slot.temp, self.mode, slot.folder),
                                   m.layout[i].size)
                handles[i] = handle
        except BaseException:
            for handle in handles:
                if handle is not None:
                    handle.close()
            self.close()
            raise
        finally:
            os.close(root)
        return handles

    def _check_descriptors(self) -> None:
        """Raise the open-file limit to fit every wanted file and its folder, open for the
        whole fetch; refuse before anything is created if the hard limit is too low.

        Raises:
            LocalIOError: it is.
        """
        folders = {self._parts(i)[:-1] for i in self.wanted}
        need = len(self.wanted) + len(folders)
        allowed = raise_fd_limit(need + DESCRIPTORS_SPARE)  # ample room for sockets
        if allowed < need + DESCRIPTORS_LEAST:
            raise LocalIOError(f"{len(self.wanted)} files in {len(folders)} folders need "
                               f"{need} open files; this process may open {allowed} "
                               "(ulimit -n): fetch fewer files at a time with --only")

    def _parts(self, i: int) -> tuple[str, ...]:
        """The local path of file ``i`` below the download folder, by component."""
        entry = self.manifest.layout[i]
        top = local(self.manifest.name)
        return (top, *entry.path.split("/")) if entry.path else (top,)

    def _slot(self, root: int, i: int) -> _Slot:
        parts = self._parts(i)
        where = parts[:-1]
        if where not in self._folders:
            self._folders[where] = _folder(root, list(where))
        return _Slot(i, self._folders[where], parts[-1], part_name(self.manifest, i),
                     self.out_dir.joinpath(*parts))

    def publish(self, handles: list[BinaryIO | None]) -> Path:
        """Flush every wanted file and give it its final name; returns the file or folder.

        Raises:
            OSError: a file could not be made durable or renamed.
            Occupied: a file took a final name while the download ran (it is kept).
        """
        for slot in self.slots:  # the disk writes every file's rest at once
            handle = handles[slot.index]
            if not slot.done and handle is not None:
                start_writeback(handle.fileno())
        for slot in self.slots:
            if slot.done:
                continue
            handle = handles[slot.index]
            assert handle is not None
            os.fsync(handle.fileno())
            _place(slot)
            slot.done = True
        for folder in self._folders.values():
            _sync(folder)
        sync_folder(self.out_dir)
        return self.final

    def close(self) -> None:
        for fd in self._folders.values():
            os.close(fd)
        self._folders.clear()
        self.slots.clear()


def _folder(root: int, parts: list[str]) -> int:
    """The folder ``parts`` below ``root``, created as needed, never through a symlink.

    Raises:
        OSError: a component is a symlink (ELOOP) or not a folder (ENOTDIR).
    """
    fd = os.dup(root)
    try:
        for part in parts:
            try:
                os.mkdir(part, dir_fd=fd)
            except FileExistsError:
                pass
            inner = os.open(part, _FOLDER, dir_fd=fd)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _place(slot: _Slot) -> None:
    """Give the slot's temporary file its final name, never replacing a file that took the
    name since ``Target.open`` found it free (a hard link, then the temporary name goes; a
    file system without hard links gets a rename).

    Raises:
        Occupied: a file took the name meanwhile (it is kept).
        OSError: the file system refused.
    """
    try:
        os.link(slot.temp, slot.name, src_dir_fd=slot.folder, dst_dir_fd=slot.folder,
                follow_symlinks=False)
    except FileExistsError:
        raise Occupied(f"{slot.shown} appeared while it was downloading and is not this "
                       "file; move it away and fetch again") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        os.replace(slot.temp, slot.name, src_dir_fd=slot.folder, dst_dir_fd=slot.folder)
        return
    os.unlink(slot.temp, dir_fd=slot.folder)


def _open_final(slot: _Slot, size: int) -> BinaryIO | None:
    """The file at the slot's final name, if there is one (read-only), else None.

    Raises:
        Occupied: something other than a regular file of the right size is there.
    """
    try:
        fd = os.open(slot.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=slot.folder)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Occupied(f"{slot.shown} is a symbolic link; move it away first") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size != size:
        os.close(fd)
        raise Occupied(f"{slot.shown} exists and is not this file; move it away first")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb", buffering=0)


def _check_whole(piece_file: PieceFile, slot: _Slot) -> None:
    """A file already under its final name must verify whole; its pieces are then held.

    Raises:
        Occupied: it does not.
    """
    mask = piece_file.manifest.mask_of([slot.index])
    if not all(piece_file.check(i) for i in bits(mask)):
        raise Occupied(f"{slot.shown} exists and is not this file; move it away first")
    piece_file.have |= mask


def _sync(folder: int) -> None:
    try:
        os.fsync(folder)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
