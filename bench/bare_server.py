"""The reference for the index-server benchmarks: a bare asyncio request/response server.

It reads requests up to their blank line and answers each with a fixed byte string of the
same size as p2pshare's reply: no parsing, no index, no logic. ``--api streams`` uses
asyncio streams (as p2pshare does); ``--api protocol`` uses the lower-level Protocol API.
``--oneshot`` answers one request per connection and then closes it (P2P-DI's rule).
It runs on the event loop p2pshare's servers of small messages pick (uvloop when
installed, unless ``P2PSHARE_LOOP=asyncio``), so both sides of a comparison use the same
loop.

Usage: python bench/bare_server.py PORT RESPONSE_FILE [--api streams|protocol] [--oneshot]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from common import chosen_loop


async def streams(port: int, reply: bytes, oneshot: bool = False) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(reply)
                await writer.drain()
                if oneshot:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    await server.serve_forever()


class Echo(asyncio.Protocol):
    def __init__(self, reply: bytes, oneshot: bool = False) -> None:
        self.reply = reply
        self.oneshot = oneshot
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        count = self.buf.count(b"\r\n\r\n")
        if count and self.oneshot:
            self.transport.write(self.reply)  # type: ignore[attr-defined]
            self.transport.close()
        elif count:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4:]
            self.transport.write(self.reply * count)  # type: ignore[attr-defined]


async def protocol(port: int, reply: bytes, oneshot: bool = False) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Echo(reply, oneshot), "127.0.0.1", port,
                                      backlog=4096)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("response", type=Path)
    parser.add_argument("--api", choices=["streams", "protocol"], default="streams")
    parser.add_argument("--oneshot", action="store_true",
                        help="one request per connection, then close")
    args = parser.parse_args()
    reply = args.response.read_bytes()
    serve = streams if args.api == "streams" else protocol
    with asyncio.Runner(loop_factory=chosen_loop(who="bare_server")) as runner:
        runner.run(serve(args.port, reply, args.oneshot))


if __name__ == "__main__":
    main()
