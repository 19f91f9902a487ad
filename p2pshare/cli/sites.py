"""The HTTP side of a serving command: ``--http-port`` (the dashboard, and any route
another part adds) and ``--metrics-port`` (Prometheus), one ``HttpServer`` per port.

Strategy: a command builds its protocol server, then asks ``Sites`` for the HTTP server
of each port it was given (the same port given twice is one server with both sets of
routes), adds routes to it, and starts them all beside its own server. Metrics watch the
command's server and every HTTP server (docs/dashboard.md#metrics). The HTTP code is
imported when a port asks for it: a command given none starts sooner.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import limits
from ..host import join_hostport
from ..index.state import index_state
from ._run import say
from .options import port_arg

if TYPE_CHECKING:
    from ..bt.tracker_server import BtTracker
    from ..index.server import IndexServer
    from ..net.runtime import Server
    from ..registry.server import RegistrationServer
    from ..web.dashboard import Snapshot
    from ..web.metrics import Metrics
    from ..web.server import HttpServer

METRICS_MISSING = "--metrics-port needs prometheus_client: pip install 'p2pshare[metrics]'"
STORE_MISSING = "--store needs the redis client: pip install 'p2pshare[redis]'"


HTTP_OPTIONS = {
    "--http-port": "serve the live dashboard (/) and its JSON (/api/state) over HTTP on "
                   "this port (default: none; docs/dashboard.md); a server also serves its "
                   "BitTorrent tracker there (/announce, /scrape)",
    "--metrics-port": "serve Prometheus metrics at /metrics over HTTP on this port "
                      "(default: none; may equal --http-port)",
}


def http_args(p: argparse.ArgumentParser, dashboard: bool) -> None:
    """``--metrics-port``, and ``--http-port`` for a command with a dashboard."""
    for flag, text in HTTP_OPTIONS.items():
        if dashboard or flag == "--metrics-port":
            p.add_argument(flag, type=port_arg, default=None, metavar="PORT", help=text)


class Sites:
    """The HTTP servers of one command, by port."""

    def __init__(self) -> None:
        self.by_port: dict[int, HttpServer] = {}

    def on(self, port: int) -> HttpServer:
        """The HTTP server of ``port`` (made on first use), named ``http`` in logs and
        metrics, the second one ``http-2``."""
        if port not in self.by_port:
            from ..web.server import HttpServer

            count = len(self.by_port)
            self.by_port[port] = HttpServer(f"http-{count + 1}" if count else "http")
        return self.by_port[port]

    def metrics(self, port: int, watched: Server) -> Metrics:
        """Prometheus metrics of ``watched`` and of every HTTP server, at /metrics on
        ``port``; call after every ``on``.

        Raises:
            ImportError: prometheus_client is not installed (``METRICS_MISSING``).
        """
        from ..web.metrics import Metrics

        metrics = Metrics()
        metrics.add_route(self.on(port))
        for server in (watched, *(http.server for http in self.by_port.values())):
            metrics.watch(server)
        return metrics

    async def start(self, host: str | None) -> None:
        """Listen on every port.

        Raises:
            OSError: a port cannot be bound (those started are closed again).
        """
        try:
            for port, http in self.by_port.items():
                bound = await http.start(host, port)
                say(f"[HTTP] {', '.join(sorted(http.routes))} on {join_hostport(*bound)}")
        except OSError:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        for http in self.by_port.values():
            await http.aclose()


def index_sites(server: IndexServer, http_port: int | None, metrics_port: int | None,
                bittorrent: BtTracker | None = None) -> Sites:
    """The dashboard and metrics of an index server (and its tracker), and the routes
    of its BitTorrent tracker, whose swarms the dashboard shows too.

    Raises:
        ImportError: metrics asked for without prometheus_client.
    """
    sites = Sites()
    if http_port is not None:
        from ..web.dashboard import Dashboard

        Dashboard(lambda: server_state(server, bittorrent)).add_routes(sites.on(http_port))
        if bittorrent is not None:
            bittorrent.add_routes(sites.on(http_port))
    if metrics_port is not None:
        metrics = sites.metrics(metrics_port, server.server)
        for name, doc, read in _index_gauges(server):
            metrics.gauge(name, doc, read)
    return sites


async def server_state(server: IndexServer, bittorrent: BtTracker | None) -> Snapshot:
    """What /api/state shows of ``server``, and of ``bittorrent`` (``torrents``).

    Raises:
        P2PError: the shared store could not be read.
    """
    state = await index_state(server, limits.DASHBOARD_ROWS, limits.AVAILABILITY_BUCKETS)
    if bittorrent is not None:
        state["torrents"] = bittorrent.table.dashboard_state(limits.DASHBOARD_ROWS,
                                                             limits.DASHBOARD_MEMBERS)
    return state


def rs_sites(server: RegistrationServer, metrics_port: int | None) -> Sites:
    """The metrics of a registration server.

    Raises:
        ImportError: metrics asked for without prometheus_client.
    """
    sites = Sites()
    if metrics_port is not None:
        registry = server.registry
        sites.metrics(metrics_port, server.server).gauge(
            "di_peers_active", "P2P-DI peers active now", registry.active_count)
    return sites


def _index_gauges(server: IndexServer) -> list[tuple[str, str, Callable[[], float]]]:
    gauges: list[tuple[str, str, Callable[[], float]]] = []
    if server.shared is None:  # the shared store's counts are the whole cluster's: not here
        index = server.index
        gauges += [("records", "Index records held", lambda: len(index)),
                   ("peers", "Peers (host:port) with records", lambda: index.peer_count),
                   ("rfcs", "Distinct RFCs with a holder", lambda: index.rfc_count)]
    tracker = server.tracker
    if tracker is not None:
        gauges += [("swarms", "Swarms with a live member", tracker.swarm_count),
                   ("active_transfers", "Swarm members still fetching (leechers)",
                    tracker.leecher_count)]
    return gauges
