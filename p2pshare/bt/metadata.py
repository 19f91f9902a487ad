"""Metadata exchange (BEP 9) and hash requests (BEP 52): both sides.

Strategy: a magnet link names a torrent by its info-hash(es) only; the info dictionary is
asked of peers in 16 KiB pieces (``ut_metadata``) and trusted only once its SHA-1 (v1) or
SHA-256 (v2) equals the hash the link gave (``metainfo.parse_info`` checks it, and checks
the dictionary like any torrent). A peer whose metadata does not hash right is dropped and
the next one is asked, so one liar cannot stop the download. The size a peer announces is
bounded (``limits.MAX_BENCODE_SIZE``) before anything is allocated.

Serving: a metadata piece of our info dictionary, and piece-layer hashes with their
uncle hashes (``merkle.proof_hashes``) for a hash request of a v2 file whose piece layer
we hold; anything else is rejected. The tree above a piece layer is built at the first
request for its file and kept (``TorrentStore.hash_rows``): a request costs a lookup, not
a hash a piece.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from .. import limits
from ..errors import P2PError, PeerGone, RemoteProtocolError
from ..net.origin import ANYWHERE, Origin
from ..protocol import bt_events as w
from ..protocol import merkle
from ..protocol.metainfo import Magnet, Torrent, parse_info
from ..swarm.link import Address
from .peer import PeerWire
from .store import SHA256, TorrentStore

log = logging.getLogger(__name__)
PIECE = 16 * 1024  # bytes of one metadata piece (BEP 9)


def metadata_answer(store: TorrentStore,
                    req: w.MetadataRequest | w.HashRequest) -> w.BtEvent:
    """Our answer to a metadata or hash request."""
    if isinstance(req, w.HashRequest):
        return _hashes(store, req)
    info = store.torrent.info
    start = req.piece * PIECE
    if req.piece < 0 or start >= len(info):
        return w.MetadataReject(req.piece)
    return w.MetadataData(req.piece, len(info), info[start:start + PIECE])


def _hashes(store: TorrentStore, req: w.HashRequest) -> w.BtEvent:
    reject = w.HashReject(req.pieces_root, req.base_layer, req.index, req.length,
                          req.proof_layers)
    layer = store.layers.get(req.pieces_root)
    height = merkle.piece_height(store.layout.piece_length)
    if layer is None or req.base_layer != height:
        return reject
    rows = store.hash_rows.get(req.pieces_root)
    if rows is None:  # once per file: a request must not cost a hash a piece
        rows = store.hash_rows[req.pieces_root] = _rows(layer, height)
    try:
        found = merkle.proof_hashes(rows, req.base_layer, req.index, req.length,
                                    req.proof_layers)
    except IndexError:
        return reject
    return w.Hashes(req.pieces_root, req.base_layer, req.index, req.length,
                    req.proof_layers, b"".join(found))


def _rows(layer: bytes, height: int) -> list[list[bytes]]:
    """The rows of a file's tree from its piece layer (``height`` levels above the
    leaves, whose rows are left empty) up to the root, each padded to a power of two."""
    rows: list[list[bytes]] = [[] for _ in range(height)]
    row = [layer[at:at + SHA256] for at in range(0, len(layer), SHA256)]
    row += [merkle.pad_hash(height)] * (merkle.width(len(row)) - len(row))
    level = height
    while True:
        rows.append(row)
        if len(row) == 1:
            return rows
        row = merkle.row_up(row, merkle.pad_hash(level))
        level += 1


async def fetch_metadata(magnet: Magnet, peers: Iterable[Address], hello: w.Handshake,
                         ext: w.ExtendedHandshake, origin: Origin = ANYWHERE) -> Torrent:
    """The torrent ``magnet`` names, asked of ``peers`` one after another (every peer
    ``limits.BT_METADATA_ROUNDS`` times at most), connecting from ``origin``.

    Raises:
        PeerGone: no peer gave metadata that matches the magnet link.
    """
    peers = list(peers)
    for attempt in range(limits.BT_METADATA_ROUNDS):
        if attempt:
            await asyncio.sleep(limits.PEER_RETRY_DELAY)  # a peer may still be starting
        for address in peers:
            try:
                return await _from_peer(address, magnet, hello, ext, origin)
            except (P2PError, OSError, TimeoutError) as exc:
                log.info("[BT] no metadata from %s: %s", address, exc or type(exc).__name__)
    raise PeerGone("no peer sent the torrent's metadata")


async def _from_peer(address: Address, magnet: Magnet, hello: w.Handshake,
                     ext: w.ExtendedHandshake, origin: Origin) -> Torrent:
    upgrade = magnet.v2_hash[:20] if magnet.v2_hash else None
    wire = await PeerWire.connect(address, hello, ext, upgrade=upgrade, origin=origin)
    try:
        async with asyncio.timeout(limits.BT_METADATA_TIMEOUT):
            while wire.extended is None:
                await wire.next_event()
            size = wire.extended.metadata_size
            if "ut_metadata" not in wire.extended.m or not size:
                raise RemoteProtocolError("the peer does not offer metadata")
            if not 0 < size <= limits.MAX_BENCODE_SIZE:
                raise RemoteProtocolError(f"metadata of {size} bytes")
            count = -(-size // PIECE)
            wire.send(*(w.MetadataRequest(i) for i in range(count)))
            parts: dict[int, bytes] = {}
            while len(parts) < count:
                event = await wire.next_event()
                if isinstance(event, w.MetadataReject):
                    raise RemoteProtocolError("the peer refused a metadata piece")
                if isinstance(event, w.MetadataData) and 0 <= event.piece < count:
                    parts[event.piece] = event.data
            info = b"".join(parts[i] for i in range(count))[:size]
    finally:
        wire.close()
    return parse_info(info, v1_hash=magnet.v1_hash, v2_hash=magnet.v2_hash)
