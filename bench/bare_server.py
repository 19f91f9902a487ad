"""The reference for the index-server benchmarks: a bare asyncio request/response server.

It reads requests up to their blank line and answers each with a fixed byte string of the
same size as p2pshare's reply: no parsing, no index, no logic. ``--api streams`` uses
asyncio streams (as p2pshare does); ``--api protocol`` uses the lower-level Protocol API.

Usage: python bench/bare_server.py PORT RESPONSE_FILE [--api streams|protocol]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path


async def streams(port: int, reply: bytes) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    await server.serve_forever()


class Echo(asyncio.Protocol):
    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        count = self.buf.count(b"\r\n\r\n")
        if count:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4:]
            self.transport.write(self.reply * count)  # type: ignore[attr-defined]


async def protocol(port: int, reply: bytes) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Echo(reply), "127.0.0.1", port, backlog=4096)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("response", type=Path)
    parser.add_argument("--api", choices=["streams", "protocol"], default="streams")
    args = parser.parse_args()
    reply = args.response.read_bytes()
    asyncio.run((streams if args.api == "streams" else protocol)(args.port, reply))


if __name__ == "__main__":
    main()
