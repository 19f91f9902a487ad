"""Sub-commands of the swarm: share, fetch, files (docs/swarm.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .. import limits
from ..errors import P2PError
from ..protocol.swarm import FileEntry
from ..swarm.client import TrackerClient
from ..swarm.fetch import SwarmDownload, first_error
from ..swarm.manifest import Manifest
from ..swarm.session import Ambiguous, Fetch, SwarmPeer
from ..swarm.storage import Source, hash_file, hash_tree, open_regular, scan_tree
from ..swarm.tree import Locked, final_path
from ._run import fail, run
from .ci_cmds import INDEX_PORT, address_arg  # the swarm tracker is in the index server
from .exits import Exit, from_error
from .progress import ProgressView, human
from .text import cell, shown

log = logging.getLogger(__name__)
_SIZE = re.compile(r"(\d+)\s*([KMG]?)i?B?\Z", re.I)
_REFRESH = 0.1  # seconds between progress-bar refreshes


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the swarm sub-commands to ``sub``."""
    p = sub.add_parser("share", help="hash files or folders and serve their pieces to the swarm")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--piece-size", type=size_arg, default=None,
                   help="piece size, e.g. 256K or 1M (default: 256K, more for big files)")
    _peer_args(p)
    p.set_defaults(func=lambda a: run(share(a)))

    p = sub.add_parser("fetch", help="download a shared file from every peer that has it")
    p.add_argument("target", metavar="ID-or-NAME", help="swarm id, id prefix, or file name")
    p.add_argument("--out", type=Path, default=Path("."), help="folder for the file")
    p.add_argument("--seed", action="store_true", help="keep serving it once complete")
    p.add_argument("--only", action="append", default=[], metavar="PATTERN",
                   help="of a folder, fetch only the files whose relative path matches this "
                        "glob (repeatable), e.g. 'docs/*.pdf'")
    p.add_argument("--max-download-rate", type=size_arg, default=None, metavar="BYTES",
                   help="download limit per second for all peers together, e.g. 2M")
    p.add_argument("--no-upload", action="store_true",
                   help="serve nothing: no piece server, and the tracker is never told of us")
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
    p.add_argument("--listen", default=None, help="piece server bind address (default all)")
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


def _peer(args: argparse.Namespace, downloading: bool = False) -> Any:
    """The peer of a share or fetch (``downloading``); a fetch gives up reaching the index
    server after ``--timeout`` if it has one, and otherwise retries for ever, like share."""
    return SwarmPeer.open(*args.server, advertise=args.host, listen=args.listen,
                          port=args.port, rate_limit=args.max_upload_rate,
                          download_rate=args.max_download_rate if downloading else None,
                          upload=not (downloading and args.no_upload),
                          give_up=getattr(args, "timeout", None) if downloading else None)


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
    is one we allow, the port is a port, each path is a readable file or a folder of
    readable files. (The server address was parsed with the command line.)

    Raises:
        _Refused: the first argument that is not usable.
    """
    if args.piece_size is not None and \
            not limits.MIN_PIECE_SIZE <= args.piece_size <= limits.MAX_PIECE_SIZE:
        raise _Refused(f"--piece-size must be from {human(limits.MIN_PIECE_SIZE)} to "
                       f"{human(limits.MAX_PIECE_SIZE)}", Exit.USAGE)
    if not 0 <= args.port <= 65535:
        raise _Refused(f"--port {args.port} is not a port", Exit.USAGE)
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


async def share(args: argparse.Namespace) -> int:
    try:
        checked = _check_share(args)
    except _Refused as exc:
        return fail(str(exc), exc.status)
    manifests = []
    for item in checked:
        try:
            with ProgressView(f"hashing {item.path.name}", item.size) as view:
                manifests.append(await asyncio.to_thread(_hash, item, args.piece_size,
                                                         view.advance))
        except (OSError, P2PError) as exc:
            return fail(f"cannot share {item.path}: {exc}", Exit.LOCAL)
    try:
        async with _peer(args) as peer:
            for item, manifest in zip(checked, manifests, strict=True):
                await peer.share(item.path, manifest, item.sources)
                print(f"{manifest.id} {manifest.name}", flush=True)
            log.info("[Swarm] serving %d swarm(s) as %s until interrupted", len(manifests),
                     peer.advertised.shown(peer.served_at[1]))
            await peer.stay_connected()
            return 0
    except (OSError, P2PError) as exc:
        return fail(str(exc), from_error(exc))


# --------------------------------------------------------------------------- fetch
async def fetch(args: argparse.Namespace) -> int:
    if args.seed and args.no_upload:
        return fail("--seed and --no-upload exclude each other", Exit.USAGE)
    try:
        async with _peer(args, downloading=True) as peer:
            return await _fetch(args, peer)
    except Ambiguous as exc:
        _print_files(exc.matches)
        return fail(f"{len(exc.matches)} swarms are named {args.target!r}: give an id", 2)
    except Locked as exc:
        return fail(str(exc), Exit.LOCAL)
    except (OSError, P2PError) as exc:
        return fail(str(exc))


async def _fetch(args: argparse.Namespace, peer: SwarmPeer) -> int:
    job = Fetch(peer, args.out, args.only)
    manifest = await job.resolve(args.target)
    try:
        download = job.prepare(manifest)
        p = download.progress()
        if p.pieces == p.count:
            log.info("[Swarm] %s is already complete", final_path(args.out, manifest))
        with ProgressView(shown(manifest.name), p.size) as view:
            try:
                async with asyncio.TaskGroup() as tg:
                    shower = tg.create_task(_show(view, download))
                    final = await job.run(download)
                    shower.cancel()
            except BaseExceptionGroup as group:
                raise first_error(group) from None
            _refresh(view, download)
    finally:
        job.close()
    print(final, flush=True)
    if args.seed:
        log.info("[Swarm] seeding %s as %s until interrupted", manifest.name,
                 peer.advertised.shown(peer.served_at[1]))
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
        return fail(str(exc))
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
    return {"id": e.swarm, "name": e.name, "kind": e.kind, "files": max(e.files, 1),
            "size": e.size, "piece_size": e.piece_size, "seeders": e.seeders,
            "leechers": e.leechers, "availability": e.copies}


def _print_files(entries: list[FileEntry]) -> None:
    table = Table("name", "size", "files", "id", "seeders", "leechers", "availability")
    for e in entries:
        name = cell(e.name) + ("/" if e.files else "")
        table.add_row(name, human(e.size), str(max(e.files, 1)), e.swarm[:12], str(e.seeders),
                      str(e.leechers), f"{e.copies:.2f}")
    Console(soft_wrap=True).print(table)

