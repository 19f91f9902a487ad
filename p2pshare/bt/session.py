"""A BitTorrent seed or fetch from start to end: the steps behind ``seed`` and ``fetch``.

Strategy: as ``swarm.session`` for a swarm, so that the CLI only parses and shows.
``Seeding`` verifies the files under ``--dir`` (every piece hashed; only those that match
are served), serves them on the runtime (``seeder.BtServer``) and announces them.
``TorrentFetch`` resolves the argument (a ``.torrent`` file, or a magnet link whose
metadata is asked of peers and checked against its info-hashes), takes the lock in the
download folder, opens the files under their temporary names (``swarm.tree``), resumes
from the record of verified pieces (each hashed again before it is trusted:
``swarm.resume``), downloads (``download.TorrentDownload``) from the peers given, those
the trackers list and those PEX tells of, hashes every wanted piece on disk once more,
and only then gives each file its name. With ``--seed`` the same store is then served.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import limits
from ..errors import IntegrityError, P2PError, RemoteProtocolError
from ..net.origin import ANYWHERE, Origin
from ..net.rate import RateLimiter
from ..protocol import bt_events as w
from ..protocol.metainfo import Magnet, Torrent, parse_magnet, parse_torrent
from ..swarm import resume, tree
from ..swarm.link import Address
from ..swarm.pieces import full
from .download import TorrentDownload
from .metadata import fetch_metadata
from .peer import new_peer_id
from .seeder import BtServer
from .store import TorrentShape, TorrentStore, layout_of
from .trackers import Announcer

log = logging.getLogger(__name__)


class NotATorrent(P2PError):
    """The file given is not a valid torrent (a usage error: exit status 2)."""


def read_torrent(path: Path) -> Torrent:
    """The torrent in the file ``path``.

    Raises:
        OSError: it cannot be read.
        NotATorrent: it is not a valid torrent.
    """
    with open(path, "rb") as handle:
        data = handle.read(limits.MAX_TORRENT_FILE + 1)
    try:
        return parse_torrent(data)
    except P2PError as exc:
        raise NotATorrent(f"{path} is not a valid torrent: {exc}") from None


def greeting(torrent_hash: bytes, peer_id: bytes, metadata_size: int | None,
             v2: bool, port: int = 0) -> tuple[w.Handshake, w.ExtendedHandshake]:
    """Our handshake and extension handshake for the torrent named ``torrent_hash``
    (``port``: where we accept peers, told to PEX; 0 for none)."""
    from .seeder import _version
    hello = w.Handshake(torrent_hash[:20], peer_id, w.reserved_bits(v2=v2))
    ext = w.ExtendedHandshake(m={"ut_metadata": 1, "ut_pex": 2}, v=f"p2pshare {_version()}",
                              p=port or None, reqq=limits.BT_REQQ,
                              metadata_size=metadata_size)
    return hello, ext


@dataclass(eq=False)
class Seeding:
    """One ``seed``: the verified files, their server and their announcer."""

    torrent: Torrent
    store: TorrentStore
    server: BtServer
    peer_id: bytes = field(default_factory=new_peer_id)

    @classmethod
    async def open(cls, torrent: Torrent, data_dir: Path, *, rate_limit: float | None = None,
                   peer_id: bytes | None = None) -> Seeding:
        """Open and verify the files of ``torrent`` under ``data_dir``.

        Raises:
            OSError: a file is missing or of another size.
            IntegrityError: no piece verifies.
        """
        store = TorrentStore.open_seed(torrent, data_dir)
        good = await asyncio.to_thread(store.check_all)
        if store.count and not good:
            store.close()
            raise IntegrityError(f"no piece of {torrent.name} under {data_dir} matches the "
                                 "torrent")
        if good != full(store.count):
            log.warning("[BT] %d of %d pieces of %s do not match; serving the others",
                        store.count - good.bit_count(), store.count, torrent.name)
        pid = peer_id or new_peer_id()
        server = BtServer(pid, rate_limit=rate_limit)
        server.add(store)
        return cls(torrent, store, server, pid)

    async def serve(self, listen: str | None, port: int) -> tuple[str, int]:
        return await self.server.start(listen, port)

    async def announce_forever(self, port: int) -> None:
        """Announce until cancelled, and connect to the peers the trackers list
        (``BtServer.reach``: they may have announced before us, and not ask again for a
        long while)."""
        await Announcer(self.torrent, self.peer_id, port, lambda: 0,
                        on_peers=lambda peers: self.server.reach(peers, self.store),
                        uploaded=lambda: self.server.bytes_sent,
                        origin=self.server.origin).run()

    async def aclose(self) -> None:
        await self.server.aclose()
        self.store.close()


def read_magnet(text: str) -> Magnet:
    """The magnet link ``text``.

    Raises:
        NotATorrent: a malformed magnet link.
    """
    try:
        return parse_magnet(text)
    except RemoteProtocolError as exc:
        raise NotATorrent(f"not a usable magnet link: {exc}") from None


class TorrentFetch:
    """One ``fetch`` of a torrent: resolve, prepare, download, verify, rename.

    Args:
        out_dir: the download folder.
        peers: peers given on the command line.
        limiter: the download rate limit, or None.
    """

    def __init__(self, out_dir: Path, peers: list[Address],
                 limiter: RateLimiter | None = None) -> None:
        self.out_dir = out_dir
        self.peers = peers
        self.limiter = limiter
        self.peer_id = new_peer_id()
        self.download: TorrentDownload | None = None
        self.store: TorrentStore | None = None
        self.target: tree.Target | None = None
        self.shape: TorrentShape | None = None
        self.port = 0  # where we accept peers (announced), 0 if we do not
        self.origin = ANYWHERE  # where our connections leave from (``listening``)
        self._lock: ExitStack | None = None

    async def resolve(self, text: str) -> Torrent:
        """The torrent ``text`` names: a ``.torrent`` file, or a magnet link (its metadata
        from the peers given, those in the link, and the link's trackers).

        Raises:
            OSError: the file cannot be read.
            NotATorrent: not a torrent, or a malformed magnet link.
            PeerGone: no peer sent metadata matching the magnet link.
        """
        if not text.startswith("magnet:"):
            return await asyncio.to_thread(read_torrent, Path(text))
        return await self._metadata(read_magnet(text))

    async def _metadata(self, magnet: Magnet) -> Torrent:
        digest = magnet.v1_hash or magnet.v2_hash
        assert digest is not None
        hello, ext = greeting(digest, self.peer_id, None, magnet.v2_hash is not None)
        peers = list(dict.fromkeys([*self.peers, *magnet.peers]))
        if magnet.trackers:
            stub = Torrent(b"", magnet.v1_hash, magnet.v2_hash, magnet.name or "", 16384, (),
                           trackers=tuple((url,) for url in magnet.trackers))
            found: list[Address] = []
            await Announcer(stub, self.peer_id, self.port, lambda: 1, on_peers=found.extend,
                            origin=self.origin).round("started")
            peers += [p for p in found if p not in peers]
        torrent = await fetch_metadata(magnet, peers, hello, ext, self.origin)
        trackers = tuple((url,) for url in magnet.trackers)
        return Torrent(torrent.info, torrent.v1_hash, torrent.v2_hash, torrent.name,
                       torrent.piece_length, torrent.files, torrent.pieces,
                       torrent.piece_layers, trackers, torrent.total_length, torrent.private)

    def prepare(self, torrent: Torrent) -> TorrentDownload:
        """Lock the torrent in the folder, open its files (keeping the pieces that still
        verify), and make the download.

        Raises:
            tree.Locked: another fetch of this torrent into this folder is running.
            OSError, tree.Occupied: as ``tree.Target.open_handles``.
        """
        layout = layout_of(torrent)
        shape = TorrentShape.of(torrent, layout)
        self.shape = shape
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._lock = ExitStack()
        self._lock.enter_context(tree.fetch_lock(self.out_dir, shape))
        try:
            self.target = tree.Target(self.out_dir, shape, list(range(len(shape.layout))))
            handles = self.target.open_handles()
            store = TorrentStore(torrent, layout)
            for placed, handle in zip(layout.stored, handles, strict=True):
                assert handle is not None
                store.handles[placed.index] = handle
            self.store = store
            done = [layout.stored[slot.index] for slot in self.target.slots if slot.done]
            held = self._resume(store, layout.mask_of(done))
        except BaseException:
            self.close()
            raise
        if held:
            log.info("[BT] resuming %s: %d of %d pieces verified", torrent.name,
                     held.bit_count(), layout.count)
        hello, ext = greeting(torrent.handshake_hash, self.peer_id, len(torrent.info),
                              torrent.v2_hash is not None, self.port)
        record = tree.record_path(self.out_dir, shape)
        resume.save(record, shape, held)  # now, while the disk has room for it
        self.download = TorrentDownload(store, hello, ext, resume_path=record,
                                        limiter=self.limiter, origin=self.origin)
        return self.download

    def listening(self, port: int, origin: Origin = ANYWHERE) -> None:
        """We accept peers on ``port`` (announced, and told in our extension handshake),
        and connect from ``origin`` (the address we listen on, if one)."""
        self.port, self.origin = port, origin
        if self.download is not None:
            self.download.ext = replace(self.download.ext, p=port)

    def _resume(self, store: TorrentStore, complete: int) -> int:
        """The pieces verified on disk: those the record lists and those of files already
        under their names, each hashed again. A file under its name that does not verify
        whole is someone else's (``Occupied``)."""
        assert self.shape is not None
        claimed = resume.load(tree.record_path(self.out_dir, self.shape), self.shape)
        held = resume.recover(store, claimed | complete)
        if complete & ~held:
            raise tree.Occupied(f"a file of {store.torrent.name} in {self.out_dir} exists "
                                "and is not this torrent's; move it away first")
        return held

    async def run(self, download: TorrentDownload) -> Path:
        """Download, hash every piece on disk once more, rename the files into place;
        returns the file's or the folder's path.

        Raises:
            IntegrityError: pieces changed on disk after they were verified, twice.
            Occupied, OSError: as ``tree.Target.publish``.
        """
        assert self.target is not None and self.store is not None
        download.add_peers(self.peers)
        announcer = Announcer(self.store.torrent, self.peer_id, self.port,
                              lambda: self.store_left(), on_peers=download.add_peers,
                              downloaded=lambda: download.received,
                              hungry=lambda: not download.links, origin=self.origin)
        for _ in range(2):
            async with asyncio.TaskGroup() as tg:
                announcing = tg.create_task(announcer.run())
                await download.run()
                announcing.cancel()
            bad = full(self.store.count) & ~await asyncio.to_thread(self._recheck)
            if not bad:
                break
            log.warning("[BT] %d pieces changed on disk; fetching them again", bad.bit_count())
            download.picker.have &= ~bad
        else:
            raise IntegrityError("pieces keep changing on disk after they were verified")
        handles = [self.store.handles[f.index] for f in self.store.layout.stored]
        final = await asyncio.to_thread(self.target.publish, list(handles))
        assert self.shape is not None
        tree.record_path(self.out_dir, self.shape).unlink(missing_ok=True)
        self.close()
        return final

    def _recheck(self) -> int:
        assert self.store is not None
        self.store.have = 0
        return self.store.check_all()

    def store_left(self) -> int:
        if self.store is None:
            return 1
        return self.store.layout.bytes_in(full(self.store.count) & ~self.store.have)

    def close(self) -> None:
        """Release the folders and the lock (the files stay open for seeding)."""
        if self.target is not None:
            self.target.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
