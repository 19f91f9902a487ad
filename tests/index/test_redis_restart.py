"""A real redis-server restarted under a running index server (and an RS) on the shared store
(docs/scale-out.md#failures): while Redis is down, requests close their connections; once
it is back (empty: no persistence), the node finds its leases gone, closes every
connection, takes new leases, and a peer that connects again registers again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from p2pshare.errors import P2PError
from p2pshare.index.server import IndexServer

from ..aio import HOST, Raw, arun, free_port
from ..helpers import async_retry
from ..redis_server import redis_server

pytest.importorskip("redis", reason="the redis client is not installed (the 'redis' extra)")

from p2pshare.index.shared import SharedIndex  # noqa: E402
from p2pshare.swarm.shared import SharedTracker  # noqa: E402

LEASE = 0.9  # seconds: refreshed every 0.3 s, so the loss is seen soon
ADD = b"ADD RFC 7 P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\nTitle: Seven\r\n\r\n"
ADDED = b"P2P-CI/1.0 200 OK\r\n\r\nRFC 7 Seven h 1\r\n\r\n"
LOOKUP = b"LOOKUP RFC 7 P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n"


@arun
async def test_a_redis_restart_closes_connections_and_peers_register_again(
        tmp_path: Path) -> None:
    port = free_port()
    with redis_server(tmp_path / "first", port) as url:
        server = IndexServer(shared=SharedIndex(url, lease=LEASE),
                             shared_tracker=SharedTracker(url, lease=LEASE))
        _, listening = await server.start(HOST, 0)
        try:
            peer = await Raw.connect(listening)
            await peer.expect(ADD, ADDED)
        except BaseException:
            await server.aclose()
            raise
    try:
        # Redis is down (killed): a request cannot be answered; its connection closes.
        down = await Raw.connect(listening)
        await down.send(LOOKUP)
        assert await down.rest() == b""
        with redis_server(tmp_path / "second", port):  # back, and empty
            assert await peer.rest() == b""  # the lost lease closed the peer's connection
            again = await Raw.connect(listening)

            async def registered() -> bool:  # ADD is refused until the new lease is taken
                await again.send(ADD)
                return await again.recv(len(ADDED)) == ADDED
            await async_retry(registered, what="the ADD accepted on the new lease")
            await again.expect(LOOKUP, b"P2P-CI/1.0 200 OK\r\n\r\nRFC 7 Seven h 1\r\n\r\n")
            again.writer.close()
    finally:
        await asyncio.wait_for(server.aclose(), 30)


@arun
async def test_after_a_redis_restart_an_rs_peer_registers_again(tmp_path: Path) -> None:
    """The RS on the shared store (``p2pshare rs --store``): Redis restarted forgets every
    record; a peer's next KeepAlive is refused (unknown cookie) and ``RSClient``
    registers it afresh, so the list fills again."""
    from p2pshare.protocol import di
    from p2pshare.registry.client import RSClient
    from p2pshare.registry.server import RegistrationServer
    from p2pshare.registry.shared import SharedRegistry

    port = free_port()
    with redis_server(tmp_path / "first", port) as url:
        server = RegistrationServer(shared=SharedRegistry(url))
        _, listening = await server.start(HOST, 0)
        peer, other = RSClient(HOST, listening), RSClient(HOST, listening)
        try:
            assert (await peer.register(di.PeerAddr("peer1", 4001))).status == 200
            first = peer.cookie
        except BaseException:
            await server.aclose()
            raise
    try:
        with redis_server(tmp_path / "second", port):
            async def kept() -> bool:  # the first try may meet a broken pooled connection
                try:
                    return (await peer.keep_alive()).status == 200
                except (OSError, P2PError):  # the RS closed it without a reply
                    return False
            await async_retry(kept, what="the peer kept alive after the restart")
            assert peer.cookie != first  # registered afresh
            assert (await other.register(di.PeerAddr("peer2", 4002))).status == 200
            _, seen = await other.pquery()
            assert [(p.host, p.port) for p in seen.items] == [("peer1", 4001)]
    finally:
        await asyncio.wait_for(server.aclose(), 30)
