"""The BitTorrent tracker's swarms on the dashboard (/api/state ``torrents``), wired as
``p2pshare server --http-port P`` wires them (``cli.sites.index_sites``), after real HTTP
and UDP announces over real sockets; a reading costs the rows it shows, not the swarms."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Reversible
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from p2pshare.bt.announce import announce
from p2pshare.bt.tracker import SwarmTable, TableLimits
from p2pshare.bt.tracker_server import BtTracker
from p2pshare.cli.sites import index_sites
from p2pshare.index.server import IndexServer
from p2pshare.net.udp import UdpServer
from p2pshare.protocol.bt_tracker import AnnounceRequest

from ..aio import HOST, arun
from ..helpers import async_retry
from .test_dashboard import state

V1 = bytes(range(20))
V2 = bytes(range(100, 132))  # a v2 info-hash: announced, and shown, as its first 20 bytes


@dataclass
class Front:
    http_port: int  # the dashboard's, and the tracker's /announce
    udp: str  # the UDP tracker's URL
    table: SwarmTable

    @property
    def http(self) -> str:
        return f"http://{HOST}:{self.http_port}/announce"


@asynccontextmanager
async def front() -> AsyncIterator[Front]:
    """An index server, its dashboard and BitTorrent tracker on one HTTP port (port 0),
    and the UDP tracker."""
    server, bittorrent = IndexServer(), BtTracker()
    sites = index_sites(server, 0, None, bittorrent)
    udp = UdpServer(bittorrent.datagram, "tracker")
    await sites.start(HOST)
    _, udp_port = await udp.start(HOST, 0)
    try:
        yield Front(sites.on(0).server.address[1], f"udp://{HOST}:{udp_port}/announce",
                    bittorrent.table)
    finally:
        await udp.aclose()
        await sites.aclose()


async def join(url: str, info_hash: bytes, port: int, left: int, event: str) -> None:
    await announce(url, info_hash, b"-PS0001-%012d" % port, port, event, 0, 0, left,
                   timeout=5)


async def torrents_when(port: int, total: int) -> Any:
    """/api/state's ``torrents`` once it counts ``total`` swarms (a reading is kept for
    half a second)."""
    async def attempt() -> Any:
        got = (await state(port))["torrents"]
        return got if got["total"] == total else None

    return await async_retry(attempt, what=f"{total} torrents on the dashboard")


@arun
async def test_http_and_udp_announces_show_and_a_stopped_peer_goes() -> None:
    async with front() as f:
        assert (await state(f.http_port))["torrents"] == {"total": 0, "peers": 0, "rows": []}
        await join(f.http, V1, 6881, 1000, "started")
        await join(f.udp, V2, 6882, 0, "completed")
        got = await torrents_when(f.http_port, 2)
        assert got == {"total": 2, "peers": 2, "rows": [  # the newest swarm first
            {"info_hash": V2[:20].hex(), "seeds": 1, "leeches": 0, "completed": 1,
             "peers": [{"host": HOST, "port": 6882, "seed": True, "left": 0}]},
            {"info_hash": V1.hex(), "seeds": 0, "leeches": 1, "completed": 0,
             "peers": [{"host": HOST, "port": 6881, "seed": False, "left": 1000}]}]}
        await join(f.http, V1, 6881, 1000, "stopped")
        got = await torrents_when(f.http_port, 1)
        assert [row["info_hash"] for row in got["rows"]] == [V2[:20].hex()]


class _ShownOnly(OrderedDict[Any, Any]):
    """A swarm's records that fail the test if more than ``shown`` of them are read."""

    shown = 2

    def values(self) -> Any:
        return _Newest(super().values())


class _Newest:
    def __init__(self, view: Reversible[Any]) -> None:
        self.view = view

    def __reversed__(self) -> Iterator[Any]:
        for i, record in enumerate(reversed(self.view)):
            assert i < _ShownOnly.shown, "the reading walked records it does not show"
            yield record


def test_a_reading_costs_the_rows_it_shows_not_the_swarms() -> None:
    """Counts are kept, so a swarm of 50,000 peers is not walked to show a few of them;
    and the rows are at most ``rows`` swarms, the newest first."""
    table = SwarmTable(TableLimits(per_source=10**6, burst=10**6))
    for n in range(5):
        table.announce(AnnounceRequest(V1, b"p" * 20, 7000 + n, left=n), HOST, 0.0)
    for info_hash in (bytes([1]) * 20, bytes([2]) * 20):
        table.announce(AnnounceRequest(info_hash, b"p" * 20, 7000), HOST, 0.0)
    table.swarms[V1].records = _ShownOnly(table.swarms[V1].records)
    table.swarms[V1] = table.swarms.pop(V1)  # the newest swarm
    got = table.dashboard_state(rows=2, members=_ShownOnly.shown)
    assert (got["total"], got["peers"]) == (3, 7)
    rows: Any = got["rows"]
    assert [row["info_hash"] for row in rows] == [V1.hex(), (bytes([2]) * 20).hex()]
    assert (rows[0]["seeds"], rows[0]["leeches"]) == (1, 4)
    assert [p["left"] for p in rows[0]["peers"]] == [4, 3]  # the most recent first
