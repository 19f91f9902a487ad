"""The registration server's peer list on a shared Redis store: several RS nodes, one list.

Strategy (docs/scale-out.md#rs-keys): ``Registry``'s rules, each message one Lua script
(``registry._rs_lua``), atomic in Redis, on Redis's clock, so RS nodes on several
machines agree on every TTL. Records are not tied to connections (P2P-DI has one message
per connection): they are keyed by their expiry, and a node that dies takes nothing with
it. Cookies are drawn here (``secrets``, as in memory) and the script refuses one already
held ("again": drawn anew). The budgets (records per source address, in all) are counters
in Redis, so they hold across nodes. What memory keeps only for its log lines (the
registration dates and counts of ``PeerView``) is not kept here.
"""

from __future__ import annotations

import math
import secrets

from .. import limits
from ..protocol import di
from ..store.redis_client import Scripts
from ._rs_lua import SCRIPTS
from .store import Budgets, Outcome, Page, Refusal

_REFUSALS = {"unknown": Refusal.UNKNOWN, "inactive": Refusal.INACTIVE,
             "taken": Refusal.ADDRESS_TAKEN, "srcfull": Refusal.SOURCE_FULL,
             "full": Refusal.FULL}
_DRAWS = 16  # fresh cookies tried before giving up (a repeat is astronomically rare)


class SharedRegistry(Scripts):
    """The RS's peer list in Redis, shared by every RS given the same ``url``."""

    def __init__(self, url: str, ttl: float = limits.DI_TTL, budgets: Budgets | None = None,
                 *, prefix: str = "p2pdi:") -> None:
        super().__init__(url, SCRIPTS, prefix)
        self.ttl = ttl
        self.budgets = budgets if budgets is not None else Budgets()

    async def start(self) -> None:
        """Check that the store answers.

        Raises:
            StoreUnreachable: it does not.
        """
        await self.run("leave", *self._common(), "0")

    def _common(self) -> tuple[int, int, int]:
        return (math.ceil(self.ttl * 1000), math.ceil(self.budgets.forget_after * 1000),
                limits.DI_PURGE_STEP)

    async def apply(self, msg: di.RSRequest, source: str = "") -> Outcome:
        """As ``Registry.outcome``, across RS nodes.

        Raises:
            StoreUnreachable: Redis cannot be reached (the connection closes).
        """
        if isinstance(msg, di.Register):
            return await self._register(msg, source)
        if isinstance(msg, di.PQuery):
            return await self._listing(msg.cookie, msg.offset)
        name = "keep_alive" if isinstance(msg, di.KeepAlive) else "leave"
        verdict = await self.run(name, *self._common(), str(msg.cookie))
        return _REFUSALS.get(verdict)

    async def _register(self, msg: di.Register, source: str) -> Outcome:
        b = self.budgets
        for _ in range(_DRAWS):
            fresh = 1 + secrets.randbelow(limits.DI_MAX_COOKIE)
            got = await self.run("register", *self._common(), msg.host, msg.port,
                                 "" if msg.cookie is None else str(msg.cookie), source,
                                 str(fresh), b.max_peers, b.max_per_source)
            if got[0] == "ok":
                return int(got[1])
            if got[0] != "again":
                return _REFUSALS[got[0]]
        return Refusal.FULL

    async def _listing(self, cookie: int | None, offset: int) -> Page | Refusal:
        asker = "" if cookie is None else str(cookie)
        rows = await self.run("listing", *self._common(), asker, offset, self.budgets.listed)
        if rows[0] != "ok":
            return _REFUSALS[rows[0]]
        body = b"".join(di.PeerAddr(rows[i + 1], int(rows[i + 2])).to_line() + b"\r\n"
                        for i in range(2, len(rows), 3) if rows[i] != asker)
        end = offset + self.budgets.listed
        return Page(body, end if end < int(rows[1]) else None)
