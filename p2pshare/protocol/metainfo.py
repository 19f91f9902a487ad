"""Torrent metainfo (BEP 3, 47, 52): read and check ``.torrent`` files and info dictionaries.

Strategy: a torrent arrives from anyone (a web page, a magnet's metadata exchange), so it
is read like any peer input: bencode strictly decoded (``bencode.decode``: canonical, so
re-encoding the ``info`` value gives back the very bytes its hashes were taken of), then
every field checked before anything is built from it, and every failure a
``RemoteProtocolError`` (a ``BencodeError`` for the encoding itself). Nothing is trusted
that decides where bytes go or how many: each path component is checked (not empty, not
``.`` or ``..``, no ``/``, ``\\`` or NUL, UTF-8) and paths bounded in depth and length,
no two files may claim one path (or a file a folder), the piece length must be a power of
two from 16 KiB to ``MAX_PIECE_LENGTH``, counts are bounded (``limits``), the v1 piece
hashes must number exactly the pieces the files need, and each v2 piece layer must be as
long as its file needs and hash up to the file's root.

One shape for the three kinds. A v1 torrent has ``pieces`` and ``length`` or ``files``; a
v2 torrent ``meta version`` 2 and a ``file tree``; a hybrid has both, and then both must
describe the same files at the same offsets: the v1 list, less its BEP 47 pad files, holds
exactly the v2 files, and every non-empty file starts on a piece boundary, so that v1
piece ``i`` and v2 piece ``i`` cover the same bytes (otherwise one info-hash could name
data the other refuses). ``Torrent.files`` is in v1 order (pad files included, flagged)
when there is a v1 view, else in file-tree order; ``offset`` is the file's place in the
piece space, where a v2-only torrent starts each file on a piece boundary too.

``TorrentFile.path`` is where the file lands under the download folder: ``(name,)`` for
a single-file torrent, ``(name, folder..., file)`` for a multi-file one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from .. import limits
from ..errors import RemoteProtocolError
from . import bencode, merkle
from ._metafiles import FileSpec, component, tree_files, v1_files
from .magnet import Magnet, format_magnet, parse_magnet

__all__ = [
    "Magnet",
    "Torrent",
    "TorrentFile",
    "format_magnet",
    "magnet_of",
    "parse_info",
    "parse_magnet",
    "parse_torrent",
]


@dataclass(frozen=True, slots=True)
class TorrentFile:
    """One file of a torrent (a pad file too, with ``pad`` set)."""

    path: tuple[str, ...]
    length: int
    offset: int  # in the piece space (v1 offsets; v2-only: each file piece-aligned)
    pad: bool = False
    pieces_root: bytes | None = None  # v2: 32 bytes, None for an empty file or v1 only
    executable: bool = False  # BEP 47 attr "x"


@dataclass(frozen=True, slots=True)
class Torrent:
    """A checked torrent: its exact info dictionary, what it names and how it is cut."""

    info: bytes
    v1_hash: bytes | None
    v2_hash: bytes | None
    name: str
    piece_length: int
    files: tuple[TorrentFile, ...]
    pieces: bytes = b""
    piece_layers: dict[bytes, bytes] = field(default_factory=dict, compare=False)
    trackers: tuple[tuple[str, ...], ...] = ()
    total_length: int = 0  # bytes of the real files (pad files not counted)
    private: bool = False

    @property
    def multi_file(self) -> bool:
        return len(self.files) != 1 or len(self.files[0].path) != 1

    @property
    def num_pieces(self) -> int:
        """Pieces of the piece space (v1: one per SHA-1; v2: each file's pieces)."""
        if self.v1_hash is not None:
            return len(self.pieces) // 20
        return sum(-(-f.length // self.piece_length) for f in self.files)

    @property
    def handshake_hash(self) -> bytes:
        """The 20 bytes that name this torrent in a BEP 3 handshake: the v1 info-hash, or
        the v2 info-hash truncated (BEP 52)."""
        digest = self.v1_hash if self.v1_hash is not None else self.v2_hash
        assert digest is not None  # parse_info guarantees one of them
        return digest[:20]


def parse_torrent(data: bytes) -> Torrent:
    """The torrent a ``.torrent`` file holds, checked (module text).

    Raises:
        BencodeError: not canonical bencoding, or over ``MAX_TORRENT_FILE``.
        RemoteProtocolError: anything the module text refuses.
    """
    top = _dict(bencode.decode(data, max_size=limits.MAX_TORRENT_FILE), "torrent")
    if b"info" not in top:
        raise RemoteProtocolError("torrent without an info dictionary")
    torrent = _from_info(bencode.encode(top[b"info"]), top[b"info"])
    layers = _layers(top.get(b"piece layers", {}), torrent)
    return replace(torrent, piece_layers=layers, trackers=_trackers(top))


def parse_info(info: bytes, *, v1_hash: bytes | None = None,
               v2_hash: bytes | None = None) -> Torrent:
    """The torrent an info dictionary describes (BEP 9 metadata), checked against the
    info-hash(es) it was asked by (a v2 hash may be the truncated 20 bytes), which is
    compared before the bytes are decoded.

    Raises:
        BencodeError: not canonical bencoding, or over ``MAX_BENCODE_SIZE``.
        RemoteProtocolError: the module text's checks, or a hash that does not match.
    """
    if (v1_hash is not None and hashlib.sha1(info).digest() != v1_hash) or (
            v2_hash is not None and hashlib.sha256(info).digest()[: len(v2_hash)] != v2_hash):
        # before any decoding: bytes that match no hash cost a peer's liar no more than this
        raise RemoteProtocolError("metadata does not match its info-hash")
    torrent = _from_info(info, bencode.decode(info))
    if v1_hash is not None and torrent.v1_hash != v1_hash:
        raise RemoteProtocolError("metadata does not match its v1 info-hash")
    if v2_hash is not None and (torrent.v2_hash or b"")[: len(v2_hash)] != v2_hash:
        raise RemoteProtocolError("metadata does not match its v2 info-hash")
    return torrent


def magnet_of(torrent: Torrent, peers: tuple[tuple[str, int], ...] = ()) -> Magnet:
    """The magnet link of ``torrent``: its info-hashes, name and first-tier-first trackers."""
    trackers = tuple(dict.fromkeys(url for tier in torrent.trackers for url in tier))
    return Magnet(torrent.v1_hash, torrent.v2_hash, torrent.name, trackers, peers)


def _from_info(raw: bytes, value: bencode.Value) -> Torrent:
    info = _dict(value, "info")
    name = component(info.get(b"name"), "name")
    piece_length = _piece_length(info.get(b"piece length"))
    version = info.get(b"meta version")
    if version is not None and version != 2:
        raise RemoteProtocolError(f"unknown torrent meta version {version!r}")
    v2 = tree_files(info, name) if version == 2 else None
    v1 = v1_files(info, name) if b"pieces" in info else None
    if v1 is None and v2 is None:
        raise RemoteProtocolError("info dictionary with neither v1 pieces nor a v2 file tree")
    files = _merged(v1, v2, piece_length) if v1 is not None else _aligned(v2 or [], piece_length)
    pieces = _pieces(info, files, piece_length) if v1 is not None else b""
    private = info.get(b"private", 0) == 1
    return Torrent(
        info=raw,
        v1_hash=hashlib.sha1(raw).digest() if v1 is not None else None,
        v2_hash=hashlib.sha256(raw).digest() if v2 is not None else None,
        name=name, piece_length=piece_length, files=tuple(files), pieces=pieces,
        total_length=sum(f.length for f in files if not f.pad), private=private)


def _dict(value: object, what: str) -> dict[bytes, bencode.Value]:
    if not isinstance(value, dict):
        raise RemoteProtocolError(f"{what} is not a dictionary")
    return value


def _piece_length(value: object) -> int:
    if not isinstance(value, int) or value & (value - 1) or not (
            limits.MIN_PIECE_LENGTH <= value <= limits.MAX_PIECE_LENGTH):
        raise RemoteProtocolError(
            f"piece length {value!r} is not a power of two from {limits.MIN_PIECE_LENGTH} "
            f"to {limits.MAX_PIECE_LENGTH}")
    return value


def _aligned(specs: list[FileSpec], piece_length: int) -> list[TorrentFile]:
    """v2 only: files in tree order, each non-empty one starting on a piece boundary."""
    files, offset = [], 0
    for spec in specs:
        files.append(TorrentFile(spec.path, spec.length, offset, False, spec.root, spec.executable))
        offset += -(-spec.length // piece_length) * piece_length
    _check_pieces(offset // piece_length)
    return files


def _merged(v1: list[FileSpec], v2: list[FileSpec] | None, piece_length: int,
            ) -> list[TorrentFile]:
    """The v1 files at their offsets, with the v2 roots of a hybrid (checked to agree)."""
    roots = {spec.path: spec for spec in v2 or []}
    files, offset = [], 0
    for spec in v1:
        root = None
        if v2 is not None and spec.pad and spec.length >= piece_length:
            raise RemoteProtocolError("hybrid torrent: a pad file of a piece or more (the v2 "
                                      "pieces would not be the v1 pieces)")
        if v2 is not None and not spec.pad:
            other = roots.pop(spec.path, None)
            if other is None or other.length != spec.length:
                raise RemoteProtocolError(f"hybrid torrent: v1 file {'/'.join(spec.path)!r} is "
                                          "not in the v2 file tree with that length")
            if spec.length and offset % piece_length:
                raise RemoteProtocolError("hybrid torrent: a file does not start on a piece "
                                          "boundary (missing pad file)")
            root = other.root
        files.append(TorrentFile(spec.path, spec.length, offset, spec.pad, root, spec.executable))
        offset += spec.length
    if roots:
        raise RemoteProtocolError("hybrid torrent: the v2 file tree has files the v1 list lacks")
    return files


def _pieces(info: dict[bytes, bencode.Value], files: list[TorrentFile], piece_length: int,
            ) -> bytes:
    pieces = info[b"pieces"]
    if not isinstance(pieces, bytes) or len(pieces) % 20:
        raise RemoteProtocolError("v1 pieces is not a string of 20-byte hashes")
    end = files[-1].offset + files[-1].length if files else 0
    if len(pieces) // 20 != -(-end // piece_length):
        raise RemoteProtocolError(f"{len(pieces) // 20} v1 piece hashes for "
                                  f"{-(-end // piece_length)} pieces")
    _check_pieces(len(pieces) // 20)
    return pieces


def _check_pieces(count: int) -> None:
    if count > limits.MAX_TORRENT_PIECES:
        raise RemoteProtocolError(f"torrent of {count} pieces, over {limits.MAX_TORRENT_PIECES}")


def _layers(value: object, torrent: Torrent) -> dict[bytes, bytes]:
    """The piece layers of a .torrent: one per v2 file over a piece, each hashing to its
    file's root; none other."""
    layers = _dict(value, "piece layers")
    if torrent.v2_hash is None:
        return {}
    wanted = {f.pieces_root: f.length for f in torrent.files
              if f.pieces_root is not None and f.length > torrent.piece_length}
    if any(wanted.get(f.pieces_root, f.length) != f.length for f in torrent.files
           if f.pieces_root is not None):
        raise RemoteProtocolError("two files of different lengths with one pieces root")
    if set(layers) != set(wanted):
        raise RemoteProtocolError("piece layers do not match the files over one piece")
    for root, layer in layers.items():
        count = -(-wanted[root] // torrent.piece_length)
        if not isinstance(layer, bytes) or len(layer) != count * merkle.HASH:
            raise RemoteProtocolError(f"a piece layer is not {count} hashes long")
        hashes = [layer[at : at + merkle.HASH] for at in range(0, len(layer), merkle.HASH)]
        if merkle.layer_root(hashes, torrent.piece_length) != root:
            raise RemoteProtocolError("a piece layer does not hash to its file's root")
    return {root: layer for root, layer in layers.items() if isinstance(layer, bytes)}


def _trackers(top: dict[bytes, bencode.Value]) -> tuple[tuple[str, ...], ...]:
    """announce-list (BEP 12) tiers if present, else the one announce URL."""
    tiers = top.get(b"announce-list")
    if not isinstance(tiers, list) or not tiers:
        announce = top.get(b"announce")
        tiers = [[announce]] if announce is not None else []
    out: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for tier in tiers:
        urls = tuple(u for u in map(_url, tier if isinstance(tier, list) else [tier])
                     if u is not None and u not in seen)
        seen.update(urls)
        if urls:
            out.append(urls)
    if len(seen) > limits.MAX_TORRENT_TRACKERS:
        raise RemoteProtocolError(f"torrent with over {limits.MAX_TORRENT_TRACKERS} trackers")
    return tuple(out)


def _url(value: object) -> str | None:
    """A tracker URL, or None for one we skip (not text, empty, too long)."""
    if not isinstance(value, bytes) or not value or len(value) > limits.MAX_TRACKER_URL:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None
