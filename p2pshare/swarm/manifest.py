"""A file's manifest: its name, size, piece size and the SHA-256 of every piece.

Strategy: the manifest has one canonical byte form, JSON with sorted keys, no white space
and UTF-8 text (``to_bytes``); the file's id is the SHA-256 of those bytes. Parsing
accepts only canonical bytes (it re-encodes and compares), so bytes that parse always
hash to the id they claim, and a manifest fetched from anyone is checked against the id
before use. The same file shared by two seeders gives the same bytes, hence one swarm:
nothing host- or time-specific is in a manifest, and the default piece size depends only
on the file's size. Pure code: hashing a file on disk lives in ``storage``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .. import limits
from ..errors import IntegrityError, RemoteProtocolError

FORMAT = 1  # the manifest's own version, inside the JSON


def default_piece_size(size: int) -> int:
    """``limits.SWARM_PIECE_SIZE``, doubled until the file has at most
    ``limits.SWARM_TARGET_PIECES`` pieces (capped at ``limits.MAX_PIECE_SIZE``)."""
    piece = limits.SWARM_PIECE_SIZE
    while piece < limits.MAX_PIECE_SIZE and -(-size // piece) > limits.SWARM_TARGET_PIECES:
        piece *= 2
    return piece


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


@dataclass(frozen=True, slots=True)
class Manifest:
    """What identifies and verifies one shared file."""

    name: str
    size: int
    piece_size: int
    digests: tuple[bytes, ...]
    _bytes: bytes = field(default=b"", repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name(self.name)
        if not limits.MIN_PIECE_SIZE <= self.piece_size <= limits.MAX_PIECE_SIZE:
            raise RemoteProtocolError(f"piece size {self.piece_size} is out of range")
        if not 0 <= self.size <= self.piece_size * limits.MAX_PIECES:
            raise RemoteProtocolError(f"size {self.size} is out of range")
        if len(self.digests) != -(-self.size // self.piece_size):
            raise RemoteProtocolError("piece count does not match size and piece size")
        if any(len(d) != 32 for d in self.digests):
            raise RemoteProtocolError("a piece digest is not 32 bytes")
        object.__setattr__(self, "_bytes", _canonical(self))

    @property
    def count(self) -> int:
        return len(self.digests)

    @property
    def id(self) -> str:
        """SHA-256 of the canonical bytes, in hex: the swarm's id."""
        return hashlib.sha256(self._bytes).hexdigest()

    def to_bytes(self) -> bytes:
        return self._bytes

    def offset(self, index: int) -> int:
        return index * self.piece_size

    def length(self, index: int) -> int:
        """Bytes in piece ``index`` (the last one may be short)."""
        return min(self.piece_size, self.size - index * self.piece_size)

    @classmethod
    def from_bytes(cls, data: bytes, expected_id: str | None = None) -> Manifest:
        """Parse canonical manifest bytes, checking them against ``expected_id``.

        Raises:
            IntegrityError: the bytes do not hash to ``expected_id``.
            RemoteProtocolError: not a canonical, valid manifest.
        """
        if expected_id is not None and hashlib.sha256(data).hexdigest() != expected_id:
            raise IntegrityError("manifest does not match its id")
        manifest = cls._from_json(_load(data))
        if manifest.to_bytes() != data:
            raise RemoteProtocolError("manifest bytes are not in canonical form")
        return manifest

    @classmethod
    def _from_json(cls, obj: Any) -> Manifest:
        if not isinstance(obj, dict) or set(obj) != _KEYS or obj["format"] != FORMAT:
            raise RemoteProtocolError(f"a manifest has exactly the keys {sorted(_KEYS)}")
        name, size, piece_size, pieces = obj["name"], obj["size"], obj["piece_size"], \
            obj["pieces"]
        if not (isinstance(name, str) and _is_int(size) and _is_int(piece_size)
                and isinstance(pieces, list)):
            raise RemoteProtocolError("manifest fields have the wrong types")
        return cls(name, size, piece_size, tuple(_digest(p) for p in pieces))


_KEYS = {"format", "name", "piece_size", "pieces", "size"}


def _canonical(m: Manifest) -> bytes:
    obj = {"format": FORMAT, "name": m.name, "piece_size": m.piece_size,
           "pieces": [d.hex() for d in m.digests], "size": m.size}
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


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

