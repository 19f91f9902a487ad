"""Helpers for tests over real loopback sockets: running async tests, raw-byte clients.

``arun`` runs an async test function with ``asyncio.run`` (pytest-asyncio is not used),
under an overall deadline; ``arun_steady`` without one, for a test whose length is a
transfer's, which a busy machine stretches (each of its waits has a deadline instead).
``Raw`` is a byte-level client: it sends exactly the bytes it is
given and reads exact counts, so a test can compare replies byte for byte.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import struct
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from p2pshare.index.server import IndexServer
from p2pshare.index.store import MemoryIndex
from p2pshare.peer.upload import UploadServer

from .helpers import DEADLINE

HOST = "127.0.0.1"
TEST_DEADLINE = 8.0  # seconds a whole async test may take


AsyncTest = Callable[..., Coroutine[Any, Any, None]]


def arun(test: AsyncTest) -> Callable[..., None]:
    """Turn ``async def test_x(...)`` into a sync test run by ``asyncio.run``."""
    return _run_under(test, TEST_DEADLINE)


def arun_steady(test: AsyncTest) -> Callable[..., None]:
    """``arun`` with no overall deadline: every wait of ``test`` must have its own (e.g.
    ``Raw.recv_steadily``), so that it fails when nothing moves, not when the machine is slow."""
    return _run_under(test, None)


def _run_under(test: AsyncTest, deadline: float | None) -> Callable[..., None]:
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        async def bounded() -> None:
            async with asyncio.timeout(deadline):
                await test(*args, **kwargs)

        asyncio.run(bounded())

    return run


class Server(Protocol):
    async def start(self, host: str, port: int) -> tuple[str, int]: ...
    async def aclose(self) -> None: ...


@asynccontextmanager
async def serving(server: Server) -> AsyncIterator[int]:
    """``server`` listening on 127.0.0.1, any free port; yields the port."""
    _, port = await server.start(HOST, 0)
    try:
        yield port
    finally:
        await server.aclose()


@asynccontextmanager
async def index_server(index: MemoryIndex | None = None) -> AsyncIterator[tuple[IndexServer, int]]:
    """A real index server on 127.0.0.1, any free port."""
    server = IndexServer(index)
    async with serving(server) as port:
        yield server, port


def upload_server(folder: Path) -> AbstractAsyncContextManager[int]:
    """A real upload server for ``folder`` on 127.0.0.1; yields its port."""
    return serving(UploadServer(folder))


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Raw:
    """A client that sends and reads raw bytes, each read under ``DEADLINE``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, *, rcvbuf: int | None = None,
                      source: str | None = None) -> Raw:
        """Connect to ``127.0.0.1:port``; ``rcvbuf`` shrinks our receive window; ``source``
        is the address to connect from (any 127.x address on Linux loopback)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source is not None:
            sock.bind((source, 0))
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
        return cls(*await asyncio.open_connection(sock=sock))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self, count: int) -> bytes:
        """Exactly ``count`` bytes (fewer only if the other side closed)."""
        try:
            async with asyncio.timeout(DEADLINE):
                return await self.reader.readexactly(count)
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    async def recv_steadily(self, count: int) -> bytes:
        """Exactly ``count`` bytes (fewer only if the other side closed), however long they
        take in all, as long as each read brings some within ``DEADLINE``."""
        got = bytearray()
        while len(got) < count:
            async with asyncio.timeout(DEADLINE):
                chunk = await self.reader.read(count - len(got))
            if not chunk:
                break
            got += chunk
        return bytes(got)

    async def expect(self, request: bytes, reply: bytes) -> None:
        """Send ``request``; the next ``len(reply)`` bytes must be exactly ``reply``."""
        await self.send(request)
        assert await self.recv(len(reply)) == reply

    async def line(self) -> bytes:
        async with asyncio.timeout(DEADLINE):
            return await self.reader.readline()

    async def rest(self) -> bytes:
        """Everything until the other side closes."""
        async with asyncio.timeout(DEADLINE):
            return await self.reader.read()

    async def finish(self) -> bytes:
        """Close our sending half, then return whatever else arrives before the close."""
        self.writer.write_eof()
        return await self.rest()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()

    def reset(self) -> None:
        """Abort the connection with a RST (SO_LINGER 0), as a crashed host's stack would."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
