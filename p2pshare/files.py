"""Files that appear whole or not at all: a download is written under a hidden temporary
name beside its target and takes the final name only once it is complete and on disk.

Strategy: the temporary file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so that a
name someone planted in the folder (a file, or a symlink pointing elsewhere) is never
opened, written through or reused: a taken name is skipped for a new random one. The
file is made durable before it is renamed (``fsync``), renamed atomically (``os.replace``),
and then the folder is flushed too, so that after a crash the final name holds either the
whole new file or nothing of it. A temporary file that is not committed is removed.

Mode: files are created ``FILE_MODE`` (``0o666``) less the process umask, as any
downloader (curl, wget, a browser) creates them: ``0644`` under the usual ``umask 022``,
group-writable under ``umask 002``, private under ``umask 077``. The mode is one parameter
(``mode``) of ``create_temp``, ``AtomicFile`` and ``open_partial``, defaulting to it.

A partial file that lives across runs (a swarm download's, for resuming) is created the
same way when it is new; an existing one is opened ``O_NOFOLLOW`` and used only if it is a
regular file. Small records (a resume record) are written whole under a temporary name
and renamed (``write_whole``), never through a fixed name someone could plant.

A name chosen by a sender (a shared file's name) becomes a local name only through
``safe_name``, on the sharing side and the fetching side alike: one path component, no
leading dot (no ``.bash_profile``), no control characters, no name Windows reserves, and
short enough that every temporary name we build from it fits the file system's 255 bytes.

Positional writes of big buffers (a received piece) go through ``write_at``, in slices of
``WRITE_SLICE`` bytes: Linux 6.x fills a big buffered write into large page-cache folios,
and with several processes writing at once, 256 KiB writes cost two to five times the
kernel CPU of 32 KiB ones (measured on ext4 with eight writers of 256 MiB each, and in the
swarm benchmark: bench/README.md "Sixth round"); small folios come from the pages the
allocator keeps at hand per CPU.

A download also has the kernel start writing what it wrote to disk as it goes
(``Writeback``: every ``WRITEBACK_EVERY`` bytes written to a file, Linux's
``sync_file_range(SYNC_FILE_RANGE_WRITE)`` over the whole file, which starts write-back of
its dirty pages and neither waits for it nor drops a page from the cache). The disk thus
keeps pace with a download, and the ``fsync`` before the final rename finds little left to
write: in the swarm benchmark, with eight downloads of 64 MiB finishing at once, it took
0.026-0.108 s a downloader, and 0.000-0.002 s with write-back started as pieces came
(bench/README.md "Eleventh round"). Elsewhere (no ``sync_file_range``) nothing is done:
``posix_fadvise(POSIX_FADV_DONTNEED)``, the other way to start write-back, moves the
pages to the end of the kernel's cache lists on Linux and drops them on some other
systems, pages a piece server reads again at once.

Plain ``os`` calls only: callers in an event loop decide which calls run in a thread.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import secrets
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from . import limits

FILE_MODE = 0o666  # less the umask (the module's text)
# A random 64-bit suffix is taken only if someone planted that very name: a few retries
# pass any accident; running out means someone is filling the folder with our names.
TEMP_ATTEMPTS = 16
_CREATE = os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def temp_name(final_name: str, suffix: str) -> str:
    """The hidden temporary name of a download of ``final_name``: ``.<final>.<suffix>.part``,
    ``final`` cut (at a character boundary) so that the whole is at most
    ``MAX_NAME_BYTES`` bytes."""
    room = limits.MAX_NAME_BYTES - len(f"..{suffix}.part".encode())
    return f".{cut_utf8(final_name, room)}.{suffix}.part"


def cut_utf8(text: str, size: int) -> str:
    """The longest start of ``text`` whose UTF-8 form is at most ``size`` bytes."""
    return text.encode("utf-8", "surrogatepass")[: max(size, 0)].decode("utf-8", "ignore")


# Names Windows gives to devices, whatever their extension (``nul.txt`` too).
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"{d}{n}" for d in ("COM", "LPT") for n in "123456789")}
_FORBIDDEN = set('/\\<>:"|?*')  # separators, and what Windows refuses in a name
_EXTENSION = 16  # bytes of an extension kept whole when a long name is shortened
_HASH = 8  # hex digits of the full name's SHA-256 added to a shortened name


def safe_name(name: str, room: int = limits.TEMP_NAME_ROOM) -> str:
    """The local name for a file a sender calls ``name`` (see the module text).

    Forbidden characters become ``_``; surrounding blanks and final dots go; a leading dot
    or a reserved name gets a ``_`` in front; a name over ``MAX_NAME_BYTES - room`` bytes
    of UTF-8 (``room``: what the caller's temporary names add to it; 0 for a caller whose
    temporary names do not contain the name) keeps its extension and the start of its
    stem, followed by ``~`` and a hash of the whole name. Deterministic, and
    ``safe_name(safe_name(n, r), r) == safe_name(n, r)``.
    """
    text = "".join("_" if c in _FORBIDDEN or not c.isprintable() and c != " "
                   or 0xD800 <= ord(c) <= 0xDFFF else c for c in name)
    text = text.strip().rstrip(". ")
    if not text or text.startswith(".") or text.split(".")[0].rstrip().upper() in _RESERVED:
        text = f"_{text}"
    return _shorten(text, limits.MAX_NAME_BYTES - room)


def _shorten(name: str, size: int) -> str:
    data = name.encode("utf-8")
    if len(data) <= size:
        return name
    stem, dot, ext = name.rpartition(".")
    if not stem or len(f"{dot}{ext}".encode()) > _EXTENSION:
        stem, dot, ext = name, "", ""
    tail = f"~{hashlib.sha256(data).hexdigest()[:_HASH]}{dot}{ext}"
    return cut_utf8(stem, size - len(tail.encode())) + tail


def random_suffix() -> str:
    return secrets.token_hex(8)


def create_temp(folder: Path, final_name: str, suffix: Callable[[], str] = random_suffix,
                mode: int = FILE_MODE) -> tuple[int, Path]:
    """Create a new, empty temporary file for ``final_name`` in ``folder``.

    Returns its descriptor (write-only) and path.

    Raises:
        FileExistsError: every name tried was taken.
        OSError: the folder refused the file.
    """
    for _ in range(TEMP_ATTEMPTS):
        path = folder / temp_name(final_name, suffix())
        try:
            return os.open(path, os.O_WRONLY | os.O_EXCL | _CREATE, mode), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary name for {final_name}", str(folder))


def open_partial(path: Path | str, mode: int = FILE_MODE, dir_fd: int | None = None) -> int:
    """Create a long-lived partial file read-write (``O_EXCL``, ``mode`` less the umask), or
    open the one an earlier run left, never through a symlink and only if it is a regular
    file. ``dir_fd``: ``path`` is relative to that open folder (as ``os.open``'s).

    A partial file from an earlier run is reused on resume; its content is trusted only
    after its pieces are hashed again.

    Raises:
        OSError: ``path`` is a symlink (ELOOP), not a regular file, or cannot be opened.
    """
    try:
        return os.open(path, os.O_RDWR | os.O_EXCL | _CREATE, mode, dir_fd=dir_fd)
    except FileExistsError:
        pass
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                 dir_fd=dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    os.set_blocking(fd, True)
    return fd


WRITE_SLICE = 32 * 1024  # bytes per pwrite of write_at (module docstring)


def write_at(fd: int, data: bytes | bytearray | memoryview, offset: int,
             writeback: Writeback | None = None) -> None:
    """Write all of ``data`` into ``fd`` at ``offset``, ``WRITE_SLICE`` bytes per call;
    counted by ``writeback`` if given.

    Raises:
        OSError: the disk refused (part of ``data`` may be written).
    """
    view = memoryview(data).cast("B")  # sliced and advanced in bytes, whatever its items
    size = len(view)
    while view:
        written = os.pwrite(fd, view[:WRITE_SLICE], offset)
        view, offset = view[written:], offset + written
    if writeback is not None:
        writeback.wrote(fd, size)


WRITEBACK_EVERY = 8 * 1024 * 1024  # bytes written to a file between write-back starts


class Writeback:
    """Per file being written (by descriptor), the bytes written since its write-back was
    last started; every ``WRITEBACK_EVERY``, ``start_writeback`` (module docstring)."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[int, int] = {}

    def wrote(self, fd: int, size: int) -> None:
        pending = self._pending.get(fd, 0) + size
        if pending >= WRITEBACK_EVERY:
            start_writeback(fd)
            pending = 0
        self._pending[fd] = pending


_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>


def start_writeback(fd: int) -> None:
    """Have the kernel start writing every dirty page of ``fd`` to disk, and return
    without waiting for it. It runs where it is called (a download's event loop): 2.2 ms
    for the first call of a process, then about 0.2 ms per 8 MiB on the ext4 and virtio
    disk of bench/README.md; on a slow or congested disk it waits while the device's
    queue is full, or for the file system's journal. Only where ``sync_file_range``
    exists (Linux); an error is ignored: the ``fsync`` before the rename still makes the
    file durable. ``tree.Target.publish`` also calls it on every file before flushing
    any, for what is left under ``WRITEBACK_EVERY``."""
    call = _sync_file_range()
    if call is not None:
        call(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range`` (which Python's ``os`` lacks), looked up at first use."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        call = ctypes.CDLL(None).sync_file_range
    except (AttributeError, OSError):
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    call.restype = ctypes.c_int
    return call


def write_whole(path: Path, data: bytes) -> None:
    """Replace the file at ``path`` with ``data``: written under a new temporary name,
    flushed, then renamed over ``path`` (a symlink there is replaced, never followed).

    Raises:
        OSError: the file could not be written (``path`` is then as it was).
    """
    with AtomicFile(path.parent, path.name) as out:
        view = memoryview(data)
        while view:
            view = view[os.write(out.fd, view):]
        out.commit()


def free_space(folder: Path) -> int:
    """Bytes an unprivileged user may still write in ``folder``'s file system.

    Raises:
        OSError: ``folder`` cannot be examined.
    """
    info = os.statvfs(folder)
    return info.f_bavail * info.f_frsize


def publish(fd: int, temp: Path, final: Path) -> None:
    """Make the file open as ``fd`` durable, rename ``temp`` to ``final``, flush the folder.

    Raises:
        OSError: any of the three steps failed (after the rename, ``final`` exists).
    """
    os.fsync(fd)
    os.replace(temp, final)
    sync_folder(final.parent)


def sync_folder(folder: Path) -> None:
    """Flush ``folder``'s entries (a rename) to disk; a file system that cannot is skipped.

    Raises:
        OSError: the flush failed.
    """
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


class AtomicFile:
    """A new file for ``folder/final_name``, written at ``fd`` under a temporary ``path``.

    Use it as a context manager: ``commit()`` gives the file its final name; leaving the
    block without committing (an exception, a length check that failed) closes and
    removes the temporary file, so the folder is as it was.

    Raises (on creation):
        FileExistsError, OSError: as ``create_temp``.
    """

    def __init__(self, folder: Path, final_name: str,
                 suffix: Callable[[], str] = random_suffix, mode: int = FILE_MODE) -> None:
        self.final = folder / final_name
        self.fd, self.path = create_temp(folder, final_name, suffix, mode)
        self.committed = False

    def commit(self) -> Path:
        """Flush, close, rename into place, flush the folder; returns the final path.

        Raises:
            OSError: the file could not be made durable or renamed (it is then removed).
        """
        publish(self.fd, self.path, self.final)
        self.committed = True
        self._close()
        return self.final

    def discard(self) -> None:
        """Close and remove the temporary file (nothing once committed)."""
        self._close()
        if not self.committed:
            self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.discard()
