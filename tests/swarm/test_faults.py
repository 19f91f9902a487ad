"""Downloads against misbehaving peers, over real loopback sockets in one event loop: a
seeder that corrupts pieces, a peer that never answers, and the piece server's limits."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from p2pshare import limits
from p2pshare.index.server import IndexServer
from p2pshare.protocol import Request, get_header
from p2pshare.protocol.swarm import GetPeers, Have, decode_ranges
from p2pshare.swarm.client import TrackerClient
from p2pshare.swarm.fetch import SwarmDownload
from p2pshare.swarm.manifest import Manifest
from p2pshare.swarm.pieces import full
from p2pshare.swarm.session import Fetch, SwarmPeer
from p2pshare.swarm.storage import PieceFile, hash_file
from p2pshare.swarm.tracker import Tracker, TrackerAnswer

from ..aio import HOST, arun
from ..helpers import async_wait_for

MiB = 1024 * 1024


@asynccontextmanager
async def tracker_server(tracker: Tracker | None = None, *,
                         trust_named_hosts: bool = False) -> AsyncIterator[int]:
    server = IndexServer(tracker=tracker or Tracker(), trust_named_hosts=trust_named_hosts)
    _, port = await server.start(HOST, 0)
    try:
        yield port
    finally:
        await server.aclose()


def peer(port: int, rate_limit: float | None = None) -> AbstractAsyncContextManager[SwarmPeer]:
    return SwarmPeer.open(HOST, port, listen=HOST, rate_limit=rate_limit)


def make_file(folder: Path, size: int) -> tuple[Path, Manifest]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "data.bin"
    path.write_bytes(os.urandom(size))
    return path, hash_file(path, 64 * 1024)


async def leech(port: int, manifest: Manifest, out: Path,
                tune: object = None) -> tuple[SwarmDownload, Path]:
    async with peer(port) as me:
        job = Fetch(me, out)
        download = job.prepare(await job.resolve(manifest.id))
        if callable(tune):
            tune(download)
        return download, await job.run(download)


@arun
async def test_corrupting_seeder_cannot_corrupt_the_result(tmp_path: Path) -> None:
    path, manifest = make_file(tmp_path / "seed", 2 * MiB)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(b ^ 0x5A for b in path.read_bytes()))  # every piece is wrong
    async with tracker_server() as port, peer(port, rate_limit=4 * MiB) as honest, \
            peer(port) as liar:
        await honest.share(path, manifest)
        # The liar claims the real manifest but serves other bytes.
        liar.library.add(PieceFile(manifest, [open(bad, "rb", buffering=0)], full(manifest.count)))
        assert liar.address is not None
        await liar.tracker.announce(manifest, *liar.address)
        await liar.tracker.have(manifest.id, full(manifest.count))
        download, result = await leech(port, manifest, tmp_path / "out")
    assert result.read_bytes() == path.read_bytes()
    assert liar.address in download.banned
    assert download.strikes[liar.address] == limits.MAX_BAD_PIECES


SLOW_HOST = "127.0.0.3"  # the slow honest peers' own host (any 127.x works on Linux)
SLOW_RATE = 64 * 1024  # their upload: a 64 KiB piece a second, 8x the floor (MIN_LINK_RATE)


def slow_peer(port: int, rate: float) -> AbstractAsyncContextManager[SwarmPeer]:
    """An honest seeder on ``SLOW_HOST`` uploading at ``rate`` bytes per second (the
    tracker must trust named hosts: its tracker connection comes from 127.0.0.1)."""
    return SwarmPeer.open(HOST, port, listen=SLOW_HOST, advertise=SLOW_HOST,
                          rate_limit=rate)


@arun
async def test_a_slow_honest_peer_keeps_its_link_while_no_one_waits_for_the_slot(
        tmp_path: Path) -> None:
    """A seeder at 64 KiB/s beside one at 2 MiB/s: under 1/8 of the other's rate but
    above the 8 KiB/s floor. With no other peer waiting for a slot it is never dropped
    (``roster.judge``: dropping frees a slot nobody needs and loses a source; in the
    shaped benchmark honest relays whose uplinks were shared among seven were dropped
    so), and the download completes."""
    path, manifest = make_file(tmp_path / "seed", 6 * MiB)
    async with tracker_server(trust_named_hosts=True) as port, \
            peer(port, rate_limit=2 * MiB) as fast, slow_peer(port, SLOW_RATE) as slow:
        for seeder in (fast, slow):
            await seeder.share(path, manifest)
        download, result = await leech(port, manifest, tmp_path / "out")
        assert slow.server is not None and slow.server.bytes_sent > 0  # it was asked
    assert result.read_bytes() == path.read_bytes()
    assert slow.address is not None and fast.address is not None
    assert download.roster.slow_drops(slow.address) == 0
    assert download.roster.slow_drops(fast.address) == 0


@arun
async def test_a_slow_peer_loses_its_slot_to_a_peer_waiting_for_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same, with two slow seeders on one host and room for two links: the download
    links the fast seeder and one slow one (hosts spread), the other waits, and the slow
    link is dropped once judged under 1/8 of the fast one's rate, well before its
    deadline (the download lasts about 3 s; a slow one's first piece comes after 1 s,
    and it would owe one only at 4 s)."""
    monkeypatch.setattr(limits, "MAX_PEER_CONNECTIONS", 2)
    path, manifest = make_file(tmp_path / "seed", 6 * MiB)
    async with tracker_server(trust_named_hosts=True) as port, \
            peer(port, rate_limit=2 * MiB) as fast, slow_peer(port, SLOW_RATE) as one, \
            slow_peer(port, SLOW_RATE) as other:
        for seeder in (fast, one, other):
            await seeder.share(path, manifest)
        download, result = await leech(port, manifest, tmp_path / "out")
    assert result.read_bytes() == path.read_bytes()
    assert one.address is not None and other.address is not None
    assert fast.address is not None and download.roster.slow_drops(fast.address) == 0
    assert download.roster.slow_drops(one.address) + download.roster.slow_drops(
        other.address) >= 1


@asynccontextmanager
async def silent_peer(port: int, manifest: Manifest) -> AsyncIterator[list[bytes]]:
    """A peer that claims every piece, reads requests, and never answers."""
    heard: list[bytes] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            heard.append(data)
        writer.close()

    server = await asyncio.start_server(swallow, HOST, 0)
    tracker = await TrackerClient.connect(HOST, port)
    try:
        await tracker.announce(manifest, HOST, server.sockets[0].getsockname()[1])
        await tracker.have(manifest.id, full(manifest.count))
        yield heard
    finally:
        await tracker.aclose()
        server.close()


@pytest.mark.parametrize("endgame", [True, False])
@arun
async def test_stalled_peer_does_not_stall_the_download(tmp_path: Path, endgame: bool,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path, manifest = make_file(tmp_path / "seed", 1 * MiB)
    # Without endgame only the deadline rescues the stalled requests; shorten it.
    monkeypatch.setattr(limits, "PIECE_DEADLINE_MIN", 0.5)

    def no_endgame(download: SwarmDownload) -> None:
        download.picker.endgame_max = 1

    async with tracker_server() as port, silent_peer(port, manifest) as heard, \
            peer(port, rate_limit=2 * MiB) as seed:
        await seed.share(path, manifest)
        download, result = await leech(port, manifest, tmp_path / "out",
                                       None if endgame else no_endgame)
    assert result.read_bytes() == path.read_bytes()
    assert b"PIECE " in b"".join(heard)  # the stalled peer was asked, and never answered


@arun
async def test_piece_server_answers(tmp_path: Path) -> None:
    from p2pshare.protocol import swarm as sp
    from p2pshare.swarm.link import PipelinedStream

    path, manifest = make_file(tmp_path / "seed", 200_000)
    async with tracker_server() as port, peer(port) as seed:
        await seed.share(path, manifest)
        assert seed.server is not None and seed.address is not None
        seed.server.max_uploads = 1
        reader, writer = await asyncio.open_connection(*seed.address)
        link = PipelinedStream(seed.address, reader, writer, limits.MAX_PIECE_SIZE)
        for msg in (sp.GetPiece(manifest.id, 3), sp.GetPiece(manifest.id, 0),
                    sp.GetPiece(manifest.id, 4), sp.GetPiece("0" * 64, 0),
                    sp.GetManifest(manifest.id), sp.ListFiles()):
            link.send(msg)  # all pipelined at once
        answers = [await link.read_answer() for _ in range(6)]
        data = path.read_bytes()
        assert [(h.status, bytes(b)) for h, b in answers] == [
            (200, data[3 * 65536:]), (200, data[:65536]), (404, b""), (404, b""),
            (200, manifest.to_bytes()), (400, b"")]
        # The first answer tells which pieces the server holds; later ones only news.
        assert [get_header(h.headers, "Have") for h, _ in answers[:4]] == [
            "0-3", None, None, None]
        # A second connection while one is served: a clear 503, then close.
        reader2, writer2 = await asyncio.open_connection(*seed.address)
        other = PipelinedStream(seed.address, reader2, writer2, limits.MAX_PIECE_SIZE)
        other.send(sp.GetPiece(manifest.id, 0))
        head, _ = await other.read_answer()
        assert head.status == 503 and ("Retry-After", "2") in head.headers
        link.close()
        other.close()


@arun
async def test_losing_the_tracker_mid_download_the_peers_finish_it(tmp_path: Path) -> None:
    """The index server goes away mid-download and stays away: the downloader keeps
    fetching from the seed it is connected to (while it retries the tracker), completes,
    verifies and renames the file."""
    path, manifest = make_file(tmp_path / "seed", 1 * MiB)
    server = IndexServer(tracker=Tracker())
    _, port = await server.start(HOST, 0)
    async with peer(port, rate_limit=256 * 1024) as seed, peer(port) as me:
        await seed.share(path, manifest)
        job = Fetch(me, tmp_path / "out")
        download = job.prepare(await job.resolve(manifest.id))
        async with asyncio.TaskGroup() as tg:
            fetching = tg.create_task(job.run(download))
            await async_wait_for(lambda: download.file.have, what="a first piece")
            await server.aclose()  # the index server goes away mid-download
            held = download.file.have
        assert download.file.have.bit_count() > held.bit_count()  # more came afterwards
    assert fetching.result().read_bytes() == path.read_bytes()


@arun
async def test_busy_seeder_sends_leeches_to_each_other(tmp_path: Path) -> None:
    path, manifest = make_file(tmp_path / "seed", 2 * MiB)
    async with tracker_server() as port, peer(port, rate_limit=4 * MiB) as seed:
        await seed.share(path, manifest)
        assert seed.server is not None
        seed.server.max_uploads = 1  # one leech at a time; the other is told 503
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(leech(port, manifest, tmp_path / f"out{i}"))
                     for i in range(2)]
        assert seed.server.refused >= 1  # one leech was turned away, and still finished
    for task in tasks:
        assert task.result()[1].read_bytes() == path.read_bytes()


class HaveClock(Tracker):
    """A tracker that notes how many pieces each HAVE report names (on the quick path,
    ``quick``, or the general one)."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[int] = []

    def answer(self, owner: object, request: Request, body: bytes, source: str = "",
               named: bool = True) -> TrackerAnswer:
        if request.method == "HAVE":
            self.reports.append(decode_ranges(body.decode(), limits.MAX_PIECES).bit_count())
        return super().answer(owner, request, body, source, named)

    def quick(self, owner: object, msg: Have | GetPeers) -> bytes | None:
        answer = super().quick(owner, msg)
        if answer is not None and isinstance(msg, Have):
            self.reports.append(msg.pieces.bit_count())
        return answer


@arun
async def test_have_reports_are_batched_over_an_interval(tmp_path: Path) -> None:
    """A leech on a fast link verifies many pieces per HAVE_REPORT_INTERVAL: each report
    carries what was verified since the last, never a tracker round trip per piece
    (only the last report, when the download completes, is sent at once)."""
    path, manifest = make_file(tmp_path / "seed", 4 * MiB)  # 64 pieces
    tracker = HaveClock()
    async with tracker_server(tracker) as port, peer(port) as seed:
        await seed.share(path, manifest)
        shared = len(tracker.reports)
        _, result = await leech(port, manifest, tmp_path / "out")
    assert result.read_bytes() == path.read_bytes()
    reports = tracker.reports[shared:]
    # Untimed: the reports together name every piece once, in fewer reports than pieces
    # (a report per piece is what batching removed), so some report names several.
    assert sum(reports) == manifest.count
    assert 1 <= len(reports) < manifest.count
    assert max(reports) > 1


@arun
async def test_a_late_peer_that_ends_what_it_owed_without_a_good_piece_is_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer sends half a piece, stalls until it is late (its request goes to others too
    and it is asked nothing more until it delivers), then ends the piece with wrong bytes
    (one strike of those allowed): it owes nothing and will be asked nothing, so it is
    dropped as slow, not kept idle for the rest of the download (where such links would
    hold link slots, the probes' too, for ever)."""
    _, manifest = make_file(tmp_path / "seed", 1 * MiB)
    monkeypatch.setattr(limits, "PIECE_DEADLINE_MIN", 0.5)  # late sooner
    length = manifest.piece_size
    owed = asyncio.Event()

    async def late_then_wrong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                              ) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"P2P-SWARM/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % length)
            writer.write(bytes(length // 2))  # quick enough to be kept, but late
            await owed.wait()
            writer.write(bytes(length - length // 2))
            await reader.read()  # until the downloader closes
        finally:
            writer.close()

    server = await asyncio.start_server(late_then_wrong, HOST, 0)
    address = (HOST, server.sockets[0].getsockname()[1])
    async with tracker_server() as port, peer(port) as me:
        tracker = await TrackerClient.connect(HOST, port)
        await tracker.announce(manifest, *address)
        await tracker.have(manifest.id, full(manifest.count))
        job = Fetch(me, tmp_path / "out")
        download = job.prepare(await job.resolve(manifest.id))
        running = asyncio.ensure_future(job.run(download))
        try:
            await async_wait_for(lambda: (link := download.links.get(address)) is not None
                                 and link.snubbed, what="the peer found late")
            owed.set()
            await async_wait_for(lambda: download.strikes[address] == 1,
                                 what="the wrong piece received")
            await async_wait_for(lambda: download.roster.slow_drops(address) == 1,
                                 what="the peer dropped as slow once it owes nothing")
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await tracker.aclose()
            server.close()
