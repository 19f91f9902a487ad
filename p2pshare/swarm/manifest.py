"""A swarm's manifest: a name, the content's layout (one file, or a folder's files with
their relative paths and sizes), the piece size and the SHA-256 of every piece.

Strategy: the manifest has one canonical byte form, JSON with sorted keys, no white space
and UTF-8 text (``to_bytes``). The swarm id is the SHA-256 of the canonical form of the
manifest *without its name* (``content_bytes``): the id covers every byte of content and,
for a folder, every relative path, but renaming a file or folder does not change it. The
name travels beside the content as untrusted metadata: checked like any path component
(``check_name``), and made safe again (``files.safe_name``) before it names anything on
disk. Parsing accepts only canonical bytes (it re-encodes and compares), so bytes that
parse hash to the id they claim only if their content does, and a manifest fetched from
anyone is checked against the id before use. Nothing host- or time-specific is in a
manifest, and the default piece size depends only on the size, so two seeders sharing the
same content make one swarm.

A folder (a *collection*) is laid out as BitTorrent v2 lays out files: every file starts
at a new piece, so no piece spans two files and each piece is read and written in one
file; the swarm's piece index runs through the files in path order. An empty file has no
piece. Each path component is one already-safe name (``safe_name`` leaves it unchanged),
so the path a fetcher writes is exactly the path listed, and two files can never land on
one local name. Pure code: hashing files on disk lives in ``storage``.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .. import limits
from ..errors import IntegrityError, RemoteProtocolError
from ..files import safe_name

COMPONENTS_CACHED = 4096  # path components whose check is remembered (each at most 255 B)
FORMAT = 2  # the manifest's own version, inside the JSON (1: the id covered the name)


def default_piece_size(size: int) -> int:
    """``limits.SWARM_PIECE_SIZE``, doubled until the file has at most
    ``limits.SWARM_TARGET_PIECES`` pieces (capped at ``limits.MAX_PIECE_SIZE``)."""
    piece = limits.SWARM_PIECE_SIZE
    while piece < limits.MAX_PIECE_SIZE and -(-size // piece) > limits.SWARM_TARGET_PIECES:
        piece *= 2
    return piece


def local(name: str) -> str:
    """The local form of one name a sender chose: ``files.safe_name`` with no room kept
    for decorations (our temporary names never contain the name)."""
    return safe_name(name, room=0)


def check_name(name: str) -> str:
    """A shared file's name: one path component, no control characters, no lone
    surrogate (JSON can spell one, ``"\\ud800"``, but no file system name holds it).

    Raises:
        RemoteProtocolError: the name could escape a download folder or is too long.
    """
    bad = (not name or name in (".", "..") or "/" in name or "\\" in name
           or any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in name)
           or name != name.strip() or len(name.encode("utf-8")) > limits.MAX_SWARM_NAME)
    if bad:
        raise RemoteProtocolError(f"unusable file name {name[:80]!r}")
    return name


def check_path(path: str) -> tuple[str, ...]:
    """The components of a relative path in a collection: each a name ``check_name``
    accepts and ``local`` leaves unchanged, at most ``limits.MAX_PATH_DEPTH`` of them and
    ``limits.MAX_PATH_BYTES`` in all.

    Raises:
        RemoteProtocolError: the path is not such a path.
    """
    parts = tuple(path.split("/"))
    if len(parts) > limits.MAX_PATH_DEPTH or len(path.encode("utf-8", "surrogatepass")) \
            > limits.MAX_PATH_BYTES:
        raise RemoteProtocolError(f"path too deep or too long: {path[:80]!r}")
    for part in parts:
        if not _safe_component(part):
            check_name(part)  # raises its own reason, if it has one
            raise RemoteProtocolError(f"path component is not a safe name: {part[:80]!r}")
    return parts


@functools.lru_cache(maxsize=COMPONENTS_CACHED)
def _safe_component(part: str) -> bool:
    """Whether ``check_name`` accepts ``part`` and ``local`` leaves it unchanged. Cached: a
    collection repeats its folder names in every path below them, and checking 320,000
    components (10,000 paths 32 deep) one by one cost a tracker seconds per manifest."""
    try:
        return check_name(part) == local(part)
    except RemoteProtocolError:
        return False


@dataclass(frozen=True, slots=True)
class TreeFile:
    """One file of a collection: its path (``/``-separated, relative) and size."""

    path: str
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """What identifies and verifies one swarm: a file, or a folder's files (``files``)."""

    name: str
    size: int  # bytes in all
    piece_size: int
    digests: tuple[bytes, ...]
    files: tuple[TreeFile, ...] = ()  # a collection's files in path order; () for a file
    _bytes: bytes = field(default=b"", repr=False, compare=False)
    _id: str = field(default="", repr=False, compare=False)
    _first: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name(self.name)
        if not limits.MIN_PIECE_SIZE <= self.piece_size <= limits.MAX_PIECE_SIZE:
            raise RemoteProtocolError(f"piece size {self.piece_size} is out of range")
        if not 0 <= self.size <= self.piece_size * limits.MAX_PIECES:
            raise RemoteProtocolError(f"size {self.size} is out of range")
        first = _check_files(self.files, self.size, self.piece_size) if self.files \
            else (0, -(-self.size // self.piece_size))
        if len(self.digests) != first[-1]:
            raise RemoteProtocolError("piece count does not match sizes and piece size")
        if any(len(d) != 32 for d in self.digests):
            raise RemoteProtocolError("a piece digest is not 32 bytes")
        content = _canonical(_content(self))
        object.__setattr__(self, "_first", first)
        object.__setattr__(self, "_id", hashlib.sha256(content).hexdigest())
        object.__setattr__(self, "_bytes", _canonical({**_content(self), "name": self.name}))
        if len(self._bytes) > limits.MAX_REQUEST_BODY:
            raise RemoteProtocolError("manifest too large")

    @property
    def count(self) -> int:
        return len(self.digests)

    @property
    def id(self) -> str:
        """SHA-256 of the canonical bytes without the name, in hex: the swarm's id."""
        return self._id

    @property
    def kind(self) -> str:
        """``"folder"`` for a collection, else ``"file"``."""
        return "folder" if self.files else "file"

    @property
    def layout(self) -> tuple[TreeFile, ...]:
        """The files, in piece order: a single file is one file of path ``""``."""
        return self.files or (TreeFile("", self.size),)

    def to_bytes(self) -> bytes:
        return self._bytes

    def content_bytes(self) -> bytes:
        """The canonical bytes the id is the hash of (the manifest without its name)."""
        return _canonical(_content(self))

    def renamed(self, name: str) -> Manifest:
        """The same content under another name (the same id)."""
        return Manifest(name, self.size, self.piece_size, self.digests, self.files)

    def pieces_of(self, file_index: int) -> range:
        """The pieces of file ``file_index`` of ``layout``."""
        return range(self._first[file_index], self._first[file_index + 1])

    def file_of(self, index: int) -> int:
        """The file of ``layout`` that piece ``index`` belongs to (a single file's pieces:
        0, with no search; a downloader asks this for every piece it writes)."""
        if not self.files:
            return 0
        return bisect.bisect_right(self._first, index, hi=len(self._first) - 1) - 1

    def offset(self, index: int) -> int:
        """Where piece ``index`` starts in its file."""
        return (index - self._first[self.file_of(index)]) * self.piece_size

    def length(self, index: int) -> int:
        """Bytes in piece ``index`` (the last piece of each file may be short). A single
        file's by arithmetic alone, with no search of the layout: a downloader asks this
        several times per piece."""
        if not self.files:
            return min(self.piece_size, self.size - index * self.piece_size)
        size = self.layout[self.file_of(index)].size
        return min(self.piece_size, size - self.offset(index))

    def mask_of(self, file_indexes: list[int]) -> int:
        """The pieces of the given files of ``layout``, as a mask."""
        mask = 0
        for i in file_indexes:
            span = self.pieces_of(i)
            mask |= ((1 << len(span)) - 1) << span.start
        return mask

    def bytes_in(self, mask: int) -> int:
        """Bytes of the pieces in ``mask``."""
        total = 0
        for i, entry in enumerate(self.layout):
            span = self.pieces_of(i)
            held = (mask >> span.start) & ((1 << len(span)) - 1)
            if held:
                total += held.bit_count() * self.piece_size
                if held >> (len(span) - 1) & 1:  # the file's last piece may be short
                    total -= len(span) * self.piece_size - entry.size
        return total

    @classmethod
    def from_bytes(cls, data: bytes, expected_id: str | None = None) -> Manifest:
        """Parse canonical manifest bytes, checking them against ``expected_id``.

        Raises:
            IntegrityError: the content does not hash to ``expected_id``.
            RemoteProtocolError: not a canonical, valid manifest.
        """
        manifest = cls._from_json(_load(data))
        if manifest.to_bytes() != data:
            raise RemoteProtocolError("manifest bytes are not in canonical form")
        if expected_id is not None and manifest.id != expected_id:
            raise IntegrityError("manifest does not match its id")
        return manifest

    @classmethod
    def _from_json(cls, obj: Any) -> Manifest:
        if not isinstance(obj, dict) or set(obj) not in (_KEYS, _KEYS | {"files"}) \
                or obj["format"] != FORMAT:
            raise RemoteProtocolError(f"a manifest has exactly the keys {sorted(_KEYS)} "
                                      f"(and files for a folder), format {FORMAT}")
        name, size, piece_size, pieces = obj["name"], obj["size"], obj["piece_size"], \
            obj["pieces"]
        if not (isinstance(name, str) and _is_int(size) and _is_int(piece_size)
                and isinstance(pieces, list) and len(pieces) <= limits.MAX_PIECES):
            raise RemoteProtocolError("manifest fields have the wrong types")
        files = _tree_files(obj["files"]) if "files" in obj else ()
        return cls(name, size, piece_size, tuple(_digest(p) for p in pieces), files)


_KEYS = {"format", "name", "piece_size", "pieces", "size"}


def _content(m: Manifest) -> dict[str, Any]:
    obj: dict[str, Any] = {"format": FORMAT, "piece_size": m.piece_size,
                           "pieces": [d.hex() for d in m.digests], "size": m.size}
    if m.files:
        obj["files"] = [{"path": f.path, "size": f.size} for f in m.files]
    return obj


def _canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def _check_files(files: tuple[TreeFile, ...], size: int, piece_size: int) -> tuple[int, ...]:
    """Check a collection's files; return the first piece of each, and the piece count.

    Raises:
        RemoteProtocolError: too many files, a bad or repeated path, paths out of order, a
            file where another needs a folder, or sizes that do not add up to ``size``.
    """
    if len(files) > limits.MAX_COLLECTION_FILES:
        raise RemoteProtocolError(f"more than {limits.MAX_COLLECTION_FILES} files")
    paths = [f.path for f in files]
    if paths != sorted(set(paths)):
        raise RemoteProtocolError("a collection's paths are unique and in sorted order")
    listed = set(paths)
    first = [0]
    for f in files:
        check_path(f.path)
        if any(f.path[:i] in listed for i, c in enumerate(f.path) if c == "/"):
            raise RemoteProtocolError(f"{f.path[:80]!r} is inside a file")
        if not _is_int(f.size) or f.size < 0:
            raise RemoteProtocolError("a file size is not a natural number")
        first.append(first[-1] + -(-f.size // piece_size))
    if sum(f.size for f in files) != size:
        raise RemoteProtocolError("file sizes do not add up to the size")
    return tuple(first)


def _tree_files(value: object) -> tuple[TreeFile, ...]:
    if not isinstance(value, list) or not value or len(value) > limits.MAX_COLLECTION_FILES:
        raise RemoteProtocolError("files is a list of 1 to MAX_COLLECTION_FILES entries")
    out = []
    for item in value:
        if not (isinstance(item, dict) and set(item) == {"path", "size"}
                and isinstance(item["path"], str) and _is_int(item["size"])):
            raise RemoteProtocolError("a file entry has exactly a path and a size")
        out.append(TreeFile(item["path"], item["size"]))
    return tuple(out)


def _load(data: bytes) -> Any:
    if len(data) > limits.MAX_REQUEST_BODY:
        raise RemoteProtocolError("manifest too large")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RemoteProtocolError("manifest is not UTF-8 JSON") from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _digest(text: object) -> bytes:
    if not isinstance(text, str) or len(text) != 64 or text != text.lower():
        raise RemoteProtocolError("a piece digest is 64 lower-case hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise RemoteProtocolError("a piece digest is 64 lower-case hex digits") from None
