"""A downloader that finished (seen holding some pieces, then all) is asked for any piece
(picker, rule 1), but it must not keep the seed from sending first copies: where the seed's
uplink is full there is no leader, and a seed asked only for what no one else holds would
sit idle while the download crawls at the finished peer's upload. Real tracker and piece
servers on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

from p2pshare.swarm.pieces import full
from p2pshare.swarm.session import Fetch, SwarmPeer
from p2pshare.swarm.storage import PieceFile

from ..aio import HOST, arun_steady
from ..helpers import async_wait_for
from .test_faults import MiB, make_file, tracker_server

KiB = 1024


@arun_steady
async def test_a_downloader_that_finished_leaves_the_seed_its_first_copies(
        tmp_path: Path) -> None:
    """The seed at 2 MiB/s with ``Uplink: full``; a peer uploading at 512 KiB/s, seen with
    one piece and then with all: most of what we lack still comes from the seed (all of
    it came from the finished peer, 8 s instead of 2 for 4 MiB)."""
    path, manifest = make_file(tmp_path / "seed", 4 * MiB)  # 64 pieces of 64 KiB
    async with tracker_server() as port, \
            SwarmPeer.open(HOST, port, listen=HOST, rate_limit=2 * MiB) as seed, \
            SwarmPeer.open(HOST, port, listen=HOST, rate_limit=512 * KiB) as done:
        await seed.share(path, manifest)
        record = seed.library.get(manifest.id)
        assert record is not None
        record.uplink_full = True  # no leader: each downloader asks for its stripe
        done.library.add(PieceFile.open_complete(path, manifest, None))
        await done.tracker.announce(manifest, *done.served_at)
        await done.tracker.have(manifest.id, 1)  # downloading: piece 0 so far
        async with SwarmPeer.open(HOST, port, listen=HOST) as me:
            job = Fetch(me, tmp_path / "out")
            download = job.prepare(manifest)
            task = asyncio.create_task(job.run(download))
            # seen first in the tracker's list, with one piece (its answers then say all)
            await async_wait_for(lambda: done.served_at in download.picker.peers
                                 and download.file.uplink_full, what="seen downloading")
            delivered = download.roster.records
            before = {a: delivered[a].delivered if a in delivered else 0
                      for a in (seed.served_at, done.served_at)}
            await done.tracker.have(manifest.id, full(manifest.count))  # it finished
            out = await task
    assert out.read_bytes() == path.read_bytes()
    after = {a: delivered[a].delivered - before[a] if a in delivered else 0 for a in before}
    assert after[seed.served_at] > after[done.served_at], after
