"""The sub-command ``server``: the P2P-CI index server and swarm tracker (docs/cli.md).

Its own module, apart from the P2P-CI peer commands (``ci_cmds``), so that a server, one
process of every swarm, imports no peer, menu or table code at start-up.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..host import listen_label
from ..index.server import IndexServer
from ..store.redis_client import DEFAULT_LEASE, StoreUnreachable
from ..swarm.tracker import Tracker
from ._run import fail, lacking, run
from .bt_front import bt_tracker, say_http, serving_udp
from .exits import Exit
from .options import INDEX_PORT, listen_arg, port_arg, seconds_arg, store_arg
from .sites import METRICS_MISSING, STORE_MISSING, http_args, index_sites


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the sub-command ``server`` to ``sub``."""
    p = sub.add_parser("server", help="run the P2P-CI index server (and swarm tracker)")
    listen_arg(p, "--host", "--bind")
    p.add_argument("--port", type=port_arg, default=INDEX_PORT,
                   help="TCP port (default %(default)s; 0: any free port)")
    p.add_argument("--trust-named-hosts", action="store_true",
                   help="tracker: record the host a peer names, not the address it connects "
                        "from (NAT set-ups and demos)")
    p.add_argument("--store", type=store_arg, default=None, metavar="redis://HOST:PORT/DB",
                   help="keep the index and the swarm tracker in this Redis store, shared "
                        "with every server given the same one (docs/scale-out.md; default: "
                        "in this process's memory)")
    p.add_argument("--lease", type=seconds_arg, default=DEFAULT_LEASE, metavar="SECONDS",
                   help="with --store: how long the records of a server that died outlive "
                        "it (default %(default)s)")
    http_args(p, dashboard=True)
    p.add_argument("--udp-port", type=port_arg, default=None, metavar="PORT",
                   help="serve the BitTorrent UDP tracker (BEP 15) on this port "
                        "(default: none; docs/bittorrent.md#tracker)")
    p.set_defaults(func=cmd_server)


def cmd_server(args: argparse.Namespace) -> int:
    return run(serve_index(args.listen, args.port, args.trust_named_hosts,
                           getattr(args, "store", None), getattr(args, "lease", DEFAULT_LEASE),
                           http=(args.http_port, args.metrics_port),
                           udp_port=getattr(args, "udp_port", None)),
               fast_loop=True, serves=True)


async def serve_index(host: str | None, port: int, trust_named_hosts: bool = False,
                      store: str | None = None, lease: float = DEFAULT_LEASE,
                      http: tuple[int | None, int | None] = (None, None),
                      udp_port: int | None = None) -> int:
    shared = shared_tracker = None
    if store is not None:
        try:
            from ..index.shared import SharedIndex
            from ..swarm.shared import SharedTracker
            shared = SharedIndex(store, lease=lease)
            shared_tracker = SharedTracker(store, lease=lease)
        except ImportError as exc:
            return lacking(exc, "redis", STORE_MISSING)
    server = IndexServer(tracker=Tracker() if store is None else None,
                         trust_named_hosts=trust_named_hosts, shared=shared,
                         shared_tracker=shared_tracker)
    bittorrent = bt_tracker(http[0], udp_port)
    try:
        sites = index_sites(server, *http, bittorrent)
    except ImportError as exc:
        return lacking(exc, "prometheus_client", METRICS_MISSING)
    try:
        await server.start(host, port)
    except OSError as exc:
        return fail(f"cannot listen on {listen_label(host, port)}: {exc}", Exit.NETWORK)
    except StoreUnreachable as exc:
        await server.aclose()
        return fail(f"cannot reach {exc}", Exit.NETWORK)
    try:
        await sites.start(host)
    except OSError as exc:
        await server.aclose()
        return fail(f"cannot listen for HTTP: {exc}", Exit.NETWORK)
    say_http(sites, http[0] if bittorrent else None)
    try:
        async with serving_udp(bittorrent, host, udp_port):
            await server.serve_forever()
    except OSError as exc:
        return fail(f"cannot serve the UDP tracker: {exc}", Exit.NETWORK)
    finally:
        await sites.aclose()
        await server.aclose()
    return Exit.OK

