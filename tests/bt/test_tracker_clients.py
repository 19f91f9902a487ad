"""Real BitTorrent clients find each other through ``p2pshare server``'s tracker.

aria2c seeds and another aria2c downloads through the HTTP tracker; two libtorrent sessions
do the same through the UDP tracker with a v2-only torrent (announced under its truncated
hash, BEP 52); and an aria2c seed announcing over HTTP is found by a libtorrent leech
announcing over UDP (two .torrent files of one info dictionary, differing only in their
tracker). Each download's bytes must equal the seed's. The torrents are made by
libtorrent itself. Every client runs with DHT, local peer discovery, UPnP, NAT-PMP and
peer exchange off: the tracker is the only way its peers can meet.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pshare.bt.announce import scrape

from ..aio import free_port
from ..helpers import DEADLINE, read_until, spawn_cli, wait_for
from .lt import make_torrent as lt_torrent

lt: Any = pytest.importorskip("libtorrent")

SIZE = 768 * 1024 + 123  # a short last piece
PIECE = 64 * 1024
DOWNLOAD_DEADLINE = 60.0  # seconds a download may take on a busy machine
ARIA2_OFF = ["--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
             "--enable-peer-exchange=false", "--disable-ipv6=true", "--file-allocation=none",
             "--console-log-level=warn", "--summary-interval=0", "--check-certificate=false"]


@pytest.fixture
def tracker() -> Iterator[tuple[str, str]]:
    """``p2pshare server`` with its HTTP and UDP tracker on free ports: (http, udp) URLs."""
    proc = spawn_cli(["server", "--listen", "127.0.0.1", "--port", "0",
                      "--http-port", "0", "--udp-port", "0"])
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


def make_torrent(data: Path, tracker_url: str, *, v2: bool = False) -> bytes:
    """A .torrent of ``data`` made by libtorrent (v1 only, or v2 only)."""
    return lt_torrent(data, "v2" if v2 else "v1", PIECE, (tracker_url,))


def with_tracker(torrent: bytes, tracker_url: str) -> bytes:
    """The same info dictionary (so the same info-hash) with another tracker."""
    info = lt.torrent_info(lt.bdecode(torrent))
    meta = {b"announce": tracker_url.encode(), b"info": lt.bdecode(info.info_section())}
    return bytes(lt.bencode(meta))


def seed_file(tmp_path: Path) -> Path:
    folder = tmp_path / "seed"
    folder.mkdir()
    data = folder / "payload.bin"
    data.write_bytes(os.urandom(SIZE))
    return data


def wait_for_seeds(announce_url: str, torrent: bytes, count: int = 1) -> None:
    """Until the tracker counts ``count`` seeds of ``torrent`` (then a leech will be told)."""
    info = lt.torrent_info(lt.bdecode(torrent))
    hashes = info.info_hashes()
    info_hash = bytes(hashes.v1.to_bytes()) if hashes.has_v1() else bytes(
        hashes.v2.to_bytes())

    asked = [0.0]

    def seeded() -> bool:
        # Ask five times a second at most: the tracker answers an address ten scrapes a
        # second (after a burst), and a refusal would end the wait.
        if time.monotonic() - asked[0] < 0.2:
            return False
        asked[0] = time.monotonic()
        stats = asyncio.run(scrape(announce_url, [info_hash], timeout=DEADLINE))
        return any(s.complete >= count for s in stats.values())

    wait_for(seeded, DEADLINE, "the seed to announce itself to the tracker")


def aria2(torrent: Path, folder: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["aria2c", *ARIA2_OFF, f"--dir={folder}", *extra, str(torrent)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(DEADLINE)


LT_PEER = Path(__file__).parents[2] / "bench" / "lt_peer.py"


def lt_peer(torrent: bytes, folder: Path, *, seed: bool) -> subprocess.Popen[bytes]:
    """``bench/lt_peer.py``: one libtorrent session in a process of its own (DHT, LSD,
    UPnP and NAT-PMP off), seeding ``folder``'s file or downloading into it; a download
    creates ``folder/done`` once every piece is verified and written. A process of its
    own also gives each peer a fresh libtorrent: it keeps UDP connection ids per tracker
    IP address for a minute, across sessions, and would offer one tracker's id to the
    next tracker of another test."""
    folder.mkdir(exist_ok=True)
    path = folder.parent / f"{folder.name}.torrent"
    path.write_bytes(torrent)
    args = [sys.executable, str(LT_PEER), "--torrent", str(path), "--save", str(folder),
            "--listen", f"127.0.0.1:{free_port()}", "--max-seconds", str(DOWNLOAD_DEADLINE)]
    args += ["--seed"] if seed else ["--done-file", str(folder / "done")]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_done(proc: subprocess.Popen[bytes], folder: Path) -> None:
    wait_for(lambda: (folder / "done").exists() or proc.poll() is not None,
             DOWNLOAD_DEADLINE, "the libtorrent download")
    assert (folder / "done").exists(), proc.stdout.read() if proc.stdout else ""


pytestmark = pytest.mark.skipif(shutil.which("aria2c") is None, reason="aria2c missing")


def test_aria2_seeds_and_leeches_through_the_http_tracker(
        tracker: tuple[str, str], tmp_path: Path) -> None:
    data = seed_file(tmp_path)
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(make_torrent(data, tracker[0]))
    seed = aria2(torrent, data.parent, "--seed-ratio=0.0", "--bt-seed-unverified=true",
                 f"--listen-port={free_port()}")
    try:
        wait_for_seeds(tracker[0], torrent.read_bytes())
        out = tmp_path / "out"
        leech = aria2(torrent, out, "--seed-time=0", f"--listen-port={free_port()}")
        try:
            leech.wait(DOWNLOAD_DEADLINE)
        finally:
            stop(leech)
        assert leech.returncode == 0, leech.stdout.read() if leech.stdout else ""
        assert (out / data.name).read_bytes() == data.read_bytes()
    finally:
        stop(seed)


def test_libtorrent_peers_meet_through_the_udp_tracker_with_a_v2_torrent(
        tracker: tuple[str, str], tmp_path: Path) -> None:
    data = seed_file(tmp_path)
    torrent = make_torrent(data, tracker[1], v2=True)
    seed = lt_peer(torrent, data.parent, seed=True)
    try:
        wait_for_seeds(tracker[1], torrent)
        out = tmp_path / "out"
        leech = lt_peer(torrent, out, seed=False)
        try:
            wait_done(leech, out)
        finally:
            stop(leech)
        assert (out / data.name).read_bytes() == data.read_bytes()
    finally:
        stop(seed)


def test_an_http_seed_and_a_udp_leech_meet_in_one_swarm(
        tracker: tuple[str, str], tmp_path: Path) -> None:
    data = seed_file(tmp_path)
    over_http = make_torrent(data, tracker[0])
    torrent = tmp_path / "http.torrent"
    torrent.write_bytes(over_http)
    seed = aria2(torrent, data.parent, "--seed-ratio=0.0", "--bt-seed-unverified=true",
                 f"--listen-port={free_port()}")
    try:
        over_udp = with_tracker(over_http, tracker[1])
        wait_for_seeds(tracker[1], over_udp)  # the HTTP seed, seen over UDP
        out = tmp_path / "out"
        leech = lt_peer(over_udp, out, seed=False)
        try:
            wait_done(leech, out)
        finally:
            stop(leech)
        assert (out / data.name).read_bytes() == data.read_bytes()
    finally:
        stop(seed)
