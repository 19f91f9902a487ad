"""Sub-commands for .torrent files: ``torrent create`` and ``torrent show`` (docs/bittorrent.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import limits
from ..bt.create import Kind, list_sources, make_torrent
from ..errors import LocalProtocolError, RemoteProtocolError
from ..files import write_whole
from ..protocol.metainfo import Torrent, format_magnet, magnet_of, parse_torrent
from ._run import fail, say, say_json
from .exits import Exit, from_error
from .options import size_arg
from .progress import ProgressView


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``torrent`` and its sub-commands to ``sub``."""
    p = sub.add_parser("torrent", help="make or read .torrent files (BitTorrent v1, v2, hybrid)")
    inner = p.add_subparsers(dest="torrent_command", metavar="ACTION", required=True)
    c = inner.add_parser("create", help="hash a file or folder into a .torrent; print its "
                                        "magnet link")
    c.add_argument("path", type=Path, metavar="PATH")
    c.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                   help="where to write it (default: NAME.torrent here)")
    c.add_argument("--tracker", action="append", default=[], metavar="URL",
                   help="announce URL (repeatable: the first is tried first)")
    c.add_argument("--piece-size", type=size_arg, default=None, metavar="SIZE",
                   help="a power of two from 16K to 128M (default: libtorrent's for the size)")
    kinds = c.add_mutually_exclusive_group()
    for kind in Kind:
        kinds.add_argument(f"--{kind.value}", dest="kind", action="store_const", const=kind,
                           help=f"make a {kind.value} torrent" + (" (default)" if
                                                                  kind is Kind.HYBRID else ""))
    c.set_defaults(func=cmd_create, kind=Kind.HYBRID)
    s = inner.add_parser("show", help="print a .torrent's info-hashes, files, piece size and "
                                      "trackers")
    s.add_argument("torrent", type=Path, metavar="FILE.torrent")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_show)


def cmd_create(args: argparse.Namespace) -> int:
    try:
        sources = list_sources(args.path)
        with ProgressView(f"hashing {sources[0].path[0]}" if sources else "hashing",
                          sum(f.size for f in sources), show=not args.quiet) as view:
            data = make_torrent(args.path, kind=args.kind, piece_length=args.piece_size,
                                trackers=tuple(args.tracker), progress=view.advance)
        torrent = parse_torrent(data)
        out = args.output or Path(f"{torrent.name}.torrent")
        write_whole(out.absolute(), data)
    except LocalProtocolError as exc:
        return fail(str(exc), Exit.USAGE)
    except OSError as exc:
        return fail(f"{exc.filename or args.path}: {exc.strerror or exc}", Exit.LOCAL)
    say(format_magnet(magnet_of(torrent)))
    return Exit.OK


def cmd_show(args: argparse.Namespace) -> int:
    try:
        with args.torrent.open("rb") as file:  # no more than a torrent may be (limits)
            torrent = parse_torrent(file.read(limits.MAX_TORRENT_FILE + 1))
    except RemoteProtocolError as exc:
        return fail(f"{args.torrent}: not a usable torrent: {exc}", Exit.FAILURE)
    except OSError as exc:
        return fail(f"{args.torrent}: {exc.strerror or exc}", from_error(exc))
    if args.json:
        say_json(described(torrent))
    else:
        say(torrent_text(torrent))
    return Exit.OK


def described(torrent: Torrent) -> dict[str, Any]:
    """``torrent show --json``: docs/cli.md#json."""
    return {
        "name": torrent.name,
        "v1_info_hash": torrent.v1_hash.hex() if torrent.v1_hash else None,
        "v2_info_hash": torrent.v2_hash.hex() if torrent.v2_hash else None,
        "piece_size": torrent.piece_length,
        "pieces": torrent.num_pieces,
        "size": torrent.total_length,
        "private": torrent.private,
        "files": [{"path": "/".join(f.path), "size": f.length}
                  for f in torrent.files if not f.pad],
        "trackers": [list(tier) for tier in torrent.trackers],
        "magnet": format_magnet(magnet_of(torrent)),
    }


def torrent_text(torrent: Torrent) -> str:
    """``torrent show``: one ``key: value`` line each, then the files and trackers."""
    facts = described(torrent)
    lines = [f"name: {torrent.name}",
             f"v1 info-hash: {facts['v1_info_hash'] or '-'}",
             f"v2 info-hash: {facts['v2_info_hash'] or '-'}",
             f"piece size: {torrent.piece_length} ({torrent.num_pieces} pieces)",
             f"size: {torrent.total_length} bytes in {len(facts['files'])} files",
             f"magnet: {facts['magnet']}",
             "files:", *(f"  {f['size']:>14}  {f['path']}" for f in facts["files"]),
             "trackers:" + ("" if torrent.trackers else " none"),
             *(f"  tier {n}: {' '.join(tier)}" for n, tier in enumerate(torrent.trackers))]
    return "\n".join(lines)
