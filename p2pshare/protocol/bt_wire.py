"""The BitTorrent peer wire as a sans-IO connection (BEP 3, 6, 9, 10, 11, 52).

Strategy: ``BtConnection`` is h11's shape for a symmetric protocol: ``receive_data`` takes
bytes, ``next_event`` gives one event (or ``NEED_DATA``), ``send`` turns one of our events
into bytes and ``data_to_send`` gives the replies the codec owes on its own (BEP 6 rejects
for requests it refuses). Reading goes: the 68-byte handshake, then
``<length><id><payload>`` messages, each length checked against its id's bound before the
payload is waited for, so an over-long message is fatal at once; unknown ids and unknown
extension messages are skipped. ``_bt_state`` holds the message order table, the torrent's
geometry and the ledger of blocks in flight; ``_bt_rules`` the rules each message obeys.

Blocks can bypass the receive buffer: with ``receive_blocks=True`` a piece message gives a
``PieceHeader``; the caller names a buffer with ``receive_block`` (or ``discard_block``) and
the block's bytes go there: those already buffered at once, the rest straight from the
socket through ``get_buffer``/``buffer_updated`` (asyncio's ``BufferedProtocol``), then
``PieceEnd``. On the way out ``send(PieceHeader(...))`` gives the 13 bytes to write before
``length`` bytes sent from the file (``sendfile``): no copy of the block in Python.
"""

from __future__ import annotations

from enum import Enum

from .. import limits
from ..errors import LocalProtocolError, RemoteProtocolError
from . import bt_codec
from ._bt_rules import Rules
from ._bt_state import TRANSITIONS, Geometry, Phase
from ._events import NEED_DATA, ConnectionClosed, _Sentinel
from .bt_events import (
    BtEvent,
    BtKeepAlive,
    ExtendedHandshake,
    Handshake,
    PieceEnd,
    PieceHeader,
)

__all__ = ["NEED_DATA", "BtConnection", "BtRole", "ConnectionClosed", "Geometry"]

_SCRATCH = 64 * 1024  # bytes one get_buffer offers outside a block


class BtRole(Enum):
    INITIATOR = "initiator"  # we connected
    ACCEPTOR = "acceptor"  # the peer connected


class _Block:
    """A block being delivered into a caller's buffer (``receive_blocks``)."""

    __slots__ = ("filled", "header", "target", "wanted")

    def __init__(self, header: PieceHeader, wanted: bool) -> None:
        self.header, self.wanted = header, wanted
        self.target: memoryview | None = None
        self.filled = -1  # the caller has not said where the block goes yet

    @property
    def remaining(self) -> int:
        return self.header.length - max(self.filled, 0)


class BtConnection:
    """One peer wire connection, both directions.

    Args:
        our_side: who connected.
        geometry: the torrent's pieces, or None until the metadata is known (magnets).
        reqq: how many requests the peer may have outstanding with us (advertised in our
            extension handshake when it gives none).
        receive_blocks: give piece messages as ``PieceHeader`` + ``PieceEnd``, the block
            delivered into a caller's buffer, instead of ``Piece``.
    """

    def __init__(self, our_side: BtRole, *, geometry: Geometry | None = None,
                 reqq: int = limits.BT_REQQ, receive_blocks: bool = False) -> None:
        self.our_side = our_side
        self.rules = Rules(geometry, reqq)
        self.receive_blocks = receive_blocks
        self.our_phase = self.their_phase = Phase.HANDSHAKE
        self._buf = bytearray()
        self._pos = 0
        self._closed = False
        self._block: _Block | None = None
        self._scratch = bytearray()  # get_buffer's area, made on first use

    # ------------------------------------------------------------------- public state
    @property
    def geometry(self) -> Geometry | None:
        return self.rules.geometry

    def set_geometry(self, geometry: Geometry) -> None:
        """Learn the torrent's pieces (after a BEP 9 metadata exchange).

        Raises:
            RemoteProtocolError: the bitfield the peer sent earlier does not fit it.
        """
        self.rules.set_geometry(geometry)

    @property
    def am_choking(self) -> bool:
        return self.rules.am_choking

    @property
    def am_interested(self) -> bool:
        return self.rules.am_interested

    @property
    def peer_choking(self) -> bool:
        return self.rules.peer_choking

    @property
    def peer_interested(self) -> bool:
        return self.rules.peer_interested

    @property
    def fast(self) -> bool:
        """Both sides announced BEP 6 (known once both handshakes passed)."""
        return self.rules.fast

    @property
    def extended(self) -> bool:
        """Both sides announced BEP 10."""
        return self.rules.extended

    @property
    def their_handshake(self) -> Handshake | None:
        return self.rules.their_handshake

    @property
    def their_extensions(self) -> ExtendedHandshake | None:
        return self.rules.their_extensions

    # -------------------------------------------------------------------- receiving
    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Bytes from the peer; ``b""`` when it closed its side."""
        if not data:
            self._closed = True
        elif self._block is not None and self._block.filled >= 0:
            self._fill(memoryview(data))
        else:
            self._buf += data

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Where the next bytes from the socket should go (``BufferedProtocol``): the rest
        of the block being received, or a scratch area (whole messages read from it are
        copied once more; a block whose head came in one read and whose rest did not is
        read straight into the caller's buffer)."""
        block = self._block
        if block is not None and block.filled >= 0 and block.remaining:
            if block.target is not None:
                return block.target[block.filled:]
            return self._scratch_view()[:block.remaining]  # skipped
        return self._scratch_view()

    def _scratch_view(self) -> memoryview:
        if not self._scratch:
            self._scratch = bytearray(_SCRATCH)
        return memoryview(self._scratch)

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` arrived in the area the last ``get_buffer`` gave."""
        block = self._block
        if block is not None and block.filled >= 0 and block.remaining:
            block.filled += nbytes  # into the block's buffer (or skipped)
        else:
            self._buf += memoryview(self._scratch)[:nbytes]

    def receive_block(self, target: memoryview | bytearray) -> None:
        """Deliver the block of the last ``PieceHeader`` into ``target`` (its length).

        Raises:
            LocalProtocolError: no block is waiting, or ``target`` is not its length.
        """
        block = self._waiting_block()
        view = memoryview(target).cast("B")
        if len(view) != block.header.length:
            raise LocalProtocolError(f"a {block.header.length}-byte block, a {len(view)}-byte "
                                     "buffer")
        block.target, block.filled = view, 0
        self._fill_from_buffer()

    def discard_block(self) -> None:
        """Skip the block of the last ``PieceHeader``."""
        block = self._waiting_block()
        block.wanted, block.filled = False, 0
        self._fill_from_buffer()

    def _waiting_block(self) -> _Block:
        if self._block is None or self._block.filled >= 0:
            raise LocalProtocolError("no PieceHeader waits for a buffer")
        return self._block

    def _fill_from_buffer(self) -> None:
        block = self._block
        assert block is not None
        take = min(block.remaining, len(self._buf) - self._pos)
        self._fill(memoryview(self._buf)[self._pos:self._pos + take])
        self._pos += take

    def _fill(self, data: memoryview) -> None:
        """Bytes of the current block (and, past its end, what follows it)."""
        block = self._block
        assert block is not None
        take = min(block.remaining, len(data))
        if block.target is not None:
            block.target[block.filled:block.filled + take] = data[:take]
        block.filled += take
        if take < len(data):
            self._buf += data[take:]

    def next_event(self) -> BtEvent | ConnectionClosed | _Sentinel:
        """The next event from the peer, or ``NEED_DATA``.

        Raises:
            RemoteProtocolError: the peer broke the protocol or went over a limit; the
                connection is then dead (every later call raises too).
            LocalProtocolError: called after a ``PieceHeader`` without ``receive_block``
                or ``discard_block``, or for a message after the peer's handshake before
                ours was sent.
        """
        if self.their_phase is Phase.ERROR:
            raise RemoteProtocolError("the peer already broke the protocol")
        try:
            while True:
                event = self._next()
                if event is not None:
                    return event
        except RemoteProtocolError:
            self.their_phase = Phase.ERROR
            raise

    def _next(self) -> BtEvent | ConnectionClosed | _Sentinel | None:
        if self._block is not None:
            return self._block_progress()
        self._compact()
        have = len(self._buf) - self._pos
        if self.their_phase is Phase.HANDSHAKE:
            return self._next_handshake(have)
        if have < 4:
            return self._starved(have)
        if self.our_phase is Phase.HANDSHAKE:
            # which extensions hold depends on both handshakes: answer the peer's first
            raise LocalProtocolError("send our handshake before reading the peer's messages")
        if have < 5:
            if self._buf[self._pos:self._pos + 4] != b"\0\0\0\0":
                return self._starved(have)
            self._pos += 4
            return self._received(BtKeepAlive())
        length, msg_id = bt_codec.HEAD.unpack_from(self._buf, self._pos)
        if length == 0:
            self._pos += 4
            return self._received(BtKeepAlive())
        if length > limits.MAX_BT_MESSAGE or msg_id == bt_codec.BITFIELD:
            self.rules.check_length(msg_id, length)
        if msg_id == bt_codec.PIECE and self.receive_blocks:
            return self._piece_head(have, length)
        if have < 4 + length:
            return self._starved(have)
        self._pos += 5
        return self._message(msg_id, self._take(length - 1))

    def _next_handshake(self, have: int) -> BtEvent | ConnectionClosed | _Sentinel | None:
        if have < bt_codec.HANDSHAKE_LENGTH:
            seen = min(have, len(bt_codec.PROTOCOL))  # refuse another protocol at once
            if self._buf[self._pos:self._pos + seen] != bt_codec.PROTOCOL[:seen]:
                raise RemoteProtocolError("not a BitTorrent handshake (protocol string)")
            return self._starved(have)
        return self._received(bt_codec.decode_handshake(self._take(bt_codec.HANDSHAKE_LENGTH)))

    def _starved(self, have: int) -> ConnectionClosed | _Sentinel | None:
        if not self._closed:
            return NEED_DATA
        if have or self._block is not None:
            raise RemoteProtocolError("connection closed in the middle of a message")
        return ConnectionClosed()

    def _take(self, n: int) -> bytes:
        out = bytes(self._buf[self._pos:self._pos + n])
        self._pos += n
        return out

    def _compact(self) -> None:
        if self._pos and (self._pos == len(self._buf) or self._pos > _SCRATCH):
            del self._buf[:self._pos]
            self._pos = 0

    def _piece_head(self, have: int, length: int) -> BtEvent | ConnectionClosed | _Sentinel | None:
        if have < 13:
            return self._starved(have)
        _, _, index, begin = bt_codec.BLOCK_HEAD.unpack_from(self._buf, self._pos)
        self._pos += 13
        header = PieceHeader(index, begin, length - 9)
        wanted = self.rules.received_block(index, begin, length - 9)
        self.their_phase = TRANSITIONS[self.their_phase, PieceHeader]
        self._block = _Block(header, wanted)
        if wanted:
            return header
        self.discard_block()
        return None

    def _block_progress(self) -> PieceEnd | ConnectionClosed | _Sentinel | None:
        block = self._block
        assert block is not None
        if block.filled < 0:
            raise LocalProtocolError("call receive_block or discard_block after a PieceHeader")
        if block.remaining:
            return self._starved(0)
        self._block = None
        header = block.header
        return PieceEnd(header.index, header.begin, header.length) if block.wanted else None

    def _message(self, msg_id: int, payload: bytes) -> BtEvent | None:
        if msg_id == bt_codec.EXTENDED:
            event = self.rules.extension_message(payload)
        else:
            event = bt_codec.decode_message(msg_id, payload)
        return None if event is None else self._received(event)

    def _received(self, event: BtEvent) -> BtEvent | None:
        phase = TRANSITIONS.get((self.their_phase, type(event)))
        if phase is None:
            raise RemoteProtocolError(f"{type(event).__name__} not allowed now "
                                      f"({self.their_phase.value})")
        self.their_phase = phase
        return self.rules.received(event)

    # ---------------------------------------------------------------------- sending
    def send(self, event: BtEvent) -> bytes:
        """The bytes that carry ``event`` to the peer (``b""``: nothing to send, e.g. a
        piece or reject for a request the peer cancelled meanwhile: send no block).

        Raises:
            LocalProtocolError: the event is not allowed now (order, choking, budgets,
                extensions the peer lacks, values out of range).
        """
        if self.our_phase is Phase.ERROR:
            raise LocalProtocolError("this connection already failed on our side")
        try:
            return self._send(event)
        except LocalProtocolError:
            self.our_phase = Phase.ERROR
            raise

    def _send(self, event: BtEvent) -> bytes:
        phase = TRANSITIONS.get((self.our_phase, type(event)))
        if phase is None:
            raise LocalProtocolError(f"cannot send {type(event).__name__} now "
                                     f"({self.our_phase.value})")
        if not isinstance(event, Handshake) and self.their_phase is Phase.HANDSHAKE:
            raise LocalProtocolError("wait for the peer's handshake before sending messages")
        data = self.rules.sending(event)
        self.our_phase = phase
        return data

    def data_to_send(self) -> bytes:
        """Replies the codec owes the peer on its own (BEP 6 rejects); send them first."""
        return self.rules.take_outbox()

    def extended_handshake(self, **fields: object) -> ExtendedHandshake:
        """Our extension handshake with ``m`` and ``reqq`` filled in (override any)."""
        values: dict[str, object] = {"m": dict(self.rules.our_extensions),
                                     "reqq": self.rules.reqq}
        values.update(fields)
        return ExtendedHandshake(**values)  # type: ignore[arg-type]
