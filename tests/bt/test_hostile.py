"""Hostile peers against the BitTorrent seed and fetch, in one event loop on real sockets:
a peer that unchokes and then sends nothing loses its link, one that sends garbage is
dropped, and a seed fed random bytes closes that connection and serves the next peer."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from p2pshare import limits
from p2pshare.bt.create import Kind
from p2pshare.bt.create import make_torrent as create_torrent
from p2pshare.bt.session import Seeding, TorrentFetch
from p2pshare.protocol import bt_events as w
from p2pshare.protocol import merkle
from p2pshare.protocol._events import _Sentinel
from p2pshare.protocol.bt_wire import BtConnection, BtRole, ConnectionClosed
from p2pshare.protocol.metainfo import Torrent, parse_torrent

from ..aio import arun
from ..helpers import async_wait_for
from .lt import K, make_torrent, same_tree, write_data
from .wire import answer_handshake

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


async def _talk(address: Address, torrent: Torrent,
                answer: Callable[[BtConnection, w.BtEvent | ConnectionClosed], bytes],
                done: Callable[[], bool]) -> None:
    """Connect to ``address`` for ``torrent`` (v2 bit set) and write ``answer``'s bytes for
    each event of the peer's, until ``done``."""
    reader, writer = await asyncio.open_connection(*address)
    conn = BtConnection(BtRole.INITIATOR)
    writer.write(conn.send(w.Handshake(torrent.handshake_hash, os.urandom(20),
                                       w.reserved_bits(v2=True))))
    try:
        async with asyncio.timeout(30):
            while not done():
                data = await reader.read(65536)
                assert data, "the peer closed the connection"
                conn.receive_data(data)
                while not isinstance(event := conn.next_event(), _Sentinel):
                    writer.write(answer(conn, event))
    finally:
        writer.close()


@asynccontextmanager
async def _serving(handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                    Awaitable[None]]) -> AsyncIterator[Address]:
    """A peer on 127.0.0.1 (port 0) that runs ``handle`` for each connection."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[:2]
    finally:
        server.close()


@asynccontextmanager
async def _liar(torrent: Torrent, after: bytes) -> AsyncIterator[Address]:
    """A peer that greets properly, says it has everything, unchokes, then sends ``after``
    (random bytes) or, with ``after`` empty, nothing at all."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = await answer_handshake(reader, writer)
        writer.write(conn.send(w.HaveAll()) + conn.send(w.Unchoke()) + after)
        await reader.read()  # until the downloader closes

    async with _serving(handle) as address:
        yield address


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


def test_hash_requests_cost_the_seed_one_tree_per_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack: each 49-byte BEP 52 hash request made the seed rebuild the whole merkle
    tree above the file's piece layer (a hash per piece, in the event loop: seconds for a
    file of a million pieces), so a peer pipelining them held its CPU. Now the tree is
    built once per file; the answers still prove their hashes."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data = write_data(data_dir, "f.bin", [64 * K])  # 64 pieces of 16 KiB
    torrent = parse_torrent(create_torrent(data, kind=Kind.V2, piece_length=K))
    root = torrent.files[0].pieces_root
    assert root is not None
    built: list[int] = []
    row_up = merkle.row_up

    def counted(row: Sequence[bytes], pad: bytes) -> list[bytes]:
        built.append(1)
        return row_up(row, pad)

    monkeypatch.setattr(merkle, "row_up", counted)
    requests = [w.HashRequest(root, 0, index, 4, 5) for index in range(0, 64, 4)] * 2

    answers: list[w.Hashes] = []

    def answer(conn: BtConnection, event: w.BtEvent | ConnectionClosed) -> bytes:
        answers.extend([event] if isinstance(event, w.Hashes) else [])
        return b"".join(map(conn.send, requests)) if isinstance(event, w.Handshake) else b""

    async def main() -> None:
        async with _seed(torrent, data) as address:
            await _talk(address, torrent, answer, lambda: len(answers) >= len(requests))

    arun(main)()
    assert len(built) <= 6  # one tree of 64 pieces: six rows above the piece layer
    for got in answers:
        hashes = [got.hashes[at:at + 32] for at in range(0, len(got.hashes), 32)]
        assert merkle.verify_proof(root, 6, 0, got.index, hashes[:4], hashes[4:])


@asynccontextmanager
async def _pex_flooder(messages: int) -> AsyncIterator[Address]:
    """A peer that greets with the extension protocol, then sends ``messages`` ut_pex
    messages of 50 made-up peers each, then a have of piece 0 (so that a test knows the
    messages before it were read), and nothing else."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = BtConnection(BtRole.ACCEPTOR)
        while conn.their_extensions is None:
            conn.receive_data(await reader.read(65536))
            while not isinstance(event := conn.next_event(), _Sentinel):
                if isinstance(event, w.Handshake):
                    writer.write(conn.send(w.Handshake(event.info_hash, os.urandom(20),
                                                       w.reserved_bits())))
                    writer.write(conn.send(conn.extended_handshake()))
        for n in range(messages):
            writer.write(conn.send(w.Pex(added=tuple(
                (f"127.1.{n}.{i}", 9) for i in range(1, 51)))))  # loopback: nobody there
        writer.write(conn.send(w.BtHave(0)))
        await reader.read()  # until the downloader closes

    async with _serving(handle) as address:
        yield address


def test_one_peer_flooding_pex_cannot_fill_the_known_peers(tmp_path: Path) -> None:
    """Attack: one connected peer sent 40 ut_pex messages of 50 made-up addresses and so
    filled the download's 2,000 known peers; a seed a tracker named afterwards found no
    room and the download never ended. Now one peer may tell of at most
    ``BT_PEX_PER_PEER`` addresses."""
    torrent, data = _torrent(tmp_path)
    messages = limits.BT_MAX_KNOWN_PEERS // limits.MAX_PEX_PEERS

    async def main() -> None:
        async with _pex_flooder(messages) as flooder, _seed(torrent, data) as good:
            job = TorrentFetch(tmp_path / "out", [flooder])
            download = job.prepare(torrent)
            async with asyncio.timeout(30), asyncio.TaskGroup() as tg:
                tg.create_task(job.run(download))
                await async_wait_for(lambda: download.picker.peers.get(flooder) == 1)
                download.add_peers([good])
            assert len(download.known) <= limits.BT_PEX_PER_PEER + 2

    arun(main)()
    assert same_tree(data, tmp_path / "out" / data.name)
