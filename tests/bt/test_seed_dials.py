"""A seed connects to the peers its trackers list (``BtServer.reach``) and serves them as
if they had connected: the way a leech that only listens (Transmission 3.00 on loopback)
gets served (docs/bittorrent.md#interoperability)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from p2pshare.bt.session import Seeding
from p2pshare.protocol import bt_events as w
from p2pshare.protocol.metainfo import parse_torrent

from ..aio import arun
from ..helpers import async_wait_for
from .lt import K, make_torrent, write_data
from .wire import answer_handshake

Address = tuple[str, int]


async def _listening_leech(got: list[bytes], dialled: list[Address]) -> asyncio.Server:
    """A peer that never dials: each connection made to it asks for piece 0's first
    block, which goes into ``got``; ``dialled`` counts the connections."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dialled.append(writer.get_extra_info("peername")[:2])
        conn = await answer_handshake(reader, writer)
        writer.write(conn.send(w.HaveNone()) + conn.send(w.Interested()))
        while data := await reader.read(65536):
            conn.receive_data(data)
            while isinstance(event := conn.next_event(), w.BtEvent):
                if isinstance(event, w.Unchoke):
                    writer.write(conn.send(w.BtRequest(0, 0, K)))
                elif isinstance(event, w.Piece):
                    got.append(bytes(event.block))
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_a_seed_dials_a_listed_leech_once_and_serves_it(tmp_path: Path) -> None:
    data = write_data(tmp_path, "f.bin", [3 * K + 3])
    torrent = parse_torrent(make_torrent(data, "v1"))

    async def main() -> None:
        seeding = await Seeding.open(torrent, tmp_path)
        got: list[bytes] = []
        dialled: list[Address] = []
        leech = await _listening_leech(got, dialled)
        try:
            ours = await seeding.serve("127.0.0.1", 0)
            address = leech.sockets[0].getsockname()[:2]
            listed = [address, address, ours]  # a repeat, and ourselves
            seeding.server.reach(listed, seeding.store)
            await async_wait_for(lambda: got, 10)
            seeding.server.reach(listed, seeding.store)  # linked already: not again
            await async_wait_for(lambda: not seeding.server.dialling, 10)
            assert got == [data.read_bytes()[:K]]
            assert len(dialled) == 1
        finally:
            leech.close()
            await seeding.aclose()

    arun(main)()


def test_a_seed_that_dials_itself_remembers_it(tmp_path: Path) -> None:
    """Listening on every interface, a seed does not know the address a tracker lists it
    by: the first dial meets its own handshake, and the address is not dialled again."""
    data = write_data(tmp_path, "f.bin", [K])
    torrent = parse_torrent(make_torrent(data, "v1"))

    async def main() -> None:
        seeding = await Seeding.open(torrent, tmp_path)
        try:
            ours = await seeding.serve("127.0.0.1", 0)
            server = seeding.server
            server.address = None  # as behind a wildcard address
            server.reach([ours], seeding.store)
            await async_wait_for(lambda: server.selves, 10)
            assert server.selves == {ours}
            await async_wait_for(lambda: not server.uploads, 10)
            server.reach([ours], seeding.store)
            assert not server.dialling
        finally:
            await seeding.aclose()

    arun(main)()
