"""BEP 52's upgrade of a hybrid torrent's connection to v2: a p2pshare seed answers each
handshake with the info-hash libtorrent's own seed answers it with.

A hybrid torrent has two names, the v1 info-hash and the truncated v2 one. A peer that
asks for it by its v1 name and sets the v2 bit (reserved byte 7 & 0x10) is answered with
the v2 name: the connection is upgraded. libtorrent 2.0 counts on it: it may learn of one
peer from a tracker's v1 answer and then its v2 answer, and switch the name it expects
while its handshake (sent with the v1 name) is under way; an answer with the v1 name is
then "invalid info-hash" and the peer is dropped (the interop tests' hybrid cases failed
so one run in two or three, the libtorrent leech never connecting again).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from p2pshare.bt.session import Seeding
from p2pshare.protocol import bt_events as w
from p2pshare.protocol._events import _Sentinel
from p2pshare.protocol.bt_wire import BtConnection, BtRole
from p2pshare.protocol.metainfo import parse_torrent

from ..aio import arun
from .lt import K, LtPeer, make_torrent, write_data

# (the name we ask for, with the v2 bit?) -> the name the seed answers with
ASKS = [("v1", False), ("v1", True), ("v2", False), ("v2", True)]


async def _answer(port: int, info_hash: bytes, v2: bool) -> bytes:
    """The info-hash of the handshake the peer at ``port`` answers ours with."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        conn = BtConnection(BtRole.INITIATOR)
        writer.write(conn.send(w.Handshake(info_hash, os.urandom(20), w.reserved_bits(v2=v2))))
        async with asyncio.timeout(20):
            while isinstance(event := conn.next_event(), _Sentinel):
                data = await reader.read(65536)
                assert data, f"the seed at {port} closed the connection"
                conn.receive_data(data)
        assert isinstance(event, w.Handshake)
        return event.info_hash
    finally:
        writer.close()


@pytest.mark.parametrize(("asked", "bit"), ASKS, ids=[f"{a}{'+bit' * b}" for a, b in ASKS])
def test_hybrid_handshake_answered_as_libtorrent_answers(tmp_path: Path, asked: str,
                                                         bit: bool) -> None:
    data = write_data(tmp_path, "f.bin", [4 * K + 7])
    raw = make_torrent(data, "hybrid")
    torrent = parse_torrent(raw)
    assert torrent.v1_hash is not None and torrent.v2_hash is not None
    names = {"v1": torrent.v1_hash, "v2": torrent.v2_hash[:20]}
    theirs = LtPeer(tmp_path, torrent=raw, seed=True)

    async def main() -> None:
        seeding = await Seeding.open(torrent, tmp_path)
        try:
            _, port = await seeding.serve("127.0.0.1", 0)
            ours = await _answer(port, names[asked], bit)
        finally:
            await seeding.aclose()
        libtorrent = await _answer(theirs.port, names[asked], bit)
        assert libtorrent == names["v2" if bit else asked]  # the reference, as described
        assert ours == libtorrent

    try:
        arun(main)()
    finally:
        theirs.close()
