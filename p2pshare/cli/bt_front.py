"""``p2pshare server --http-port P --udp-port Q``: the BitTorrent tracker beside the index.

Strategy: the tracker's front ends (``bt.tracker_server``) are started around the index
server's life and closed with it: an ``HttpServer`` carrying ``/announce`` and
``/scrape`` (the same server a dashboard adds its routes to, when one serves that port),
a ``UdpServer`` for BEP 15, and the table's sweep, all owned by one TaskGroup.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ..bt.tracker_server import TrackerService
from ..host import join_hostport
from ..net.udp import UdpServer
from ..web.server import HttpServer
from ._run import say


@contextlib.asynccontextmanager
async def bt_tracker(host: str | None, http_port: int | None, udp_port: int | None,
                     http: HttpServer | None = None) -> AsyncIterator[TrackerService | None]:
    """Serve the tracker on the ports given (none: yields None and serves nothing).

    ``http``: an HTTP server the caller starts itself on ``http_port`` (the dashboard's);
    the routes are added to it, else one is made and started here.

    Raises:
        OSError: a port cannot be bound.
    """
    if http_port is None and udp_port is None:
        yield None
        return
    service = TrackerService()
    async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as tasks:
        if http_port is not None:
            own = http is None
            http = http or HttpServer("tracker")
            service.add_routes(http)
            if own:
                stack.push_async_callback(http.aclose)
                bound = await http.start(host, http_port)
                say(f"[Tracker] HTTP on http://{join_hostport(*bound)}/announce")
        if udp_port is not None:
            udp = UdpServer(service.datagram, "tracker")
            stack.push_async_callback(udp.aclose)
            bound = await udp.start(host, udp_port)
            say(f"[Tracker] UDP on udp://{join_hostport(*bound)}/announce")
        sweeper = tasks.create_task(service.sweep_forever())
        try:
            yield service
        finally:
            sweeper.cancel()
