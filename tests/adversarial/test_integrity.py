"""Index integrity: a peer cannot add, change or remove another peer's records, and a
thousand peers registering at once lose none.

Strategy: records belong to the connection that made them (P2P-CI, the swarm tracker) or
to the holder of a cookie (P2P-DI, docs/p2p-di.md#rs-behaviour). Each test has an honest
peer, an attacker trying every way in with its own connection, and an observer that reads
the index afterwards. The concurrency tests run the server in a process of its own and
compare what the index lists with exactly what was registered.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from p2pshare.errors import Status
from p2pshare.protocol import di
from p2pshare.protocol import swarm as sp
from p2pshare.registry import wire
from p2pshare.swarm.client import TrackerClient
from p2pshare.swarm.pieces import full

from ..aio import HOST, Raw, arun
from ..helpers import DEADLINE, async_retry
from .hostile import Reply, read_reply
from .procs import run_async, server_process
from .targets import MANIFEST, TARGETS

PEERS = 1000  # peers registering at once
RFCS_EACH = 3


def add(rfc: int, title: str, host: str, port: int) -> bytes:
    return (f"ADD RFC {rfc} P2P-CI/1.0\r\nHost: {host}\r\nPort: {port}\r\n"
            f"Title: {title}\r\n\r\n").encode()


def remove(rfc: int, host: str, port: int) -> bytes:
    return f"REMOVE RFC {rfc} P2P-CI/1.0\r\nHost: {host}\r\nPort: {port}\r\n\r\n".encode()


LIST = b"LIST ALL P2P-CI/1.0\r\nHost: o\r\nPort: 9\r\n\r\n"


async def ask(raw: Raw, request: bytes) -> Reply:
    await raw.send(request)
    reply = await read_reply(raw)
    assert reply is not None, "the server closed the connection"
    return reply


async def listed(port: int) -> set[bytes]:
    raw = await Raw.connect(port)
    try:
        reply = await ask(raw, LIST)
        assert reply.status == Status.OK
        return set(reply.body.splitlines())
    finally:
        await raw.close()


# ----------------------------------------------------------------------------- P2P-CI
@arun
async def test_ci_records_belong_to_the_connection_that_added_them(tmp_path: Path) -> None:
    async with TARGETS["index"].start(tmp_path) as port:
        honest, attacker = await Raw.connect(port), await Raw.connect(port)
        for rfc, title in ((1, "One"), (2, "Two")):
            assert (await ask(honest, add(rfc, title, "a", 1))).status == Status.OK
        mine = {b"RFC 2 Two a 1", b"RFC 1 One a 1"}
        assert (await ask(attacker, add(1, "Forged", "a", 1))).status == Status.BAD_REQUEST
        assert (await ask(attacker, add(3, "Planted", "a", 1))).status == Status.BAD_REQUEST
        for rfc in (1, 2, 3):
            assert (await ask(attacker, remove(rfc, "a", 1))).status == Status.NOT_FOUND
        assert await listed(port) == mine  # titles, holders and count unchanged
        # The attacker's own records are its own: added and withdrawn as it likes.
        assert (await ask(attacker, add(1, "Mine", "b", 2))).status == Status.OK
        assert (await ask(attacker, remove(1, "b", 2))).status == Status.OK
        assert await listed(port) == mine
        await honest.close()
        # Only once its holder's connection is gone is an address free to claim again
        # (the server learns of the close on its own time).
        async def claimed() -> bool:
            return (await ask(attacker, add(1, "Now mine", "a", 1))).status == Status.OK

        await async_retry(claimed, what="the address free to claim")
        assert await listed(port) == {b"RFC 1 Now mine a 1"}
        await attacker.close()


# ----------------------------------------------------------------------------- tracker
async def peer_view(port: int) -> dict[tuple[str, int], int]:
    """What a third peer learns from PEERS: each listed address and its pieces."""
    observer = await TrackerClient.connect(HOST, port)
    try:
        await observer.announce(MANIFEST, "observer", 9)
        return {(e.host, e.port): e.pieces for e in await observer.peers(MANIFEST)}
    finally:
        await observer.aclose()


@arun
async def test_tracker_records_belong_to_the_connection_that_announced_them(
        tmp_path: Path) -> None:
    async with TARGETS["tracker"].start(tmp_path) as port:
        honest = await TrackerClient.connect(HOST, port)
        attacker = await TrackerClient.connect(HOST, port)
        await honest.announce(MANIFEST, HOST, 1)
        await honest.have(MANIFEST.id, 0b00011)
        # No HAVE before its own ANNOUNCE; no ANNOUNCE of an address another peer holds.
        head, _ = await attacker.request(sp.Have(MANIFEST.id, full(MANIFEST.count)))
        assert head.status == Status.NOT_FOUND
        head, _ = await attacker.request(sp.Announce(MANIFEST.id, HOST, 1, MANIFEST.to_bytes()))
        assert head.status == Status.CONFLICT
        # Its own record: what it says of itself changes nothing of the honest peer's.
        await attacker.announce(MANIFEST, HOST, 2)
        await attacker.have(MANIFEST.id, full(MANIFEST.count))
        head, _ = await attacker.request(sp.Announce(MANIFEST.id, HOST, 1, MANIFEST.to_bytes()))
        assert head.status == Status.CONFLICT  # nor by moving its own record onto it
        assert await peer_view(port) == {(HOST, 1): 0b00011, (HOST, 2): full(MANIFEST.count)}
        await honest.aclose()

        async def honest_gone() -> bool:  # the server learns of the close on its own time
            return await peer_view(port) == {(HOST, 2): full(MANIFEST.count)}

        await async_retry(honest_gone, what="the honest peer's record gone")
        await attacker.aclose()


# ----------------------------------------------------------------------------- P2P-DI
async def rs(port: int, msg: di.DIRequest) -> wire.DIReply:
    return await wire.exchange(HOST, port, msg, None)


async def active(port: int) -> set[tuple[str, int]]:
    reply = await rs(port, di.PQuery("observer"))  # anonymous: every active peer
    if reply.status == Status.NOT_FOUND:
        return set()
    return {(p.host, p.port) for p in di.parse_peers(reply.body).items}


@arun
async def test_di_only_a_cookie_acts_for_its_peer(tmp_path: Path) -> None:
    """Cookies are random and unguessable (docs/p2p-di.md): another peer's Leave or
    KeepAlive needs a cookie the RS gave it, and one it never gave is refused."""
    async with TARGETS["rs"].start(tmp_path) as port:
        honest = di.parse_registered((await rs(port, di.Register("a", 1))).response)[0]
        attacker = di.parse_registered((await rs(port, di.Register("b", 2))).response)[0]
        rng = random.Random(6)
        for guess in [honest + 1, honest - 1, attacker + 1, 1, 2**63 - 1,
                      *(rng.randrange(1, 2**63) for _ in range(20))]:
            if guess in (honest, attacker):
                continue
            for msg in (di.Leave("a", guess), di.KeepAlive("a", guess),
                        di.Register("a", 1, guess)):
                reply = await rs(port, msg)
                assert (reply.status, reply.response.reason) == (409, di.UNKNOWN_COOKIE)
        assert await active(port) == {("a", 1), ("b", 2)}
        assert (await rs(port, di.Leave("b", attacker))).status == Status.OK  # its own
        assert await active(port) == {("a", 1)}


# ----------------------------------------------------------------------------- at once
def test_a_thousand_ci_peers_at_once_lose_no_record(tmp_path: Path) -> None:
    async def peer(port: int, n: int, ready: asyncio.Barrier, done: asyncio.Event) -> None:
        raw = await Raw.connect(port)
        try:
            await ready.wait()  # every peer connected: now all register at once
            await raw.send(b"".join(add(n * 10 + i + 1, f"T{n}", f"h{n}", n + 1)
                                    for i in range(RFCS_EACH)))
            for _ in range(RFCS_EACH):
                reply = await read_reply(raw)
                assert reply is not None and reply.status == Status.OK
            await done.wait()  # stay connected: the records live while the peer does
        finally:
            await raw.close()

    async def run(port: int) -> None:
        ready, done = asyncio.Barrier(PEERS), asyncio.Event()
        expected = {f"RFC {n * 10 + i + 1} T{n} h{n} {n + 1}".encode()
                    for n in range(PEERS) for i in range(RFCS_EACH)}
        async with asyncio.TaskGroup() as tg:
            for n in range(PEERS):
                tg.create_task(peer(port, n, ready, done))
            async def all_listed() -> set[bytes] | None:
                got = await listed(port)
                return got if len(got) >= len(expected) else None

            assert await async_retry(all_listed, what="every record", pause=0.05) == expected
            done.set()

        async def none_listed() -> bool:
            return not await listed(port)

        await async_retry(none_listed, what="every record gone", pause=0.05)

    with server_process("index", tmp_path) as (_, port):
        run_async(3 * DEADLINE, run(port))


def test_a_thousand_swarm_peers_at_once_lose_no_record(tmp_path: Path) -> None:
    count = MANIFEST.count

    async def peer(port: int, n: int, ready: asyncio.Barrier, done: asyncio.Event) -> None:
        tracker = await TrackerClient.connect(HOST, port)
        try:
            await ready.wait()
            await tracker.announce(MANIFEST, f"h{n}", n + 1)
            await tracker.have(MANIFEST.id, 1 << (n % count))
            await done.wait()
        finally:
            await tracker.aclose()

    async def run(port: int) -> None:
        ready, done = asyncio.Barrier(PEERS + 1), asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            for n in range(PEERS):
                tg.create_task(peer(port, n, ready, done))
            await ready.wait()
            observer = await TrackerClient.connect(HOST, port)
            try:
                async def everyone_counted() -> bool:
                    [entry] = await observer.files()
                    return entry.leechers == PEERS and entry.copies == PEERS / count

                await async_retry(everyone_counted, what="every leecher", pause=0.05)
                [entry] = await observer.files()
                assert (entry.seeders, entry.leechers, entry.copies) == (0, PEERS,
                                                                          PEERS / count)
            finally:
                await observer.aclose()
            done.set()

    with server_process("index", tmp_path) as (_, port):
        run_async(3 * DEADLINE, run(port))


def test_a_thousand_di_peers_at_once_lose_no_record(tmp_path: Path) -> None:
    async def run(port: int) -> None:
        replies = await asyncio.gather(*(rs(port, di.Register(f"h{n}", n + 1))
                                         for n in range(PEERS)))
        assert all(r.status == Status.OK for r in replies)
        cookies = {di.parse_registered(r.response)[0] for r in replies}
        assert len(cookies) == PEERS  # one each, never shared
        assert await active(port) == {(f"h{n}", n + 1) for n in range(PEERS)}

    with server_process("rs", tmp_path) as (_, port):
        run_async(3 * DEADLINE, run(port))


@pytest.fixture(autouse=True)
def enough_descriptors() -> None:
    from p2pshare.net.runtime import raise_fd_limit

    raise_fd_limit(4 * PEERS)
