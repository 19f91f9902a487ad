"""A swarm seeder that dies in the middle of a piece, as a crashed host does.

    python -m tests.adversarial.halfseed TRACKER_PORT FILE PIECE_SIZE

A real ``SwarmPeer`` shares FILE (hashed into PIECE_SIZE pieces, as ``p2pshare share
--piece-size`` does, so both are one swarm) and announces every piece. The first piece it
is asked for goes out half, then the process sends itself SIGKILL: the downloader holds
half an answer and a dead connection (every piece takes ``Link.sendfile``, never the
at-once path, nor the piece server's one-pass answer to pipelined requests). Prints
``serving`` once announced.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import BinaryIO

from p2pshare.net.runtime import Link
from p2pshare.swarm.seeder import PieceServer
from p2pshare.swarm.session import SwarmPeer
from p2pshare.swarm.storage import hash_file

HOST = "127.0.0.1"
_sendfile = Link.sendfile


async def half_then_die(self: Link, file: BinaryIO, offset: int, count: int) -> None:
    await _sendfile(self, file, offset, count // 2)
    self.flush()
    await self.drain()
    os.kill(os.getpid(), signal.SIGKILL)


def never_at_once(self: Link, file: BinaryIO, offset: int, count: int) -> int:
    return 0  # the socket took nothing at once: the rest goes by ``sendfile``


def never_quick(self: PieceServer, link: Link, data: bytes) -> None:
    return None  # every request by the general path, which ends in ``sendfile``


async def main(port: int, path: Path, piece_size: int) -> None:
    manifest = hash_file(path, piece_size)
    Link.sendfile = half_then_die  # type: ignore[method-assign]
    Link.sendfile_now = never_at_once  # type: ignore[method-assign]
    PieceServer.quick = never_quick  # type: ignore[method-assign]
    async with SwarmPeer.open(HOST, port, listen=HOST) as peer:
        await peer.share(path, manifest)
        print("serving", flush=True)
        await peer.tracker.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])))
