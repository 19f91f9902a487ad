"""A swarm peer's life: a piece server and a tracker connection, sharing and fetching.

Strategy: ``SwarmPeer`` starts the piece server, connects to the tracker and knows the
address it advertises; ``share`` and ``Fetch`` are the steps behind the ``share`` and
``fetch`` commands, so that the CLI only parses arguments and shows progress. A fetch
takes the swarm's lock in its folder, opens the wanted files (``tree``: a file, or a
folder's files picked by ``--only``), resumes from the verified pieces recorded in the
folder, and renames each to its name once every piece has arrived. Every byte under a
temporary name was hashed before it was trusted (a received piece from the very buffer
that is then written, a resumed one read back from disk), so the files are not hashed
whole again at the end: that pass cost each leech 0.6 s of CPU per GB and proved nothing
new (a change to the temporary file behind our back is outside what a download defends
against, as for any program writing a file).

A peer may start before its index server: the first connection retries with backoff
(``TrackerClient.reach``), for ever or for ``give_up`` seconds. A peer opened with
``upload=False`` starts no piece server and announces nothing (it only asks the tracker
who holds what), so no other peer ever tries to connect to it. A shared file that changes
on disk is withdrawn by the library; the peer then tells the tracker by reconnecting
(a closed connection's records vanish) and announcing every file it still serves.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import P2PError
from ..net.advertise import Advertised, advertised_host
from ..net.rate import RateLimiter, limiter
from ..protocol.swarm import FileEntry
from . import resume, tree
from .client import TrackerClient
from .fetch import SwarmDownload
from .manifest import Manifest
from .pieces import full
from .seeder import PieceServer
from .storage import FileWatch, Library, PieceFile, Source

log = logging.getLogger(__name__)
_HEX = re.compile(r"[0-9a-f]+\Z")


@dataclass(eq=False)
class SwarmPeer:
    """Our piece server and tracker connection; ``address`` is what others connect to
    (its host chosen by ``net.advertise``, whose note ``advertised`` keeps; None, with no
    ``server``, for a peer that does not upload)."""

    library: Library
    server: PieceServer | None
    tracker: TrackerClient
    address: tuple[str, int] | None
    advertised: Advertised = Advertised("")
    download_limit: RateLimiter | None = None  # all our downloads together
    withdrawn: list[str] = field(default_factory=list)  # not yet told to the tracker

    @classmethod
    @asynccontextmanager
    async def open(cls, tracker_host: str, tracker_port: int, *, advertise: str | None = None,
                   listen: str | None = None, port: int = 0, rate_limit: float | None = None,
                   download_rate: float | None = None, upload: bool = True,
                   give_up: float | None = None) -> AsyncIterator[SwarmPeer]:
        """Start a piece server on ``listen`` (None: every address, IPv4 and IPv6) unless
        ``upload`` is off, and connect to the tracker, retrying while it is not up (for
        ``give_up`` seconds; None: for ever); close both on exit. ``rate_limit`` and
        ``download_rate`` are bytes per second, or None.

        Raises:
            PeerGone: the tracker cannot be reached (only with ``give_up``).
            OSError: the piece server cannot listen.
        """
        library = Library()
        server = PieceServer(library, rate_limit=rate_limit) if upload else None
        bound = (await server.start(listen, port))[1] if server else 0
        try:
            tracker = await TrackerClient.reach(tracker_host, tracker_port, give_up)
            try:
                chosen = await advertised_host(advertise, tracker_host, tracker.local_host)
                address = (chosen.host, bound) if server else None
                peer = cls(library, server, tracker, address, chosen, limiter(download_rate))
                library.on_withdrawn = peer._withdrawn
                yield peer
            finally:
                await tracker.aclose()
        finally:
            if server is not None:
                await server.aclose()
            library.close()

    @property
    def served_at(self) -> tuple[str, int]:
        """The address we announce (a peer that does not upload cannot share)."""
        if self.address is None:
            raise P2PError("this peer does not upload: it cannot share a file")
        return self.address

    async def share(self, path: Path, manifest: Manifest,
                    sources: list[Source] | None = None) -> None:
        """Serve the whole of ``path`` (a file, or a folder with its ``sources``: hashed
        into ``manifest``) and tell the tracker."""
        address = self.served_at
        self.library.add(PieceFile.open_complete(path, manifest, sources))
        await self.tracker.announce(manifest, *address)
        if manifest.count:
            await self.tracker.have(manifest.id, full(manifest.count))

    def _withdrawn(self, piece_file: PieceFile) -> None:
        """The library stopped serving a changed file: drop our tracker records (closing
        the connection does; ``stay_connected`` reconnects and announces the rest)."""
        self.withdrawn.append(piece_file.manifest.name)
        self.tracker.stream.close()

    async def stay_connected(self) -> None:
        """Run until cancelled: whenever the tracker connection drops, reconnect and
        announce every file we serve again, with its verified pieces."""
        while True:
            await self.tracker.wait_closed()
            if self.withdrawn:
                log.warning("[Swarm] telling the index server that we no longer serve %s",
                            ", ".join(self.withdrawn))
                self.withdrawn.clear()
            else:
                log.warning("[Swarm] lost the index server; reconnecting")
            await self.rejoin()

    async def rejoin(self) -> None:
        """Reconnect to the tracker (retrying with backoff) and announce every file we
        serve, complete or not, with its verified pieces (nothing if we do not upload)."""
        if self.address is None:
            await self.tracker.rejoin([], ("", 0))
        else:
            await self.tracker.rejoin(self.library.files.values(), self.address)



class NotFound(P2PError):
    """No swarm matches the id or name asked for."""


class Ambiguous(P2PError):
    """Several swarms match a name: the caller must choose one by id."""

    def __init__(self, matches: list[FileEntry]) -> None:
        super().__init__(f"{len(matches)} swarms match; give an id")
        self.matches = matches


def match(text: str, files: list[FileEntry]) -> list[FileEntry]:
    """Swarms that ``text`` names: a whole id, else an id prefix, else an exact name."""
    text = text.strip()
    low = text.lower()
    exact = [f for f in files if f.swarm == low]
    prefix = [f for f in files if _HEX.match(low) and f.swarm.startswith(low)]
    return exact or prefix or [f for f in files if f.name == text]


class Fetch:
    """One ``fetch``: resolve, prepare (lock, resume), download, verify, rename.

    Args:
        peer: our piece server and tracker connection.
        out_dir: the download folder.
        only: fnmatch patterns on a collection's relative paths: only the files they pick
            are fetched (none: every file).
    """

    def __init__(self, peer: SwarmPeer, out_dir: Path, only: list[str] | None = None) -> None:
        self.peer = peer
        self.out_dir = out_dir
        self.only = only or []
        self.download: SwarmDownload | None = None
        self.target: tree.Target | None = None
        self._lock: ExitStack | None = None

    async def resolve(self, text: str) -> Manifest:
        """The manifest of the swarm ``text`` names, checked against its id.

        Raises:
            NotFound, Ambiguous: as named.
            IntegrityError: the tracker sent a manifest that does not match the id.
        """
        swarm: str | None = text
        if not (len(text) == 64 and _HEX.match(text)):
            found = match(text, await self.peer.tracker.files(name=text.strip()))
            if len(found) > 1:
                raise Ambiguous(found)
            swarm = found[0].swarm if found else None
        manifest = await self.peer.tracker.manifest(swarm) if swarm else None
        if manifest is None:
            raise NotFound(f"no swarm named {text!r}")
        return manifest

    def prepare(self, manifest: Manifest) -> SwarmDownload:
        """Lock the swarm in the folder, open the files (keeping the pieces that still
        verify), start serving them.

        Raises:
            tree.Locked: another fetch of this swarm into this folder is running.
            NotFound: ``only`` picks no file.
            OSError, IntegrityError: as ``tree.Target.open``.
        """
        wanted = tree.selected(manifest, self.only)
        if not wanted:
            raise NotFound(f"no file of {manifest.name!r} matches {' '.join(self.only)!r}")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._lock = ExitStack()
        self._lock.enter_context(tree.fetch_lock(self.out_dir, manifest))
        try:
            self.target = tree.Target(self.out_dir, manifest, wanted)
            piece_file = self.target.open()
            resume_path = tree.record_path(self.out_dir, manifest)
            claimed = resume.load(resume_path, manifest) & self.target.mask & ~piece_file.have
            held = resume.recover(piece_file, claimed) | piece_file.have
        except BaseException:
            self.close()
            raise
        if held:
            log.info("[Swarm] resuming %s: %d of %d pieces verified", manifest.name,
                     held.bit_count(), self.target.mask.bit_count())
        resume.save(resume_path, manifest, held)  # now, while the disk has room for it
        self.peer.library.add(piece_file)
        self.download = SwarmDownload(piece_file, self.peer.tracker, self.peer.address,
                                      resume_path=resume_path, rejoin=self.peer.rejoin,
                                      wanted=self.target.mask,
                                      limiter=self.peer.download_limit)
        return self.download

    async def run(self, download: SwarmDownload) -> Path:
        """Download (every piece verified as it arrives), rename the files into place;
        returns the file's or the collection folder's path.

        Raises:
            P2PError, OSError: the tracker connection failed before the download began (once
                it runs, a lost tracker is reconnected while peers keep sending).
            Occupied, OSError: as ``tree.Target.publish``.
        """
        assert self.target is not None
        manifest, piece_file = download.manifest, download.file
        if self.peer.address is not None:
            await self.peer.tracker.announce(manifest, *self.peer.address)
        await download.run()
        # In a thread: flushing big files takes a while, and meanwhile we keep serving.
        final = await asyncio.to_thread(self.target.publish, piece_file.handles)
        tree.record_path(self.out_dir, manifest).unlink(missing_ok=True)
        # Seeded from now on: a change to a file on disk withdraws it.
        piece_file.watch = FileWatch(self.target.final_files())
        self.close()
        return final

    def close(self) -> None:
        """Release the folders and the lock (the files stay open for serving)."""
        if self.target is not None:
            self.target.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
