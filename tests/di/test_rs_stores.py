"""One conformance suite for the RS's stores (``registry.store.RegistryStore``): the
in-memory ``Registry`` and the Redis ``SharedRegistry`` against a real redis-server, two RS
nodes of it where a test asks for two (in memory both are the one registry). Then a
differential run (the same random messages give the same answers, cookies aside), an RS
process with ``--store``, and TTLs on Redis's clock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import pytest

from p2pshare.protocol import di
from p2pshare.registry.store import Budgets, Outcome, Page, Refusal, Registry, RegistryStore

from ..aio import HOST, arun
from ..helpers import async_retry
from ..redis_server import redis_server, started


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("redis", reason="the redis client is not installed (the 'redis' extra)")
    with redis_server(tmp_path_factory.mktemp("redis")) as found:
        yield found


class Stores(Protocol):
    def __call__(self, n: int = 1, budgets: Budgets | None = None, ttl: float = 60.0,
                 ) -> AbstractAsyncContextManager[list[RegistryStore]]: ...


@pytest.fixture(params=["memory", "redis"])
def stores(request: pytest.FixtureRequest) -> Stores:
    """``stores(n, budgets, ttl)``: ``n`` RS nodes of one peer list of this kind."""
    prefix = f"t{request.node.name}:"

    @asynccontextmanager
    async def make(n: int = 1, budgets: Budgets | None = None,
                   ttl: float = 60.0) -> AsyncIterator[list[RegistryStore]]:
        if request.param == "memory":
            yield [Registry(ttl=ttl, budgets=budgets)] * n
            return
        from p2pshare.registry.shared import SharedRegistry
        url = request.getfixturevalue("url")
        async with started([SharedRegistry(url, ttl, budgets, prefix=prefix)
                            for _ in range(n)]) as made:
            yield list(made)
    return make


async def register(store: RegistryStore, host: str, port: int, cookie: int | None = None,
                   source: str = "10.0.0.1") -> Outcome:
    return await store.apply(di.Register(host, port, cookie), source)


async def lines(store: RegistryStore, cookie: int | None = None, offset: int = 0) -> list[str]:
    page = await store.apply(di.PQuery("h", cookie, offset=offset))
    assert isinstance(page, Page)
    return page.body.decode().split("\r\n")[:-1]


@arun
async def test_register_keep_alive_leave_across_nodes(stores: Stores) -> None:
    async with stores(2) as (a, b):
        cookie = await register(a, "p1", 1)
        assert isinstance(cookie, int)
        assert await register(b, "p1", 1, cookie) == cookie  # the same cookie again
        assert await b.apply(di.KeepAlive("p1", cookie)) is None
        assert await lines(b) == ["p1 1"]
        assert await a.apply(di.Leave("p1", cookie)) is None
        assert await b.apply(di.KeepAlive("p1", cookie)) is Refusal.INACTIVE
        assert await lines(a) == []
        assert await register(b, "p1", 1, cookie) == cookie  # active again
        assert await lines(a) == ["p1 1"]
        assert await register(a, "p2", 2, 12345) is Refusal.UNKNOWN
        assert await a.apply(di.KeepAlive("p", 12345)) is Refusal.UNKNOWN
        assert await a.apply(di.Leave("p", 12345)) is Refusal.UNKNOWN


@arun
async def test_an_address_belongs_to_its_peer_unless_the_same_source(stores: Stores) -> None:
    async with stores(2) as (a, b):
        first = await register(a, "p", 1, source="10.0.0.1")
        assert isinstance(first, int)
        assert await register(b, "p", 1, source="10.0.0.2") is Refusal.ADDRESS_TAKEN
        again = await register(b, "p", 1, source="10.0.0.1")  # it restarted, cookie lost
        assert isinstance(again, int) and again != first
        assert await a.apply(di.KeepAlive("p", first)) is Refusal.INACTIVE
        assert await lines(b) == ["p 1"]


@arun
async def test_budgets_hold_across_nodes(stores: Stores) -> None:
    async with stores(2, Budgets(max_peers=3, max_per_source=2)) as (a, b):
        one = await register(a, "p1", 1)
        assert isinstance(await register(b, "p2", 2), int)
        assert await register(a, "p3", 3) is Refusal.SOURCE_FULL
        assert isinstance(await register(b, "q1", 1, source="10.0.0.2"), int)
        assert await register(a, "q2", 2, source="10.0.0.3") is Refusal.FULL
        assert isinstance(one, int)
        await b.apply(di.Leave("p1", one))  # an idle record makes room: it is forgotten
        assert isinstance(await register(a, "p3", 3), int)
        assert await a.apply(di.KeepAlive("p1", one)) is Refusal.UNKNOWN


@arun
async def test_pquery_takes_sources_in_turns_leaves_out_the_asker_and_pages(stores: Stores) -> None:
    async with stores(2, Budgets(listed=3)) as (a, b):
        mine = [await register(a, f"a{n}", n + 1, source="10.0.0.1") for n in range(3)]
        await register(b, "b0", 1, source="10.0.0.2")
        assert await lines(b) == ["b0 1", "a2 3", "a1 2"]
        assert await lines(a, offset=3) == ["a0 1"]
        asker = mine[2]
        assert isinstance(asker, int)
        assert await lines(b, asker) == ["b0 1", "a1 2"]  # the asker counts, unlisted
        page = await a.apply(di.PQuery("h", None, offset=0))
        assert isinstance(page, Page) and page.next_offset == 3
        page = await a.apply(di.PQuery("h", None, offset=3))
        assert isinstance(page, Page) and page.next_offset is None


@arun
async def test_a_peer_that_stays_silent_becomes_inactive_after_its_ttl(stores: Stores) -> None:
    async with stores(2, ttl=0.3) as (a, b):
        cookie = await register(a, "p", 1)
        assert isinstance(cookie, int)

        async def expired() -> bool:  # an anonymous PQuery: no contact, no TTL reset
            return await lines(b) == []
        await async_retry(expired, what="the TTL to run out")
        assert await a.apply(di.KeepAlive("p", cookie)) is Refusal.INACTIVE
        assert await register(b, "q", 1, source="10.0.0.9") != Refusal.ADDRESS_TAKEN


def _messages(rng: random.Random, count: int) -> Iterator[tuple[int, str, di.RSRequest]]:
    """Random messages of a few peers (cookies as indexes into those handed out)."""
    for _ in range(count):
        who, source = rng.randrange(6), f"10.0.0.{rng.randrange(3)}"
        roll = rng.random()
        if roll < 0.4:
            yield who, source, di.Register(f"p{rng.randrange(4)}", 1)
        elif roll < 0.55:
            yield who, source, di.KeepAlive("p", 0)
        elif roll < 0.7:
            yield who, source, di.Leave("p", 0)
        else:
            yield who, source, di.PQuery("p", 0 if rng.random() < 0.5 else None,
                                         offset=rng.randrange(3))


async def _play(store: RegistryStore, steps: list[tuple[int, str, di.RSRequest]]
                ) -> list[object]:
    """Each message sent with the cookie peer ``who`` was given (None before); cookies in
    the answers are replaced by who got them, so two stores' answers compare."""
    cookies: dict[int, int] = {}
    seen: list[object] = []
    for who, source, msg in steps:
        mine = cookies.get(who)
        if isinstance(msg, di.Register):
            msg = di.Register(msg.host, msg.port, mine)
        elif isinstance(msg, di.PQuery):
            msg = di.PQuery("p", mine if msg.cookie is not None else None, offset=msg.offset)
        elif mine is not None:
            msg = type(msg)("p", mine)
        else:
            continue
        got = await store.apply(msg, source)
        if isinstance(msg, di.Register) and isinstance(got, int):
            cookies[who] = got
            got = who
        seen.append(got)
    return seen


@arun
async def test_redis_answers_as_memory_does(url: str) -> None:
    from p2pshare.registry.shared import SharedRegistry

    budgets = Budgets(max_peers=5, max_per_source=3, listed=2)
    steps = list(_messages(random.Random(7), 300))
    node = SharedRegistry(url, 60.0, budgets, prefix="diff:")
    await node.start()
    try:
        assert await _play(node, steps) == await _play(Registry(60.0, budgets=budgets), steps)
    finally:
        await node.aclose()


@arun
async def test_two_rs_nodes_on_one_store_serve_one_peer_list(url: str) -> None:
    """``p2pshare rs --store``'s wiring: real RS servers on loopback; a peer registers with
    one, keeps alive and leaves through the other, and another peer sees it on either."""
    from p2pshare.registry.client import RSClient
    from p2pshare.registry.server import RegistrationServer
    from p2pshare.registry.shared import SharedRegistry

    servers = [RegistrationServer(shared=SharedRegistry(url, prefix="rs2:")) for _ in "ab"]
    ports = [(await s.start(HOST, 0))[1] for s in servers]
    try:
        one, other = RSClient(HOST, ports[0]), RSClient(HOST, ports[1])
        assert (await one.register(di.PeerAddr("peer1", 4001))).status == 200
        assert (await other.register(di.PeerAddr("peer2", 4002))).status == 200
        one.port = ports[1]  # the same cookie through the other node
        assert (await one.keep_alive()).status == 200
        _, seen = await other.pquery()
        assert [(p.host, p.port) for p in seen.items] == [("peer1", 4001)]
        assert (await one.leave()).status == 200
        reply, _ = await other.pquery()
        assert reply.status == 404  # no active peer but the asker
    finally:
        for server in servers:
            await server.aclose()
