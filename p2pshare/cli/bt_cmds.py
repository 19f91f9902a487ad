"""BitTorrent sub-commands: ``seed``, and ``fetch`` of a torrent or a magnet link
(docs/bittorrent.md; ``swarm_cmds.fetch`` hands a torrent argument over to ``fetch``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from functools import partial
from pathlib import Path
from typing import Any

from ..bt.download import TorrentDownload
from ..bt.mixed import SwarmSource, compatible
from ..bt.seeder import BtServer
from ..bt.session import NotATorrent, Seeding, TorrentFetch, read_magnet, read_torrent
from ..errors import P2PError
from ..host import join_hostport
from ..net.rate import limiter
from ..protocol.metainfo import Torrent
from ..swarm.client import TrackerClient
from ..swarm.session import NotFound
from ..swarm.tree import Locked
from ._run import GaveUp, deadline, note, say, serving
from .exits import Exit, from_error
from .options import folder_arg, listen_arg, port_arg, size_arg
from .progress import Events
from .swarm_cmds import _failed, _reported, shown_while

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``seed`` to ``sub``."""
    p = sub.add_parser("seed", help="verify a torrent's files and serve them to BitTorrent "
                                    "peers, announcing to its trackers")
    p.add_argument("torrent", type=Path, metavar="FILE.torrent")
    p.add_argument("--dir", type=folder_arg, default=Path("."), metavar="DATA",
                   help="folder holding the torrent's file or folder (default %(default)s)")
    listen_arg(p)
    p.add_argument("--port", type=port_arg, default=0,
                   help="BitTorrent port (default 0: any free port, printed)")
    p.add_argument("--max-upload-rate", type=size_arg, default=None, metavar="BYTES",
                   help="upload limit per second for all peers together, e.g. 10M "
                        "(default %(default)s)")
    p.add_argument("--json", action="store_true", help="NDJSON events on stdout")
    p.set_defaults(func=lambda a: _reported(a, seed, serves=True))


def _torrent_json(torrent: Torrent) -> dict[str, Any]:
    return {"id": (torrent.v2_hash or torrent.v1_hash or b"").hex(), "name": torrent.name,
            "v1": torrent.v1_hash.hex() if torrent.v1_hash else None,
            "v2": torrent.v2_hash.hex() if torrent.v2_hash else None,
            "kind": "folder" if torrent.multi_file else "file",
            "files": sum(1 for f in torrent.files if not f.pad),
            "size": torrent.total_length}


# --------------------------------------------------------------------------- seed
async def seed(args: argparse.Namespace, events: Events) -> int:
    try:
        torrent = await asyncio.to_thread(read_torrent, args.torrent)
    except (OSError, P2PError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return _failed(events, f"cannot read {args.torrent}: {reason}", Exit.LOCAL
                       if isinstance(exc, OSError) else Exit.USAGE)
    try:
        seeding = await Seeding.open(torrent, args.dir, rate_limit=args.max_upload_rate)
    except (OSError, P2PError) as exc:
        return _failed(events, f"cannot seed {torrent.name} from {args.dir}: {exc}",
                       from_error(exc) if not isinstance(exc, OSError) else Exit.LOCAL)
    try:
        host, port = await seeding.serve(args.listen, args.port)
        events.emit("started", **_torrent_json(torrent), port=port)
        if not args.json:
            say(f"{_torrent_json(torrent)['id']} {torrent.name} port {port}")
        serving()
        log.info("[BT] seeding %s on %s until interrupted", torrent.name,
                 join_hostport(host, port))
        await seeding.announce_forever(port)
        return Exit.OK
    except OSError as exc:
        return _failed(events, str(exc), Exit.NETWORK)
    finally:
        await seeding.aclose()


# --------------------------------------------------------------------------- fetch
async def fetch_torrent(args: argparse.Namespace, events: Events) -> int:
    """``fetch`` of a ``.torrent`` file or a magnet link."""
    if args.seed and args.no_upload:
        return _failed(events, "--seed and --no-upload exclude each other", Exit.USAGE)
    if args.out.exists() and not args.out.is_dir():
        return _failed(events, f"{args.out} is not a folder", Exit.LOCAL)
    job = TorrentFetch(args.out, list(args.peer), limiter(args.max_download_rate))
    try:
        if args.target.startswith("magnet:"):
            read_magnet(args.target)  # a malformed link is told before anything starts
        return await _fetch(args, job, events)
    except Locked as exc:
        return _failed(events, str(exc), Exit.LOCAL)
    except NotATorrent as exc:
        return _failed(events, str(exc), Exit.USAGE)
    except NotFound as exc:
        return _failed(events, str(exc), Exit.NOT_FOUND)
    except (OSError, P2PError) as exc:
        status = Exit.LOCAL if isinstance(exc, OSError) and exc.filename else from_error(exc)
        return _failed(events, str(exc), status)
    finally:
        job.close()


async def _fetch(args: argparse.Namespace, job: TorrentFetch, events: Events) -> int:
    # Listening first (unless --no-upload): a magnet's trackers are told our real port.
    server = None if args.no_upload else BtServer(job.peer_id, rate_limit=args.max_upload_rate)
    try:
        if server is not None:
            job.listening((await server.start(args.listen, args.port))[1], server.origin)
        torrent, final = await _fetched(args, job, events, server)
        if args.json:
            events.emit("finished", **_torrent_json(torrent), path=str(final))
        else:
            say(str(final))
        if args.seed and server is not None:
            assert job.store is not None
            serving()
            log.info("[BT] seeding %s on port %d until interrupted", torrent.name, job.port)
            await Seeding(torrent, job.store, server, job.peer_id).announce_forever(job.port)
    finally:
        if server is not None:
            await server.aclose()
        if job.store is not None:
            job.store.close()
    return Exit.OK


async def _fetched(args: argparse.Namespace, job: TorrentFetch, events: Events,
                   server: BtServer | None) -> tuple[Torrent, Path]:
    """Resolve, prepare and download: (the torrent, its file or folder)."""
    tracker: TrackerClient | None = None
    try:
        async with deadline(args.timeout):
            torrent = await job.resolve(args.target)
            events.emit("started", **_torrent_json(torrent), pieces=torrent.num_pieces)
            download = job.prepare(torrent)
            assert job.store is not None
            if args.swarm:
                tracker = await _swarm_source(args, job, download)
            if server is not None:
                server.add(job.store)
                download.on_piece = partial(server.have, job.store)
            return torrent, await _download(args, job, download, events)
    except GaveUp as exc:
        raise GaveUp(f"{exc}{_kept(job)}") from None
    except asyncio.CancelledError:
        if job.download is not None:
            note(f"interrupted{_kept(job)}")
        raise
    finally:
        if tracker is not None:
            await tracker.aclose()


async def _swarm_source(args: argparse.Namespace, job: TorrentFetch,
                        download: TorrentDownload) -> TrackerClient:
    """``--swarm ID``: its peers join the download (``bt.mixed``).

    Raises:
        NotATorrent: the swarm is not the torrent's file cut the same way (exit 2).
        NotFound: the tracker has no such swarm.
        PeerGone: the tracker cannot be reached within ``--timeout``.
    """
    host, port = args.server
    tracker = await TrackerClient.reach(host, port, args.timeout)
    try:
        manifest = await tracker.manifest(args.swarm.strip().lower())
        if manifest is None:
            raise NotFound(f"no swarm {args.swarm!r} at {join_hostport(*args.server)}")
        assert job.store is not None
        reason = compatible(manifest, job.store.layout)
        if reason is not None:
            raise NotATorrent(f"--swarm {args.swarm[:16]}: {reason}")
    except BaseException:
        await tracker.aclose()
        raise
    SwarmSource(download, tracker, manifest)
    return tracker


def _kept(job: TorrentFetch) -> str:
    if job.download is None:
        return ""
    p = job.download.progress()
    return (f": {p.pieces} of {p.count} pieces verified and kept; run the same command "
            "again to resume")


async def _download(args: argparse.Namespace, job: TorrentFetch, download: TorrentDownload,
                    events: Events) -> Path:
    assert job.store is not None
    return await shown_while(args, job.store.torrent.name, download, events,
                             job.run(download))
