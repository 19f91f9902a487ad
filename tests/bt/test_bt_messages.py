"""Every peer wire message against wire bytes written out by hand from the BEPs.

Each case gives a connection in the state where the message is legal (``setup``), the
message's bytes as BEP 3, 6, 9, 10, 11 and 52 lay them out, and the event. The bytes are
read whole, one byte at a time, and followed by the start of another message (which must
be left waiting); ``send`` of the event on a connection in the same state gives the same
bytes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from p2pshare.protocol import bt_events as ev
from p2pshare.protocol.bt_codec import encode_handshake
from p2pshare.protocol.bt_events import reserved_bits
from p2pshare.protocol.bt_wire import BtConnection, BtRole

from .wire import INFO_HASH, events, opened, ways

ROOT = bytes(range(32))
BLOCK = bytes(range(256)) * 64  # 16 KiB
# The peer's extension handshake: it takes ut_metadata as 3 and ut_pex as 7.
THEIR_EXT = b"\x00\x00\x00\x2d\x14\x00d1:md11:ut_metadatai3e6:ut_pexi7eee"
THEIR_EXT = THEIR_EXT[:3] + bytes([len(THEIR_EXT) - 4]) + THEIR_EXT[4:]
Setup = Callable[[BtConnection], None]


def nothing(_conn: BtConnection) -> None:
    pass


def after_bitfield(conn: BtConnection) -> None:
    """Both sides past their first message (so bitfields are over)."""
    conn.send(ev.HaveNone())
    events(conn, [b"\x00\x00\x00\x01\x0f"])


def unchoked_us(conn: BtConnection) -> None:
    after_bitfield(conn)
    events(conn, [b"\x00\x00\x00\x01\x01"])


def requested(conn: BtConnection) -> None:
    """We asked for block (1, 16384, 16384)."""
    unchoked_us(conn)
    conn.send(ev.BtRequest(1, 16384, 16384))


def we_unchoked(conn: BtConnection) -> None:
    after_bitfield(conn)
    conn.send(ev.Unchoke())


def they_requested(conn: BtConnection) -> None:
    we_unchoked(conn)
    events(conn, [b"\x00\x00\x00\x0d\x06\x00\x00\x00\x01\x00\x00\x40\x00\x00\x00\x40\x00"])


def ext_known(conn: BtConnection) -> None:
    conn.send(conn.extended_handshake())
    events(conn, [THEIR_EXT])


def hash_head(msg_id: int, extra: int = 0) -> bytes:
    return ((49 + extra).to_bytes(4, "big") + bytes([msg_id]) + ROOT
            + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x08" + b"\x00\x00\x00\x04"
            + b"\x00\x00\x00\x01")


# (name, setup, wire bytes, event, ids the peer reads extensions under differ: send check)
CASES: list[tuple[str, Setup, bytes, object]] = [
    ("keep-alive", after_bitfield, b"\x00\x00\x00\x00", ev.BtKeepAlive()),
    ("choke", after_bitfield, b"\x00\x00\x00\x01\x00", ev.Choke()),
    ("unchoke", after_bitfield, b"\x00\x00\x00\x01\x01", ev.Unchoke()),
    ("interested", after_bitfield, b"\x00\x00\x00\x01\x02", ev.Interested()),
    ("not interested", after_bitfield, b"\x00\x00\x00\x01\x03", ev.NotInterested()),
    ("have", after_bitfield, b"\x00\x00\x00\x05\x04\x00\x00\x00\x0a", ev.BtHave(10)),
    # 11 pieces: two bytes, the five spare bits zero
    ("bitfield", nothing, b"\x00\x00\x00\x03\x05\xa5\x80", ev.Bitfield(b"\xa5\x80")),
    ("request", we_unchoked,
     b"\x00\x00\x00\x0d\x06\x00\x00\x00\x01\x00\x00\x40\x00\x00\x00\x40\x00",
     ev.BtRequest(1, 16384, 16384)),
    ("piece", requested, b"\x00\x00\x40\x09\x07\x00\x00\x00\x01\x00\x00\x40\x00" + BLOCK,
     ev.Piece(1, 16384, BLOCK)),
    ("cancel", they_requested,
     b"\x00\x00\x00\x0d\x08\x00\x00\x00\x01\x00\x00\x40\x00\x00\x00\x40\x00",
     ev.Cancel(1, 16384, 16384)),
    ("port", after_bitfield, b"\x00\x00\x00\x03\x09\x1a\xe1", ev.Port(6881)),
    ("suggest", after_bitfield, b"\x00\x00\x00\x05\x0d\x00\x00\x00\x03", ev.Suggest(3)),
    ("have all", nothing, b"\x00\x00\x00\x01\x0e", ev.HaveAll()),
    ("have none", nothing, b"\x00\x00\x00\x01\x0f", ev.HaveNone()),
    ("reject request", requested,
     b"\x00\x00\x00\x0d\x10\x00\x00\x00\x01\x00\x00\x40\x00\x00\x00\x40\x00",
     ev.RejectRequest(1, 16384, 16384)),
    ("allowed fast", after_bitfield, b"\x00\x00\x00\x05\x11\x00\x00\x00\x07", ev.AllowedFast(7)),
    ("hash request", after_bitfield, hash_head(21), ev.HashRequest(ROOT, 2, 8, 4, 1)),
    ("hashes", after_bitfield, hash_head(22, 64) + b"\x11" * 32 + b"\x22" * 32,
     ev.Hashes(ROOT, 2, 8, 4, 1, b"\x11" * 32 + b"\x22" * 32)),
    ("hash reject", after_bitfield, hash_head(23), ev.HashReject(ROOT, 2, 8, 4, 1)),
]


@pytest.mark.parametrize(("setup", "wire", "event"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
@pytest.mark.parametrize("how", ["whole", "bytes", "trailing"])
def test_read(setup: Setup, wire: bytes, event: object, how: str) -> None:
    conn = opened()
    setup(conn)
    chunks = ways(wire)[how == "bytes"]
    if how == "trailing":
        chunks = [wire + b"\x00\x00\x00\x05\x04\x00"]  # a have, cut short
    assert events(conn, chunks) == [event]


@pytest.mark.parametrize(("setup", "wire", "event"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_send(setup: Setup, wire: bytes, event: object) -> None:
    conn = opened()
    # a block message goes the other way: we ask, we answer, we cancel
    mirrored = {ev.BtRequest: unchoked_us, ev.Piece: they_requested,
                ev.RejectRequest: they_requested,
                ev.Cancel: requested}
    mirrored.get(type(event), setup)(conn)
    assert conn.send(event) == wire  # type: ignore[arg-type]


def test_handshake_bytes() -> None:
    """BEP 3: 19, the protocol string, 8 reserved bytes (BEP 10: byte 5 & 0x10; BEP 6:
    byte 7 & 0x04; BEP 52: byte 7 & 0x10), info-hash, peer id."""
    wire = (b"\x13BitTorrent protocol" + b"\x00\x00\x00\x00\x00\x10\x00\x14"
            + INFO_HASH + b"-PS0001-abcdefghijkl")
    event = ev.Handshake(INFO_HASH, b"-PS0001-abcdefghijkl",
                      reserved_bits(fast=True, extended=True, v2=True))
    assert encode_handshake(event) == wire
    assert (event.fast, event.extended, event.v2) == (True, True, True)
    for chunks in ways(wire) + [[wire + b"\x00\x00"]]:
        conn = BtConnection(BtRole.ACCEPTOR)
        assert events(conn, chunks) == [event]


EXT_CASES: list[tuple[str, bytes, object]] = [
    # BEP 10's example handshake, with the keys BEP 9 and our reader know
    ("extended handshake",
     b"\x00d1:md11:ut_metadatai3e6:ut_pexi7ee13:metadata_sizei31235e1:pi6881e"
     b"4:reqqi500e1:v13:\xc2\xb5Torrent 1.26:yourip4:\x7f\x00\x00\x01e",
     ev.ExtendedHandshake({"ut_metadata": 3, "ut_pex": 7}, "\u00b5Torrent 1.2", 6881, 500,
                       31235, yourip=b"\x7f\x00\x00\x01")),
    # BEP 9's examples, sent to our ut_metadata id (2)
    ("metadata request", b"\x02d8:msg_typei0e5:piecei0ee", ev.MetadataRequest(0)),
    ("metadata data", b"\x02d8:msg_typei1e5:piecei1e10:total_sizei16390ee" + b"x" * 6,
     ev.MetadataData(1, 16390, b"x" * 6)),
    ("metadata reject", b"\x02d8:msg_typei2e5:piecei0ee", ev.MetadataReject(0)),
    # BEP 11, to our ut_pex id (1): 10.0.0.1:6881 (flag 0x02: seed) and [::1]:80 dropped
    ("pex", b"\x01d5:added6:\x0a\x00\x00\x01\x1a\xe17:added.f1:\x028:dropped618:"
     + bytes(15) + b"\x01\x00\x50e",
     ev.Pex(added=(("10.0.0.1", 6881),), added_f=b"\x02", dropped6=(("::1", 80),))),
]


@pytest.mark.parametrize(("payload", "event"), [c[1:] for c in EXT_CASES],
                         ids=[c[0] for c in EXT_CASES])
@pytest.mark.parametrize("how", ["whole", "bytes", "trailing"])
def test_read_extension(payload: bytes, event: object, how: str) -> None:
    conn = opened()
    ext_known(conn)
    wire = (len(payload) + 1).to_bytes(4, "big") + b"\x14" + payload
    chunks = ways(wire)[how == "bytes"] if how != "trailing" else [wire + b"\x00\x00\x00"]
    assert events(conn, chunks) == [event]


def test_send_extension_uses_their_ids() -> None:
    conn = opened()
    ext_known(conn)
    assert conn.send(ev.MetadataRequest(5)) == (
        b"\x00\x00\x00\x1b\x14\x03d8:msg_typei0e5:piecei5ee")
    assert conn.send(ev.Pex(dropped=(("1.2.3.4", 80),))) == (
        b"\x00\x00\x00\x15\x14\x07d7:dropped6:\x01\x02\x03\x04\x00\x50e")
