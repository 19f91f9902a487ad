"""Rate limits in the path of real transfers, and a seeder whose file changes under it:
real piece servers and a real tracker on loopback, in one event loop."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest

from p2pshare import limits
from p2pshare.errors import PeerGone
from p2pshare.protocol.swarm import GetPiece, PeerEntry, PipelinedClient, to_request
from p2pshare.swarm import fetch as fetch_module
from p2pshare.swarm import roster
from p2pshare.swarm.client import TrackerClient
from p2pshare.swarm.link import PeerLink
from p2pshare.swarm.manifest import Manifest
from p2pshare.swarm.roster import Judgement, LinkState
from p2pshare.swarm.session import Fetch, SwarmPeer
from p2pshare.swarm.storage import FileWatch, hash_file

from ..aio import HOST, arun, arun_steady, free_port
from ..helpers import async_retry, async_wait_for
from .test_faults import MiB, make_file, tracker_server


@arun
async def test_every_byte_goes_through_both_rate_limiters(tmp_path: Path) -> None:
    """The seed's upload limiter grants every byte it sends, the leech's download limiter
    every byte it receives from peers, and neither ever runs more than one run ahead of
    its rate (counted by the limiters themselves; no timing is asserted)."""
    path, manifest = make_file(tmp_path / "seed", 2 * MiB)
    async with tracker_server() as port, \
            SwarmPeer.open(HOST, port, listen=HOST, rate_limit=16 * MiB) as seed:
        await seed.share(path, manifest)
        async with SwarmPeer.open(HOST, port, listen=HOST, download_rate=8 * MiB) as me:
            job = Fetch(me, tmp_path / "out")
            result = await job.run(job.prepare(await job.resolve(manifest.id)))
            down = me.download_limit
    assert result.read_bytes() == path.read_bytes()
    assert down is not None and down.granted >= manifest.size
    assert 0 < down.ahead <= down.run
    assert seed.server is not None and seed.server.throttle is not None
    up = seed.server.throttle
    assert up.granted == seed.server.bytes_sent >= manifest.size
    assert 0 < up.ahead <= up.run


@arun
async def test_a_paced_answer_leaves_run_by_run(tmp_path: Path) -> None:
    """Under an upload limit a piece leaves in runs as the limit allows them, each sent
    when granted: the downloader's first read brings the head and the first run, not
    the whole piece (a run fits in the link's cork, which held them all to the piece's
    end, so a slow honest seeder seemed to send nothing and was dropped under the
    floor). Counted in bytes, not timed."""
    path, manifest = make_file(tmp_path / "seed", 1 * MiB)
    async with tracker_server() as port, \
            SwarmPeer.open(HOST, port, listen=HOST, rate_limit=64 * 1024) as seed:
        await seed.share(path, manifest)
        assert seed.address is not None and seed.server is not None
        assert seed.server.throttle is not None
        run = seed.server.throttle.run
        assert run < manifest.piece_size
        reader, writer = await asyncio.open_connection(*seed.address)
        try:
            writer.write(PipelinedClient().send(*to_request(GetPiece(manifest.id, 1))))
            first = await reader.read(manifest.piece_size + 1024)
            head, _, body = first.partition(b"\r\n\r\n")
            assert head.startswith(b"P2P-SWARM/1.0 200")
            assert 0 < len(body) <= run < manifest.piece_size
            rest = await reader.readexactly(manifest.piece_size - len(body))
        finally:
            writer.close()
    assert body + rest == path.read_bytes()[manifest.piece_size:2 * manifest.piece_size]


@arun_steady
async def test_a_paced_answer_to_a_client_that_does_not_read_stops(tmp_path: Path) -> None:
    """A client that asks for a 16 MiB piece of a seeder paced at 1 MiB/s and reads
    nothing (its receive buffer 64 KiB). Runs of that rate fit in the link's cork, so they
    go through the transport's buffer: once the kernel's buffers and it are full, the
    seeder asks its limiter for no further run, and the limiter falls idle with a part of
    the piece granted (4.1 MiB here: the kernel's 4 MiB send buffer, `tcp_wmem`, and one
    run more). Before, every run was granted and held in the seeder's memory until the
    write-stall timeout: the limiter would be busy for 16 s and the wait below would fail.
    Waits for the limiter to be idle, not for a time."""
    path = tmp_path / "seed" / "data.bin"
    path.parent.mkdir()
    path.write_bytes(os.urandom(limits.MAX_PIECE_SIZE))
    manifest = hash_file(path, limits.MAX_PIECE_SIZE)
    async with tracker_server() as port, \
            SwarmPeer.open(HOST, port, listen=HOST, rate_limit=MiB) as seed:
        await seed.share(path, manifest)
        assert seed.address is not None and seed.server is not None
        throttle = seed.server.throttle
        assert throttle is not None and throttle.run <= limits.COALESCE_BYTES
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, seed.address)
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            writer.write(PipelinedClient().send(*to_request(GetPiece(manifest.id, 0))))
            await async_wait_for(lambda: throttle.granted > 0, what="the first run")
            await async_wait_for(lambda: throttle.idle, timeout=12, what="the limiter idle")
            assert throttle.granted < manifest.piece_size
        finally:
            writer.close()


@arun_steady
async def test_links_are_judged_by_the_share_our_download_limit_leaves_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a download limit the links take turns at it, each held while the limit pays
    for what it read: every judgement of a link is given its share (the limit over it and
    the other links that delivered; what ``roster.judge`` does with it is tested in
    ``test_roster``), and the download completes with no link dropped as slow. Two
    seeders at 8 KiB/s. This checks the wiring: so small a case dropped none before
    either; four seeders at 12 KiB/s for 384 KiB dropped 11 links and took 49 s before."""
    shares: list[float | None] = []

    def judge(state: LinkState, others: Sequence[float], now: float) -> Judgement:
        shares.append(state.share)
        return roster.judge(state, others, now)

    monkeypatch.setattr(fetch_module, "judge", judge)
    path = tmp_path / "seed" / "data.bin"
    path.parent.mkdir()
    path.write_bytes(os.urandom(48 * 1024))
    manifest = hash_file(path, 16 * 1024)
    async with tracker_server() as port, \
            SwarmPeer.open(HOST, port, listen=HOST) as one, \
            SwarmPeer.open(HOST, port, listen=HOST) as other:
        for seeder in (one, other):
            await seeder.share(path, manifest)
        async with SwarmPeer.open(HOST, port, listen=HOST, download_rate=8 * 1024) as me:
            job = Fetch(me, tmp_path / "out")
            download = job.prepare(await job.resolve(manifest.id))
            async with asyncio.timeout(60):  # about 6 s at the limit
                result = await job.run(download)
    assert result.read_bytes() == path.read_bytes()
    assert shares and set(shares) <= {8 * 1024 / 2, 8 * 1024 / 1}
    assert all(download.roster.slow_drops(a) == 0 for a in download.roster.records)


async def _peers(port: int, manifest: Manifest) -> list[PeerEntry] | None:
    tracker = await TrackerClient.connect(HOST, port)
    try:
        return await tracker.peers(manifest)
    except Exception:  # noqa: BLE001 (the swarm may be gone: that is an answer too)
        return None
    finally:
        await tracker.aclose()


@arun
async def test_a_seeder_withdraws_a_file_that_changed(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """A shared file rewritten in place (same size, other bytes) is no longer served (404,
    never pieces that fail their check), the tracker stops listing the seeder for it,
    the seeder logs why, and its other file is still served and listed."""
    caplog.set_level(logging.INFO)
    path, manifest = make_file(tmp_path / "a", 1 * MiB)
    other, other_manifest = make_file(tmp_path / "b", 1 * MiB)
    async with tracker_server() as port, SwarmPeer.open(HOST, port, listen=HOST) as seed:
        await seed.share(path, manifest)
        await seed.share(other, other_manifest)
        for piece_file in seed.library.files.values():
            assert piece_file.watch is not None
            piece_file.watch.interval = 0  # look at every request: the test is exact
        stay = asyncio.create_task(seed.stay_connected())
        assert seed.address is not None
        link = await PeerLink.connect(seed.address)
        try:
            link.request(manifest.id, 0)
            assert (await link.read_piece())[1].status == 200
            path.write_bytes(os.urandom(manifest.size))  # same size, other content
            link.request(manifest.id, 0)
            assert (await link.read_piece())[1].status == 404
            link.request(other_manifest.id, 0)
            assert (await link.read_piece())[1].status == 200
        finally:
            link.close()
        await async_retry(lambda: _listed(port, manifest, []), what="the seeder withdrawn")
        await async_retry(lambda: _listed(port, other_manifest, [seed.address]),
                          what="the other file announced again")
        stay.cancel()
    assert f"{path} changed on disk since it was shared" in caplog.text
    assert "no longer serve data.bin" in caplog.text


async def _listed(port: int, manifest: Manifest, expected: list[tuple[str, int] | None]
                  ) -> bool:
    entries = await _peers(port, manifest)
    return [(e.host, e.port) for e in entries or []] == expected


@arun
async def test_reaching_an_absent_server_gives_up_only_when_told(
        caplog: pytest.LogCaptureFixture) -> None:
    """With ``give_up`` (fetch --timeout), the first connection is retried with a log line
    per attempt and the last failure is raised once the next attempt would start too late."""
    caplog.set_level(logging.INFO)
    port = free_port()
    with pytest.raises(PeerGone):
        await TrackerClient.reach(HOST, port, give_up=0.5)
    retries = re.findall(rf"index server at {HOST}:{port} not reachable .*; retry in "
                         r"([\d.]+) s", caplog.text)
    assert retries and float(retries[0]) <= 0.25  # from RECONNECT_FIRST, doubling


def test_file_watch_looks_once_per_interval_and_names_the_change(tmp_path: Path) -> None:
    """On an injected clock: a change is seen only once the interval has passed, and
    stays seen; a new modification time, another size, another inode and no file at all
    each count."""
    now = [0.0]
    path = tmp_path / "f"

    def watch() -> FileWatch:
        path.write_bytes(b"one")
        os.utime(path, ns=(10**18, 10**18))
        return FileWatch(path, 1.0, lambda: now[0])

    w = watch()
    os.utime(path, ns=(10**18, 10**18 + 1))  # touched: same bytes, another mtime
    assert not w.changed()  # not looked at again within the interval
    now[0] += 1.0
    assert w.changed() and w.change == "it was modified"
    os.utime(path, ns=(10**18, 10**18))
    now[0] += 1.0
    assert w.changed()  # once seen, stays seen
    w = watch()
    path.write_bytes(b"longer")
    now[0] += 1.0
    assert w.changed() and w.change == "its size changed"
    w = watch()
    (tmp_path / "g").write_bytes(b"one")  # same size and time, written beside it
    os.utime(tmp_path / "g", ns=(10**18, 10**18))
    (tmp_path / "g").replace(path)  # as editors save: another inode
    now[0] += 1.0
    assert w.changed() and w.change == "it was replaced by another file"
    w = watch()
    path.unlink()
    now[0] += 1.0
    assert w.changed() and w.change == "it is gone"


def test_file_watch_of_a_folder_names_the_file_that_changed(tmp_path: Path) -> None:
    """A folder's swarm is watched file by file: a change to any one of them is seen, and
    the change names that file."""
    now = [0.0]
    paths = [tmp_path / "a.txt", tmp_path / "b.txt"]
    for p in paths:
        p.write_bytes(b"same")
    w = FileWatch(paths, 1.0, lambda: now[0])
    now[0] += 1.0
    assert not w.changed()
    paths[1].write_bytes(b"other bytes")
    now[0] += 1.0
    assert w.changed() and w.change == "b.txt: its size changed"
