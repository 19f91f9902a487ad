"""A stream over a raw non-blocking socket, with a zero-copy path from socket to file.

Strategy: clients that download (P2P GET, DI GetRFC, swarm pieces) use ``SocketStream``
instead of asyncio streams, because a raw socket lets the body bypass Python: once the
head is parsed and the body length is known, ``recv_to_file`` moves bytes from the socket
to the file with ``splice`` (Linux: socket -> pipe -> file, no copy through Python), or
``recv_into`` a reused buffer elsewhere. The head still goes through the sans-IO codec.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

from .. import limits
from ..errors import PeerGone
from ..host import join_hostport
from ..protocol import Connection
from .stream import BaseStream

PIPE_SIZE = 1 * limits.MiB  # splice pipe capacity (F_SETPIPE_SZ); 64 KiB if refused
_F_SETPIPE_SZ = 1031  # fcntl command (Linux)
HAS_SPLICE = hasattr(os, "splice")


class SocketStream(BaseStream):
    """A ``Connection`` bound to a connected non-blocking socket."""

    def __init__(self, sock: socket.socket, conn: Connection) -> None:
        super().__init__(conn, sock.getpeername())
        sock.setblocking(False)
        self.sock = sock
        self._loop = asyncio.get_running_loop()
        self._pending = b""
        self._idle: float | None = limits.RESPONSE_TIMEOUT

    async def _recv(self) -> bytes:
        return await self._loop.sock_recv(self.sock, limits.RECV_CHUNK)

    def _write(self, data: bytes) -> None:
        self._pending += data

    async def drain(self) -> None:
        data, self._pending = self._pending, b""
        if data:
            try:
                await self._loop.sock_sendall(self.sock, data)
            except (ConnectionError, OSError) as exc:
                raise PeerGone(str(exc)) from exc

    async def aclose(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    async def recv_to_file(self, fd: int, count: int,
                           idle: float = limits.RESPONSE_TIMEOUT) -> int:
        """Move up to ``count`` body bytes from the socket to ``fd``; returns how many.

        Fewer than ``count`` means the peer closed early. The codec is bypassed: call this
        only after draining the body bytes the codec already buffered.

        Raises:
            TimeoutError: no byte arrived for ``idle`` seconds.
            PeerGone: the connection was reset.
        """
        self._idle = idle
        if HAS_SPLICE:
            return await self._splice(fd, count)
        return await self._copy(fd, count)

    async def _wait_readable(self) -> None:
        fut = self._loop.create_future()
        fileno = self.sock.fileno()
        self._loop.add_reader(fileno, _wake, fut)
        try:
            async with asyncio.timeout(self._idle):
                await fut
        finally:
            self._loop.remove_reader(fileno)

    async def _splice(self, fd: int, count: int) -> int:
        r, w = os.pipe()
        with contextlib.suppress(OSError):
            import fcntl

            fcntl.fcntl(w, _F_SETPIPE_SZ, PIPE_SIZE)
        flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
        done = 0
        try:
            while done < count:
                try:
                    n = os.splice(self.sock.fileno(), w, min(count - done, PIPE_SIZE), None,
                                  None, flags)
                except BlockingIOError:
                    await self._wait_readable()
                    continue
                except (ConnectionError, OSError) as exc:
                    raise PeerGone(str(exc)) from exc
                if n == 0:
                    break
                moved = 0
                while moved < n:
                    moved += os.splice(r, fd, n - moved, None, None, os.SPLICE_F_MOVE)
                done += n
        finally:
            os.close(r)
            os.close(w)
        return done

    async def _copy(self, fd: int, count: int) -> int:
        buf = bytearray(min(count, 4 * limits.MiB) or 1)
        view = memoryview(buf)
        done = 0
        while done < count:
            try:
                async with asyncio.timeout(self._idle):
                    n = await self._loop.sock_recv_into(self.sock,
                                                        view[: min(len(buf), count - done)])
            except (ConnectionError, OSError) as exc:
                raise PeerGone(str(exc)) from exc
            if n == 0:
                break
            os.write(fd, view[:n])
            done += n
        return done


async def open_socket_stream(host: str, port: int, conn: Connection,
                             timeout: float = limits.CONNECT_TIMEOUT) -> SocketStream:
    """Connect to ``host:port`` with a raw socket.

    Raises:
        PeerGone: the connection could not be made in time, or the name is unusable.
    """
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            last: Exception = OSError("no address")
            for family, kind, proto, _name, addr in infos:
                sock = socket.socket(family, kind, proto)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, addr)
                except OSError as exc:
                    sock.close()
                    last = exc
                    continue
                except BaseException:  # cancelled (a holder that lost a race) or timed out
                    sock.close()
                    raise
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return SocketStream(sock, conn)
            raise last
    except (OSError, TimeoutError, UnicodeError) as exc:  # UnicodeError: a name IDNA refuses
        raise PeerGone(f"cannot connect to {join_hostport(host, port)}: {exc}") from exc


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
