"""The peer wire's state rules: message order (every illegal pair), choking, budgets.

Strategy: the order table is tested exhaustively (every event type in every phase, both
directions); the rules of BEP 3 and BEP 6 each by a short exchange on a connection past
its handshakes (``wire.opened``), with and without the fast extension.
"""

from __future__ import annotations

import pytest

from p2pshare import limits
from p2pshare.errors import LocalProtocolError, RemoteProtocolError
from p2pshare.protocol import bt_codec
from p2pshare.protocol import bt_events as ev
from p2pshare.protocol._bt_state import TRANSITIONS, Geometry, Phase
from p2pshare.protocol._events import ConnectionClosed
from p2pshare.protocol.bt_wire import BtConnection, BtRole

from .wire import GEOMETRY, events, handshake, opened

SAMPLES = [handshake(b"x"), ev.BtKeepAlive(), ev.Choke(), ev.Unchoke(), ev.Interested(),
           ev.BtHave(1), ev.Bitfield(b"\xff\xe0"), ev.HaveAll(), ev.HaveNone(), ev.Suggest(1),
           ev.AllowedFast(1), ev.Port(1), ev.HashRequest(bytes(32), 0, 0, 2, 0),
           ev.ExtendedHandshake()]
REQ = b"\x00\x00\x00\x0d\x06\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x40\x00"  # (1, 0, 16384)
BLOCK = (1, 0, 16384)


def msg(event: object) -> bytes:
    return bt_codec.encode_message(event)  # type: ignore[arg-type]


def in_phase(phase: Phase) -> BtConnection:
    """A connection whose OUR side is in ``phase`` (the peer's handshake read)."""
    if phase is Phase.HANDSHAKE:
        conn = BtConnection(BtRole.ACCEPTOR, geometry=GEOMETRY)
        conn.receive_data(bt_codec.encode_handshake(handshake(b"t")))
        conn.next_event()
        return conn
    conn = opened()
    if phase is Phase.OPEN:
        conn.send(ev.HaveNone())
    return conn


@pytest.mark.parametrize("phase", [Phase.HANDSHAKE, Phase.FIRST, Phase.OPEN])
@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_send_order(phase: Phase, event: object) -> None:
    conn = in_phase(phase)
    if (phase, type(event)) in TRANSITIONS:
        conn.send(event)  # type: ignore[arg-type]
    else:
        with pytest.raises(LocalProtocolError):
            conn.send(event)  # type: ignore[arg-type]
        with pytest.raises(LocalProtocolError):  # and the connection is dead on our side
            conn.send(ev.BtKeepAlive())


@pytest.mark.parametrize("phase", [Phase.FIRST, Phase.OPEN])
@pytest.mark.parametrize("event", SAMPLES[1:], ids=lambda e: type(e).__name__)
def test_receive_order(phase: Phase, event: object) -> None:
    """The peer's side: every message in every phase past the handshake (a handshake
    cannot come again: its bytes would read as an over-long message)."""
    conn = opened()
    if phase is Phase.OPEN:
        events(conn, [msg(ev.HaveNone())])
    wire = (msg(event) if not isinstance(event, ev.ExtendedHandshake)
            else b"\x00\x00\x00\x04\x14\x00de")
    if (phase, type(event)) in TRANSITIONS:
        assert len(events(conn, [wire])) == 1
    else:
        with pytest.raises(RemoteProtocolError):
            events(conn, [wire])


@pytest.mark.parametrize("first", [ev.Bitfield(b"\xff\xe0"), ev.HaveAll(), ev.HaveNone()],
                         ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("then", [ev.Bitfield(b"\xff\xe0"), ev.HaveAll(), ev.HaveNone(),
                                  ev.BtHave(1)],
                         ids=lambda e: type(e).__name__)
def test_receive_have_none_only_first(first: object, then: object) -> None:
    """A have none only first; a bitfield or have all later is the peer's whole set."""
    conn = opened()
    ok = [msg(ev.BtKeepAlive()), msg(ev.Port(9)), msg(first)]
    events(conn, ok)
    if not isinstance(then, ev.HaveNone):
        assert events(conn, [msg(then)]) == [then]
        return
    with pytest.raises(RemoteProtocolError):
        events(conn, [msg(then)])
    with pytest.raises(RemoteProtocolError):  # the connection stays dead
        conn.next_event()


def test_nothing_before_the_peers_handshake() -> None:
    conn = BtConnection(BtRole.INITIATOR)
    conn.send(handshake(b"u"))
    with pytest.raises(LocalProtocolError):
        conn.send(ev.Interested())
    acceptor = BtConnection(BtRole.ACCEPTOR)
    acceptor.receive_data(bt_codec.encode_handshake(handshake(b"t")) + msg(ev.HaveAll()))
    assert isinstance(acceptor.next_event(), ev.Handshake)
    with pytest.raises(LocalProtocolError):  # have all or not depends on our handshake
        acceptor.next_event()
    acceptor.send(handshake(b"u"))
    assert acceptor.next_event() == ev.HaveAll()
    http = BtConnection(BtRole.ACCEPTOR)
    with pytest.raises(RemoteProtocolError):  # at its first byte, not its 68th
        events(http, [b"G"])
    other = BtConnection(BtRole.ACCEPTOR)
    with pytest.raises(RemoteProtocolError):
        events(other, [b"\x13BitTorrent protocoX" + bytes(48)])


@pytest.mark.parametrize("event", [ev.Suggest(1), ev.HaveAll(), ev.HaveNone(),
                                   ev.RejectRequest(*BLOCK), ev.AllowedFast(1)],
                         ids=lambda e: type(e).__name__)
def test_fast_messages_need_fast(event: object) -> None:
    conn = opened(fast=False)
    with pytest.raises(LocalProtocolError):
        conn.send(event)  # type: ignore[arg-type]
    with pytest.raises(RemoteProtocolError):
        events(opened(fast=False), [msg(event)])


@pytest.mark.parametrize("bits", [b"\xff", b"\xff\xe0\x00", b"\xff\xf0", b"\x00\x01"])
def test_bitfield_exact_length_and_spare_bits(bits: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        events(opened(), [msg(ev.Bitfield(bits))])
    with pytest.raises(LocalProtocolError):
        opened().send(ev.Bitfield(bits))


def test_bitfield_before_the_metadata_is_checked_when_it_comes() -> None:
    conn = opened(geometry=None)
    assert events(conn, [msg(ev.Bitfield(b"\xff\xf0"))]) == [ev.Bitfield(b"\xff\xf0")]
    with pytest.raises(RemoteProtocolError):
        conn.set_geometry(GEOMETRY)  # 11 pieces: the twelfth bit is a spare one
    conn = opened(geometry=None)
    events(conn, [msg(ev.Bitfield(b"\xff\xe0"))])
    conn.set_geometry(GEOMETRY)


@pytest.mark.parametrize("event", [ev.BtHave(11), ev.BtRequest(11, 0, 1), ev.BtRequest(0, 0, 0),
                                   ev.BtRequest(0, 0, 16385), ev.BtRequest(10, 0, 1001),
                                   ev.BtRequest(0, 32767, 2)], ids=str)
def test_out_of_range(event: object) -> None:
    conn = opened()
    conn.send(ev.HaveAll())
    conn.send(ev.Unchoke())
    with pytest.raises(RemoteProtocolError):
        events(conn, [msg(event)])


def test_a_suggest_out_of_range_is_ignored() -> None:
    """Attack: a suggest of piece 2**32-1 reached the caller unchecked (a have of it is
    refused): now one out of range is dropped (libtorrent ignores it too), one in range
    is given."""
    conn = opened()
    assert events(conn, [msg(ev.Suggest(11)), msg(ev.Suggest(2**32 - 1)),
                         msg(ev.Suggest(10))]) == [ev.Suggest(10)]


def served(fast: bool = True, reqq: int = 250) -> BtConnection:
    """We have sent have-all and unchoked the peer."""
    conn = opened(fast=fast, reqq=reqq)
    conn.send(ev.HaveAll() if fast else ev.Bitfield(b"\xff\xe0"))
    conn.send(ev.Unchoke())
    return conn


def test_requests_while_choked() -> None:
    conn = opened()
    conn.send(ev.HaveAll())
    assert events(conn, [REQ]) == []  # we choke it: BEP 6 says reject
    assert conn.data_to_send() == msg(ev.RejectRequest(*BLOCK))
    conn.send(ev.AllowedFast(1))
    assert events(conn, [REQ]) == [ev.BtRequest(*BLOCK)]
    slow = opened(fast=False)
    slow.send(ev.Bitfield(b"\xff\xe0"))
    assert events(slow, [REQ]) == [] and slow.data_to_send() == b""  # BEP 3: dropped


def test_reqq_budget() -> None:
    conn = served(reqq=2)
    requests = [msg(ev.BtRequest(0, i * 16384, 16384)) for i in range(2)]
    assert len(events(conn, requests + [REQ])) == 2
    assert conn.data_to_send() == msg(ev.RejectRequest(*BLOCK))
    slow = served(fast=False, reqq=2)
    events(slow, requests)
    with pytest.raises(RemoteProtocolError):
        events(slow, [REQ])


def test_repeated_request_is_answered_once() -> None:
    conn = served()
    assert events(conn, [REQ, REQ]) == [ev.BtRequest(*BLOCK)]


def test_cancel_with_fast_gets_a_reject_and_no_piece() -> None:
    conn = served()
    events(conn, [REQ])
    assert events(conn, [msg(ev.Cancel(*BLOCK))]) == [ev.Cancel(*BLOCK)]
    assert conn.data_to_send() == msg(ev.RejectRequest(*BLOCK))
    assert conn.send(ev.Piece(1, 0, bytes(16384))) == b""
    assert events(conn, [msg(ev.Cancel(*BLOCK))]) == []  # crossed: nothing more


def test_choke_rejects_pending_requests_but_allowed_fast() -> None:
    conn = served()
    conn.send(ev.AllowedFast(2))
    events(conn, [REQ, msg(ev.BtRequest(2, 0, 100))])
    assert conn.send(ev.Choke()) == msg(ev.Choke()) + msg(ev.RejectRequest(*BLOCK))
    assert conn.send(ev.PieceHeader(1, 0, 16384)) == b""
    assert conn.send(ev.PieceHeader(2, 0, 100)) == bt_codec.piece_header(2, 0, 100)
    slow = served(fast=False)
    events(slow, [REQ])
    assert slow.send(ev.Choke()) == msg(ev.Choke())
    assert slow.send(ev.Piece(1, 0, bytes(16384))) == b""


def asking(fast: bool = True) -> BtConnection:
    """The peer unchoked us; we asked for BLOCK."""
    conn = opened(fast=fast)
    conn.send(ev.HaveNone() if fast else ev.Bitfield(bytes(2)))
    events(conn, [msg(ev.Unchoke())])
    conn.send(ev.BtRequest(*BLOCK))
    return conn


def test_pieces_and_rejects_must_answer_a_request() -> None:
    for event in (ev.Piece(1, 0, bytes(16384)), ev.RejectRequest(*BLOCK)):
        conn = asking()
        assert events(conn, [msg(event)]) == [event]
        with pytest.raises(RemoteProtocolError):
            events(conn, [msg(event)])  # a second answer to one request


def test_answers_to_a_cancelled_request_are_dropped() -> None:
    for event in (ev.Piece(1, 0, bytes(16384)), ev.RejectRequest(*BLOCK)):
        conn = asking()
        assert conn.send(ev.Cancel(*BLOCK)) == msg(ev.Cancel(*BLOCK))
        assert conn.send(ev.Cancel(*BLOCK)) == b""
        assert events(conn, [msg(event)]) == []


def test_their_choke_without_fast_drops_our_requests() -> None:
    conn = asking(fast=False)
    assert events(conn, [msg(ev.Choke()), msg(ev.Piece(1, 0, bytes(16384)))]) == [ev.Choke()]
    with pytest.raises(LocalProtocolError):
        conn.send(ev.BtRequest(*BLOCK))  # choked


def test_our_requests_obey_their_reqq_and_allowed_fast() -> None:
    conn = opened()
    conn.send(ev.HaveNone())
    events(conn, [msg(ev.AllowedFast(3))])
    conn.send(ev.BtRequest(3, 0, 1000))  # allowed while choked
    with pytest.raises(LocalProtocolError):
        conn.send(ev.BtRequest(4, 0, 1000))
    conn = opened()
    conn.send(ev.HaveNone())
    ext = b"\x00d1:md11:ut_metadatai3ee4:reqqi2ee"
    events(conn, [(len(ext) + 1).to_bytes(4, "big") + b"\x14" + ext, msg(ev.Unchoke())])
    conn.send(ev.BtRequest(0, 0, 10))
    conn.send(ev.BtRequest(0, 10, 10))
    with pytest.raises(LocalProtocolError):
        conn.send(ev.BtRequest(0, 20, 10))


@pytest.mark.parametrize(("msg_id", "length"), [
    (7, limits.MAX_BT_MESSAGE + 1), (99, limits.MAX_BT_MESSAGE + 1), (4, 2**32 - 1),
    (20, limits.MAX_BT_EXTENDED + 3), (22, limits.MAX_BT_HASHES_MESSAGE + 1), (5, 4)])
def test_over_long_messages_are_fatal_at_once(msg_id: int, length: int) -> None:
    """Only the 5-byte head is needed to refuse them (bitfield: 11 pieces is 2 bytes)."""
    with pytest.raises(RemoteProtocolError):
        events(opened(), [length.to_bytes(4, "big") + bytes([msg_id])])


def test_unknown_ids_and_extensions_are_skipped() -> None:
    conn = opened()
    unknown = b"\x00\x00\x00\x04\x63abc"  # id 99
    unknown_ext = b"\x00\x00\x00\x05\x14\x09xyz"  # extension id 9: not one of ours
    assert events(conn, [unknown, unknown_ext, msg(ev.Interested())]) == [ev.Interested()]


@pytest.mark.parametrize("payload", [
    b"\x02d8:msg_typei1e5:piecei0e10:total_sizei10eexxxx",  # 4 bytes for a 10-byte total
    b"\x02d8:msg_typei1e5:piecei1e10:total_sizei10eex",  # piece past the end
    b"\x02d8:msg_typei0ee",  # no piece
    b"\x02d8:msg_typei0e5:piecei0eeX",  # bytes after a request
    b"\x01d5:added5:\x01\x02\x03\x04\x05e",  # not a whole compact peer
    b"\x00le", b"\x00d1:m",  # handshake: not a dictionary; truncated
])
def test_bad_extension_payloads(payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        events(opened(), [(len(payload) + 1).to_bytes(4, "big") + b"\x14" + payload])


def test_pex_budget() -> None:
    peers = b"".join(bytes([10, 0, i // 256, i % 256, 0, 80]) for i in range(60))
    payload = b"\x01d5:added360:" + peers + b"e"
    (event,) = events(opened(), [(len(payload) + 1).to_bytes(4, "big") + b"\x14" + payload])
    assert len(event.added) == limits.MAX_PEX_PEERS  # type: ignore[attr-defined]


def test_close() -> None:
    conn = opened()
    assert events(conn, [msg(ev.Interested()), b""]) == [ev.Interested(), ConnectionClosed()]
    conn = opened()
    with pytest.raises(RemoteProtocolError):
        events(conn, [b"\x00\x00\x00", b""])


def test_geometry_of_a_v1_torrent() -> None:
    assert Geometry.v1(100, 50) == Geometry(2, 50, {})
    assert Geometry.v1(101, 50).piece_size(2) == 1
    assert GEOMETRY.bitfield_length == 2


def test_aria2s_later_bitfield_and_have_all_are_updates() -> None:
    """aria2 sends a bitfield (or have all, once complete) instead of several haves when
    that is shorter, long after its first message: read as the peer's whole set, not as
    a breach that ends the connection (libtorrent reads them so too). A later have none
    would take pieces back: still refused."""
    conn = opened()
    got = events(conn, [msg(ev.HaveNone()), msg(ev.BtHave(1)), msg(ev.Bitfield(b"\xc0\x00")),
                        msg(ev.HaveAll())])
    assert got == [ev.HaveNone(), ev.BtHave(1), ev.Bitfield(b"\xc0\x00"), ev.HaveAll()]
    with pytest.raises(RemoteProtocolError, match="not allowed now"):
        events(conn, [msg(ev.HaveNone())])
