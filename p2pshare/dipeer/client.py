"""A P2P-DI peer's requests to other peers: RFCQuery and GetRFC.

Strategy: each is one exchange on a new connection (docs/p2p-di.md#di-connections). GetRFC
is split as P2P-CI's GET is (``peer.client``): ``offer_getrfc`` reads a valid 200 head under
the holder deadlines, so that a peer can race several holders and keep the first, then
``save_rfc`` sends the body straight to a temporary file in the folder, renamed to
``rfc<N>.txt`` only once exactly Content-Length bytes arrived; on any failure the
temporary file is removed. A body over ``limits.MAX_DOWNLOAD`` or the folder's free space
is refused before a byte is written.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from .. import limits
from ..errors import IntegrityError, PeerGone, Status
from ..host import join_hostport, os_name
from ..net.sockstream import open_socket_stream
from ..peer import paths
from ..peer.client import NotServed, Offer, check_length, room_in, save_offer
from ..peer.holders import DEFAULT_PATIENCE, Patience
from ..protocol import di
from ..registry import wire


@dataclass(frozen=True, slots=True)
class Fetched:
    """A completed GetRFC: where the file is, its size, how long the exchange took, and
    from whom."""

    path: Path
    size: int
    seconds: float
    source: di.PeerAddr | None = None


async def rfc_query(
    peer: di.PeerAddr, trace: wire.Trace | None = None, *,
    connect_timeout: float = limits.CONNECT_TIMEOUT,
    first_byte: float = limits.RESPONSE_TIMEOUT,
) -> tuple[wire.DIReply, di.Parsed[di.IndexLine]]:
    """Ask ``peer`` for its whole RFC index; malformed lines are skipped and counted.

    Raises:
        PeerGone, RemoteProtocolError, TimeoutError: the exchange failed (within
            ``connect_timeout`` to connect and ``first_byte`` for the reply to begin).
    """
    reply = await wire.exchange(peer.host, peer.port, di.RFCQuery(peer.host, os_name()), trace,
                                connect_timeout=connect_timeout, first_byte=first_byte)
    if reply.status != Status.OK:
        return reply, di.Parsed((), 0)
    return reply, di.parse_index(reply.body)


async def get_rfc(
    peer: di.PeerAddr, rfc: int, folder: Path, trace: wire.Trace | None = None
) -> Fetched | wire.DIReply:
    """Download RFC ``rfc`` from ``peer`` into ``folder``; a non-200 reply is returned.

    Raises:
        PeerGone, RemoteProtocolError, TimeoutError: the transfer failed; nothing is kept.
        TooLarge: the peer announced more than we take.
        IntegrityError: the body's length differs from its Content-Length.
        LocalIOError: our folder refused the file.
    """
    start = time.perf_counter()
    try:
        offer = await offer_getrfc(peer, rfc, room_in(folder), trace)
    except Declined as exc:
        return exc.reply
    return await save_rfc(peer, rfc, folder, offer, start, trace)


class Declined(NotServed):
    """A holder answered GetRFC with a status other than 200 (its whole ``reply``)."""

    def __init__(self, reply: wire.DIReply) -> None:
        super().__init__(reply.status, reply.response.reason)
        self.reply = reply


async def offer_getrfc(peer: di.PeerAddr, rfc: int, room: int, trace: wire.Trace | None = None,
                    patience: Patience = DEFAULT_PATIENCE) -> Offer:
    """Send GetRFC to ``peer`` and read a 200 reply's head (with ``patience``'s deadlines).

    Raises:
        Declined: the peer answered with another status.
        TooLarge, PeerGone, RemoteProtocolError, TimeoutError: as ``get_rfc``.
    """
    try:
        stream = await open_socket_stream(peer.host, peer.port,
                                          di.client_connection(limits.MAX_DOWNLOAD),
                                          patience.connect)
    except UnicodeError as exc:  # a name the resolver's IDNA codec refuses
        raise PeerGone(f"cannot connect to {join_hostport(peer.host, peer.port)}: {exc}"
                       ) from exc
    try:
        async with asyncio.timeout(patience.first_byte):
            head = await wire.request(stream, di.GetRFC(rfc, peer.host, os_name()), trace)
        if head.status != Status.OK:
            raise Declined(wire.DIReply(head, await wire.read_body(stream)))
        length = di.header_int(head, "Content-Length", limits.MAX_DOWNLOAD)
        check_length(length, room)
    except BaseException:
        await stream.aclose()
        raise
    if trace is not None:
        trace(wire.show(f"<<< from {join_hostport(peer.host, peer.port)}", head))
    return Offer(stream, length, room)


async def save_rfc(peer: di.PeerAddr, rfc: int, folder: Path, offer: Offer, start: float,
                   trace: wire.Trace | None = None) -> Fetched:
    """Write ``offer``'s body as ``rfc<N>.txt``; ``start``: when the exchange began.

    Raises:
        IntegrityError, PeerGone, TimeoutError, LocalIOError: as ``get_rfc``.
    """
    size = await save_offer(folder, paths.rfc_filename(rfc), offer, IntegrityError)
    if trace is not None:
        trace(f"[{size} bytes saved from {join_hostport(peer.host, peer.port)}]\n")
    return Fetched(folder / paths.rfc_filename(rfc), size, time.perf_counter() - start, peer)
