"""A P2P-DI peer's requests to other peers: RFCQuery and GetRFC.

Strategy: each is one exchange on a new connection (docs/p2p-di.md#di-connections). A GetRFC body
goes straight to a temporary file in the folder and is renamed to ``rfc<N>.txt`` only once
exactly Content-Length bytes arrived; on any failure the temporary file is removed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .. import limits
from ..errors import IntegrityError, Status
from ..files import AtomicFile
from ..host import join_hostport, os_name
from ..net.sockstream import SocketStream
from ..peer import paths
from ..peer.client import receive_body
from ..protocol import di
from ..registry import wire


@dataclass(frozen=True, slots=True)
class Fetched:
    """A completed GetRFC: where the file is, its size, and how long the exchange took."""

    path: Path
    size: int
    seconds: float


async def rfc_query(
    peer: di.PeerAddr, trace: wire.Trace | None = None
) -> tuple[wire.DIReply, di.Parsed[di.IndexLine]]:
    """Ask ``peer`` for its whole RFC index; malformed lines are skipped and counted.

    Raises:
        PeerGone, RemoteProtocolError, TimeoutError: the exchange failed.
    """
    reply = await wire.exchange(peer.host, peer.port, di.RFCQuery(peer.host, os_name()), trace)
    if reply.status != Status.OK:
        return reply, di.Parsed((), 0)
    return reply, di.parse_index(reply.body)


async def get_rfc(
    peer: di.PeerAddr, rfc: int, folder: Path, trace: wire.Trace | None = None
) -> Fetched | wire.DIReply:
    """Download RFC ``rfc`` from ``peer`` into ``folder``; a non-200 reply is returned.

    Raises:
        PeerGone, RemoteProtocolError, TimeoutError: the transfer failed; nothing is kept.
        IntegrityError: the body's length differs from its Content-Length.
    """
    start = time.perf_counter()
    msg = di.GetRFC(rfc, peer.host, os_name())
    async with wire.connect(peer.host, peer.port, limits.DI_MAX_RFC_FILE) as stream:
        head = await wire.request(stream, msg, trace)
        if head.status != Status.OK:
            reply = wire.DIReply(head, await wire.read_body(stream))
        else:
            size = await _save(stream, folder, rfc, di.header_int(head, "Content-Length",
                                                                   limits.DI_MAX_RFC_FILE))
    if trace is not None:
        note = "" if head.status != Status.OK else f"[{size} bytes saved]\n"
        trace(wire.show(f"<<< from {join_hostport(peer.host, peer.port)}", head) + note)
    if head.status != Status.OK:
        return reply
    return Fetched(folder / paths.rfc_filename(rfc), size, time.perf_counter() - start)


async def _save(stream: SocketStream, folder: Path, rfc: int, declared: int) -> int:
    with AtomicFile(folder, paths.rfc_filename(rfc)) as out:
        size = await receive_body(stream, out.fd, declared)
        if size != declared:
            raise IntegrityError(f"RFC {rfc}: got {size} of {declared} bytes")
        out.commit()
    return size
