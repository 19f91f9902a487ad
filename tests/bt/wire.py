"""Helpers for the peer wire tests: connections past their handshakes, feeding bytes.

Strategy: most rules apply only once both handshakes have passed, with a chosen set of
extensions; ``opened`` builds such a connection (our handshake sent, the peer's read), and
``pair`` two that talk to each other. ``events`` feeds bytes (whole, or in given chunks)
and collects events up to ``NEED_DATA``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable

from p2pshare.protocol._bt_state import Geometry
from p2pshare.protocol._events import ConnectionClosed, _Sentinel
from p2pshare.protocol.bt_codec import encode_handshake
from p2pshare.protocol.bt_events import Handshake, reserved_bits
from p2pshare.protocol.bt_wire import BtConnection, BtRole

INFO_HASH = bytes(range(20))
GEOMETRY = Geometry.v1(10 * 32768 + 1000, 32768)  # 11 pieces, the last of 1000 bytes


def handshake(peer: bytes, *, fast: bool = True, extended: bool = True,
              v2: bool = False) -> Handshake:
    return Handshake(INFO_HASH, peer * 20, reserved_bits(fast=fast, extended=extended, v2=v2))


def opened(*, fast: bool = True, extended: bool = True, geometry: Geometry | None = GEOMETRY,
           receive_blocks: bool = False, reqq: int = 250) -> BtConnection:
    """A connection whose handshakes both passed (each side with the same extensions)."""
    conn = BtConnection(BtRole.INITIATOR, geometry=geometry, reqq=reqq,
                        receive_blocks=receive_blocks)
    conn.send(handshake(b"u", fast=fast, extended=extended))
    conn.receive_data(encode_handshake(handshake(b"t", fast=fast, extended=extended)))
    assert isinstance(conn.next_event(), Handshake)
    return conn


def pair(**options: object) -> tuple[BtConnection, BtConnection]:
    """Two connections, each past both handshakes, that can feed each other."""
    return opened(**options), opened(**options)  # type: ignore[arg-type]


def events(conn: BtConnection, chunks: Iterable[bytes]) -> list[object]:
    """Feed ``chunks`` one by one; every event up to NEED_DATA (or the close) after each."""
    out: list[object] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        while not isinstance(event := conn.next_event(), _Sentinel):
            out.append(event)
            if isinstance(event, ConnectionClosed):
                return out
    return out


def ways(data: bytes) -> list[list[bytes]]:
    """``data`` whole and one byte at a time."""
    return [[data], [data[i:i + 1] for i in range(len(data))]]



async def answer_handshake(reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> BtConnection:
    """The accepting side of a real connection, past the handshakes (fast, no extension
    protocol): a test's peer on a socket."""
    conn = BtConnection(BtRole.ACCEPTOR)
    conn.receive_data(await reader.readexactly(68))
    theirs = conn.next_event()
    assert isinstance(theirs, Handshake)
    writer.write(conn.send(Handshake(theirs.info_hash, os.urandom(20),
                                     reserved_bits(extended=False))))
    return conn
