"""An HTTP server on the one server runtime: a route table of small GET/HEAD handlers.

Strategy: ``HttpServer`` is an ``App`` of ``net.runtime`` like every other server of
p2pshare: the runtime owns accept, admission (connection caps in all and per source
address), the head and idle deadlines and closing; the codec (``protocol.http``) owns
HTTP's framing rules and target decoding. What is left here is a dictionary from path to
handler, so that the dashboard, ``/metrics`` and a BitTorrent tracker's ``/announce``
share one port without knowing of each other.

A handler is called with the decoded path, the query (each field's raw byte values: a
tracker's ``info_hash`` is binary) and the client's address, and gives back
``(status, content type, body)``, at once or as an awaitable (run as a task the server
owns; the connection reads no further request until it is answered, so answers keep the
order of requests; its body is written in runs of ``COALESCE_BYTES``, each once the
client has read on, so that a client that asks for a big answer and does not read
holds a write buffer of it, not all of it). A handler that raises (a bug) is answered
500 and the connection closes. HEAD is answered by the GET handler, without the body. A path with no
handler is a 404 and a method other than GET or HEAD a 405; both keep the connection. A
malformed request gets its status (400, 413, 414, 501, 505) and the connection closes.
Every answer says ``Cache-Control: no-store`` (each route shows live state) and
``X-Content-Type-Options: nosniff``. Dashboards poll (``/api/state`` each second): no
response is streamed, so no connection
is held for ever and the runtime's idle deadline frees a browser's idle ones.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable

from .. import limits
from ..errors import Status
from ..host import join_hostport
from ..net.runtime import Answer, Link, Policy, Server
from ..protocol import Data, Event, Request
from ..protocol._grammar import http_date
from ..protocol.http import HttpConnection, Query, error_response, interpret, response

__all__ = ["Handler", "HttpServer", "Reply"]

log = logging.getLogger(__name__)

Reply = tuple[int, str, bytes]  # status, Content-Type, body
Handler = Callable[[str, Query, str], "Reply | Awaitable[Reply]"]
METHODS = ("GET", "HEAD")
INTERNAL_SERVER_ERROR = 500  # HTTP only: not a status of the p2pshare protocols


class HttpServer:
    """Serves registered routes over HTTP/1.1 (module docstring).

    Args:
        name: the server's name in logs and metrics.
        max_connections: connections at once, in all.
        max_per_source: connections at once from one source address.
        idle_timeout: seconds a keep-alive connection may rest between requests.
    """

    def __init__(self, name: str = "http", *,
                 max_connections: int = limits.HTTP_MAX_CONNECTIONS,
                 max_per_source: int = limits.HTTP_MAX_PER_SOURCE,
                 idle_timeout: float = limits.HTTP_IDLE_TIMEOUT) -> None:
        self.routes: dict[str, Handler] = {}
        policy = Policy(name, max_connections=max_connections, max_per_source=max_per_source,
                        idle_timeout=idle_timeout, keepalive=False)
        self.server = Server(self, HttpConnection, policy)

    def add_route(self, path: str, handler: Handler) -> None:
        """Answer GET and HEAD requests for ``path`` (exact, decoded: ``/api/state``).

        Raises:
            ValueError: ``path`` does not start with ``/`` or already has a handler.
        """
        if not path.startswith("/") or path in self.routes:
            raise ValueError(f"route {path!r} is taken or not a path")
        self.routes[path] = handler

    async def start(self, host: str | None = None, port: int = 0) -> tuple[str, int]:
        """Listen (host None: every address, IPv4 and IPv6); returns the bound address.

        Raises:
            OSError: the address cannot be bound.
        """
        address = await self.server.start(host, port)
        log.info("[%s] HTTP on %s", self.server.policy.name, join_hostport(*address))
        return address

    async def serve_forever(self) -> None:
        await self.server.serve_forever()

    async def aclose(self) -> None:
        await self.server.aclose()

    # ------------------------------------------------------------------ App
    def request(self, link: Link, request: Request, body: bytes) -> Answer:
        """Route ``request``: see the module docstring.

        Raises:
            RemoteProtocolError: a malformed target (``protocol.http.interpret``).
        """
        decoded = interpret(request)
        if request.method not in METHODS:
            return response(request, Status.METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                            b"405 Method Not Allowed\n", (("Allow", "GET, HEAD"), *_date()))
        handler = self.routes.get(decoded.path)
        if handler is None:
            return response(request, Status.NOT_FOUND, "text/plain; charset=utf-8",
                            b"404 Not Found\n", _date())
        try:
            reply = handler(decoded.path, decoded.query, link.peername[0])
            if inspect.isawaitable(reply):
                return self._later(link, request, reply)
            return response(request, *reply, _date())
        except Exception:  # a bug in one handler: a 500 and a close, the server goes on
            return self._broken(link)

    async def _later(self, link: Link, request: Request, reply: Awaitable[Reply]) -> None:
        try:
            answer = response(request, *(await reply), _date())
        except Exception:  # as in ``request``
            answer = self._broken(link)
        for event in answer:  # a big body in runs, each once the client has read on
            if isinstance(event, Data):
                for at in range(0, len(event.data), limits.COALESCE_BYTES):
                    await link.send(Data(event.data[at:at + limits.COALESCE_BYTES]))
            else:
                await link.send(event)

    def _broken(self, link: Link) -> list[Event]:
        """A handler raised: logged with its traceback, answered 500 (RFC 9110 section
        15.6.1) with ``Connection: close``, after which the codec closes."""
        log.exception("[%s] handler raised answering %s", self.server.policy.name, link.label)
        return error_response(INTERNAL_SERVER_ERROR)

    def error(self, link: Link, status: Status) -> list[Event]:
        return error_response(status)

    def connected(self, link: Link) -> None:
        pass

    def disconnected(self, link: Link) -> None:
        pass


def _date() -> tuple[tuple[str, str], ...]:
    """The headers of every answer: the Date an origin server with a clock sends (RFC
    9110 section 6.6.1); no cache keeps a copy of live state (RFC 9111 section 5.2.2.5);
    no browser sniffs a JSON of peers' titles into HTML."""
    return (("Date", http_date()), ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"))
