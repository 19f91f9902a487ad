"""Real P2P-DI servers and peers on 127.0.0.1 for tests, any free port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from p2pshare.dipeer.peer import DIPeer
from p2pshare.registry.server import RegistrationServer
from p2pshare.registry.store import Registry
from p2pshare.samples import sample_text, write_sample_rfcs

from ..aio import HOST, Raw


class Net:
    """An RS and the peers a test started; everything is closed on exit."""

    def __init__(self, rs: RegistrationServer, root: Path, stack: AsyncExitStack) -> None:
        self.rs = rs
        self.root = root
        self.rs_log: list[str] = []
        self._stack = stack

    @property
    def rs_port(self) -> int:
        return self.rs.address[1]

    async def peer(self, name: str, rfcs: dict[int, int] | None = None,
                   register: bool = True) -> DIPeer:
        """A started peer named ``name`` whose folder holds ``rfcs`` (number -> size)."""
        folder = self.root / name
        folder.mkdir()
        write_sample_rfcs(folder, rfcs or {})
        peer = DIPeer((HOST, self.rs_port), folder, hostname=HOST, bind=HOST)
        await self._stack.enter_async_context(peer)
        if register:
            await peer.register()
        return peer

    async def raw(self, port: int, request: bytes) -> bytes:
        """Send raw bytes and our EOF on a new connection; all received until the close."""
        raw = await Raw.connect(port)
        try:
            await raw.send(request)
            return await raw.finish()
        finally:
            await raw.close()


@asynccontextmanager
async def di_net(root: Path, registry: Registry | None = None) -> AsyncIterator[Net]:
    async with AsyncExitStack() as stack:
        rs = RegistrationServer(registry)
        await rs.start(HOST, 0)
        stack.push_async_callback(rs.aclose)
        net = Net(rs, root, stack)
        rs.trace = net.rs_log.append
        yield net


@asynccontextmanager
async def fake_peer(reply: bytes, host: str = HOST) -> AsyncIterator[int]:
    """A server on ``host`` that reads one request head and answers every connection with
    ``reply``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(reply)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def content(rfc: int, size: int) -> bytes:
    """The bytes ``write_sample_rfcs`` writes for ``rfc`` of ``size``."""
    return sample_text(rfc, size)
