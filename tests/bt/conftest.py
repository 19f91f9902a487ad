"""The ``swarm`` and ``swarms`` fixtures of the interop tests: a tracker, torrents,
clients, all stopped and checked at the end of each test.

Strategy: a test asks the fixture for what it needs in the order it needs it (a torrent,
then clients); the fixture skips the test, with the reason, when a client or the tracker
cannot run here, and at teardown stops and reaps every process, then fails the test if any
client had a socket outside loopback. Every swarm announces to one tracker for the whole
session (each has torrents of its own, so they do not meet). ``swarms`` makes several
swarms for one test, so that swarms that mostly wait (on Transmission's re-choke pulse)
wait at once; ``check_all`` then waits for each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from .clients import Client
from .torrents import TestTorrent, made_by_p2pshare, make_content, make_torrent
from .trackers import P2PShareTracker

C = TypeVar("C", bound=Client)
# Seconds a client may take to download a few MiB on loopback. Transmission takes about
# 12-15 s either way: it decides interest and unchoking only at its re-choke pulse (10 s).
COMPLETE = 30.0


class Swarm:
    """One test's torrents and clients, and the tracker they announce to."""

    def __init__(self, work: Path, tracker: P2PShareTracker) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.tracker = tracker
        self.torrents: list[TestTorrent] = []
        self.clients: list[Client] = []

    def torrent(self, kind: str, via: str = "http", files: int = 1,
                by_p2pshare: bool = False) -> TestTorrent:
        """A ``kind`` torrent of fresh content announcing to the tracker ``via`` HTTP or
        UDP, made by libtorrent (or ``by_p2pshare``)."""
        folder = self.work / f"content{len(self.torrents)}"
        content = make_content(folder, "data" if files > 1 else "data.bin", files=files)
        url = self.tracker.http if via == "http" else self.tracker.udp
        make = made_by_p2pshare if by_p2pshare else make_torrent
        torrent = make(content, kind, [url], folder.with_suffix(".torrent"))
        self.torrents.append(torrent)
        return torrent

    def client(self, kind: type[C]) -> C:
        reason = kind.missing()
        if reason:
            pytest.skip(reason)
        client = kind(self.work)
        self.clients.append(client)
        return client

    def start(self, torrent: TestTorrent, seeds: list[Client],
              leeches: dict[Client, Path], magnet: bool = False) -> None:
        """Start ``seeds``, then ``leeches`` (each into its folder), in the order a
        tracker-only swarm needs: a client that does not dial loopback peers announces
        itself before the seeds, so that they connect to it; the others after the
        seeds, so that their first announce finds them."""
        passive = {c: out for c, out in leeches.items() if not c.dials_loopback}
        for client, out in passive.items():
            client.leech(torrent, out, magnet)
        if passive:
            self.tracker.wait_peers(torrent, incomplete=len(passive),
                                    watched=[p for c in passive for p in c.procs])
        for seed in seeds:
            seed.seed(torrent)
        self.tracker.wait_peers(torrent, complete=len(seeds),
                                watched=[p for c in seeds for p in c.procs])
        for client, out in leeches.items():
            if client not in passive:
                client.leech(torrent, out, magnet)

    def out(self, name: str) -> Path:
        path = self.work / "out" / name
        path.mkdir(parents=True)
        return path

    def stop(self) -> list[str]:
        """Stop everything; the sockets that left loopback."""
        for client in self.clients:
            client.stop()
        return [f"{c.name}: {line}" for c in self.clients for line in c.strays]


def check_all(checks: dict[str, Callable[[], None]]) -> None:
    """Run each check of a swarm already started (by name); fail, after all, with every
    failure."""
    failed = []
    for name, check in checks.items():
        try:
            check()
        except AssertionError as e:
            failed.append(f"{name}: {e}")
    assert not failed, "\n\n".join(failed)


@pytest.fixture(scope="session")
def trackers() -> Iterator[list[P2PShareTracker]]:
    """The tracker the swarms of every test share (the last of the list; one that has
    exited is replaced), stopped at the end of the session."""
    started: list[P2PShareTracker] = []
    try:
        yield started
    finally:
        for tracker in started:
            tracker.stop()


@pytest.fixture
def swarms(tmp_path: Path, trackers: list[P2PShareTracker]) -> Iterator[Callable[[], Swarm]]:
    """Makes swarms, announcing to the session's tracker."""
    if not trackers or not trackers[-1].procs[0].alive():
        reason = P2PShareTracker.missing()
        if reason:
            pytest.skip(reason)
        trackers.append(P2PShareTracker(tmp_path))
    made: list[Swarm] = []

    def make() -> Swarm:
        made.append(Swarm(tmp_path / f"swarm{len(made)}", trackers[-1]))
        return made[-1]

    try:
        yield make
    finally:
        strays = [line for s in made for line in s.stop()]
    assert not strays, "sockets outside loopback:\n" + "\n".join(strays)


@pytest.fixture
def swarm(swarms: Callable[[], Swarm]) -> Swarm:
    return swarms()
