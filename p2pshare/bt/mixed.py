"""One download, two protocols: pieces of a torrent from p2pshare swarm peers too.

Strategy: where a swarm (docs/swarm.md) and a torrent hold the same bytes cut the same
way, a piece is a piece whoever sends it. The simplest such mapping is done: a single
file, shared as a swarm with the same piece size as the torrent's piece length (any kind:
a single-file v1, v2 or hybrid torrent starts piece ``i`` at ``i * piece_length`` and ends
it at the file's end, as the swarm does). ``compatible`` checks it; the user names the
swarm (``fetch FILE.torrent --swarm ID --server HOST``), and its manifest comes from the
tracker checked against the id. The swarm's peers then join the torrent download's own
picker (rarest first and endgame across both kinds of peers) and roster, each on a swarm
``PeerLink`` with one request in flight: a piece they send must match the manifest's
SHA-256 and the torrent's hashes both, or counts against them as a bad BitTorrent piece
would. The tracker is asked who holds what every ``limits.PEERS_POLL_INTERVAL``.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .. import limits
from ..errors import P2PError, PeerGone, RemoteProtocolError, Status
from ..host import join_hostport
from ..swarm.client import TrackerClient
from ..swarm.link import Address, PeerLink
from ..swarm.manifest import Manifest
from ..swarm.pieces import sha256_matches
from .download import Banned, TorrentDownload
from .layout import Layout

log = logging.getLogger(__name__)


def compatible(manifest: Manifest, layout: Layout) -> str | None:
    """Why the swarm ``manifest`` cannot feed a download of ``layout`` (None: it can)."""
    stored = layout.stored
    if manifest.files or len(stored) != 1 or stored[0].path:
        return "only a single file can come from a swarm and a torrent at once"
    if manifest.size != stored[0].length:
        return f"the swarm's file has {manifest.size} bytes, the torrent's {stored[0].length}"
    if manifest.piece_size != layout.piece_length:
        return (f"the swarm's pieces are {manifest.piece_size} bytes, the torrent's "
                f"{layout.piece_length}")
    return None


class SwarmSource:
    """The swarm ``manifest``'s peers, as ``tracker`` lists them, for ``download``."""

    def __init__(self, download: TorrentDownload, tracker: TrackerClient,
                 manifest: Manifest) -> None:
        self.download = download
        self.tracker = tracker
        self.manifest = manifest
        self.links: set[Address] = set()
        download.sources.append(self.run)

    async def run(self, tg: asyncio.TaskGroup) -> None:
        """Poll the tracker; link to every holder of pieces we lack (until cancelled)."""
        d = self.download
        while True:
            try:
                entries = await self.tracker.peers(self.manifest)
            except (P2PError, OSError, TimeoutError) as exc:
                log.warning("[BT] the swarm's tracker failed (%s): BitTorrent peers only", exc)
                return
            for e in entries:
                address = (e.host, e.port)
                if address in d.banned or address in d.links:
                    continue
                d.picker.set_peer(address, e.pieces | d.picker.peers.get(address, 0))
                if address not in self.links and e.pieces & d.picker.missing:
                    self.links.add(address)
                    tg.create_task(self._peer(address))
            await asyncio.sleep(limits.PEERS_POLL_INTERVAL)  # polling, as the swarm does

    async def _peer(self, address: Address) -> None:
        d = self.download
        link = None
        try:
            link = await PeerLink.connect(address, d.limiter)
            while True:
                index = d.picker.pick(address, restrain=False)
                if index is None:
                    await d.wait_changed(limits.RESERVE_PATIENCE)
                    continue
                link.request(self.manifest.id, index, self.manifest.length(index))
                async with asyncio.timeout(limits.BT_SNUB_TIMEOUT):
                    _, head, body = await link.read_piece()
                self._answer(address, index, head.status, body)
        except (Banned, PeerGone, RemoteProtocolError, TimeoutError, OSError) as exc:
            log.info("[BT] swarm peer %s: %s", join_hostport(*address),
                     exc or type(exc).__name__)
        finally:
            if link is not None:
                link.close()
            self.links.discard(address)
            d.picker.remove_peer(address)
            d.roster.dropped(address, time.monotonic())

    def _answer(self, address: Address, index: int, status: int, body: bytearray) -> None:
        if status == Status.OK:
            good = sha256_matches(body, self.manifest.digests[index])
            self.download.finished(address, index, body, good=good)
        elif status == Status.NOT_FOUND:
            self.download.picker.failed(index, address, corrupt=True)  # not asked again
        else:
            raise PeerGone(f"answered {status}")
