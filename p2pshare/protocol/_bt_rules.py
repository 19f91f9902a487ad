"""What each peer wire message means for a connection, both ways (BEP 3, 6, 10, 52).

Strategy: ``Rules`` is the connection's memory (choking and interest both ways, the two
handshakes, the ledger of blocks in flight) and one method per direction: ``received``
checks a decoded message from the peer against that memory and returns the event to give
the caller, or None when the message is settled here; ``sending`` checks one of ours and
returns its bytes. The rules, with their sources:

- requests (BEP 3): a block is 1..16 KiB inside its piece; a peer may have ``reqq`` (the
  one we advertise, BEP 10) outstanding. Over it, or while we choke it without having
  granted the piece as allowed-fast, a request is rejected (BEP 6) or, without the fast
  extension, dropped (while choked: BEP 3 says choked requests are discarded) or fatal
  (over the budget).
- with the fast extension every request gets a piece or a reject (BEP 6): ``Choke`` sends
  rejects for every pending request not allowed-fast; a ``Cancel`` from the peer is
  answered with a reject. Without it a choke discards the peer's requests (BEP 3), and
  their choke discards ours (a piece still on its way is dropped quietly).
- a piece or reject must answer a request of ours (or one we cancelled): BEP 6 says to
  close on a reject never asked for, and an unasked piece is an unbounded gift of bytes.
- the fast messages need both sides' fast bit; extension messages are sent under the id
  the peer chose in its extension handshake and read under the ids we chose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import limits
from ..errors import LocalProtocolError, RemoteProtocolError
from . import bt_codec, bt_extended
from . import bt_events as ev
from ._bt_state import Block, BlockLedger, Geometry, block_length_problem

# Our extension ids (BEP 10: each side picks the ids it receives under); libtorrent's.
OUR_EXTENSIONS = {bt_extended.UT_METADATA: 2, bt_extended.UT_PEX: 1}
_FAST_ONLY = (ev.Suggest, ev.HaveAll, ev.HaveNone, ev.RejectRequest, ev.AllowedFast)
_EXTENSION = (ev.ExtendedHandshake, ev.MetadataRequest, ev.MetadataData, ev.MetadataReject, ev.Pex)
_HASH_KINDS = (ev.HashRequest, ev.Hashes, ev.HashReject)


class Rules:
    """The state of one connection and the rules its messages obey (module docstring)."""

    def __init__(self, geometry: Geometry | None, reqq: int) -> None:
        self.geometry = geometry
        self.reqq = reqq
        self.our_extensions = dict(OUR_EXTENSIONS)
        self.am_choking = self.peer_choking = True
        self.am_interested = self.peer_interested = False
        self.our_handshake: ev.Handshake | None = None
        self.their_handshake: ev.Handshake | None = None
        self.their_extensions: ev.ExtendedHandshake | None = None
        self.their_bitfield: bytes | None = None
        self.ledger = BlockLedger()
        self._outbox = bytearray()

    # ------------------------------------------------------------------ negotiation
    def _both(self, bit: str) -> bool:
        ours, theirs = self.our_handshake, self.their_handshake
        return bool(ours and theirs and getattr(ours, bit) and getattr(theirs, bit))

    @property
    def fast(self) -> bool:
        """Both sides set BEP 6's reserved bit."""
        return self._both("fast")

    @property
    def extended(self) -> bool:
        """Both sides set BEP 10's reserved bit."""
        return self._both("extended")

    @property
    def their_reqq(self) -> int:
        ext = self.their_extensions
        return ext.reqq if ext is not None and ext.reqq else limits.BT_DEFAULT_PEER_REQQ

    def set_geometry(self, geometry: Geometry) -> None:
        self.geometry = geometry
        if self.their_bitfield is not None:
            self._check_bitfield(self.their_bitfield)

    def take_outbox(self) -> bytes:
        out = bytes(self._outbox)
        self._outbox.clear()
        return out

    # --------------------------------------------------------------------- receiving
    def check_length(self, msg_id: int, length: int) -> None:
        """Raises RemoteProtocolError if message ``msg_id`` may not be ``length`` long."""
        if msg_id == bt_codec.BITFIELD:
            pieces = limits.MAX_BT_PIECES if self.geometry is None else self.geometry.piece_count
            bound = 1 + -(-pieces // 8)
        elif msg_id == bt_codec.EXTENDED:
            bound = 2 + limits.MAX_BT_EXTENDED
        elif msg_id == bt_codec.HASHES:
            bound = limits.MAX_BT_HASHES_MESSAGE
        else:
            bound = limits.MAX_BT_MESSAGE
        if length > bound:
            raise RemoteProtocolError(f"message {msg_id} of {length} bytes (at most {bound})")

    def extension_message(self, payload: bytes) -> ev.BtEvent | None:
        """The event of an extension message (None: one we do not speak, skipped)."""
        if not payload or not self.extended:
            return None
        if payload[0] == 0:
            return bt_extended.decode_ext_handshake(payload[1:])
        ours = {number: name for name, number in self.our_extensions.items()}
        name = ours.get(payload[0])
        if name == bt_extended.UT_METADATA:
            return bt_extended.decode_metadata(payload[1:])
        if name == bt_extended.UT_PEX:
            return bt_extended.decode_pex(payload[1:])
        return None

    def received(self, event: ev.BtEvent) -> ev.BtEvent | None:
        """``event`` as the caller should see it, or None if settled here.

        Raises:
            RemoteProtocolError: the peer may not send it now.
        """
        if isinstance(event, _FAST_ONLY) and not self.fast:
            raise RemoteProtocolError(f"{type(event).__name__} without the fast extension")
        handler = _RECEIVE.get(type(event))
        return event if handler is None else handler(self, event)

    def _got_handshake(self, event: ev.Handshake) -> ev.BtEvent:
        self.their_handshake = event
        return event

    def _got_extended(self, event: ev.ExtendedHandshake) -> ev.BtEvent:
        self.their_extensions = event
        return event

    def _got_choke(self, event: ev.Choke) -> ev.BtEvent:
        self.peer_choking = True
        if not self.fast:
            self.ledger.forget_all_ours()
        return event

    def _got_unchoke(self, event: ev.Unchoke) -> ev.BtEvent:
        self.peer_choking = False
        return event

    def _got_interest(self, event: ev.Interested | ev.NotInterested) -> ev.BtEvent:
        self.peer_interested = isinstance(event, ev.Interested)
        return event

    def _got_have(self, event: ev.BtHave) -> ev.BtEvent:
        if self.geometry is not None and not self.geometry.has_piece(event.index):
            raise RemoteProtocolError(f"have of piece {event.index}, out of range")
        return event

    def _got_bitfield(self, event: ev.Bitfield) -> ev.BtEvent:
        self.their_bitfield = event.bits
        if self.geometry is not None:
            self._check_bitfield(event.bits)
        return event

    def _check_bitfield(self, bits: bytes) -> None:
        assert self.geometry is not None
        problem = self.geometry.bitfield_problem(bits)
        if problem:
            raise RemoteProtocolError(problem)

    def _check_block(self, index: int, begin: int, length: int,
                     error: type[RemoteProtocolError | LocalProtocolError]) -> Block:
        problem = block_length_problem(length)
        if problem is None and self.geometry is not None:
            problem = self.geometry.block_problem(index, begin, length)
        if problem:
            raise error(problem)
        return index, begin, length

    def _got_request(self, event: ev.BtRequest) -> ev.BtEvent | None:
        block = self._check_block(event.index, event.begin, event.length, RemoteProtocolError)
        ledger = self.ledger
        if block in ledger.theirs:
            return None  # a repeat: the first one will be answered
        choked = self.am_choking and event.index not in ledger.granted
        if not self.fast and len(ledger.theirs) >= self.reqq:
            raise RemoteProtocolError(f"over {self.reqq} outstanding requests")
        if choked or len(ledger.theirs) >= self.reqq:
            if self.fast:
                self._outbox += bt_codec.encode_message(ev.RejectRequest(*block))
            return None
        ledger.theirs[block] = None
        return event

    def _got_cancel(self, event: ev.Cancel) -> ev.BtEvent | None:
        block = (event.index, event.begin, event.length)
        if block not in self.ledger.theirs:
            return None  # already answered: the cancel crossed our piece
        del self.ledger.theirs[block]
        if self.fast:
            self._outbox += bt_codec.encode_message(ev.RejectRequest(*block))
        return event

    def received_block(self, index: int, begin: int, length: int) -> bool:
        """Whether the caller wants the block (False: one we cancelled, to skip).

        Raises:
            RemoteProtocolError: a block we never asked for.
        """
        try:
            return self.ledger.answered((index, begin, length))
        except KeyError:
            raise RemoteProtocolError(f"piece {index}+{begin} (length {length}) never "
                                      "requested") from None

    def _got_piece(self, event: ev.Piece) -> ev.BtEvent | None:
        return event if self.received_block(event.index, event.begin, len(event.block)) else None

    def _got_reject(self, event: ev.RejectRequest) -> ev.BtEvent | None:
        try:
            wanted = self.ledger.answered((event.index, event.begin, event.length))
        except KeyError:
            raise RemoteProtocolError("reject of a request we never sent") from None
        return event if wanted else None

    def _may_be_piece(self, index: int) -> bool:
        """Whether ``index`` is a piece (any index while the geometry is unknown)."""
        return self.geometry is None or self.geometry.has_piece(index)

    def _got_suggest(self, event: ev.Suggest) -> ev.BtEvent | None:
        """A hint (BEP 6): one out of range is ignored, as libtorrent does."""
        return event if self._may_be_piece(event.index) else None

    def _got_allowed_fast(self, event: ev.AllowedFast) -> ev.BtEvent | None:
        allowed = self.ledger.allowed
        if not self._may_be_piece(event.index) or len(allowed) >= limits.MAX_BT_ALLOWED_FAST:
            return None  # BEP 6: a receiver may ignore allowed-fast messages
        allowed.add(event.index)
        return event

    def _got_hash_message(self, event: ev.HashRequest | ev.Hashes | ev.HashReject) -> ev.BtEvent:
        if not 0 < event.length <= limits.MAX_BT_HASH_COUNT:
            raise RemoteProtocolError(f"hash request length {event.length} out of range")
        if event.proof_layers > limits.MAX_BT_PROOF_LAYERS:
            raise RemoteProtocolError(f"{event.proof_layers} proof layers")
        return event

    # ----------------------------------------------------------------------- sending
    def sending(self, event: ev.BtEvent) -> bytes:
        """The bytes of ``event``, after checking that we may send it now.

        Raises:
            LocalProtocolError: we may not.
        """
        if isinstance(event, _FAST_ONLY) and not self.fast:
            raise LocalProtocolError(f"{type(event).__name__} needs the fast extension")
        handler = _SEND.get(type(event))
        return bt_codec.encode_message(event) if handler is None else handler(self, event)

    def _send_handshake(self, event: ev.Handshake) -> bytes:
        data = bt_codec.encode_handshake(event)
        self.our_handshake = event
        return data

    def _send_extension(self, event: ev.BtEvent) -> bytes:
        if not self.extended:
            raise LocalProtocolError("the peer did not announce the extension protocol")
        if isinstance(event, ev.ExtendedHandshake):
            self.our_extensions = dict(event.m)
            if event.reqq:
                self.reqq = event.reqq
            payload = b"\0" + bt_extended.encode_ext_handshake(event)
            return bt_codec.frame(bt_codec.EXTENDED, payload)
        name = bt_extended.UT_PEX if isinstance(event, ev.Pex) else bt_extended.UT_METADATA
        number = self.their_extensions.m.get(name, 0) if self.their_extensions else 0
        if not 0 < number <= 255:
            raise LocalProtocolError(f"the peer does not speak {name}")
        payload = (bt_extended.encode_pex(event) if isinstance(event, ev.Pex)
                   else bt_extended.encode_metadata(event))  # type: ignore[arg-type]
        return bt_codec.frame(bt_codec.EXTENDED, bytes([number]) + payload)

    def _send_choke(self, event: ev.Choke) -> bytes:
        self.am_choking = True
        keep = self.ledger.granted if self.fast else set()
        rejects = list(self.ledger.drop_theirs(keep))
        if not self.fast:
            return bt_codec.encode_message(event)
        return bt_codec.encode_message(event) + b"".join(
            bt_codec.encode_message(ev.RejectRequest(*block)) for block in rejects)

    def _send_unchoke(self, event: ev.Unchoke) -> bytes:
        self.am_choking = False
        return bt_codec.encode_message(event)

    def _send_interest(self, event: ev.Interested | ev.NotInterested) -> bytes:
        self.am_interested = isinstance(event, ev.Interested)
        return bt_codec.encode_message(event)

    def _send_bitfield(self, event: ev.Bitfield) -> bytes:
        if self.geometry is not None and self.geometry.bitfield_problem(event.bits):
            raise LocalProtocolError(str(self.geometry.bitfield_problem(event.bits)))
        return bt_codec.encode_message(event)

    def _send_request(self, event: ev.BtRequest) -> bytes:
        block = self._check_block(event.index, event.begin, event.length, LocalProtocolError)
        ledger = self.ledger
        if self.peer_choking and not (self.fast and event.index in ledger.allowed):
            raise LocalProtocolError("the peer chokes us (and did not allow this piece fast)")
        if block in ledger.ours or len(ledger.ours) >= self.their_reqq:
            raise LocalProtocolError(f"a repeated request, or over the peer's reqq "
                                     f"({self.their_reqq})")
        ledger.cancelled.pop(block, None)
        ledger.ours[block] = None
        return bt_codec.encode_message(event)

    def _send_cancel(self, event: ev.Cancel) -> bytes:
        block = (event.index, event.begin, event.length)
        if block not in self.ledger.ours:
            return b""
        self.ledger.forget_ours(block)
        return bt_codec.encode_message(event)

    def _send_answer(self, event: ev.Piece | ev.PieceHeader | ev.RejectRequest) -> bytes:
        length = len(event.block) if isinstance(event, ev.Piece) else event.length
        block = (event.index, event.begin, length)
        if block not in self.ledger.theirs:
            return b""  # cancelled, or rejected by a choke, meanwhile
        del self.ledger.theirs[block]
        return bt_codec.encode_message(event)

    def _send_allowed_fast(self, event: ev.AllowedFast) -> bytes:
        self.ledger.granted.add(event.index)
        return bt_codec.encode_message(event)


_Handler = Callable[[Rules, Any], Any]
_RECEIVE: dict[type[Any], _Handler] = {
    ev.Handshake: Rules._got_handshake,
    ev.ExtendedHandshake: Rules._got_extended,
    ev.Choke: Rules._got_choke,
    ev.Unchoke: Rules._got_unchoke,
    ev.Interested: Rules._got_interest,
    ev.NotInterested: Rules._got_interest,
    ev.BtHave: Rules._got_have,
    ev.Bitfield: Rules._got_bitfield,
    ev.BtRequest: Rules._got_request,
    ev.Cancel: Rules._got_cancel,
    ev.Piece: Rules._got_piece,
    ev.RejectRequest: Rules._got_reject,
    ev.Suggest: Rules._got_suggest,
    ev.AllowedFast: Rules._got_allowed_fast,
    **{kind: Rules._got_hash_message for kind in _HASH_KINDS},
}
_SEND: dict[type[Any], _Handler] = {
    ev.Handshake: Rules._send_handshake,
    **{kind: Rules._send_extension for kind in _EXTENSION},
    ev.Choke: Rules._send_choke,
    ev.Unchoke: Rules._send_unchoke,
    ev.Interested: Rules._send_interest,
    ev.NotInterested: Rules._send_interest,
    ev.Bitfield: Rules._send_bitfield,
    ev.BtRequest: Rules._send_request,
    ev.Cancel: Rules._send_cancel,
    ev.Piece: Rules._send_answer,
    ev.PieceHeader: Rules._send_answer,
    ev.RejectRequest: Rules._send_answer,
    ev.AllowedFast: Rules._send_allowed_fast,
}
