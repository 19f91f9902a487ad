"""p2pshare's tracker and opentracker, the reference, given the same announces, answer alike.

Both run as processes on loopback; one script of announces (joins, a seed, a completion,
a stop) goes to each over HTTP and over UDP through p2pshare's announce client, and the
answers are compared where docs/bittorrent.md#tracker-vs-opentracker says they agree:
the counts of seeds and leeches, the peers listed (opentracker also lists the asker, which
p2pshare leaves out), intervals in opentracker's range, and the scrape counts. The
Debian build of opentracker tracks only the info-hashes of its whitelist.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pshare import limits
from p2pshare.bt.announce import announce, scrape
from p2pshare.errors import PeerGone
from p2pshare.protocol.bt_tracker import AnnounceEvent, AnnounceResult, TrackerFailure

from ..aio import free_port
from ..helpers import DEADLINE, read_until, spawn_cli, wait_for

OPENTRACKER = shutil.which("opentracker")
pytestmark = pytest.mark.skipif(OPENTRACKER is None or os.geteuid() != 0,
                                reason="opentracker (run as root, which it drops) missing")
HASH = bytes.fromhex("5a" * 20)
WAIT = 5.0

# (port, left, event): three leeches, one of which completes, a seed, a leech that stops.
SCRIPT = [(7001, 100, AnnounceEvent.STARTED), (7002, 100, AnnounceEvent.STARTED),
          (7003, 0, AnnounceEvent.STARTED), (7001, 0, AnnounceEvent.COMPLETED),
          (7004, 100, AnnounceEvent.STARTED), (7002, 100, AnnounceEvent.STOPPED),
          (7004, 100, AnnounceEvent.NONE)]


@pytest.fixture
def opentracker() -> Iterator[tuple[str, str]]:
    """opentracker on a free port (TCP and UDP), whitelisting HASH: (http, udp) URLs."""
    folder = Path(tempfile.mkdtemp())
    try:
        folder.chmod(0o755)  # it chroots here, then reads as nobody
        (folder / "whitelist").write_text(HASH.hex() + "\n")
        (folder / "ot.conf").write_text("access.whitelist ./whitelist\n")
        port = free_port()
        proc = subprocess.Popen(
            [str(OPENTRACKER), "-f", str(folder / "ot.conf"), "-i", "127.0.0.1",
             "-p", str(port), "-P", str(port), "-u", "nobody", "-d", str(folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            http, udp = f"http://127.0.0.1:{port}/announce", f"udp://127.0.0.1:{port}"
            wait_for(lambda: _ready(http), DEADLINE, "opentracker to load its whitelist")
            yield http, udp
        finally:
            proc.terminate()
            proc.wait(DEADLINE)
    finally:
        shutil.rmtree(folder)


def _ready(url: str) -> bool:
    try:
        asyncio.run(announce(url, HASH, b"-PS0001-readyreadyre", 7999, "stopped", 0, 0, 0,
                             timeout=WAIT))
    except (TrackerFailure, PeerGone):
        return False  # not listening yet, or the whitelist not loaded yet
    return True


@pytest.fixture
def ours() -> Iterator[tuple[str, str]]:
    proc = spawn_cli(["server", "--listen", "127.0.0.1", "--port", "0", "--http-port", "0",
                      "--udp-port", "0"])
    try:
        assert proc.stdout is not None
        seen = read_until(proc.stdout, "[Tracker] UDP on")
        http = re.search(r"HTTP on (http://\S+)", seen)
        udp = re.search(r"UDP on (udp://\S+)", seen)
        assert http and udp, seen
        yield http.group(1), udp.group(1)
    finally:
        proc.terminate()
        proc.wait(DEADLINE)


async def play(url: str) -> list[tuple[int, int | None, int | None, set[tuple[str, int]]]]:
    """The script's answers as (interval, seeds, leeches, peers other than the asker)."""
    out = []
    for port, left, event in SCRIPT:
        result: AnnounceResult = await announce(url, HASH, f"-PS0001-{port:012d}".encode(),
                                                port, event, 0, 0, left, timeout=WAIT)
        if event is not AnnounceEvent.STOPPED:  # opentracker lists no peers then
            others = set(result.peers) - {("127.0.0.1", port)}
            out.append((result.interval, result.complete, result.incomplete, others))
    return out


@pytest.mark.parametrize("via", [0, 1], ids=["http", "udp"])
def test_the_same_announces_get_the_same_answers(opentracker: tuple[str, str],
                                                 ours: tuple[str, str], via: int) -> None:
    theirs, mine = asyncio.run(play(opentracker[via])), asyncio.run(play(ours[via]))
    spread = (limits.TRACKER_INTERVAL - limits.TRACKER_INTERVAL_SPREAD,
              limits.TRACKER_INTERVAL + limits.TRACKER_INTERVAL_SPREAD)
    for (t_interval, *t_rest), (m_interval, *m_rest) in zip(theirs, mine, strict=True):
        assert spread[0] <= t_interval <= spread[1] and spread[0] <= m_interval <= spread[1]
        assert t_rest[:2] == m_rest[:2]  # seeds and leeches
    # Peers: the same (a seed is given leeches first, then seeds to fill numwant: in a
    # swarm smaller than numwant, everyone but the asker, as opentracker gives).
    ports = [port for port, _, event in SCRIPT if event is not AnnounceEvent.STOPPED]
    for port, t, m in zip(ports, theirs, mine, strict=True):
        assert t[3] == m[3], f"announce of port {port}"
    t_stats = asyncio.run(scrape(opentracker[via], [HASH], timeout=WAIT))[HASH]
    m_stats = asyncio.run(scrape(ours[via], [HASH], timeout=WAIT))[HASH]
    assert (t_stats.complete, t_stats.incomplete) == (m_stats.complete, m_stats.incomplete)
