"""Our peer wire codec against real libtorrent, over a plain loopback socket.

Each libtorrent session (the ``libtorrent`` wheel) runs on 127.0.0.1 with DHT, local peer
discovery, UPnP and NAT-PMP off, with a small v1 torrent libtorrent itself made. The test
connects a socket and drives ``BtConnection`` by hand. Downloading from a libtorrent seed:
handshake, extension handshake, the seed's have-all (or bitfield), the metadata (BEP 9,
checked against the info dictionary), interested, unchoke, and blocks (the last, short
one too) received into our buffers and checked against the file. Serving a libtorrent
downloader: its requests read, each block sent as our 13-byte head and the file's bytes
(the sendfile form), until libtorrent has verified every piece and the file matches.
A BEP 52 hash request to a libtorrent v2 seed gives the file's piece layer.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pshare.protocol import bt_events as ev
from p2pshare.protocol import merkle
from p2pshare.protocol._bt_state import Geometry
from p2pshare.protocol._events import _Sentinel
from p2pshare.protocol.bt_wire import BtConnection, BtRole

from ..helpers import DEADLINE, wait_for

lt = pytest.importorskip("libtorrent", reason="the libtorrent wheel is not installed")

PIECE = 32 * 1024
SIZE = 3 * PIECE + 5000  # four pieces, the last of 5000 bytes


def _settings() -> dict[str, Any]:
    return {"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
            "enable_upnp": False, "enable_natpmp": False, "enable_outgoing_utp": False,
            "enable_incoming_utp": False, "alert_mask": 0}


def _torrent(folder: Path, size: int = SIZE, v2: bool = False) -> tuple[Any, bytes]:
    """A v1 (or v2) torrent libtorrent makes of a random file in ``folder``, and the
    file's bytes."""
    data = os.urandom(size)
    (folder / "f.bin").write_bytes(data)
    kind = lt.create_torrent.v2_only if v2 else lt.create_torrent.v1_only
    maker = lt.create_torrent(lt.list_files(str(folder / "f.bin")), PIECE, flags=kind)
    lt.set_piece_hashes(maker, str(folder))
    return lt.torrent_info(maker.generate()), data


def _session(info: Any, folder: Path, *, seed: bool) -> tuple[Any, Any]:
    """A running libtorrent session with ``info`` added (as a seed, or empty)."""
    session = lt.session(_settings())
    params = lt.add_torrent_params()
    params.ti = info
    params.save_path = str(folder)
    if seed:
        params.flags |= lt.torrent_flags.seed_mode
    handle = session.add_torrent(params)
    # a connection before the torrent runs is dropped: wait until it does
    want = lt.torrent_status.seeding if seed else lt.torrent_status.downloading
    wait_for(lambda: handle.status().state == want and not handle.status().paused,
             what="libtorrent's torrent running")
    return session, handle


@pytest.fixture
def seed(tmp_path: Path) -> Iterator[tuple[int, bytes, bytes, bytes]]:
    """(port, v1 info-hash, info dict bytes, file bytes) of a running libtorrent seed."""
    info, data = _torrent(tmp_path)
    session, _ = _session(info, tmp_path, seed=True)
    info_bytes = bytes(info.info_section())
    try:
        yield session.listen_port(), hashlib.sha1(info_bytes).digest(), info_bytes, data
    finally:
        del session


class Driver:
    """A blocking socket feeding a ``BtConnection``."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.conn = BtConnection(BtRole.INITIATOR, geometry=Geometry.v1(SIZE, PIECE),
                                 receive_blocks=True)

    def send(self, event: ev.BtEvent) -> None:
        self.sock.sendall(self.conn.data_to_send() + self.conn.send(event))

    def next(self) -> object:
        """The next event other than a keep-alive or a message we do not wait for here."""
        while isinstance(event := self.conn.next_event(), _Sentinel):
            view = self.conn.get_buffer()
            count = self.sock.recv_into(view)
            assert count, "libtorrent closed the connection"
            self.conn.buffer_updated(count)
        return event

    def wait(self, *kinds: type) -> object:
        while not isinstance(event := self.next(), kinds):
            pass
        return event


def test_fetch_blocks_and_metadata_from_libtorrent(
        seed: tuple[int, bytes, bytes, bytes]) -> None:
    port, info_hash, info_bytes, data = seed
    peer = Driver(port)
    try:
        peer.send(ev.Handshake(info_hash, b"-PS0001-" + os.urandom(12)))
        theirs = peer.wait(ev.Handshake)
        assert isinstance(theirs, ev.Handshake) and theirs.info_hash == info_hash
        assert peer.conn.fast and peer.conn.extended
        peer.send(peer.conn.extended_handshake(v="p2pshare test"))
        assert isinstance(peer.wait(ev.ExtendedHandshake), ev.ExtendedHandshake)
        ext = peer.conn.their_extensions
        assert ext is not None and ext.metadata_size == len(info_bytes)
        assert isinstance(peer.wait(ev.HaveAll, ev.Bitfield), ev.HaveAll | ev.Bitfield)
        peer.send(ev.MetadataRequest(0))
        meta = peer.wait(ev.MetadataData)
        assert isinstance(meta, ev.MetadataData) and meta.data == info_bytes
        peer.send(ev.Interested())
        peer.wait(ev.Unchoke)
        for index, begin, length in ((0, 0, 16384), (1, 16384, 16384), (3, 0, 5000)):
            peer.send(ev.BtRequest(index, begin, length))
            head = peer.wait(ev.PieceHeader)
            assert head == ev.PieceHeader(index, begin, length)
            block = bytearray(length)
            peer.conn.receive_block(block)
            assert peer.wait(ev.PieceEnd) == ev.PieceEnd(index, begin, length)
            start = index * PIECE + begin
            assert bytes(block) == data[start:start + length]
    finally:
        peer.sock.close()


def test_libtorrent_downloads_from_our_codec(tmp_path: Path) -> None:
    """We serve, libtorrent asks: its requests read, our pieces sent as head + file bytes
    (the sendfile form), until libtorrent has verified every piece."""
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    info, data = _torrent(tmp_path / "ours")
    session, handle = _session(info, tmp_path / "theirs", seed=False)
    info_hash = hashlib.sha1(bytes(info.info_section())).digest()
    peer = Driver(session.listen_port())
    try:
        peer.send(ev.Handshake(info_hash, b"-PS0001-" + os.urandom(12)))
        peer.wait(ev.Handshake)
        peer.send(peer.conn.extended_handshake())
        peer.send(ev.HaveAll())
        peer.send(ev.Unchoke())
        served = 0
        while not handle.status().is_seeding:
            event = peer.next()
            if isinstance(event, ev.BtRequest):
                start = event.index * PIECE + event.begin
                head = peer.conn.send(ev.PieceHeader(event.index, event.begin, event.length))
                peer.sock.sendall(head + data[start:start + event.length])
                served += event.length
            elif isinstance(event, ev.NotInterested):
                wait_for(lambda: handle.status().is_seeding, what="libtorrent done")
        assert served >= SIZE
    finally:
        peer.sock.close()
        del session
    assert (tmp_path / "theirs" / "f.bin").read_bytes() == data


def test_hash_request_to_a_libtorrent_v2_seed(tmp_path: Path) -> None:
    """BEP 52: the piece layer of a v2 file, asked of libtorrent, is the one we compute."""
    info, data = _torrent(tmp_path, size=8 * PIECE, v2=True)
    session, _ = _session(info, tmp_path, seed=True)
    leaves = merkle.block_hashes(data)
    root = merkle.file_root(leaves, PIECE)  # libtorrent answers only for its file's root
    assert root is not None
    peer = Driver(session.listen_port())
    try:
        v2_hash = bytes(info.info_hashes().v2.to_bytes())
        peer.send(ev.Handshake(v2_hash[:20], b"-PS0001-" + os.urandom(12),
                               ev.reserved_bits(v2=True)))
        peer.wait(ev.Handshake)
        peer.send(peer.conn.extended_handshake())
        peer.send(ev.HaveNone())
        height = merkle.piece_height(PIECE)
        peer.send(ev.HashRequest(root, height, 0, 8, 0))
        answer = peer.wait(ev.Hashes, ev.HashReject)
    finally:
        peer.sock.close()
        del session
    layer = merkle.piece_layer(leaves, PIECE)
    assert answer == ev.Hashes(root, height, 0, 8, 0, b"".join(layer))
