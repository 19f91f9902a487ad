"""Real BitTorrent clients as processes on loopback: libtorrent, aria2, Transmission.

Strategy: one small class per client with the same four verbs, so that a test names only
roles (who seeds, who leeches, which torrent kind) and the matrix of docs/bittorrent.md's
interoperability table is a parametrisation:

- ``seed(torrent)``: serve the content from ``torrent.data_dir``;
- ``leech(torrent, out, magnet=..., peers=...)``: download into ``out`` from the .torrent
  or its magnet link, through the torrent's tracker and (where the client can) from peers
  given directly;
- ``wait_complete(timeout)``: until the client says every piece is verified and written
  (its own "download complete" hook or API, never a guess from the file's size);
- ``stop()``: stop and reap every process; ``strays`` lists any socket that left loopback.

Every client listens on an address of its own in 127.0.0.0/8 (``loopback_host``), on a
free port, with its settings in a folder of its own (no user configuration is read or
written), and with DHT, local peer discovery, UPnP and NAT-PMP off; the torrents name only
the test's tracker, so nothing can leave loopback, and ``procs.Watched`` checks that
nothing does. qBittorrent is in qbittorrent.py.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from .procs import STOP_DEADLINE, Watched, free_port, wait_until
from .torrents import TestTorrent

LT_PEER = Path(__file__).resolve().parents[2] / "bench" / "lt_peer.py"
_ids = itertools.count()


def loopback_host(n: int) -> str:
    """The ``n``-th address of 127.0.0.0/8 for a peer (127.0.0.1 is the tracker's):
    qBittorrent (libtorrent 2.0.8) drops an incoming peer from its own address, and by
    default libtorrent takes one connection per address, so every peer has its own, as
    machines do."""
    return f"127.0.{1 + n // 250}.{2 + n % 250}"


class Client:
    """What every client wrapper shares: a home folder, a port, its processes."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]  # the torrent kinds it can use
    program: ClassVar[str]  # the command that must be installed
    # Whether it connects to loopback peers it learns from a tracker; if not, a swarm
    # must start it as a leech first, so that the seed connects to it.
    dials_loopback: ClassVar[bool] = True
    trackers: ClassVar[tuple[str, ...]] = ("http", "udp")  # the tracker protocols it speaks
    # Seconds it may take to exit on SIGTERM before it is killed (nothing of its state is
    # read after a test).
    stop_grace: ClassVar[float] = STOP_DEADLINE

    @classmethod
    def missing(cls) -> str | None:
        """Why this client cannot run here, or None."""
        return None if shutil.which(cls.program) else f"{cls.program} is not installed"

    def __init__(self, work: Path) -> None:
        n = next(_ids)
        self.home = work / f"{self.name}-{n}"
        self.home.mkdir(parents=True)
        self.host = loopback_host(n)
        self.port = free_port(self.host)
        self.procs: list[Watched] = []
        self.done_file = self.home / "complete"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def strays(self) -> list[str]:
        return [line for proc in self.procs for line in proc.strays]

    def spawn(self, args: Sequence[str], env: dict[str, str] | None = None) -> Watched:
        proc = Watched(self.name, args, self.home / "log", env=env, cwd=self.home)
        self.procs.append(proc)
        return proc

    def seed(self, torrent: TestTorrent) -> None:
        raise NotImplementedError

    def leech(self, torrent: TestTorrent, out: Path, magnet: bool = False,
              peers: Sequence[str] = ()) -> None:
        raise NotImplementedError

    def done_hook(self) -> Path:
        """A script for a client's "download complete" hook: it creates ``done_file``."""
        hook = self.home / "hook"
        hook.write_text(f"#!/bin/sh\n: > '{self.done_file}'\n")
        hook.chmod(0o755)
        return hook

    def complete(self) -> bool:
        return self.done_file.exists()

    def wait_complete(self, timeout: float) -> None:
        def done() -> bool:
            if not self.complete() and not any(p.alive() for p in self.procs):
                last = self.procs[-1]
                raise AssertionError(f"{self.name} exited with status {last.popen.returncode} "
                                     f"(negative: killed by that signal):\n"
                                     f"{last.output[-3000:]}")
            return self.complete()

        wait_until(done, timeout, f"{self.name} to complete", self.procs)

    def wait_listening(self, timeout: float) -> None:
        def accepts() -> bool:
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
            except OSError:
                return False
            return True

        wait_until(accepts, timeout, f"{self.name} to listen on {self.port}", self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop(self.stop_grace)


class LibTorrent(Client):
    """libtorrent (the wheel) through bench/lt_peer.py: one session per process, TCP only."""

    name, kinds, program = "libtorrent", ("v1", "v2", "hybrid"), "python3"

    @classmethod
    def missing(cls) -> str | None:
        try:
            import libtorrent  # noqa: F401
        except ImportError:
            return "the libtorrent wheel is not installed (pip install -e '.[test]')"
        return None

    def run(self, source: list[str], save: Path, *extra: str) -> None:
        self.spawn([sys.executable, str(LT_PEER), *source, "--save", str(save),
                    "--listen", self.address, "--max-seconds", "300", *extra])

    def seed(self, torrent: TestTorrent) -> None:
        self.run(["--torrent", str(torrent.path)], torrent.data_dir, "--seed")

    def leech(self, torrent: TestTorrent, out: Path, magnet: bool = False,
              peers: Sequence[str] = ()) -> None:
        source = ["--magnet", torrent.magnet] if magnet else ["--torrent", str(torrent.path)]
        self.run(source, out, "--done-file", str(self.done_file),
                 *(f"--peer={p}" for p in peers))


class Aria2(Client):
    """aria2c: BitTorrent v1 only (it cannot read a v2 info dictionary); no way to name a
    peer, so it meets others through the tracker only. aria2 1.36 announces over UDP
    only with its DHT on (its UDP tracker client shares the DHT's socket: "udp is not
    supported yet" otherwise), and the DHT stays off here, so it announces over HTTP."""

    name, kinds, program = "aria2", ("v1",), "aria2c"
    trackers = ("http",)
    # On SIGTERM it takes about 1 s to exit (telling the tracker it stops): 8 cases, 8 s of
    # the suite, for nothing a test reads.
    stop_grace = 0.2

    def run(self, directory: Path, *extra: str) -> None:
        hook = self.done_hook()
        self.spawn(["aria2c", "--no-conf=true", f"--dir={directory}", "--seed-ratio=0.0",
                    "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
                    "--disable-ipv6=true", f"--interface={self.host}",
                    f"--listen-port={self.port}", "--bt-save-metadata=false",
                    "--file-allocation=none", "--auto-save-interval=0",
                    "--summary-interval=0", "--console-log-level=notice",
                    "--download-result=hide", f"--stop-with-process={os.getpid()}",
                    f"--on-bt-download-complete={hook}", *extra])

    def seed(self, torrent: TestTorrent) -> None:
        self.run(torrent.data_dir, f"--torrent-file={torrent.path}", "--check-integrity=true")

    def leech(self, torrent: TestTorrent, out: Path, magnet: bool = False,
              peers: Sequence[str] = ()) -> None:
        self.run(out, torrent.magnet if magnet else f"--torrent-file={torrent.path}")


class Transmission(Client):
    """transmission-cli 3.00: BitTorrent v1 only; it keeps seeding once complete (no
    ratio limit), and is stopped like the others; no way to name a peer. It drops every
    peer at 127.0.0.0/8 that a tracker or PEX names (3.00's ``isMartianAddr``; later
    versions allow loopback for incoming peers only), so on loopback it downloads only
    from peers that connect to it."""

    name, kinds, program = "transmission", ("v1",), "transmission-cli"
    dials_loopback = False

    def settings(self, directory: Path) -> dict[str, object]:
        return {"dht-enabled": False, "lpd-enabled": False, "utp-enabled": False,
                "port-forwarding-enabled": False, "pex-enabled": True,
                "bind-address-ipv4": self.host, "bind-address-ipv6": "::1",
                "peer-port": self.port, "peer-port-random-on-start": False,
                "rpc-enabled": False, "blocklist-enabled": False,
                "encryption": 0,  # prefer plain connections (no MSE/PE in p2pshare)
                "ratio-limit-enabled": False, "idle-seeding-limit-enabled": False,
                "speed-limit-up-enabled": False, "speed-limit-down-enabled": False,
                "download-dir": str(directory), "incomplete-dir-enabled": False,
                "rename-partial-files": False, "message-level": 2}

    def run(self, directory: Path, source: str, *extra: str) -> None:
        config = self.home / "config"
        config.mkdir()
        (config / "settings.json").write_text(json.dumps(self.settings(directory)))
        hook = self.done_hook()
        self.spawn(["transmission-cli", "-g", str(config), "-p", str(self.port), "-M",
                    "-w", str(directory), "-f", str(hook), *extra, source],
                   env={**os.environ, "HOME": str(self.home)})

    def seed(self, torrent: TestTorrent) -> None:
        self.run(torrent.data_dir, str(torrent.path), "-v")

    def leech(self, torrent: TestTorrent, out: Path, magnet: bool = False,
              peers: Sequence[str] = ()) -> None:
        self.run(out, torrent.magnet if magnet else str(torrent.path))
