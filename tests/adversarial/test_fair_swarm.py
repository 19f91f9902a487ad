"""Issue #12, the swarm under Sybil attack: fake members that trickle, and one host taking
a piece server's upload slots. The attacker is on 127.0.0.2 (and .3 …), the victim and
the honest seeder on 127.0.0.1, over real loopback sockets.

Each test asserts the victim's outcome (its download completes with the right bytes) and
the budgets: the links the victim opens to members that never delivered stay within
``MAX_UNTESTED_LINKS``; the tricklers' links were dropped for slowness; one address holds
at most its share of a piece server's upload slots.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pshare import limits
from p2pshare.protocol import swarm as sp
from p2pshare.swarm.fetch import SwarmDownload
from p2pshare.swarm.manifest import Manifest

from ..aio import Raw, arun
from ..helpers import async_wait_for
from ..swarm.test_faults import leech, make_file, peer, tracker_server
from .sybil import SybilStats, sybil_members

MiB = 1024 * 1024
ATTACKER = "127.0.0.2"


def assert_tricklers_dropped(download: SwarmDownload, sybils: SybilStats,
                             seeder: tuple[str, int]) -> None:
    drops = {a: download.roster.slow_drops(a) for a in sybils.addresses}
    assert sum(drops.values()) >= 1, "no trickler was dropped for slowness"
    assert all(not download.roster.tested(a) for a in sybils.addresses)
    assert download.roster.slow_drops(seeder) == 0  # the honest seeder was kept
    assert download.roster.tested(seeder)
    assert sybils.most_open <= limits.MAX_UNTESTED_LINKS  # the probe budget held


@arun
async def test_sybil_tricklers_cannot_hold_a_download(tmp_path: Path) -> None:
    """40 fake members on two attacker hosts (more than MAX_PEER_CONNECTIONS) take every
    connection the victim offers them and trickle a byte every 200 ms; the seeder (paced
    to make the download last two judging periods) is found, the tricklers lose their
    requests and their links, and never hold more than the probe budget of links. (Before
    issue #12 the victim held 31 links to them at once.)"""
    path, manifest = make_file(tmp_path / "seed", 2 * MiB)
    async with tracker_server() as port, \
            sybil_members(port, manifest, [ATTACKER, "127.0.0.3"], 40) as sybils, \
            peer(port, rate_limit=1 * MiB) as seed:
        await seed.share(path, manifest)
        download, result = await leech(port, manifest, tmp_path / "out")
    assert result.read_bytes() == path.read_bytes()
    assert seed.address is not None
    assert_tricklers_dropped(download, sybils, seed.address)


@arun
async def test_sybils_each_on_its_own_host_are_probed_through(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """32 fake members, each on its own address (no host order helps): the victim probes
    them a few at a time and drops each trickler when judged, until it finds the seeder.
    Judging starts after 0.3 s here instead of 1 s, to keep the test short."""
    monkeypatch.setattr(limits, "LINK_JUDGE_AFTER", 0.3)
    path, manifest = make_file(tmp_path / "seed", 1 * MiB)
    hosts = [f"127.0.0.{i}" for i in range(2, 34)]
    async with tracker_server() as port, sybil_members(port, manifest, hosts, 32) as sybils, \
            peer(port) as seed:
        await seed.share(path, manifest)
        download, result = await leech(port, manifest, tmp_path / "out")
    assert result.read_bytes() == path.read_bytes()
    assert sybils.most_open <= limits.MAX_UNTESTED_LINKS
    assert seed.address is not None
    assert download.roster.tested(seed.address)
    assert all(not download.roster.tested(a) for a in sybils.addresses)


# ---------------------------------------------------------------------- upload slots
async def hold_slots(port: int, manifest: Manifest, source: str, count: int) -> list[Raw]:
    """``count`` connections from ``source``, each asking for a piece and reading nothing."""
    ask = sp.PipelinedClient().send(*sp.to_request(sp.GetPiece(manifest.id, 0)))
    held = []
    for _ in range(count):
        raw = await Raw.connect(port, source=source)
        await raw.send(ask)
        held.append(raw)
    return held


@arun
async def test_one_address_with_64_connections_leaves_upload_slots(tmp_path: Path) -> None:
    """The piece server has 8 upload slots (lowered for the test); 127.0.0.2 opens 64
    connections and asks each for a piece: it holds at most its per-source share of
    connections, and at most every slot; a victim from 127.0.0.1 still gets a slot (the
    least productive of the attacker's) and completes."""
    path, manifest = make_file(tmp_path / "seed", 1 * MiB)
    async with tracker_server() as port, peer(port) as seed:
        await seed.share(path, manifest)
        pieces = seed.server
        assert pieces is not None and seed.address is not None
        pieces.max_uploads = 8
        held = await hold_slots(seed.address[1], manifest, ATTACKER, 64)
        await async_wait_for(lambda: pieces.slots.count(ATTACKER) == 8, what="slots held")
        assert pieces.server.per_source[ATTACKER] <= limits.MAX_UPLOADS_PER_SOURCE
        _, result = await leech(port, manifest, tmp_path / "out")
        assert pieces.evicted >= 1  # the victim took one of the attacker's slots
        assert pieces.slots.count(ATTACKER) <= 8
        for raw in held:
            raw.reset()
    assert result.read_bytes() == path.read_bytes()


@arun
async def test_every_slot_taken_a_newcomer_still_gets_one(tmp_path: Path) -> None:
    """Four attacker addresses hold 16 connections each: all 64 upload slots, each address
    at its cap of 16 (MAX_UPLOADS_PER_SOURCE). The victim from 127.0.0.1 gets a slot from
    one of them, fairly, and completes; no attacker address ever holds more than 16."""
    path, manifest = make_file(tmp_path / "seed", 1 * MiB)
    attackers = [f"127.0.0.{i}" for i in range(2, 6)]
    async with tracker_server() as port, peer(port) as seed:
        await seed.share(path, manifest)
        pieces = seed.server
        assert pieces is not None and seed.address is not None
        held = [raw for source in attackers
                for raw in await hold_slots(seed.address[1], manifest, source, 16)]
        await async_wait_for(lambda: pieces.uploads == limits.SWARM_MAX_UPLOADS,
                             what="every slot held")
        _, result = await leech(port, manifest, tmp_path / "out")
        assert pieces.evicted >= 1
        assert max(pieces.slots.count(a) for a in attackers) <= limits.MAX_UPLOADS_PER_SOURCE
        for raw in held:
            raw.reset()
    assert result.read_bytes() == path.read_bytes()
