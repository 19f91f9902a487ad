"""Listening: host None is every address, IPv4 and IPv6, on ONE dual-stack socket (one port
for both families), for every server, since every server listens through ``net.runtime``;
an explicit address binds that one only; an IPv4 client of the dual-stack socket is one
source under its IPv4 address (admission, per-source budgets, the tracker's records).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from p2pshare.dipeer.index import RFCIndex
from p2pshare.dipeer.peer import DIPeer
from p2pshare.dipeer.server import RFCServer
from p2pshare.host import plain_ip
from p2pshare.index.server import IndexServer
from p2pshare.net import runtime
from p2pshare.peer.node import Peer
from p2pshare.peer.upload import UploadServer
from p2pshare.registry.server import RegistrationServer
from p2pshare.samples import write_sample_rfcs
from p2pshare.swarm.seeder import PieceServer
from p2pshare.swarm.session import SwarmPeer
from p2pshare.swarm.storage import Library, hash_file
from p2pshare.swarm.tracker import Tracker

from ..aio import arun
from ..helpers import DEADLINE, IPV6_LOOPBACK, async_wait_for

needs_ipv6 = pytest.mark.skipif(not IPV6_LOOPBACK, reason="no IPv6 loopback here")

# Every server, made with its defaults: ``start(port=0)`` must listen on every address.
SERVERS: dict[str, Callable[[Path], Any]] = {
    "index": lambda _: IndexServer(),
    "rs": lambda _: RegistrationServer(),
    "upload": UploadServer,
    "rfc": lambda folder: RFCServer(folder, RFCIndex()),
    "pieces": lambda _: PieceServer(Library()),
}


async def connects(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host:port`` is accepted."""
    try:
        async with asyncio.timeout(DEADLINE):
            _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


@pytest.mark.parametrize("kind", SERVERS)
@arun
async def test_every_server_listens_on_both_families_at_one_port(kind: str,
                                                                 tmp_path: Path) -> None:
    server = SERVERS[kind](tmp_path)
    host, port = await server.start(port=0)
    try:
        assert port != 0
        assert await connects("127.0.0.1", port)
        if IPV6_LOOPBACK:
            assert host == "::"
            assert await connects("::1", port)
    finally:
        await server.aclose()


@needs_ipv6
@arun
async def test_an_explicit_address_binds_only_it() -> None:
    for bound, other in (("127.0.0.1", "::1"), ("::1", "127.0.0.1")):
        server = IndexServer()
        _, port = await server.start(bound, 0)
        try:
            assert await connects(bound, port)
            assert not await connects(other, port)
        finally:
            await server.aclose()


@needs_ipv6
@arun
async def test_an_ipv4_client_of_the_dual_stack_socket_is_its_ipv4_address() -> None:
    server = IndexServer()
    _, port = await server.start(None, 0)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        _, writer6 = await asyncio.open_connection("::1", port)
        await async_wait_for(lambda: server.server.active == 2)
        assert server.server.per_source == {"127.0.0.1": 1, "::1": 1}
        assert {link.peername[0] for link in server.server.links} == {"127.0.0.1", "::1"}
        for w in (writer, writer6):
            w.close()
            await w.wait_closed()
    finally:
        await server.aclose()


@needs_ipv6
@arun
async def test_ipv4_peers_of_dual_stack_servers_are_recorded_by_their_ipv4_address(
        tmp_path: Path) -> None:
    """Per-source budgets and the tracker's records see 127.0.0.1, not ::ffff:127.0.0.1."""
    write_sample_rfcs(tmp_path, {123: 1_000})
    (tmp_path / "big.bin").write_bytes(b"x" * 1_000)
    index = IndexServer(tracker=Tracker())
    rs = RegistrationServer()
    _, index_port = await index.start(None, 0)
    _, rs_port = await rs.start(None, 0)
    try:
        peer = Peer(tmp_path, ("127.0.0.1", index_port), hostname="peerA")
        await peer.start()
        assert index.index.records_from("127.0.0.1") == 1
        await peer.aclose()
        async with DIPeer(("127.0.0.1", rs_port), tmp_path) as di_peer:
            assert (await di_peer.register()).status == 200
            assert rs.registry.held("127.0.0.1") == 1
        async with SwarmPeer.open("127.0.0.1", index_port, advertise="peerA") as swarm_peer:
            manifest = hash_file(tmp_path / "big.bin")
            await swarm_peer.share(tmp_path / "big.bin", manifest)
            async with SwarmPeer.open("127.0.0.1", index_port) as other:
                listed = await other.tracker.peers(manifest)
        assert swarm_peer.address is not None
        assert [(e.host, e.port) for e in listed] == [("127.0.0.1", swarm_peer.address[1])]
    finally:
        await index.aclose()
        await rs.aclose()


def test_without_ipv6_every_address_is_ipv4(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "has_dualstack_ipv6", lambda: False)
    with runtime.all_addresses(0) as sock:
        assert sock.family == socket.AF_INET and sock.getsockname()[0] == "0.0.0.0"


def test_plain_ip() -> None:
    assert plain_ip("::ffff:127.0.0.1") == "127.0.0.1"
    assert plain_ip("::FFFF:10.1.2.3") == "10.1.2.3"
    for same in ("::1", "127.0.0.1", "example.org", "::ffff:nonsense", "fe80::1%lo"):
        assert plain_ip(same) == same
