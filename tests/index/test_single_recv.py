"""Replies that fit ``limits.COALESCE_BYTES`` arrive whole to a client that reads once.

Many course implementations send a request and read the reply with a single ``recv()``.
Our servers write each such reply with one call, so it leaves as one segment: this client
waits until the socket is readable, calls ``recv(65536)`` exactly once, and must find the
whole reply, byte for byte. In one process the client cannot wake between two writes of
the server's, so the tests also count the server's write calls per reply (``writes``):
that count is what a client in another process, woken by the first segment, depends on.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from p2pshare.net.runtime import Link
from p2pshare.protocol import get_header

from ..aio import HOST, arun, index_server, upload_server
from .test_server import BAD, NOT_FOUND, OK, OLD, add, line, lookup

LIST = b"LIST ALL P2P-CI/1.0\r\nHost: h\r\nPort: 1000\r\n\r\n"


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes of each write call the servers make on their connections, in order."""
    calls: list[int] = []
    made = Link.connection_made

    def counting(link: Link, transport: asyncio.BaseTransport) -> None:
        write = transport.write  # type: ignore[attr-defined]

        def counted(data: bytes) -> None:
            calls.append(len(data))
            write(data)

        transport.write = counted  # type: ignore[attr-defined]
        made(link, transport)

    monkeypatch.setattr(Link, "connection_made", counting)
    return calls


class OneRecv:
    """A client that reads each reply with one ``recv(65536)`` once the socket is readable."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    async def connect(cls, port: int) -> OneRecv:
        sock = socket.socket()
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
        return cls(sock)

    async def ask(self, request: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(self.sock, request)
        readable = loop.create_future()
        loop.add_reader(self.sock.fileno(), readable.set_result, None)
        try:
            async with asyncio.timeout(10):
                await readable
        finally:
            loop.remove_reader(self.sock.fileno())
        return self.sock.recv(65536)

    def close(self) -> None:
        self.sock.close()


@arun
async def test_every_index_reply_arrives_in_one_recv(writes: list[int]) -> None:
    async with index_server() as (_server, port):
        client = await OneRecv.connect(port)
        try:
            lines = []
            for n in range(1, 101):  # ADD: status, blank line, the record, final CRLF
                added = await client.ask(add(n, f"Title {n}"))
                assert added == OK + line(n, f"Title {n}") + b"\r\n"
                lines.append(line(n, f"Title {n}"))
            replies = [
                (lookup(7), OK + line(7, "Title 7") + b"\r\n"),
                (LIST, OK + b"".join(reversed(lines)) + b"\r\n"),  # 100 records, ~3 KiB
                (lookup(4242), NOT_FOUND),
                (b"LIST ALL P2P-CI/2.0\r\nHost: h\r\nPort: 1\r\n\r\n", OLD),
                (b"ADD RFC x P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n", BAD),
                (b"LIST P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n", BAD),
            ]
            for request, expected in replies:
                assert await client.ask(request) == expected
        finally:
            client.close()
    assert writes[:100] == [len(OK + line(n, f"Title {n}") + b"\r\n") for n in range(1, 101)]
    assert writes[100:] == [len(expected) for _, expected in replies]


async def get_once(folder: Path, rfc: int) -> bytes:
    """GET RFC ``rfc`` from an upload server for ``folder``; the one recv's bytes."""
    async with upload_server(folder) as port:
        client = await OneRecv.connect(port)
        try:
            return await client.ask(f"GET RFC {rfc} P2P-CI/1.0\r\nHost: h\r\nOS: x\r\n\r\n"
                                    .encode())
        finally:
            client.close()


@pytest.mark.parametrize("size", [0, 4096, 60_000])
@arun
async def test_a_small_get_arrives_in_one_recv(tmp_path: Path, size: int,
                                                writes: list[int]) -> None:
    data = os.urandom(size)
    (tmp_path / "rfc4.txt").write_bytes(data)
    reply = await get_once(tmp_path, 4)
    head, sep, body = reply.partition(b"\r\n\r\n")
    assert sep and head.startswith(b"P2P-CI/1.0 200 OK\r\n")
    pairs = [h.decode().partition(": ") for h in head.split(b"\r\n")[1:]]
    assert get_header(tuple((k, v) for k, _, v in pairs), "Content-Length") == str(size)
    assert body == data
    assert writes == [len(reply)]


@arun
async def test_a_get_error_arrives_in_one_recv(tmp_path: Path, writes: list[int]) -> None:
    reply = await get_once(tmp_path, 5)
    assert reply.startswith(b"P2P-CI/1.0 404 Not Found\r\nDate: ")
    assert reply.endswith(b"\r\n\r\n") and b"OS: " in reply
    assert writes == [len(reply)]
