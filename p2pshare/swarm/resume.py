"""Resuming a download: which pieces of the temporary file were verified.

Strategy: beside the temporary file, a small JSON file (never pickle) names the swarm id
and the verified pieces as ranges; it is rewritten whole and renamed into place, so it is
always either the old or the new version. On restart the listed pieces are hashed again
and only those that still match are kept: a byte is trusted only after its hash was
checked, whatever happened to the file while we were not running (a SIGKILL between
writing a piece and saving this file, a crash of the machine, a user editing the file).
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


def paths(out_dir: Path, manifest: Manifest) -> tuple[Path, Path]:
    """(temporary file, resume file) of a download into ``out_dir``."""
    stem = f".{manifest.name}.{manifest.id[:16]}"
    return out_dir / f"{stem}.part", out_dir / f"{stem}.resume.json"


def save(path: Path, manifest: Manifest, verified: int) -> None:
    """Record ``verified`` pieces (atomically: write aside, then rename)."""
    text = json.dumps({"format": FORMAT, "id": manifest.id, "name": manifest.name,
                       "verified": encode_ranges(verified)})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
