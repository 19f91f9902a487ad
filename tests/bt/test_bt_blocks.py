"""Receiving blocks into the caller's buffer (``receive_blocks``) and sending by header.

The asyncio layer reads with ``get_buffer``/``buffer_updated`` (``BufferedProtocol``);
these tests play that part with a byte string cut in every way, and check that each block
lands in its buffer, that a block's bytes go straight there once its head is read, and
that what follows a block is read as the next message.
"""

from __future__ import annotations

import pytest

from p2pshare.errors import LocalProtocolError, RemoteProtocolError
from p2pshare.protocol import bt_codec
from p2pshare.protocol import bt_events as ev
from p2pshare.protocol._events import _Sentinel
from p2pshare.protocol.bt_wire import BtConnection

from .wire import events, opened

BLOCKS = [(0, 0, 16384), (0, 16384, 16384), (10, 0, 1000)]


def asking() -> BtConnection:
    conn = opened(receive_blocks=True)
    conn.send(ev.HaveNone())
    events(conn, [bt_codec.encode_message(ev.Unchoke())])
    for block in BLOCKS:
        conn.send(ev.BtRequest(*block))
    return conn


def wire_of(blocks: list[tuple[int, int, int]]) -> bytes:
    return b"".join(bt_codec.encode_message(ev.Piece(i, b, bytes([i + b % 251]) * n))
                    for i, b, n in blocks) + bt_codec.encode_message(ev.BtHave(3))


def read_through_buffers(conn: BtConnection, wire: bytes, step: int) -> list[object]:
    """Feed ``wire`` through get_buffer/buffer_updated, at most ``step`` bytes a read."""
    out: list[object] = []
    at = 0
    while True:
        event = conn.next_event()
        if isinstance(event, ev.PieceHeader):
            conn.receive_block(bytearray(event.length))
            out.append(event)
        elif not isinstance(event, _Sentinel):
            out.append(event)
        elif at == len(wire):
            return out
        else:
            view = conn.get_buffer()
            n = min(len(view), step, len(wire) - at)
            view[:n] = wire[at:at + n]
            conn.buffer_updated(n)
            at += n


@pytest.mark.parametrize("step", [1, 7, 13, 1000, 100_000])
def test_blocks_through_get_buffer(step: int) -> None:
    conn = asking()
    got = read_through_buffers(conn, wire_of(BLOCKS), step)
    expect: list[object] = []
    for block in BLOCKS:
        expect += [ev.PieceHeader(*block), ev.PieceEnd(*block)]
    assert got == expect + [ev.BtHave(3)]


def test_block_bytes_go_straight_into_the_buffer() -> None:
    conn = asking()
    wire = wire_of(BLOCKS[:1])
    conn.get_buffer()[:13] = wire[:13]  # the head alone came in a read
    conn.buffer_updated(13)
    assert conn.next_event() == ev.PieceHeader(*BLOCKS[0])
    target = bytearray(16384)
    conn.receive_block(target)
    view = conn.get_buffer()
    assert len(view) == 16384 and view.obj is target
    view[:] = wire[13:13 + 16384]
    conn.buffer_updated(16384)
    assert conn.next_event() == ev.PieceEnd(*BLOCKS[0])
    assert bytes(target) == wire[13:13 + 16384]


def test_blocks_through_receive_data_and_discard() -> None:
    conn = asking()
    wire = wire_of(BLOCKS)
    conn.receive_data(wire)
    first = conn.next_event()
    assert first == ev.PieceHeader(*BLOCKS[0])
    with pytest.raises(LocalProtocolError):
        conn.next_event()  # where should the block go?
    with pytest.raises(LocalProtocolError):
        conn.receive_block(bytearray(10))  # not its length
    conn.discard_block()
    rest = []
    while not isinstance(event := conn.next_event(), _Sentinel):
        rest.append(event)
        if isinstance(event, ev.PieceHeader):
            buffer = bytearray(event.length)
            conn.receive_block(buffer)
    assert rest[-1] == ev.BtHave(3)
    assert ev.PieceEnd(*BLOCKS[2]) in rest


def test_cancelled_block_is_skipped_without_an_event() -> None:
    conn = asking()
    conn.send(ev.Cancel(*BLOCKS[0]))
    assert read_through_buffers(conn, wire_of(BLOCKS[:1]), 5000) == [ev.BtHave(3)]


def test_unrequested_block_is_refused_at_its_head() -> None:
    conn = asking()
    with pytest.raises(RemoteProtocolError):
        events(conn, [bt_codec.piece_header(5, 0, 16384)])


def test_sendfile_path() -> None:
    conn = opened()
    conn.send(ev.HaveNone())
    conn.send(ev.Unchoke())
    events(conn, [bt_codec.encode_message(ev.BtRequest(1, 0, 16384))])
    head = conn.send(ev.PieceHeader(1, 0, 16384))
    assert head + bytes(16384) == bt_codec.encode_message(ev.Piece(1, 0, bytes(16384)))
    assert conn.send(ev.PieceHeader(1, 0, 16384)) == b""  # answered once
