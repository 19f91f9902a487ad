"""The tracker of an interop test, on loopback: its announce URLs and a scrape.

Strategy: a test makes its torrents for a tracker's URLs before any client starts, so a
tracker is created with its ports known (``http``, ``udp``) and told the torrents once
they exist (``start(torrents)``: opentracker, the reference, must be told the info-hashes
it serves; p2pshare's tracker serves any).
Tests wait on the tracker, not on time: ``wait_peers(torrent, complete=N)`` polls a BEP 48
scrape until the seeds have announced themselves, so a leech's first announce finds them.
"""

from __future__ import annotations

import re
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path

from p2pshare.protocol.bencode import BencodeError, decode

from ..helpers import cli_env
from .procs import Watched, free_port, wait_until
from .torrents import TestTorrent

STARTUP = 10.0  # seconds a tracker may take to listen


class Tracker:
    """What both trackers share: their URLs, a scrape, the wait for peers, the stop."""

    name: str
    port: int  # HTTP and UDP (on one port, or udp_port)
    procs: list[Watched]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}/announce"

    @property
    def udp(self) -> str:
        return f"udp://127.0.0.1:{self.udp_port}/announce"

    @property
    def udp_port(self) -> int:
        return self.port

    def start(self, torrents: Sequence[TestTorrent]) -> None:
        """Serve ``torrents`` (made for this tracker's URLs)."""

    def scrape(self, info_hash: bytes) -> dict[bytes, int] | None:
        """The scrape entry of ``info_hash`` (empty if unknown); None if no answer."""
        quoted = "".join(f"%{b:02x}" for b in info_hash)
        url = self.http.replace("/announce", "/scrape") + f"?info_hash={quoted}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                files = decode(answer.read())[b"files"]  # type: ignore[index]
        except (urllib.error.URLError, OSError, BencodeError, KeyError, TypeError):
            return None
        entry = files.get(info_hash, {})  # type: ignore[union-attr]
        return dict(entry)

    def wait_peers(self, torrent: TestTorrent, complete: int = 0, incomplete: int = 0,
                   timeout: float = 20.0, watched: Sequence[Watched] = ()) -> None:
        """Until the tracker counts at least ``complete`` seeds and ``incomplete`` leeches
        of ``torrent`` (under one of its info-hashes)."""

        def counted() -> bool:
            entries = [self.scrape(h) or {} for h in torrent.announce_hashes]
            return any(e.get(b"complete", 0) >= complete
                       and e.get(b"incomplete", 0) >= incomplete for e in entries)

        wait_until(counted, timeout, f"{complete} seed(s), {incomplete} leech(es) at the "
                   "tracker", [*self.procs, *watched])

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()


class P2PShareTracker(Tracker):
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
        self._udp = int(self.wait_line("UDP"))

    @property
    def udp_port(self) -> int:
        return self._udp

    def wait_line(self, what: str) -> str:
        pattern = re.compile(self.LINE.format(what), re.M)
        wait_until(lambda: pattern.search(self.procs[0].output), STARTUP,
                   f"the tracker's {what} port", self.procs)
        found = pattern.search(self.procs[0].output)
        assert found is not None
        return found.group(1)


class OpenTracker(Tracker):
    """opentracker (Debian's build serves only whitelisted info-hashes), HTTP and UDP on
    one port of 127.0.0.1. It drops root for ``nobody``, which clears "die with the
    parent"; so it runs as PID 1's child in a PID namespace of its own, which the kernel
    kills whole when the test process dies."""

    name = "opentracker"

    @staticmethod
    def missing() -> str | None:
        return None if shutil.which("opentracker") else "opentracker is not installed"

    def __init__(self, work: Path) -> None:
        self.home = work / "opentracker"
        self.home.mkdir(parents=True)
        self.home.chmod(0o755)  # it chroots here as nobody
        self.port = free_port()
        self.procs: list[Watched] = []

    def start(self, torrents: Sequence[TestTorrent]) -> None:
        (self.home / "whitelist").write_text(
            "".join(h.hex() + "\n" for t in torrents for h in t.announce_hashes))
        guard = ["unshare", "--pid", "--fork", "--kill-child=SIGKILL", "sh", "-c",
                 'opentracker "$@"; exit $?', "opentracker"]
        self.procs.append(Watched(self.name, [
            *guard, "-i", "127.0.0.1", "-p", str(self.port), "-P", str(self.port),
            "-d", str(self.home), "-u", "nobody", "-w", "whitelist"],
            self.home / "log", cwd=self.home))
        wait_until(lambda: self.scrape(b"\0" * 20) is not None, STARTUP,
                   "opentracker to answer", self.procs)

