"""A peer's upload server over real sockets: GET, its five headers, exact bytes, errors."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest

from p2pshare.host import os_name
from p2pshare.protocol import get_header
from p2pshare.protocol._grammar import parse_http_date

from ..aio import Raw, arun, upload_server


def get(rfc: str, version: str = "P2P-CI/1.0") -> bytes:
    """The handout's GET example (docs/p2p-ci.md#get-request) for ``rfc``."""
    return (f"GET {rfc} {version}\r\nHost: somehost.csc.ncsu.edu\r\n"
            "OS: Mac OS 10.4.1\r\n\r\n").encode()


async def fetch(port: int, request: bytes, source: str | None = None
                ) -> tuple[bytes, list[bytes], bytes]:
    """Send ``request`` on a new connection (from ``source``); the status line, header
    lines and body.

    The upload server closes after one answer, so everything up to the close is the reply.
    """
    raw = await Raw.connect(port, source=source)
    await raw.send(request)
    reply = await raw.rest()
    head, sep, body = reply.partition(b"\r\n\r\n")
    assert sep, reply[:200]
    status, *headers = head.split(b"\r\n")
    return status, headers, body


def header_value(headers: list[bytes], name: str) -> str | None:
    pairs = [h.decode().partition(": ") for h in headers]
    return get_header(tuple((k, v) for k, _, v in pairs), name)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "rfc1234.txt").write_bytes(b"Some RFC text\r\n")
    return shared


@arun
async def test_get_200_headers_in_handout_order(folder: Path) -> None:
    os.utime(folder / "rfc1234.txt", (980_069_026, 980_069_026))
    async with upload_server(folder) as port:
        status, headers, body = await fetch(port, get("RFC 1234"))
    assert status == b"P2P-CI/1.0 200 OK"
    assert [h.split(b":")[0] for h in headers] == [
        b"Date", b"OS", b"Last-Modified", b"Content-Length", b"Content-Type"]
    assert header_value(headers, "Last-Modified") == "Sun, 21 Jan 2001 09:23:46 GMT"
    assert header_value(headers, "Content-Length") == "15"
    assert header_value(headers, "Content-Type") == "text/plain"
    assert header_value(headers, "OS") == os_name()
    date = header_value(headers, "Date")
    assert date is not None and parse_http_date(date) is not None
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", date)
    assert body == b"Some RFC text\r\n"


@arun
async def test_multi_mib_binary_file_arrives_byte_identical(folder: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17) + b"\r\n\x00\r\n\r\n"
    (folder / "rfc9.txt").write_bytes(data)
    async with upload_server(folder) as port:
        _, headers, body = await fetch(port, get("RFC 9"))
    assert header_value(headers, "Content-Length") == str(len(data))
    assert body == data


@arun
async def test_one_get_per_connection_then_close(folder: Path) -> None:
    async with upload_server(folder) as port:
        raw = await Raw.connect(port)
        await raw.send(get("RFC 1234") + get("RFC 1234"))  # the second is never answered
        reply = await raw.rest()
    assert reply.count(b"P2P-CI/1.0 200 OK") == 1
    assert reply.endswith(b"\r\n\r\nSome RFC text\r\n")


@arun
async def test_request_byte_by_byte(folder: Path) -> None:
    async with upload_server(folder) as port:
        raw = await Raw.connect(port)
        for byte in get("RFC 1234"):
            await raw.send(bytes([byte]))
        assert (await raw.rest()).endswith(b"\r\n\r\nSome RFC text\r\n")


@pytest.mark.parametrize(("request_bytes", "status"), [
    (get("RFC 4321"), b"P2P-CI/1.0 404 Not Found"),
    (get("RFC 1234", "P2P-CI/2.0"), b"P2P-CI/1.0 505 P2P-CI Version Not Supported"),
    (get("RFC two"), b"P2P-CI/1.0 400 Bad Request"),
    (get("RFC 0"), b"P2P-CI/1.0 400 Bad Request"),
    (get("RFC ../../etc/passwd"), b"P2P-CI/1.0 400 Bad Request"),
    (get("../rfc1234.txt"), b"P2P-CI/1.0 400 Bad Request"),
    (b"GET RFC 1234 P2P-CI/1.0\r\nOS: x\r\n\r\n", b"P2P-CI/1.0 400 Bad Request"),  # no Host
    (b"ADD RFC 1234 P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\nTitle: t\r\n\r\n",
     b"P2P-CI/1.0 400 Bad Request"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"P2P-CI/1.0 400 Bad Request"),
    (b"G" * 20_000, b"P2P-CI/1.0 400 Bad Request"),
])
@arun
async def test_error_statuses(folder: Path, request_bytes: bytes, status: bytes) -> None:
    async with upload_server(folder) as port:
        got, headers, body = await fetch(port, request_bytes)
    assert got == status
    assert [h.split(b":")[0] for h in headers] == [b"Date", b"OS"] and body == b""


@arun
async def test_any_host_value_is_served(folder: Path) -> None:
    request = b"GET RFC 1234 P2P-CI/1.0\r\nHost: peerA\r\nOS: Mac OS 10.4.1\r\n\r\n"  # A4
    async with upload_server(folder) as port:
        status, _, body = await fetch(port, request)
    assert status == b"P2P-CI/1.0 200 OK" and body == b"Some RFC text\r\n"


@arun
async def test_symlink_out_of_the_folder_is_not_served(folder: Path) -> None:
    secret = folder.parent / "secret.txt"
    secret.write_bytes(b"private")
    (folder / "rfc5.txt").symlink_to(secret)
    (folder / "rfc6.txt").mkdir()  # not a regular file either
    async with upload_server(folder) as port:
        for rfc in ("RFC 5", "RFC 6"):
            status, _, body = await fetch(port, get(rfc))
            assert status == b"P2P-CI/1.0 404 Not Found" and body == b""


@arun
async def test_many_downloads_at_once(folder: Path) -> None:
    files = {n: os.urandom(200_000 + n) for n in range(1, 9)}
    for n, data in files.items():
        (folder / f"rfc{n}.txt").write_bytes(data)
    async with upload_server(folder) as port:
        # from four addresses: one address may hold only MAX_UPLOADS_PER_SOURCE slots
        replies = await asyncio.gather(*(fetch(port, get(f"RFC {1 + i % 8}"),
                                               source=f"127.0.0.{1 + i % 4}")
                                         for i in range(40)))
    for i, (status, _, body) in enumerate(replies):
        assert status == b"P2P-CI/1.0 200 OK" and body == files[1 + i % 8]


@arun
async def test_stray_bytes_after_the_request_do_not_cut_the_file(folder: Path) -> None:
    """Bytes a client sends after its GET (an extra CRLF, say) are read and dropped:
    closing with them unread would reset the connection and lose the file's tail."""
    data = os.urandom(8 * 1024 * 1024)
    (folder / "rfc9.txt").write_bytes(data)
    async with upload_server(folder) as port:
        raw = await Raw.connect(port, rcvbuf=65536)
        await raw.send(get("RFC 9"))
        head = await raw.reader.readuntil(b"\r\n\r\n")
        await raw.send(b"\r\n")
        assert f"Content-Length: {len(data)}\r\n".encode() in head
        assert await raw.recv(len(data)) == data
        await raw.close()
