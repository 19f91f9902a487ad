"""Resuming a download: which pieces of the temporary file were verified.

Strategy: beside the temporary file, a small JSON file (never pickle) names the swarm id
and the verified pieces as ranges; it is rewritten whole and renamed into place, so it is
always either the old or the new version. On restart the listed pieces are hashed again
and only those that still match are kept: a byte is trusted only after its hash was
checked, whatever happened to the file while we were not running (a SIGKILL between
writing a piece and saving this file, a crash of the machine, a user editing the file).

The record is written under a new temporary name (``O_EXCL | O_NOFOLLOW``) and renamed,
and the record in place is rewritten only through ``O_NOFOLLOW``: a symlink planted at
either name is replaced or refused, never written through.

A full disk must not cost a download the pieces it verified, yet writing a new record
needs space. So the record is padded with blanks (valid JSON) to hold twice its text, and
when the disk refuses a new copy, the record is rewritten in place, in one write of its
old length: that needs no new space, and leaves either the old or the new text.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Protocol

from ..errors import RemoteProtocolError
from ..files import write_whole
from ..protocol.swarm import decode_ranges, encode_ranges
from . import tree
from .manifest import Manifest
from .pieces import bits

log = logging.getLogger(__name__)

FORMAT = 1
BLOCK = 4096  # the record's size is a multiple of this (a page, a file-system block)
# A record lists at most MAX_PIECES pieces as ranges, padded to twice its text: far less.
MAX_RECORD = 1024 * 1024


class Recorded(Protocol):
    """What a resume record names: a swarm's ``Manifest``, or a torrent (``bt.store``)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def count(self) -> int: ...


class Checked(Protocol):
    """Pieces on disk that can be hashed again: a ``PieceFile``, or a torrent's store."""

    have: int

    def check(self, index: int) -> bool: ...


def paths(out_dir: Path, manifest: Manifest) -> tuple[Path, Path]:
    """(temporary file, resume file) of a single file's download into ``out_dir``: short,
    fixed names from the swarm id (``tree``), whatever the file's name."""
    return out_dir / tree.part_name(manifest, 0), tree.record_path(out_dir, manifest)


def save(path: Path, manifest: Recorded, verified: int) -> None:
    """Record ``verified`` pieces (atomically: write aside, then rename; on a full disk, in
    place if the old record has room).

    Raises:
        OSError: the record could be written neither way.
    """
    text = json.dumps({"format": FORMAT, "id": manifest.id, "name": manifest.name,
                       "verified": encode_ranges(verified)}).encode("utf-8")
    room = -(-2 * len(text) // BLOCK) * BLOCK
    try:
        write_whole(path, text.ljust(room))
    except OSError:
        if not _rewrite(path, text):
            raise


def _rewrite(path: Path, text: bytes) -> bool:
    """Overwrite the record at ``path`` with ``text`` padded to its length (no new space
    needed); False if there is no record or ``text`` does not fit in it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        size = info.st_size
        if not stat.S_ISREG(info.st_mode) or len(text) > size:
            return False
        return os.pwrite(fd, text.ljust(size), 0) == size
    except OSError:
        return False
    finally:
        os.close(fd)


def load(path: Path, manifest: Recorded) -> int:
    """The pieces a resume file claims are verified (0 if none, or the file is unusable)."""
    try:
        obj = json.loads(_read_record(path).decode("utf-8"))
        if obj.get("format") != FORMAT or obj.get("id") != manifest.id:
            return 0
        return decode_ranges(str(obj.get("verified", "")), manifest.count)
    except (OSError, ValueError, AttributeError, RecursionError, RemoteProtocolError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.warning("ignoring resume file %s: %s", path, exc)
        return 0


def _read_record(path: Path) -> bytes:
    """The record at ``path``, read only if it is a regular file (never through a symlink,
    never blocking on a planted FIFO), at most ``MAX_RECORD`` bytes.

    Raises:
        OSError: anything else is there, or nothing.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return handle.read(MAX_RECORD)


def recover(piece_file: Checked, claimed: int) -> int:
    """Hash every claimed piece again; return (and mark held) those that match."""
    good = 0
    for index in bits(claimed):
        if piece_file.check(index):
            good |= 1 << index
    dropped = claimed.bit_count() - good.bit_count()
    if dropped:
        log.warning("%d pieces listed as verified no longer match; fetching them again",
                    dropped)
    piece_file.have |= good
    return good
