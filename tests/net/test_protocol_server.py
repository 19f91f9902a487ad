"""The callback server's one-exchange mode and its deadlines, with a toy application.

The index server (persistent connections) and the registration server (one exchange per
connection) are tested as themselves elsewhere; here the generic parts: a one-exchange
connection closes after its answer, a silent one after ``first_request_timeout``, and a
client that never reads a big last answer cannot keep its connection by not reading.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from p2pshare import limits
from p2pshare.errors import RemoteProtocolError
from p2pshare.net.protocol import Link, ProtocolServer
from p2pshare.protocol import Connection, Data, EndOfMessage, Event, Request, Response, Role

from ..aio import HOST, Raw, arun, serving
from ..helpers import async_wait_for

V = "P2P-DI/1.0"
BIG = 32 * limits.MiB  # far more than both sockets' buffers hold


class Toy:
    """Answers ``SMALL`` with two bytes and ``BIG`` with BIG bytes."""

    def request(self, link: Link, request: Request, body: bytes) -> list[Event]:
        data = b"ok" if request.method == "SMALL" else b"x" * BIG
        return [Response(200, V, (("Content-Length", str(len(data))),)), Data(data),
                EndOfMessage()]

    def malformed(self, link: Link, exc: RemoteProtocolError) -> list[Event]:
        return [Response(exc.status, V, (("Content-Length", "0"),)), EndOfMessage()]

    def connected(self, link: Link) -> None:
        pass

    def disconnected(self, link: Link) -> None:
        pass


@asynccontextmanager
async def one_exchange_server(first_request_timeout: float = 5.0
                              ) -> AsyncIterator[tuple[ProtocolServer, int]]:
    server = ProtocolServer(Toy(), lambda: Connection(Role.SERVER, keep_alive=False),
                            first_request_timeout=first_request_timeout, name="toy")
    async with serving(server) as port:
        yield server, port


@arun
async def test_one_exchange_connection_closes_after_its_answer() -> None:
    async with one_exchange_server() as (server, port):
        raw = await Raw.connect(port)
        await raw.send(f"SMALL x {V}\r\n\r\n".encode())
        assert await raw.rest() == f"{V} 200 OK\r\nContent-Length: 2\r\n\r\nok".encode()
        await async_wait_for(lambda: server.active == 0, what="the link forgotten")


@arun
async def test_bytes_after_the_one_request_do_not_cut_the_answer() -> None:
    """A second request on a one-exchange connection is not read; the close lingers so that
    the unread bytes do not turn it into a reset that destroys the answer."""
    async with one_exchange_server() as (_server, port):
        raw = await Raw.connect(port)
        await raw.send(f"SMALL x {V}\r\n\r\n".encode() * 2)
        assert await raw.rest() == f"{V} 200 OK\r\nContent-Length: 2\r\n\r\nok".encode()


@arun
async def test_silent_connection_is_closed_by_the_first_request_deadline() -> None:
    async with one_exchange_server(first_request_timeout=0.3) as (server, port):
        silent = await Raw.connect(port)
        trickle = await Raw.connect(port)
        await trickle.send(b"SMA")  # a request begun, never finished
        assert await silent.rest() == b""
        assert await trickle.rest() == b""
        assert server.active == 0


@arun
async def test_a_client_that_never_reads_its_big_answer_is_dropped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "SEND_STALL_TIMEOUT", 0.3)
    async with one_exchange_server() as (server, port):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, (HOST, port))
        await loop.sock_sendall(sock, f"BIG x {V}\r\n\r\n".encode())
        try:
            await async_wait_for(lambda: any(link.deadline for link in server.links),
                                 what="the answer written, the close waiting on it")
            await async_wait_for(lambda: server.active == 0,
                                 what="the staller's connection dropped")
        finally:
            sock.close()
        ok = await Raw.connect(port)  # and the server goes on serving
        await ok.send(f"SMALL x {V}\r\n\r\n".encode())
        assert (await ok.rest()).endswith(b"ok")
