"""The tracker of the interop tests (one for the session), on loopback: its announce
URLs and a scrape.

Strategy: the tracker is p2pshare's own (``p2pshare server --http-port 0 --udp-port 0``),
so every client-to-client test is also a test of it: the clients announce to it over
HTTP and UDP and find their peers through it. A test makes its torrents for its URLs
before any client starts. (The harness was first built against opentracker, the
reference tracker, which bench/swarm still uses; p2pshare's tracker replaced it here.)
Tests wait on the tracker, not on time: ``wait_peers(torrent, complete=N)`` polls a BEP 48
scrape until the seeds have announced themselves, so a leech's first announce finds them.
"""

from __future__ import annotations

import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path

from p2pshare import limits
from p2pshare.protocol.bencode import BencodeError, decode

from ..helpers import cli_env
from .procs import Watched, wait_until
from .torrents import TestTorrent

STARTUP = 10.0  # seconds a tracker may take to listen


class P2PShareTracker:
    """``p2pshare server --http-port 0 --udp-port 0`` (the index server beside it is not
    used), started at once: its ports are read from what it prints."""

    name = "p2pshare-tracker"
    LINE = r"^\[Tracker\] {} on \w+://127\.0\.0\.1:(\d+)/announce"

    @staticmethod
    def missing() -> str | None:
        if find_spec("p2pshare.bt.tracker_server") is None:
            return "p2pshare's tracker is not in this tree yet (bt-tracker)"
        return None

    def __init__(self, work: Path) -> None:
        self.home = work / "tracker"
        self.home.mkdir(parents=True)
        self.procs = [Watched(self.name, [
            sys.executable, "-m", "p2pshare", "server", "--listen", "127.0.0.1", "--port", "0",
            "--http-port", "0", "--udp-port", "0"], self.home / "log", env=cli_env())]
        self.port = int(self.wait_line("HTTP"))
        self.udp_port = int(self.wait_line("UDP"))

    def wait_line(self, what: str) -> str:
        pattern = re.compile(self.LINE.format(what), re.M)
        wait_until(lambda: pattern.search(self.procs[0].output), STARTUP,
                   f"the tracker's {what} port", self.procs)
        found = pattern.search(self.procs[0].output)
        assert found is not None
        return found.group(1)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}/announce"

    @property
    def udp(self) -> str:
        return f"udp://127.0.0.1:{self.udp_port}/announce"

    def scrape(self, info_hash: bytes) -> dict[bytes, int] | None:
        """The scrape entry of ``info_hash`` (empty if unknown); None if no answer."""
        quoted = "".join(f"%{b:02x}" for b in info_hash)
        url = self.http.replace("/announce", "/scrape") + f"?info_hash={quoted}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                scraped = decode(answer.read())
        except (urllib.error.URLError, OSError, BencodeError):
            return None
        if not isinstance(scraped, dict) or b"files" not in scraped:
            return None
        files = scraped[b"files"]
        assert isinstance(files, dict), files
        entry = files.get(info_hash, {})
        assert isinstance(entry, dict), entry
        return {key: count for key, count in entry.items() if isinstance(count, int)}

    def wait_peers(self, torrent: TestTorrent, complete: int = 0, incomplete: int = 0,
                   timeout: float = 20.0, watched: Sequence[Watched] = ()) -> None:
        """Until the tracker counts at least ``complete`` seeds and ``incomplete`` leeches
        of ``torrent`` (under one of its info-hashes)."""

        asked = [0.0]

        def counted() -> bool:
            # Ten scrapes a second at most: what the tracker grants an address after a
            # burst, and every test of the session scrapes this tracker from 127.0.0.1.
            if time.monotonic() - asked[0] < 1 / limits.TRACKER_ANNOUNCE_RATE:
                return False
            asked[0] = time.monotonic()
            entries = [self.scrape(h) or {} for h in torrent.announce_hashes]
            return any(e.get(b"complete", 0) >= complete
                       and e.get(b"incomplete", 0) >= incomplete for e in entries)

        wait_until(counted, timeout, f"{complete} seed(s), {incomplete} leech(es) at the "
                   "tracker", [*self.procs, *watched])

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()
