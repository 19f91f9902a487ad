"""P2P-SWARM/1.0 codec: every message whole, byte by byte, with trailing bytes; hypothesis
round trips; random bytes give events or RemoteProtocolError; pipelined answers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.errors import RemoteProtocolError, Status
from p2pshare.protocol import (
    NEED_DATA,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Request,
    Response,
    Role,
    get_header,
)
from p2pshare.protocol import swarm as sp
from p2pshare.protocol._buffer import ReceiveBuffer
from p2pshare.protocol._events import Framing
from p2pshare.protocol._grammar import content_length, status_start
from p2pshare.protocol._heads import HeadReader

ID = "ab" * 32
OTHER = "0123456789abcdef" * 4


def encode(msg: sp.SwarmRequest) -> bytes:
    request, body = sp.to_request(msg)
    conn = sp.client_connection()
    return conn.send_all(request, *((Data(body),) if body else ()), EndOfMessage())


def decode(wire: bytes, step: int | None = None) -> tuple[Request, bytes, bytes]:
    """Parse one request from ``wire`` (in chunks of ``step``); returns leftover bytes."""
    conn = sp.server_connection()
    chunks = [wire] if step is None else [wire[i:i + step] for i in range(0, len(wire), step)]
    head: Request | None = None
    body = b""
    for chunk in chunks:
        conn.receive_data(chunk)
        while (event := conn.next_event()) is not NEED_DATA:
            if isinstance(event, Request):
                head = event
            elif isinstance(event, Data):
                body += event.data
            elif isinstance(event, EndOfMessage):
                assert head is not None
                return head, body, conn._buf.peek()
            else:
                break
    raise AssertionError("request incomplete")


MESSAGES: list[sp.SwarmRequest] = [
    sp.Announce(ID, "10.0.0.7", 6881, b'{"format":1}'),
    sp.Have(ID, 0b1011_0000_1111),
    sp.Have(ID, 1 << (limits.MAX_PIECES - 1)),
    sp.GetPeers(ID),
    sp.ListFiles(),
    sp.GetManifest(OTHER),
    sp.GetPiece(ID, 0),
    sp.GetPiece(ID, 14_999),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("step", [None, 1, 7])
def test_round_trip_whole_and_byte_by_byte(msg: sp.SwarmRequest, step: int | None) -> None:
    head, body, rest = decode(encode(msg), step)
    assert sp.interpret(head, body) == msg
    assert rest == b""


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_trailing_bytes_stay_for_the_next_request(msg: sp.SwarmRequest) -> None:
    trailer = encode(sp.GetPeers(OTHER))
    head, body, rest = decode(encode(msg) + trailer)
    assert sp.interpret(head, body) == msg
    assert rest == trailer


def test_exact_bytes_of_the_documented_examples() -> None:
    assert encode(sp.GetPiece(ID, 17)) == f"PIECE {ID} 17 P2P-SWARM/1.0\r\n\r\n".encode()
    assert encode(sp.Have(ID, 0b1110_0001)) == (
        f"HAVE {ID} P2P-SWARM/1.0\r\nContent-Length: 5\r\n\r\n0,5-7".encode())
    assert encode(sp.ListFiles()) == b"FILES ALL P2P-SWARM/1.0\r\n\r\n"
    assert encode(sp.Announce(ID, "h", 9, b"{}")) == (
        f"ANNOUNCE {ID} P2P-SWARM/1.0\r\nHost: h\r\nPort: 9\r\nContent-Length: 2\r\n\r\n{{}}"
        .encode())


@pytest.mark.parametrize(("line", "status"), [
    (f"PIECE {ID} 1 P2P-SWARM/2.0", Status.VERSION_NOT_SUPPORTED),
    (f"FETCH {ID} P2P-SWARM/1.0", Status.BAD_REQUEST),
    ("PEERS ABCD P2P-SWARM/1.0", Status.BAD_REQUEST),
    (f"PEERS {ID.upper()} P2P-SWARM/1.0", Status.BAD_REQUEST),
    (f"PIECE {ID} P2P-SWARM/1.0", Status.BAD_REQUEST),
    (f"PIECE {ID} -1 P2P-SWARM/1.0", Status.BAD_REQUEST),
    (f"PIECE {ID} {limits.MAX_PIECES} P2P-SWARM/1.0", Status.BAD_REQUEST),
    ("FILES SOME P2P-SWARM/1.0", Status.BAD_REQUEST),
    (f"ANNOUNCE {ID} P2P-SWARM/1.0\r\nPort: 5", Status.BAD_REQUEST),
    (f"ANNOUNCE {ID} P2P-SWARM/1.0\r\nHost: h\r\nPort: 0", Status.BAD_REQUEST),
])
def test_rejections(line: str, status: Status) -> None:
    head, body, _ = decode(line.encode() + b"\r\n\r\n")
    rejected = sp.interpret(head, body)
    assert isinstance(rejected, sp.Rejected)
    assert rejected.status == status


def test_a_head_that_is_not_utf_8_is_a_400() -> None:
    head, body, _ = decode(f"ANNOUNCE {ID} P2P-SWARM/1.0\r\nHost: h".encode() + b"\xff"
                           + b"\r\nPort: 5\r\n\r\n")
    rejected = sp.interpret(head, body)
    assert isinstance(rejected, sp.Rejected) and rejected.status == Status.BAD_REQUEST
    assert "UTF-8" in rejected.detail


def test_505_names_the_swarm_version() -> None:
    response, body = sp.response(Status.VERSION_NOT_SUPPORTED)
    wire = sp.server_connection()
    wire.receive_data(f"PEERS {ID} P2P-SWARM/9.9\r\n\r\n".encode())
    while not isinstance(wire.next_event(), EndOfMessage):
        pass
    assert wire.send_all(response, EndOfMessage()) == (
        b"P2P-SWARM/1.0 505 P2P-SWARM Version Not Supported\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize("body", [b"1-", b"a", b"3-1", b"1,,2", b"\xff", b"99999999999999999999"])
def test_bad_have_bodies(body: bytes) -> None:
    head = Request("HAVE", ID, sp.VERSION, (("Content-Length", str(len(body))),))
    assert isinstance(sp.interpret(head, body), sp.Rejected)


masks = st.integers(min_value=0, max_value=(1 << 300) - 1)


@given(masks)
def test_ranges_round_trip(mask: int) -> None:
    assert sp.decode_ranges(sp.encode_ranges(mask), 300) == mask


@given(masks)
def test_bitfield_round_trip(mask: int) -> None:
    assert sp.decode_bitfield(sp.encode_bitfield(mask, 300), 300) == mask


def test_bitfield_rejects_bits_past_the_count() -> None:
    with pytest.raises(RemoteProtocolError):
        sp.decode_bitfield(sp.encode_bitfield(1 << 9, 16), 9)
    with pytest.raises(RemoteProtocolError):
        sp.decode_bitfield("!!", 8)


@given(st.lists(st.tuples(st.from_regex(r"[a-z0-9.:]{1,20}", fullmatch=True),
                          st.integers(1, 65535), masks), max_size=5))
def test_peers_round_trip(rows: list[tuple[str, int, int]]) -> None:
    entries = [sp.PeerEntry(h, p, m) for h, p, m in rows]
    assert sp.decode_peers(sp.encode_peers(entries, 300), 300) == entries


@given(st.text(min_size=1, max_size=30).filter(lambda s: s.strip() == s and "\r" not in s
                                                and "\n" not in s and s.isprintable()))
def test_files_round_trip(name: str) -> None:
    entry = sp.FileEntry(ID, 123, 262144, 2, 5, 2.5, name)
    assert sp.decode_files(entry.to_line()) == [entry]


@pytest.mark.parametrize("copies", ["nan", "inf", "1e999", "-1"])
def test_files_availability_is_a_finite_natural_number(copies: str) -> None:
    # NaN or Infinity would reach ``files --json`` as JSON no strict parser reads.
    line = f"{ID} 123 262144 2 5 {copies} 0 name\r\n".encode()
    with pytest.raises(RemoteProtocolError):
        sp.decode_files(line)


@given(st.one_of(
    st.builds(sp.Announce, st.just(ID), st.from_regex(r"[a-z0-9.]{1,30}", fullmatch=True),
              st.integers(1, 65535), st.binary(max_size=64)),
    st.builds(sp.Have, st.just(OTHER), st.integers(0, (1 << 200) - 1)),
    st.builds(sp.GetPiece, st.just(ID), st.integers(0, limits.MAX_PIECES - 1)),
    st.builds(sp.GetPeers, st.just(ID)),
    st.builds(sp.GetManifest, st.just(OTHER)),
))
def test_any_message_round_trips(msg: sp.SwarmRequest) -> None:
    head, body, _ = decode(encode(msg), 13)
    assert sp.interpret(head, body) == msg


@given(st.binary(max_size=300))
def test_random_bytes_give_events_or_remote_errors(data: bytes) -> None:
    conn = sp.server_connection()
    conn.receive_data(data)
    try:
        for _ in range(50):
            event = conn.next_event()
            if event is NEED_DATA or isinstance(event, (EndOfMessage, ConnectionClosed)):
                break
            if isinstance(event, Request):
                sp.interpret(event, b"")  # never raises
    except RemoteProtocolError:
        pass


def answer(status: int, body: bytes = b"") -> bytes:
    server = Connection(Role.SERVER, sp.framing)
    server.receive_data(f"PIECE {ID} 0 P2P-SWARM/1.0\r\n\r\n".encode())
    while not isinstance(server.next_event(), EndOfMessage):
        pass
    response, _ = sp.response(Status(status), body)
    return server.send_all(response, *((Data(body),) if body else ()), EndOfMessage())


@pytest.mark.parametrize("step", [None, 1, 5])
def test_pipelined_client_matches_answers_in_order(step: int | None) -> None:
    client = sp.PipelinedClient()
    for index in range(3):
        wire = client.send(*sp.to_request(sp.GetPiece(ID, index)))
        assert wire == encode(sp.GetPiece(ID, index))
    assert client.in_flight == 3
    stream = answer(200, b"first") + answer(404) + answer(200, b"third") + b"tail"
    chunks = [stream] if step is None else [stream[i:i + step] for i in range(0, len(stream), step)]
    answers: list[tuple[int, bytes | bytearray]] = []
    for chunk in chunks:
        client.receive_data(chunk)
        while len(answers) < 3 and (found := client.next_answer()) is not None:
            answers.append((found[0].status, found[1]))
    assert answers == [(200, b"first"), (404, b""), (200, b"third")]
    assert client.in_flight == 0
    client.receive_data(b"\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        client.next_answer()  # bytes that answer nothing that was asked


@pytest.mark.parametrize("index", [0, 7, limits.MAX_PIECES - 1])
def test_a_piece_request_from_the_template_is_the_codecs(index: int) -> None:
    client = sp.PipelinedClient()
    assert client.send_piece(ID, index, 16384) == encode(sp.GetPiece(ID, index))
    assert client.in_flight == 1


def test_a_body_is_received_in_place() -> None:
    """Once the head is parsed, the rest of the body goes straight into the bytearray the
    answer returns (``body_view``: what a piece link ``recv_into``s), bytes that came
    with the head first; the next head is read from the codec's buffer again."""
    client = sp.PipelinedClient()
    client.send_piece(ID, 0, 8)
    client.send_piece(ID, 1, 8)
    wire = answer(200, b"abcdefgh")
    client.receive_data(wire[:-6])  # the head and two body bytes
    assert client.body_view(100) is None  # the head is not parsed yet
    assert client.next_answer() is None and client.wanted == 6
    view = client.body_view(4)
    assert view is not None and len(view) == 4
    view[:] = b"cdef"
    client.body_received(4)
    assert not client.ready and client.wanted == 2 and client.buffered == 6
    view = client.body_view(100)
    assert view is not None and len(view) == 2
    view[:] = b"gh"
    client.body_received(2)
    assert client.ready and client.body_view(100) is None
    found = client.next_answer()
    assert found is not None and found[1] == b"abcdefgh" and found[1] is view.obj
    client.receive_data(answer(404))
    assert client.body_view(100) is None
    found = client.next_answer()
    assert found is not None and found[0].status == 404 and client.in_flight == 0


def test_advance_starts_a_piece_body_and_leaves_any_other_head_to_next_answer() -> None:
    """``advance`` does what ``next_answer`` does first for a piece's head (a piece link
    calls it as bytes arrive); another head, even one to refuse, waits for
    ``next_answer``, and ``advance`` never raises."""
    client = sp.PipelinedClient(max_body=8)
    client.send_piece(ID, 0, 8)
    client.send_piece(ID, 1, 8)
    client.advance()  # nothing yet
    client.receive_data(answer(200, b"abcdefgh")[:-6])
    client.advance()
    assert client.in_body and client.wanted == 6 and client.held == 0
    view = client.body_view(100)
    assert view is not None and view.tobytes() == bytes(6)
    view[:] = b"cdefgh"
    client.body_received(6)
    client.advance()  # a whole answer: left for next_answer to return
    found = client.next_answer()
    assert found is not None and found[1] == b"abcdefgh"
    wire = b"P2P-SWARM/1.0 200 OK\r\nContent-Length: 99\r\n\r\n"  # over max_body
    client.receive_data(wire)
    client.advance()
    assert not client.in_body and client.held == len(wire)
    with pytest.raises(RemoteProtocolError):
        client.next_answer()


def test_a_recycled_body_holds_the_next_body_of_its_size_and_never_shows_old_bytes() -> None:
    """A body handed back is the next body of its size (no new buffer per piece); one of
    another size gets its own; an answer cut short never returns the old bytes."""
    client = sp.PipelinedClient()
    for index in range(3):
        client.send_piece(ID, index, 8)
    client.receive_data(answer(200, b"abcdefgh"))
    first = client.next_answer()
    assert first is not None
    client.recycle(first[1])
    client.receive_data(answer(200, b"ijklmnop"))
    second = client.next_answer()
    assert second is not None and second[1] is first[1] and second[1] == b"ijklmnop"
    client.recycle(bytearray(4))  # not this body's size: a buffer of its own
    client.receive_data(answer(200, b"qrstuvwx")[:-3] + b"")
    assert client.next_answer() is None
    client.receive_data(b"")  # closed in the middle: an error, not old bytes
    with pytest.raises(RemoteProtocolError):
        client.next_answer()


def test_a_body_longer_than_the_piece_asked_for_is_held_as_it_arrives() -> None:
    """A head alone cannot make us allocate more than the piece asked for: a longer body
    is buffered as its bytes come (none is allocated for it up front), and still returned
    whole, for the downloader to count against the peer."""
    client = sp.PipelinedClient()
    client.send_piece(ID, 0, 4)
    wire = answer(200, b"abcdefgh")
    client.receive_data(wire[:-6])
    assert client.next_answer() is None and client.wanted == 6
    assert client.body_view(100) is None and client.buffered == 2
    client.receive_data(wire[-6:])
    found = client.next_answer()
    assert found is not None and (found[0].status, bytes(found[1])) == (200, b"abcdefgh")


@pytest.mark.parametrize("wire", [
    b"P2P-SWARM/1.0 200 OK\r\nContent-Length: 9\r\n\r\ntoo long!",  # over max_body
    b"P2P-SWARM/1.0 200 OK\r\n\r\n",  # a 200 without Content-Length
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"P2P-SWARM/1.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"P2P-SWARM/1.0 200 OK\r\n" + b"X-Pad: " + b"a" * 20000,
])
def test_pipelined_client_rejects(wire: bytes) -> None:
    client = sp.PipelinedClient(max_body=4)
    client.send(*sp.to_request(sp.GetPiece(ID, 0)))
    client.receive_data(wire)
    with pytest.raises(RemoteProtocolError):
        client.next_answer()


def test_pipelined_client_close_mid_answer() -> None:
    client = sp.PipelinedClient()
    client.send(*sp.to_request(sp.GetPiece(ID, 0)))
    client.receive_data(answer(200, b"abcdef")[:-2])
    assert client.next_answer() is None and client.wanted == 2
    client.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        client.next_answer()


@given(st.binary(max_size=300))
def test_pipelined_client_random_bytes(data: bytes) -> None:
    client = sp.PipelinedClient()
    client.send(*sp.to_request(sp.GetPiece(ID, 0)))
    client.receive_data(data)
    try:
        client.next_answer()
    except RemoteProtocolError:
        pass


def general_head(wire: bytes, max_body: int) -> tuple[Response, int | None, bytes] | str:
    """What the general path makes of an answer head at the front of ``wire``: (head,
    Content-Length, the bytes left), "more" if it needs more bytes, "refused" if it
    raises."""
    buf = ReceiveBuffer()
    buf.feed(wire)
    try:
        found = HeadReader(of_responses=True).read(buf, Framing.LENGTH, max_body)
        if not isinstance(found, tuple):
            return "more"
        version, status, reason = status_start(found[0])
        length = content_length(found[1], max_body)
    except RemoteProtocolError:
        return "refused"
    return Response(status, version, found[1], reason), length, buf.peek()


def quick_head(wire: bytes, max_body: int) -> tuple[Response, int | None, bytes] | None:
    """What ``quick_head`` makes of it, in the same form; None: left to the general path
    (and then nothing was taken out of the buffer)."""
    buf = ReceiveBuffer()
    buf.feed(wire)
    found = sp.quick_head(buf, max_body)
    if found is None:
        assert buf.peek() == wire
        return None
    return found[0], found[1], buf.peek()


@given(st.integers(0, limits.MAX_PIECE_SIZE), st.integers(0, 2 ** 3000 - 1),
       st.integers(16, limits.MAX_HAVE_HEADER), st.booleans(), st.integers(0, 2 ** 3000 - 1),
       st.binary(max_size=20))
def test_the_quick_head_reads_every_piece_head_as_the_general_path(
        length: int, held: int, limit: int, full: bool, begun: int, after: bytes) -> None:
    """Every head a piece server sends with a piece (``piece_head_bytes``, with or without
    Have and Sent news, with or without ``Uplink: full``) takes the quick path, which
    reads it exactly as the general path does."""
    have, _ = sp.news(held, 0, limit)
    sent, _ = sp.news(begun, 0, limit)
    wire = sp.piece_head_bytes(length, have, full, sent) + after
    quick = quick_head(wire, limits.MAX_PIECE_SIZE)
    assert quick is not None
    assert quick == general_head(wire, limits.MAX_PIECE_SIZE)
    assert sp.uplink_full(quick[0]) is full
    assert get_header(quick[0].headers, "Sent") == (sent or None)


@given(st.integers(0, limits.MAX_PIECE_SIZE), st.integers(0, 2 ** 300 - 1), st.booleans(),
       st.integers(0, 2 ** 300 - 1))
def test_a_piece_head_from_the_template_is_the_codecs(length: int, held: int,
                                                      full: bool, begun: int) -> None:
    have, _ = sp.news(held, 0)
    sent, _ = sp.news(begun, 0)
    server = Connection(Role.SERVER, sp.framing)
    server.receive_data(f"PIECE {ID} 0 P2P-SWARM/1.0\r\n\r\n".encode())
    while not isinstance(server.next_event(), EndOfMessage):
        pass
    assert server.send(sp.piece_head(length, have, full, sent)) == sp.piece_head_bytes(
        length, have, full, sent)


@pytest.mark.parametrize(("value", "full"), [("full", True), ("Full", False), ("", False),
                                             ("full, full", False), ("none", False)])
def test_only_uplink_full_says_so(value: str, full: bool) -> None:
    """Read by the general path (any header order, any case of the name); only the exact
    value counts, and the last header of the name wins."""
    head = f"{OK_HEAD.decode()}uplink: {value}\r\nContent-Length: 0\r\n\r\n".encode()
    found = general_head(head, 8)
    assert isinstance(found, tuple) and sp.uplink_full(found[0]) is full
    assert quick_head(head, 8) is None  # not the template: the general path reads it


OK_HEAD = b"P2P-SWARM/1.0 200 OK\r\n"


@pytest.mark.parametrize("wire", [
    OK_HEAD + b"Content-Length: 007\r\n\r\nabcdefg",  # leading zeros
    OK_HEAD + b"Content-Length: 9\r\n\r\n",  # over max_body: refused
    OK_HEAD + b"Content-Length: 99999999999999999999\r\n\r\n",  # 20 digits
    OK_HEAD + b"content-length: 5\r\n\r\n",  # another case
    OK_HEAD + b"Content-Length : 5\r\n\r\n",
    OK_HEAD + b"Content-Length:  5\r\n\r\n",
    OK_HEAD + b"Content-Length: 5 \r\n\r\n",
    OK_HEAD + b"Content-Length: 5\n\n",  # bare LF
    OK_HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n",  # conflicting
    OK_HEAD + b"Content-Length: 5\r\nHave: 1\r\n\r\n",  # another order
    OK_HEAD + b"Uplink: full\r\nHave: 1\r\nContent-Length: 5\r\n\r\n",
    OK_HEAD + b"Uplink: full\r\nUplink: full\r\nContent-Length: 5\r\n\r\n",
    OK_HEAD + b"Uplink: no\r\nContent-Length: 5\r\n\r\n",
    OK_HEAD + b"Have: 1\r\nHave: 2\r\nContent-Length: 5\r\n\r\n",
    OK_HEAD + b"Sent: 1\r\nHave: 2\r\nContent-Length: 5\r\n\r\n",  # another order
    OK_HEAD + b"Uplink: full\r\nSent: 1\r\nContent-Length: 5\r\n\r\n",
    OK_HEAD + b"Sent: 1\r\nSent: 2\r\nContent-Length: 5\r\n\r\n",
    OK_HEAD + b"Sent: \r\nContent-Length: 5\r\n\r\n",  # an empty Sent
    OK_HEAD + b"Sent: " + b"1" * 20000 + b"\r\nContent-Length: 5\r\n\r\n",  # too long
    OK_HEAD + b"Have: \r\nContent-Length: 5\r\n\r\n",  # an empty Have
    OK_HEAD + b"Have: 1, 2\r\nContent-Length: 5\r\n\r\n",
    OK_HEAD + b"Have: -1\r\nContent-Length: 5\r\n\r\n",
    OK_HEAD + b"Have: 1\x00\r\nContent-Length: 5\r\n\r\n",
    OK_HEAD + b"Have: " + b"1" * (limits.MAX_HAVE_HEADER + 1) + b"\r\nContent-Length: 5\r\n\r\n",
    OK_HEAD + b"Have: " + b"1" * 20000 + b"\r\nContent-Length: 5\r\n\r\n",  # too long
    OK_HEAD + b"Content-Length: 5\r\n",  # not whole yet
    b"\r\n" + OK_HEAD + b"Content-Length: 5\r\n\r\n",  # a blank line first
    b"P2P-SWARM/1.0 200 Fine\r\nContent-Length: 5\r\n\r\n",
    b"P2P-SWARM/1.0  200 OK\r\nContent-Length: 5\r\n\r\n",
    b"p2p-swarm/1.0 200 OK\r\nContent-Length: 5\r\n\r\n",
    b"P2P-SWARM/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
    b"P2P-SWARM/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    b"P2P-SWARM/1.0 200 OK\r\nX: y\r\nContent-Length: 5\r\n\r\n",
])
def test_any_other_head_is_left_to_the_general_path(wire: bytes) -> None:
    assert quick_head(wire, 8) is None
    general_head(wire, 8)  # whatever it makes of it, it is the only reader


@given(st.integers(0, 99), st.text("0123456789,-", max_size=12), st.binary(max_size=8),
       st.integers(0, 80), st.text("0123456789,-", max_size=12))
def test_a_mutated_piece_head_reads_the_same_on_both_paths(
        length: int, have: str, junk: bytes, at: int, sent: str) -> None:
    """Bytes put into a piece head anywhere: if the quick path still takes it, the general
    path reads the same head from it."""
    wire = sp.piece_head_bytes(length, have, sent=sent)
    wire = wire[:at] + junk + wire[at:]
    quick = quick_head(wire, 50)
    if quick is not None:
        assert quick == general_head(wire, 50)


def test_news_is_bounded_and_covers_what_it_says() -> None:
    held = sum(1 << i for i in range(0, 3000, 2))  # 1,500 separate pieces
    text, covered = sp.news(held, 0, limit=100)
    assert len(text) <= 100 and covered == sp.decode_ranges(text, 3000)
    rest, more = sp.news(held, covered, limit=10**6)
    assert covered | more == held and not covered & more
    assert sp.news(held, held) == ("", 0)


@given(st.integers(0, 2 ** 3000 - 1), st.integers(0, 2 ** 3000 - 1), st.integers(16, 400))
def test_news_covers_exactly_what_its_text_says(held: int, told: int, limit: int) -> None:
    text, covered = sp.news(held, told, limit)
    assert len(text) <= limit and covered == sp.decode_ranges(text, 3000)
