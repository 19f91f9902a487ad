"""Bencoding (BEP 3), strict: the one canonical form only, bounded in depth and size.

Strategy: BitTorrent names a torrent by the SHA-1 or SHA-256 of the bencoded ``info``
dictionary, so two encodings of one value would be two torrents; a reader that accepted
non-canonical input (unsorted or repeated keys, ``i-0e``, ``i03e``, ``03:abc``) would let a
peer hand us metadata whose hash we cannot reproduce. So ``decode`` accepts exactly what
``encode`` produces: integers without leading zeros or ``-0``, byte strings with a plain
decimal length, dictionaries with byte-string keys in strictly increasing raw byte order,
and nothing after the value (``decode_prefix`` is for the one place where data follows a
value: BEP 9's metadata piece). ``ordered=False`` relaxes one rule, for documents nobody
hashes and others write: a tracker's answer may list its keys in any order (PHP trackers
of the TBDev family write ``interval`` before ``complete``; libtorrent and Transmission read
them), but never one key twice. Every failure is ``BencodeError``, a
``RemoteProtocolError``: never IndexError, ValueError or RecursionError.

Values are Python's own: ``int``, ``bytes``, ``list`` and ``dict[bytes, ...]``. Keys and
strings stay bytes (file names in a torrent are UTF-8 by convention, not by rule; the
metainfo layer decodes them). Lists and dictionaries nest at most ``MAX_BENCODE_DEPTH``
deep; the whole input is at most ``max_size`` bytes (``MAX_BENCODE_SIZE`` by default: the
caller of a bigger document, a ``.torrent`` file on disk, gives its own bound).

A PyPI codec was considered: the maintained ones are either lenient about canonical form
(they accept unsorted keys or leading zeros, which the hash of an info dictionary cannot
afford) or a compiled extension for a task that is a few hundred microseconds per torrent.
"""

from __future__ import annotations

import re
from typing import TypeAlias

from .. import limits
from ..errors import RemoteProtocolError

Value: TypeAlias = int | bytes | list["Value"] | dict[bytes, "Value"]

# Digits of an integer or a length: a 2**64 byte count has 20; 32 leaves room for
# 128-bit values some clients write and keeps int() of the text cheap. Longer is refused.
_MAX_DIGITS = 32
_INT = re.compile(rb"i(0|-?[1-9][0-9]{0,%d})e" % (_MAX_DIGITS - 1))
_LENGTH = re.compile(rb"(0|[1-9][0-9]{0,%d}):" % (_MAX_DIGITS - 1))


class BencodeError(RemoteProtocolError):
    """Bytes that are not canonical bencoding, or go over a limit."""


def encode(value: Value) -> bytes:
    """The canonical bencoding of ``value`` (dictionary keys sorted as raw bytes).

    Raises:
        TypeError: a value that is not int, bytes, list or dict with bytes keys (``str`` is
            refused too: say which encoding you mean).
    """
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: Value, out: list[bytes]) -> None:
    if isinstance(value, bytes):
        out += (b"%d:" % len(value), value)
    elif isinstance(value, bool):
        raise TypeError("bencode has no booleans: give 0 or 1")
    elif isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, list):
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    elif isinstance(value, dict):
        out.append(b"d")
        for key in sorted(value):
            if not isinstance(key, bytes):
                raise TypeError(f"a bencoded dictionary key must be bytes, not {type(key)}")
            out += (b"%d:" % len(key), key)
            _encode(value[key], out)
        out.append(b"e")
    else:
        raise TypeError(f"cannot bencode {type(value).__name__}")


def decode(data: bytes, *, max_size: int = limits.MAX_BENCODE_SIZE,
           ordered: bool = True, max_values: int | None = None) -> Value:
    """The value ``data`` encodes, which must be all of ``data``.

    ``ordered=False``: dictionary keys may come in any order (never twice).
    ``max_values``: at most this many values (each integer, string, list and dictionary,
    keys not counted), refused as soon as it is passed.

    Raises:
        BencodeError: not canonical, trailing bytes, deeper than ``MAX_BENCODE_DEPTH`` or
            longer than ``max_size``.
    """
    value, end = decode_prefix(data, max_size=max_size, ordered=ordered,
                               max_values=max_values)
    if end != len(data):
        raise BencodeError(f"{len(data) - end} bytes after the bencoded value")
    return value


def decode_prefix(data: bytes, *, max_size: int = limits.MAX_BENCODE_SIZE,
                  ordered: bool = True, max_values: int | None = None) -> tuple[Value, int]:
    """The value at the start of ``data`` and the offset just after it.

    Raises:
        BencodeError: as ``decode``, except that bytes may follow the value.
    """
    if len(data) > max_size:
        raise BencodeError(f"bencoded data over {max_size} bytes")
    return _Reader(bytes(data), ordered, max_values).value(0, 0)


class _Reader:
    __slots__ = ("data", "left", "ordered")

    def __init__(self, data: bytes, ordered: bool, max_values: int | None) -> None:
        self.data = data
        self.ordered = ordered
        self.left = len(data) if max_values is None else max_values  # values still allowed

    def value(self, at: int, depth: int) -> tuple[Value, int]:
        self.left -= 1
        if self.left < 0:
            raise BencodeError("bencoding of more values than allowed")
        lead = self.data[at : at + 1]
        if lead == b"i":
            return self._int(at)
        if lead == b"l":
            return self._list(at + 1, depth + 1)
        if lead == b"d":
            return self._dict(at + 1, depth + 1)
        if lead.isdigit():
            return self._bytes(at)
        raise BencodeError("truncated bencoding" if not lead else f"bad bencode type {lead!r}")

    def _int(self, at: int) -> tuple[int, int]:
        match = _INT.match(self.data, at)
        if match is None:
            raise BencodeError("integer not in canonical form (or truncated)")
        return int(match.group(1)), match.end()

    def _bytes(self, at: int) -> tuple[bytes, int]:
        match = _LENGTH.match(self.data, at)
        if match is None:
            raise BencodeError("string length not in canonical form (or truncated)")
        start = match.end()
        end = start + int(match.group(1))
        if end > len(self.data):
            raise BencodeError("string runs past the end of the data")
        return self.data[start:end], end

    def _list(self, at: int, depth: int) -> tuple[list[Value], int]:
        self._check_depth(depth)
        items: list[Value] = []
        while self.data[at : at + 1] != b"e":
            item, at = self.value(at, depth)
            items.append(item)
        return items, at + 1

    def _dict(self, at: int, depth: int) -> tuple[dict[bytes, Value], int]:
        self._check_depth(depth)
        items: dict[bytes, Value] = {}
        last: bytes | None = None
        while self.data[at : at + 1] != b"e":
            if not self.data[at : at + 1].isdigit():
                raise BencodeError("dictionary key is not a string (or truncated)")
            key, at = self._bytes(at)
            if not self.ordered and key in items:
                raise BencodeError("a dictionary key given twice")
            if self.ordered and last is not None and key <= last:
                raise BencodeError("dictionary keys not in strictly increasing order")
            items[key], at = self.value(at, depth)
            last = key
        return items, at + 1

    @staticmethod
    def _check_depth(depth: int) -> None:
        if depth > limits.MAX_BENCODE_DEPTH:
            raise BencodeError(f"bencoding nested over {limits.MAX_BENCODE_DEPTH} deep")
