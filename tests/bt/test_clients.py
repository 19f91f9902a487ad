"""Real clients with each other, through a tracker: the harness itself, and the baseline
that p2pshare's interop tests are read against (docs/bittorrent.md#interoperability)."""

from __future__ import annotations

import pytest

from .clients import Aria2, Client, LibTorrent, Transmission
from .conftest import COMPLETE, Swarm
from .qbittorrent import QBittorrent
from .torrents import same_content

# (seed, leech, kind, tracker protocol): every client seeds and leeches at least once,
# every kind a client supports is seeded by it once, HTTP and UDP announces both used.
PAIRS: list[tuple[type[Client], type[Client], str, str]] = [
    (LibTorrent, Aria2, "v1", "http"),
    (Aria2, LibTorrent, "v1", "http"),  # aria2: HTTP only (clients.Aria2 says why)
    (Transmission, LibTorrent, "v1", "udp"),
    (LibTorrent, Transmission, "v1", "http"),
    (QBittorrent, LibTorrent, "v1", "udp"),
    (QBittorrent, LibTorrent, "v2", "http"),
    (LibTorrent, QBittorrent, "hybrid", "udp"),
]


@pytest.mark.parametrize(("seeder", "leecher", "kind", "via"), PAIRS,
                         ids=[f"{s.name}-{le.name}-{k}-{v}" for s, le, k, v in PAIRS])
def test_client_seeds_client_leeches(swarm: Swarm, seeder: type[Client],
                                     leecher: type[Client], kind: str, via: str) -> None:
    torrent = swarm.torrent(kind, via)
    seed, leech = swarm.client(seeder), swarm.client(leecher)
    out = swarm.out(leecher.name)
    swarm.start(torrent, [seed], {leech: out})
    leech.wait_complete(COMPLETE)
    assert same_content(out / torrent.name, torrent.content)
