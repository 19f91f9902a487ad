"""Sub-commands of the swarm: share, fetch, files (docs/swarm.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..errors import P2PError
from ..host import join_hostport
from ..protocol.swarm import FileEntry
from ..swarm.client import TrackerClient
from ..swarm.fetch import SwarmDownload, first_error
from ..swarm.resume import local_name
from ..swarm.session import Ambiguous, Fetch, SwarmPeer, check_existing
from ..swarm.storage import hash_file
from ._run import fail, run
from .ci_cmds import INDEX_PORT, address_arg  # the swarm tracker is in the index server
from .exits import from_error
from .progress import ProgressView, human
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
    p.set_defaults(func=lambda a: run(share(a)))

    p = sub.add_parser("fetch", help="download a shared file from every peer that has it")
    p.add_argument("target", metavar="ID-or-NAME", help="swarm id, id prefix, or file name")
    p.add_argument("--out", type=Path, default=Path("."), help="folder for the file")
    p.add_argument("--seed", action="store_true", help="keep serving it once complete")
    _peer_args(p)
    p.set_defaults(func=lambda a: run(fetch(a)))

    p = sub.add_parser("files", help="list the swarms the tracker knows")
    _server_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--offset", type=int, default=0,
                   help="skip this many swarms (the list is newest first, in pages)")
    p.add_argument("--name", default="", help="only swarms of this name (or id prefix)")
    p.set_defaults(func=lambda a: run(files(a)))


def _server_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=f"127.0.0.1:{INDEX_PORT}", type=address_arg(INDEX_PORT),
                   help=f"index server HOST[:PORT] (default 127.0.0.1:{INDEX_PORT})")


def _peer_args(p: argparse.ArgumentParser) -> None:
    _server_arg(p)
    p.add_argument("--host", default=None,
                   help="address other peers reach us at (default: ours towards the server)")
    p.add_argument("--listen", default="0.0.0.0", help="piece server bind address")
    p.add_argument("--port", type=int, default=0, help="piece server port (default: any)")
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
    return SwarmPeer.open(*args.server, advertise=args.host, listen=args.listen,
                          port=args.port, rate_limit=args.max_upload_rate)


# --------------------------------------------------------------------------- share
async def share(args: argparse.Namespace) -> int:
    manifests = []
    for path in args.paths:
        try:
            with ProgressView(f"hashing {path.name}", path.stat().st_size) as view:
                manifests.append(await asyncio.to_thread(hash_file, path, args.piece_size,
                                                         view.advance))
        except (OSError, P2PError) as exc:
            return fail(f"cannot share {path}: {exc}")
    try:
        async with _peer(args) as peer:
            for path, manifest in zip(args.paths, manifests, strict=True):
                await peer.share(path, manifest)
                print(f"{manifest.id} {manifest.name}", flush=True)
            log.info("[Swarm] serving %d file(s) as %s until interrupted", len(manifests),
                     join_hostport(*peer.address))
            await peer.stay_connected()
            return 0
    except (OSError, P2PError) as exc:
        return fail(str(exc))


# --------------------------------------------------------------------------- fetch
async def fetch(args: argparse.Namespace) -> int:
    try:
        async with _peer(args) as peer:
            return await _fetch(args, peer)
    except Ambiguous as exc:
        _print_files(exc.matches)
        return fail(f"{len(exc.matches)} swarms are named {args.target!r}: give an id", 2)
    except (OSError, P2PError) as exc:
        return fail(str(exc))


async def _fetch(args: argparse.Namespace, peer: SwarmPeer) -> int:
    job = Fetch(peer, args.out)
    manifest = await job.resolve(args.target)
    final = args.out / local_name(manifest)
    if check_existing(final, manifest):
        log.info("[Swarm] %s is already complete", final)
        if args.seed:
            await peer.share(final, manifest)
    else:
        download = job.prepare(manifest)
        with ProgressView(shown(manifest.name), manifest.size) as view:
            try:
                async with asyncio.TaskGroup() as tg:
                    shower = tg.create_task(_show(view, download))
                    final = await job.run(download)
                    shower.cancel()
            except BaseExceptionGroup as group:
                raise first_error(group) from None
            _refresh(view, download)
    print(final, flush=True)
    if args.seed:
        log.info("[Swarm] seeding %s as %s until interrupted", manifest.name,
                 join_hostport(*peer.address))
        await peer.stay_connected()
    return 0


async def _show(view: ProgressView, download: SwarmDownload) -> None:
    while True:
        _refresh(view, download)
        await asyncio.sleep(_REFRESH)  # redraw period, not a wait for an event


def _refresh(view: ProgressView, download: SwarmDownload) -> None:
    p = download.progress()
    view.update(p.done, f"{p.peers} peers, pieces {p.pieces}/{p.count}")


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
        print(json.dumps([_entry_json(e) for e in entries], indent=2))
    else:
        _print_files(entries)
    return 0


def _entry_json(e: FileEntry) -> dict[str, Any]:
    return {"id": e.swarm, "name": e.name, "size": e.size, "piece_size": e.piece_size,
            "seeders": e.seeders, "leechers": e.leechers, "availability": e.copies}


def _print_files(entries: list[FileEntry]) -> None:
    table = Table("name", "size", "id", "seeders", "leechers", "availability")
    for e in entries:
        table.add_row(cell(e.name), human(e.size), e.swarm[:12], str(e.seeders), str(e.leechers),
                      f"{e.copies:.2f}")
    Console(soft_wrap=True).print(table)

