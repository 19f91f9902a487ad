"""The file lists of an info dictionary: the v1 ``files``/``length`` and the v2 ``file tree``.

Strategy: both views are read into one flat list of ``FileSpec`` (path under the download
folder, length, v2 root, BEP 47 attributes), every name checked as a path component before
it is kept, so that ``metainfo`` only compares and places files, never trusts a name.
Pad files (BEP 47 ``attr`` containing ``p``) are kept in the v1 list, flagged: their
names (``.pad/N``) may repeat and are never written, so they take no part in the check
that no two files claim one path.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import limits
from ..errors import RemoteProtocolError
from .bencode import Value
from .merkle import HASH


@dataclass(frozen=True, slots=True)
class FileSpec:
    """A file as one view of the info dictionary states it."""

    path: tuple[str, ...]
    length: int
    root: bytes | None = None
    pad: bool = False
    executable: bool = False


def component(value: object, what: str) -> str:
    """One path component (or a torrent name), refused if it could leave its folder.

    Raises:
        RemoteProtocolError: not a UTF-8 string, empty, ``.``/``..``, or holding ``/``,
            ``\\`` or NUL.
    """
    if not isinstance(value, bytes):
        raise RemoteProtocolError(f"{what} is not a string")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"{what} is not UTF-8") from exc
    if text in ("", ".", "..") or any(c in text for c in "/\\\0"):
        raise RemoteProtocolError(f"unsafe {what} {text[:80]!r}")
    if len(value) > limits.MAX_NAME_BYTES:
        raise RemoteProtocolError(f"{what} over {limits.MAX_NAME_BYTES} bytes")
    return text


def v1_files(info: dict[bytes, Value], name: str) -> list[FileSpec]:
    """The v1 view: ``files`` (multi-file) or ``length`` (one file called ``name``).

    Raises:
        RemoteProtocolError: both or neither given, or any entry malformed or unsafe.
    """
    if (b"files" in info) == (b"length" in info):
        raise RemoteProtocolError("v1 info needs exactly one of length and files")
    if b"length" in info:
        pad, executable = _attrs(info.get(b"attr"))
        return [FileSpec((name,), _length(info[b"length"]), None, pad, executable)]
    entries = info[b"files"]
    if not isinstance(entries, list) or not entries:
        raise RemoteProtocolError("v1 files is not a non-empty list")
    _check_count(len(entries))
    specs = [_v1_entry(entry, name) for entry in entries]
    check_unique([s.path for s in specs if not s.pad])
    return specs


def _v1_entry(entry: Value, name: str) -> FileSpec:
    if not isinstance(entry, dict):
        raise RemoteProtocolError("a v1 file entry is not a dictionary")
    parts = entry.get(b"path")
    if not isinstance(parts, list) or not parts:
        raise RemoteProtocolError("a v1 file path is not a non-empty list")
    path = (name, *(component(part, "path component") for part in parts))
    pad, executable = _attrs(entry.get(b"attr"))
    return FileSpec(_bounded(path), _length(entry.get(b"length")), None, pad, executable)


def tree_files(info: dict[bytes, Value], name: str) -> list[FileSpec]:
    """The v2 view: the ``file tree`` walked in key order (BEP 52).

    A tree of one file whose key is ``name`` is a single-file torrent (path ``(name,)``);
    any other tree is a folder called ``name``.

    Raises:
        RemoteProtocolError: no tree or an empty one, a node that is both file and folder,
            a malformed leaf, an unsafe name, or too many files.
    """
    tree = info.get(b"file tree")
    if not isinstance(tree, dict) or not tree:
        raise RemoteProtocolError("v2 info without a non-empty file tree")
    specs: list[FileSpec] = []
    _walk(tree, (name,), specs)
    if len(tree) == 1 and len(specs) == 1 and specs[0].path == (name, name):
        return [FileSpec((name,), specs[0].length, specs[0].root, False, specs[0].executable)]
    return specs


def _walk(node: dict[bytes, Value], path: tuple[str, ...], out: list[FileSpec]) -> None:
    for key, child in node.items():
        if not isinstance(child, dict):
            raise RemoteProtocolError("a file tree node is not a dictionary")
        sub = _bounded((*path, component(key, "file tree name")))
        if b"" in child:
            if len(child) != 1:
                raise RemoteProtocolError("a file tree node is both a file and a folder")
            out.append(_leaf(child[b""], sub))
            _check_count(len(out))
        elif not child:
            raise RemoteProtocolError("an empty folder in the file tree")
        else:
            _walk(child, sub, out)


def _leaf(value: Value, path: tuple[str, ...]) -> FileSpec:
    if not isinstance(value, dict):
        raise RemoteProtocolError("a file tree leaf is not a dictionary")
    length = _length(value.get(b"length"))
    root = value.get(b"pieces root")
    if length and (not isinstance(root, bytes) or len(root) != HASH):
        raise RemoteProtocolError("a non-empty v2 file without a 32-byte pieces root")
    _, executable = _attrs(value.get(b"attr"))
    return FileSpec(path, length, root if length and isinstance(root, bytes) else None,
                    False, executable)


def _attrs(value: object) -> tuple[bool, bool]:
    """(pad, executable) from a BEP 47 ``attr`` string."""
    if value is None:
        return False, False
    if not isinstance(value, bytes):
        raise RemoteProtocolError("attr is not a string")
    return b"p" in value, b"x" in value


def _length(value: object) -> int:
    if not isinstance(value, int) or not 0 <= value <= limits.MAX_TORRENT_FILE_LENGTH:
        raise RemoteProtocolError(f"file length {value!r} is not an integer from 0 to "
                                  f"{limits.MAX_TORRENT_FILE_LENGTH}")
    return value


def _bounded(path: tuple[str, ...]) -> tuple[str, ...]:
    if len(path) > limits.MAX_PATH_DEPTH:
        raise RemoteProtocolError(f"a path over {limits.MAX_PATH_DEPTH} levels deep")
    if len("/".join(path).encode()) > limits.MAX_PATH_BYTES:
        raise RemoteProtocolError(f"a path over {limits.MAX_PATH_BYTES} bytes")
    return path


def _check_count(count: int) -> None:
    if count > limits.MAX_TORRENT_FILES:
        raise RemoteProtocolError(f"torrent of over {limits.MAX_TORRENT_FILES} files")


def check_unique(paths: list[tuple[str, ...]]) -> None:
    """Refuse two files with one path, or a file where another file's folder is.

    Raises:
        RemoteProtocolError: naming the path claimed twice.
    """
    files = set()
    for path in paths:
        if path in files:
            raise RemoteProtocolError(f"two files named {'/'.join(path)!r}")
        files.add(path)
    for path in paths:
        for depth in range(1, len(path)):
            if path[:depth] in files:
                raise RemoteProtocolError(f"{'/'.join(path[:depth])!r} is a file and a folder")
