"""A TCP listener shared by every p2pshare server.

Strategy: ``asyncio.start_server`` accepts; each accepted connection runs the server's
handler in its own task, which is tracked so that ``aclose`` can end every connection
(asyncio's own ``Server.close`` leaves accepted connections running). Beyond
``max_connections`` a new connection is closed at once: a clear refusal instead of
running out of file descriptors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .. import limits

log = logging.getLogger(__name__)

FD_SPARE = 64  # descriptors beyond the connection limit: listeners, files being sent, logs

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Listener:
    """What every p2pshare server shares: a listening socket, its address, serving."""

    _server: asyncio.Server | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("server not started")
        addr = self._server.sockets[0].getsockname()
        return str(addr[0]), int(addr[1])

    async def serve_forever(self) -> None:
        if self._server is None:
            raise RuntimeError("server not started")
        await self._server.serve_forever()

    async def _shutdown(self, tasks: set[asyncio.Task[Any]]) -> None:
        """Stop listening, cancel ``tasks`` and wait (at most 5 s) for them to end."""
        if self._server is not None:
            self._server.close()
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.wait(list(tasks), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()


class TCPServer(Listener):
    """Accepts connections and runs ``handler`` for each, at most ``max_connections`` at once."""

    def __init__(
        self, handler: Handler, *, max_connections: int = limits.MAX_CONNECTIONS, name: str = ""
    ) -> None:
        self._handler = handler
        self.max_connections = max_connections
        self.name = name
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.refused = 0
        self._closing = False

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and listen; returns the bound address (port 0 picks a free port)."""
        raise_fd_limit(self.max_connections + FD_SPARE)
        self._server = await asyncio.start_server(
            self._accept, host, port, limit=limits.RECV_CHUNK, backlog=1024,
            reuse_address=True,
        )
        return self.address

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._tasks) >= self.max_connections:
            self.refused += 1
            log.warning("%s: connection limit %d reached, refusing %s", self.name,
                        self.max_connections, writer.get_extra_info("peername"))
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handler(reader, writer)
        except asyncio.CancelledError:
            if not self._closing:
                raise
            # aclose() ended this connection: the task ends quietly, not as an error
        finally:
            self._tasks.discard(task)
            writer.close()

    async def aclose(self) -> None:
        """Stop listening and end every connection."""
        self._closing = True
        await self._shutdown(self._tasks)


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft open-file limit towards ``wanted`` (never above the hard
    limit); returns the soft limit now in force. Servers need one descriptor per peer."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit to %d", target)
    return soft
