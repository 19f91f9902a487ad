"""The one server runtime: accept, admission, deadlines, writing and closing, for every server.

Strategy: a server does not write a loop; it declares a ``Policy`` (limits and deadlines,
as data) and an ``App`` (what to answer), and ``Server`` does the rest, the same way for
the index server, the registration server, the upload server, the DI RFC server and the
swarm piece server:

* **Accept and admission.** asyncio's ``create_server`` accepts; ``Server.admit`` counts
  connections in all and per source address (``max_connections``, ``max_per_source``) and
  refuses a newcomer beyond either, closing it at once: a clear refusal instead of running
  out of descriptors, and one address cannot take every slot.
* **No task per connection.** asyncio calls ``Link.data_received``; the bytes go to the
  sans-IO ``Connection``; each whole request is handed to ``App.request``, whose answer is
  either events (written at once, no task, no await) or a coroutine (a streamed LIST, a
  file, a throttled piece), run as a task that the server owns. While it runs, reading
  from that connection pauses, so replies keep the order of requests. A connection costs
  a few hundred bytes and a request no task switch: this is what lets one process hold
  ten thousand peers and answer small requests near the rate of a bare asyncio Protocol
  (bench/README.md). Every task a server starts is owned by it (``TaskOwner``): ``aclose``
  cancels and awaits them all, and none outlives the server.
* **Deadlines.** One sweep a second for the whole server, not a timer per request: a
  request must arrive whole within ``head_timeout`` of its first byte; a connection at
  rest for ``idle_timeout`` is closed (None: peers may stay silent; TCP keepalive notices
  a vanished host); a one-exchange connection's request is due ``first_request_timeout``
  after the connection is made; a client that takes none of our bytes for
  ``write_stall_timeout`` is cut off and what we buffered for it is dropped.
* **Writing.** Everything an answer writes is held back (corked) until the answer is done
  or ``limits.COALESCE_BYTES`` are waiting, then written with one call: a small reply
  (status line, data lines, final CRLF; a GET's headers with a small file) leaves as one
  segment, so clients that read a reply with a single ``recv()`` see all of it. Bigger
  replies stream under backpressure.
* **Closing.** ``Link.close(reason)`` logs the reason at debug level and tells the App at
  once (``disconnected``: the index drops the peer's records then, not when the socket is
  finally gone). A close that may meet unread input lingers: half-close, drop input, and
  close when the client closes (``eof_received`` ends the linger at once) or after
  ``linger``. An answer that raises is answered with its status where the protocol still
  allows, and the connection is closed; its slot is always freed.

Quick answers: an App may also give ``quick``, which sees the bytes of one read while the
connection is at rest and may answer them whole, as bytes, skipping the codec's general
path (the index server's LOOKUP, ``protocol.ci.quick_lookup``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol, cast

from .. import limits
from ..errors import P2PError, PeerGone, ProtocolError, RemoteProtocolError, Status
from ..host import join_hostport
from ..protocol import NEED_DATA, Connection, Data, EndOfMessage, Event, Request, State
from ..protocol._events import ConnectionClosed
from .stream import keepalive

log = logging.getLogger(__name__)

FD_SPARE = 64  # descriptors beyond the connection limit: listeners, files being sent, logs
SWEEP_INTERVAL = 1.0 * limits.SECONDS  # how often deadlines are checked

Quick = Callable[[bytes], "bytes | None"]  # one whole request's bytes -> its whole answer
Answer = list[Event] | Coroutine[Any, Any, None]


def _now() -> float:
    return asyncio.get_running_loop().time()


@dataclass(frozen=True, slots=True)
class Policy:
    """A server's limits and deadlines (defaults are read from ``limits`` when made).

    Attributes:
        name: the server's name in logs.
        max_connections: connections at once; a newcomer beyond it is closed at once.
        max_per_source: connections at once from one source address (IP).
        head_timeout: seconds for a request (head and body) from its first byte.
        idle_timeout: seconds a connection may rest between requests; None: for ever.
        first_request_timeout: seconds for the first request from the connection's start.
        one_exchange: close after the first answer.
        write_stall_timeout: seconds a client may take none of our bytes.
        linger: seconds a closing connection waits for the client's close.
        keepalive: TCP keepalive on every connection (long-lived, silent peers).
    """

    name: str
    max_connections: int = field(default_factory=lambda: limits.MAX_CONNECTIONS)
    max_per_source: int = field(default_factory=lambda: limits.MAX_CONNECTIONS_PER_SOURCE)
    head_timeout: float = field(default_factory=lambda: limits.HEAD_TIMEOUT)
    idle_timeout: float | None = None
    first_request_timeout: float | None = None
    one_exchange: bool = False
    write_stall_timeout: float = field(default_factory=lambda: limits.WRITE_STALL_TIMEOUT)
    linger: float = field(default_factory=lambda: limits.CLOSE_LINGER)
    keepalive: bool = True

    def sweep_every(self) -> float:
        """How often the sweep must run to keep every deadline within half of itself."""
        times = [t for t in (self.head_timeout, self.idle_timeout,
                             self.first_request_timeout, self.write_stall_timeout) if t]
        return min([SWEEP_INTERVAL, *(t / 2 for t in times)])


class App(Protocol):
    """What a ``Server`` needs from the application it serves."""

    def request(self, link: Link, request: Request, body: bytes) -> Answer:
        """Answer at once (events to send) or later (a coroutine that sends via ``link``)."""

    def error(self, link: Link, status: Status) -> list[Event]:
        """The reply to a request that failed with ``status`` (malformed, or a handler's
        ``ProtocolError``), sent before the connection closes."""

    def connected(self, link: Link) -> None:
        """A connection was admitted."""

    def disconnected(self, link: Link) -> None:
        """The connection ended (or began to close), for any reason; called once."""


class Link(asyncio.Protocol):
    """One connection: bytes to a ``Connection``, whole requests to the ``App``."""

    __slots__ = (
        "server", "conn", "owner", "peername", "deadline", "stall_at", "_stalled_size",
        "_due_first", "_head_armed", "_transport", "_request", "_body", "_busy", "_quick",
        "_at_rest", "_closing", "_released", "_lingering", "_out", "_out_size", "_corked",
        "_paused", "_drain_waiter", "_answered_later")

    def __init__(self, server: Server, conn: Connection) -> None:
        self.server = server
        self.conn = conn
        self.owner = object()  # identifies this connection's records in any index
        self.peername: tuple[str, int] = ("?", 0)
        self.deadline: float | None = None  # loop time by which the read side must progress
        self.stall_at: float | None = None  # loop time by which a stalled write must move
        self._stalled_size = 0  # bytes buffered when the write stall was last measured
        self._due_first: float | None = None  # the first request's deadline, if any
        self._head_armed = False  # a request has begun: the head deadline runs
        self._transport: asyncio.Transport | None = None
        self._request: Request | None = None
        self._body: list[bytes] = []
        self._busy = False  # an answer is being produced by a task
        self._quick = server.quick
        self._at_rest = False  # between requests, nothing buffered: ``quick`` may answer
        self._closing = False
        self._released = False  # the App was told ``disconnected``
        self._lingering = False
        self._out: list[bytes] = []  # corked output
        self._out_size = 0
        self._corked = False
        self._paused = False  # the client is not reading: asyncio called pause_writing
        self._drain_waiter: asyncio.Future[None] | None = None
        self._answered_later = False  # an answer ran as a task (reading was paused)

    # ----------------------------------------------------------- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peername = (str(peer[0]), int(peer[1])) if peer else ("?", 0)
        if not self.server.admit(self):
            self._closing = self._released = True
            transport.abort()
            return
        policy = self.server.policy
        if policy.keepalive:
            keepalive(transport.get_extra_info("socket"))
        if policy.first_request_timeout is not None:
            self._due_first = _now() + policy.first_request_timeout
        self._rest()
        self._at_rest = self._quick is not None
        self.server.app.connected(self)

    def data_received(self, data: bytes) -> None:
        if self._at_rest:  # never once closing: close() and connection_lost clear it
            answer = self._quick(data)  # type: ignore[misc]
            if answer is not None:
                self._transport.write(answer)  # type: ignore[union-attr]
                return
        if self._closing:
            return  # lingering after our last reply: late input is dropped
        self._at_rest = False
        self.conn.receive_data(data)
        self._process()

    def eof_received(self) -> bool:
        if self._lingering:  # the client closed: the linger ends now
            self._transport.close()  # type: ignore[union-attr]
            return False
        self.conn.receive_data(b"")
        self._process()
        return True  # keep our sending half open until our last reply is written

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._at_rest = False
        self._wake_writer()
        self.server.forget(self)

    def pause_writing(self) -> None:
        self._paused = True
        self._measure_stall()
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if not self._closing:
            self.stall_at = None
        self._wake_writer()
        if self._transport is not None and not self._busy and not self._closing:
            self._transport.resume_reading()
            self._process()  # requests that arrived while we held back

    # ----------------------------------------------------------- reading
    def _process(self) -> None:
        # Not while the client is not reading our answers (``pause_writing``): requests it
        # pipelined wait in the buffer, so what we hold for it stays bounded. Answers made
        # here are corked and written together at the end.
        self._corked = True
        try:
            while not self._busy and not self._closing and not self._paused:
                try:
                    event = self.conn.next_event()
                except RemoteProtocolError as exc:
                    self._fail(exc, f"malformed input ({exc})")
                    return
                if event is NEED_DATA:
                    self._arm_deadline()
                    self._at_rest = self._quick is not None and self.conn.at_rest
                    return
                if isinstance(event, Request):
                    self._request, self._body = event, []
                elif isinstance(event, Data):
                    self._body.append(event.data)
                elif isinstance(event, EndOfMessage):
                    self._dispatch()
                elif isinstance(event, ConnectionClosed):
                    self.close("closed by the client")
                    return
                else:  # PAUSED cannot happen: we answer before reading on
                    return
        finally:
            self._corked = self._busy
            if not self._corked:
                self.flush()

    def _rest(self) -> None:
        """Between requests: the first-request deadline, or the idle one, or none."""
        idle = self.server.policy.idle_timeout
        self._head_armed = False
        self.deadline = self._due_first or (_now() + idle if idle is not None else None)

    def _arm_deadline(self) -> None:
        """Start the head deadline once a request has begun to arrive; none while what is
        held is only blank lines between requests."""
        if self.conn.at_rest:
            if self._head_armed:
                self._rest()
        elif not self._head_armed:
            self._head_armed = True
            due = _now() + self.server.policy.head_timeout
            self.deadline = min(due, self._due_first) if self._due_first else due

    def _dispatch(self) -> None:
        request, body = self._request, b"".join(self._body)
        assert request is not None
        self._request, self._body = None, []
        try:
            answer = self.server.app.request(self, request, body)
        except (P2PError, OSError) as exc:
            self._fail(exc, f"request failed ({exc!r})")
            return
        except Exception as exc:  # a bug in one handler ends its connection, never the server
            log.exception("%s: request from %s raised", self.server.policy.name, self.label)
            self._fail(exc, "handler raised")
            return
        if isinstance(answer, list):
            self.send_now(*answer)
            self._answered()
            return
        self._busy = self._corked = self._answered_later = True
        self.deadline = None  # the answer's own writes are watched by the stall deadline
        if self._transport is not None:
            self._transport.pause_reading()
        self.server.tasks.spawn(self._finish(answer))

    async def _finish(self, answer: Coroutine[Any, Any, None]) -> None:
        reason = "answer cancelled"
        try:
            await answer
            reason = ""
        except (P2PError, OSError) as exc:
            reason = f"answer failed ({exc!r})"
        except Exception:  # a bug in one answer ends its connection, never the server
            log.exception("%s: answer to %s raised", self.server.policy.name, self.label)
            reason = "answer raised"
        finally:
            self._busy = self._corked = False
            if reason:
                self.close(reason)
        self.flush()
        self._answered()
        if not self._closing and self._transport is not None and not self._paused:
            self._transport.resume_reading()
            self._process()

    def _answered(self) -> None:
        """After each answer: a one-exchange connection closes; any other rests."""
        if self._closing:
            return
        if self.server.policy.one_exchange or self.conn.our_state is State.MUST_CLOSE:
            unread = bool(self.conn.trailing_data[0]) or self._answered_later
            self.close("answered", linger=unread)
        else:
            self._rest()

    def expire(self, now: float) -> None:
        """The sweep found this link past a deadline."""
        if self.stall_at is not None and self.stall_at < now:
            self._check_stall(now)
        if self.deadline is not None and self.deadline < now and not self._closing:
            self.close("too slow to send a request" if self._head_armed else "idle")

    def _fail(self, exc: Exception, reason: str) -> None:
        """Answer a failed request with its status where the protocol allows, then close."""
        status = exc.status if isinstance(exc, ProtocolError) else None
        if status is not None and self.conn.our_state is State.IDLE:
            try:
                self.send_now(*self.server.app.error(self, status))
            except P2PError:
                pass
        self.close(reason, linger=True)

    # ----------------------------------------------------------- writing
    def send_now(self, *events: Event) -> None:
        """Encode ``events`` and write them (after the answer, if corked)."""
        data = self.conn.send_all(*events)
        if data:
            self._out.append(data)
            self._out_size += len(data)
            if not self._corked or self._out_size >= limits.COALESCE_BYTES:
                self.flush()

    def flush(self) -> None:
        """Write what is corked, with one call."""
        if not self._out:
            return
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out, self._out_size = [], 0
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    async def send(self, *events: Event) -> None:
        """Write ``events``, waiting while the client is not reading (streamed replies).

        Raises:
            PeerGone: the connection closed.
        """
        await self.drain()
        self.send_now(*events)

    async def drain(self) -> None:
        """Wait until the client reads again (the stall deadline cuts off one that never
        does).

        Raises:
            PeerGone: the connection closed.
        """
        while self._paused and not self._closing:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter
        if self._closing:
            raise PeerGone("connection closed")

    async def sendfile(self, file: BinaryIO, offset: int, count: int) -> None:
        """Send ``count`` bytes of ``file`` from ``offset``: with what is corked when it all
        fits in ``limits.COALESCE_BYTES``, else by ``sendfile`` (zero copy) in runs of
        ``limits.SENDFILE_RUN``, each due within the write-stall deadline.

        Raises:
            PeerGone: the connection failed or stalled.
        """
        if self._out_size + count <= limits.COALESCE_BYTES:
            data = os.pread(file.fileno(), count, offset)
            if len(data) != count:
                raise PeerGone(f"file shrank: {len(data)} of {count} bytes")
            self._out.append(data)
            self._out_size += count
            self.conn.note_body_sent(count)
            return
        self.flush()
        done = 0
        while done < count:
            await self.drain()
            run = min(limits.SENDFILE_RUN, count - done)
            try:
                async with asyncio.timeout(self.server.policy.write_stall_timeout):
                    sent = await self._sendfile_run(file, offset + done, run)
            except TimeoutError as exc:
                self.abort("write stalled")  # bytes still buffered would never leave
                raise PeerGone(f"receiver stalled after {done} of {count} bytes") from exc
            self.conn.note_body_sent(sent)
            done += sent
            if sent != run:
                raise PeerGone(f"sent {done} of {count} bytes")

    async def _sendfile_run(self, file: BinaryIO, offset: int, count: int) -> int:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise PeerGone("connection closed")
        try:
            return await asyncio.get_running_loop().sendfile(transport, file, offset, count)
        except NotImplementedError:  # an event loop without sendfile (e.g. uvloop)
            return await self._copy_file(file, offset, count)
        except (ConnectionError, OSError, RuntimeError) as exc:  # RuntimeError: closing
            raise PeerGone(str(exc)) from exc

    async def _copy_file(self, file: BinaryIO, offset: int, count: int) -> int:
        sent = 0
        while sent < count:
            chunk = os.pread(file.fileno(), min(limits.RECV_CHUNK, count - sent), offset + sent)
            if not chunk:
                break
            await self.drain()
            self._transport.write(chunk)  # type: ignore[union-attr]
            sent += len(chunk)
        return sent

    def _measure_stall(self) -> None:
        transport = self._transport
        if transport is not None:
            self._stalled_size = transport.get_write_buffer_size()
            self.stall_at = _now() + self.server.policy.write_stall_timeout

    def _check_stall(self, now: float) -> None:
        transport = self._transport
        left = transport.get_write_buffer_size() if transport is not None else 0
        if left == 0 and not self._paused:
            self.stall_at = None
        elif left < self._stalled_size:  # slow, but taking bytes
            self._stalled_size, self.stall_at = left, now + self.server.policy.write_stall_timeout
        else:
            self.abort("write stalled")

    def _wake_writer(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ----------------------------------------------------------- closing
    @property
    def label(self) -> str:
        return join_hostport(*self.peername)

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def paused(self) -> bool:
        """The client is not reading our replies: we hold back until it does."""
        return self._paused

    def close(self, reason: str, *, linger: bool = False) -> None:
        """Close after what was written is sent; ``linger``: half-close first and drop late
        input until the client closes or ``linger`` seconds pass, so that our last reply
        is not cut off by a reset. The App hears of it at once."""
        self.flush()
        transport = self._transport
        if not self._closing:
            log.debug("%s: closing %s: %s", self.server.policy.name, self.label, reason)
        self._closing = True
        self._at_rest = False
        self.deadline = None
        self.server.release(self)
        self._wake_writer()
        if transport is None or transport.is_closing() or self._lingering:
            return
        if transport.get_write_buffer_size():
            self._measure_stall()
        if linger and transport.can_write_eof():
            self._lingering = True
            transport.write_eof()
            asyncio.get_running_loop().call_later(self.server.policy.linger, transport.close)
            return
        transport.close()

    def abort(self, reason: str) -> None:
        """Drop the connection and whatever is buffered for it, now."""
        log.debug("%s: aborting %s: %s", self.server.policy.name, self.label, reason)
        self._closing = True
        self.stall_at = self.deadline = None
        self.server.release(self)
        if self._transport is not None:
            self._transport.abort()


class TaskOwner:
    """Owns tasks the way a ``TaskGroup`` does, for a server whose life is ``start`` ...
    ``aclose`` rather than one ``async with``: every task it starts is tracked, and
    ``aclose`` cancels them all and waits for them to end."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self, timeout: float = 5.0) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


class Server:
    """Listens, admits, sweeps deadlines and owns the answer tasks of one ``App``."""

    def __init__(self, app: App, conn_factory: Callable[[], Connection], policy: Policy, *,
                 quick: Quick | None = None) -> None:
        if quick is not None and (policy.first_request_timeout or policy.one_exchange):
            raise ValueError("quick answers are for persistent connections only")
        self.app = app
        self.conn_factory = conn_factory
        self.policy = policy
        self.quick = quick
        self.links: set[Link] = set()
        self.per_source: dict[str, int] = {}
        self.refused = 0
        self.tasks = TaskOwner()
        self._server: asyncio.Server | None = None

    @property
    def active(self) -> int:
        """Connections open now (closing ones included until their socket is gone)."""
        return len(self.links)

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("server not started")
        addr = self._server.sockets[0].getsockname()
        return str(addr[0]), int(addr[1])

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and listen; returns the bound address (port 0 picks a free port)."""
        raise_fd_limit(self.policy.max_connections + FD_SPARE)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Link(self, self.conn_factory()), host, port, backlog=4096,
            reuse_address=True)
        self.tasks.spawn(self._sweep())
        return self.address

    async def serve_forever(self) -> None:
        if self._server is None:
            raise RuntimeError("server not started")
        await self._server.serve_forever()

    def admit(self, link: Link) -> bool:
        source = link.peername[0]
        count = self.per_source.get(source, 0)
        if len(self.links) >= self.policy.max_connections:
            why = f"connection limit {self.policy.max_connections}"
        elif count >= self.policy.max_per_source:
            why = f"per-source limit {self.policy.max_per_source}"
        else:
            self.links.add(link)
            self.per_source[source] = count + 1
            return True
        self.refused += 1
        log.warning("%s: %s reached, refusing %s", self.policy.name, why, link.label)
        return False

    def release(self, link: Link) -> None:
        """Tell the App, once, that ``link`` is over."""
        if not link._released and link in self.links:
            link._released = True
            self.app.disconnected(link)

    def forget(self, link: Link) -> None:
        """``link``'s socket is gone: free its slot."""
        if link in self.links:
            self.release(link)
            self.links.discard(link)
            source = link.peername[0]
            left = self.per_source[source] - 1
            if left:
                self.per_source[source] = left
            else:
                del self.per_source[source]

    async def _sweep(self) -> None:
        every = self.policy.sweep_every()
        while True:
            await asyncio.sleep(every)  # a periodic timer, not synchronisation
            now = _now()
            for link in [lk for lk in self.links if (lk.deadline is not None and
                         lk.deadline < now) or (lk.stall_at is not None and lk.stall_at < now)]:
                link.expire(now)

    async def aclose(self) -> None:
        """Stop listening, close every connection, end every task."""
        if self._server is not None:
            self._server.close()
        for link in list(self.links):
            link.close("server closing")
            self.forget(link)
        await self.tasks.aclose()
        if self._server is not None:
            await self._server.wait_closed()


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft open-file limit towards ``wanted`` (never above the hard
    limit); returns the soft limit now in force. Servers need one descriptor per peer."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit to %d", target)
    return soft

