"""Sub-commands of P2P-CI: peer, list, lookup, get, demo (``server``: ``server_cmds``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from ..errors import P2PError
from ..host import host_name, join_hostport
from ..peer.client import IndexClient, download
from ..peer.node import Peer
from ..protocol.ci import Record
from . import menu
from ._run import fail, run, say, say_json, within
from .exits import Exit, from_error
from .options import (
    INDEX_PORT,
    address_arg,
    addresses_arg,
    advertise_arg,
    alias,
    listen_arg,
    out_arg,
    port_arg,
    rfc_arg,
    timeout_arg,
)
from .text import cell

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the P2P-CI sub-commands to ``sub``."""
    p = sub.add_parser("peer", help="run a P2P-CI peer with an interactive menu")
    p.add_argument("--server", default=f"127.0.0.1:{INDEX_PORT}",
                   type=addresses_arg(INDEX_PORT), metavar="HOST[:PORT][,HOST[:PORT]...]",
                   help="index server, or several serving one index: on loss the peer moves "
                        "to the next (default %(default)s)")
    p.add_argument("--dir", type=Path, required=True, help="folder of rfc<N>.txt files to serve")
    p.add_argument("--port", type=port_arg, default=0,
                   help="upload server port (default 0: any free port)")
    alias(p, "port", "--upload-port")
    listen_arg(p, "--bind")
    advertise_arg(p, "our address on the connection to the index server", "--hostname")
    p.add_argument("--no-menu", action="store_true", help="serve until SIGINT/SIGTERM")
    p.set_defaults(func=cmd_peer)

    for name, helptext in (("list", "print the whole index"), ("lookup", "who has an RFC")):
        p = sub.add_parser(name, help=helptext)
        _server_arg(p)
        if name == "lookup":
            p.add_argument("rfc", type=rfc_arg, metavar="RFC")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=cmd_query)

    p = sub.add_parser("get", help="download an RFC from a peer that has it")
    _server_arg(p)
    p.add_argument("rfc", type=rfc_arg, metavar="RFC")
    out_arg(p, "folder to save rfc<N>.txt in", Path("."), "--dir")
    timeout_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("demo", help="run the handout's demo on this machine")
    out_arg(p, "keep the demo's files in this folder (default: a temporary one)", None,
            "--dir")
    p.add_argument("--listen", default="127.0.0.1", metavar="HOST",
                   help="the address the demo's server and peers listen on (default "
                        "%(default)s; ::1 runs the demo over IPv6)")
    p.set_defaults(func=cmd_demo)


def _server_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=f"127.0.0.1:{INDEX_PORT}", type=address_arg(INDEX_PORT),
                   metavar="HOST[:PORT]", help="index server (default %(default)s)")


# --------------------------------------------------------------------------- peer
def cmd_peer(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        return fail(f"{args.dir} is not a folder", Exit.LOCAL)
    return run(run_peer(args), serves=True)


async def run_peer(args: argparse.Namespace) -> int:
    printer = None if args.no_menu else menu.print_wire
    peer = Peer(args.dir, args.server, hostname=args.advertise, upload_port=args.port,
                upload_host=args.listen, printer=printer)
    try:
        await peer.start(wait=True)  # an index server not up yet: stay_connected retries
    except (P2PError, OSError) as exc:
        await peer.aclose()
        return fail(str(exc), from_error(exc))
    print(f"[Peer] upload server on port {peer.upload_port}; advertising "
          f"{peer.advertised.shown(peer.upload_port)}", flush=True)
    try:
        async with asyncio.TaskGroup() as tg:
            keeper = tg.create_task(peer.stay_connected())
            if args.no_menu:
                await peer.upload.server.serve_forever()
            else:
                await menu.run_menu(peer)
            keeper.cancel()
    finally:
        await peer.aclose()
    return Exit.OK


# --------------------------------------------------------------------------- one-shot
def cmd_query(args: argparse.Namespace) -> int:
    _quiet_unless_verbose(args)
    return run(query(args))


async def query(args: argparse.Namespace) -> int:
    client = IndexClient(args.server[0], args.server[1], host_name(), 0)
    try:
        await client.connect()
        reply = await (client.lookup(args.rfc) if args.command == "lookup"
                       else client.list_all())
    except (P2PError, OSError) as exc:
        return fail(str(exc), from_error(exc))
    finally:
        await client.aclose()
    if args.json:
        say_json([_record_json(r) for r in reply.records])
    elif reply.ok:  # a failure is its line on stderr, not an empty table on stdout
        _print_records(reply.records, f"{reply.status} {reply.reason}")
    if reply.ok:
        return Exit.OK
    what = f"RFC {args.rfc}: " if args.command == "lookup" else ""
    return fail(f"{what}{reply.status} {reply.reason}", _status_exit(reply.status))


def _status_exit(status: int) -> Exit:
    """The exit status for a server's answer other than 200 OK."""
    return Exit.NOT_FOUND if status == 404 else Exit.FAILURE


def cmd_get(args: argparse.Namespace) -> int:
    _quiet_unless_verbose(args)
    if not args.out.is_dir():
        return fail(f"{args.out} is not a folder", Exit.LOCAL)
    return run(within(args.timeout, get(args)))


async def get(args: argparse.Namespace) -> int:
    client = IndexClient(args.server[0], args.server[1], host_name(), 0)
    try:
        await client.connect()
        found = await client.lookup(args.rfc)
    except (P2PError, OSError) as exc:
        return fail(str(exc), from_error(exc))
    finally:
        await client.aclose()
    if not found.ok:
        if args.json:  # the same shape as every other outcome: nothing saved, nobody tried
            say_json(_get_json(args.rfc, None, 0, []))
        return fail(f"RFC {args.rfc}: {found.status} {found.reason}", _status_exit(found.status))
    result = await download(args.out, args.rfc, found.records)
    attempts = [{"peer": join_hostport(r.host, r.port), "host": r.host, "port": r.port,
                 "outcome": o} for r, o in result.attempts]
    source = attempts[-1] if result.path is not None else None
    if args.json:
        say_json(_get_json(args.rfc, result.path, result.size, attempts))
    elif source is not None:
        say(f"saved {result.path} ({result.size} bytes) from {source['peer']}")
    if result.local_error is not None:
        return fail(f"RFC {args.rfc}: {result.local_error}", Exit.LOCAL)
    if result.path is None:
        tried = "; ".join(f"{a['peer']}: {a['outcome']}" for a in attempts)
        return fail(f"RFC {args.rfc}: no holder could send it ({tried})", Exit.NETWORK)
    return Exit.OK


def _get_json(rfc: int, path: Path | None, size: int,
              attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """get's JSON (docs/cli.md#json): the holder that sent it is the last attempt."""
    source = attempts[-1] if path is not None else None
    return {"rfc": rfc, "path": str(path) if path else None, "size": size,
            "host": source and source["host"], "port": source and source["port"],
            "attempts": attempts}


def _quiet_unless_verbose(args: argparse.Namespace) -> None:
    """A one-shot command prints its result and, on failure, one line: no INFO log."""
    if not args.verbose:
        level = max(logging.WARNING, logging.getLogger().level)
        logging.getLogger("p2pshare").setLevel(level)


def _record_json(r: Record) -> dict[str, Any]:
    return {"rfc": r.rfc, "title": r.title, "host": r.host, "port": r.port}


def _print_records(records: list[Record], status: str) -> None:
    from rich.console import Console  # rich only here: the server and peer start faster
    from rich.table import Table

    table = Table(title=cell(f"{status}: {len(records)} record(s)"))
    for column in ("RFC", "Title", "Host", "Port"):
        table.add_column(column)
    for r in records:
        table.add_row(str(r.rfc), cell(r.title), cell(r.host), str(r.port))
    Console().print(table)


# --------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.out is not None and args.out.exists() and not args.out.is_dir():
        return fail(f"{args.out} is not a folder", Exit.LOCAL)
    with contextlib.ExitStack() as stack:
        folder = args.out
        if folder is None:
            import tempfile

            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="p2pshare-")))
        return run(run_demo(folder, args.listen))
