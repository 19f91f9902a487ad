#!/usr/bin/env python3
"""CPU cost of the peer wire codec per GiB of blocks, both ways, without sockets.

Strategy: the codec alone, so that a change to it can be measured apart from asyncio and
the kernel. A seed's side encodes a piece message per 16 KiB block (``send(Piece)``, and
the sendfile form ``send(PieceHeader)`` whose block the kernel would send); a downloader's
side reads them back from 64 KiB reads (``receive_data`` and ``Piece`` events) or through
``get_buffer``/``buffer_updated`` into a preallocated piece buffer (``receive_blocks``,
as a ``BufferedProtocol`` would; the copy into the view stands in for ``recv_into``); in
the first case the block is then copied into the same piece buffer, as a download must.
Each mode prints CPU seconds per GiB and blocks per second (best of ``--runs``; the seed
side's time includes reading the requests; writing the input of a run is not counted).

    python3 bench/bt_wire_cpu.py [--mib 256] [--runs 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from p2pshare.protocol import bt_codec, bt_extended
from p2pshare.protocol import bt_events as ev
from p2pshare.protocol._bt_state import Geometry
from p2pshare.protocol._events import _Sentinel
from p2pshare.protocol.bt_wire import BtConnection, BtRole

BLOCK = 16 * 1024
PIECE = 1024 * 1024
READ = 64 * 1024


def _opened(blocks: int, *, receive_blocks: bool = False) -> BtConnection:
    size = blocks * BLOCK
    conn = BtConnection(BtRole.INITIATOR, geometry=Geometry.v1(size, PIECE),
                        reqq=blocks + 1, receive_blocks=receive_blocks)
    conn.send(ev.Handshake(bytes(20), bytes(20)))
    conn.receive_data(bt_codec.encode_handshake(ev.Handshake(bytes(20), b"x" * 20)))
    conn.next_event()
    return conn


def _block(i: int) -> tuple[int, int, int]:
    return i * BLOCK // PIECE, i * BLOCK % PIECE, BLOCK


def seed_side(blocks: int, sendfile: bool) -> Callable[[], None]:
    """Read every request, then answer each with a piece (or its head)."""
    conn = _opened(blocks)
    conn.send(ev.HaveAll())
    conn.send(ev.Unchoke())
    wire = b"".join(bt_codec.encode_message(ev.BtRequest(*_block(i))) for i in range(blocks))
    data = bytes(BLOCK)

    def run() -> None:
        conn.receive_data(wire)
        while not isinstance(event := conn.next_event(), _Sentinel):
            assert isinstance(event, ev.BtRequest)
            index, begin = event.index, event.begin
            conn.send(ev.PieceHeader(index, begin, BLOCK) if sendfile
                      else ev.Piece(index, begin, data))
    return run


def _asking(blocks: int, receive_blocks: bool) -> tuple[BtConnection, bytes]:
    conn = _opened(blocks, receive_blocks=receive_blocks)
    conn.send(ev.HaveNone())
    their_ext = b"\0" + bt_extended.encode_ext_handshake(ev.ExtendedHandshake(reqq=blocks + 1))
    conn.receive_data(bt_codec.frame(bt_codec.EXTENDED, their_ext) + bt_codec.encode_message(
        ev.HaveAll()) + bt_codec.encode_message(ev.Unchoke()))
    while not isinstance(conn.next_event(), _Sentinel):
        pass
    for i in range(blocks):
        conn.send(ev.BtRequest(*_block(i)))
    data = bytes(BLOCK)
    wire = b"".join(bt_codec.encode_message(ev.Piece(*_block(i)[:2], data)) for i in range(blocks))
    return conn, wire


def leech_events(conn: BtConnection, wire: bytes) -> None:
    view = memoryview(wire)
    piece = memoryview(bytearray(PIECE))  # one piece buffer, written out and reused
    for at in range(0, len(wire), READ):
        conn.receive_data(view[at:at + READ])
        while not isinstance(event := conn.next_event(), _Sentinel):
            if isinstance(event, ev.Piece):  # the block goes where the piece is assembled
                piece[event.begin:event.begin + len(event.block)] = event.block


def leech_buffers(conn: BtConnection, wire: bytes) -> None:
    at, ended, view = 0, 0, memoryview(wire)
    piece = memoryview(bytearray(PIECE))  # one piece buffer, written out and reused
    while at < len(wire):
        target = conn.get_buffer()
        n = min(len(target), READ, len(wire) - at)
        target[:n] = view[at:at + n]  # recv_into
        conn.buffer_updated(n)
        at += n
        while not isinstance(event := conn.next_event(), _Sentinel):
            if isinstance(event, ev.PieceHeader):
                conn.receive_block(piece[event.begin:event.begin + event.length])
            elif isinstance(event, ev.PieceEnd):
                ended += 1


def _measure(setup: Callable[[], Callable[[], None]], runs: int) -> float:
    """The least CPU time of ``runs`` runs of what ``setup`` returns (setup not counted)."""
    best = float("inf")
    for _ in range(runs):
        run = setup()
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--mib", type=int, default=256)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    blocks = args.mib * 1024 * 1024 // BLOCK
    gib = blocks * BLOCK / 2**30
    modes: dict[str, Callable[[], Callable[[], None]]] = {
        "read requests, send Piece": lambda: seed_side(blocks, False),
        "read requests, send PieceHeader": lambda: seed_side(blocks, True),
    }
    for name, receive_blocks, reader in (("receive Piece events", False, leech_events),
                                         ("receive into buffers", True, leech_buffers)):
        def setup(rb: bool = receive_blocks,
                  read: Callable[..., None] = reader) -> Callable[[], None]:
            conn, wire = _asking(blocks, rb)
            return lambda: read(conn, wire)
        modes[name] = setup
    for name, setup in modes.items():
        seconds = _measure(setup, args.runs)
        print(f"{name:34} {seconds / gib:6.2f} CPU s/GiB  {blocks / seconds:9,.0f} blocks/s")


if __name__ == "__main__":
    main()
