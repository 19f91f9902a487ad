"""Sub-commands of the swarm: share, fetch, files (docs/swarm.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..errors import P2PError
from ..host import join_hostport
from ..protocol.swarm import FileEntry
from ..swarm.client import TrackerClient
from ..swarm.fetch import SwarmDownload, first_error
from ..swarm.manifest import Manifest
from ..swarm.resume import local_name
from ..swarm.session import Ambiguous, Fetch, NotFound, SwarmPeer, check_existing
from ..swarm.storage import hash_file
from ._run import deadline, fail, interrupted_status, run, say, say_json, serving
from .ci_cmds import INDEX_PORT  # the swarm tracker is in the index server
from .exits import Exit, from_error
from .options import address_arg, bind_host, out_arg, reachable_args, timeout_arg
from .progress import Events, ProgressView, human
from .text import cell, shown

log = logging.getLogger(__name__)
_SIZE = re.compile(r"(\d+)\s*([KMG]?)i?B?\Z", re.I)
_REFRESH = 0.1  # seconds between progress-bar refreshes


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the swarm sub-commands to ``sub``."""
    p = sub.add_parser("share", help="hash files and serve their pieces to the swarm")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--piece-size", type=size_arg, default=None,
                   help="piece size, e.g. 256K or 1M (default: 256K, more for big files)")
    _peer_args(p)
    p.add_argument("--json", action="store_true", help="NDJSON events on stdout")
    p.set_defaults(func=lambda a: _reported(a, share, serves=True))

    p = sub.add_parser("fetch", help="download a shared file from every peer that has it")
    p.add_argument("target", metavar="ID-or-NAME", help="swarm id, id prefix, or file name")
    out_arg(p, "folder for the file", Path("."))
    p.add_argument("--seed", action="store_true", help="keep serving it once complete")
    timeout_arg(p)
    _peer_args(p)
    p.add_argument("--json", action="store_true", help="NDJSON events on stdout")
    p.set_defaults(func=lambda a: _reported(a, fetch))

    p = sub.add_parser("files", help="list the swarms the tracker knows")
    _server_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--offset", type=int, default=0, metavar="N",
                   help="skip this many swarms (the list is newest first, in pages)")
    p.add_argument("--name", default="", help="only swarms of this name (or id prefix)")
    p.set_defaults(func=lambda a: run(files(a)))


def _server_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=f"127.0.0.1:{INDEX_PORT}", type=address_arg(INDEX_PORT),
                   metavar="HOST[:PORT]", help="index server (default %(default)s)")


def _peer_args(p: argparse.ArgumentParser) -> None:
    _server_arg(p)
    reachable_args(p, "piece server", "our address towards the server", "--host")
    p.add_argument("--max-upload-rate", type=size_arg, default=None, metavar="BYTES",
                   help="upload limit per second for all peers together, e.g. 10M")


def size_arg(text: str) -> int:
    """``262144``, ``256K``, ``1M``, ``1GiB`` -> bytes (binary units)."""
    m = _SIZE.match(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    unit: int = 1024 ** " KMG".index(m.group(2).upper() or " ")
    return int(m.group(1)) * unit


def _peer(args: argparse.Namespace) -> Any:
    return SwarmPeer.open(*args.server, advertise=args.advertise, listen=bind_host(args.listen),
                          port=args.port, rate_limit=args.max_upload_rate)


def _reported(args: argparse.Namespace, command: Any, *, serves: bool = False) -> int:
    """Run ``command(args, events)``; with ``--json``, its events end with a summary."""
    events = Events(args.command, args.json)
    return run(_summarised(events, command(args, events)), serves=serves)


async def _summarised(events: Events, job: Coroutine[Any, Any, int]) -> int:
    try:
        status = await job
    except asyncio.CancelledError:
        events.summary(interrupted_status())
        raise
    events.summary(status)
    return status


def _failed(events: Events, message: str, status: int) -> int:
    """``fail``, and an ``error`` event first."""
    events.emit("error", message=message, exit=int(status))
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
async def share(args: argparse.Namespace, events: Events) -> int:
    events.emit("started", paths=[str(p) for p in args.paths])
    manifests = []
    for path in args.paths:
        try:
            with ProgressView(f"hashing {path.name}", path.stat().st_size,
                              show=_show_progress(args)) as view:
                manifests.append(await asyncio.to_thread(hash_file, path, args.piece_size,
                                                         view.advance))
        except (OSError, P2PError) as exc:
            return _failed(events, f"cannot share {path}: {exc}", from_error(exc))
    try:
        async with _peer(args) as peer:
            for path, manifest in zip(args.paths, manifests, strict=True):
                await peer.share(path, manifest)
                if args.json:
                    events.emit("finished", **_swarm_json(manifest.id, manifest.name,
                                                          manifest.size), path=str(path))
                else:
                    say(f"{manifest.id} {manifest.name}")
            log.info("[Swarm] serving %d file(s) as %s until interrupted", len(manifests),
                     join_hostport(*peer.address))
            await peer.stay_connected()
            return Exit.OK
    except (OSError, P2PError) as exc:
        return _failed(events, str(exc), from_error(exc))


def _swarm_json(swarm: str, name: str, size: int) -> dict[str, Any]:
    return {"id": swarm, "name": name, "size": size}


# --------------------------------------------------------------------------- fetch
async def fetch(args: argparse.Namespace, events: Events) -> int:
    try:
        async with _peer(args) as peer:
            return await _fetch(args, peer, events)
    except Ambiguous as exc:
        if not args.json:
            _print_files(exc.matches)
        return _failed(events, f"{len(exc.matches)} swarms are named {args.target!r}: "
                               "give an id", Exit.USAGE)
    except (OSError, P2PError) as exc:
        return _failed(events, str(exc), _error_status(exc))


async def _fetch(args: argparse.Namespace, peer: SwarmPeer, events: Events) -> int:
    async with deadline(args.timeout):
        manifest = await Fetch(peer, args.out).resolve(args.target)
        events.emit("started", **_swarm_json(manifest.id, manifest.name, manifest.size),
                    pieces=manifest.count)
        final = await _download(args, peer, manifest, events)
    if args.json:
        events.emit("finished", **_swarm_json(manifest.id, manifest.name, manifest.size),
                    path=str(final))
    else:
        say(str(final))
    if args.seed:
        serving()
        log.info("[Swarm] seeding %s as %s until interrupted", manifest.name,
                 join_hostport(*peer.address))
        await peer.stay_connected()
    return Exit.OK


async def _download(args: argparse.Namespace, peer: SwarmPeer, manifest: Manifest,
                    events: Events) -> Path:
    """The complete file: already there (and shared if seeding), or downloaded."""
    job = Fetch(peer, args.out)
    final: Path = args.out / local_name(manifest)
    if check_existing(final, manifest):
        log.info("[Swarm] %s is already complete", final)
        if args.seed:
            await peer.share(final, manifest)
        return final
    download = job.prepare(manifest)
    with ProgressView(shown(manifest.name), manifest.size, show=_show_progress(args)) as view:
        try:
            async with asyncio.TaskGroup() as tg:
                shower = tg.create_task(_show(view, download, events))
                final = await job.run(download)
                shower.cancel()
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        _refresh(view, download, events, final=True)
    return final


async def _show(view: ProgressView, download: SwarmDownload, events: Events) -> None:
    while True:
        _refresh(view, download, events)
        await asyncio.sleep(_REFRESH)  # redraw period, not a wait for an event


def _refresh(view: ProgressView, download: SwarmDownload, events: Events, *,
             final: bool = False) -> None:
    p = download.progress()
    view.update(p.done, f"{p.peers} peers, pieces {p.pieces}/{p.count}")
    events.progress(p.done, p.size, p.peers, final=final)


# --------------------------------------------------------------------------- files
async def files(args: argparse.Namespace) -> int:
    try:
        tracker = await TrackerClient.connect(*args.server)
        try:
            page = await tracker.file_page(max(0, args.offset), args.name)
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
    return {**_swarm_json(e.swarm, e.name, e.size), "piece_size": e.piece_size,
            "seeders": e.seeders, "leechers": e.leechers, "availability": e.copies}


def _print_files(entries: list[FileEntry]) -> None:
    table = Table("name", "size", "id", "seeders", "leechers", "availability")
    for e in entries:
        table.add_row(cell(e.name), human(e.size), e.swarm[:12], str(e.seeders), str(e.leechers),
                      f"{e.copies:.2f}")
    Console(soft_wrap=True).print(table)

