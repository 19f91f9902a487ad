"""Resuming a download: which pieces of the temporary file were verified.

Strategy: beside the temporary file, a small JSON file (never pickle) names the swarm id
and the verified pieces as ranges; it is rewritten whole and renamed into place, so it is
always either the old or the new version. On restart the listed pieces are hashed again
and only those that still match are kept: a byte is trusted only after its hash was
checked, whatever happened to the file while we were not running (a SIGKILL between
writing a piece and saving this file, a crash of the machine, a user editing the file).

A full disk must not cost a download the pieces it verified, yet writing a new record
needs space. So the record is padded with blanks (valid JSON) to hold twice its text, and
when the disk refuses a new copy, the record is rewritten in place, in one write of its
old length: that needs no new space, and leaves either the old or the new text.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..errors import RemoteProtocolError
from ..protocol.swarm import decode_ranges, encode_ranges
from .manifest import Manifest
from .pieces import bits
from .storage import PieceFile

log = logging.getLogger(__name__)

FORMAT = 1
BLOCK = 4096  # the record's size is a multiple of this (a page, a file-system block)


def paths(out_dir: Path, manifest: Manifest) -> tuple[Path, Path]:
    """(temporary file, resume file) of a download into ``out_dir``."""
    stem = f".{manifest.name}.{manifest.id[:16]}"
    return out_dir / f"{stem}.part", out_dir / f"{stem}.resume.json"


def save(path: Path, manifest: Manifest, verified: int) -> None:
    """Record ``verified`` pieces (atomically: write aside, then rename; on a full disk, in
    place if the old record has room).

    Raises:
        OSError: the record could be written neither way.
    """
    text = json.dumps({"format": FORMAT, "id": manifest.id, "name": manifest.name,
                       "verified": encode_ranges(verified)}).encode("utf-8")
    room = -(-2 * len(text) // BLOCK) * BLOCK
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(text.ljust(room))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        if not _rewrite(path, text):
            raise


def _rewrite(path: Path, text: bytes) -> bool:
    """Overwrite the record at ``path`` with ``text`` padded to its length (no new space
    needed); False if there is no record or ``text`` does not fit in it."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        return len(text) <= size and os.pwrite(fd, text.ljust(size), 0) == size
    except OSError:
        return False
    finally:
        os.close(fd)


def load(path: Path, manifest: Manifest) -> int:
    """The pieces a resume file claims are verified (0 if none, or the file is unusable)."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        if obj.get("format") != FORMAT or obj.get("id") != manifest.id:
            return 0
        return decode_ranges(str(obj.get("verified", "")), manifest.count)
    except (OSError, ValueError, AttributeError, RemoteProtocolError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.warning("ignoring resume file %s: %s", path, exc)
        return 0


def recover(piece_file: PieceFile, claimed: int) -> int:
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
