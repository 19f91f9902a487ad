"""The one copy of what every Redis-backed store needs: the client, scripts, timeouts, leases.

Strategy (docs/scale-out.md): a store is a set of Lua scripts that Redis runs atomically,
so no two nodes ever see half of a change. ``Scripts`` owns the client (imported when a
store is made, so the in-memory default needs nothing new), registers the scripts, and
turns every Redis failure or silence past ``STORE_TIMEOUT`` into ``StoreUnreachable``.

``Leased`` adds what a store whose records live with connections needs: a node's
**lease** (one member of the sorted set ``nodes``, scored by its expiry in Redis's own
clock, ``TIME``), refreshed every third of the lease while the node lives. Every script
of such a store starts with ``reaping(drop)``: the nodes whose lease has passed are trimmed
from ``nodes`` (``ZREMRANGEBYSCORE``, as chihaya trims its swarms) after ``drop`` (the
store's Lua function that deletes one connection's records) has run for each of their
connections. So a read never returns a record of a node dead for longer than one lease,
and nothing is deleted before its lease passed. A connection that closes has its records
dropped at once (``drop_owner``); one that closes while an operation of it is in flight is
dropped again when that operation ends, so a late write cannot outlive it.

A node that finds its lease gone (Redis restarted, or it could not reach Redis for a whole
lease) takes a new node id and lease and calls ``on_lost``: the server closes its
connections, and their peers reconnect and register again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from ..errors import P2PError

log = logging.getLogger(__name__)

DEFAULT_LEASE = 30.0  # seconds a dead node's records outlive it, at most

# Seconds one call to Redis may take: a store that stops answering fails the request (its
# connection closes, its peer moves on) instead of holding it for ever.
STORE_TIMEOUT = 5.0

# Connections one store opens to Redis at most; more operations at once wait for one (up to
# STORE_TIMEOUT) instead of failing: a thousand peers closing at once queue their drops.
STORE_CONNECTIONS = 64


def _node_id() -> str:
    """A new random node name: 12 hex digits (48 random bits, as uuid4's first 12 were;
    ``uuid`` itself imports ``platform``: ~2 ms of every server's start)."""
    return os.urandom(6).hex()


class StoreUnreachable(P2PError):
    """The shared store could not be reached or failed (the request's connection closes;
    its peer moves to another server)."""


# Lua: ``now`` (ms, Redis's clock) and ``P`` (the key prefix, ARGV[1]) for every script.
CLOCK = """
local P = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""


def reaping(drop: str) -> str:
    """The prelude of a leased store's scripts: ``CLOCK``, the store's ``drop(cid)``
    (deletes one connection's records, returns a count), ``drop_node(node)``, and the reap
    of every node whose lease has passed."""
    return CLOCK + drop + """
local function drop_node(node)
  local n = 0
  for _, cid in ipairs(redis.call('SMEMBERS', P .. 'node:' .. node)) do n = n + drop(cid) end
  redis.call('DEL', P .. 'node:' .. node)
  redis.call('ZREM', P .. 'nodes', node)
  return n
end
for _, node in ipairs(redis.call('ZRANGEBYSCORE', P .. 'nodes', '-inf', now)) do
  drop_node(node)
end
redis.call('ZREMRANGEBYSCORE', P .. 'nodes', '-inf', now)
"""


# ARGV: prefix, node, lease ms, first ("1": claim the lease even if absent)
_REFRESH = """
if ARGV[4] ~= '1' and not redis.call('ZSCORE', P .. 'nodes', ARGV[2]) then return 0 end
redis.call('ZADD', P .. 'nodes', now + tonumber(ARGV[3]), ARGV[2])
return 1
"""

# ARGV: prefix, conn id, node
_DROP = """
redis.call('SREM', P .. 'node:' .. ARGV[3], ARGV[2])
return drop(ARGV[2])
"""

# ARGV: prefix, node
_DROP_NODE = "return drop_node(ARGV[2])"


class Scripts:
    """A Redis client and the Lua scripts of one store (``name -> text``)."""

    def __init__(self, url: str, scripts: dict[str, str], prefix: str) -> None:
        import redis.asyncio as aioredis  # optional: only --store redis://... needs it

        self.url = url
        self.prefix = prefix
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=STORE_CONNECTIONS, timeout=STORE_TIMEOUT,
            decode_responses=True, socket_timeout=STORE_TIMEOUT,
            socket_connect_timeout=STORE_TIMEOUT)
        self._redis: Any = aioredis.Redis.from_pool(pool)
        self._failures: type[Exception] = aioredis.RedisError
        self._broken: type[Exception] = aioredis.ConnectionError
        self._scripts = {name: self._redis.register_script(text)
                         for name, text in scripts.items()}

    async def run(self, name: str, *args: str | int | float | bytes) -> Any:
        """Run one script with ``prefix`` as ARGV[1] and ``args`` after it.

        Raises:
            StoreUnreachable: Redis cannot be reached, or failed.
        """
        return await self._call(self._scripts[name](args=[self.prefix, *args]))

    async def get_bytes(self, key: str) -> bytes | None:
        """The string at ``prefix + key`` as bytes, not decoded (a ``BITFIELD``): a plain
        GET, so that no script spends Redis's time encoding binary for us.

        Raises:
            StoreUnreachable: Redis cannot be reached, or failed.
        """
        from redis.client import NEVER_DECODE

        found: bytes | None = await self._call(self._redis.execute_command(
            "GET", self.prefix + key, **{NEVER_DECODE: True}))
        return found

    async def _call(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except self._failures as exc:
            if isinstance(exc, self._broken):  # Redis restarted? Every idle connection
                # to it is broken too: drop them, so that one request fails, not one each.
                await self._redis.connection_pool.disconnect(inuse_connections=False)
            raise StoreUnreachable(f"the store {self.url}: {exc}") from exc

    async def aclose(self) -> None:
        await self._redis.aclose()


class Leased(Scripts):
    """A store whose records belong to connections of this node, under its lease.

    Args:
        drop: Lua ``local function drop(cid) ... end`` deleting one connection's records.
        scripts: the store's scripts, each run after the reap.
    """

    def __init__(self, url: str, drop: str, scripts: dict[str, str], *, lease: float,
                 prefix: str) -> None:
        prelude = reaping(drop)
        every = {"refresh": _REFRESH, "drop": _DROP, "drop_node": _DROP_NODE, **scripts}
        super().__init__(url, {name: prelude + text for name, text in every.items()}, prefix)
        self.lease = lease
        self.node = _node_id()
        self.on_lost: Callable[[], object] | None = None
        self._conns: dict[Hashable, str] = {}
        self._ids = itertools.count(1)
        self._busy: dict[str, int] = {}  # conn id -> operations in flight
        self._gone: set[str] = set()  # conn ids dropped while an operation was in flight
        self._heart: asyncio.Task[None] | None = None
        self._renewing = asyncio.Lock()  # one renewal at a time: one new lease per loss

    # ---------------------------------------------------------------- the lease
    async def start(self) -> None:
        """Take this node's lease and keep it while the node lives.

        Raises:
            StoreUnreachable: Redis cannot be reached.
        """
        await self.run("refresh", self.node, int(self.lease * 1000), "1")
        self._heart = asyncio.get_running_loop().create_task(self._keep_lease())

    async def _keep_lease(self) -> None:
        task = asyncio.current_task()
        while task is None or not task.cancelling():
            await asyncio.sleep(self.lease / 3)  # a periodic timer, not synchronisation
            try:
                await self._refresh()
            except StoreUnreachable as exc:  # the lease runs out if this lasts
                log.warning("[Server] cannot refresh the lease: %s", exc)
        # Cancelled during a refresh, and the client turned the cancellation into an error
        # or swallowed it (Python 3.11's asyncio.timeout inside its pool can): stop anyway.

    async def _refresh(self) -> None:
        """Extend the lease; if it was lost, take a new one and call ``on_lost``."""
        if await self.renew() and self.on_lost is not None:
            self.on_lost()

    async def renew(self) -> bool:
        """Extend the lease now; if it was lost, take a new one (and a new node id: a late
        write under the old one fails). True if it was lost. A server whose other store
        lost its lease calls this at once, so that its connections close once, not once
        per store.

        Raises:
            StoreUnreachable: Redis cannot be reached.
        """
        async with self._renewing:
            return await self._renew()

    async def _renew(self) -> bool:
        if await self.run("refresh", self.node, int(self.lease * 1000), "0"):
            return False
        log.error("[Server] the lease in %s (%s) was lost; closing every connection so "
                  "that its peers register again", self.url, self.prefix)
        self.forget_connections()
        self.node = _node_id()
        await self.run("refresh", self.node, int(self.lease * 1000), "1")
        return True

    async def aclose(self) -> None:
        """Give back the lease and every record of this node, then close the client."""
        if self._heart is not None:
            self._heart.cancel()
            await asyncio.gather(self._heart, return_exceptions=True)
        try:
            await self.run("drop_node", self.node)
        except StoreUnreachable as exc:  # the lease runs out by itself
            log.warning("[Server] could not give back the lease: %s", exc)
        await super().aclose()

    # ---------------------------------------------------------------- connections
    def forget_connections(self) -> None:
        """The lease was lost: every connection's records are gone from Redis; a store
        that keeps something of them here forgets it too (extend this)."""
        self._conns.clear()

    def conn(self, owner: Hashable) -> str:
        """The id (``node/N``) of the connection ``owner``, made on first use."""
        cid = self._conns.get(owner)
        if cid is None:
            cid = self._conns[owner] = f"{self.node}/{next(self._ids)}"
        return cid

    def known(self, owner: Hashable) -> str | None:
        """The id of ``owner`` if it ever wrote something here."""
        return self._conns.get(owner)

    async def write(self, owner: Hashable, name: str, *args: str | int | float | bytes) -> Any:
        """Run the mutation ``name`` with ARGV: prefix, node, conn id, ``args``; a close of
        ``owner`` meanwhile drops what it wrote once it ends."""
        cid = self.conn(owner)
        self._busy[cid] = self._busy.get(cid, 0) + 1
        try:
            return await self.run(name, self.node, cid, *args)
        finally:
            await self._settle(cid)

    async def _settle(self, cid: str) -> None:
        left = self._busy[cid] = self._busy[cid] - 1
        if left == 0:
            del self._busy[cid]
            if cid in self._gone:
                self._gone.discard(cid)
                await self.run("drop", cid, self.node)

    async def drop_owner(self, owner: Hashable) -> int:
        """Remove every record and claim of ``owner`` at once; returns the count ``drop``
        gives."""
        cid = self._conns.pop(owner, None)
        if cid is None:
            return 0
        if cid in self._busy:
            self._gone.add(cid)
        return int(await self.run("drop", cid, self.node))
