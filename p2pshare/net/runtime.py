"""The one server runtime: accept, admission, deadlines, writing and closing, for every server.

Strategy: a server does not write a loop; it declares a ``Policy`` (limits and deadlines,
as data) and an ``App`` (what to answer), and ``Server`` does the rest, the same way for
the index server, the registration server, the upload server, the DI RFC server and the
swarm piece server:

* **Listening.** ``start(None, port)`` (or ``""``) listens on every address, IPv4 and
  IPv6, with ONE dual-stack socket (IPv6 with ``IPV6_V6ONLY`` off, bound to ``::``), so
  that port 0 picks one port for both families; a machine without IPv6 gets ``0.0.0.0``.
  An explicit address (``127.0.0.1``, ``::1``, ``0.0.0.0``, ``::``) binds that one only.
  An IPv4 client of the dual-stack socket shows as ``::ffff:a.b.c.d``; ``Link`` records
  it as ``a.b.c.d`` (``host.plain_ip``), so admission, records and logs see one address.
* **Accept and admission.** asyncio's ``create_server`` accepts; ``Server.admit`` counts
  connections in all and per source address (``max_connections``, ``max_per_source``).
  Beyond a cap, the least productive connection of the address that holds the most makes
  room for the newcomer, or the newcomer is closed at once (``net.admission``): no running
  out of descriptors, and one address cannot take every slot nor keep others out.
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
  replies stream under backpressure, yielding the loop after each ``COALESCE_BYTES``.
* **Turns.** A link answers at most ``limits.REQUESTS_PER_TURN`` pipelined requests, then
  lets the loop serve others: no client's read, however packed, holds everyone else.
* **Closing.** ``Link.close(reason)`` logs the reason at debug level and tells the App at
  once (``disconnected``: the index drops the peer's records then, not when the socket is
  finally gone). A close that may meet unread input lingers: half-close, drop input, and
  close when the client closes (``eof_received`` ends the linger at once) or after
  ``linger``. An answer that raises is answered with its status where the protocol still
  allows, and the connection is closed; its slot is always freed.

Quick answers: an App may also give ``quick``, which sees the bytes of one read while the
connection is at rest and may answer them whole, skipping the codec's general path: as
bytes (the index server's LOOKUP, ``protocol.ci.quick_lookup``), or as parts, bytes and
ranges of files that go by ``sendfile`` (the piece server's pipelined PIECE requests,
``protocol.swarm.quick_pieces``: one pass for all the requests of a read).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import limits
from ..errors import Status
from ..protocol import Connection, Event, Request
from .admission import Admission
from .link import FilePart, Link, QuickAnswer, now

__all__ = ["Answer", "App", "FilePart", "Link", "Observer", "Policy", "Quick", "QuickAnswer",
           "Server", "TaskOwner",
           "all_addresses", "raise_fd_limit"]

log = logging.getLogger(__name__)

BACKLOG = 4096  # connections the kernel queues for accept
FD_SPARE = 64  # descriptors beyond the connection limit: listeners, files being sent, logs
SWEEP_INTERVAL = 1.0 * limits.SECONDS  # how often deadlines are checked

# (the link, one read that is one or more whole requests) -> their whole answer, or None
Quick = Callable[[Link, bytes], "QuickAnswer | None"]
Answer = list[Event] | Coroutine[Any, Any, None]


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
        evict: when a cap is reached, the least productive connection of the address
            holding the most makes room for a newcomer (``net.admission``); False: refuse.
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
    evict: bool = True

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


class Observer(Protocol):
    """What watches a server's requests (``web.metrics``): told of every request answered
    through ``App.request`` (not of ``quick`` answers: a watched server gives none)."""

    def answered(self, server: str, method: str, status: int, seconds: float) -> None:
        """``method`` (as sent) got ``status`` after ``seconds`` (to its last byte
        handed to the transport; 0 status: the connection failed first)."""


class TaskOwner:
    """Owns tasks the way a ``TaskGroup`` does, for a server whose life is ``start`` ...
    ``aclose`` rather than one ``async with``: every task it starts is tracked, and
    ``aclose`` cancels them all and waits for them to end."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self, timeout: float = 5.0) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


class Server:
    """Listens, admits, sweeps deadlines and owns the answer tasks of one ``App``."""

    def __init__(self, app: App, conn_factory: Callable[[], Connection], policy: Policy, *,
                 quick: Quick | None = None, link_class: type[Link] = Link) -> None:
        if quick is not None and (policy.first_request_timeout or policy.one_exchange):
            raise ValueError("quick answers are for persistent connections only")
        self.app = app
        self.conn_factory = conn_factory
        self.policy = policy
        self.quick = quick
        self.link_class = link_class  # a byte-stream protocol's: ``net.streamlink``
        self.links: set[Link] = set()
        self.admission: Admission[Link] = Admission(policy.max_connections,
                                                    policy.max_per_source, evict=policy.evict)
        self.refused = 0  # newcomers turned away
        self.evicted = 0  # connections that made room for a newcomer
        # newcomers refused and connections evicted, by (cap reached, "refused"/"evicted")
        self.refusals: Counter[tuple[str, str]] = Counter()
        self.bytes_gone = [0, 0]  # bytes in and out of connections now closed
        self.observer: Observer | None = None  # set before ``start``: watches requests
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

    @property
    def hosts(self) -> list[str]:
        """Every bound host (a name can bind one address of each family); empty before
        ``start``."""
        sockets = self._server.sockets if self._server is not None else ()
        return [str(sock.getsockname()[0]) for sock in sockets]

    async def start(self, host: str | None, port: int) -> tuple[str, int]:
        """Bind and listen on ``host`` (None or ``""``: every address, IPv4 and IPv6, one
        socket); returns the bound address (port 0 picks a free port).

        Raises:
            OSError: the address cannot be bound (in use, not ours, does not resolve).
        """
        raise_fd_limit(self.policy.max_connections + FD_SPARE)
        loop = asyncio.get_running_loop()

        def factory() -> Link:
            return self.link_class(self, self.conn_factory())

        if host:
            self._server = await loop.create_server(factory, host, port, backlog=BACKLOG,
                                                    reuse_address=True)
        else:
            self._server = await loop.create_server(factory, sock=all_addresses(port),
                                                    backlog=BACKLOG)
        self.tasks.spawn(self._sweep())
        return self.address

    async def serve_forever(self) -> None:
        if self._server is None:
            raise RuntimeError("server not started")
        await self._server.serve_forever()

    @property
    def bytes_moved(self) -> tuple[int, int]:
        """Bytes received and sent by every connection so far, closed or open."""
        live_in = sum(link.received for link in self.links)
        live_all = sum(link.moved for link in self.links)
        return self.bytes_gone[0] + live_in, self.bytes_gone[1] + live_all - live_in

    @property
    def per_source(self) -> dict[str, int]:
        """Connections held now, per source address."""
        return {source: len(held) for source, held in self.admission.by_source.items()}

    def admit(self, link: Link) -> bool:
        """Give ``link`` a slot, making room as ``net.admission`` decides, or refuse it."""
        verdict = self.admission.admit(link, link.peername[0], Link.productivity)
        if verdict.why:
            self.refusals[verdict.cap, "evicted" if verdict.admitted else "refused"] += 1
        if not verdict.admitted:
            self.refused += 1
            log.warning("%s: %s reached, refusing %s", self.policy.name, verdict.why,
                        link.label)
            return False
        if verdict.evict is not None:
            self.evicted += 1
            log.info("%s: %s reached: %s makes room for %s", self.policy.name, verdict.why,
                     verdict.evict.label, link.label)
            verdict.evict.abort(f"evicted for {link.label}")
            self.forget(verdict.evict)
        self.links.add(link)
        return True

    def release(self, link: Link) -> None:
        """Tell the App, once, that ``link`` is over."""
        if not link._released and link in self.links:
            link._released = True
            self.app.disconnected(link)

    def forget(self, link: Link) -> None:
        """``link``'s socket is gone (or it was evicted): free its slot."""
        if link in self.links:
            self.release(link)
            self.links.discard(link)
            self.bytes_gone[0] += link.received
            self.bytes_gone[1] += link.moved - link.received
            self.admission.remove(link, link.peername[0])

    async def _sweep(self) -> None:
        every = self.policy.sweep_every()
        while True:
            await asyncio.sleep(every)  # a periodic timer, not synchronisation
            t = now()
            for link in [lk for lk in self.links if (lk.deadline is not None and
                         lk.deadline < t) or (lk.stall_at is not None and lk.stall_at < t)]:
                link.expire(t)

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


def all_addresses(port: int) -> socket.socket:
    """A listening socket on every address, IPv4 and IPv6: one dual-stack socket bound
    to ``::``, or ``0.0.0.0`` when this machine has no IPv6 (``SO_REUSEADDR`` either way).

    Raises:
        OSError: the port is in use or cannot be bound.
    """
    if socket.has_dualstack_ipv6():
        try:
            return socket.create_server(("::", port), family=socket.AF_INET6,
                                        backlog=BACKLOG, dualstack_ipv6=True)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise
            log.info("no IPv6 to listen on (%s): listening on IPv4 only", exc)
    return socket.create_server(("0.0.0.0", port), backlog=BACKLOG)


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

