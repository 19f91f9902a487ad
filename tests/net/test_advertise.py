"""The host a peer advertises (``net.advertise``): the given one, else our address on the
connection to the server; never ``gethostname()``. The CI, DI and swarm peers all use it,
over real loopback servers here.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from p2pshare.dipeer.peer import DIPeer
from p2pshare.index.server import IndexServer
from p2pshare.net.advertise import Advertised, advertised_host
from p2pshare.peer.node import Peer
from p2pshare.registry.server import RegistrationServer
from p2pshare.samples import write_sample_rfcs
from p2pshare.swarm.session import SwarmPeer
from p2pshare.swarm.tracker import Tracker

from ..aio import HOST, arun, index_server, serving
from ..helpers import IPV6_LOOPBACK

UNRESOLVABLE = "no-such-peer.invalid"  # RFC 6761: .invalid never resolves


@arun
async def test_the_default_is_our_address_towards_the_server() -> None:
    assert await advertised_host(None, HOST, "::ffff:127.0.0.1") == Advertised(HOST)
    assert await advertised_host(None, "192.0.2.7", "192.0.2.1") == Advertised("192.0.2.1")


@arun
async def test_loopback_towards_a_server_named_otherwise_is_said() -> None:
    chosen = await advertised_host(None, "indexhost", "127.0.1.1")
    assert chosen.host == "127.0.1.1" and "loopback" in chosen.note
    assert chosen.shown(5678).startswith("127.0.1.1:5678 (loopback")
    assert (await advertised_host(None, "localhost", HOST)).note == ""


@arun
async def test_a_given_host_wins_and_a_name_that_does_not_resolve_is_warned(
        caplog: pytest.LogCaptureFixture) -> None:
    assert await advertised_host("192.0.2.9", HOST, HOST) == Advertised("192.0.2.9")
    assert await advertised_host("localhost", HOST, HOST) == Advertised("localhost", "as given")
    with caplog.at_level(logging.WARNING, logger="p2pshare.net.advertise"):
        chosen = await advertised_host(UNRESOLVABLE, HOST, HOST)
    assert chosen.host == UNRESOLVABLE and "does not resolve" in chosen.note
    assert [r.getMessage() for r in caplog.records] == [
        f"{UNRESOLVABLE} does not resolve here; advertising it anyway"]


@arun
async def test_the_ci_peer_advertises_its_address_on_the_index_connection(
        tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path, {123: 1_000})
    async with index_server() as (server, port):
        peer = Peer(tmp_path, (HOST, port), upload_host=HOST)
        try:
            await peer.start()
            assert peer.hostname == HOST != socket.gethostname()
            assert [(r.host, r.port) for r in server.index.lookup(123)] == [
                (HOST, peer.upload_port)]  # the Host header of ADD
        finally:
            await peer.aclose()


@arun
async def test_the_di_peer_advertises_its_address_towards_the_rs(tmp_path: Path) -> None:
    async with serving(RegistrationServer()) as port:
        async with DIPeer((HOST, port), tmp_path) as peer:
            assert peer.me.host == HOST and peer.advertised.note == ""


@pytest.mark.skipif(not IPV6_LOOPBACK, reason="no IPv6 loopback here")
@arun
async def test_the_swarm_peer_advertises_its_address_towards_the_tracker() -> None:
    server_host = "::1"
    server = IndexServer(tracker=Tracker())
    _, port = await server.start(server_host, 0)
    try:
        async with SwarmPeer.open(server_host, port) as peer:
            assert peer.address is not None
            assert peer.address[0] == server_host and peer.advertised.note == ""
    finally:
        await server.aclose()
