"""The piece server's sending: a piece the socket takes whole goes out at once, in the
request's own callback (one ``os.sendfile``, no task); the rest of one it does not take
whole follows as the socket drains, byte-exact."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from p2pshare.net.link import Link
from p2pshare.swarm.link import PeerLink
from p2pshare.swarm.manifest import Manifest
from p2pshare.swarm.pieces import full
from p2pshare.swarm.seeder import PieceServer
from p2pshare.swarm.storage import Library, PieceFile, hash_file

from ..aio import HOST, arun, serving


@asynccontextmanager
async def seeded(path: Path, piece_size: int) -> AsyncIterator[tuple[int, Manifest]]:
    manifest = hash_file(path, piece_size)
    library = Library()
    library.add(PieceFile(manifest, [open(path, "rb", buffering=0)],  # noqa: SIM115
                          full(manifest.count)))
    try:
        async with serving(PieceServer(library)) as port:
            yield port, manifest
    finally:
        library.close()


def count_waiting_sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the count of every send of file bytes that waits for the socket."""
    calls: list[int] = []
    original = Link._send_file  # under ``sendfile`` and a quick answer's rest

    async def counted(self: Link, file: Any, offset: int, count: int) -> None:
        calls.append(count)
        await original(self, file, offset, count)

    monkeypatch.setattr(Link, "_send_file", counted)
    return calls


async def fetch_all(port: int, manifest: Manifest, ahead: int) -> list[bytes]:
    """Every piece, ``ahead`` requests in flight, each answer's body in order."""
    link = await PeerLink.connect((HOST, port))
    bodies: list[bytes] = []
    try:
        asked = 0
        while len(bodies) < manifest.count:
            while asked < manifest.count and asked - len(bodies) < ahead:
                link.request(manifest.id, asked)
                asked += 1
            index, head, body = await link.read_piece()
            assert (index, head.status) == (len(bodies), 200)
            bodies.append(bytes(body))
    finally:
        link.close()
    return bodies


@arun
async def test_a_piece_the_socket_takes_whole_needs_no_waiting_send(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(16 * 256 * 1024))
    waiting = count_waiting_sends(monkeypatch)
    async with seeded(path, 256 * 1024) as (port, manifest):
        bodies = await fetch_all(port, manifest, ahead=1)
    assert b"".join(bodies) == path.read_bytes()
    assert len(waiting) < manifest.count  # some went whole from the request's callback


@arun
async def test_the_rest_of_a_piece_follows_as_the_socket_drains(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """16 MiB pieces, two asked at once: more than the socket buffers take at once."""
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(2 * 16 * 1024 * 1024 - 12345))
    waiting = count_waiting_sends(monkeypatch)
    async with seeded(path, 16 * 1024 * 1024) as (port, manifest):
        bodies = await fetch_all(port, manifest, ahead=2)
    assert b"".join(bodies) == path.read_bytes()
    assert waiting  # at least one piece's rest waited for the socket
