"""Properties of the peer wire codec: round trips, and random bytes never crash it.

Strategy: hypothesis builds every message from its fields; writing then reading gives it
back (the fixed-layout messages through ``bt_codec``, the extension payloads through
``bt_extended``, whole sequences through a connection cut into random chunks). Random
bytes fed to connections in every mode give events or ``RemoteProtocolError``, nothing
else.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.errors import RemoteProtocolError
from p2pshare.protocol import bt_codec, bt_extended
from p2pshare.protocol import bt_events as ev
from p2pshare.protocol._events import ConnectionClosed, _Sentinel
from p2pshare.protocol.bt_wire import BtConnection

from .wire import GEOMETRY, events, handshake, opened

u32 = st.integers(0, 2**32 - 1)
block = st.tuples(u32, u32, u32)
hash_fields = st.tuples(st.binary(min_size=32, max_size=32), u32, u32, u32, u32)


def _hashes(f: tuple[bytes, int, int, int, int], n: int) -> ev.Hashes:
    return ev.Hashes(*f, bytes(range(32)) * n)


fixed = st.one_of(
    st.sampled_from([ev.Choke(), ev.Unchoke(), ev.Interested(), ev.NotInterested(), ev.HaveAll(),
                     ev.HaveNone(), ev.BtKeepAlive()]),
    st.builds(ev.BtHave, u32), st.builds(ev.Suggest, u32), st.builds(ev.AllowedFast, u32),
    st.builds(ev.Port, st.integers(0, 65535)),
    block.map(lambda b: ev.BtRequest(*b)), block.map(lambda b: ev.Cancel(*b)),
    block.map(lambda b: ev.RejectRequest(*b)),
    st.builds(ev.Piece, u32, u32, st.binary(max_size=100)),
    hash_fields.map(lambda f: ev.HashRequest(*f)), hash_fields.map(lambda f: ev.HashReject(*f)),
    st.builds(_hashes, hash_fields, st.integers(0, 3)),
)


@given(fixed)
def test_fixed_round_trip(event: object) -> None:
    wire = bt_codec.encode_message(event)  # type: ignore[arg-type]
    if isinstance(event, ev.BtKeepAlive):
        assert wire == bytes(4)
        return
    assert int.from_bytes(wire[:4], "big") == len(wire) - 4
    assert bt_codec.decode_message(wire[4], wire[5:]) == event


addresses = st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16))
handshakes = st.builds(
    ev.ExtendedHandshake,
    m=st.dictionaries(st.text(min_size=1, max_size=12), st.integers(0, 255), max_size=5),
    v=st.none() | st.text(max_size=20),
    p=st.none() | st.integers(1, 65535),
    reqq=st.none() | st.integers(1, 100_000),
    metadata_size=st.none() | st.integers(1, limits.MAX_BENCODE_SIZE),
    yourip=st.none() | addresses,
    ipv4=st.none() | st.binary(min_size=4, max_size=4),
    ipv6=st.none() | st.binary(min_size=16, max_size=16),
)


@given(handshakes)
def test_extension_handshake_round_trip(event: ev.ExtendedHandshake) -> None:
    assert bt_extended.decode_ext_handshake(bt_extended.encode_ext_handshake(event)) == event


@st.composite
def metadata_messages(draw: st.DrawFn) -> object:
    piece = draw(st.integers(0, limits.MAX_BENCODE_SIZE // limits.BT_METADATA_PIECE - 1))
    kind = draw(st.sampled_from(["request", "data", "reject"]))
    if kind != "data":
        return ev.MetadataRequest(piece) if kind == "request" else ev.MetadataReject(piece)
    start = piece * limits.BT_METADATA_PIECE
    total = draw(st.integers(start + 1, min(start + 2 * limits.BT_METADATA_PIECE,
                                            limits.MAX_BENCODE_SIZE)))
    size = min(limits.BT_METADATA_PIECE, total - start)
    return ev.MetadataData(piece, total, bytes([piece % 256]) * size)


@given(metadata_messages())
def test_metadata_round_trip(event: object) -> None:
    payload = bt_extended.encode_metadata(event)  # type: ignore[arg-type]
    assert bt_extended.decode_metadata(payload) == event


v4 = st.tuples(st.ip_addresses(v=4).map(str), st.integers(0, 65535))
v6 = st.tuples(st.ip_addresses(v=6).map(str), st.integers(0, 65535))


@st.composite
def pex_messages(draw: st.DrawFn) -> ev.Pex:
    added = tuple(draw(st.lists(v4, max_size=25)))
    added6 = tuple(draw(st.lists(v6, max_size=25)))
    flags = draw(st.booleans())
    return ev.Pex(added, bytes(len(added)) if flags else b"",
               tuple(draw(st.lists(v4, max_size=25))), added6,
               b"\x01" * len(added6) if flags else b"", tuple(draw(st.lists(v6, max_size=25))))


@given(pex_messages())
def test_pex_round_trip(event: ev.Pex) -> None:
    assert bt_extended.decode_pex(bt_extended.encode_pex(event)) == event


peer_messages = st.lists(st.one_of(
    st.sampled_from([ev.Choke(), ev.Unchoke(), ev.Interested(), ev.NotInterested(),
                     ev.BtKeepAlive()]),
    st.builds(ev.BtHave, st.integers(0, 10)), st.builds(ev.Suggest, st.integers(0, 10)),
    st.builds(ev.AllowedFast, st.integers(0, 10)), st.builds(ev.Port, st.integers(0, 65535)),
    hash_fields.map(lambda f: ev.HashRequest(f[0], f[1], f[2], f[3] % 512 + 1, f[4] % 10)),
), max_size=20)


@given(peer_messages, st.lists(st.integers(1, 40), max_size=30))
def test_any_cutting_gives_the_same_events(messages: list[object], cuts: list[int]) -> None:
    wire = b"".join(bt_codec.encode_message(m) for m in messages)  # type: ignore[arg-type]
    chunks, at = [], 0
    for cut in cuts:
        chunks.append(wire[at:at + cut])
        at += cut
    chunks.append(wire[at:])
    assert events(opened(), [c for c in chunks if c]) == messages


def _drain(conn: BtConnection) -> None:
    while not isinstance(event := conn.next_event(), _Sentinel | ConnectionClosed):
        if type(event).__name__ == "PieceHeader":
            conn.receive_block(bytearray(event.length))  # type: ignore[union-attr]


# random messages, framed: an id BitTorrent knows (or not) and a payload of any shape
framed = st.builds(lambda i, p: (len(p) + 1).to_bytes(4, "big") + bytes([i]) + p,
                   st.integers(0, 25), st.binary(max_size=60))
noise = st.lists(st.binary(max_size=200) | framed | fixed.map(bt_codec.encode_message),
                 max_size=12)


@settings(max_examples=300)
@given(noise, st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_random_bytes_give_events_or_remote_errors(
        chunks: list[bytes], fast: bool, blocks: bool, known: bool, handshaken: bool) -> None:
    conn = opened(fast=fast, receive_blocks=blocks, geometry=GEOMETRY if known else None)
    if not handshaken:
        conn = BtConnection(conn.our_side, receive_blocks=blocks)
        conn.send(handshake(b"u", fast=fast))
        chunks = [bt_codec.PROTOCOL + bytes(48)] + chunks  # a handshake, then noise
    try:
        for chunk in [*chunks, b""]:
            conn.receive_data(chunk)
            _drain(conn)
    except RemoteProtocolError:
        pass
