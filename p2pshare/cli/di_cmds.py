"""Sub-commands of P2P-DI: rs, di-peer, di-get, di-peers, experiment."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from .. import limits
from ..dipeer.peer import PEER_FAILURES, DIGetResult, DIPeer
from ..experiment import plan
from ..host import join_hostport, listen_label, machine
from ..peer import paths
from ..protocol import di
from ..registry.client import RSClient
from ..registry.server import RegistrationServer
from ..registry.store import Registry
from ..store.redis_client import StoreUnreachable
from ._run import fail, lacking, note, run, say, say_json, within
from .di_menu import not_got
from .exits import Exit, from_error
from .options import (
    address_arg,
    advertise_arg,
    listen_arg,
    out_arg,
    port_arg,
    rfc_arg,
    store_arg,
    timeout_arg,
)
from .sites import METRICS_MISSING, STORE_MISSING, http_args, rs_sites


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the P2P-DI sub-commands to ``sub``."""
    p = sub.add_parser("rs", help="run the P2P-DI registration server")
    listen_arg(p, "--host", "--bind")
    p.add_argument("--port", type=port_arg, default=limits.RS_PORT,
                   help="TCP port (default %(default)s; 0: any free port)")
    p.add_argument("--ttl", type=float, default=limits.DI_TTL,
                   help=f"seconds a peer stays active after its last contact "
                        f"(default {limits.DI_TTL:.0f})")
    p.add_argument("--no-messages", action="store_true", help="do not print each message")
    http_args(p, dashboard=False)
    p.add_argument("--store", type=store_arg, default=None, metavar="redis://HOST:PORT/DB",
                   help="keep the peer list in this Redis store, shared with every RS given "
                        "the same one (docs/scale-out.md; default: in this process's memory)")
    p.set_defaults(func=cmd_rs)

    p = sub.add_parser("di-peer", help="run a P2P-DI peer with an interactive menu")
    _rs_arg(p)
    p.add_argument("--dir", type=Path, required=True, help="folder of rfc<N>.txt files to serve")
    p.add_argument("--port", type=port_arg, default=0,
                   help="RFC server port (default 0: any free port)")
    listen_arg(p, "--bind")
    advertise_arg(p, "the local address towards the RS", "--hostname")
    p.add_argument("--no-menu", action="store_true",
                   help="register and serve until SIGINT/SIGTERM, then leave")
    p.add_argument("--no-messages", action="store_true", help="do not print each message")
    p.set_defaults(func=cmd_peer)

    p = sub.add_parser("di-get", help="download one RFC through P2P-DI and exit")
    _rs_arg(p)
    p.add_argument("rfc", type=rfc_arg, metavar="RFC")
    out_arg(p, "folder to save rfc<N>.txt in", Path("."), "--dir")
    timeout_arg(p)
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
    out_arg(p, "folder for the CSVs and PNGs", Path("out/experiment"))
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
                   metavar="HOST[:PORT]", help="registration server (default %(default)s)")




# --------------------------------------------------------------------------- rs
def cmd_rs(args: argparse.Namespace) -> int:
    if not 0 < args.ttl <= limits.DI_MAX_TTL:
        return fail(f"--ttl must be above 0 and at most {limits.DI_MAX_TTL} seconds", Exit.USAGE)
    return run(serve_rs(args), fast_loop=True, serves=True)


async def serve_rs(args: argparse.Namespace) -> int:
    shared = None
    if getattr(args, "store", None) is not None:
        try:
            from ..registry.shared import SharedRegistry
            shared = SharedRegistry(args.store, ttl=args.ttl)
        except ImportError as exc:
            return lacking(exc, "redis", STORE_MISSING)
    server = RegistrationServer(Registry(ttl=args.ttl), None if args.no_messages else say,
                                shared=shared)
    try:
        sites = rs_sites(server, args.metrics_port)
    except ImportError as exc:
        return lacking(exc, "prometheus_client", METRICS_MISSING)
    try:
        host, port = await server.start(args.listen, args.port)
    except OSError as exc:
        return fail(f"cannot listen on {listen_label(args.listen, args.port)}: "
                    f"{exc}", Exit.NETWORK)
    except StoreUnreachable as exc:
        await server.aclose()
        return fail(f"cannot reach {exc}", Exit.NETWORK)
    say(f"[RS] listening on {join_hostport(host, port)} (TTL {args.ttl:g} s)")
    try:
        await sites.start(args.listen)
    except OSError as exc:
        await server.aclose()
        return fail(f"cannot listen for HTTP: {exc}", Exit.NETWORK)
    try:
        await server.serve_forever()
    finally:
        await sites.aclose()
        await server.aclose()
    return Exit.OK


# --------------------------------------------------------------------------- di-peer
def cmd_peer(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        return fail(f"{args.dir} is not a folder", Exit.LOCAL)
    return run(run_peer(args), serves=True)


async def run_peer(args: argparse.Namespace) -> int:
    from .di_menu import run_menu

    trace = None if args.no_messages else say
    peer = DIPeer(args.rs, args.dir, hostname=args.advertise, bind=args.listen,
                  port=args.port, trace=trace)
    try:
        await peer.start()
        say(f"[Peer] RFC server on port {peer.me.port}, advertising "
            f"{peer.advertised.shown(peer.me.port)}, {len(peer.index.local())} local RFC(s)")
        reply = await peer.join()  # an RS not up yet: retried with backoff
        if reply.status != 200:  # e.g. 409 Address In Use, 503 over the RS's budgets
            return fail(f"the RS at {join_hostport(*args.rs)} refused to register us: "
                        f"{reply.status} {reply.response.reason}", Exit.FAILURE)
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
    return Exit.OK


# --------------------------------------------------------------------------- one-shot
def cmd_get(args: argparse.Namespace) -> int:
    if not args.out.is_dir():
        return fail(f"{args.out} is not a folder", Exit.LOCAL)
    return run(within(args.timeout, get(args)))


async def get(args: argparse.Namespace) -> int:
    """Anonymous PQuery, then the peer download algorithm; nothing is registered."""
    peer = DIPeer(args.rs, args.out)
    try:
        peer.index_folder()
        result = await peer.get(args.rfc)
    except PEER_FAILURES as exc:
        return fail(str(exc), from_error(exc))
    finally:
        await peer.aclose()
    got = result.fetched
    if args.json:
        say_json(_get_json(args, result))
    elif result.already_local:
        say(f"RFC {args.rfc} is already in {args.out}")
    elif got is not None:
        say(f"saved {got.path} ({got.size} bytes)")
    if result.already_local:
        return Exit.OK
    if result.local_error is not None:
        return fail(f"RFC {args.rfc}: {result.local_error}", Exit.LOCAL)
    if got is None:
        return fail(f"RFC {args.rfc}: {not_got(result)} ("
                    + ("; ".join(result.steps) or "no active peers") + ")", Exit.NOT_FOUND)
    return Exit.OK


def _get_json(args: argparse.Namespace, result: DIGetResult) -> dict[str, Any]:
    """di-get's JSON (docs/cli.md#json): the shape of get's, with ``steps``."""
    got, path, size = result.fetched, None, 0
    if got is not None:
        path, size = got.path, got.size
    elif result.already_local:
        path = args.out / paths.rfc_filename(args.rfc)
        size = path.stat().st_size
    source = got.source if got else None
    return {"rfc": args.rfc, "path": str(path) if path else None, "size": size,
            "host": source and source.host, "port": source and source.port,
            "already_local": result.already_local, "steps": result.steps}


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
        say_json([{"host": p.host, "port": p.port} for p in found.items])
    else:
        say(f"{reply.status} {reply.response.reason}: {len(found.items)} active peer(s)")
        for p in found.items:
            say(f"  {join_hostport(p.host, p.port)}")
    if more is not None:
        note(f"the first page only: more active peers from offset {more}; --all lists them")
    if found.cut:
        note(f"list cut: {found.cut} line(s) beyond {limits.DI_MAX_PEERS_LISTED} a page "
             f"were not read")
    if reply.status in (200, 404):
        return Exit.OK
    return fail(f"{reply.status} {reply.response.reason}", Exit.FAILURE)



# --------------------------------------------------------------------------- experiment
def cmd_experiment(args: argparse.Namespace) -> int:
    if args.peers < 2 or args.per_peer < 1 or args.repeat < 1 \
            or not 0 < args.min_size <= args.max_size:
        return fail("need --peers >= 2, --per-peer >= 1, --repeat >= 1 and "
                    "0 < --min-size <= --max-size", Exit.USAGE)
    if args.rfc_dir is not None and not args.rfc_dir.is_dir():
        return fail(f"--rfc-dir {args.rfc_dir} is not a folder", Exit.LOCAL)
    if args.out.exists() and not args.out.is_dir():
        return fail(f"--out {args.out} is not a folder", Exit.LOCAL)
    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            return lacking(exc, "matplotlib", "the plots need matplotlib: pip install "
                           "'p2pshare[plot]' (from a checkout: pip install -e '.[plot]'), or "
                           "pass --no-plot for the CSVs only", Exit.USAGE)
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
            except (ValueError, OSError) as exc:
                return fail(str(exc), Exit.LOCAL)
        else:
            rfcs, sources = plan.rfc_numbers(args.peers, args.per_peer), Path(tmp) / "sources"
            write_sources(sources, plan.sample_sizes(rfcs, args.min_size, args.max_size))
        say(f"experiment: {len(systems)} system(s) x 3 cases x {args.repeat} run(s), "
            f"{args.peers} peers, {count} RFCs, {count - args.per_peer} downloads per peer")
        try:
            results = await run_all(systems, list(plan.Case), rfcs, args.peers, sources,
                                    Path(tmp) / "work", args.repeat)
        except (plan.ExperimentError, OSError, TimeoutError) as exc:
            return fail(f"experiment failed: {exc}", from_error(exc))
    args.out.mkdir(parents=True, exist_ok=True)
    loops = "; ".join(sorted({f"{r.system}: {r.loops}" for r in results}))
    title = (f"loopback, {args.peers} peers, {count} RFCs"
             + (f", median of {args.repeat} runs" if args.repeat > 1 else "")
             + f"; {machine()}; event loops {loops}")
    say(f"event loops: {loops}")
    written = report.write_task_files(args.out, results, title, plots=not args.no_plot)
    Console(width=max(110, Console().width)).print(report.summary(results))
    for path in written:
        say(f"wrote {path}")
    return Exit.OK
