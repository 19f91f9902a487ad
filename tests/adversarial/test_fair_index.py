"""Fair under hostile peers: the index server and its tracker (issue #12).

Strategy: the attacker's sockets come from 127.0.0.2 (.3 for a second attacker address),
the victim's from 127.0.0.1. Each test floods one thing the server keeps (records,
address claims, manifests, FILES lines, LIST readers, HAVE reports), then asserts the
victim's outcome (its exchange completes, with the answer it should get) and the server's
budgets (counts stay within the named limit; everything is released when the attacker's
connections end). Budgets are lowered through the constructors so that each flood is
small; memory is read from ``/proc`` of a server in a process of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from pathlib import Path

from p2pshare.errors import Status
from p2pshare.index.server import IndexServer
from p2pshare.index.store import IndexBudget, MemoryIndex
from p2pshare.peer.client import IndexClient
from p2pshare.protocol import swarm as sp
from p2pshare.swarm.client import TrackerClient
from p2pshare.swarm.ledger import TrackerBudget
from p2pshare.swarm.manifest import Manifest
from p2pshare.swarm.pieces import full
from p2pshare.swarm.tracker import Tracker

from ..aio import HOST, Raw, arun, serving
from ..helpers import DEADLINE, async_wait_for
from .procs import memory, mib, run_async, server_process

ATTACKER, OTHER = "127.0.0.2", "127.0.0.3"
PIECE = 16 * 1024


def manifest(name: str, pieces: int = 3) -> Manifest:
    digests = tuple(hashlib.sha256(f"{name} {i}".encode()).digest() for i in range(pieces))
    return Manifest(name, pieces * PIECE, PIECE, digests)


def add(rfc: int, host: str, port: int) -> bytes:
    return (f"ADD RFC {rfc} P2P-CI/1.0\r\nHost: {host}\r\nPort: {port}\r\n"
            f"Title: flood\r\n\r\n").encode()


def swarm_bytes(*msgs: sp.SwarmRequest) -> bytes:
    client = sp.PipelinedClient()
    return b"".join(client.send(*sp.to_request(m)) for m in msgs)


async def victim_index(port: int) -> None:
    """The victim ADDs and LOOKs UP its own record: both must work."""
    client = IndexClient(HOST, port, "victim.example", 5000)
    await client.connect()
    try:
        assert (await client.add(954_242, "Mine")).status == Status.OK
        found = await client.lookup(954_242)
        assert found.ok and [(r.host, r.port) for r in found.records] == [
            ("victim.example", 5000)]
    finally:
        await client.aclose()


# ----------------------------------------------------------------------------- records
@arun
async def test_record_flood_stays_within_its_budgets() -> None:
    budget = IndexBudget(per_connection=300, claims_per_connection=4, per_source=700,
                         in_all=2000)
    server = IndexServer(MemoryIndex(budget))
    async with serving(server) as port:
        floods = [await Raw.connect(port, source=ATTACKER) for _ in range(4)]
        for n, flood in enumerate(floods):  # each: 500 records on 10 addresses
            await flood.send(b"".join(add(1 + i, f"fake{n}-{i % 10}", 1) for i in range(500)))
        index = server.index
        await async_wait_for(lambda: index.records_from(ATTACKER) == budget.per_source,
                             what="the attacker's address to reach its budget")
        for link in server.server.links:
            assert index.records_of(link.owner) <= budget.per_connection
            assert len(index.peers_of(link.owner)) <= budget.claims_per_connection
        await victim_index(port)  # its own address has its own budget
        for flood in floods:
            flood.reset()
        await async_wait_for(lambda: index.records_from(ATTACKER) == 0,
                             what="the attacker's records to go with its connections")
        assert len(index) == 0 and index.peer_count == 0


# ----------------------------------------------------------------------------- claims
@arun
async def test_squatting_a_victims_address_does_not_lock_it_out() -> None:
    """The attacker announces the victim's host and ports; the tracker records the
    attacker's own address instead, so the victim's real address stays free."""
    budget = TrackerBudget(claims_per_connection=4, claims_per_source=8, claims_in_all=64)
    tracker = Tracker(budget=budget)
    async with serving(IndexServer(tracker=tracker)) as port:
        m = manifest("victim.bin")
        squatters = [await Raw.connect(port, source=ATTACKER) for _ in range(4)]
        for n, squatter in enumerate(squatters):  # 10 swarms each, each on another port
            fakes = [m, *(manifest(f"f{n}-{i}.bin") for i in range(9))]
            await squatter.send(swarm_bytes(*(sp.Announce(f.id, HOST, 6000 + n * 10 + i,
                                                          f.to_bytes())
                                              for i, f in enumerate(fakes))))
        await async_wait_for(lambda: tracker.books.claims_from(ATTACKER) == 8,
                             what="the attacker's claims to reach its budget")
        assert tracker.books.claims <= budget.claims_in_all
        assert all(host == ATTACKER for host, _ in tracker.books._holder)
        victim = await TrackerClient.connect(HOST, port)
        await victim.announce(m, HOST, 6000)  # the port the attacker named first: no 409
        await victim.have(m.id, full(m.count))
        observer = await TrackerClient.connect(HOST, port)
        peers = await observer.peers(m)
        assert sp.PeerEntry(HOST, 6000, full(m.count)) in peers
        for squatter in squatters:
            squatter.reset()
        await async_wait_for(lambda: tracker.books.claims_from(ATTACKER) == 0,
                             what="the attacker's claims to go with its connections")
        assert tracker.books.claims == 1
        await victim.aclose()
        await observer.aclose()


@arun
async def test_a_trusted_name_is_held_only_while_its_connection_lives() -> None:
    """With named hosts trusted, a squatter's claim is the first-come one, but it belongs
    to its connection: the victim gets its address as soon as the squatter is gone."""
    tracker = Tracker()
    async with serving(IndexServer(tracker=tracker, trust_named_hosts=True)) as port:
        m = manifest("victim.bin")
        squatter = await Raw.connect(port, source=ATTACKER)
        await squatter.send(swarm_bytes(sp.Announce(m.id, HOST, 6000, m.to_bytes())))
        await async_wait_for(lambda: tracker.books.claims == 1, what="the squat")
        victim = await TrackerClient.connect(HOST, port)
        head, _ = await victim.request(sp.Announce(m.id, HOST, 6000, m.to_bytes()))
        assert head.status == Status.CONFLICT
        squatter.reset()
        await async_wait_for(lambda: tracker.books.claims == 0, what="the squat released")
        await victim.announce(m, HOST, 6000)
        await victim.aclose()


# ----------------------------------------------------------------------------- manifests
@arun
async def test_manifest_flood_stays_within_its_budget() -> None:
    size = len(manifest("f0000.bin", 200).to_bytes())
    budget = TrackerBudget(bytes_per_source=50 * size, bytes_in_all=120 * size)
    tracker = Tracker(budget=budget)
    async with serving(IndexServer(tracker=tracker)) as port:
        floods = [await Raw.connect(port, source=source) for source in (ATTACKER, OTHER)
                  for _ in range(2)]
        for n, flood in enumerate(floods):
            fakes = [manifest(f"f{n}-{i:04}.bin", 200) for i in range(60)]
            await flood.send(swarm_bytes(*(sp.Announce(f.id, "x", 7000 + n, f.to_bytes())
                                           for f in fakes)))
        await async_wait_for(lambda: all(tracker.books.bytes_from(s) + size * 1.01
                                         > budget.bytes_per_source for s in (ATTACKER, OTHER)),
                             what="both addresses' budgets to fill")
        assert tracker.books.bytes_from(ATTACKER) <= budget.bytes_per_source
        assert tracker.books.manifest_bytes <= budget.bytes_in_all
        victim = await TrackerClient.connect(HOST, port)
        mine = manifest("victim.bin", 200)
        await victim.announce(mine, HOST, 7100)
        assert [f.name for f in await victim.files(name="victim.bin")] == ["victim.bin"]
        for flood in floods:
            flood.reset()
        await async_wait_for(lambda: len(tracker.swarms) == 1, what="the fakes to go")
        assert tracker.books.manifest_bytes == len(mine.to_bytes())
        await victim.aclose()


# ----------------------------------------------------------------------------- FILES
@arun
async def test_files_flood_leaves_a_bounded_listing_that_finds_the_victim() -> None:
    tracker = Tracker(budget=TrackerBudget(files_listed=40))
    async with serving(IndexServer(tracker=tracker)) as port:
        victim = await TrackerClient.connect(HOST, port)
        mine = manifest("victim.bin")
        await victim.announce(mine, HOST, 7200)
        flood = await Raw.connect(port, source=ATTACKER)
        fakes = [manifest(f"{'x' * 200}{i:04}.bin") for i in range(300)]
        await flood.send(swarm_bytes(*(sp.Announce(f.id, "x", 1, f.to_bytes())
                                       for f in fakes)))
        await async_wait_for(lambda: len(tracker.swarms) == 301, what="the flood")
        page = await victim.file_page()
        assert len(page.entries) == 40 and page.total == 301 and page.cut
        assert all(e.name.startswith("x") for e in page.entries)  # newest first
        found = await victim.file_page(name="victim.bin")
        assert [e.swarm for e in found.entries] == [mine.id] and not found.cut
        rest = await victim.file_page(offset=300)
        assert [e.swarm for e in rest.entries] == [mine.id]  # the oldest, paged to
        flood.reset()
        await victim.aclose()


# ----------------------------------------------------------------------------- LIST
READERS = 50  # LIST ALL readers that never read
RECORDS = 200_000
# Resident memory the server may gain while READERS stall: their socket buffers and a
# batch each, not a copy of the index each (200,000 keys are 1.6 MB a copy).
STALL_BOUND = READERS * 256 * 1024
# Seconds every LIST may take to start: the server begins READERS answers of RECORDS
# records, slow on a busy machine (20 s was not always enough there). The server drops a
# reader that takes nothing for STALL seconds, well after that, so none is dropped before
# the memory is read.
STARTED = 3 * DEADLINE
STALL = 4 * STARTED


async def stalled_list(port: int) -> socket.socket:
    """A LIST ALL from the attacker's address whose answer is never read."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind((ATTACKER, 0))
    sock.setblocking(False)
    await loop.sock_connect(sock, (HOST, port))
    await loop.sock_sendall(sock, b"LIST ALL P2P-CI/1.0\r\nHost: a\r\nPort: 1\r\n\r\n")
    return sock


def answered(sock: socket.socket) -> bool:
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return False


def test_stalled_list_readers_hold_no_copy_of_the_index(tmp_path: Path) -> None:
    async def attack(pid: int, port: int) -> None:
        await victim_index(port)
        before = memory(pid)["VmRSS"]
        socks = [await stalled_list(port) for _ in range(READERS)]
        try:
            await async_wait_for(lambda: all(answered(s) for s in socks), STARTED,
                                 what="every LIST to have started")
            await victim_index(port)  # the server answers others meanwhile
            grew = memory(pid)["VmRSS"] - before
            print(f"\n{READERS} stalled LIST ALL of {RECORDS:,} records: RSS +{mib(grew)}")
            assert grew < STALL_BOUND, mib(grew)
        finally:
            for sock in socks:
                sock.close()

    with server_process("index", tmp_path, records=RECORDS, stall=STALL) as (pid, port):
        run_async(STARTED + DEADLINE, attack(pid, port))


# ----------------------------------------------------------------------------- HAVE
HAVE_MEMBERS = 200  # the attacker's members of one swarm: many availability levels
HAVE_FLOOD = 5000  # HAVE reports in the flood


def test_a_have_flood_leaves_lookups_answered(tmp_path: Path) -> None:
    m = manifest("big.bin", 15_000)

    async def attack(port: int) -> None:
        members = [await Raw.connect(port, source=ATTACKER) for _ in range(HAVE_MEMBERS)]
        for n, member in enumerate(members):  # staggered pieces: one level per member
            await member.send(swarm_bytes(sp.Announce(m.id, "x", 1 + n, m.to_bytes()),
                                          sp.Have(m.id, full(m.count) >> n)))
        flood = members[0]
        reports = swarm_bytes(*(sp.Have(m.id, (1 << (i % m.count)) | 1)
                                for i in range(HAVE_FLOOD)))
        await flood.send(reports)  # written while the victim asks: load, not a wait
        for _ in range(20):
            await victim_index(port)
        for member in members:
            member.reset()

    with server_process("tracker", tmp_path) as (_pid, port):
        run_async(4 * DEADLINE, attack(port))
