"""``p2pshare server --http-port P --udp-port Q``: the BitTorrent tracker beside the index.

Strategy: the tracker's front ends (``bt.tracker_server``) live as long as the index
server: ``/announce`` and ``/scrape`` are routes of the command's HTTP server on
``--http-port`` (the one the dashboard, which shows its swarms, is on: ``Sites``), and
``serving_udp`` runs the UDP tracker (BEP 15) and the table's sweep in one TaskGroup,
closed with the command. The tracker's code is imported only when one of the ports is
given: a bare server starts sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..host import join_hostport
from ._run import say
from .sites import Sites

if TYPE_CHECKING:
    from ..bt.tracker_server import BtTracker


def bt_tracker(http_port: int | None, udp_port: int | None) -> BtTracker | None:
    """The tracker (None: neither port given); ``index_sites`` adds its HTTP routes."""
    if http_port is None and udp_port is None:
        return None
    from ..bt.tracker_server import BtTracker

    return BtTracker()


def say_http(sites: Sites, http_port: int | None) -> None:
    """Print the HTTP announce address, once ``sites`` listen."""
    if http_port is not None:
        bound = sites.on(http_port).server.address
        say(f"[Tracker] HTTP on http://{join_hostport(*bound)}/announce")


@contextlib.asynccontextmanager
async def serving_udp(service: BtTracker | None, host: str | None,
                      udp_port: int | None) -> AsyncIterator[None]:
    """The UDP tracker on ``udp_port`` (if given) and the sweep, while the body runs.

    Raises:
        OSError: the port cannot be bound.
    """
    if service is None:
        yield
        return
    from ..net.udp import UdpServer

    udp = UdpServer(service.datagram, "tracker")
    if udp_port is not None:
        bound = await udp.start(host, udp_port)
        say(f"[Tracker] UDP on udp://{join_hostport(*bound)}/announce")
    try:
        async with asyncio.TaskGroup() as tasks:
            sweeper = tasks.create_task(service.sweep_forever())
            try:
                yield
            finally:
                sweeper.cancel()
    finally:
        await udp.aclose()
