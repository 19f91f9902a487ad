"""Sub-commands of P2P-CI: server, peer, list, lookup, get, demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..errors import P2PError
from ..host import host_name, join_hostport, parse_port, split_hostport
from ..index.server import IndexServer
from ..peer.client import IndexClient, download
from ..peer.node import Peer
from ..protocol.ci import Record
from . import menu
from ._run import fail, run, say
from .exits import from_error
from .text import cell

log = logging.getLogger(__name__)
INDEX_PORT = 7734  # the handout's well-known port (docs/p2p-ci.md#well-known-port)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the P2P-CI sub-commands to ``sub``."""
    p = sub.add_parser("server", help="run the P2P-CI index server (and swarm tracker)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default all)")
    p.add_argument("--port", type=port_arg, default=INDEX_PORT, help="TCP port (default 7734)")
    p.add_argument("--trust-named-hosts", action="store_true",
                   help="tracker: record the host a peer names, not the address it connects "
                        "from (NAT set-ups and demos)")
    p.set_defaults(func=cmd_server)

    p = sub.add_parser("peer", help="run a P2P-CI peer with an interactive menu")
    _server_arg(p)
    p.add_argument("--dir", type=Path, required=True, help="folder of rfc<N>.txt files")
    p.add_argument("--upload-port", type=port_arg, default=0,
                   help="upload port (0: any free port)")
    p.add_argument("--hostname", help="host name to advertise (default: this host's name)")
    p.add_argument("--no-menu", action="store_true", help="serve until SIGINT/SIGTERM")
    p.set_defaults(func=cmd_peer)

    for name, helptext in (("list", "print the whole index"), ("lookup", "who has an RFC")):
        p = sub.add_parser(name, help=helptext)
        _server_arg(p)
        if name == "lookup":
            p.add_argument("rfc", type=int)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=cmd_query)

    p = sub.add_parser("get", help="download an RFC from a peer that has it")
    _server_arg(p)
    p.add_argument("rfc", type=int)
    p.add_argument("--dir", type=Path, default=Path("."), help="where to save rfc<N>.txt")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("demo", help="run the handout's demo on this machine")
    p.add_argument("--dir", type=Path, help="keep the demo's files here (default: temporary)")
    p.set_defaults(func=cmd_demo)


def _server_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=f"127.0.0.1:{INDEX_PORT}", type=address_arg(INDEX_PORT),
                   help="index server HOST[:PORT] (default 127.0.0.1:7734)")


def address_arg(default_port: int) -> Callable[[str], tuple[str, int]]:
    """An argparse type for ``HOST[:PORT]`` (``[v6]:PORT`` too) with ``default_port``."""
    def address(text: str) -> tuple[str, int]:
        try:
            return split_hostport(text, default_port)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not HOST[:PORT]: {text!r}") from None
    return address


def port_arg(text: str) -> int:
    """A TCP port number, 0 to 65535 (0: any free port)."""
    try:
        return parse_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --------------------------------------------------------------------------- server
def cmd_server(args: argparse.Namespace) -> int:
    return run(serve_index(args.host, args.port, args.trust_named_hosts), messages_only=True)


async def serve_index(host: str, port: int, trust_named_hosts: bool = False) -> int:
    server = IndexServer(tracker=_tracker(), trust_named_hosts=trust_named_hosts)
    try:
        await server.start(host, port)
    except OSError as exc:
        return fail(f"cannot listen on {join_hostport(host, port)}: {exc}")
    try:
        await server.serve_forever()
    finally:
        await server.aclose()
    return 0


def _tracker() -> Any:
    try:
        from ..swarm.tracker import Tracker
    except ImportError:
        return None
    return Tracker()


# --------------------------------------------------------------------------- peer
def cmd_peer(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        return fail(f"{args.dir} is not a folder")
    return run(run_peer(args))


async def run_peer(args: argparse.Namespace) -> int:
    printer = None if args.no_menu else menu.print_wire
    peer = Peer(args.dir, args.server, hostname=args.hostname,
                upload_port=args.upload_port, printer=printer)
    try:
        await peer.start(wait=True)  # an index server not up yet: stay_connected retries
    except (P2PError, OSError) as exc:
        await peer.aclose()
        return fail(str(exc), from_error(exc))
    print(f"[Peer] upload server on port {peer.upload_port}; advertising "
          f"{join_hostport(peer.hostname, peer.upload_port)}", flush=True)
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
    return 0


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
        print(json.dumps([_record_json(r) for r in reply.records], indent=2))
    else:
        _print_records(reply.records, f"{reply.status} {reply.reason}")
    return 0 if reply.ok else fail(f"{reply.status} {reply.reason}")


def cmd_get(args: argparse.Namespace) -> int:
    _quiet_unless_verbose(args)
    if not args.dir.is_dir():
        return fail(f"{args.dir} is not a folder")
    return run(get(args))


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
        return fail(f"RFC {args.rfc}: {found.status} {found.reason}")
    result = await download(args.dir, args.rfc, found.records)
    attempts = [{"peer": join_hostport(r.host, r.port), "outcome": o}
                for r, o in result.attempts]
    if args.json:
        print(json.dumps({"rfc": args.rfc, "path": str(result.path) if result.path else None,
                          "size": result.size, "attempts": attempts}, indent=2))
    elif result.path is not None:
        say(f"saved {result.path} ({result.size} bytes) from {attempts[-1]['peer']}")
    if result.local_error is not None:
        return fail(f"RFC {args.rfc}: {result.local_error}")
    if result.path is None:
        tried = "; ".join(f"{a['peer']}: {a['outcome']}" for a in attempts)
        return fail(f"RFC {args.rfc}: no holder could send it ({tried})")
    return 0


def _quiet_unless_verbose(args: argparse.Namespace) -> None:
    """A one-shot command prints its result and, on failure, one line: no INFO log."""
    if not args.verbose:
        level = max(logging.WARNING, logging.getLogger().level)
        logging.getLogger("p2pshare").setLevel(level)


def _record_json(r: Record) -> dict[str, Any]:
    return {"rfc": r.rfc, "title": r.title, "host": r.host, "port": r.port}


def _print_records(records: list[Record], status: str) -> None:
    table = Table(title=cell(f"{status}: {len(records)} record(s)"))
    for column in ("RFC", "Title", "Host", "Port"):
        table.add_column(column)
    for r in records:
        table.add_row(str(r.rfc), cell(r.title), cell(r.host), str(r.port))
    Console().print(table)


# --------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    with contextlib.ExitStack() as stack:
        folder = args.dir
        if folder is None:
            import tempfile

            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="p2pshare-")))
        return run(run_demo(folder))
