"""A seed or a fetch told ``--listen ADDR`` announces and connects from ADDR.

The tracker lists the address an announce comes from (docs/bittorrent.md#tracker); a
``p2pshare seed`` listening on 127.0.0.x must therefore be listed there, not at the
127.0.0.1 the system would pick towards a tracker on 127.0.0.1, where nothing listens.
Real processes on loopback: ``p2pshare server`` as the tracker (HTTP or UDP), a seed and
a fetch each on its own address of 127.0.0.0/8. ``Origin`` itself (``net.origin``): the
wildcard and names bind nothing, and another family falls back to the system's choice,
logged once.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from p2pshare.bt.announce import announce
from p2pshare.net.origin import Origin

from ..aio import arun
from ..helpers import IPV6_LOOPBACK, async_wait_for, wait_for
from .conftest import COMPLETE, Swarm
from .ours import P2PShare
from .torrents import digest


def bindable(host: str) -> bool:
    try:
        with socket.socket() as sock:
            sock.bind((host, 0))
    except OSError:
        return False
    return True


def listed(url: str, info_hash: bytes) -> set[tuple[str, int]]:
    """The peers the tracker lists for ``info_hash`` (asked as a leech that leaves at
    once: its own entry is gone again)."""
    async def ask() -> set[tuple[str, int]]:
        pid = b"-PS0000-listedpeers0"
        got = await announce(url, info_hash, pid, 9, "started", 0, 0, 1, 50, timeout=5)
        await announce(url, info_hash, pid, 9, "stopped", 0, 0, 1, timeout=5)
        return set(got.peers)
    return asyncio.run(ask())


@pytest.mark.skipif(not bindable("127.0.0.2"), reason="127.0.0.2 cannot be bound here")
@pytest.mark.parametrize("via", ["http", "udp"])
def test_seed_and_fetch_on_one_address_are_listed_at_it(swarm: Swarm, via: str) -> None:
    torrent = swarm.torrent("hybrid", via, by_p2pshare=True)
    seed, leech = swarm.client(P2PShare), swarm.client(P2PShare)
    assert "127.0.0.1" not in (seed.host, leech.host)  # each its own 127.0.0.x
    seed.seed(torrent)
    swarm.tracker.wait_peers(torrent, complete=1, watched=seed.procs)
    digest_ = torrent.announce_hashes[0]
    assert (seed.host, seed.port) in listed(swarm.tracker.http, digest_)
    out = swarm.out("leech")
    leech.leech(torrent, out)  # from the tracker's list only: no --peer
    leech.wait_complete(COMPLETE)
    assert digest(out / torrent.name) == digest(torrent.content)
    wait_for(lambda: (leech.host, leech.port) in listed(swarm.tracker.http, digest_),
             what="the fetch listed at its own address")


@arun
async def test_the_wildcard_and_names_bind_nothing() -> None:
    assert Origin(["0.0.0.0", "::", "localhost"]).hosts == ()
    assert await Origin(["0.0.0.0"]).local_addr("127.0.0.1", 80) is None
    both = Origin(["127.0.0.2", "::1", "::ffff:127.0.0.3"])
    assert both.hosts == ("127.0.0.2", "::1", "127.0.0.3")
    assert await both.local_addr("127.0.0.1", 80) == ("127.0.0.2", 0)
    assert await both.local_addr("::1", 80) == ("::1", 0)


async def sources(origin: Origin, host: str, times: int = 1) -> list[str]:
    """The addresses a server on ``host`` sees ``times`` connections from ``origin`` by."""
    seen: list[str] = []

    async def note(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("peername")[0])
        writer.close()

    server = await asyncio.start_server(note, host, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for _ in range(times):
            _, writer = await origin.open_connection(host, port)
            writer.close()
        await async_wait_for(lambda: len(seen) == times)
    finally:
        server.close()
    return seen


@pytest.mark.skipif(not IPV6_LOOPBACK, reason="no IPv6 loopback")
@arun
async def test_another_family_connects_from_the_system_choice_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="p2pshare.net.origin"):
        assert await sources(Origin(["127.0.0.2"]), "::1", times=2) == ["::1", "::1"]
    assert len([r for r in caplog.records if "system picks" in r.getMessage()]) == 1


@pytest.mark.skipif(not bindable("127.0.0.2"), reason="127.0.0.2 cannot be bound here")
@arun
async def test_a_stream_leaves_from_the_origin() -> None:
    assert await sources(Origin(["127.0.0.2"]), "127.0.0.1") == ["127.0.0.2"]
