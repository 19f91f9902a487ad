"""Files that appear whole or not at all: a download is written under a hidden temporary
name beside its target and takes the final name only once it is complete and on disk.

Strategy: the temporary file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so that a
name someone planted in the folder (a file, or a symlink pointing elsewhere) is never
opened, written through or reused: a taken name is skipped for a new random one. The
file is made durable before it is renamed (``fsync``), renamed atomically (``os.replace``),
and then the folder is flushed too, so that after a crash the final name holds either the
whole new file or nothing of it. A temporary file that is not committed is removed.

Mode: files are created ``0o644`` and the process umask applies (a user who asked for
private files with ``umask 077`` gets them), as for any file a program creates.

Plain ``os`` calls only: callers in an event loop decide which calls run in a thread.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

FILE_MODE = 0o644
# A random 64-bit suffix is taken only if someone planted that very name: a few retries
# pass any accident; running out means someone is filling the folder with our names.
TEMP_ATTEMPTS = 16
_CREATE = os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def temp_name(final_name: str, suffix: str) -> str:
    """The hidden temporary name of a download of ``final_name``: ``.<final>.<suffix>.part``."""
    return f".{final_name}.{suffix}.part"


def random_suffix() -> str:
    return secrets.token_hex(8)


def create_temp(folder: Path, final_name: str,
                suffix: Callable[[], str] = random_suffix) -> tuple[int, Path]:
    """Create a new, empty temporary file for ``final_name`` in ``folder``.

    Returns its descriptor (write-only) and path.

    Raises:
        FileExistsError: every name tried was taken.
        OSError: the folder refused the file.
    """
    for _ in range(TEMP_ATTEMPTS):
        path = folder / temp_name(final_name, suffix())
        try:
            return os.open(path, os.O_WRONLY | os.O_EXCL | _CREATE, FILE_MODE), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary name for {final_name}", str(folder))


def open_partial(path: Path) -> int:
    """Open (or create) a long-lived partial file read-write, never through a symlink.

    Not ``O_EXCL``: a partial file from an earlier run is reused on resume, and its
    content is trusted only after its pieces are hashed again.

    Raises:
        OSError: ``path`` is a symlink (ELOOP) or cannot be opened.
    """
    return os.open(path, os.O_RDWR | _CREATE, FILE_MODE)


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
                 suffix: Callable[[], str] = random_suffix) -> None:
        self.final = folder / final_name
        self.fd, self.path = create_temp(folder, final_name, suffix)
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
