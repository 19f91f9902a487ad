"""One P2P-DI exchange over asyncio: the part the RS, RFC servers and clients share.

Strategy: every P2P-DI message travels on its own TCP connection
(docs/p2p-di.md#di-connections), so a client is ``connect`` + ``request`` + ``read_body``;
servers run on the one server runtime (``net.runtime``) and use ``show`` to print what they
exchange. Protocol decisions live in ``protocol.di``; here bytes move, and each message can
be shown to the user through a ``Trace`` callback, as the handout asks ("the two peers and
the RS print to the screen the format of the messages").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from .. import limits
from ..errors import PeerGone, RemoteProtocolError
from ..host import join_hostport
from ..net.sockstream import SocketStream, open_socket_stream
from ..net.stream import BaseStream
from ..protocol import ConnectionClosed, Data, EndOfMessage, Request, Response, di, foreign

log = logging.getLogger(__name__)

# Receives a message ready to print: a label line, the head, then body lines if any.
Trace = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class DIReply:
    """A whole reply: its head and its body (list replies only; files are streamed)."""

    response: Response
    body: bytes = b""

    @property
    def status(self) -> int:
        return self.response.status


@contextlib.asynccontextmanager
async def connect(
    host: str, port: int, max_body: int = limits.DI_MAX_PEER_LIST_BODY,
    timeout: float = limits.CONNECT_TIMEOUT,
) -> AsyncIterator[SocketStream]:
    """A fresh connection for one exchange, closed on exit (a raw socket: a GetRFC body
    can then go from socket to file without passing through Python).

    Raises:
        PeerGone: the connection could not be made.
    """
    stream = await open_socket_stream(host, port, di.client_connection(max_body), timeout)
    try:
        yield stream
    finally:
        await stream.aclose()


async def request(stream: BaseStream, msg: di.DIRequest, trace: Trace | None,
                  first_byte: float = limits.RESPONSE_TIMEOUT) -> Response:
    """Send ``msg`` and read the reply's head.

    Raises:
        PeerGone: the other side closed or reset before its reply.
        RemoteProtocolError: the reply is malformed.
        WrongServer: the reply is not P2P-DI/1.0 (the message names what sent it).
        TimeoutError: no reply head within ``first_byte`` seconds.
    """
    event = di.to_event(msg)
    if trace is not None:
        trace(show(f">>> to {_addr(stream)}", event))
    await stream.send(event, EndOfMessage())
    try:
        head = await stream.next_event(first_byte)
    except RemoteProtocolError as exc:
        wrong = foreign(bytes(stream.opening), _addr(stream), di.VERSION, di.WANTED)
        if wrong is None:
            raise
        raise wrong from exc
    if not isinstance(head, Response):
        raise PeerGone(f"{_addr(stream)} closed without a reply")
    di.check_version(head, _addr(stream))
    return head


async def read_body(stream: BaseStream, limit: int = limits.DI_MAX_PEER_LIST_BODY) -> bytes:
    """The reply's body, held in memory: at most ``limit`` bytes.

    Raises:
        RemoteProtocolError: the body ended before its Content-Length, or (a reply without
            Content-Length, read until close) grew beyond ``limit``.
        TimeoutError: the sender fell silent for ``limits.UPLOAD_IDLE_TIMEOUT``.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await stream.next_event(limits.UPLOAD_IDLE_TIMEOUT)
        if isinstance(event, Data):
            size += len(event.data)
            if size > limit:
                raise RemoteProtocolError(f"reply body over {limit} bytes")
            chunks.append(event.data)
        elif isinstance(event, (EndOfMessage, ConnectionClosed)):
            return b"".join(chunks)


async def exchange(host: str, port: int, msg: di.DIRequest, trace: Trace | None, *,
                   connect_timeout: float = limits.CONNECT_TIMEOUT,
                   first_byte: float = limits.RESPONSE_TIMEOUT) -> DIReply:
    """Send ``msg`` to ``host:port`` on a new connection and return the whole reply.

    Raises:
        PeerGone, RemoteProtocolError: as ``request`` and ``read_body``.
        TimeoutError: no connection within ``connect_timeout``, no reply head within
            ``first_byte``, or the whole exchange took over ``limits.RESPONSE_TIMEOUT``.
    """
    limit = reply_limit(msg)
    async with connect(host, port, limit, connect_timeout) as stream, \
            asyncio.timeout(limits.RESPONSE_TIMEOUT):
        head = await request(stream, msg, trace, first_byte)
        reply = DIReply(head, await read_body(stream, limit))
    if trace is not None:
        trace(show(f"<<< from {join_hostport(host, port)}", head, reply.body))
    return reply


def reply_limit(msg: di.DIRequest) -> int:
    """The reply body accepted for ``msg``: an RFC index (RFCQuery), else a peer list."""
    return limits.DI_MAX_INDEX_BODY if isinstance(msg, di.RFCQuery) else \
        limits.DI_MAX_PEER_LIST_BODY


def show(label: str, head: Request | Response, body: bytes = b"") -> str:
    """A message as it stands on the wire, for printing; list bodies shown line by line."""
    text = f"{label}\n{di.head_text(head)}\n"
    if body:
        text += "\n" + body.decode("utf-8", errors="replace").replace("\r\n", "\n")
    return text


def _addr(stream: BaseStream) -> str:
    return join_hostport(*stream.peername)
