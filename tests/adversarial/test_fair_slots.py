"""Slots are shared, not first come: a host that takes every slot of a server does not
keep another host out (issue: hostile peers, "Slots").

The attacker's connections come from 127.0.0.2-5 (any 127.x address is this machine on
Linux loopback), the victim's from 127.0.0.1. Each attacker connection asks a peer's upload
server for a 64 MiB file with a receive window of 4 KiB and never reads: together they hold
every upload slot, each stalled in ``sendfile``. The victim still downloads, because when
the server is full the address holding the most slots gives up its least productive one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path

import pytest

from p2pshare import limits
from p2pshare.peer.client import fetch_from
from p2pshare.peer.upload import UploadServer

from ..aio import HOST, arun, serving
from ..helpers import async_wait_for

ATTACKERS = [f"127.0.0.{n}" for n in range(2, 6)]
BIG = 64 * limits.MiB


async def hog(port: int, source: str) -> socket.socket | None:
    """One connection from ``source`` that asks for the big file and never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    sock.bind((source, 0))
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_connect(sock, (HOST, port))
        await loop.sock_sendall(sock, b"GET RFC 2 P2P-CI/1.0\r\nHost: a\r\nOS: x\r\n\r\n")
    except OSError:  # refused or evicted before it could ask
        sock.close()
        return None
    return sock


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "rfc1.txt").write_bytes(os.urandom(256 * 1024))
    with open(shared / "rfc2.txt", "wb") as big:
        big.truncate(BIG)  # sparse: costs no disk
    return shared


@arun
async def test_hogged_upload_slots_still_serve_another_host(
        folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    server = UploadServer(folder)
    async with serving(server) as port:
        socks = [s for source in ATTACKERS
                 for s in await asyncio.gather(*(hog(port, source)
                                                 for _ in range(limits.MAX_UPLOADS)))]
        try:
            await async_wait_for(lambda: server.server.active == limits.MAX_UPLOADS,
                                 what="every upload slot held by the attackers")
            assert max(server.server.per_source.values()) == limits.MAX_UPLOADS_PER_SOURCE
            got = tmp_path / "got"
            got.mkdir()
            for _ in range(3):  # each GET takes room from the biggest attacker
                assert await fetch_from(got, 1, HOST, port) == 256 * 1024
            assert (got / "rfc1.txt").read_bytes() == (folder / "rfc1.txt").read_bytes()
            assert server.server.evicted >= 3
            assert server.server.active <= limits.MAX_UPLOADS
        finally:
            for sock in socks:
                if sock is not None:
                    sock.close()
    # evicting or closing a connection inside sendfile leaves asyncio's transport whole
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
