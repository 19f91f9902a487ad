"""Sub-commands of P2P-DI: rs, di-peer, di-get, di-peers, experiment."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from .. import limits
from ..dipeer.peer import PEER_FAILURES, DIPeer
from ..experiment import plan
from ..host import join_hostport, machine
from ..protocol import di
from ..registry.client import RSClient
from ..registry.server import RegistrationServer
from ..registry.store import Registry
from ._run import fail, note, run, say
from .ci_cmds import address_arg, port_arg
from .exits import from_error


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the P2P-DI sub-commands to ``sub``."""
    p = sub.add_parser("rs", help="run the P2P-DI registration server")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default all)")
    p.add_argument("--port", type=port_arg, default=limits.RS_PORT,
                   help=f"TCP port (default {limits.RS_PORT}; 0: any free port)")
    p.add_argument("--ttl", type=float, default=limits.DI_TTL,
                   help=f"seconds a peer stays active after its last contact "
                        f"(default {limits.DI_TTL:.0f})")
    p.add_argument("--no-messages", action="store_true", help="do not print each message")
    p.set_defaults(func=cmd_rs)

    p = sub.add_parser("di-peer", help="run a P2P-DI peer with an interactive menu")
    _rs_arg(p)
    p.add_argument("--dir", type=Path, required=True, help="folder of rfc<N>.txt files")
    p.add_argument("--port", type=port_arg, default=0,
                   help="RFC server port (0: any free port)")
    p.add_argument("--bind", default="0.0.0.0", help="RFC server address (default all)")
    p.add_argument("--hostname",
                   help="host name to advertise (default: the local address towards the RS)")
    p.add_argument("--no-menu", action="store_true",
                   help="register and serve until SIGINT/SIGTERM, then leave")
    p.add_argument("--no-messages", action="store_true", help="do not print each message")
    p.set_defaults(func=cmd_peer)

    p = sub.add_parser("di-get", help="download one RFC through P2P-DI and exit")
    _rs_arg(p)
    p.add_argument("rfc", type=int)
    p.add_argument("--dir", type=Path, default=Path("."), help="where to save rfc<N>.txt")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("di-peers", help="list the active P2P-DI peers")
    _rs_arg(p)
    p.add_argument("--all", action="store_true",
                   help=f"every active peer, page after page (default: the first page, "
                        f"at most {limits.DI_MAX_PEERS_LISTED}, newest first)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_peers)

    p = sub.add_parser("experiment", help="the P2P-DI handout's Task 1 and Task 2, measured")
    p.add_argument("--out", type=Path, default=Path("out/experiment"),
                   help="folder for the CSVs and PNGs (default out/experiment)")
    p.add_argument("--system", choices=["di", "ci", "both"], default="both",
                   help="P2P-DI, P2P-CI, or both on the same charts (default both)")
    p.add_argument("--peers", type=int, default=6, help="peers (default 6, as the handout)")
    p.add_argument("--per-peer", type=int, default=10,
                   help="RFCs each peer holds in Task 2 (default 10: 60 RFCs in all)")
    p.add_argument("--rfc-dir", type=Path,
                   help="real rfc<N>.txt files to use (the most recent ones); default: "
                        "generated files of realistic sizes")
    p.add_argument("--min-size", type=int, default=plan.MIN_SIZE,
                   help=f"smallest generated file in bytes (default {plan.MIN_SIZE})")
    p.add_argument("--max-size", type=int, default=plan.MAX_SIZE,
                   help=f"largest generated file in bytes (default {plan.MAX_SIZE})")
    p.add_argument("--repeat", type=int, default=1,
                   help="run every case this many times (the plot shows the median run)")
    p.add_argument("--no-plot", action="store_true", help="write the CSVs only")
    p.set_defaults(func=cmd_experiment)


def _rs_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rs", default=f"127.0.0.1:{limits.RS_PORT}", type=address_arg(limits.RS_PORT),
                   help=f"registration server HOST[:PORT] (default 127.0.0.1:{limits.RS_PORT})")




# --------------------------------------------------------------------------- rs
def cmd_rs(args: argparse.Namespace) -> int:
    if not 0 < args.ttl <= limits.DI_MAX_TTL:
        return fail(f"--ttl must be above 0 and at most {limits.DI_MAX_TTL} seconds")
    return run(serve_rs(args), messages_only=True)


async def serve_rs(args: argparse.Namespace) -> int:
    server = RegistrationServer(Registry(ttl=args.ttl), None if args.no_messages else say)
    try:
        host, port = await server.start(args.host, args.port)
    except OSError as exc:
        return fail(f"cannot listen on {join_hostport(args.host, args.port)}: {exc}")
    say(f"[RS] listening on {host} port {port} (TTL {args.ttl:g} s)")
    try:
        await server.serve_forever()
    finally:
        await server.aclose()
    return 0


# --------------------------------------------------------------------------- di-peer
def cmd_peer(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        return fail(f"{args.dir} is not a folder")
    return run(run_peer(args))


async def run_peer(args: argparse.Namespace) -> int:
    from .di_menu import run_menu

    trace = None if args.no_messages else say
    peer = DIPeer(args.rs, args.dir, hostname=args.hostname, bind=args.bind, port=args.port,
                  trace=trace)
    try:
        await peer.start()
        say(f"[Peer] RFC server on port {peer.me.port}, advertising {peer.me.host}:"
            f"{peer.me.port}, {len(peer.index.local())} local RFC(s)")
        reply = await peer.join()  # an RS not up yet: retried with backoff
        if reply.status != 200:  # e.g. 409 Address In Use, 503 over the RS's budgets
            return fail(f"the RS at {join_hostport(*args.rs)} refused to register us: "
                        f"{reply.status} {reply.response.reason}")
        say(f"[Peer] registered with the RS at {join_hostport(*args.rs)}: cookie "
            f"{peer.rs.cookie}, TTL {peer.rs.ttl} s")
        async with asyncio.TaskGroup() as tg:
            keeper = tg.create_task(peer.stay_registered())
            if args.no_menu:
                await peer.server.server.serve_forever()
            else:
                await run_menu(peer)
            keeper.cancel()
    except PEER_FAILURES as exc:
        return fail(str(exc), from_error(exc))
    finally:
        await peer.aclose()
    return 0


# --------------------------------------------------------------------------- one-shot
def cmd_get(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        return fail(f"{args.dir} is not a folder")
    return run(get(args))


async def get(args: argparse.Namespace) -> int:
    """Anonymous PQuery, then the peer download algorithm; nothing is registered."""
    peer = DIPeer(args.rs, args.dir)
    try:
        peer.index_folder()
        result = await peer.get(args.rfc)
    except PEER_FAILURES as exc:
        return fail(str(exc), from_error(exc))
    finally:
        await peer.aclose()
    got = result.fetched
    if result.already_local:
        say(f"RFC {args.rfc} is already in {args.dir}")
        return 0
    if args.json:
        print(json.dumps({"rfc": args.rfc, "path": str(got.path) if got else None,
                          "size": got.size if got else 0, "steps": result.steps}, indent=2))
    elif got is not None:
        say(f"saved {got.path} ({got.size} bytes)")
    if result.local_error is not None:
        return fail(f"RFC {args.rfc}: {result.local_error}")
    if got is None:
        return fail(f"RFC {args.rfc}: no active peer could send it ("
                    + ("; ".join(result.steps) or "no active peers") + ")")
    return 0


def cmd_peers(args: argparse.Namespace) -> int:
    return run(peers(args))


async def peers(args: argparse.Namespace) -> int:
    client = RSClient(*args.rs)
    try:
        reply, found = await (client.pquery_all() if args.all else client.pquery())
        more = None if args.all else di.next_offset(reply.response)
    except PEER_FAILURES as exc:
        return fail(str(exc), from_error(exc))
    if args.json:
        print(json.dumps([{"host": p.host, "port": p.port} for p in found.items], indent=2))
    else:
        say(f"{reply.status} {reply.response.reason}: {len(found.items)} active peer(s)")
        for p in found.items:
            say(f"  {join_hostport(p.host, p.port)}")
    if more is not None:
        note(f"the first page only: more active peers from offset {more}; --all lists them")
    if found.cut:
        note(f"list cut: {found.cut} line(s) beyond {limits.DI_MAX_PEERS_LISTED} a page "
             f"were not read")
    return 0 if reply.status in (200, 404) else 1



# --------------------------------------------------------------------------- experiment
def cmd_experiment(args: argparse.Namespace) -> int:
    if args.peers < 2 or args.per_peer < 1 or args.repeat < 1 \
            or not 0 < args.min_size <= args.max_size:
        return fail("need --peers >= 2, --per-peer >= 1, --repeat >= 1 and "
                    "0 < --min-size <= --max-size")
    return run(experiment(args))


async def experiment(args: argparse.Namespace) -> int:
    import tempfile

    from rich.console import Console

    from ..experiment import report
    from ..experiment.run import SYSTEMS, real_rfcs, run_all, write_sources

    count = args.peers * args.per_peer
    systems = SYSTEMS if args.system == "both" else (args.system,)
    with tempfile.TemporaryDirectory(prefix="p2pshare-experiment-") as tmp:
        if args.rfc_dir is not None:
            try:
                rfcs, sources = real_rfcs(args.rfc_dir, count), args.rfc_dir
            except ValueError as exc:
                return fail(str(exc))
        else:
            rfcs, sources = plan.rfc_numbers(args.peers, args.per_peer), Path(tmp) / "sources"
            write_sources(sources, plan.sample_sizes(rfcs, args.min_size, args.max_size))
        say(f"experiment: {len(systems)} system(s) x 3 cases x {args.repeat} run(s), "
            f"{args.peers} peers, {count} RFCs, {count - args.per_peer} downloads per peer")
        try:
            results = await run_all(systems, list(plan.Case), rfcs, args.peers, sources,
                                    Path(tmp) / "work", args.repeat)
        except (plan.ExperimentError, OSError, TimeoutError) as exc:
            return fail(f"experiment failed: {exc}")
    args.out.mkdir(parents=True, exist_ok=True)
    title = (f"loopback, {args.peers} peers, {count} RFCs"
             + (f", median of {args.repeat} runs" if args.repeat > 1 else "")
             + f"; {machine()}")
    written = report.write_task_files(args.out, results, title, plots=not args.no_plot)
    Console(width=max(110, Console().width)).print(report.summary(results))
    for path in written:
        say(f"wrote {path}")
    return 0
