"""Announcing to a torrent's trackers for as long as we seed or download.

Strategy: BEP 12's tiers, simply: each tier is tried in order, the first URL of a tier that
answers is kept first for the next announce, and every tier is announced to (so peers on
each tracker find us). The client of ``bt.announce`` does the wire work; this module only
chooses when and where: ``started`` first, then again after the interval the tracker
asked for (at least ``limits.BT_MIN_ANNOUNCE_INTERVAL``, and only that while a download
has no peer), ``completed`` once, ``stopped``
on the way out (best effort, short deadline). A hybrid torrent is announced under both of
its info-hashes (the v2 one cut to 20 bytes), as libtorrent does, so peers of either kind
meet. Announces leave from the address we listen on when that is one (``origin``): the
tracker lists the address an announce comes from. Peers the trackers list go to
``on_peers``. A tracker that fails is logged and tried again at the next round; no
tracker failure ends a seed or a download.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import limits
from ..errors import P2PError
from ..net.origin import ANYWHERE, Origin
from ..protocol.metainfo import Torrent
from ..swarm.link import Address
from .announce import announce

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Announcer:
    """Announces ``torrent`` with ``peer_id`` on ``port`` (0: we do not accept peers)."""

    torrent: Torrent
    peer_id: bytes
    port: int
    left: Callable[[], int]  # bytes we still lack
    on_peers: Callable[[list[Address]], None] = lambda peers: None
    uploaded: Callable[[], int] = lambda: 0
    downloaded: Callable[[], int] = lambda: 0
    hungry: Callable[[], bool] = lambda: False  # no peer yet: ask again soon
    tiers: list[list[str]] = field(default_factory=list)
    origin: Origin = ANYWHERE  # announces leave from the address we listen on, if one

    def __post_init__(self) -> None:
        self.tiers = [list(tier) for tier in self.torrent.trackers]

    @property
    def hashes(self) -> list[bytes]:
        return [h for h in (self.torrent.v1_hash, self.torrent.v2_hash) if h is not None]

    async def run(self) -> None:
        """Announce until cancelled (then ``stopped``, best effort)."""
        if not self.tiers:
            await asyncio.Future()  # nothing to announce to: wait to be cancelled
        event = "started"
        completed = self.left() == 0
        try:
            while True:
                interval = await self.round(event)
                if self.hungry():
                    interval = min(interval, limits.BT_MIN_ANNOUNCE_INTERVAL)
                event = ""
                if not completed and self.left() == 0:
                    completed, event = True, "completed"
                    interval = 0
                await asyncio.sleep(interval)  # the tracker's announce interval
        finally:
            try:
                await asyncio.shield(self.round("stopped", timeout=limits.BT_STOP_TIMEOUT))
            except (asyncio.CancelledError, P2PError, OSError, TimeoutError):
                pass

    async def round(self, event: str, timeout: float = limits.BT_ANNOUNCE_TIMEOUT) -> float:
        """Announce to every tier; returns the seconds until the next round."""
        interval = float(limits.BT_DEFAULT_ANNOUNCE_INTERVAL)
        for tier in self.tiers:
            for url in list(tier):
                got = await self._one(url, event, timeout)
                if got is not None:
                    interval = min(interval, max(got, limits.BT_MIN_ANNOUNCE_INTERVAL))
                    tier.remove(url)
                    tier.insert(0, url)
                    break
        return interval

    async def _one(self, url: str, event: str, timeout: float) -> float | None:
        interval: float | None = None
        for digest in self.hashes:
            try:
                result = await announce(url, digest, self.peer_id, self.port, event,
                                        self.uploaded(), self.downloaded(), self.left(),
                                        limits.BT_NUMWANT, timeout=timeout,
                                        origin=self.origin)
            except (P2PError, OSError, TimeoutError) as exc:
                log.info("[BT] tracker %s: %s", url, exc or type(exc).__name__)
                continue
            interval = float(result.interval)
            log.info("[BT] announced to %s: %d peers", url, len(result.peers))
            self.on_peers(list(result.peers))
        return interval
