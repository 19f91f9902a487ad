"""Fetching one file from whichever of its holders answers first.

Strategy: Happy Eyeballs (RFC 8305) over holders instead of addresses. ``first_offer``
starts the first holder's attempt at once and each next one ``stagger`` seconds later, or
as soon as a running attempt fails; an attempt is the cheap part of a transfer (connect,
request, a valid reply head), each step under a short deadline (``Patience``). The first
attempt to succeed wins and every other one is cancelled; all run in one TaskGroup, so
none outlives the call. ``fetch_first`` then lets only the winner write the file; if its
body fails, the holders not yet heard from race again. A record pointing at a black hole
thus costs a stagger, not a timeout, and a local error (our disk: ``LocalIOError``) ends
the whole fetch without blaming anyone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .. import limits
from ..errors import LocalIOError, P2PError

H = TypeVar("H")  # a holder
OfferT = TypeVar("OfferT")  # what a successful attempt gives: an open reply
R = TypeVar("R")  # what saving the winner's reply gives

# What one holder's attempt may fail with; the others go on. UnicodeError: the resolver's
# IDNA codec refusing a name that slipped past ``host.valid_host``.
HOLDER_FAILURES = (P2PError, OSError, TimeoutError, UnicodeError)


@dataclass(frozen=True, slots=True)
class Patience:
    """How long holders get: between starts, to accept, to start their reply."""

    stagger: float = limits.HOLDER_STAGGER
    connect: float = limits.HOLDER_CONNECT_TIMEOUT
    first_byte: float = limits.HOLDER_FIRST_BYTE_TIMEOUT


DEFAULT_PATIENCE = Patience()


@dataclass
class _Race(Generic[OfferT]):
    release: Callable[[OfferT], Awaitable[None]]
    failed: Callable[[int, BaseException], None]
    winner: tuple[int, OfferT] | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    failures: int = 0  # failures not yet answered by an early start
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, index: int, attempt: Callable[[], Awaitable[OfferT]]) -> None:
        try:
            offer = await attempt()
        except HOLDER_FAILURES as exc:
            self.failed(index, exc)
            self.failures += 1
            self.wake.set()
            return
        if self.winner is not None:  # finished in the same turn as the winner
            await self.release(offer)
            return
        self.winner = (index, offer)
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self.wake.set()

    async def wait_turn(self, stagger: float) -> None:
        """Until ``stagger`` seconds pass, an attempt fails, or one wins."""
        if not self.failures and self.winner is None:
            try:
                async with asyncio.timeout(stagger):
                    await self.wake.wait()
            except TimeoutError:
                pass
        self.wake.clear()
        self.failures = max(self.failures - 1, 0)


async def first_offer(attempts: Sequence[Callable[[], Awaitable[OfferT]]], stagger: float, *,
                      failed: Callable[[int, BaseException], None],
                      release: Callable[[OfferT], Awaitable[None]]) -> tuple[int, OfferT] | None:
    """The index and result of the first attempt to succeed, or None if all failed.

    ``failed(index, exc)`` hears of every failure (an exception in ``HOLDER_FAILURES``);
    ``release`` frees a result that came second. Any other exception propagates.
    """
    race: _Race[OfferT] = _Race(release, failed)
    async with asyncio.TaskGroup() as tg:
        for index, attempt in enumerate(attempts):
            if race.winner is not None:
                break
            race.tasks.append(tg.create_task(race.run(index, attempt)))
            await race.wait_turn(stagger)
    return race.winner


async def fetch_first(holders: Sequence[H], attempt: Callable[[H], Awaitable[OfferT]],
                      save: Callable[[H, OfferT], Awaitable[R]],
                      release: Callable[[OfferT], Awaitable[None]],
                      failed: Callable[[H, BaseException], None], stagger: float
                      ) -> tuple[H, R] | None:
    """Race ``attempt`` over ``holders``; ``save`` the winner's offer (``save`` must release
    it); race the rest again if that fails. None when every holder failed.

    Raises:
        LocalIOError: ``save`` could not write the file (``failed`` heard of it too): no
            other holder is tried.
    """
    left = list(holders)
    while left:
        lost: set[int] = set()
        won = await first_offer([_bind(attempt, h) for h in left], stagger,
                                failed=_noting(left, lost, failed), release=release)
        if won is None:
            return None
        index, offer = won
        holder = left[index]
        left = [h for i, h in enumerate(left) if i != index and i not in lost]
        try:
            return holder, await save(holder, offer)
        except HOLDER_FAILURES as exc:
            failed(holder, exc)
            if isinstance(exc, LocalIOError):
                raise
    return None


def _noting(pool: list[H], lost: set[int], failed: Callable[[H, BaseException], None]
            ) -> Callable[[int, BaseException], None]:
    """A ``first_offer`` failure callback that notes the index lost and tells ``failed``."""
    def note(index: int, exc: BaseException) -> None:
        lost.add(index)
        failed(pool[index], exc)
    return note


def _bind(attempt: Callable[[H], Awaitable[OfferT]], holder: H) -> Callable[[], Awaitable[OfferT]]:
    return lambda: attempt(holder)
