"""A peer's two client roles: its persistent index connection, and GET from other peers.

Strategy: ``IndexClient`` sends one P2S request at a time over the connection that stays
open while the peer is active (docs/p2p-ci.md#persistent-connection) and returns a
``P2SReply`` (status, records, and the exact bytes that crossed the wire, for printing).
``download`` asks the holders (2.3 LOOKUP order, newest first, skipping ourselves) at
once with staggered starts (``holders``): the first valid reply head wins; a record whose
host, port or title is unusable is skipped with its reason, and a body longer than
``limits.MAX_DOWNLOAD`` or the folder's free space is refused before a byte is written.
The body goes to a temporary name and is renamed only once Content-Length bytes arrived;
our own folder refusing it is a ``LocalIOError``, blamed on no holder.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import limits
from ..errors import (
    AlreadyClosed,
    LocalIOError,
    P2PError,
    PeerGone,
    RemoteProtocolError,
    Status,
    WrongServer,
)
from ..files import AtomicFile, free_space
from ..host import address_problem, join_hostport, os_name
from ..net.sockstream import SocketStream, open_socket_stream
from ..net.stream import EventStream, open_stream
from ..protocol import (
    INDEX_SERVER,
    Data,
    EndOfMessage,
    Request,
    Response,
    ci,
    foreign,
    get_header,
    server_kind,
    wrong_server,
)
from ..protocol.ci import CIRequest, Method, Record
from . import paths
from .holders import DEFAULT_PATIENCE, Patience, fetch_first

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
        log.info("[Peer] Connected to server at %s", join_hostport(self.host, self.port))

    @property
    def local_host(self) -> str:
        """Our address on the connection to the server (what the server sees)."""
        if self._stream is None:
            raise PeerGone("not connected to the index server")
        return str(self._stream.writer.get_extra_info("sockname")[0])

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
            head, lines = await stream.read_p2s_response(check=self._check_server)
        except (PeerGone, RemoteProtocolError, TimeoutError, OSError) as exc:
            await self._drop()
            if isinstance(exc, RemoteProtocolError):
                wrong = foreign(bytes(stream.opening), self._where, ci.VERSION, INDEX_WANTED)
                if wrong is None or isinstance(exc, WrongServer):
                    raise
                raise wrong from exc
            if isinstance(exc, TimeoutError):
                raise PeerGone(f"{self._where}: no reply within {limits.RESPONSE_TIMEOUT:g} s "
                               f"(a silent server, not {INDEX_WANTED}?)") from exc
            raise PeerGone(f"index server connection lost: {exc}") from exc
        records = [ci.parse_record(line) for line in lines] if head.status == Status.OK else []
        return P2SReply(head.status, head.reason, records, bytes(sent), bytes(received))


    @property
    def _where(self) -> str:
        return join_hostport(self.host, self.port)

    def _check_server(self, head: Response) -> None:
        """Raises: WrongServer: ``head`` is not an index server's reply."""
        kind = server_kind(head)
        if kind != INDEX_SERVER:
            raise WrongServer(wrong_server(self._where, kind, INDEX_WANTED))


INDEX_WANTED = "a P2P-CI index server"


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


class NotServed(P2PError):
    """A holder answered GET with a status other than 200."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status


class TooLarge(P2PError):
    """A holder announced (or sent) a body we will not take: over ``limits.MAX_DOWNLOAD``,
    or over the download folder's free space less ``limits.FREE_SPACE_MARGIN``."""


@dataclass(slots=True)
class Offer:
    """A holder's 200 reply: the stream at the start of its body, the announced length
    (None: until the close), and the most bytes we take."""

    stream: SocketStream
    length: int | None
    room: int

    async def release(self) -> None:
        await self.stream.aclose()


def holder_problem(host: str, port: int, title: str) -> str | None:
    """Why a record read from the network cannot be used (its holder is then skipped
    with this one-line reason), or None."""
    if len(title) > limits.MAX_TITLE or not title.isprintable():
        return f"unusable title {title[:40]!r}"
    return address_problem(host, port)


def room_in(folder: Path) -> int:
    """The most bytes a download into ``folder`` may bring.

    Raises:
        LocalIOError: the folder cannot be examined.
    """
    try:
        free = free_space(folder) - limits.FREE_SPACE_MARGIN
    except OSError as exc:
        raise LocalIOError(f"cannot save it in {folder}: {exc.strerror or exc}",
                           exc.errno) from exc
    return max(0, min(limits.MAX_DOWNLOAD, free))


def check_length(declared: int | None, room: int) -> None:
    """Raises: TooLarge: ``declared`` is more than ``room`` bytes."""
    if declared is not None and declared > room:
        why = ("the most accepted (MAX_DOWNLOAD)" if room == limits.MAX_DOWNLOAD
               else "the room in our folder (its free space less FREE_SPACE_MARGIN)")
        raise TooLarge(f"announces {declared} bytes; {room} bytes is {why}")


async def download(folder: Path, rfc: int, holders: list[Record], *,
                   skip: tuple[str, int] | None = None, printer: Printer | None = None,
                   patience: Patience = DEFAULT_PATIENCE) -> RFCDownload:
    """Fetch RFC ``rfc`` from the holders (first answer wins, see ``holders``); save it as
    ``rfc<N>.txt``. A record that cannot be used fails at once with its reason."""
    result = RFCDownload(None)
    usable = []
    for holder in holders:
        if skip is not None and (holder.host, holder.port) == skip:
            continue
        problem = holder_problem(holder.host, holder.port, holder.title)
        if problem is not None:
            result.attempts.append((holder, f"skipped: {problem}"))
        else:
            usable.append(holder)

    def failed(holder: Record, exc: BaseException) -> None:
        result.attempts.append((holder, f"{type(exc).__name__}: {exc}"))
        log.info("[Peer] GET RFC %d from %s failed: %s", rfc,
                 join_hostport(holder.host, holder.port), exc)

    async def attempt(holder: Record) -> Offer:
        return await offer_get(rfc, holder.host, holder.port, room, printer, patience)

    async def save(_holder: Record, offer: Offer) -> int:
        return await save_offer(folder, paths.rfc_filename(rfc), offer)

    try:
        room = room_in(folder)  # our folder first: no holder is asked if it is unusable
        won = await fetch_first(usable, attempt, save, Offer.release, failed, patience.stagger)
    except LocalIOError as exc:
        result.local_error = str(exc)
        return result
    if won is not None:
        result.attempts.append((won[0], "200 OK"))
        result.path, result.size = folder / paths.rfc_filename(rfc), won[1]
    return result


async def fetch_from(folder: Path, rfc: int, host: str, port: int,
                     printer: Printer | None = None) -> int:
    """GET RFC ``rfc`` from ``host:port`` into ``folder``; returns the byte count.

    Raises:
        NotServed: the peer answered 400/404/505.
        TooLarge: the peer announced more than we take.
        PeerGone, RemoteProtocolError, TimeoutError: the transfer failed; nothing is kept.
        LocalIOError: our folder refused the file.
    """
    offer = await offer_get(rfc, host, port, room_in(folder), printer)
    return await save_offer(folder, paths.rfc_filename(rfc), offer)


async def offer_get(rfc: int, host: str, port: int, room: int, printer: Printer | None = None,
                    patience: Patience = DEFAULT_PATIENCE) -> Offer:
    """Send GET RFC ``rfc`` to ``host:port`` and read a 200 reply's head.

    Raises:
        NotServed, TooLarge, PeerGone, RemoteProtocolError, TimeoutError: as ``fetch_from``.
    """
    request = ci.to_event(CIRequest(Method.GET, rfc, host, os=os_name()))
    stream, head = await send_get(host, port, request, printer, patience)
    try:
        if head.status != Status.OK:
            raise NotServed(head.status, head.reason)
        declared = get_header(head.headers, "Content-Length")
        length = int(declared) if declared is not None else None  # the codec checked it
        check_length(length, room)
    except BaseException:
        await stream.aclose()
        raise
    return Offer(stream, length, room)


async def send_get(host: str, port: int, request: Request, printer: Printer | None = None,
                   patience: Patience | None = None) -> tuple[SocketStream, Response]:
    """Send any GET-style request (even a malformed one) to an upload server.

    Returns the open stream, positioned at the response body, and the response head.
    ``patience``: the holder deadlines (default: the general connect and response ones).

    Raises:
        PeerGone: no connection, or the peer closed without answering.
        TimeoutError: no reply head in time.
    """
    connect = patience.connect if patience else limits.CONNECT_TIMEOUT
    try:
        stream = await open_socket_stream(host, port, ci.upload_client_connection(), connect)
    except UnicodeError as exc:  # a name the resolver's IDNA codec refuses
        raise PeerGone(f"cannot connect to {join_hostport(host, port)}: {exc}") from exc
    stream.on_bytes = _head_only(printer)
    try:
        await stream.send(request, EndOfMessage())
        head = await stream.next_event(limits.RESPONSE_TIMEOUT,
                                       idle=patience.first_byte if patience else None)
    except BaseException:
        await stream.aclose()
        raise
    if not isinstance(head, Response):
        await stream.aclose()
        raise PeerGone("the peer closed without answering")
    return stream, head


async def save_offer(folder: Path, name: str, offer: Offer,
                     short: type[P2PError] = PeerGone) -> int:
    """Write ``offer``'s body to ``folder/name`` (whole or not at all), then close it.

    Raises:
        ``short``: fewer bytes than announced arrived (default PeerGone).
        TooLarge: a body without a length grew beyond the room for it.
        PeerGone, TimeoutError: the holder went away or fell silent.
        LocalIOError: our folder refused the file (nothing is kept).
    """
    try:
        with AtomicFile(folder, name) as out:
            size = await receive_body(offer.stream, out.fd, offer.length, offer.room)
            if offer.length is not None and size != offer.length:
                raise short(f"got {size} of {offer.length} bytes")
            out.commit()
    except (TimeoutError, ConnectionError):
        raise
    except OSError as exc:  # our folder, not the holder: every holder would fail the same
        raise LocalIOError(f"cannot save it in {folder}: {exc.strerror or exc}",
                           exc.errno) from exc
    finally:
        await offer.release()
    return size


async def receive_body(stream: SocketStream, fd: int, length: int | None,
                       room: int = limits.MAX_DOWNLOAD) -> int:
    """Write a LENGTH-framed body to ``fd``: what the codec holds, then socket-to-file.

    Returns the bytes written; fewer than ``length`` means the peer closed early.

    Raises:
        TooLarge: without a ``length``, the body went on past ``room`` bytes.
    """
    size = 0
    while True:  # body bytes that arrived with the head
        event = stream.conn.next_event()
        if isinstance(event, Data):
            size += _write_within(fd, event.data, size, room)
        elif isinstance(event, EndOfMessage):
            return size
        else:
            break
    if length is not None:
        return size + await stream.recv_to_file(fd, length - size)
    while isinstance(event := await stream.next_event(limits.RESPONSE_TIMEOUT), Data):
        size += _write_within(fd, event.data, size, room)  # no Content-Length: until close
    return size


def _write_within(fd: int, data: bytes, size: int, room: int) -> int:
    if size + len(data) > room:
        raise TooLarge(f"sent more than the {room} bytes accepted")
    return os.write(fd, data)


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
