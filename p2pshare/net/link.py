"""One connection of the server runtime: bytes in, whole requests to the App, answers out.

Strategy: a ``Link`` is the asyncio ``Protocol`` of one accepted connection; ``Server``
(``net.runtime``) makes one per connection and owns it. Its bytes go to the sans-IO
``Connection``; each whole request goes to ``App.request``; answers are corked and written
together (``limits.COALESCE_BYTES``); the link keeps its own deadlines (``deadline`` for the
read side, ``stall_at`` for a write the client does not take) for the server's one sweep
to check, and counts the bytes it moves (``moved``), by which admission judges which
connection is least productive when one must make room. Every decision about the
protocol stays in the App and the codec.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from .. import limits, wirelog
from ..errors import P2PError, PeerGone, ProtocolError, RemoteProtocolError
from ..host import join_hostport, plain_ip
from ..protocol import (
    NEED_DATA,
    Connection,
    Data,
    EndOfMessage,
    Event,
    Request,
    Response,
    State,
)
from ..protocol._events import ConnectionClosed, _Sentinel
from .stream import SendTimes, keepalive, log_wire, send_times

if TYPE_CHECKING:
    from .runtime import Server

log = logging.getLogger(__name__)

FilePart = tuple[BinaryIO, int, int]  # (file, offset, count): bytes sent by ``sendfile``
QuickAnswer = bytes | list[bytes | FilePart]  # a quick answer: bytes, or parts in order


def now() -> float:
    """The running loop's clock (deadlines are loop times)."""
    return asyncio.get_running_loop().time()


class Link(asyncio.Protocol):
    """One connection: bytes to a ``Connection``, whole requests to the ``App``."""

    __slots__ = (
        "server", "conn", "owner", "peername", "deadline", "stall_at", "_stalled_size",
        "_due_first", "_head_armed", "_transport", "_request", "_body", "_busy", "_quick",
        "_at_rest", "_closing", "_released", "_lingering", "_out", "_out_size", "_corked",
        "_paused", "_drain_waiter", "_answered_later", "moved", "born", "_yielding",
        "_task", "received", "_asked", "_status")

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
        # The quick path logs nothing: on a connection made while the wire log is on, the
        # general path answers (the same bytes), and logs each message.
        # A watched server (``Server.observer``) counts every request: no quick path.
        self._quick = None if wirelog.enabled() or server.observer else server.quick
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
        self.moved = 0  # bytes received and sent: what admission judges productivity by
        self._yielding = False  # a turn's worth of requests answered: others go first
        self._task: asyncio.Task[None] | None = None  # the answer being produced, if any
        self.born = 0.0  # loop time the connection was made
        self.received = 0  # of ``moved``, the bytes received
        self._asked: tuple[str, float] | None = None  # watched: method, perf_counter at ask
        self._status = 0  # watched: the status of the answer being sent

    # ----------------------------------------------------------- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport = transport
        self.born = now()
        peer = transport.get_extra_info("peername")
        self.peername = (plain_ip(str(peer[0])), int(peer[1])) if peer else ("?", 0)
        if not self.server.admit(self):
            self._closing = self._released = True
            transport.abort()
            return
        policy = self.server.policy
        if policy.keepalive:
            keepalive(transport.get_extra_info("socket"))
        if policy.first_request_timeout is not None:
            self._due_first = now() + policy.first_request_timeout
        self._rest()
        self._at_rest = self._quick is not None
        self.server.app.connected(self)

    def data_received(self, data: bytes) -> None:
        self.moved += len(data)
        self.received += len(data)
        if self._at_rest:  # never once closing: close() and connection_lost clear it
            answer = self._quick(self, data)  # type: ignore[misc]
            if isinstance(answer, bytes):
                self._transport.write(answer)  # type: ignore[union-attr]
                return
            if answer is not None:
                try:
                    self._send_parts(answer)
                except (P2PError, OSError) as exc:
                    self.abort(f"answer failed ({exc!r})")
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
        if self._transport is not None and not (self._busy or self._closing or self._yielding):
            self._transport.resume_reading()
            self._process()  # requests that arrived while we held back

    # ----------------------------------------------------------- reading
    def _process(self) -> None:
        # Not while the client is not reading our answers (``pause_writing``): requests it
        # pipelined wait in the buffer, so what we hold for it stays bounded. Answers made
        # here are corked and written together at the end.
        self._corked = True
        turn = limits.REQUESTS_PER_TURN
        try:
            while not (self._busy or self._closing or self._paused or self._yielding):
                try:
                    event = self.conn.next_event()
                except RemoteProtocolError as exc:
                    self._fail(exc, f"malformed input ({exc})")
                    return
                if not isinstance(event, _Sentinel | EndOfMessage) and wirelog.enabled():
                    log_wire(wirelog.RECEIVED, self.label, (event,))
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
                    turn -= 1
                    if not turn:
                        self._yield_turn()
                elif isinstance(event, ConnectionClosed):
                    self.close("closed by the client")
                    return
                else:  # PAUSED cannot happen: we answer before reading on
                    return
        finally:
            self._corked = self._busy
            if not self._corked:
                self.flush()

    def _yield_turn(self) -> None:
        """Let the loop serve others before this link's next pipelined request: a read of
        many small requests costs one turn of ``REQUESTS_PER_TURN`` answers, not the
        whole read, however much the client packs into it."""
        self._yielding = True
        if self._transport is not None:
            self._transport.pause_reading()
        asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._yielding = False
        if self._transport is not None and not (self._busy or self._closing or self._paused):
            self._transport.resume_reading()
            self._process()

    def _rest(self) -> None:
        """Between requests: the first-request deadline, or the idle one, or none."""
        idle = self.server.policy.idle_timeout
        self._head_armed = False
        self.deadline = self._due_first or (now() + idle if idle is not None else None)

    def _arm_deadline(self) -> None:
        """Start the head deadline once a request has begun to arrive; none while what is
        held is only blank lines between requests."""
        if self.conn.at_rest:
            if self._head_armed:
                self._rest()
        elif not self._head_armed:
            self._head_armed = True
            due = now() + self.server.policy.head_timeout
            self.deadline = min(due, self._due_first) if self._due_first else due

    def _dispatch(self) -> None:
        request, body = self._request, b"".join(self._body)
        assert request is not None
        self._request, self._body = None, []
        if self.server.observer is not None:
            self._asked, self._status = (request.method, time.perf_counter()), 0
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
        self._answer_later(answer)

    def _answer_later(self, answer: Coroutine[Any, Any, None]) -> None:
        """Finish ``answer`` in a task; no further request is read until it ends."""
        self._busy = self._corked = self._answered_later = True
        self.deadline = None  # the answer's own writes are watched by the stall deadline
        if self._transport is not None:
            self._transport.pause_reading()
        self._task = self.server.tasks.spawn(self._finish(answer))
        # a task cancelled before its first step never starts the answer: close it then
        self._task.add_done_callback(lambda _task: answer.close())

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
        if self._transport is not None and not (self._closing or self._paused or
                                                self._yielding):
            self._transport.resume_reading()
            self._process()

    def _answered(self) -> None:
        """After each answer: a one-exchange connection closes; any other rests."""
        if self._asked is not None:
            self._observe()
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
        if self._asked is None and self.server.observer is not None:
            self._asked = ("", time.perf_counter())  # malformed: counted as method "other"
        if status is not None and self.conn.our_state is State.IDLE:
            try:
                self.send_now(*self.server.app.error(self, status))
            except P2PError:
                pass
        self._observe()
        self.close(reason, linger=True)

    def _observe(self) -> None:
        """Tell the server's observer of the request just answered (or failed)."""
        asked, self._asked = self._asked, None
        observer = self.server.observer
        if asked is not None and observer is not None:
            observer.answered(self.server.policy.name, asked[0], self._status,
                              time.perf_counter() - asked[1])

    # ----------------------------------------------------------- writing
    def _send_parts(self, parts: list[bytes | FilePart]) -> None:
        """Write a quick answer of parts, bytes corked and file bytes by ``os.sendfile``
        at once while the socket takes them whole; from the first part it does not take
        whole, the rest goes as it drains (a task; no further request read until then)."""
        self._rest()
        for at, part in enumerate(parts):
            if isinstance(part, bytes):
                self._cork(part)
                continue
            file, offset, count = part
            sent = self._file_now(file, offset, count)
            if sent != count:
                self._answer_later(self._send_parts_later(
                    [(file, offset + sent, count - sent), *parts[at + 1:]]))
                return
        self.flush()

    async def _send_parts_later(self, parts: list[bytes | FilePart]) -> None:
        for part in parts:
            if isinstance(part, bytes):
                self._cork(part)
            else:
                await self._send_file(*part)

    def send_now(self, *events: Event) -> None:
        """Encode ``events`` and write them (after the answer, if corked)."""
        data = self.conn.send_all(*events)
        if self._asked is not None:
            self._status = next((e.status for e in events if isinstance(e, Response)),
                                self._status)
        if data:
            if wirelog.enabled():
                log_wire(wirelog.SENT, self.label, events)
            self._cork(data)
            if not self._corked or self._out_size >= limits.COALESCE_BYTES:
                self.flush()

    def flush(self) -> None:
        """Write what is corked, with one call."""
        if not self._out:
            return
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self.moved += self._out_size
        self._out, self._out_size = [], 0
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    async def send(self, *events: Event) -> None:
        """Write ``events``, waiting while the client is not reading (streamed replies).
        Each ``COALESCE_BYTES`` written lets the loop serve others first: the kernel takes
        megabytes from a fast or stalling reader before asyncio sees any backpressure, and
        a long reply must not hold the loop for all of that.

        Raises:
            PeerGone: the connection closed.
        """
        await self.drain()
        before = self.moved
        self.send_now(*events)
        if self.moved != before:  # flushed a full cork
            await asyncio.sleep(0)  # a turn for others, not synchronisation
            if self._closing:
                raise PeerGone("connection closed")

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
        if wirelog.enabled():
            wirelog.message(wirelog.SENT, self.label, f"[{count} body bytes]")
        await self._send_file(file, offset, count)
        self._note_sent(count)

    async def _send_file(self, file: BinaryIO, offset: int, count: int) -> None:
        """``sendfile`` without the codec's count (a quick answer is not the codec's)."""
        if self._out_size + count <= limits.COALESCE_BYTES:
            self._cork_file(file, offset, count)
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
            self.moved += sent
            done += sent
            if sent != run:
                raise PeerGone(f"sent {done} of {count} bytes")

    def sendfile_now(self, file: BinaryIO, offset: int, count: int) -> int:
        """Send what the socket takes at once of ``count`` bytes of ``file`` from
        ``offset``, after what is corked, without waiting: returns how many went (the
        caller sends the rest with ``sendfile``). One ``os.sendfile`` call when nothing is
        buffered in the transport, or corked with the rest when it all fits in
        ``limits.COALESCE_BYTES``: a piece that the socket takes whole costs no task, no
        future and no writer registration. 0 while the wire log is on (``sendfile`` logs).

        Raises:
            PeerGone: the connection failed, or the file shrank.
        """
        if wirelog.enabled():
            return 0
        sent = self._file_now(file, offset, count)
        self._note_sent(sent)
        return sent

    def _file_now(self, file: BinaryIO, offset: int, count: int) -> int:
        """``sendfile_now`` without the codec's count."""
        if self._out_size + count <= limits.COALESCE_BYTES:
            self._cork_file(file, offset, count)
            return count
        self.flush()
        transport = self._transport
        if transport is None or transport.is_closing() or self._paused \
                or transport.get_write_buffer_size():
            return 0
        try:
            sent = os.sendfile(transport.get_extra_info("socket").fileno(), file.fileno(),
                               offset, count)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise PeerGone(str(exc)) from exc
        self.moved += sent
        return sent

    def _note_sent(self, count: int) -> None:
        """``count`` bytes of a body went by ``sendfile`` (the codec counts them)."""
        self.conn.note_body_sent(count)

    def _cork_file(self, file: BinaryIO, offset: int, count: int) -> None:
        data = os.pread(file.fileno(), count, offset)
        if len(data) != count:
            raise PeerGone(f"file shrank: {len(data)} of {count} bytes")
        self._cork(data)

    def _cork(self, data: bytes) -> None:
        """Hold ``data`` to go out with what follows (``flush`` writes it all at once)."""
        self._out.append(data)
        self._out_size += len(data)

    async def _sendfile_run(self, file: BinaryIO, offset: int, count: int) -> int:
        """Up to ``count`` bytes of ``file`` from ``offset`` by ``os.sendfile`` (zero copy),
        as the socket takes them: one call at once, then one each time the socket is
        writable again. asyncio's ``loop.sendfile`` does the same with a future per run and
        uvloop has none; the loop keeps the socket's own descriptor for its transport, so
        the writable callback watches a duplicate of it. Returns less than ``count`` only
        at the end of the file.

        Raises:
            PeerGone: the connection closed or failed.
        """
        transport = self._transport
        if transport is None or transport.is_closing():
            raise PeerGone("connection closed")
        out = transport.get_extra_info("socket").fileno()
        loop = asyncio.get_running_loop()
        done, watch = 0, -1
        try:
            while done < count:
                sent = 0
                if not transport.get_write_buffer_size():  # our bytes after the transport's
                    try:
                        sent = os.sendfile(out, file.fileno(), offset + done, count - done)
                    except BlockingIOError:
                        sent = -1
                    except OSError as exc:
                        raise PeerGone(str(exc)) from exc
                    if sent == 0:
                        break  # the end of the file
                if sent > 0:
                    done += sent
                    continue
                if watch < 0:
                    watch = os.dup(out)
                await _writable(loop, watch)
                if self._closing or transport.is_closing():
                    raise PeerGone("connection closed")
        finally:
            if watch >= 0:
                os.close(watch)
        return done

    def _measure_stall(self) -> None:
        transport = self._transport
        if transport is not None:
            self._stalled_size = transport.get_write_buffer_size()
            self.stall_at = now() + self.server.policy.write_stall_timeout

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

    def send_times(self) -> SendTimes | None:
        """The kernel's account of this connection's sending (``stream.send_times``)."""
        transport = self._transport
        return None if transport is None else send_times(transport.get_extra_info("socket"))

    def productivity(self) -> float:
        """Bytes moved per second of the connection's life (at least one second): lower
        makes room first; a link already closing has nothing left to give."""
        if self._closing:
            return -1.0
        return self.moved / max(now() - self.born, 1.0)

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
        if self._after_answer(transport.close):
            return
        if transport.get_write_buffer_size():
            self._measure_stall()
        if linger and transport.can_write_eof():
            self._lingering = True
            transport.write_eof()
            transport.resume_reading()  # late input is dropped; the client's EOF ends this
            asyncio.get_running_loop().call_later(self.server.policy.linger, transport.close)
            return
        transport.close()

    def abort(self, reason: str) -> None:
        """Drop the connection and whatever is buffered for it, now."""
        log.debug("%s: aborting %s: %s", self.server.policy.name, self.label, reason)
        self._closing = True
        self.stall_at = self.deadline = None
        self.server.release(self)
        transport = self._transport
        if transport is not None and not self._after_answer(transport.abort):
            transport.abort()

    def _after_answer(self, action: Callable[[], object]) -> bool:
        """If an answer is running in another task, cancel it and ``action`` once it has
        ended (it may be inside ``_sendfile_run``, which must undo its own hold on the
        transport before the transport goes); True if so."""
        task = self._task
        if task is None or task.done() or task is asyncio.current_task():
            return False
        task.cancel()
        task.add_done_callback(lambda _task: action())
        return True


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Wait until ``fd`` is writable (a writer callback, removed again however we end)."""
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)
