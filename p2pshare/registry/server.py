"""The registration server (RS): ``p2pshare rs``, one message per connection.

Strategy: the server runtime (``net.runtime``, as the index server; no task per connection)
feeds each connection's bytes to the P2P-DI server ``Connection``; the one request is
handed to ``request``, where ``answer`` maps it to a reply using the ``Registry`` (pure);
the reply is written at once and the connection closes (docs/p2p-di.md#di-connections). The whole
request must arrive within ``FIRST_REQUEST_TIMEOUT`` of the connection being made; a
malformed one gets its status, then the close: a bad or silent client costs its own
connection, never the server.

Given ``shared`` (``registry.shared``, ``p2pshare rs --store redis://...``), the store's part
of each answer is a coroutine (one Lua script) and ``reply`` makes the same reply of it
(docs/scale-out.md#rs-keys).
"""

from __future__ import annotations

import logging
import math

from .. import limits
from ..errors import Status
from ..host import join_hostport
from ..net.runtime import Answer, Link, Policy, Server
from ..protocol import Data, EndOfMessage, Event, Request, Response, di
from . import wire
from .store import Outcome, Page, Refusal, Registry, RegistryStore

log = logging.getLogger(__name__)


def answer(registry: Registry, msg: di.DIRequest | di.Rejected, source: str = ""
           ) -> tuple[Response, bytes]:
    """The RS's reply to one interpreted request from ``source`` (an IP; pure: no I/O)."""
    if not isinstance(msg, _RS_MESSAGES):
        return not_for_rs(msg)
    return reply(msg, registry.outcome(msg, source), registry.ttl)


_RS_MESSAGES = (di.Register, di.KeepAlive, di.Leave, di.PQuery)  # a tuple: the quick check


def not_for_rs(msg: di.DIRequest | di.Rejected) -> tuple[Response, bytes]:
    """The reply to what is not an RS message (rejected by the codec, or a peer's)."""
    if isinstance(msg, di.Rejected):
        return di.rejected(msg), b""
    return di.response(Status.BAD_REQUEST, reason="Not An RS Request"), b""


def reply(msg: di.RSRequest, outcome: Outcome, ttl: float) -> tuple[Response, bytes]:
    """The reply to ``msg`` given what the store made of it (either store)."""
    if isinstance(outcome, Refusal):
        return _refusal(outcome), b""
    if isinstance(msg, di.Register):
        assert isinstance(outcome, int)
        return di.registered(outcome, math.ceil(ttl)), b""
    if isinstance(msg, di.KeepAlive):
        return di.kept_alive(math.ceil(ttl)), b""
    if isinstance(msg, di.Leave):
        return di.response(Status.OK), b""
    assert isinstance(outcome, Page)
    if not outcome.body and outcome.next_offset is None:
        return di.no_active_peers(), b""
    return di.list_head(outcome.body, outcome.next_offset), outcome.body


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
                 *, max_connections: int = limits.MAX_CONNECTIONS,
                 shared: RegistryStore | None = None) -> None:
        self.registry = registry if registry is not None else Registry()
        self.shared = shared  # the peer list on a shared store (``registry.shared``)
        self.trace = trace
        self._refused: dict[str, int] = {}  # Registers refused, by reason phrase
        policy = Policy("rs", max_connections=max_connections, one_exchange=True,
                        first_request_timeout=limits.FIRST_REQUEST_TIMEOUT, keepalive=False)
        self._server = Server(self, di.server_connection, policy)

    async def start(self, host: str | None = None, port: int = limits.RS_PORT
                    ) -> tuple[str, int]:
        """Bind and listen; returns the bound address (port 0 picks a free one).

        Raises:
            OSError: cannot listen. StoreUnreachable: the shared store does not answer.
        """
        if self.shared is not None:
            await self.shared.start()
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
        if self.shared is not None:
            await self.shared.aclose()

    # ------------------------------------------------------------------ App
    def request(self, link: Link, request: Request, body: bytes) -> Answer:
        if self.trace is not None:
            self.trace(wire.show(f"<<< from {link.label}", request))
        msg = di.interpret(request)
        if self.shared is not None and isinstance(msg, _RS_MESSAGES):
            return self._answer_shared(link, msg, self.shared)
        head, payload = answer(self.registry, msg, link.peername[0])
        if head.status == Status.OK and log.isEnabledFor(logging.INFO):
            self._log_change(msg, head)
        elif head.status == Status.BUSY:
            self._log_budget(link, head)
        return self._reply(link, head, payload)

    async def _answer_shared(self, link: Link, msg: di.RSRequest,
                             shared: RegistryStore) -> None:
        """The reply from the shared store (one Lua script); no change log lines: the
        store keeps no registration history."""
        head, payload = reply(msg, await shared.apply(msg, link.peername[0]), shared.ttl)
        if head.status == Status.BUSY:
            self._log_budget(link, head)
        for event in self._reply(link, head, payload):
            await link.send(event)

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
        if count & (count - 1):
            return
        if self.shared is not None:  # its counts are in Redis
            log.warning("[RS] %s: Register from %s refused (%d time(s) so far)", head.reason,
                        link.peername[0], count)
            return
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
