"""Fair finishing (picker rule 4): where the downloaders' uploads are the bottleneck, the
leader finishes while the others still lack most of the file, instead of every
downloader finishing together at the end. Real piece servers and a real tracker on
loopback, in one event loop, so that what each downloader holds when the first one
completes is read exactly, with nothing timed."""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from p2pshare import limits
from p2pshare.host import join_hostport
from p2pshare.protocol import get_header
from p2pshare.protocol.swarm import decode_ranges
from p2pshare.swarm.fetch import leader
from p2pshare.swarm.link import PeerLink
from p2pshare.swarm.session import Fetch, SwarmPeer

from ..aio import HOST, arun_steady
from ..helpers import async_wait_for
from .test_faults import MiB, make_file, tracker_server
from .test_serving import ask_at_once, pace_uploads, read_answers

KiB = 1024


@arun_steady
async def test_the_leader_finishes_before_the_others_hold_half(tmp_path: Path) -> None:
    """A seed at 2 MiB/s and three downloaders uploading at 128 KiB/s each: with every
    downloader asking the seed for its stripe, all three would finish together (each
    waits on the others' slow uploads for two thirds of the file); with the leader
    taking the seed's upload, it finishes first, while the others hold under half."""
    path, manifest = make_file(tmp_path / "seed", 1 * MiB)  # 16 pieces of 64 KiB
    async with tracker_server() as port, \
            SwarmPeer.open(HOST, port, listen=HOST, rate_limit=2 * MiB) as seed, \
            AsyncExitStack() as stack:
        await seed.share(path, manifest)
        peers = [await stack.enter_async_context(
            SwarmPeer.open(HOST, port, listen=HOST, rate_limit=128 * KiB)) for _ in range(3)]
        jobs = [Fetch(peer, tmp_path / f"l{i}") for i, peer in enumerate(peers)]
        downloads = [job.prepare(manifest) for job in jobs]
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(job.run(d)) for job, d in zip(jobs, downloads, strict=True)]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            others = [d.file.have.bit_count()
                      for d, task in zip(downloads, tasks, strict=True) if task not in done]
    assert others, "all finished at once"
    assert min(others) < manifest.count / 2, others
    for task in tasks:
        assert task.result().read_bytes() == path.read_bytes()
    # the seed's upload is its own limit (paced by p2pshare), not the network's: no one
    # heard "Uplink: full", so the leader led throughout
    assert not any(d.file.uplink_full for d in downloads)


@pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO is Linux's")
@arun_steady
async def test_a_seed_held_back_by_the_network_ends_the_leader(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
        ) -> None:
    """The seed's connections paced by the kernel (the network holds its upload back):
    the seed says ``Uplink: full``, the leader hears it and repeats it on its own
    answers, and every downloader drops the leader (each asks the seed for its stripe)."""
    path, manifest = make_file(tmp_path / "seed", 2 * MiB)  # 32 pieces of 64 KiB
    seed_ports: set[int] = set()
    pace_uploads(monkeypatch, MiB, seed_ports)  # the seed's: filled in once it listens
    caplog.set_level(logging.INFO, logger="p2pshare.swarm.fetch")
    async with tracker_server() as port, \
            SwarmPeer.open(HOST, port, listen=HOST) as seed, AsyncExitStack() as stack:
        assert seed.address is not None
        seed_ports.add(seed.address[1])
        await seed.share(path, manifest)
        peers = [await stack.enter_async_context(SwarmPeer.open(HOST, port, listen=HOST))
                 for _ in range(3)]
        jobs = [Fetch(peer, tmp_path / f"l{i}") for i, peer in enumerate(peers)]
        downloads = [job.prepare(manifest) for job in jobs]
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(job.run(d)) for job, d in zip(jobs, downloads, strict=True)]
    for task in tasks:
        assert task.result().read_bytes() == path.read_bytes()
    heard = [record.getMessage().split(" ")[1][:-1] for record in caplog.records
             if "Uplink: full;" in record.getMessage()]
    told = sum(d.file.uplink_full for d in downloads)
    assert told == len(heard) == 3, heard  # each heard it once
    seed_at = join_hostport(*seed.address)
    assert seed_at in heard, heard  # from the seed (the leader asks it)
    assert any(h != seed_at for h in heard), heard  # and repeated by a downloader


@arun_steady
async def test_what_a_seeder_said_it_sends_to_others_is_asked_of_it_last(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A seeder whose uplink is full names, on its answers, the pieces it began sending to
    other downloaders (Sent): a downloader asks it for those only once it has asked for
    every other piece and the news is stale (``SENT_SECONDS``; here nobody else relays
    them, so they come from the seeder in the end)."""
    monkeypatch.setattr(limits, "SENT_SECONDS", 0.5)
    path, manifest = make_file(tmp_path / "seed", 2 * MiB)  # 32 pieces of 64 KiB
    others = [3, 9, 10, 11, 30]
    asked: list[int] = []
    original = PeerLink.request

    def request(self: PeerLink, swarm: str, index: int,
                length: int = limits.MAX_PIECE_SIZE) -> None:
        asked.append(index)
        original(self, swarm, index, length)

    async with tracker_server() as port, \
            SwarmPeer.open(HOST, port, listen=HOST) as seed:
        await seed.share(path, manifest)
        [pf] = seed.library.files.values()
        pf.uplink_full = True  # as a seeder judges its connections (test_serving)
        reader, writer = await ask_at_once(seed.served_at[1], manifest, others)
        await read_answers(reader, manifest, others)  # another downloader's, begun
        monkeypatch.setattr(PeerLink, "request", request)
        async with SwarmPeer.open(HOST, port, listen=HOST) as peer:
            job = Fetch(peer, tmp_path / "out")
            got = await job.run(job.prepare(manifest))
        writer.close()
    assert got.read_bytes() == path.read_bytes()
    later = asked[1:]  # the first request went out before any news
    rest = [i for i in range(manifest.count) if i not in others and i != asked[0]]
    first_of_theirs = min(later.index(i) for i in others if i in later)
    assert set(rest) <= set(later[:first_of_theirs]), asked


@arun_steady
async def test_a_downloader_that_asks_and_never_reads_keeps_no_one_from_the_seeder(
        tmp_path: Path) -> None:
    """A hostile downloader asks the seeder for every piece and reads none: the seeder
    names ``MAX_SENT_PER_CONNECTION`` of them as sent, none once it is gone, and an
    honest downloader beside it gets the whole file."""
    path, manifest = make_file(tmp_path / "seed", 8 * MiB)  # 128 pieces of 64 KiB
    every = list(range(manifest.count))
    assert manifest.count > 4 * limits.MAX_SENT_PER_CONNECTION

    async def named(link: PeerLink, index: int) -> int:
        link.request(manifest.id, index)
        _, head, _ = await link.read_piece()
        return decode_ranges(get_header(head.headers, "Sent") or "", manifest.count)

    async with tracker_server() as port, \
            SwarmPeer.open(HOST, port, listen=HOST) as seed:
        await seed.share(path, manifest)
        [pf] = seed.library.files.values()
        pf.uplink_full = True
        assert seed.server is not None
        _, hostile = await ask_at_once(seed.served_at[1], manifest, every)
        probe = await PeerLink.connect(seed.served_at)
        try:
            assert (await named(probe, 0)).bit_count() == limits.MAX_SENT_PER_CONNECTION
            async with SwarmPeer.open(HOST, port, listen=HOST) as peer:
                job = Fetch(peer, tmp_path / "out")
                got = await job.run(job.prepare(manifest))
            hostile.close()
            server = seed.server
            await async_wait_for(lambda: server.uploads == 1)  # the probe's alone
            assert await named(probe, 1) == 0
        finally:
            probe.close()
    assert got.read_bytes() == path.read_bytes()


def test_the_leader_is_the_first_in_address_order_within_the_margin() -> None:
    """Every downloader names the same leader from the same list; a newcomer holding
    little does not take the lead from one that holds much."""
    a, b, c = ("10.0.0.1", 1), ("10.0.0.2", 1), ("10.0.0.3", 1)
    assert leader([a, b, c], {a: 0, b: 0, c: 0}, 16) == a
    assert leader([a, b, c], {a: 0, b: 0b111, c: 0b1111}, 16) == b  # within 2 of 4
    assert leader([a, b, c], {a: 0, b: 0b1, c: 0b1111}, 16) == c
