"""A peer's two client roles: its persistent index connection, and GET from other peers.

Strategy: ``IndexClient`` sends one P2S request at a time over the connection that stays
open while the peer is active (docs/p2p-ci.md#persistent-connection) and returns a
``P2SReply`` (status, records, and the exact bytes that crossed the wire, for printing).
``download`` asks each holder in turn (2.3 LOOKUP order, newest first, skipping ourselves)
until one sends the file; the body goes to a temporary name and is renamed only once
Content-Length bytes arrived.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import limits
from ..errors import AlreadyClosed, P2PError, PeerGone, RemoteProtocolError, Status
from ..files import AtomicFile
from ..host import join_hostport, os_name
from ..net.sockstream import SocketStream, open_socket_stream
from ..net.stream import EventStream, open_stream
from ..protocol import Data, EndOfMessage, Request, Response, ci, get_header
from ..protocol.ci import CIRequest, Method, Record
from . import paths

log = logging.getLogger(__name__)

Printer = Callable[[str, bytes], None]


@dataclass(frozen=True, slots=True)
class P2SReply:
    """The answer to one P2S request."""

    status: int
    reason: str
    records: list[Record]
    sent: bytes = b""
    received: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status == Status.OK


class IndexClient:
    """A peer's persistent connection to the index server.

    Args:
        host, port: the index server.
        me_host, me_port: what this peer advertises (its upload server).
        printer: called with every chunk sent (">") and received ("<").
    """

    def __init__(self, host: str, port: int, me_host: str, me_port: int,
                 printer: Printer | None = None) -> None:
        self.host, self.port = host, port
        self.me_host, self.me_port = me_host, me_port
        self.printer = printer
        self._stream: EventStream | None = None
        self._lock = asyncio.Lock()  # one exchange (or idle watch) at a time
        self._watch: asyncio.Timeout | None = None
        self._wanted = 0  # exchanges waiting for the lock: the watch yields to them
        self._left = False  # aclose() was called and connect() was not called since

    @property
    def connected(self) -> bool:
        return self._stream is not None

    async def connect(self) -> None:
        """Open the connection (again, after ``aclose``: the peer joins anew).

        Raises:
            PeerGone: the server cannot be reached.
        """
        self._left = False
        self._stream = await open_stream(self.host, self.port, ci.index_client_connection())
        self._stream.on_bytes = self.printer
        if self.me_port == 0:  # a one-shot client with no upload server: name its own socket
            self.me_port = int(self._stream.writer.get_extra_info("sockname")[1])
        log.info("[Peer] Connected to server at %s port %d", self.host, self.port)

    async def wait_closed(self) -> None:
        """Return once the server has closed the connection (or it was never open).

        Watches the idle connection between exchanges; an exchange interrupts the watch.
        """
        while (stream := self._stream) is not None:
            async with self._lock:
                if stream is not self._stream or self._wanted:
                    continue  # an exchange queued before the watch could be told: go after it
                try:
                    async with asyncio.timeout(None) as self._watch:
                        data = await stream.reader.read(limits.RECV_CHUNK)
                except TimeoutError:
                    continue  # an exchange wants the connection
                except (ConnectionError, OSError):
                    data = b""
                finally:
                    self._watch = None
                if not data:
                    await self._drop()
                    return
                stream.conn.receive_data(data)  # e.g. A3's stray CRLF: the codec skips it

    async def aclose(self) -> None:
        """Leave the system: closing the connection is how a peer leaves (A8)."""
        self._left = True
        await self._drop()

    async def _drop(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.aclose()

    def _request(self, method: Method, rfc: int | None, title: str | None = None) -> Request:
        return ci.to_event(CIRequest(method, rfc, self.me_host, self.me_port, title))

    async def add(self, rfc: int, title: str) -> P2SReply:
        return await self.exchange(self._request(Method.ADD, rfc, title))

    async def lookup(self, rfc: int, title: str | None = None) -> P2SReply:
        return await self.exchange(self._request(Method.LOOKUP, rfc, title))

    async def list_all(self) -> P2SReply:
        return await self.exchange(self._request(Method.LIST, None))

    async def remove(self, rfc: int) -> P2SReply:
        return await self.exchange(self._request(Method.REMOVE, rfc))

    async def exchange(self, request: Request) -> P2SReply:
        """Send any request (even a deliberately bad one) and read the whole reply.

        Raises:
            AlreadyClosed: we left (``aclose``) and did not ``connect`` again.
            PeerGone: not connected, or the server went away.
            RemoteProtocolError: the reply was malformed.
        """
        self._wanted += 1
        try:
            if self._watch is not None:
                self._watch.reschedule(asyncio.get_running_loop().time())
            await self._lock.acquire()
        finally:
            self._wanted -= 1
        try:
            return await self._exchange(request)
        finally:
            self._lock.release()

    async def _exchange(self, request: Request) -> P2SReply:
        stream = self._stream
        if self._left:
            raise AlreadyClosed("this peer left the index server (aclose); connect() first")
        if stream is None:
            raise PeerGone("not connected to the index server")
        sent, received = bytearray(), bytearray()
        stream.on_bytes = _recorder(sent, received, self.printer)
        try:
            await stream.send(request, EndOfMessage())
            head, lines = await stream.read_p2s_response()
        except (PeerGone, RemoteProtocolError, TimeoutError, OSError) as exc:
            await self._drop()
            if isinstance(exc, RemoteProtocolError):
                raise
            raise PeerGone(f"index server connection lost: {exc}") from exc
        records = [ci.parse_record(line) for line in lines] if head.status == Status.OK else []
        return P2SReply(head.status, head.reason, records, bytes(sent), bytes(received))


def _recorder(sent: bytearray, received: bytearray, printer: Printer | None) -> Printer:
    def record(direction: str, data: bytes) -> None:
        (sent if direction == ">" else received).extend(data)
        if printer is not None:
            printer(direction, data)
    return record


@dataclass(slots=True)
class RFCDownload:
    """The outcome of ``download``: the saved path, or None, and what each holder said."""

    path: Path | None
    attempts: list[tuple[Record, str]] = field(default_factory=list)
    size: int = 0
    local_error: str | None = None  # our folder refused the file: no holder could help


async def download(folder: Path, rfc: int, holders: list[Record], *,
                   skip: tuple[str, int] | None = None, printer: Printer | None = None
                   ) -> RFCDownload:
    """Fetch RFC ``rfc`` from the first of ``holders`` that has it; save as ``rfc<N>.txt``."""
    result = RFCDownload(None)
    for holder in holders:
        if skip is not None and (holder.host, holder.port) == skip:
            continue
        try:
            result.size = await fetch_from(folder, rfc, holder.host, holder.port, printer)
        except (P2PError, TimeoutError, ConnectionError) as exc:
            result.attempts.append((holder, f"{type(exc).__name__}: {exc}"))
            log.info("[Peer] GET RFC %d from %s failed: %s", rfc,
                     join_hostport(holder.host, holder.port), exc)
            continue
        except OSError as exc:  # writing into our folder (a full disk): the next holder
            result.attempts.append((holder, f"{type(exc).__name__}: {exc}"))  # would fail too
            result.local_error = f"cannot save it in {folder}: {exc.strerror or exc}"
            return result
        result.attempts.append((holder, "200 OK"))
        result.path = folder / paths.rfc_filename(rfc)
        return result
    return result


class NotServed(P2PError):
    """A holder answered GET with a status other than 200."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status


async def fetch_from(folder: Path, rfc: int, host: str, port: int,
                     printer: Printer | None = None) -> int:
    """GET RFC ``rfc`` from ``host:port`` into ``folder``; returns the byte count.

    Raises:
        NotServed: the peer answered 400/404/505.
        PeerGone, RemoteProtocolError, TimeoutError: the transfer failed; nothing is kept.
    """
    request = ci.to_event(CIRequest(Method.GET, rfc, host, os=os_name()))
    stream, head = await send_get(host, port, request, printer)
    try:
        if head.status != Status.OK:
            raise NotServed(head.status, head.reason)
        return await _receive_file(stream, folder, rfc, head)
    finally:
        await stream.aclose()


async def send_get(host: str, port: int, request: Request, printer: Printer | None = None
                   ) -> tuple[SocketStream, Response]:
    """Send any GET-style request (even a malformed one) to an upload server.

    Returns the open stream, positioned at the response body, and the response head.

    Raises:
        PeerGone: no connection, or the peer closed without answering.
    """
    stream = await open_socket_stream(host, port, ci.upload_client_connection())
    stream.on_bytes = _head_only(printer)
    try:
        await stream.send(request, EndOfMessage())
        head = await stream.next_event(limits.RESPONSE_TIMEOUT)
    except BaseException:
        await stream.aclose()
        raise
    if not isinstance(head, Response):
        await stream.aclose()
        raise PeerGone("the peer closed without answering")
    return stream, head


async def _receive_file(stream: SocketStream, folder: Path, rfc: int, head: Response) -> int:
    declared = get_header(head.headers, "Content-Length")
    with AtomicFile(folder, paths.rfc_filename(rfc)) as out:
        size = await receive_body(stream, out.fd, int(declared) if declared else None)
        if declared is not None and int(declared) != size:
            raise PeerGone(f"got {size} of {declared} bytes")
        out.commit()
    return size


async def receive_body(stream: SocketStream, fd: int, length: int | None) -> int:
    """Write a LENGTH-framed body to ``fd``: what the codec holds, then socket-to-file.

    Returns the bytes written; fewer than ``length`` means the peer closed early.
    """
    size = 0
    while True:  # body bytes that arrived with the head
        event = stream.conn.next_event()
        if isinstance(event, Data):
            size += os.write(fd, event.data)
        elif isinstance(event, EndOfMessage):
            return size
        else:
            break
    if length is not None:
        return size + await stream.recv_to_file(fd, length - size)
    while isinstance(event := await stream.next_event(limits.RESPONSE_TIMEOUT), Data):
        size += os.write(fd, event.data)  # no Content-Length: the body runs until close
    return size


def _head_only(printer: Printer | None) -> Printer | None:
    """Print a GET exchange's heads, not the file bytes."""
    if printer is None:
        return None
    shown = {"<": False}

    def show(direction: str, data: bytes) -> None:
        if direction == ">":
            printer(direction, data)
        elif not shown["<"]:
            shown["<"] = True
            end = data.find(b"\r\n\r\n")
            printer(direction, data[: end + 4] if end >= 0 else data[:512])
    return show
