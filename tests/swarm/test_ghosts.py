"""Peers that are listed but give nothing: a listed downloader that cannot be reached
(behind NAT, gone, or a Sybil that only announces) and claims most pieces, or one that
holds a stripe and never fetches it, must not keep a seed that holds every piece from
sending them (the download would starve for RESERVE_PATIENCE between bursts). Real
tracker, seed and downloader on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import Any

import pytest

from p2pshare import limits
from p2pshare.swarm.client import TrackerClient
from p2pshare.swarm.manifest import Manifest
from p2pshare.swarm.picker import Picker
from p2pshare.swarm.pieces import full
from p2pshare.swarm.session import Fetch, SwarmPeer

from ..aio import HOST, arun
from .test_faults import MiB, make_file, tracker_server


def count_starved_picks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pieces picked with the restraints lifted (the download was starved)."""
    unrestrained: list[int] = []
    original = Picker.pick

    def pick(self: Picker, peer: Any, *, restrain: bool = True) -> int | None:
        index = original(self, peer, restrain=restrain)
        if index is not None and not restrain:
            unrestrained.append(index)
        return index

    monkeypatch.setattr(Picker, "pick", pick)
    return unrestrained


async def fetch_beside(port: int, manifest: Manifest, folder: Path, other: int,
                       pieces: int) -> Path:
    """Download ``manifest`` while the tracker lists a peer at ``other`` (nothing listens
    there) holding ``pieces``."""
    listed = await TrackerClient.connect(HOST, port)
    try:
        await listed.announce(manifest, HOST, other)
        if pieces:
            await listed.have(manifest.id, pieces)
        async with SwarmPeer.open(HOST, port, listen=HOST) as me:
            job = Fetch(me, folder / "out")
            return await job.run(job.prepare(manifest))
    finally:
        await listed.aclose()


@arun
async def test_an_unreachable_claimant_does_not_starve_a_download_from_the_seed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, manifest = make_file(tmp_path / "seed", 2 * MiB)  # 32 pieces of 64 KiB
    unrestrained = count_starved_picks(monkeypatch)
    with socket.create_server((HOST, 0)) as closed:
        ghost_port = closed.getsockname()[1]  # closed below: connections are refused
    async with tracker_server() as port, SwarmPeer.open(HOST, port, listen=HOST) as seed:
        await seed.share(path, manifest)
        # all but piece 0
        out = await fetch_beside(port, manifest, tmp_path, ghost_port,
                                 full(manifest.count) & ~1)
    assert out.read_bytes() == path.read_bytes()
    assert not unrestrained, f"{len(unrestrained)} pieces came only once starved"


@arun
async def test_uplink_full_from_one_peer_and_a_listed_sybil_starve_a_download(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any peer may say ``Uplink: full`` (here the seed's record says it, as a hostile
    peer's answers would make a downloader's); a Sybil that only announces (holding
    nothing, listed after us so that we would lead) then owns a stripe nobody asks for."""
    path, manifest = make_file(tmp_path / "seed", 2 * MiB)
    unrestrained = count_starved_picks(monkeypatch)
    async with tracker_server() as port, SwarmPeer.open(HOST, port, listen=HOST) as seed:
        await seed.share(path, manifest)
        record = seed.library.get(manifest.id)
        assert record is not None
        record.uplink_full = True  # what one hostile peer's header sets, and is relayed
        out = await fetch_beside(port, manifest, tmp_path, 65535, 0)  # sorts after us
    assert out.read_bytes() == path.read_bytes()
    assert not unrestrained, f"{len(unrestrained)} pieces came only once starved"


@pytest.mark.parametrize("answer", [
    b"P2P-SWARM/1.0 404 Not Found\r\nUplink: full\r\nContent-Length: 0\r\n\r\n",
    b"P2P-SWARM/1.0 200 OK\r\nUplink: full\r\nContent-Length: %d\r\n\r\n",  # wrong bytes
])
@arun
async def test_uplink_full_is_believed_only_with_a_good_piece(
        tmp_path: Path, answer: bytes) -> None:
    """A peer that says ``Uplink: full`` on a 404, or on a piece that fails its check,
    does not make a downloader drop the leader (nor repeat the header)."""
    path, manifest = make_file(tmp_path / "seed", 2 * MiB)
    told = 0

    async def hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal told
        with contextlib.suppress(ConnectionError):
            while await reader.readuntil(b"\r\n\r\n"):
                size = manifest.piece_size
                writer.write(answer % size + b"\0" * size if b"%d" in answer else answer)
                told += 1
                await writer.drain()

    liar = await asyncio.start_server(hostile, HOST, 0)
    async with liar, tracker_server() as port, \
            SwarmPeer.open(HOST, port, listen=HOST) as seed:
        await seed.share(path, manifest)
        listed = await TrackerClient.connect(HOST, port)
        try:
            await listed.announce(manifest, HOST, liar.sockets[0].getsockname()[1])
            await listed.have(manifest.id, full(manifest.count))
            async with SwarmPeer.open(HOST, port, listen=HOST) as me:
                job = Fetch(me, tmp_path / "out")
                download = job.prepare(manifest)
                out = await job.run(download)
        finally:
            await listed.aclose()
    assert out.read_bytes() == path.read_bytes()
    assert told, "the hostile peer was never asked"
    assert not download.file.uplink_full


@arun
async def test_a_peer_that_only_claims_more_and_more_reserves_no_stripe(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A listed peer nobody can reach tells the tracker of one more piece every 0.1 s, so
    that it looks busy with its stripe: with no link to it, its stripe is shared, and the
    download never starves (it did, 2 s on and 2 s off, when growth alone counted)."""
    path, manifest = make_file(tmp_path / "seed", 2 * MiB)
    unrestrained = count_starved_picks(monkeypatch)
    async with tracker_server() as port, \
            SwarmPeer.open(HOST, port, listen=HOST, rate_limit=MiB) as seed:
        await seed.share(path, manifest)
        record = seed.library.get(manifest.id)
        assert record is not None
        record.uplink_full = True  # stripes, no leader
        listed = await TrackerClient.connect(HOST, port)

        async def grow() -> None:
            for index in range(manifest.count):
                await listed.have(manifest.id, 1 << index)
                await asyncio.sleep(0.1)  # the attacker's pace, not a wait for us

        try:
            await listed.announce(manifest, HOST, 65535)  # nothing listens there
            growing = asyncio.create_task(grow())
            async with SwarmPeer.open(HOST, port, listen=HOST) as me:
                job = Fetch(me, tmp_path / "out")
                out = await job.run(job.prepare(manifest))
            growing.cancel()
        finally:
            await listed.aclose()
    assert out.read_bytes() == path.read_bytes()
    assert not unrestrained, f"{len(unrestrained)} pieces came only once starved"


@arun
async def test_a_peer_that_answers_404_for_what_it_claims_is_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer listed with every piece but one answers each request with a 404, just before
    it could be judged slow: after ``MAX_BAD_PIECES`` of them it is dropped for the
    download (each 404 used to free one piece, and the download crawled at its pace)."""
    path, manifest = make_file(tmp_path / "seed", 2 * MiB)
    unrestrained = count_starved_picks(monkeypatch)
    told = 0

    async def hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal told
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while await reader.readuntil(b"\r\n\r\n"):
                await asyncio.sleep(0.4)  # the attacker's pace: under LINK_JUDGE_AFTER
                writer.write(b"P2P-SWARM/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                told += 1
                await writer.drain()

    liar = await asyncio.start_server(hostile, HOST, 0)
    async with liar, tracker_server() as port, \
            SwarmPeer.open(HOST, port, listen=HOST, rate_limit=MiB) as seed:
        await seed.share(path, manifest)
        listed = await TrackerClient.connect(HOST, port)
        try:
            await listed.announce(manifest, HOST, liar.sockets[0].getsockname()[1])
            await listed.have(manifest.id, full(manifest.count) & ~1)
            async with SwarmPeer.open(HOST, port, listen=HOST) as me:
                job = Fetch(me, tmp_path / "out")
                out = await job.run(job.prepare(manifest))
        finally:
            await listed.aclose()
    assert out.read_bytes() == path.read_bytes()
    assert 0 < told <= limits.MAX_BAD_PIECES
    assert not unrestrained, f"{len(unrestrained)} pieces came only once starved"
