"""Fuzz targets for the BitTorrent peer wire: a connection fed a peer's bytes, and the
extension payloads (BEP 10 handshake, BEP 9 ut_metadata, BEP 11 ut_pex).

Each target returns or raises ``RemoteProtocolError``; anything else is a finding (a
``LocalProtocolError`` too: the driver only sends what the codec's state allows, so one
would be the codec contradicting itself). The connection target plays our side as the
session does: it answers the peer's requests with pieces, receives blocks into buffers of
their own, and requests two blocks once unchoked, so pieces and rejects have something to
answer. Extension payloads we accept must read the same after we write them again.
"""

from __future__ import annotations

from drive import Steps, reads, split

from p2pshare.protocol import bt_codec, bt_extended
from p2pshare.protocol import bt_events as ev
from p2pshare.protocol._bt_state import Geometry
from p2pshare.protocol._events import ConnectionClosed, _Sentinel
from p2pshare.protocol.bt_events import reserved_bits
from p2pshare.protocol.bt_wire import BtConnection, BtRole

INFO_HASH = bytes(range(20))
GEOMETRY = Geometry.v1(10 * 32768 + 1000, 32768)  # 11 pieces
ASK = ((0, 0, 16384), (10, 0, 1000))


def _connection(ctl: int) -> BtConnection:
    """Control bits: 4 fast, 8 blocks into buffers, 16 geometry known, 32 the peer's
    handshake already read, 64 we have everything and unchoke the peer."""
    fast = bool(ctl & 4)
    conn = BtConnection(BtRole.INITIATOR, geometry=GEOMETRY if ctl & 16 else None,
                        receive_blocks=bool(ctl & 8))
    conn.send(ev.Handshake(INFO_HASH, b"-PS0001-fuzzfuzzfuzz", reserved_bits(fast=fast)))
    if ctl & 32:
        conn.receive_data(bt_codec.encode_handshake(
            ev.Handshake(INFO_HASH, b"-XX0001-peerpeerpeer", reserved_bits(fast=fast))))
        conn.next_event()
        if ctl & 64:
            conn.send(ev.HaveAll() if fast else ev.Bitfield(b"\xff\xe0"))
            conn.send(ev.Unchoke())
    return conn


def _answer(conn: BtConnection, event: object) -> None:
    if isinstance(event, ev.PieceHeader):
        conn.receive_block(bytearray(event.length))
    elif isinstance(event, ev.BtRequest):
        conn.send(ev.Piece(event.index, event.begin, bytes(event.length)))
    elif isinstance(event, ev.Unchoke) and conn.geometry is not None:
        for block in ASK:
            conn.send(ev.BtRequest(*block))
    conn.data_to_send()


def bt_wire_peer(data: bytes) -> None:
    ctl, payload = split(data)
    conn = _connection(ctl)
    steps = Steps.for_input(payload)
    for chunk in [*reads(ctl, payload), b""]:
        conn.receive_data(chunk)
        while not isinstance(event := conn.next_event(), _Sentinel | ConnectionClosed):
            steps.take()
            _answer(conn, event)


def bt_wire_extension(data: bytes) -> None:
    ctl, payload = split(data)
    kind = ctl % 3
    if kind == 0:
        handshake = bt_extended.decode_ext_handshake(payload)
        again = bt_extended.decode_ext_handshake(bt_extended.encode_ext_handshake(handshake))
        assert again == handshake, f"{handshake!r} reads back as {again!r}"
    elif kind == 1:
        message = bt_extended.decode_metadata(payload)
        if message is not None:
            again = bt_extended.decode_metadata(bt_extended.encode_metadata(message))
            assert again == message, f"{message!r} reads back as {again!r}"
    else:
        pex = bt_extended.decode_pex(payload)
        assert bt_extended.decode_pex(bt_extended.encode_pex(pex)) == pex


def wire_seeds() -> dict[str, dict[str, bytes]]:
    """Seeds: a peer's side of a session as our encoder writes it, under several controls,
    and each extension payload kind."""
    peer = BtConnection(BtRole.ACCEPTOR, geometry=GEOMETRY)
    peer.receive_data(bt_codec.encode_handshake(ev.Handshake(INFO_HASH, bytes(20))))
    peer.next_event()
    wire = [peer.send(ev.Handshake(INFO_HASH, b"-XX0001-peerpeerpeer"))]
    wire += [peer.send(ev.ExtendedHandshake({"ut_metadata": 3, "ut_pex": 1}, "x", reqq=5)),
             peer.send(ev.HaveAll()), peer.send(ev.Unchoke())]
    ext_to_us = [b"\x02" + bt_extended.encode_metadata(ev.MetadataData(0, 5, b"hello")),
                 b"\x01" + bt_extended.encode_pex(ev.Pex((("10.0.0.1", 80),), b"\x02"))]
    wire += [bt_codec.frame(bt_codec.EXTENDED, p) for p in ext_to_us]
    wire += [bt_codec.encode_message(ev.Piece(i, b, bytes(n))) for i, b, n in ASK]
    session = b"".join(wire)
    body = session[68:]
    fast = (0x14, 0x15, 0x16, 0x1c, 0x1d)  # fast extension, every way of cutting reads
    peer_seeds = {f"session_{ctl:02x}": bytes([ctl]) + session for ctl in fast}
    peer_seeds |= {f"open_{ctl:02x}": bytes([ctl]) + body for ctl in (0x34, 0x3c, 0x74, 0x7e)}
    ext = {"handshake": b"\0" + bt_extended.encode_ext_handshake(
        ev.ExtendedHandshake({"ut_metadata": 3}, "v", 6881, 250, 100, b"\x7f\0\0\1"))}
    ext |= {"metadata": b"\1" + ext_to_us[0][1:], "pex": b"\2" + ext_to_us[1][1:]}
    return {"bt_wire_peer": peer_seeds, "bt_wire_extension": ext}
