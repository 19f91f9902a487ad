"""One conformance suite for the tracker's stores (``swarm.tracker.TrackerStore``): the
in-memory ``Tracker`` and the Redis ``SharedTracker`` against a real redis-server, two nodes
of it where a test asks for two (in memory both are the one tracker). Then a differential
run: the same random requests to both stores give the same answers; and the Redis lease."""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import pytest

from p2pshare import limits
from p2pshare.protocol import swarm as sp
from p2pshare.swarm.client import TrackerClient
from p2pshare.swarm.ledger import TrackerBudget
from p2pshare.swarm.pieces import full
from p2pshare.swarm.tracker import Tracker, TrackerStore

from ..aio import HOST, arun
from ..helpers import async_retry
from ..redis_server import redis_server, started
from .test_tracker import DATA, manifest

KINDS = ["memory", "redis"]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("redis", reason="the redis client is not installed (the 'redis' extra)")
    with redis_server(tmp_path_factory.mktemp("redis")) as found:
        yield found


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Stores(Protocol):
    def __call__(self, n: int = 1, budget: TrackerBudget | None = None, lease: float = 30.0,
                 ) -> AbstractAsyncContextManager[list[TrackerStore]]: ...


@pytest.fixture
def stores(kind: str, request: pytest.FixtureRequest) -> Stores:
    """``stores(n, budget)``: ``n`` nodes of one tracker of this kind."""
    prefix = f"t{request.node.name}:"

    @asynccontextmanager
    async def make(n: int = 1, budget: TrackerBudget | None = None,
                   lease: float = 30.0) -> AsyncIterator[list[TrackerStore]]:
        if kind == "memory":
            yield [Tracker(budget=budget)] * n
            return
        from p2pshare.swarm.shared import SharedTracker
        url = request.getfixturevalue("url")
        async with started([SharedTracker(url, prefix=prefix, budget=budget, lease=lease)
                            for _ in range(n)]) as made:
            yield list(made)
    return make


async def ask(store: TrackerStore, owner: str, msg: sp.SwarmRequest,
              source: str = "") -> tuple[int, bytes]:
    """``owner`` names a connection: interned, since ``Tracker`` compares owners by
    identity (a server's are its links)."""
    request, body = sp.to_request(msg)
    response, payload = await store.handle(sys.intern(owner), request, body, source)
    assert ("Content-Length", str(len(payload))) in response.headers
    return response.status, payload


def announce(name: str = "f.bin", host: str = "h", port: int = 1) -> sp.Announce:
    m = manifest(name)
    return sp.Announce(m.id, host, port, m.to_bytes())


@arun
async def test_announce_have_peers_files_and_drop_across_nodes(stores: Stores) -> None:
    m = manifest()
    async with stores(2) as (a, b):
        assert await ask(a, "seed", announce(host="s")) == (200, b"")
        assert (await ask(a, "seed", sp.Have(m.id, full(5))))[0] == 200
        assert (await ask(b, "leech", announce(host="l", port=2)))[0] == 200
        assert (await ask(b, "leech", sp.Have(m.id, 0b00011)))[0] == 200
        status, body = await ask(b, "leech", sp.GetPeers(m.id))
        assert status == 200 and sp.decode_peers(body, 5) == [sp.PeerEntry("s", 1, full(5))]
        status, body = await ask(a, "x", sp.ListFiles())
        assert sp.decode_files(body) == [sp.FileEntry(m.id, len(DATA), 16384, 1, 1, 1.4,
                                                      "f.bin")]
        assert await ask(a, "leech", sp.GetManifest(m.id)) == (200, m.to_bytes())
        await a.drop_owner("seed")
        _, body = await ask(b, "x", sp.ListFiles())
        assert sp.decode_files(body)[0].seeders == 0
        await b.drop_owner("leech")
        assert (await ask(a, "x", sp.GetManifest(m.id)))[0] == 404
        assert (await ask(a, "x", sp.ListFiles()))[1] == b""


@arun
async def test_refusals(stores: Stores) -> None:
    m = manifest()
    async with stores(1) as (t,):
        assert (await ask(t, "me", sp.Announce("0" * 64, "h", 1, m.to_bytes())))[0] == 400
        assert (await ask(t, "me", sp.Announce(m.id, "h", 1, b"{}")))[0] == 400
        assert (await ask(t, "me", sp.Have(m.id, 1)))[0] == 404  # unknown swarm
        await ask(t, "other", announce(host="x"))
        assert (await ask(t, "me", sp.Have(m.id, 1)))[0] == 404  # not announced by me
        await ask(t, "me", announce())
        assert (await ask(t, "me", sp.Have(m.id, 1 << 5)))[0] == 400  # past the last piece
        assert (await ask(t, "me", sp.GetPiece(m.id, 0)))[0] == 400
        other = manifest("other.bin")  # other content under this id
        assert (await ask(t, "me", sp.Announce(m.id, "h", 1, other.to_bytes())))[0] == 400


@arun
async def test_an_address_is_changed_only_by_its_connection_on_any_node(stores: Stores) -> None:
    async with stores(2) as (a, b):
        assert (await ask(a, "c1", announce(host="h", port=7)))[0] == 200
        assert (await ask(b, "c2", announce("g.bin", host="h", port=7)))[0] == 409
        await a.drop_owner("c1")  # released at once, on every node
        assert (await ask(b, "c2", announce("g.bin", host="h", port=7)))[0] == 200


@arun
async def test_caps_hold_across_nodes(stores: Stores) -> None:
    budget = TrackerBudget(claims_per_source=2, claims_in_all=3, swarms_per_connection=2)
    async with stores(2, budget) as (a, b):
        assert (await ask(a, "c1", announce(port=1), "10.0.0.1"))[0] == 200
        assert (await ask(b, "c2", announce(port=2), "10.0.0.1"))[0] == 200
        assert (await ask(a, "c3", announce(port=3), "10.0.0.1"))[0] == 409  # its source's
        assert (await ask(b, "c4", announce(port=4), "10.0.0.2"))[0] == 200
        assert (await ask(a, "c5", announce(port=5), "10.0.0.3"))[0] == 503  # everyone's
        assert (await ask(b, "c4", announce("g.bin", port=4), "10.0.0.2"))[0] == 200
        assert (await ask(b, "c4", announce("k.bin", port=4), "10.0.0.2"))[0] == 409
        await b.drop_owner("c2")
        assert (await ask(a, "c3", announce(port=3), "10.0.0.1"))[0] == 200


@arun
async def test_files_newest_first_by_name_and_id_prefix(stores: Stores) -> None:
    names = ["a.bin", "b.bin", "c.bin"]
    async with stores(2) as nodes:
        for n, name in enumerate(names):
            await ask(nodes[n % 2], f"c{n}", announce(name, port=n + 1))
        await ask(nodes[0], "c0", announce("a.bin", port=1))  # a.bin is newest again
        response, body = await nodes[1].handle("x", *sp.to_request(sp.ListFiles()))
        assert [f.name for f in sp.decode_files(body)] == ["a.bin", "c.bin", "b.bin"]
        assert ("Total", "3") in response.headers
        _, body = await ask(nodes[0], "x", sp.ListFiles(offset=1))
        assert [f.name for f in sp.decode_files(body)] == ["c.bin", "b.bin"]
        _, body = await ask(nodes[1], "x", sp.ListFiles(name="b.bin"))
        assert [f.name for f in sp.decode_files(body)] == ["b.bin"]
        prefix = manifest("c.bin").id[:6].upper()
        _, body = await ask(nodes[1], "x", sp.ListFiles(name=prefix))
        assert [f.name for f in sp.decode_files(body)] == ["c.bin"]


def _requests(rng: random.Random, count: int) -> Iterator[tuple[str, sp.SwarmRequest]]:
    """Random requests of a few connections over a few swarms and addresses."""
    names = ["f.bin", "g.bin", "h.bin"]
    for _ in range(count):
        owner = f"c{rng.randrange(5)}"
        m = manifest(rng.choice(names))
        roll = rng.random()
        if roll < 0.35:
            yield owner, sp.Announce(m.id, "h", rng.randrange(1, 4), m.to_bytes())
        elif roll < 0.7:
            yield owner, sp.Have(m.id, rng.randrange(1 << (m.count + (rng.random() < 0.1))))
        elif roll < 0.8:
            yield owner, sp.GetPeers(m.id)
        elif roll < 0.93:
            yield owner, sp.ListFiles(name=rng.choice(["", m.name, m.id[:3]]))
        else:
            yield owner, sp.GetManifest("drop")  # a marker: this connection closes


async def _play(store: TrackerStore, steps: list[tuple[str, sp.SwarmRequest]]
                ) -> list[object]:
    seen: list[object] = []
    for owner, msg in steps:
        if isinstance(msg, sp.GetManifest) and msg.swarm == "drop":
            await store.drop_owner(sys.intern(owner))
            continue
        status, body = await ask(store, owner, msg, "10.0.0.1")
        if isinstance(msg, sp.GetPeers) and status == 200:
            count = manifest("f.bin").count
            seen.append(sorted((p.host, p.port, p.pieces) for p in sp.decode_peers(body, count)))
        else:
            seen.append((status, body))
    return seen


@arun
async def test_redis_answers_as_memory_does(url: str) -> None:
    """Differential: 400 random requests give the same answers from both stores."""
    from p2pshare.swarm.shared import SharedTracker

    steps = list(_requests(random.Random(16), 400))
    node = SharedTracker(url, prefix="diff:", budget=TrackerBudget(claims_in_all=2))
    await node.start()
    try:
        assert await _play(node, steps) == await _play(Tracker(
            budget=TrackerBudget(claims_in_all=2)), steps)
    finally:
        await node.aclose()


@arun
async def test_a_dead_node_s_records_go_within_one_lease(url: str) -> None:
    from p2pshare.swarm.shared import SharedTracker

    nodes = [SharedTracker(url, prefix="lease:", lease=0.6) for _ in range(2)]
    for node in nodes:
        await node.start()
    alive, dying = nodes
    try:
        await ask(alive, "c1", announce(port=1))
        await ask(dying, "c2", announce(port=2))
        assert dying._heart is not None
        dying._heart.cancel()  # the node stops refreshing its lease: it is dead to Redis

        async def one_member() -> bool:
            _, body = await ask(alive, "x", sp.ListFiles())
            return sp.decode_files(body)[0].leechers == 1
        await async_retry(one_member, what="the dead node's member reaped")
        assert (await ask(alive, "c3", announce(port=2)))[0] == 200  # its address is free
    finally:
        for node in nodes:
            await node.aclose()


@arun
async def test_two_index_servers_on_one_store_track_one_swarm(url: str) -> None:
    """``p2pshare server --store``'s wiring: the tracker through real index servers on
    loopback; a seed on one, a leech on the other; the seed's close is seen at once."""
    from p2pshare.index.server import IndexServer
    from p2pshare.swarm.shared import SharedTracker

    servers = [IndexServer(shared_tracker=SharedTracker(url, prefix="two:")) for _ in "ab"]
    ports = [(await s.start(HOST, 0))[1] for s in servers]
    try:
        m = manifest()
        seed = await TrackerClient.connect(HOST, ports[0])
        await seed.announce(m, "seedhost", 4000)
        await seed.have(m.id, full(m.count))
        leech = await TrackerClient.connect(HOST, ports[1])
        assert [f.name for f in await leech.files()] == ["f.bin"]
        assert await leech.peers(m) == [sp.PeerEntry(HOST, 4000, full(5))]
        await seed.aclose()
        await async_retry(lambda: _no_files(leech), what="the seed's swarm gone")
        await leech.aclose()
    finally:
        for server in servers:
            await server.aclose()


async def _no_files(client: TrackerClient) -> bool:
    return await client.files() == []


@arun
async def test_a_report_of_nothing_new_costs_redis_nothing(url: str) -> None:
    """The node keeps its members' masks: a HAVE that adds no piece (a flood repeats one)
    is answered without a script, however many pieces it names."""
    from p2pshare.swarm.shared import SharedTracker

    m = manifest()
    async with started([SharedTracker(url, prefix="quiet:", lease=600)]) as (node,):
        await ask(node, "c", announce())
        assert (await ask(node, "c", sp.Have(m.id, full(5))))[0] == 200

        async def scripts_run() -> int:
            stats = await node._redis.info("commandstats")
            return int(stats["cmdstat_evalsha"]["calls"])
        before = await scripts_run()
        for mask in (full(5), 0b101, 1):
            assert (await ask(node, "c", sp.Have(m.id, mask)))[0] == 200
        assert await scripts_run() == before
        _, body = await ask(node, "x", sp.ListFiles())
        assert sp.decode_files(body)[0].seeders == 1


async def _hgetall_calls(kind: str, request: pytest.FixtureRequest) -> object:
    """HGETALL calls Redis has run so far (a whole member hash read), or None in memory."""
    if kind == "memory":
        return None
    import redis.asyncio as aioredis
    client = aioredis.from_url(request.getfixturevalue("url"))
    try:
        return (await client.info("commandstats")).get("cmdstat_hgetall", {}).get("calls")
    finally:
        await client.aclose()


@arun
async def test_peers_of_a_big_swarm_lists_holders_first_from_a_sample(
        stores: Stores, kind: str, request: pytest.FixtureRequest) -> None:
    """PEERS in a swarm of more members than it lists: holders first, MAX_PEERS_LISTED of
    them, never the asker; and on Redis without reading every member (an HGETALL of the
    member hash blocks Redis for every node: 75-130 ms a PEERS at 10k members)."""
    m = manifest()
    async with stores(1) as (store,):
        for i in range(140):
            assert (await ask(store, f"m{i}", announce(host=f"h{i}")))[0] == 200
        assert (await ask(store, "m7", sp.Have(m.id, 0b1)))[0] == 200
        before = await _hgetall_calls(kind, request)
        for _ in range(5):
            status, body = await ask(store, "m0", sp.GetPeers(m.id))
            peers = sp.decode_peers(body, m.count)
            assert status == 200 and len(peers) == limits.MAX_PEERS_LISTED
            assert peers[0] == sp.PeerEntry("h7", 1, 0b1)
            hosts = {p.host for p in peers}
            assert len(hosts) == len(peers) and "h0" not in hosts
        assert await _hgetall_calls(kind, request) == before
