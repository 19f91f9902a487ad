"""``fetch.until_complete``: a download's task group, ended by a child's ``_Complete``,
keeps a cancel that lands while the group winds down (SIGINT, SIGTERM, a caller giving up
as the last piece arrives). The swarm's and BitTorrent's downloads both run their groups
through it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from p2pshare.swarm.fetch import _Complete, until_complete

from ..aio import arun


async def _last_piece() -> None:
    for _ in range(3):
        await asyncio.sleep(0)  # one turn of the loop: the steps a cancel may land at
    raise _Complete


def _start(tg: asyncio.TaskGroup) -> None:
    """A download's tasks: one ends the group with ``_Complete`` after a few turns of the
    loop, another waits for ever."""
    tg.create_task(_last_piece())
    tg.create_task(asyncio.Event().wait())


async def _download() -> None:
    """The same group awaited in the download's own task, as downloads did before."""
    try:
        async with asyncio.TaskGroup() as tg:
            _start(tg)
    except* _Complete:
        pass


async def _lost_at(run: Callable[[], Coroutine[Any, Any, None]]) -> list[int]:
    """The steps at which a cancel of ``run()`` was lost (the task ended normally)."""
    lost: list[int] = []
    for steps in range(50):
        task = asyncio.create_task(run())
        for _ in range(steps):
            await asyncio.sleep(0)
        if task.done():
            await task
            return lost
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            continue
        lost.append(steps)
    raise AssertionError("the group took over 50 turns of the loop")


@arun
async def test_a_cancel_as_the_group_ends_is_kept() -> None:
    # The hazard itself: awaited directly, the group drops the cancel at some steps...
    assert await _lost_at(_download)
    # ... and through until_complete at none.
    async def through() -> None:
        await until_complete(_start)

    assert await _lost_at(through) == []


@arun
async def test_an_uncancelled_group_ends_normally_and_its_errors_pass() -> None:
    await until_complete(_start)

    async def disk_full() -> None:
        raise OSError("disk full")

    def failing(tg: asyncio.TaskGroup) -> None:
        tg.create_task(disk_full())

    with pytest.raises(ExceptionGroup) as caught:
        await until_complete(failing)
    assert caught.group_contains(OSError, match="disk full")
