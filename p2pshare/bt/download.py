"""The BitTorrent downloader: every missing piece, from every peer at once, each verified.

Strategy: the swarm's download (``swarm.fetch``) with the peer wire for links. The same
pure parts decide: ``swarm.picker`` (rarest first, endgame) which piece to ask of whom,
``swarm.roster`` which peers get a link and when a dropped one is tried again. Peers come
from ``--peer``, the trackers and PEX (BEP 11), through ``add_peers``; one task per linked
peer says it is interested, waits to be unchoked and keeps ``limits.BT_PIPELINE`` block
requests in flight (16 KiB each, BEP 3) over the pieces it was given (``linksession``). A piece is
assembled in memory, verified (``store.verify``: SHA-1 and/or the v2 merkle root) and
written; a bad one is never asked of that peer again and counts against it: after
``limits.MAX_BAD_PIECES`` the peer is banned from this download. A peer that sends no
block of what we asked for ``limits.BT_SNUB_TIMEOUT`` loses its link (its pieces go to
others), and so does one that chokes us for as long. Blocks of pads (BEP 47, and the gap
after a v2 file) are zeros, never asked for. Every task lives in one TaskGroup, which
the task that verifies the last wanted piece ends.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

from .. import limits
from ..errors import P2PError
from ..host import join_hostport
from ..net.origin import ANYWHERE, Origin
from ..net.rate import RateLimiter
from ..protocol import bt_events as w
from ..swarm.fetch import (
    Progress,
    WriteFailed,
    _Complete,
    _wait,
    first_error,
    until_complete,
)
from ..swarm.link import Address
from ..swarm.picker import Picker
from ..swarm.pieces import full
from ..swarm.resume import save
from ..swarm.roster import Roster
from .layers import LayerFetch
from .layout import geometry_of
from .linksession import LinkSession, Snubbed
from .peer import PeerWire
from .store import TorrentShape, TorrentStore

log = logging.getLogger(__name__)


class Banned(P2PError):
    """A peer sent too many pieces that failed their hash."""


class TorrentDownload:
    """Fetches the wanted pieces of ``store`` that it does not hold.

    Args:
        store: the torrent's files (pieces already verified in ``store.have``).
        hello, ext: our handshake and extension handshake.
        wanted: the pieces to fetch; None: all.
        resume_path: where the verified pieces are recorded, or None.
        limiter: paces the reads of every link together, or None.
        origin: where our connections leave from (the address we listen on, if one).
    """

    def __init__(self, store: TorrentStore, hello: w.Handshake, ext: w.ExtendedHandshake, *,
                 wanted: int | None = None, resume_path: Path | None = None,
                 limiter: RateLimiter | None = None, rng: random.Random | None = None,
                 origin: Origin = ANYWHERE) -> None:
        self.store = store
        self.layout = store.layout
        self.hello, self.ext = hello, ext
        self.shape = TorrentShape.of(store.torrent, store.layout)
        self.wanted = full(self.layout.count) if wanted is None else wanted
        self.resume_path = resume_path
        self.limiter = limiter
        self.origin = origin
        self.picker = Picker(self.layout.count, store.have | ~self.wanted
                             & full(self.layout.count), rng)
        self.roster = Roster(rng)
        self.known: set[Address] = set()  # every peer address heard of
        self.told: Counter[Address] = Counter()  # addresses each peer told of by PEX
        self.links: dict[Address, PeerWire | None] = {}  # None while connecting
        self.strikes: Counter[Address] = Counter()
        self.banned: set[Address] = set()
        self.received = 0
        self.wasted = 0
        # v2-only: the piece layers (not in a magnet's metadata) of files of more than one
        # piece come first, by hash requests (BEP 52, ``bt.layers``).
        self.layer_fetch = LayerFetch(self.layout, store.layers) \
            if store.torrent.v1_hash is None else None
        self._changed = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self.on_piece: Callable[[int], None] | None = None  # told of each verified piece
        # Other kinds of peers (``mixed.SwarmSource``), run in the download's task group.
        self.sources: list[Callable[[asyncio.TaskGroup], Coroutine[Any, Any, None]]] = []

    # ------------------------------------------------------------------ public
    def progress(self) -> Progress:
        have = self.store.have & self.wanted
        connected = sum(1 for link in self.links.values() if link is not None)
        sources = sum(1 for record in self.roster.records.values() if record.delivered)
        return Progress(self.layout.bytes_in(have), self.layout.bytes_in(self.wanted),
                        have.bit_count(), self.wanted.bit_count(), connected, sources)

    def add_peers(self, addresses: Iterable[Address], told_by: Address | None = None) -> None:
        """Peers to try (from ``--peer``, a tracker, PEX); banned ones are ignored. PEX
        (``told_by`` the peer that sent it): at most ``BT_PEX_PER_PEER`` from one peer."""
        fresh = [a for a in addresses if a not in self.banned and a[1] > 0
                 and a not in self.known]
        if told_by is not None:
            fresh = fresh[:max(limits.BT_PEX_PER_PEER - self.told[told_by], 0)]
            self.told[told_by] += len(fresh)
        room = limits.BT_MAX_KNOWN_PEERS - len(self.known)
        self.known.update(fresh[:max(room, 0)])
        self._connect_more()

    async def run(self) -> None:
        """Return once every wanted piece is verified.

        Raises:
            WriteFailed: a piece could not be written.
        """
        try:
            if not self.picker.complete:
                await until_complete(self._start)
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        finally:
            self._tg = None
            if self.resume_path is not None:
                save(self.resume_path, self.shape, self.store.have)

    def _start(self, tg: asyncio.TaskGroup) -> None:
        self._tg = tg
        tg.create_task(self._connector())
        for source in self.sources:
            tg.create_task(source(tg))
        if self.resume_path is not None:
            tg.create_task(self._save_loop(self.resume_path))

    # ------------------------------------------------------------------ peers
    async def _connector(self) -> None:
        while True:
            self._connect_more()
            await _wait(self._changed, limits.PEER_RETRY_DELAY)

    def _connect_more(self) -> None:
        if self._tg is None:
            return
        candidates = [a for a in self.known if a not in self.banned]
        for address in self.roster.choose(candidates, self.links, time.monotonic()):
            self.links[address] = None
            self._tg.create_task(self._peer(address))

    async def _save_loop(self, path: Path) -> None:
        saved = self.store.have
        while True:
            await asyncio.sleep(limits.RESUME_SAVE_INTERVAL)  # periodic work, not a wait
            if self.store.have != saved:
                saved = self.store.have
                await asyncio.to_thread(save, path, self.shape, saved)

    async def _peer(self, address: Address) -> None:
        wire = None
        wait = limits.PEER_RETRY_DELAY
        try:
            v2 = self.store.torrent.v2_hash
            wire = await PeerWire.connect(address, self.hello, self.ext, self.limiter,
                                          geometry_of(self.layout), v2[:20] if v2 else None,
                                          self.origin)
            self.links[address] = wire
            await LinkSession(self, wire).run()
        except Banned as exc:
            log.warning("[BT] %s banned: %s", join_hostport(*address), exc)
        except Snubbed as exc:
            log.info("[BT] %s dropped: %s", join_hostport(*address), exc)
            wait = limits.BT_SNUB_TIMEOUT
        except (P2PError, TimeoutError, OSError) as exc:  # one link's end, never the download's
            log.info("[BT] %s: %s", join_hostport(*address), exc or type(exc).__name__)
        finally:
            if wire is not None:
                wire.close()
            self.links.pop(address, None)
            self.picker.remove_peer(address)
            if self.layer_fetch is not None:
                self.layer_fetch.dropped(address)
            self.roster.dropped(address, time.monotonic(), wait=wait)
            self._notify()

    # ------------------------------------------------------------------ pieces
    def finished(self, address: Address, index: int, data: bytes | bytearray,
                 *, good: bool = True) -> None:
        """A whole piece arrived from ``address``: verify, then keep it or count it against
        the peer (``good`` False: it failed a check of the caller's own already).

        Raises:
            Banned: the peer sent too many bad pieces.
            WriteFailed: the disk refused the piece.
            _Complete: it was the last one.
        """
        if not (good and self.store.verify(index, data)):
            self.wasted += len(data)
            self.picker.failed(index, address, corrupt=True)
            self._strike(address, f"piece {index}")
            return
        self.roster.delivered(address, len(data))
        if not self.picker.received(index, address):
            self.wasted += len(data)
            return
        try:
            self.store.write(index, data)
        except OSError as exc:
            raise WriteFailed(f"cannot write {self.store.torrent.name}: "
                              f"{exc.strerror or exc}; the verified pieces are kept: run "
                              "the same command again to resume", exc.errno) from exc
        self.received += len(data)
        for link in self.links.values():  # our peers learn what we can give them
            if link is not None:
                try:
                    link.send(w.BtHave(index))
                except P2PError:  # that link's codec failed: its own task ends it
                    pass
        if self.on_piece is not None:
            self.on_piece(index)
        if self.picker.complete:
            raise _Complete
        self._notify()

    @property
    def layers_wanted(self) -> bool:
        """Whether piece layers are still wanted (no piece is asked for before them)."""
        return self.layer_fetch is not None and self.layer_fetch.wanted

    def got_hashes(self, address: Address, event: w.Hashes) -> bool:
        """A hashes message from ``address``: whether it proved a chunk we asked of it; one
        that does not prove counts against the peer like a bad piece.

        Raises:
            Banned: the peer sent too many answers or pieces that failed their hash.
        """
        verdict = None if self.layer_fetch is None else \
            self.layer_fetch.answered(address, event)
        if verdict is False:
            self._strike(address, f"hashes {event.index}+{event.length}")
        elif verdict:
            self._notify()
        return bool(verdict)

    def _strike(self, address: Address, what: str) -> None:
        """``what`` from ``address`` failed its hash check.

        Raises:
            Banned: the peer's strikes reached ``limits.MAX_BAD_PIECES``.
        """
        self.strikes[address] += 1
        log.warning("[BT] %s from %s failed its hash check (%d of %d allowed)",
                    what, join_hostport(*address), self.strikes[address],
                    limits.MAX_BAD_PIECES)
        self._notify()
        if self.strikes[address] >= limits.MAX_BAD_PIECES:
            self.banned.add(address)
            raise Banned("sent pieces or hashes that failed their hash check")

    async def wait_changed(self, timeout: float) -> None:
        """Until a piece is verified, a peer comes or goes, or ``timeout`` seconds pass."""
        await _wait(self._changed, timeout)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
