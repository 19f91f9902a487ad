"""One process of the experiment: the RS / index server, or one peer, driven by JSON lines.

Strategy: the coordinator (``run``) starts each role as its own process, as the handout
asks ("real processes"). A worker prints one JSON object per line on stdout and reads
commands on stdin:

    server:  -> {"ready": port, "loop": "uvloop"}                ... until stdin closes
    peer:    -> {"ready": port, "loop": "asyncio"}
             <- {"prepare": [[host, port], ...]}   DI: PQuery, RFCQuery each; CI: LIST
             -> {"prepared": seconds}
             <- {"go": [[rfc, host, port], ...]}   download each, one at a time, in order
             -> {"done": [[rfc, bytes, lookup_s, transfer_s], ...]}
             ... keeps serving its RFCs until stdin closes, then leaves.

Each runs on the event loop its command would (``net.loops``: uvloop for the servers when
installed, asyncio's own for the peers, ``P2PSHARE_LOOP`` overriding) and says which in
its first line. Times are ``time.perf_counter`` around the exchanges themselves: a DI
download is one GetRFC (the index was merged in ``prepare``); a CI download is LOOKUP
then GET, since a CI peer has no index of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from ..dipeer.client import Fetched, get_rfc
from ..dipeer.peer import DIPeer
from ..errors import ConfigError, P2PError
from ..host import split_hostport
from ..index.server import IndexServer
from ..net.loops import loop_factory, loop_name
from ..peer.client import fetch_from
from ..peer.node import Peer
from ..protocol import di
from ..registry.server import RegistrationServer
from ..stdin import StdinLines
from .plan import ExperimentError

HOST = "127.0.0.1"
DownloadRow = list[float]  # [rfc, bytes, lookup seconds, transfer seconds]


def emit(**message: Any) -> None:
    print(json.dumps(message), flush=True)


async def serve(system: str) -> None:
    server: RegistrationServer | IndexServer = (
        RegistrationServer() if system == "di" else IndexServer())
    _, port = await server.start(HOST, 0)
    emit(ready=port, loop=loop_name())
    lines = StdinLines()
    while await lines.next() is not None:
        pass
    await server.aclose()


class DIWorker:
    def __init__(self, server: tuple[str, int], folder: Path) -> None:
        self.peer = DIPeer(server, folder, hostname=HOST, bind=HOST)
        self.folder = folder

    async def start(self) -> int:
        await self.peer.start()
        await self.peer.register()
        return self.peer.me.port

    async def prepare(self, sources: list[di.PeerAddr]) -> None:
        active = set(await self.peer.pquery())
        for source in sources:
            if source not in active:
                raise ExperimentError(f"{source} is not active at the RS")
            await self.peer.rfc_query(source)

    async def download(self, rfc: int, holder: di.PeerAddr) -> DownloadRow:
        if holder not in [h.addr for h in self.peer.index.holders(rfc)]:
            raise ExperimentError(f"RFC {rfc}: {holder} is not in the merged index")
        got = await get_rfc(holder, rfc, self.folder)
        if not isinstance(got, Fetched):
            raise ExperimentError(f"RFC {rfc} from {holder}: {got.status}")
        self.peer.index.add_local(rfc, "")
        return [rfc, got.size, 0.0, got.seconds]

    async def aclose(self) -> None:
        await self.peer.aclose()


class CIWorker:
    def __init__(self, server: tuple[str, int], folder: Path) -> None:
        self.peer = Peer(folder, server, hostname=HOST, upload_host=HOST)
        self.folder = folder

    async def start(self) -> int:
        await self.peer.start()
        return self.peer.upload_port

    async def prepare(self, _sources: list[di.PeerAddr]) -> None:
        assert self.peer.index is not None
        await self.peer.index.list_all()

    async def download(self, rfc: int, holder: di.PeerAddr) -> DownloadRow:
        assert self.peer.index is not None
        start = time.perf_counter()
        found = await self.peer.index.lookup(rfc)
        if (holder.host, holder.port) not in {(r.host, r.port) for r in found.records}:
            raise ExperimentError(f"RFC {rfc}: LOOKUP does not list {holder}")
        looked = time.perf_counter()
        size = await fetch_from(self.folder, rfc, holder.host, holder.port)
        return [rfc, size, looked - start, time.perf_counter() - looked]

    async def aclose(self) -> None:
        await self.peer.aclose()


async def run_experiment_peer(system: str, server: tuple[str, int], folder: Path) -> None:
    """A peer that runs the coordinator's steps, one JSON line of stdin each, until EOF."""
    worker = DIWorker(server, folder) if system == "di" else CIWorker(server, folder)
    try:
        emit(ready=await worker.start(), loop=loop_name())
        lines = StdinLines()
        while (line := await lines.next()) is not None:
            command = json.loads(line)
            if "prepare" in command:
                emit(prepared=await _timed(worker.prepare(
                    [di.PeerAddr(h, p) for h, p in command["prepare"]])))
            elif "go" in command:
                emit(done=[await worker.download(rfc, di.PeerAddr(h, p))
                           for rfc, h, p in command["go"]])
    finally:
        await worker.aclose()


async def _timed(step: Awaitable[None]) -> float:
    start = time.perf_counter()
    await step
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m p2pshare.experiment.worker")
    parser.add_argument("role", choices=["server", "peer"])
    parser.add_argument("--system", choices=["di", "ci"], required=True)
    parser.add_argument("--server", help="RS or index server HOST:PORT (peers)")
    parser.add_argument("--dir", type=Path, help="the peer's folder (peers)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        factory = loop_factory(fast_loop=args.role == "server")  # as its command's
        with asyncio.Runner(loop_factory=factory) as runner:
            if args.role == "server":
                runner.run(serve(args.system))
            else:
                runner.run(run_experiment_peer(
                    args.system, split_hostport(args.server, 0), args.dir))
    except ConfigError as exc:  # P2PSHARE_LOOP: a usage error, as for any command
        print(f"experiment worker: {exc}", file=sys.stderr)
        return 2
    except (P2PError, OSError) as exc:  # a failed step: one line; the coordinator reports it
        print(f"experiment worker: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
