"""Sub-commands of the swarm: share, fetch, files (docs/swarm.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from .. import limits
from ..errors import P2PError
from ..protocol.swarm import FileEntry
from ..swarm.client import TrackerClient
from ..swarm.fetch import Progress, SwarmDownload, first_error
from ..swarm.manifest import Manifest
from ..swarm.session import Ambiguous, Fetch, NotFound, SwarmPeer
from ..swarm.storage import Source, hash_file, hash_tree, open_regular, scan_tree
from ..swarm.tree import Locked, final_path
from ._run import (
    GaveUp,
    deadline,
    fail,
    interrupted_status,
    note,
    run,
    say,
    say_json,
    serving,
    stoppable,
)
from .exits import Exit, from_error
from .options import (
    INDEX_PORT,
    address_arg,
    is_torrent_argument,
    out_arg,
    reachable_args,
    size_arg,
    timeout_arg,
)
from .progress import Events, ProgressView, human
from .text import cell, shown

log = logging.getLogger(__name__)
_REFRESH = 0.1  # seconds between progress-bar refreshes
BT_PORT = 6881  # the port a BitTorrent --peer without one is reached at (the usual one)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the swarm sub-commands to ``sub``."""
    p = sub.add_parser("share", help="hash files or folders and serve their pieces to the swarm")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--piece-size", type=size_arg, default=None,
                   help="piece size, e.g. 256K or 1M (default: 256K, more for big files)")
    _peer_args(p, "until it answers")
    p.add_argument("--json", action="store_true", help="NDJSON events on stdout")
    p.set_defaults(func=lambda a: _reported(a, share, serves=True))

    p = sub.add_parser("fetch", help="download a shared file from every peer that has it")
    p.add_argument("target", metavar="ID-or-NAME",
                   help="swarm id, id prefix, or file name; or a .torrent file or a magnet "
                        "link (BitTorrent, docs/bittorrent.md)")
    out_arg(p, "folder for the file", Path("."))
    p.add_argument("--seed", action="store_true", help="keep serving it once complete")
    p.add_argument("--only", action="append", default=[], metavar="PATTERN",
                   help="of a folder, fetch only the files whose relative path matches this "
                        "glob (repeatable), e.g. 'docs/*.pdf'")
    p.add_argument("--max-download-rate", type=size_arg, default=None, metavar="BYTES",
                   help="download limit per second for all peers together, e.g. 2M "
                        "(default %(default)s)")
    p.add_argument("--no-upload", action="store_true",
                   help="serve nothing: no piece server, and the tracker is never told of us")
    timeout_arg(p)
    _peer_args(p, "until it answers or --timeout passes (then exit 4)")
    p.add_argument("--peer", action="append", default=[], type=address_arg(BT_PORT),
                   metavar="HOST[:PORT]",
                   help=f"of a torrent: a BitTorrent peer to download from (repeatable; "
                        f"port {BT_PORT} if left out)")
    p.add_argument("--swarm", default=None, metavar="ID",
                   help="of a single-file torrent: also take pieces from this swarm's peers "
                        "(the same file and piece size), found through --server")
    p.add_argument("--json", action="store_true", help="NDJSON events on stdout")
    p.set_defaults(func=lambda a: _reported(a, fetch))

    p = sub.add_parser("files", help="list the swarms the tracker knows")
    _server_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--offset", type=_offset_arg, default=0, metavar="N",
                   help="skip this many swarms (the list is newest first, in pages)")
    p.add_argument("--name", default="", help="only swarms of this name (or id prefix)")
    p.set_defaults(func=lambda a: run(files(a)))


def _server_arg(p: argparse.ArgumentParser, more: str = "") -> None:
    p.add_argument("--server", default=f"127.0.0.1:{INDEX_PORT}", type=address_arg(INDEX_PORT),
                   metavar="HOST[:PORT]", help=f"index server (default %(default)s{more})")


def _peer_args(p: argparse.ArgumentParser, retried: str) -> None:
    _server_arg(p, f"; not reachable: retried {retried}")
    reachable_args(p, "piece server", "our address towards the server", "--host")
    p.add_argument("--max-upload-rate", type=size_arg, default=None, metavar="BYTES",
                   help="upload limit per second for all peers together, e.g. 10M "
                        "(default %(default)s)")


def _offset_arg(text: str) -> int:
    """``files --offset``: 0 to 2**31, what ListFiles carries (protocol.swarm)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 2**31:
        raise argparse.ArgumentTypeError(f"must be from 0 to {2**31}: {text!r}")
    return value


def _peer(args: argparse.Namespace, downloading: bool = False) -> Any:
    """The peer of a share or fetch (``downloading``); a fetch gives up reaching the index
    server after ``--timeout`` if it has one, and otherwise retries for ever, like share."""
    return SwarmPeer.open(*args.server, advertise=args.advertise, listen=args.listen,
                          port=args.port, rate_limit=args.max_upload_rate,
                          download_rate=args.max_download_rate if downloading else None,
                          upload=not (downloading and args.no_upload),
                          give_up=args.timeout if downloading else None)


def _reported(args: argparse.Namespace, command: Any, *, serves: bool = False) -> int:
    """Run ``command(args, events)``; with ``--json``, its events end with a summary."""
    events = Events(args.command, args.json)
    return run(_summarised(events, command(args, events)), fast_loop=True, serves=serves)


async def _summarised(events: Events, job: Coroutine[Any, Any, int]) -> int:
    try:
        status = await job
    except asyncio.CancelledError:
        events.summary(interrupted_status())
        raise
    events.summary(status)
    return status


def _failed(events: Events, message: str, status: int, **fields: Any) -> int:
    """``fail``, and an ``error`` event first (with ``fields``)."""
    events.emit("error", message=message, exit=int(status), **fields)
    return fail(message, status)


def _error_status(exc: BaseException) -> Exit:
    if isinstance(exc, NotFound):
        return Exit.NOT_FOUND
    if isinstance(exc, Ambiguous):
        return Exit.USAGE
    return from_error(exc)


def _show_progress(args: argparse.Namespace) -> bool:
    return not (args.quiet or args.json)


# --------------------------------------------------------------------------- share
@dataclass(frozen=True, slots=True)
class _Shared:
    """One PATH of ``share``: a file, or a folder with the files found in it."""

    path: Path
    size: int
    sources: list[Source] | None  # None for a file


class _Refused(Exception):
    """``share`` cannot start: the reason and the exit status."""

    def __init__(self, reason: str, status: Exit) -> None:
        super().__init__(reason)
        self.status = status


def _check_share(args: argparse.Namespace) -> list[_Shared]:
    """Every argument checked before any hashing (which may take minutes): the piece size
    is one we allow, each path is a readable file or a folder of readable files. (The
    port and the server address were parsed with the command line.)

    Raises:
        _Refused: the first argument that is not usable.
    """
    if args.piece_size is not None and \
            not limits.MIN_PIECE_SIZE <= args.piece_size <= limits.MAX_PIECE_SIZE:
        raise _Refused(f"--piece-size must be from {human(limits.MIN_PIECE_SIZE)} to "
                       f"{human(limits.MAX_PIECE_SIZE)}", Exit.USAGE)
    return [_check_path(path) for path in args.paths]


def _check_path(path: Path) -> _Shared:
    try:
        if not path.is_dir():
            with open_regular(path, follow=True) as handle:
                return _Shared(path, os.fstat(handle.fileno()).st_size, None)
        sources = scan_tree(path)
        for source in sources:
            open_regular(source.where).close()
        return _Shared(path, sum(s.size for s in sources), sources)
    except (OSError, P2PError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise _Refused(f"cannot share {path}: {reason}", Exit.LOCAL) from None


def _hash(item: _Shared, piece_size: int | None, advance: Callable[[int], None]) -> Manifest:
    if item.sources is None:
        return hash_file(item.path, piece_size, advance)
    return hash_tree(item.path, item.sources, piece_size, advance)


async def share(args: argparse.Namespace, events: Events) -> int:
    try:
        checked = _check_share(args)
    except _Refused as exc:
        return _failed(events, str(exc), exc.status)
    events.emit("started", paths=[str(p) for p in args.paths])
    manifests = []
    for item in checked:
        try:
            with ProgressView(f"hashing {item.path.name}", item.size,
                              show=_show_progress(args)) as view:
                manifests.append(await stoppable(partial(_hash, item, args.piece_size),
                                                 view.advance))
        except (OSError, P2PError) as exc:
            return _failed(events, f"cannot share {item.path}: {exc}", Exit.LOCAL)
    try:
        async with _peer(args) as peer:
            for item, manifest in zip(checked, manifests, strict=True):
                await peer.share(item.path, manifest, item.sources)
                if args.json:
                    events.emit("finished", **_swarm_json(manifest), path=str(item.path))
                else:
                    say(f"{manifest.id} {manifest.name}")
            log.info("[Swarm] serving %d swarm(s) as %s until interrupted", len(manifests),
                     peer.advertised.shown(peer.served_at[1]))
            await peer.stay_connected()
            return Exit.OK
    except (OSError, P2PError) as exc:
        return _failed(events, str(exc), from_error(exc))


def _swarm_json(manifest: Manifest) -> dict[str, Any]:
    return {"id": manifest.id, "name": manifest.name, "kind": manifest.kind,
            "files": len(manifest.layout), "size": manifest.size}


# --------------------------------------------------------------------------- fetch
async def fetch(args: argparse.Namespace, events: Events) -> int:
    if is_torrent_argument(args.target):
        from . import bt_cmds
        return await bt_cmds.fetch_torrent(args, events)
    if args.seed and args.no_upload:
        return _failed(events, "--seed and --no-upload exclude each other", Exit.USAGE)
    if args.out.exists() and not args.out.is_dir():
        return _failed(events, f"{args.out} is not a folder", Exit.LOCAL)
    try:
        async with _peer(args, downloading=True) as peer:
            return await _fetch(args, peer, events)
    except Ambiguous as exc:
        if not args.json:
            _print_files(exc.matches)
        return _failed(events, f"{len(exc.matches)} swarms are named {args.target!r}: "
                               "give an id", Exit.USAGE,
                       matches=[_entry_json(e) for e in exc.matches])
    except Locked as exc:
        return _failed(events, str(exc), Exit.LOCAL)
    except OSError as exc:
        if exc.filename is not None:  # a file of ours, under --out
            return _failed(events, _cannot_write(args.out, exc), Exit.LOCAL)
        return _failed(events, str(exc), _error_status(exc))
    except P2PError as exc:
        return _failed(events, str(exc), _error_status(exc))


def _cannot_write(out: Path, exc: OSError) -> str:
    """The reason, naming the user's path in ``out`` (a folder of the swarm's tree that is a
    file, say) but not our own hidden lock or temporary names."""
    name = Path(os.fsdecode(exc.filename))
    if name == out or name.name.startswith(".p2pshare-"):
        return f"cannot write in {out}: {exc.strerror}"
    return f"cannot write in {out}: {name}: {exc.strerror}"


async def _fetch(args: argparse.Namespace, peer: SwarmPeer, events: Events) -> int:
    job = Fetch(peer, args.out, args.only)
    try:
        async with deadline(args.timeout):
            manifest = await job.resolve(args.target)
            events.emit("started", **_swarm_json(manifest), pieces=manifest.count)
            final = await _download(args, job, manifest, events)
    except GaveUp as exc:
        raise GaveUp(f"{exc}{_kept(job.download)}") from None
    except asyncio.CancelledError:  # SIGINT/SIGTERM: say what a second run will do
        if job.download is not None:
            note(f"interrupted{_kept(job.download)}")
        raise
    finally:
        job.close()
    if args.json:
        events.emit("finished", **_swarm_json(manifest), path=str(final))
    else:
        say(str(final))
    if args.seed:
        serving()
        log.info("[Swarm] seeding %s as %s until interrupted", manifest.name,
                 peer.advertised.shown(peer.served_at[1]))
        await peer.stay_connected()
    return Exit.OK


def _kept(download: SwarmDownload | None) -> str:
    """What a stopped download keeps for the next run, as the end of its message."""
    if download is None:
        return ""
    p = download.progress()
    return (f": {p.pieces} of {p.count} pieces verified and kept; run the same command "
            "again to resume")


async def _download(args: argparse.Namespace, job: Fetch, manifest: Manifest,
                    events: Events) -> Path:
    """The complete file or folder (its wanted files): verified in place, or downloaded."""
    download = job.prepare(manifest)
    p = download.progress()
    if p.pieces == p.count:
        log.info("[Swarm] %s is already complete", final_path(args.out, manifest))
    return await shown_while(args, manifest.name, download, events, job.run(download))


async def shown_while(args: argparse.Namespace, name: str, download: Downloading,
                      events: Events, run: Coroutine[Any, Any, Path]) -> Path:
    """``run`` (a download to its final path), its progress shown meanwhile: the one
    progress loop of swarm and torrent fetches."""
    p = download.progress()
    with ProgressView(shown(name), p.size, show=_show_progress(args)) as view:
        try:
            async with asyncio.TaskGroup() as tg:
                shower = tg.create_task(_show(view, download, events))
                final = await run
                shower.cancel()
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        _refresh(view, download, events, final=True)
    return final


class Downloading(Protocol):
    """A download whose progress is shown: a swarm's, or a torrent's (``bt.download``)."""

    def progress(self) -> Progress: ...


async def _show(view: ProgressView, download: Downloading, events: Events) -> None:
    while True:
        _refresh(view, download, events)
        await asyncio.sleep(_REFRESH)  # redraw period, not a wait for an event


def _refresh(view: ProgressView, download: Downloading, events: Events, *,
             final: bool = False) -> None:
    p = download.progress()
    # At the end the links are closed: the last line says who sent the pieces instead.
    peers = f"from {p.sources} peers" if final else f"{p.peers} peers"
    view.update(p.done, f"{peers}, pieces {p.pieces}/{p.count}")
    events.progress(p.done, p.size, p.peers, final=final, sources=p.sources)


# --------------------------------------------------------------------------- files
async def files(args: argparse.Namespace) -> int:
    try:
        tracker = await TrackerClient.connect(*args.server)
        try:
            page = await tracker.file_page(args.offset, args.name)
        finally:
            await tracker.aclose()
    except (OSError, P2PError) as exc:
        return fail(str(exc), from_error(exc))
    entries = page.entries
    if page.cut:
        print(f"swarms {page.offset + 1}-{page.offset + len(entries)} of {page.total}, "
              "newest first (--offset for more, --name to filter)", file=sys.stderr)
    if args.json:
        say_json([_entry_json(e) for e in entries])
    else:
        _print_files(entries)
    return Exit.OK


def _entry_json(e: FileEntry) -> dict[str, Any]:
    return {"id": e.swarm, "name": e.name, "kind": e.kind, "files": max(e.files, 1),
            "size": e.size, "piece_size": e.piece_size, "seeders": e.seeders,
            "leechers": e.leechers, "availability": e.copies}


def _print_files(entries: list[FileEntry]) -> None:
    from rich.console import Console  # rich only here: the other commands start faster
    from rich.table import Table

    table = Table("name", "size", "files", "id", "seeders", "leechers", "availability")
    for e in entries:
        name = cell(e.name) + ("/" if e.files else "")
        table.add_row(name, human(e.size), str(max(e.files, 1)), e.swarm[:12], str(e.seeders),
                      str(e.leechers), f"{e.copies:.2f}")
    Console(soft_wrap=True).print(table)
