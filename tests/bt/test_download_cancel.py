"""A download cancelled as its last piece arrives ends cancelled (the cancel is not taken
for the download's own end)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from p2pshare.bt.download import TorrentDownload
from p2pshare.bt.session import TorrentFetch, read_torrent
from p2pshare.bt.store import TorrentStore

from ..aio import arun
from .torrents import made_by_p2pshare, make_content


def test_a_download_cancelled_as_it_completes_ends_cancelled(tmp_path: Path) -> None:
    """The last piece ends the download's task group; a cancel (SIGINT, SIGTERM, a parent
    giving up) that lands while the group winds down must still end it cancelled, else
    ``fetch --seed`` goes on to seed after the signal that should have ended it."""
    content = make_content(tmp_path / "seed", size=3 * 16384 + 100)
    made = made_by_p2pshare(content, "v1", [], tmp_path / "t.torrent", piece=16384)
    torrent = read_torrent(made.path)
    seed = TorrentStore.open_seed(torrent, made.data_dir)

    def fresh(run: int) -> TorrentDownload:
        download = TorrentFetch(tmp_path / f"out{run}", []).prepare(torrent)

        async def deliver(tg: asyncio.TaskGroup) -> None:
            for index in range(download.layout.count):
                await asyncio.sleep(0)
                download.finished(("127.0.0.1", 1), index, seed.read_piece(index))
            await asyncio.Future()

        download.sources.append(deliver)
        return download

    async def scenario() -> None:
        for steps in range(200):  # until the download ends before the cancel: all tried
            download = fresh(steps)
            try:
                task = asyncio.create_task(download.run())
                for _ in range(steps):
                    await asyncio.sleep(0)
                if task.done():
                    await task
                    return
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            finally:
                download.store.close()
        raise AssertionError("the download took over 200 turns of the loop")

    try:
        arun(scenario)()
    finally:
        seed.close()
