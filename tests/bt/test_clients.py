"""Real clients with each other, through a tracker: the harness itself, and the baseline
that p2pshare's interop tests are read against (docs/bittorrent.md#interoperability)."""

from __future__ import annotations

from collections.abc import Callable

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


def pair_id(seeder: type[Client], leecher: type[Client], kind: str, via: str) -> str:
    return f"{seeder.name}-{leecher.name}-{kind}-{via}"


def pair(swarm: Swarm, seeder: type[Client], leecher: type[Client], kind: str,
         via: str) -> Callable[[], None]:
    """Starts the pair's swarm; returns its check."""
    torrent = swarm.torrent(kind, via)
    seed, leech = swarm.client(seeder), swarm.client(leecher)
    out = swarm.out(leecher.name)
    swarm.start(torrent, [seed], {leech: out})

    def check() -> None:
        leech.wait_complete(COMPLETE)
        assert same_content(out / torrent.name, torrent.content)

    return check


# Transmission's pairs run in test_interop.py's test_every_case_at_once.
APART = [p for p in PAIRS if Transmission not in p[:2]]


@pytest.mark.parametrize(("seeder", "leecher", "kind", "via"), APART,
                         ids=[pair_id(*p) for p in APART])
def test_client_seeds_client_leeches(swarm: Swarm, seeder: type[Client],
                                     leecher: type[Client], kind: str, via: str) -> None:
    pair(swarm, seeder, leecher, kind, via)()
