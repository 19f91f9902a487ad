"""The tracker: directly, then through a real index server on loopback (P2P-CI and
P2P-SWARM on one port, records gone when the connection closes)."""

from __future__ import annotations

import hashlib

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from p2pshare.errors import Status
from p2pshare.index.server import IndexServer
from p2pshare.net.stream import open_stream
from p2pshare.protocol import Request, Response
from p2pshare.protocol import swarm as sp
from p2pshare.protocol.ci import index_client_connection
from p2pshare.swarm.census import PieceCensus
from p2pshare.swarm.client import TrackerClient
from p2pshare.swarm.ledger import TrackerBudget
from p2pshare.swarm.manifest import Manifest
from p2pshare.swarm.pieces import Availability, full
from p2pshare.swarm.tracker import Tracker

from ..aio import HOST, arun
from ..helpers import async_wait_for

DATA = bytes(range(256)) * 300  # 76,800 bytes: five pieces of 16 KiB


def manifest(name: str = "f.bin") -> Manifest:
    """A manifest of DATA named ``name``; another name is other content (the id does not
    cover the name: ``f.bin`` is DATA itself)."""
    data = DATA if name == "f.bin" else name.encode() + DATA[len(name):]
    digests = tuple(hashlib.sha256(data[i:i + 16384]).digest()
                    for i in range(0, len(data), 16384))
    return Manifest(name, len(data), 16384, digests)


async def ask(tracker: Tracker, owner: object, msg: sp.SwarmRequest) -> tuple[int, bytes]:
    request, body = sp.to_request(msg)
    response, payload = await tracker.handle(owner, request, body)
    assert ("Content-Length", str(len(payload))) in response.headers
    return response.status, payload


@arun
async def test_the_same_content_under_another_name_joins_the_same_swarm() -> None:
    """The id covers the content, not the name: a second seeder that calls the file
    otherwise joins the swarm (the first name stays), but other content under that id is
    refused."""
    tracker, m = Tracker(), manifest()
    renamed = m.renamed("copy of f.bin")
    assert renamed.id == m.id
    assert (await ask(tracker, object(), sp.Announce(m.id, "a", 1, m.to_bytes())))[0] == 200
    assert (await ask(tracker, object(), sp.Announce(m.id, "b", 2, renamed.to_bytes()))
            )[0] == 200
    _, body = await ask(tracker, object(), sp.ListFiles())
    assert [(f.swarm, f.name, f.kind) for f in sp.decode_files(body)] == [(m.id, "f.bin", "file")]
    other = manifest("other.bin")
    assert (await ask(tracker, object(), sp.Announce(m.id, "c", 3, other.to_bytes())))[0] == 400


@arun
async def test_announce_have_peers_files_and_drop() -> None:
    tracker, m = Tracker(), manifest()
    seed, leech = object(), object()
    assert await ask(tracker, seed, sp.Announce(m.id, "s", 1, m.to_bytes())) == (200, b"")
    assert (await ask(tracker, seed, sp.Have(m.id, full(5))))[0] == 200
    assert (await ask(tracker, leech, sp.Announce(m.id, "l", 2, m.to_bytes())))[0] == 200
    assert (await ask(tracker, leech, sp.Have(m.id, 0b00011)))[0] == 200
    status, body = await ask(tracker, leech, sp.GetPeers(m.id))
    assert status == 200 and sp.decode_peers(body, 5) == [sp.PeerEntry("s", 1, full(5))]
    status, body = await ask(tracker, seed, sp.ListFiles())
    assert sp.decode_files(body) == [sp.FileEntry(m.id, len(DATA), 16384, 1, 1, 1.4, "f.bin")]
    assert await ask(tracker, leech, sp.GetManifest(m.id)) == (200, m.to_bytes())
    tracker.drop(seed)
    status, body = await ask(tracker, leech, sp.ListFiles())
    assert sp.decode_files(body)[0].seeders == 0
    tracker.drop(leech)
    assert tracker.swarms == {}
    assert (await ask(tracker, leech, sp.GetManifest(m.id)))[0] == Status.NOT_FOUND


@arun
async def test_refusals() -> None:
    tracker, m = Tracker(), manifest()
    me = object()
    assert (await ask(tracker, me, sp.Announce("0" * 64, "h", 1, m.to_bytes())))[0] == 400
    assert (await ask(tracker, me, sp.Announce(m.id, "h", 1, b"{}")))[0] == 400
    assert (await ask(tracker, me, sp.Have(m.id, 1)))[0] == 404  # unknown swarm
    await ask(tracker, object(), sp.Announce(m.id, "x", 1, m.to_bytes()))
    assert (await ask(tracker, me, sp.Have(m.id, 1)))[0] == 404  # not announced by me
    await ask(tracker, me, sp.Announce(m.id, "h", 1, m.to_bytes()))
    assert (await ask(tracker, me, sp.Have(m.id, 1 << 5)))[0] == 400  # past the last piece
    assert (await ask(tracker, me, sp.GetPiece(m.id, 0)))[0] == 400  # not a tracker message
    response, _ = await tracker.handle(me, Request("PEERS", m.id, "P2P-SWARM/2.0"), b"")
    assert response.status == 505


@arun
async def test_identical_content_is_one_swarm() -> None:
    tracker, m = Tracker(), manifest()
    for host in ("a", "b"):
        await ask(tracker, object(), sp.Announce(m.id, host, 1, m.to_bytes()))
    assert len(tracker.swarms) == 1
    assert len(tracker.swarms[m.id].members) == 2


@arun
async def test_through_a_real_index_server() -> None:
    tracker = Tracker()
    server = IndexServer(tracker=tracker)
    _, port = await server.start(HOST, 0)
    try:
        m = manifest()
        seed = await TrackerClient.connect(HOST, port)
        await seed.announce(m, "seedhost", 4000)
        await seed.have(m.id, full(m.count))
        leech = await TrackerClient.connect(HOST, port)
        assert [f.name for f in await leech.files()] == ["f.bin"]
        assert await leech.manifest(m.id) == m
        # recorded where the seed connects from, with the port it named
        assert await leech.peers(m) == [sp.PeerEntry(HOST, 4000, full(5))]
        # P2P-CI on the same port, even on the same connection, still answers as before.
        ci = await open_stream(HOST, port, index_client_connection())
        await ci.send(Request("LIST", "ALL", "P2P-CI/1.0", (("Host", "h"), ("Port", "1"))))
        head, lines = await ci.read_p2s_response()
        assert head.status == 200 and lines == []
        await ci.aclose()
        await seed.aclose()  # the seed leaves: its records vanish
        await async_wait_for(lambda: m.id not in tracker.swarms,
                             what="the seed's records to vanish")
        assert await leech.files() == []
        await leech.aclose()
    finally:
        await server.aclose()


@arun
async def test_a_server_that_trusts_named_hosts_records_them() -> None:
    server = IndexServer(tracker=Tracker(), trust_named_hosts=True)
    _, port = await server.start(HOST, 0)
    try:
        m = manifest()
        seed, leech = [await TrackerClient.connect(HOST, port) for _ in range(2)]
        await seed.announce(m, "seedhost", 4000)
        assert await leech.peers(m) == [sp.PeerEntry("seedhost", 4000, 0)]
        await seed.aclose()
        await leech.aclose()
    finally:
        await server.aclose()


def answer(tracker: Tracker, owner: object, msg: sp.SwarmRequest, source: str = "10.0.0.1"
           ) -> tuple[Response, bytes]:
    return tracker.answer(owner, *sp.to_request(msg), source, named=True)


def test_claims_belong_to_their_connection_and_are_bounded() -> None:
    budget = TrackerBudget(claims_per_connection=2, claims_per_source=3, claims_in_all=4)
    tracker, m = Tracker(budget=budget), manifest()
    a, b, c = object(), object(), object()
    statuses = [answer(tracker, a, sp.Announce(m.id, "h", port, m.to_bytes()))[0].status
                for port in (1, 1, 2)]
    assert statuses == [200, 200, 200] and tracker.books.claims_of(a) == 1  # re-announce moves
    other = manifest("other.bin")
    assert answer(tracker, a, sp.Announce(other.id, "h", 3, other.to_bytes()))[0].status == 200
    third = manifest("third.bin")
    assert answer(tracker, a, sp.Announce(third.id, "h", 4, third.to_bytes()))[0].status == 409
    assert answer(tracker, b, sp.Announce(m.id, "h", 2, m.to_bytes()))[0].status == 409  # a's
    assert answer(tracker, b, sp.Announce(m.id, "g", 1, m.to_bytes()))[0].status == 200
    assert answer(tracker, b, sp.Announce(other.id, "g", 2, other.to_bytes()))[0].status == 409
    assert answer(tracker, c, sp.Announce(m.id, "k", 1, m.to_bytes()), "10.0.0.2"
                  )[0].status == 200
    assert answer(tracker, object(), sp.Announce(m.id, "k", 2, m.to_bytes()), "10.0.0.3"
                  )[0].status == 503  # the tracker holds its 4
    assert tracker.books.claims == 4 and tracker.books.claims_from("10.0.0.1") == 3
    tracker.drop(a)
    assert tracker.books.claims == 2 and tracker.books.holder(("h", 2), None) is None
    assert answer(tracker, b, sp.Announce(m.id, "h", 2, m.to_bytes()))[0].status == 200


def test_manifest_bytes_are_bounded_and_dropped_with_their_last_member() -> None:
    files = [manifest(f"f{i}.bin") for i in range(4)]
    size = len(files[0].to_bytes())
    tracker = Tracker(budget=TrackerBudget(bytes_per_source=2 * size, bytes_in_all=3 * size))
    a, b = object(), object()
    got = [answer(tracker, a, sp.Announce(f.id, "h", 1, f.to_bytes()))[0].status
           for f in files[:3]]
    assert got == [200, 200, 409] and tracker.books.bytes_from("10.0.0.1") == 2 * size
    got = [answer(tracker, b, sp.Announce(f.id, "g", 1, f.to_bytes()), "10.0.0.2")[0].status
           for f in files[1:3]]
    assert got == [200, 200]  # a known manifest costs nothing more in all
    c = object()
    assert answer(tracker, c, sp.Announce(files[3].id, "k", 1, files[3].to_bytes()),
                  "10.0.0.3")[0].status == 503
    assert tracker.books.manifest_bytes == 3 * size
    tracker.drop(a)
    assert list(tracker.swarms) == [files[1].id, files[2].id]  # f0 had only a
    tracker.drop(b)
    assert tracker.swarms == {} and tracker.books.manifest_bytes == 0


def test_files_is_bounded_newest_first_with_offset_and_name() -> None:
    tracker = Tracker(budget=TrackerBudget(files_listed=2))
    files = [manifest(f"f{i}.bin") for i in range(3)]
    for i, f in enumerate(files):
        answer(tracker, object(), sp.Announce(f.id, "h", i + 1, f.to_bytes()))
    head, body = answer(tracker, object(), sp.ListFiles())
    assert [e.name for e in sp.decode_files(body)] == ["f2.bin", "f1.bin"]
    assert ("Total", "3") in head.headers
    _, body = answer(tracker, object(), sp.ListFiles(offset=2))
    assert [e.name for e in sp.decode_files(body)] == ["f0.bin"]
    head, body = answer(tracker, object(), sp.ListFiles(name="f0.bin"))
    assert [e.name for e in sp.decode_files(body)] == ["f0.bin"] and ("Total", "1") in head.headers
    _, body = answer(tracker, object(), sp.ListFiles(name=files[1].id[:8].upper()))
    assert [e.swarm for e in sp.decode_files(body)] == [files[1].id]


def test_census_counts_like_the_levels() -> None:
    census, levels = PieceCensus(10), Availability(10)
    for mask in (0b1111111111, 0b0000000011, 0b0101010100):
        census.add(mask)
        levels.add(mask)
        assert [census.of(i) for i in range(10)] == [levels.of(i) for i in range(10)]
        assert census.copies() == levels.copies()
    census.remove(0b1111111111)
    levels.remove(0b1111111111)
    assert census.copies() == levels.copies() and census.of(0) == 1


OWNERS = [object() for _ in range(3)]
SWARMS = [manifest("a.bin"), manifest("b.bin")]


class TrackerMachine(RuleBasedStateMachine):
    """Random joins, reports and leaves of three connections in two swarms, checked after
    every step against plain sets: records are per connection and vanish with it."""

    def __init__(self) -> None:
        super().__init__()
        self.tracker = Tracker()
        self.model: dict[tuple[int, int], int] = {}  # (owner, swarm) -> pieces

    def ask(self, owner: int, msg: sp.SwarmRequest) -> tuple[int, bytes]:
        step = ask(self.tracker, OWNERS[owner], msg)  # never waits: run it in place
        try:
            step.send(None)
        except StopIteration as done:
            result: tuple[int, bytes] = done.value
            return result
        raise AssertionError("the tracker waited for something")

    @rule(owner=st.integers(0, 2), swarm=st.integers(0, 1))
    def announce(self, owner: int, swarm: int) -> None:
        m = SWARMS[swarm]
        assert self.ask(owner, sp.Announce(m.id, f"h{owner}", 1000 + owner, m.to_bytes()))[0] \
            == 200
        self.model.setdefault((owner, swarm), 0)

    @rule(owner=st.integers(0, 2), swarm=st.integers(0, 1), pieces=st.integers(0, 31))
    def have(self, owner: int, swarm: int, pieces: int) -> None:
        status, _ = self.ask(owner, sp.Have(SWARMS[swarm].id, pieces))
        if (owner, swarm) in self.model:
            assert status == 200
            self.model[(owner, swarm)] |= pieces
        else:
            assert status == 404

    @rule(owner=st.integers(0, 2))
    def leave(self, owner: int) -> None:
        self.tracker.drop(OWNERS[owner])
        self.model = {k: v for k, v in self.model.items() if k[0] != owner}

    @invariant()
    def files_match(self) -> None:
        _, body = self.ask(0, sp.ListFiles())
        listed = {f.name: f for f in sp.decode_files(body)}
        for swarm, m in enumerate(SWARMS):
            holders = [v for (o, s), v in self.model.items() if s == swarm]
            if not holders:
                assert m.name not in listed
                continue
            entry = listed[m.name]
            assert entry.seeders == sum(v == full(5) for v in holders)
            assert entry.seeders + entry.leechers == len(holders)
            counts = [sum(v >> i & 1 for v in holders) for i in range(5)]
            low = min(counts)
            assert round(entry.copies, 3) == round(low + sum(c > low for c in counts) / 5, 3)

    @invariant()
    def peers_match(self) -> None:
        for (owner, swarm) in self.model:
            _, body = self.ask(owner, sp.GetPeers(SWARMS[swarm].id))
            got = {(p.host, p.pieces) for p in sp.decode_peers(body, 5)}
            assert got == {(f"h{o}", v) for (o, s), v in self.model.items()
                           if s == swarm and o != owner}


TestTrackerMachine = TrackerMachine.TestCase
