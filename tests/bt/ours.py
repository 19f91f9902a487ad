"""p2pshare itself as a BitTorrent client of the interop tests: ``p2pshare seed`` and
``p2pshare fetch FILE.torrent|MAGNET``, as processes, behind the same four verbs.

Strategy: the commands run with ``--json`` so that the harness reads events (``started``
with the port, ``finished`` once every piece is verified and the file has its final
name), not the words of a progress line. p2pshare listens on an address of its own in
127.0.0.0/8, as every client does, and announces and connects from it (``--listen``), so
that is the address a tracker sees and hands out. A fetch keeps seeding
once complete (``--seed``), so that a mixed swarm can take pieces from it too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path

from ..helpers import cli_env
from .clients import Client
from .torrents import TestTorrent


class P2PShare(Client):
    name, kinds, program = "p2pshare", ("v1", "v2", "hybrid"), "python3"

    @classmethod
    def missing(cls) -> str | None:
        if find_spec("p2pshare.cli.bt_cmds") is None:
            return "p2pshare seed / fetch of torrents are not in this tree yet (bt-session)"
        return None

    def run(self, *args: str) -> None:
        self.spawn([sys.executable, "-m", "p2pshare", *args, "--listen", self.host,
                    "--port", str(self.port), "--json"], env=cli_env())

    def events(self, kind: str) -> list[dict[str, object]]:
        found = []
        for line in self.procs[-1].output.splitlines() if self.procs else []:
            if line.startswith("{") and f'"{kind}"' in line:
                event = json.loads(line)
                if event.get("event") == kind:
                    found.append(event)
        return found

    def seed(self, torrent: TestTorrent) -> None:
        self.run("seed", str(torrent.path), "--dir", str(torrent.data_dir))

    def leech(self, torrent: TestTorrent, out: Path, magnet: bool = False,
              peers: Sequence[str] = ()) -> None:
        target = torrent.magnet if magnet else str(torrent.path)
        self.run("fetch", target, "--out", str(out), "--seed",
                 *(f"--peer={p}" for p in peers))

    def complete(self) -> bool:
        return bool(self.events("finished"))
