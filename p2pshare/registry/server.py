"""The registration server (RS): ``p2pshare rs``, one message per connection.

Strategy: the server runtime (``net.runtime``, as the index server; no task per connection)
feeds each connection's bytes to the P2P-DI server ``Connection``; the one request is
handed to ``request``, where ``answer`` maps it to a reply using the ``Registry`` (pure);
the reply is written at once and the connection closes (docs/p2p-di.md#di-connections). The whole
request must arrive within ``FIRST_REQUEST_TIMEOUT`` of the connection being made; a
malformed one gets its status, then the close: a bad or silent client costs its own
connection, never the server.
"""

from __future__ import annotations

import logging
import math

from .. import limits
from ..errors import Status
from ..host import join_hostport
from ..net.runtime import Link, Policy, Server
from ..protocol import Data, EndOfMessage, Event, Request, Response, di
from . import wire
from .store import Refusal, Registry

log = logging.getLogger(__name__)


def answer(registry: Registry, msg: di.DIRequest | di.Rejected, source: str = ""
           ) -> tuple[Response, bytes]:
    """The RS's reply to one interpreted request from ``source`` (an IP; pure: no I/O)."""
    if isinstance(msg, di.Rejected):
        return di.rejected(msg), b""
    ttl = math.ceil(registry.ttl)
    if isinstance(msg, di.Register):
        rec = registry.register(msg.host, msg.port, msg.cookie, source)
        if isinstance(rec, Refusal):
            return _refusal(rec), b""
        return di.registered(rec.cookie, ttl), b""
    if isinstance(msg, di.KeepAlive):
        refusal = registry.keep_alive(msg.cookie)
        return (_refusal(refusal) if refusal else di.kept_alive(ttl)), b""
    if isinstance(msg, di.Leave):
        refusal = registry.leave(msg.cookie)
        return (_refusal(refusal) if refusal else di.response(Status.OK)), b""
    if isinstance(msg, di.PQuery):
        page = registry.listing(msg.cookie, msg.offset)
        if isinstance(page, Refusal):
            return _refusal(page), b""
        if not page.body and page.next_offset is None:
            return di.no_active_peers(), b""
        return di.list_head(page.body, page.next_offset), page.body
    return di.response(Status.BAD_REQUEST, reason="Not An RS Request"), b""


_REFUSALS = {
    Refusal.INACTIVE: (Status.CONFLICT, di.NOT_ACTIVE),
    Refusal.ADDRESS_TAKEN: (Status.CONFLICT, di.ADDRESS_IN_USE),
    Refusal.SOURCE_FULL: (Status.BUSY, di.SOURCE_FULL),
    Refusal.FULL: (Status.BUSY, di.RS_FULL),
}


def _refusal(refusal: Refusal) -> Response:
    if refusal is Refusal.UNKNOWN:
        return di.unknown_cookie()
    status, reason = _REFUSALS[refusal]
    return di.response(status, reason=reason)


class RegistrationServer:
    """Serves one ``Registry`` over TCP.

    Args:
        registry: the peer list (inject one with a test clock).
        trace: called with every message received and sent, ready to print.
        max_connections: connections served at once; more are closed at once.
    """

    def __init__(self, registry: Registry | None = None, trace: wire.Trace | None = None,
                 *, max_connections: int = limits.MAX_CONNECTIONS) -> None:
        self.registry = registry if registry is not None else Registry()
        self.trace = trace
        self._refused: dict[str, int] = {}  # Registers refused, by reason phrase
        policy = Policy("rs", max_connections=max_connections, one_exchange=True,
                        first_request_timeout=limits.FIRST_REQUEST_TIMEOUT, keepalive=False)
        self._server = Server(self, di.server_connection, policy)

    async def start(self, host: str | None = None, port: int = limits.RS_PORT
                    ) -> tuple[str, int]:
        """Bind and listen; returns the bound address (port 0 picks a free one)."""
        return await self._server.start(host, port)

    @property
    def address(self) -> tuple[str, int]:
        return self._server.address

    @property
    def server(self) -> Server:
        """The runtime server (for metrics: ``web.metrics``)."""
        return self._server

    async def serve_forever(self) -> None:
        await self._server.serve_forever()

    async def aclose(self) -> None:
        await self._server.aclose()

    # ------------------------------------------------------------------ App
    def request(self, link: Link, request: Request, body: bytes) -> list[Event]:
        if self.trace is not None:
            self.trace(wire.show(f"<<< from {link.label}", request))
        msg = di.interpret(request)
        head, payload = answer(self.registry, msg, link.peername[0])
        if head.status == Status.OK and log.isEnabledFor(logging.INFO):
            self._log_change(msg, head)
        elif head.status == Status.BUSY:
            self._log_budget(link, head)
        return self._reply(link, head, payload)

    def error(self, link: Link, status: Status) -> list[Event]:
        return self._reply(link, di.response(status), b"")

    def connected(self, link: Link) -> None:
        pass

    def disconnected(self, link: Link) -> None:
        pass

    def _reply(self, link: Link, head: Response, body: bytes) -> list[Event]:
        if self.trace is not None:
            self.trace(wire.show(f">>> to {link.label}", head, body))
        return [head, Data(body), EndOfMessage()] if body else [head, EndOfMessage()]

    def _log_budget(self, link: Link, head: Response) -> None:
        """A Register refused over a budget: logged at the 1st, 2nd, 4th, 8th... refusal
        for that reason, so a flood costs a few log lines, not one per request."""
        count = self._refused[head.reason] = self._refused.get(head.reason, 0) + 1
        if count & (count - 1) == 0:
            log.warning("[RS] %s: Register from %s refused (%d time(s) so far; %d records "
                        "from there, %d in all)", head.reason, link.peername[0], count,
                        self.registry.held(link.peername[0]), self.registry.held())

    def _log_change(self, msg: di.DIRequest | di.Rejected, head: Response) -> None:
        """The RS's own log lines: who registered or left, and how many are active."""
        if isinstance(msg, di.Leave):
            log.info("[RS] peer %d left; %d active", msg.cookie, self.registry.active_count())
        if not isinstance(msg, di.Register):
            return
        view = self.registry.view(di.parse_registered(head)[0])
        if view is not None:
            log.info("[RS] peer %d registered at %s (%d time(s) in 30 days); %d active",
                     view.cookie, join_hostport(view.hostname, view.port), view.registrations,
                     self.registry.active_count())
