"""Two of our connections talking: a whole torrent moved from a seed to a downloader.

The seed answers with the sendfile form (``PieceHeader`` then the block's bytes), the
downloader receives into one buffer per piece; in the middle the seed chokes and
unchokes, so requests are rejected (fast extension) or dropped (without it) and asked
again. Every byte must arrive, once.
"""

from __future__ import annotations

import hashlib

import pytest

from p2pshare.protocol import bt_events as ev
from p2pshare.protocol._events import _Sentinel
from p2pshare.protocol.bt_wire import BtConnection, BtRole

from .wire import GEOMETRY, handshake

DATA = hashlib.shake_256(b"torrent").digest(10 * 32768 + 1000)
BLOCKS = [(i, b, min(16384, GEOMETRY.piece_size(i) - b))
          for i in range(GEOMETRY.piece_count)
          for b in range(0, GEOMETRY.piece_size(i), 16384)]


class Side:
    def __init__(self, role: BtRole, fast: bool) -> None:
        self.conn = BtConnection(role, geometry=GEOMETRY, receive_blocks=True)
        self.fast = fast
        self.inbox: list[object] = []
        self.outgoing = bytearray()

    def send(self, event: object) -> None:
        self.outgoing += self.conn.send(event)  # type: ignore[arg-type]

    def flush_to(self, other: Side, pieces: dict[int, bytearray] | None = None) -> None:
        other.conn.receive_data(bytes(self.outgoing) + self.conn.data_to_send())
        self.outgoing.clear()
        while not isinstance(event := other.conn.next_event(), _Sentinel):
            if isinstance(event, ev.PieceHeader):
                assert pieces is not None
                buffer = pieces.setdefault(event.index, bytearray(GEOMETRY.piece_size(
                    event.index)))
                other.conn.receive_block(memoryview(buffer)[event.begin:][:event.length])
            other.inbox.append(event)


@pytest.mark.parametrize("fast", [True, False])
def test_a_whole_torrent_with_a_choke_in_the_middle(fast: bool) -> None:
    seed, leech = Side(BtRole.ACCEPTOR, fast), Side(BtRole.INITIATOR, fast)
    pieces: dict[int, bytearray] = {}
    leech.send(handshake(b"l", fast=fast))
    leech.flush_to(seed)
    seed.send(handshake(b"s", fast=fast))
    seed.send(seed.conn.extended_handshake(metadata_size=100))
    seed.send(ev.HaveAll() if fast else ev.Bitfield(b"\xff\xe0"))
    seed.flush_to(leech)
    leech.send(leech.conn.extended_handshake())
    leech.send(ev.HaveNone() if fast else ev.Bitfield(bytes(2)))
    leech.send(ev.Interested())
    leech.flush_to(seed)
    seed.send(ev.Unchoke())
    seed.flush_to(leech)
    wanted = list(BLOCKS)
    done: set[tuple[int, int, int]] = set()
    rounds = 0
    while wanted and rounds < 10:
        rounds += 1
        for block in wanted:
            leech.send(ev.BtRequest(*block))
        leech.flush_to(seed)
        served = 0
        for event in seed.inbox:
            if isinstance(event, ev.BtRequest):
                if rounds == 1 and served == 5:
                    seed.send(ev.Choke())  # rejects (fast) or drops the rest
                    seed.send(ev.Unchoke())
                start = event.index * GEOMETRY.piece_length + event.begin
                head = seed.conn.send(ev.PieceHeader(event.index, event.begin, event.length))
                if head:  # b"": no longer asked for
                    seed.outgoing += head + DATA[start:start + event.length]
                    served += 1
        seed.inbox.clear()
        seed.flush_to(leech, pieces)
        for event in leech.inbox:
            if isinstance(event, ev.PieceEnd):
                done.add((event.index, event.begin, event.length))
        leech.inbox.clear()
        wanted = [b for b in BLOCKS if b not in done]  # rejected, or dropped by the choke
    assert not wanted and rounds == 2
    assert b"".join(bytes(pieces[i]) for i in sorted(pieces)) == DATA
