"""Magnet links (BEP 9, BEP 52): read and write ``magnet:?xt=urn:btih:...`` links.

Strategy: a magnet link names a torrent by its info-hash(es) and nothing else is needed to
join a swarm; ``dn`` (a display name), ``tr`` (trackers) and ``x.pe`` (peers) are hints.
A v1 info-hash is ``xt=urn:btih:`` with 40 hex digits or 32 base32 characters; a v2 one is
``xt=urn:btmh:1220`` with 64 hex digits (a multihash: 0x12 SHA-256, 0x20 bytes long); a
hybrid torrent's link carries both. Links come from web pages and chat, so they are
untrusted input: bounded in length, tracker and peer counts, every value percent-decoded
as UTF-8, and any malformed or contradicting info-hash refused with
``RemoteProtocolError`` (an unknown parameter or ``xt`` kind is ignored, as BEP 9 allows).
``format_magnet`` writes what ``parse_magnet`` reads: ``parse_magnet(format_magnet(m)) ==
m`` (tests/bt).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from .. import limits
from ..errors import RemoteProtocolError

_BTIH = "urn:btih:"
_BTMH = "urn:btmh:1220"
_XT = re.compile(r"xt(\.\d+)?\Z")
_SAFE = "-._~:/@!$'()*,;?"  # kept as they are in a value (RFC 3986 unreserved and sub-delims)


@dataclass(frozen=True, slots=True)
class Magnet:
    """What a magnet link says: at least one info-hash, and hints."""

    v1_hash: bytes | None = None  # 20 bytes
    v2_hash: bytes | None = None  # 32 bytes
    name: str | None = None
    trackers: tuple[str, ...] = ()
    peers: tuple[tuple[str, int], ...] = ()


def parse_magnet(text: str) -> Magnet:
    """The magnet link ``text``.

    Raises:
        RemoteProtocolError: not a magnet link, too long, no usable info-hash, two
            different info-hashes of one kind, or a malformed value.
    """
    if len(text) > limits.MAX_MAGNET:
        raise RemoteProtocolError(f"magnet link over {limits.MAX_MAGNET} characters")
    if not text.startswith("magnet:?"):
        raise RemoteProtocolError("not a magnet link (magnet:?...)")
    found: dict[str, list[str]] = {}
    for part in filter(None, text[len("magnet:?"):].split("&")):
        key, _, value = part.partition("=")
        key = "xt" if _XT.match(key) else key
        found.setdefault(key, []).append(_unquote(value))
    v1, v2 = _hashes(found.get("xt", []))
    names = found.get("dn", [])
    trackers = [url for url in found.get("tr", []) if url]
    if len(trackers) > limits.MAX_TORRENT_TRACKERS:
        raise RemoteProtocolError(f"magnet link with over {limits.MAX_TORRENT_TRACKERS} trackers")
    return Magnet(v1, v2, names[0] if names else None, tuple(dict.fromkeys(trackers)),
                  _peers(found.get("x.pe", [])))


def format_magnet(magnet: Magnet) -> str:
    """The link for ``magnet``: ``xt`` v1 (hex), ``xt`` v2, ``dn``, each ``tr``, each ``x.pe``.

    Raises:
        ValueError: a Magnet with no info-hash, or hashes of the wrong size.
    """
    parts = []
    if magnet.v1_hash is not None:
        parts.append("xt=" + _BTIH + _checked(magnet.v1_hash, 20).hex())
    if magnet.v2_hash is not None:
        parts.append("xt=" + _BTMH + _checked(magnet.v2_hash, 32).hex())
    if not parts:
        raise ValueError("a magnet link needs an info-hash")
    if magnet.name is not None:
        parts.append("dn=" + quote(magnet.name, safe=_SAFE))
    parts += ["tr=" + quote(url, safe=_SAFE) for url in magnet.trackers]
    parts += ["x.pe=" + quote(_hostport(*peer), safe=_SAFE) for peer in magnet.peers]
    return "magnet:?" + "&".join(parts)


def _checked(digest: bytes, size: int) -> bytes:
    if len(digest) != size:
        raise ValueError(f"an info-hash of {len(digest)} bytes where {size} belong")
    return digest


def _unquote(value: str) -> str:
    try:
        return unquote(value.replace("+", " "), errors="strict")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError("magnet link value is not UTF-8") from exc


def _hashes(topics: list[str]) -> tuple[bytes | None, bytes | None]:
    v1: set[bytes] = set()
    v2: set[bytes] = set()
    for topic in topics:
        lowered = topic.lower()
        if lowered.startswith(_BTIH):
            v1.add(_v1_hash(topic[len(_BTIH):]))
        elif lowered.startswith(_BTMH):
            v2.add(_hex(topic[len(_BTMH):], 32))
    if len(v1) > 1 or len(v2) > 1:
        raise RemoteProtocolError("magnet link names two different torrents")
    if not v1 and not v2:
        raise RemoteProtocolError("magnet link without a BitTorrent info-hash (xt=urn:btih: "
                                  "or urn:btmh:)")
    return next(iter(v1), None), next(iter(v2), None)


def _v1_hash(text: str) -> bytes:
    if len(text) != 32:
        return _hex(text, 20)
    if not re.fullmatch(r"[A-Za-z2-7]*", text):  # b32decode raises ValueError on non-ASCII
        raise RemoteProtocolError("bad base32 v1 info-hash in magnet link")
    return base64.b32decode(text.upper())


def _hex(text: str, size: int) -> bytes:
    if len(text) != 2 * size or not re.fullmatch(r"[0-9A-Fa-f]*", text):
        raise RemoteProtocolError(f"magnet info-hash is not {2 * size} hex digits")
    return bytes.fromhex(text)


def _peers(texts: list[str]) -> tuple[tuple[str, int], ...]:
    if len(texts) > limits.MAX_MAGNET_PEERS:
        raise RemoteProtocolError(f"magnet link with over {limits.MAX_MAGNET_PEERS} peers")
    return tuple(dict.fromkeys(map(_peer, texts)))


def _peer(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` (BEP 9 x.pe)."""
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or "[" in host or "]" in host or not re.fullmatch(r"[0-9]{1,5}", port) or \
            not 1 <= int(port) <= limits.MAX_PORT:
        raise RemoteProtocolError(f"bad peer address {text[:80]!r} in magnet link")
    return host, int(port)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
