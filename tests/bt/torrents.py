"""Test torrents for the interop tests: content, and .torrent files made by libtorrent.

Strategy: the reference torrents come from libtorrent (the wheel), not from p2pshare, so
that an interop test does not check p2pshare against itself; where p2pshare seeds, the
torrent and its magnet link can come from ``p2pshare torrent create`` instead, read back
by libtorrent (``made_by_p2pshare``), so that the clients read what p2pshare writes. A
v1, a v2 (BEP 52) or a hybrid torrent of a few MiB of random bytes, with the last piece
short, one tracker tier (the test's tracker, HTTP or UDP) and nothing else in it: no
outside tracker, no DHT node, no web seed. The content is a single file, or a folder of
three files (hybrid torrents then get BEP 47 pad files, which a v1-only client must
treat as files of zeros it may create).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..helpers import run_cli

KINDS = ("v1", "v2", "hybrid")
MiB = 1024 * 1024
PIECE = 64 * 1024  # small pieces: many of them, so a swarm really exchanges them


@dataclass(frozen=True)
class TestTorrent:
    """A .torrent, its content's folder, and the ids a client or a tracker sees."""

    kind: str
    path: Path  # the .torrent file
    data_dir: Path  # the folder that holds ``name`` (a seed's --dir)
    name: str  # the file or the top folder of the content
    magnet: str
    v1_hash: bytes | None
    v2_hash: bytes | None  # the full 32 bytes

    @property
    def announce_hashes(self) -> list[bytes]:
        """The 20-byte info-hashes announced to a tracker: a v2 hash truncated (BEP 52)."""
        return [h[:20] for h in (self.v1_hash, self.v2_hash) if h is not None]

    @property
    def content(self) -> Path:
        return self.data_dir / self.name


def make_content(folder: Path, name: str = "data.bin", size: int = 3 * MiB + 12345,
                 files: int = 1) -> Path:
    """Random bytes (the last piece short): one file ``name``, or a folder ``name`` of
    ``files`` files of different lengths. Returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    if files == 1:
        (folder / name).write_bytes(os.urandom(size))
        return folder / name
    for i in range(files):
        part = folder / name / f"part{i}.bin"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(os.urandom(size // files + 1000 * i))
    return folder / name


def make_torrent(content: Path, kind: str, trackers: list[str], out: Path,
                 piece: int = PIECE) -> TestTorrent:
    """Hash ``content`` into a ``kind`` torrent with libtorrent, announcing to ``trackers``
    (one tier each, in order), written to ``out``."""
    import libtorrent as lt  # the wheel of the test extra

    flags = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}
    creator = lt.create_torrent(lt.list_files(str(content)), piece, flags[kind])
    for tier, url in enumerate(trackers):
        creator.add_tracker(url, tier)
    creator.set_creator("p2pshare interop tests")
    lt.set_piece_hashes(creator, str(content.parent))
    out.write_bytes(lt.bencode(creator.generate()))
    return read_back(out, kind, content, None)


def made_by_p2pshare(content: Path, kind: str, trackers: list[str], out: Path,
                     piece: int = PIECE) -> TestTorrent:
    """``make_torrent``, by ``p2pshare torrent create`` (with the magnet link it prints)."""
    done = run_cli(["torrent", "create", str(content), "-o", str(out), f"--{kind}",
                    "--piece-size", f"{piece // 1024}K", *(f"--tracker={t}" for t in trackers)])
    assert done.returncode == 0, done.stderr
    return read_back(out, kind, content, done.stdout.split()[-1])


def read_back(path: Path, kind: str, content: Path, magnet: str | None) -> TestTorrent:
    """The ``TestTorrent`` of the .torrent at ``path``, as libtorrent reads it (its magnet
    link unless ``magnet`` is given)."""
    import libtorrent as lt

    info = lt.torrent_info(str(path))
    hashes = info.info_hashes()
    return TestTorrent(kind, path, content.parent, content.name,
                       magnet or lt.make_magnet_uri(info),
                       hashes.v1.to_bytes() if hashes.has_v1() else None,
                       hashes.v2.to_bytes() if hashes.has_v2() else None)


def digest(path: Path) -> dict[str, str]:
    """SHA-256 of every file under ``path`` (or of ``path``), by relative name."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


def same_content(copy: Path, source: Path) -> bool:
    """Whether ``copy`` holds exactly the files and bytes of ``source`` (pad files that a
    v1-only client created, ``.pad/...``, are not content and are left out)."""
    got = {k: v for k, v in digest(copy).items() if "/.pad/" not in f"/{k}"}
    return got == digest(source)
