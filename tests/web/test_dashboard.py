"""The dashboard's JSON (/api/state) from a real index server and tracker over real
sockets: peers, RFCs and swarms appear when they join and go when they leave; rates;
rows bounded; the page itself."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.index.server import IndexServer
from p2pshare.index.state import index_state
from p2pshare.swarm.census import PieceCensus
from p2pshare.swarm.client import TrackerClient
from p2pshare.swarm.pieces import full
from p2pshare.swarm.tracker import Tracker
from p2pshare.web.dashboard import Dashboard, RateBook
from p2pshare.web.page import PAGE
from p2pshare.web.server import HttpServer

from ..aio import HOST, Raw, arun
from ..helpers import async_wait_for
from ..redis_server import redis_server
from ..swarm.test_tracker import manifest

ADD = (b"ADD RFC %d P2P-CI/1.0\r\nHost: %s\r\nPort: %d\r\nTitle: %s\r\n\r\n")


@dataclass
class Site:
    server: IndexServer
    index_port: int
    http_port: int
    clock: list[float]  # the dashboard's clock, the test's to move


@asynccontextmanager
async def dashboard(rows: int = 200) -> AsyncIterator[Site]:
    """An index server with a tracker, and its dashboard on another port."""
    server = IndexServer(tracker=Tracker())
    clock = [0.0]
    http = HttpServer()
    Dashboard(lambda: index_state(server, rows, 8), lambda: clock[0],
              fresh_for=0.0).add_routes(http)
    _, index_port = await server.start(HOST, 0)
    _, http_port = await http.start(HOST, 0)
    try:
        yield Site(server, index_port, http_port, clock)
    finally:
        await http.aclose()
        await server.aclose()


async def state(port: int) -> Any:
    def fetch() -> Any:
        with urllib.request.urlopen(f"http://{HOST}:{port}/api/state", timeout=5) as answer:
            assert answer.headers["Content-Type"] == "application/json"
            return json.load(answer)

    return await asyncio.to_thread(fetch)


@arun
async def test_peers_and_rfcs_join_and_leave() -> None:
    async with dashboard() as site:
        empty = await state(site.http_port)
        assert empty["version"] == 1 and empty["peers"] == {"total": 0, "rows": []}
        peer = await Raw.connect(site.index_port)
        await peer.send(ADD % (123, b"h1", 5000, b"A <b>title</b>") +
                        ADD % (7, b"h1", 5000, b"Seven"))
        await async_wait_for(lambda: len(site.server.index) == 2)
        got = await state(site.http_port)
        assert got["peers"] == {"total": 1, "rows": [{"host": "h1", "port": 5000,
                                                       "records": 2}]}
        assert got["rfcs"]["total"] == 2 and got["rfcs"]["records"] == 2
        assert got["rfcs"]["rows"] == [
            {"rfc": 7, "title": "Seven", "holders": ["h1:5000"]},
            {"rfc": 123, "title": "A <b>title</b>", "holders": ["h1:5000"]}]
        assert got["connections"] == 1
        await peer.close()
        await async_wait_for(lambda: len(site.server.index) == 0)
        got = await state(site.http_port)
        assert got["peers"]["total"] == 0 and got["rfcs"]["rows"] == []


@arun
async def test_swarms_with_availability_and_rates() -> None:
    async with dashboard() as site:
        m = manifest()  # five pieces of 16 KiB
        seed = await TrackerClient.connect(HOST, site.index_port)
        await seed.announce(m, "seedhost", 4000)
        await seed.have(m.id, full(m.count))
        leech = await TrackerClient.connect(HOST, site.index_port)
        await leech.announce(m, "leech", 4001)
        await leech.have(m.id, 0b00011)
        first = await state(site.http_port)
        (row,) = first["swarms"]["rows"]
        assert first["swarms"]["total"] == 1
        assert (row["id"], row["name"], row["pieces"], row["seeders"], row["leechers"]) == (
            m.id, "f.bin", 5, 1, 1)
        assert row["availability"] == [2, 2, 1, 1, 1] and row["held"] == 7
        assert sorted(p["have"] for p in row["peers"]) == [2, 5]
        assert row["rate"] == 0  # one reading: no rate yet
        await leech.have(m.id, 0b01111)  # two more pieces, in two (dashboard) seconds
        site.clock[0] = 2.0
        (row,) = (await state(site.http_port))["swarms"]["rows"]
        assert row["rate"] == 16384
        assert {p["port"]: p["rate"] for p in row["peers"]} == {4000: 0, 4001: 16384}
        await seed.aclose()
        await leech.aclose()
        tracker = site.server.tracker
        assert tracker is not None
        await async_wait_for(lambda: not tracker.swarm_count())
        assert (await state(site.http_port))["swarms"] == {"total": 0, "rows": []}


def test_rate_book() -> None:
    book = RateBook(window=1.0)
    assert book.update({"a": 0.0}, 10.0) == {"a": 0.0}
    assert book.update({"a": 500.0}, 10.5) == {"a": 0.0}  # under the window: not yet
    assert book.update({"a": 1000.0}, 11.0) == {"a": 1000.0}
    assert book.update({"a": 1000.0, "b": 5.0}, 12.0) == {"a": 0.0, "b": 0.0}
    assert book.update({"b": 1.0}, 13.0) == {"b": 0.0}  # went down: measured afresh
    assert book.update({}, 14.0) == {}


@given(st.integers(1, 300), st.integers(1, 130), st.lists(st.integers(0, 2**300 - 1),
                                                          max_size=5))
@settings(max_examples=200, deadline=None)
def test_census_slices_are_the_least_held_piece_of_each_run(count: int, buckets: int,
                                                            masks: list[int]) -> None:
    census = PieceCensus(count)
    for mask in masks:
        census.add(mask & full(count))
    held = [census.of(i) for i in range(count)]
    slices = census.slices(buckets)
    assert len(slices) == min(buckets, count)
    assert min(slices) == min(held) and max(slices) <= max(held)
    assert census.held == sum(held)
    if buckets >= count:
        assert slices == held


@arun
async def test_rows_are_bounded() -> None:
    async with dashboard(rows=3) as site:
        peer = await Raw.connect(site.index_port)
        await peer.send(b"".join(ADD % (n, b"h", 1, b"t") for n in range(1, 11)))
        await async_wait_for(lambda: len(site.server.index) == 10)
        got = await state(site.http_port)
        assert got["rfcs"]["total"] == 10 and len(got["rfcs"]["rows"]) == 3
        assert [r["rfc"] for r in got["rfcs"]["rows"]] == [10, 9, 8]  # newest first
        await peer.close()


def test_the_page_is_self_contained() -> None:
    """No script, style or font from elsewhere; network text only through textContent."""
    text = PAGE.decode()
    assert "http://" not in text and "https://" not in text and "//cdn" not in text
    assert "innerHTML" not in text and "insertAdjacentHTML" not in text
    assert 'fetch("api/state"' in text


@arun
async def test_on_a_shared_store_the_rows_come_from_it(tmp_path: Path) -> None:
    """With --store the RFC, peer and swarm rows are the store's (another node's peers
    included); the index's totals are not known (null), the swarms' are."""
    from p2pshare.index.shared import SharedIndex
    from p2pshare.swarm.shared import SharedTracker

    with redis_server(tmp_path) as url:
        one, other = (IndexServer(shared=SharedIndex(url, lease=5),
                                  shared_tracker=SharedTracker(url, lease=5))
                      for _ in range(2))
        _, port_one = await one.start(HOST, 0)
        _, port_other = await other.start(HOST, 0)
        try:
            peer = await Raw.connect(port_other)  # peers of the other node
            await peer.expect(ADD % (9, b"far", 7, b"Far away"), b"P2P-CI/1.0 200 OK")
            m = manifest()
            seed = await TrackerClient.connect(HOST, port_other)
            await seed.announce(m, "seedhost", 4000)
            await seed.have(m.id, 0b10111)
            got = await index_state(one, 10, 8)
            assert got["peers"] == {"total": None,
                                    "rows": [{"host": "far", "port": 7, "records": 1}]}
            assert got["rfcs"] == {"total": None, "records": None, "rows": [
                {"rfc": 9, "title": "Far away", "holders": ["far:7"]}]}
            (row,) = got["swarms"]["rows"]  # type: ignore[index]
            assert got["swarms"]["total"] == 1  # type: ignore[index]
            assert (row["id"], row["pieces"], row["held"], row["availability"]) == (
                m.id, 5, 4, [1, 1, 1, 0, 1])
            assert row["peers"] == [{"host": HOST, "port": 4000, "have": 4}]
            await seed.aclose()
            await peer.close()
        finally:
            await other.aclose()
            await one.aclose()


class _ShownOnly(dict[object, Any]):
    """A swarm's members that fail the test if more than ``shown`` of them are read."""

    shown = 2

    def values(self) -> Any:
        for i, member in enumerate(super().values()):
            assert i < self.shown, "the row read a member it does not show"
            yield member


@arun
async def test_a_swarm_row_costs_the_members_it_shows_not_every_member() -> None:
    """A browser polling /api/state each second must cost O(rows): a swarm of ten
    thousand members must not be walked whole to show ``rows`` of them (the held count
    for rates comes from the census, kept as pieces are reported)."""
    async with dashboard(rows=_ShownOnly.shown) as site:
        m = manifest()
        clients = [await TrackerClient.connect(HOST, site.index_port) for _ in range(4)]
        for port, client in enumerate(clients, 4000):
            await client.announce(m, "h", port)
            await client.have(m.id, 0b00011)
        tracker = site.server.tracker
        assert isinstance(tracker, Tracker)
        swarm = tracker.swarms[m.id]
        swarm.members = _ShownOnly(swarm.members)
        (row,) = (await state(site.http_port))["swarms"]["rows"]
        assert row["held"] == 8 and len(row["peers"]) == 2
        for client in clients:
            await client.aclose()


@arun
async def test_a_flood_of_state_requests_reads_the_state_once_per_period() -> None:
    """Many clients pipelining /api/state (each read O(rows), up to a few hundred ms with
    big swarms) must not stall the loop the index server shares: the state is read at
    most once per ``fresh_for`` of the dashboard's clock, whoever asks."""
    reads, clock = [0], [0.0]

    async def source() -> dict[str, Any]:
        reads[0] += 1
        await asyncio.sleep(0)  # a turn of the loop, as a shared store's read takes
        return {"peers": {"total": reads[0], "rows": []}}

    http = HttpServer()
    Dashboard(source, lambda: clock[0], fresh_for=0.5).add_routes(http)
    _, port = await http.start(HOST, 0)
    try:
        ask = b"GET /api/state HTTP/1.1\r\nHost: x\r\n\r\n"
        raws = [await Raw.connect(port) for _ in range(3)]
        await asyncio.gather(*(raw.send(ask * 5) for raw in raws))
        await asyncio.gather(*(raw.send(ask[:-2] + b"Connection: close\r\n\r\n")
                               for raw in raws))
        answers = await asyncio.gather(*(raw.finish() for raw in raws))
        assert all(a.count(b"HTTP/1.1 200 ") == 6 for a in answers), answers
        assert reads[0] == 1 and all(b'"total":1' in a for a in answers)
        clock[0] = 0.5
        assert (await state(port))["peers"]["total"] == 2
    finally:
        await http.aclose()


@arun
async def test_on_a_shared_store_a_swarm_row_reads_the_members_it_shows(
        tmp_path: Path) -> None:
    """On Redis too a reading costs O(rows): a swarm's members are not all fetched (no
    HGETALL of its member hash, which blocks Redis for every node for as long as a swarm
    of ten thousand members takes); held and availability come from Redis's census."""
    import redis.asyncio as aioredis

    from p2pshare.swarm.shared import SharedTracker

    with redis_server(tmp_path) as url:
        server = IndexServer(shared_tracker=SharedTracker(url, lease=5))
        _, port = await server.start(HOST, 0)
        client = aioredis.from_url(url)
        try:
            m = manifest()
            peers = [await TrackerClient.connect(HOST, port) for _ in range(4)]
            for number, peer in enumerate(peers, 4000):
                await peer.announce(m, "h", number)
                await peer.have(m.id, 0b00011 if number % 2 else 0b10001)
            before = (await client.info("commandstats")).get("cmdstat_hgetall", {})
            got = await index_state(server, 2, 8)
            after = (await client.info("commandstats")).get("cmdstat_hgetall", {})
            assert after == before
            (row,) = got["swarms"]["rows"]  # type: ignore[index]
            assert (row["held"], row["availability"], len(row["peers"])) == (
                8, [4, 2, 0, 0, 2], 2)
            for peer in peers:
                await peer.aclose()
        finally:
            await client.aclose()
            await server.aclose()


@arun
async def test_a_reading_lists_a_few_members_of_each_swarm() -> None:
    """Rows of swarms times rows of members each (200 x 200: 40,000 entries, 2.2 MB and
    360 ms of the loop per reading) is not O(rows): each swarm lists at most
    DASHBOARD_MEMBERS of its members."""
    async with dashboard() as site:
        m = manifest()
        clients = [await TrackerClient.connect(HOST, site.index_port)
                   for _ in range(limits.DASHBOARD_MEMBERS + 1)]
        for port, client in enumerate(clients, 4000):
            await client.announce(m, "h", port)
        (row,) = (await state(site.http_port))["swarms"]["rows"]
        assert len(row["peers"]) == limits.DASHBOARD_MEMBERS
        for client in clients:
            await client.aclose()


def test_the_census_read_from_redis_is_one_count_per_piece() -> None:
    """BITFIELD u32 counts are big-endian, and pieces no member ever held lie past the
    end of the string: they count 0."""
    from array import array

    from p2pshare.swarm.shared import _counts

    assert _counts(b"\x00\x00\x00\x02\x00\x00\x01\x00", 4) == array("I", [2, 256, 0, 0])
    assert _counts(b"", 2) == array("I", [0, 0])
