"""The tracker's quick path (a downloader's HAVE reports and PEERS polls) against the
general path.

``sp.quick_tracker`` may only read what the index server's general path (its
``Connection``, then ``sp.interpret``) reads as that same HAVE or PEERS, alone, with
nothing left over; ``Tracker.quick`` must answer exactly what ``Tracker.answer`` would,
byte for byte as the codec encodes it, and leave the same records, or leave it to the
general path (None) when that answer is not a 200. And our own client's requests must
take it, through a real index server, or it is useless.
"""

from __future__ import annotations

import random

from hypothesis import example, given, settings
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.errors import RemoteProtocolError
from p2pshare.index.server import _connection as server_connection
from p2pshare.protocol import PAUSED, Data, EndOfMessage, Request
from p2pshare.protocol import swarm as sp
from p2pshare.swarm.client import TrackerClient
from p2pshare.swarm.tracker import Tracker, TrackerAnswer

from ..aio import HOST, arun
from ..helpers import mutated
from .test_faults import tracker_server
from .test_tracker import manifest

ID = "ab" * 32


def encode(msg: sp.SwarmRequest) -> bytes:
    request, body = sp.to_request(msg)
    return sp.client_connection().send_all(request, *((Data(body),) if body else ()),
                                           EndOfMessage())


def general(data: bytes) -> sp.SwarmRequest | sp.Rejected | str:
    """What the index server's general path makes of ``data``: one request alone, or why
    not."""
    conn = server_connection()
    conn.receive_data(data)
    body = b""
    try:
        head = conn.next_event()
        if not isinstance(head, Request):
            return "no whole head"
        while isinstance(event := conn.next_event(), Data):
            body += event.data
        if not isinstance(event, EndOfMessage):
            return "no whole body"
        if conn.next_event() is not PAUSED or conn.trailing_data != (b"", False):
            return "bytes left over"
    except RemoteProtocolError:
        return "framing error"
    if not head.version.upper().startswith("P2P-SWARM/"):
        return "not for the tracker"
    return sp.interpret(head, body)


def agrees(data: bytes) -> sp.Have | sp.GetPeers | None:
    quick = sp.quick_tracker(data)
    if quick is not None:
        assert general(data) == quick, data
    return quick


# ------------------------------------------------------------------ what it reads
masks = st.integers(1, 2 ** limits.MAX_PIECES - 1)


@given(masks)
@settings(max_examples=300, deadline=None)
def test_our_clients_have_reports_take_the_quick_path(mask: int) -> None:
    msg = sp.Have(ID, mask)
    assert agrees(encode(msg)) == msg


def test_our_clients_peers_polls_take_the_quick_path() -> None:
    assert agrees(encode(sp.GetPeers(ID))) == sp.GetPeers(ID)


def test_an_empty_have_and_every_other_request_go_the_general_path() -> None:
    for msg in (sp.Have(ID, 0), sp.GetManifest(ID), sp.GetPiece(ID, 3), sp.ListFiles(),
                sp.Announce(ID, "h", 1, b"x")):
        assert sp.quick_tracker(encode(msg)) is None
    assert sp.quick_tracker(encode(sp.Have(ID, 0b1011))[:-1]) is None  # body not whole
    assert sp.quick_tracker(encode(sp.GetPeers(ID)) * 2) is None  # two requests


PARTS = {
    "method": [b"HAVE", b"PEERS", b"have", b"Peers", b"PIECE", b"HAVE "],
    "id": [ID.encode(), ID.upper().encode(), ID[:63].encode(), ID.encode() + b"0", b""],
    "version": [b"P2P-SWARM/1.0", b"P2P-SWARM/1.1", b"p2p-swarm/1.0", b"P2P-SWARM/2.0",
                b"P2P-CI/1.0", b""],
    "length": [b"", b"Content-Length: %d", b"Content-Length: 0%d", b"Content-Length:  %d",
               b"content-length: %d", b"Content-Length: %d\r\nContent-Length: %d",
               b"X: y", b"Content-Length: 1048577"],
    "body": [b"0-3,7", b"", b" 1", b"1 ", b"3-1", b"1,,2", b"\xff", b"0-15000", b"a",
             b"99999999999999999999", b"0\r\n"],
    "eol": [b"\r\n", b"\n"],
}


def pick(draw: st.DrawFn, part: str) -> bytes:
    options = PARTS[part]
    return options[0] if draw(st.integers(0, 9)) < 6 else draw(st.sampled_from(options))


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method, body, eol = pick(draw, "method"), pick(draw, "body"), pick(draw, "eol")
    line = b" ".join([method, pick(draw, "id"), pick(draw, "version")])
    length = pick(draw, "length")
    if b"%d" in length:
        length = length.replace(b"%d", b"%d" % (len(body) + draw(st.sampled_from([0, 0, 1, -1]))))
    headers = [length] if length and (method != b"PEERS" or draw(st.booleans())) else []
    if method == b"PEERS" and not draw(st.integers(0, 4)):
        body = b""
    return eol.join([line, *headers, b""]) + eol + body


@given(requests())
@example(encode(sp.Have(ID, 0b1011)))
@example(encode(sp.GetPeers(ID)))
@settings(max_examples=3000, deadline=None)
def test_the_quick_path_never_disagrees_with_the_general_path(data: bytes) -> None:
    agrees(data)


@given(st.data())
@settings(max_examples=1000, deadline=None)
def test_mutated_requests_never_disagree(data: st.DataObject) -> None:
    ours: list[sp.SwarmRequest] = [sp.Have(ID, 0b1110001), sp.GetPeers(ID)]
    agrees(mutated(data, encode(data.draw(st.sampled_from(ours))), b" \t\r\n:0-,A\xff"))


@given(st.binary(max_size=200))
@settings(max_examples=500, deadline=None)
def test_random_bytes_never_disagree(data: bytes) -> None:
    agrees(data)


# ------------------------------------------------------------------ what it answers
def codec_bytes(msg: sp.SwarmRequest, answer: TrackerAnswer) -> bytes:
    """``answer`` to ``msg`` as the index server's codec encodes it."""
    conn = server_connection()
    conn.receive_data(encode(msg))
    while not isinstance(conn.next_event(), EndOfMessage):
        pass
    response, payload = answer
    return conn.send_all(response, Data(payload), EndOfMessage())


def ask_general(tracker: Tracker, owner: object, msg: sp.SwarmRequest) -> TrackerAnswer:
    request, body = sp.to_request(msg)
    return tracker.answer(owner, request, body, HOST)


def twins() -> tuple[Tracker, Tracker, list[object], str, int]:
    """Two trackers in the same state (the same random source for PEERS' order): three
    members of one swarm, two holding pieces, and one connection that announced none."""
    trackers = Tracker(random.Random(7)), Tracker(random.Random(7))
    owners: list[object] = [object() for _ in range(4)]
    m = manifest()
    for tracker in trackers:
        for i, owner in enumerate(owners[:3]):
            ask_general(tracker, owner, sp.Announce(m.id, HOST, 7000 + i, m.to_bytes()))
        ask_general(tracker, owners[1], sp.Have(m.id, 0b101))
        ask_general(tracker, owners[2], sp.Have(m.id, 0b11111))
    return *trackers, owners, m.id, m.count


def test_quick_answers_are_the_general_paths_bytes_and_records() -> None:
    quick, slow, owners, swarm, count = twins()
    asked: list[tuple[object, sp.Have | sp.GetPeers]] = [
        *((owner, sp.GetPeers(swarm)) for owner in owners),
        (owners[0], sp.Have(swarm, 0b10)), (owners[1], sp.Have(swarm, 0b11)),
        (owners[0], sp.GetPeers(swarm)), (owners[2], sp.Have(swarm, 1)),
        (owners[0], sp.Have(swarm, 1 << count)),  # past the last piece: 400
        (owners[3], sp.Have(swarm, 1)),  # no ANNOUNCE first: 404
        (owners[0], sp.Have("cd" * 32, 1)), (owners[0], sp.GetPeers("cd" * 32)),  # 404
        (owners[1], sp.GetPeers(swarm)),
    ]
    taken = 0
    for owner, msg in asked:
        expected = ask_general(slow, owner, msg)
        answer = quick.quick(owner, msg)
        if answer is None:
            assert expected[0].status != 200, msg
            answer = codec_bytes(msg, ask_general(quick, owner, msg))
        else:
            taken += 1
        assert answer == codec_bytes(msg, expected), msg
        assert [m.pieces for m in quick.swarms[swarm].members.values()] == \
            [m.pieces for m in slow.swarms[swarm].members.values()]
    assert taken == len(asked) - 4
    assert quick.swarms[swarm].entry() == slow.swarms[swarm].entry()


class Watched(Tracker):
    """Notes the methods that reach the general path."""

    def __init__(self) -> None:
        super().__init__()
        self.general: list[str] = []

    def answer(self, owner: object, request: Request, body: bytes, source: str = "",
               named: bool = True) -> TrackerAnswer:
        self.general.append(request.method)
        return super().answer(owner, request, body, source, named)


@arun
async def test_a_downloaders_reports_and_polls_take_the_quick_path_through_the_server(
        ) -> None:
    tracker = Watched()
    async with tracker_server(tracker) as port:
        m = manifest()
        client = await TrackerClient.connect(HOST, port)
        other = await TrackerClient.connect(HOST, port)
        try:
            await client.announce(m, HOST, 7001)
            await other.announce(m, HOST, 7002)
            await client.have(m.id, 0b1001)
            await other.have(m.id, 0b11)
            peers = await other.peers(m)
            assert [(e.port, e.pieces) for e in peers] == [(7001, 0b1001)]
            assert [(e.port, e.pieces) for e in await client.peers(m)] == [(7002, 0b11)]
        finally:
            await client.aclose()
            await other.aclose()
    assert tracker.general == ["ANNOUNCE", "ANNOUNCE"]
