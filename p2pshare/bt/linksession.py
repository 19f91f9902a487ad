"""The download's side of one peer wire link: interest, block requests, pieces assembled.

Strategy: one ``LinkSession`` per linked peer, driven by its own task (``download``):
it says it is interested, keeps ``limits.BT_PIPELINE`` block requests in flight once
unchoked, over pieces the download's picker gives it (at most ``limits.BT_MAX_ASSEMBLY``
bytes of them in memory), assembles each piece and hands it whole to the download, which
verifies it. Blocks of pads are zeros and never asked for. A choke gives its pieces back
(BEP 3: unanswered requests are void); a reject gives back that piece. The peer's
``have``, ``bitfield``, ``have all`` tell the picker what it holds; ``ut_pex`` adds peers;
BEP 52 hash requests bring the piece layers a v2 magnet lacks, in chunks that
``bt.layers`` picks and proves (no piece is asked for before them). A peer that sends
nothing we asked for (blocks or hashes), or keeps us choked, for
``limits.BT_SNUB_TIMEOUT`` is dropped (``Snubbed``); a silent link of ours sends a
keep-alive every ``limits.BT_KEEPALIVE_INTERVAL``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import limits
from ..errors import P2PError, RemoteProtocolError
from ..host import join_hostport
from ..protocol import bt_events as w
from ..swarm.pieces import full
from .layout import BLOCK, mask_of_bitfield
from .peer import PeerWire

if TYPE_CHECKING:
    from .download import TorrentDownload

log = logging.getLogger(__name__)


class Snubbed(P2PError):
    """A peer sent nothing we asked for in ``limits.BT_SNUB_TIMEOUT``."""


@dataclass(eq=False)
class _Assembly:
    """One piece being received from one peer: its bytes and the blocks still missing."""

    index: int
    data: bytearray
    missing: set[int] = field(default_factory=set)  # block offsets not yet received
    asked: set[int] = field(default_factory=set)  # block offsets requested, not received



class LinkSession:
    """The download's side of one link: interest, requests, pieces."""

    def __init__(self, download: TorrentDownload, wire: PeerWire) -> None:
        self.d = download
        self.wire = wire
        self.choked = True
        self.pieces: dict[int, _Assembly] = {}
        self.outstanding = 0  # blocks asked, not yet received
        self.last_block = time.monotonic()
        self.holds = 0

    async def run(self) -> None:
        self.wire.send(w.Interested())
        while True:
            self._fill()
            try:
                async with asyncio.timeout(limits.BT_SNUB_TIMEOUT / 4):
                    event = await self.wire.next_event()
            except TimeoutError:
                self._judge()
                if time.monotonic() - self.wire.sent_at > limits.BT_KEEPALIVE_INTERVAL:
                    self.wire.send(w.BtKeepAlive())  # BEP 3: the peer may close a silent link
                continue
            self._handle(event)

    def _judge(self) -> None:
        fetch = self.d.layer_fetch
        asked = self.outstanding or (fetch is not None and fetch.in_flight(self.wire.address))
        if time.monotonic() - self.last_block > limits.BT_SNUB_TIMEOUT and \
                (asked or self.choked):
            raise Snubbed("sent nothing we asked for" if asked else "kept us choked")

    def _handle(self, event: w.BtEvent) -> None:
        if isinstance(event, w.Piece):
            self._block(event.index, event.begin, event.block)
        elif isinstance(event, w.BtHave):
            self._held(self.holds | 1 << event.index)
        elif isinstance(event, w.Bitfield):
            self._held(mask_of_bitfield(event.bits, self.d.layout.count))
        elif isinstance(event, w.HaveAll):
            self._held(full(self.d.layout.count))
        elif isinstance(event, w.Unchoke):
            self.choked = False
            self.last_block = time.monotonic()
        elif isinstance(event, w.Choke):
            self.choked = True
            self._drop_requests()
        elif isinstance(event, w.RejectRequest):
            self._rejected(event.index, event.begin)
        elif isinstance(event, w.Hashes):
            if self.d.got_hashes(self.wire.address, event):
                self.last_block = time.monotonic()
        elif isinstance(event, w.HashReject) and self.d.layer_fetch is not None:
            self.d.layer_fetch.rejected(self.wire.address, event, time.monotonic())
        elif isinstance(event, w.Pex):
            for address in event.added + event.added6:
                if address not in self.d.known:
                    log.info("[BT] %s told of by %s", join_hostport(*address), self.wire.label)
            self.d.add_peers(event.added + event.added6, told_by=self.wire.address)

    def _held(self, mask: int) -> None:
        self.holds = mask & full(self.d.layout.count)
        self.d.picker.set_peer(self.wire.address, self.holds)
        self.d._notify()

    def _fill(self) -> None:
        fetch = self.d.layer_fetch
        if fetch is not None and fetch.wanted:  # v2: no piece before its layer
            if self.holds:
                self.wire.send(*fetch.pick(self.wire.address, self.holds, time.monotonic()))
            return
        if self.choked:
            return
        while self.outstanding < limits.BT_PIPELINE:
            piece = self._next_piece()
            if piece is None:
                return
            for begin in sorted(piece.missing - piece.asked):
                if self.outstanding >= limits.BT_PIPELINE:
                    break
                length = min(BLOCK, len(piece.data) - begin)
                self.wire.send(w.BtRequest(piece.index, begin, length))
                piece.asked.add(begin)
                self.outstanding += 1

    def _next_piece(self) -> _Assembly | None:
        for piece in self.pieces.values():
            if piece.missing - piece.asked:
                return piece
        if len(self.pieces) * self.d.layout.piece_length >= limits.BT_MAX_ASSEMBLY:
            return None
        index = self.d.picker.pick(self.wire.address, restrain=False)
        if index is None:
            return None
        piece = _Assembly(index, bytearray(self.d.layout.length(index)))
        base = index * self.d.layout.piece_length
        for begin in range(0, len(piece.data), BLOCK):
            length = min(BLOCK, len(piece.data) - begin)
            if any(run.file is not None for run in self.d.layout.runs(base + begin, length)):
                piece.missing.add(begin)  # a block of pad zeros is not asked for
        self.pieces[index] = piece
        if not piece.missing:  # all pads
            self._complete(piece)
            return self._next_piece()
        return piece

    def _block(self, index: int, begin: int, data: bytes) -> None:
        piece = self.pieces.get(index)
        if piece is None or begin not in piece.asked:
            self.d.wasted += len(data)
            return  # late (cancelled, or a choke dropped it) or never asked: ignored
        if len(data) != min(BLOCK, len(piece.data) - begin):
            raise RemoteProtocolError(f"a block of {len(data)} bytes where we asked another")
        piece.data[begin:begin + len(data)] = data
        piece.asked.discard(begin)
        piece.missing.discard(begin)
        self.outstanding -= 1
        self.last_block = time.monotonic()
        if not piece.missing:
            self._complete(piece)

    def _complete(self, piece: _Assembly) -> None:
        del self.pieces[piece.index]
        self.d.finished(self.wire.address, piece.index, piece.data)

    def _rejected(self, index: int, begin: int) -> None:
        piece = self.pieces.get(index)
        if piece is not None and begin in piece.asked:
            piece.asked.discard(begin)
            self.outstanding -= 1
            self._give_up(piece)

    def _drop_requests(self) -> None:
        """Choked: requests not answered by now will not be (BEP 3); give the pieces back."""
        for piece in list(self.pieces.values()):
            self.outstanding -= len(piece.asked)
            piece.asked.clear()
            self._give_up(piece)

    def _give_up(self, piece: _Assembly) -> None:
        del self.pieces[piece.index]
        self.d.picker.failed(piece.index, self.wire.address)
        self.d._notify()
