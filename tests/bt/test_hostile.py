"""Hostile peers against the BitTorrent seed and fetch, in one event loop on real sockets:
a peer that unchokes and then sends nothing loses its link, one that sends garbage is
dropped, and a seed fed random bytes closes that connection and serves the next peer."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from p2pshare import limits
from p2pshare.bt.session import Seeding, TorrentFetch
from p2pshare.protocol import bt_events as w
from p2pshare.protocol.bt_wire import BtConnection, BtRole
from p2pshare.protocol.metainfo import Torrent, parse_torrent

from ..aio import arun
from ..helpers import async_wait_for
from .lt import K, make_torrent, same_tree, write_data

Address = tuple[str, int]


def _torrent(tmp_path: Path) -> tuple[Torrent, Path]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data = write_data(data_dir, "f.bin", [12 * K + 9])
    return parse_torrent(make_torrent(data, "hybrid")), data


@asynccontextmanager
async def _seed(torrent: Torrent, data: Path) -> AsyncIterator[Address]:
    seeding = await Seeding.open(torrent, data.parent)
    try:
        yield await seeding.serve("127.0.0.1", 0)
    finally:
        await seeding.aclose()


@asynccontextmanager
async def _liar(torrent: Torrent, after: bytes) -> AsyncIterator[Address]:
    """A peer that greets properly, says it has everything, unchokes, then sends ``after``
    (random bytes) or, with ``after`` empty, nothing at all."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = BtConnection(BtRole.ACCEPTOR)
        conn.receive_data(await reader.readexactly(68))
        theirs = conn.next_event()
        assert isinstance(theirs, w.Handshake)
        writer.write(conn.send(w.Handshake(theirs.info_hash, os.urandom(20),
                                           w.reserved_bits(extended=False))))
        writer.write(conn.send(w.HaveAll()) + conn.send(w.Unchoke()) + after)
        await reader.read()  # until the downloader closes

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[:2]
    finally:
        server.close()


async def _fetch(tmp_path: Path, torrent: Torrent, peers: list[Address]) -> TorrentFetch:
    job = TorrentFetch(tmp_path / "out", peers)
    download = job.prepare(torrent)
    async with asyncio.timeout(30):
        await job.run(download)
    return job


@pytest.mark.parametrize("after", [b"", random.Random(5).randbytes(300)],
                         ids=["silent", "garbage"])
def test_a_bad_peer_loses_its_link_and_the_download_completes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: bytes) -> None:
    monkeypatch.setattr(limits, "BT_SNUB_TIMEOUT", 0.5)
    torrent, data = _torrent(tmp_path)

    async def main() -> None:
        async with _liar(torrent, after) as bad, _seed(torrent, data) as good:
            job = TorrentFetch(tmp_path / "out", [bad])
            download = job.prepare(torrent)
            async with asyncio.timeout(30), asyncio.TaskGroup() as tg:
                tg.create_task(job.run(download))
                # Alone, the bad peer is dropped (and tried again later), never trusted.
                await async_wait_for(lambda: bad in download.roster.records and
                                     bad not in download.links)
                download.add_peers([good])
            records = download.roster.records
            assert records[good].delivered > 0 and records[bad].delivered == 0

    arun(main)()
    assert same_tree(data, tmp_path / "out" / data.name)


def test_the_seed_closes_on_random_bytes_and_serves_others(tmp_path: Path) -> None:
    torrent, data = _torrent(tmp_path)

    async def main() -> None:
        async with _seed(torrent, data) as good:
            for size in (68, 5000):
                reader, writer = await asyncio.open_connection(*good)
                writer.write(random.Random(size).randbytes(size))
                async with asyncio.timeout(limits.BT_HANDSHAKE_TIMEOUT + 5):
                    while await reader.read(65536):
                        pass  # until the seed closes the connection
                writer.close()
            await _fetch(tmp_path, torrent, [good])

    arun(main)()
    assert same_tree(data, tmp_path / "out" / data.name)
