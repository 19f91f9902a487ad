"""A peer's side of the RS messages: Register, KeepAlive, PQuery, Leave.

Strategy: ``RSClient`` remembers what the RS gave it (cookie, TTL) and what it registered
(hostname, RFC-server port), so each call is one message on one new connection
(docs/p2p-di.md#di-connections). A 409 means the RS no longer knows us as active (our TTL ran out,
or the RS restarted): the client registers again, with its cookie if the RS still knows it,
without one if not, and retries the message once. (A 409 Address In Use to Register is
final: another host's live peer holds the address.)

PQuery answers one page (``DI_MAX_PEERS_LISTED`` peers at most); ``pquery_all`` follows
``Next-Offset`` through every page. Each page's lines beyond the cap are left unread and
counted (``Parsed.cut``), so a hostile RS cannot make us hold more.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import limits
from ..errors import LocalProtocolError, Status
from ..host import host_name, os_name
from ..protocol import di
from . import wire

_Build = Callable[[], di.DIRequest]

# Pages ``pquery_all`` asks for at most: every peer an RS holds within its budget.
PQUERY_PAGES = -(-limits.DI_MAX_PEERS // limits.DI_MAX_PEERS_LISTED)


class RSClient:
    """Sends one peer's messages to one RS.

    Args:
        host, port: the RS.
        trace: called with every message sent and received, ready to print.
    """

    def __init__(self, host: str, port: int = limits.RS_PORT, trace: wire.Trace | None = None):
        self.host = host
        self.port = port
        self.trace = trace
        self.os = os_name()
        self.cookie: int | None = None
        self.ttl = int(limits.DI_TTL)  # as the RS last stated it
        self.me: di.PeerAddr | None = None  # what we registered last
        self.registered = False  # between a successful Register and our Leave

    async def register(self, me: di.PeerAddr) -> wire.DIReply:
        """Register ``me`` (hostname, RFC-server port); a new cookie only the first time.

        Raises:
            PeerGone, TimeoutError: the RS cannot be reached.
            RemoteProtocolError: the RS's reply is malformed.
        """
        reply = await self._send(di.Register(me.host, me.port, self.cookie, self.os))
        if reply.response.reason == di.UNKNOWN_COOKIE and self.cookie is not None:
            self.cookie = None  # the RS does not know our cookie: start afresh
            reply = await self._send(di.Register(me.host, me.port, None, self.os))
        if reply.status == Status.OK:
            self.cookie, self.ttl = di.parse_registered(reply.response)
            self.me, self.registered = me, True
        return reply

    async def keep_alive(self) -> wire.DIReply:
        """Reset our TTL at the RS (re-registering if the RS forgot us)."""
        return await self._as_member(lambda: di.KeepAlive(self._host(), self._cookie(), self.os))

    async def pquery(self, offset: int = 0) -> tuple[wire.DIReply, di.Parsed[di.PeerAddr]]:
        """One page of the active peers other than us, from ``offset`` (the first: the
        newest); empty on the RS's "no active peers" 404. ``di.next_offset(reply.response)``
        says where the next page starts.

        Anonymous (every active peer, no TTL reset) while we are not registered.
        """
        if not self.registered:
            reply = await self._send(di.PQuery(self._host(), None, self.os, offset))
        else:
            reply = await self._as_member(
                lambda: di.PQuery(self._host(), self.cookie, self.os, offset))
        if reply.status == Status.OK:
            return reply, di.parse_peers(reply.body)
        return reply, di.Parsed((), 0)

    async def pquery_all(self) -> tuple[wire.DIReply, di.Parsed[di.PeerAddr]]:
        """Every page of ``pquery``, each peer once (a peer that joins or leaves meanwhile
        may be missed), at most ``DI_MAX_PEERS`` peers in ``PQUERY_PAGES`` pages; the first
        reply and the peers of all."""
        first, page = await self.pquery()
        seen = dict.fromkeys(page.items)
        skipped, cut, offset = page.skipped, page.cut, 0
        reply = first
        for _ in range(PQUERY_PAGES - 1):
            after = di.next_offset(reply.response) if reply.status == Status.OK else None
            if after is None or after <= offset:
                break
            offset = after
            reply, page = await self.pquery(offset)
            seen.update(dict.fromkeys(page.items))
            skipped, cut = skipped + page.skipped, cut + page.cut
        return first, di.Parsed(tuple(seen), skipped, cut)

    async def leave(self) -> wire.DIReply:
        """Tell the RS we are leaving; we stay known by our cookie for a later Register."""
        reply = await self._send(di.Leave(self._host(), self._cookie(), self.os))
        self.registered = False
        return reply

    async def _as_member(self, build: _Build) -> wire.DIReply:
        reply = await self._send(build())
        if reply.status == Status.CONFLICT and self.registered and self.me is not None:
            again = await self.register(self.me)
            if again.status != Status.OK:
                return again
            reply = await self._send(build())
        return reply

    async def _send(self, msg: di.DIRequest) -> wire.DIReply:
        return await wire.exchange(self.host, self.port, msg, self.trace)

    def _host(self) -> str:
        return self.me.host if self.me is not None else host_name()

    def _cookie(self) -> int:
        if self.cookie is None:
            raise LocalProtocolError("not registered yet: register first")
        return self.cookie

