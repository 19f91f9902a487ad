"""The shared index (``index.shared``) against a real redis-server: ownership across nodes,
newest-first order, budgets across nodes, leases (docs/scale-out.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from p2pshare.errors import OverBudget, StoreError
from p2pshare.index.server import IndexServer
from p2pshare.index.store import IndexBudget

from ..aio import Raw, arun, arun_steady, serving
from ..helpers import async_retry
from ..redis_server import redis_server, started

pytest.importorskip("redis", reason="the redis client is not installed (the 'redis' extra)")

from p2pshare.index.shared import SharedIndex  # noqa: E402


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as found:
        yield found


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of this test's own: tests share one redis-server."""
    return f"t{request.node.name}:"


@asynccontextmanager
async def nodes(url: str, prefix: str, count: int,
                **kw: Any) -> AsyncIterator[list[SharedIndex]]:
    """``count`` nodes of one shared index, each holding its lease."""
    async with started([SharedIndex(url, prefix=prefix, **kw) for _ in range(count)]) as made:
        yield made


@arun
async def test_lookup_sees_every_node_newest_first(url: str, prefix: str) -> None:
    async with nodes(url, prefix, 2) as (a, b):
        await a.add("c1", 1, "One", "h1", 10)
        await b.add("c2", 1, "One", "h2", 20)
        await a.add("c3", 1, "One", "h3", 30)
        assert [r.host for r in await b.lookup(1)] == ["h3", "h2", "h1"]
        await b.add("c2", 1, "One again", "h2", 20)  # re-adding moves it to the front
        found = await a.lookup(1)
        assert [(r.host, r.title) for r in found][0] == ("h2", "One again")
        assert len(found) == 3


@arun
async def test_a_peer_is_changed_only_by_its_connection_on_any_node(url: str,
                                                                   prefix: str) -> None:
    async with nodes(url, prefix, 2) as (a, b):
        await a.add("c1", 1, "One", "h", 10)
        with pytest.raises(StoreError):
            await b.add("c2", 2, "Two", "h", 10)
        with pytest.raises(StoreError):
            await a.add("c9", 2, "Two", "h", 10)
        assert await b.remove("c2", 1, "h", 10) is None
        assert [r.host for r in await b.lookup(1)] == ["h"]
        assert await b.lookup(2) == []


@arun
async def test_a_closed_connection_s_records_go_at_once(url: str, prefix: str) -> None:
    async with nodes(url, prefix, 2) as (a, b):
        await a.add("c1", 1, "One", "h", 10)
        await a.add("c1", 2, "Two", "h", 10)
        assert await a.drop_owner("c1") == 2
        assert await b.lookup(1) == []
        await b.add("c2", 1, "One", "h", 10)  # the host:port is free again
        listed, more = await a.page()
        assert [(r.rfc, r.host) for r in listed] == [(1, "h")] and more == ""


@arun
async def test_list_pages_every_record_newest_first(url: str, prefix: str) -> None:
    async with nodes(url, prefix, 2) as (a, b):
        for rfc in range(1, 8):
            await (a if rfc % 2 else b).add(f"c{rfc % 2}", rfc, f"T{rfc}", f"h{rfc % 2}", 1)
        seen, below = [], "+inf"
        while below:
            page, below = await a.page(below, 3)
            seen += [r.rfc for r in page]
        assert seen == [7, 6, 5, 4, 3, 2, 1]


@arun
async def test_budgets_hold_across_nodes(url: str, prefix: str) -> None:
    budget = IndexBudget(per_connection=10, claims_per_connection=10, per_source=2, in_all=3)
    async with nodes(url, prefix, 2, budget=budget) as (a, b):
        await a.add("c1", 1, "One", "h1", 1, "10.0.0.1")
        await b.add("c2", 2, "Two", "h2", 1, "10.0.0.1")
        with pytest.raises(OverBudget):  # the source's 2 records, counted over both nodes
            await a.add("c3", 3, "Three", "h3", 1, "10.0.0.1")
        await a.add("c4", 4, "Four", "h4", 1, "10.0.0.2")
        with pytest.raises(OverBudget) as everyone:  # 3 records in all, over both nodes
            await b.add("c5", 5, "Five", "h5", 1, "10.0.0.3")
        assert everyone.value.everyone


@arun_steady
async def test_a_dead_node_s_records_expire_within_its_lease(url: str, prefix: str) -> None:
    lease = 2.0
    async with nodes(url, prefix, 2, lease=lease) as (live, dying):
        await live.add("c1", 1, "One", "live", 1)
        await dying.add("c2", 1, "One", "dead", 1)
        assert dying._heart is not None
        dying._heart.cancel()  # the node stops refreshing its lease: it is dead to Redis
        assert [r.host for r in await live.lookup(1)] == ["dead", "live"]
        await async_retry(hosts_are(live, ["live"]), timeout=lease * 3,
                          what="the dead node's record expires")
        with pytest.raises(StoreError):  # and the dead node knows it has no lease
            await dying.add("c2", 2, "Two", "dead", 1)


def hosts_are(node: SharedIndex, hosts: list[str]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return [r.host for r in await node.lookup(1)] == hosts
    return check


SCRIPT = [  # (connection, request): what both stores must answer byte for byte alike
    (0, "ADD RFC 1 P2P-CI/1.0\r\nHost: a\r\nPort: 1\r\nTitle: One\r\n\r\n"),
    (1, "ADD RFC 1 P2P-CI/1.0\r\nHost: b\r\nPort: 2\r\nTitle: One\r\n\r\n"),
    (1, "ADD RFC 2 P2P-CI/1.0\r\nHost: a\r\nPort: 1\r\nTitle: Two\r\n\r\n"),  # not b's
    (0, "ADD RFC 2 P2P-CI/1.0\r\nHost: a\r\nPort: 1\r\nTitle: Two\r\n\r\n"),
    (1, "LOOKUP RFC 1 P2P-CI/1.0\r\nHost: b\r\nPort: 2\r\n\r\n"),
    (0, "LIST ALL P2P-CI/1.0\r\nHost: a\r\nPort: 1\r\n\r\n"),
    (1, "REMOVE RFC 1 P2P-CI/1.0\r\nHost: a\r\nPort: 1\r\n\r\n"),  # not b's
    (0, "REMOVE RFC 1 P2P-CI/1.0\r\nHost: a\r\nPort: 1\r\n\r\n"),
    (1, "LOOKUP RFC 1 P2P-CI/1.0\r\nHost: b\r\nPort: 2\r\n\r\n"),
    (1, "LOOKUP RFC 9 P2P-CI/1.0\r\nHost: b\r\nPort: 2\r\n\r\n"),
    (1, "LIST ALL P2P-CI/1.0\r\nHost: b\r\nPort: 2\r\n\r\n"),
]


async def replies(server: IndexServer) -> list[bytes]:
    async with serving(server) as port:
        conns = [await Raw.connect(port) for _ in range(2)]
        got = []
        for which, request in SCRIPT:
            await conns[which].send(request.encode())
            got.append(await conns[which].reader.readuntil(b"\r\n\r\n"))
        for conn in conns:
            conn.writer.close()
        return got


@arun
async def test_the_shared_store_answers_as_the_memory_one(url: str, prefix: str) -> None:
    shared = SharedIndex(url, prefix=prefix)
    assert await replies(IndexServer(shared=shared)) == await replies(IndexServer())


@arun
async def test_a_lost_lease_closes_connections_and_takes_a_new_one(url: str,
                                                                   prefix: str) -> None:
    async with nodes(url, prefix, 1) as (a,):
        await a.add("c1", 1, "One", "h", 10)
        lost = []
        a.on_lost = lambda: lost.append(True)
        old = a.node
        for key in await a._redis.keys(prefix + "*"):  # what a Redis restart forgets
            await a._redis.delete(key)
        await a._refresh()
        assert lost == [True] and a.node != old
        await a.add("c1", 1, "One", "h", 10)  # a new connection id: registers again
        assert [r.host for r in await a.lookup(1)] == ["h"]


@arun
async def test_a_burst_of_closes_waits_for_the_store_instead_of_failing(url: str,
                                                                       prefix: str) -> None:
    """More drops at once than the client's connections to Redis (a node losing many peers
    together): each waits its turn; none fails, every record goes."""
    async with nodes(url, prefix, 1) as (a,):
        owners = [f"c{n}" for n in range(150)]
        for n, owner in enumerate(owners):
            await a.add(owner, 1, "One", f"h{n}", 1)
        assert sum(await asyncio.gather(*(a.drop_owner(o) for o in owners))) == 150
        assert await a.lookup(1) == []
