"""Making a torrent of a file or folder: v1, v2 or hybrid, laid out as libtorrent lays it out.

Strategy: the info dictionary is what names a torrent, so two programs that make a
torrent of the same files with the same piece size should make the same bytes; this module
follows libtorrent (2.x, ``create_torrent``) rule for rule, and tests/bt builds both and
compares the bencoded info dictionaries byte for byte:

- the files of a folder are found depth first, following symbolic links; a v1 torrent
  keeps them in the order the folder lists them (``os.scandir``, as libtorrent's
  ``readdir``), a v2 or hybrid torrent sorts them by their whole path as raw bytes;
- a hybrid torrent of more than one file puts a BEP 47 pad file (``attr`` ``p``, path
  ``.pad/<size>``, in the v1 list only) after every non-empty file that does not end on a
  piece boundary, the last one too; a single file is never padded;
- keys: ``attr`` ``x`` for an executable file, ``file tree`` and ``meta version`` for v2,
  ``files`` or ``length`` and ``pieces`` for v1, ``name``, ``piece length``; nothing else
  (no ``private``, no modification times);
- the default piece size is libtorrent's: 16 KiB doubled for each step of its size table
  that the total size exceeds (``default_piece_length``): 8 MiB up to 704 GB, 16 MiB above.

Hashing is ``bt.hashing``: every core, in large reads.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from .. import __version__, limits
from ..errors import LocalProtocolError
from ..protocol import bencode, merkle
from .hashing import TorrentHashes, hash_files

# libtorrent's table: a total size up to SIZE_TABLE[i] gets 16 KiB << i pieces (the
# sizes where a torrent's SHA-1 list is about twice the square root of the total size).
SIZE_TABLE = (2_684_355, 10_737_418, 42_949_673, 171_798_692, 687_194_767, 2_748_779_069,
              10_995_116_278, 43_980_465_111, 175_921_860_444, 703_687_441_777)


class Kind(Enum):
    """Which info-hashes a new torrent has."""

    V1 = "v1"
    V2 = "v2"
    HYBRID = "hybrid"


@dataclass(frozen=True, slots=True)
class InputFile:
    """A file to put in a torrent: its path in the torrent (top name first) and on disk."""

    path: tuple[str, ...]
    disk: Path
    size: int
    executable: bool = False
    pad: bool = False


def default_piece_length(total: int) -> int:
    """libtorrent's default piece size for ``total`` bytes (module text)."""
    return merkle.BLOCK << sum(1 for size in SIZE_TABLE if size < total)


def list_sources(root: Path) -> list[InputFile]:
    """The files under ``root`` (or ``root`` itself), depth first in the folder's order;
    ``root`` is made absolute first (``..`` taken away, symbolic links kept), so that its
    last component names the torrent.

    Raises:
        LocalProtocolError: ``root`` has no name (``/``).
        OSError: ``root`` cannot be read.
    """
    root = Path(os.path.abspath(root))
    if not root.name:
        raise LocalProtocolError(f"{root}: give a file or folder with a name")
    if not root.is_dir():
        return [_source((root.name,), root)]
    out: list[InputFile] = []
    _walk(root, (root.name,), out)
    return out


def _walk(folder: Path, path: tuple[str, ...], out: list[InputFile]) -> None:
    if len(path) > limits.MAX_PATH_DEPTH:
        raise LocalProtocolError(f"{folder}: folders nested over {limits.MAX_PATH_DEPTH} deep")
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                _walk(Path(entry.path), (*path, entry.name), out)
            elif entry.is_file():
                out.append(_source((*path, entry.name), Path(entry.path)))


def _source(path: tuple[str, ...], disk: Path) -> InputFile:
    try:
        "/".join(path).encode("utf-8")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"{disk}: a torrent names its files in UTF-8; rename this "
                                 "one") from None
    info = disk.stat()
    return InputFile(path, disk, info.st_size, bool(info.st_mode & stat.S_IXUSR))


def layout(sources: list[InputFile], piece_length: int, kind: Kind) -> list[InputFile]:
    """The files in torrent order, with the pad files of a hybrid (module text)."""
    if kind is Kind.V1:
        return list(sources)
    ordered = sorted(sources, key=lambda s: "/".join(s.path).encode())
    if kind is Kind.V2 or len(ordered) < 2:
        return ordered
    out, offset = [], 0
    for source in ordered:
        out.append(source)
        offset += source.size
        if source.size and offset % piece_length:
            size = piece_length - offset % piece_length
            out.append(InputFile((ordered[0].path[0], ".pad", str(size)), Path(), size, pad=True))
            offset += size
    return out


def info_dict(files: list[InputFile], name: str, piece_length: int, kind: Kind,
              hashes: TorrentHashes) -> dict[bytes, bencode.Value]:
    """The info dictionary (module text for its keys)."""
    multi = len(files) > 1 or len(files[0].path) > 1
    info: dict[bytes, bencode.Value] = {b"name": name.encode(), b"piece length": piece_length}
    if kind is not Kind.V1:
        info[b"meta version"] = 2
        info[b"file tree"] = _file_tree(files, hashes, multi)
    if kind is not Kind.V2:
        info[b"pieces"] = bytes(hashes.pieces)
        if multi:
            info[b"files"] = [_v1_entry(f) for f in files]
        else:
            info[b"length"] = files[0].size
            info.update(_attr(files[0]))
    return info


def _attr(source: InputFile) -> dict[bytes, bencode.Value]:
    flags = (b"p" if source.pad else b"") + (b"x" if source.executable else b"")
    return {b"attr": flags} if flags else {}


def _v1_entry(source: InputFile) -> bencode.Value:
    return {**_attr(source), b"length": source.size,
            b"path": [part.encode() for part in source.path[1:]]}


def _file_tree(files: list[InputFile], hashes: TorrentHashes,
               multi: bool) -> dict[bytes, bencode.Value]:
    tree: dict[bytes, bencode.Value] = {}
    for source in files:
        if source.pad:
            continue
        node = tree
        for part in source.path[1:] if multi else source.path:
            child = node.setdefault(part.encode(), {})
            assert isinstance(child, dict)
            node = child
        leaf: dict[bytes, bencode.Value] = {**_attr(source), b"length": source.size}
        root = hashes.roots.get(source.path)
        if root is not None:
            leaf[b"pieces root"] = root
        node[b""] = leaf
    return tree


def make_torrent(root: Path, *, kind: Kind = Kind.HYBRID, piece_length: int | None = None,
                 trackers: tuple[str, ...] = (),
                 progress: Callable[[int], None] = lambda n: None) -> bytes:
    """The bencoded ``.torrent`` of the file or folder ``root``.

    Raises:
        LocalProtocolError: no files, or nothing but empty files, or a bad piece size.
        OSError: a file could not be read.
    """
    sources = list_sources(root)
    total = sum(s.size for s in sources)
    if total == 0:
        raise LocalProtocolError(f"{root}: nothing to share (no files, or only empty ones)")
    piece_length = piece_length or default_piece_length(total)
    if piece_length & (piece_length - 1) or not (
            limits.MIN_PIECE_LENGTH <= piece_length <= limits.MAX_PIECE_LENGTH):
        raise LocalProtocolError(f"piece size {piece_length}: give a power of two from 16K to "
                                 f"{limits.MAX_PIECE_LENGTH // limits.MiB}M")
    files = layout(sources, piece_length, kind)
    _check_size(files, piece_length)
    hashes = hash_files(files, piece_length, v1=kind is not Kind.V2, v2=kind is not Kind.V1,
                        progress=progress)
    info = info_dict(files, files[0].path[0], piece_length, kind, hashes)
    top: dict[bytes, bencode.Value] = {
        b"created by": f"p2pshare {__version__}".encode(),
        b"creation date": int(time.time()), b"info": info}
    if kind is not Kind.V1:  # libtorrent writes it even when empty
        top[b"piece layers"] = dict(hashes.layers)
    if trackers:
        top[b"announce"] = trackers[0].encode()
        if len(trackers) > 1:
            top[b"announce-list"] = [[url.encode()] for url in trackers]
    data = bencode.encode(top)
    if len(data) > limits.MAX_TORRENT_FILE:
        raise LocalProtocolError(f"the torrent would be over {limits.MAX_TORRENT_FILE} bytes, "
                                 "more than clients read: give a bigger piece size")
    return data


def _check_size(files: list[InputFile], piece_length: int) -> None:
    """Refuse, before any hashing, what readers would refuse (metainfo's limits)."""
    pieces = sum(-(-f.size // piece_length) for f in files if not f.pad)  # v2; v1 no more
    if pieces > limits.MAX_TORRENT_PIECES:
        raise LocalProtocolError(f"{pieces} pieces, over {limits.MAX_TORRENT_PIECES}: give a "
                                 "bigger piece size")
    if len(files) > limits.MAX_TORRENT_FILES:
        raise LocalProtocolError(f"{len(files)} files, over {limits.MAX_TORRENT_FILES}")
