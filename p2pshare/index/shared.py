"""The P2P-CI index on a shared Redis store, so that several index servers serve one index.

Strategy (docs/scale-out.md#key-layout): every mutation and every read is one Lua script,
so Redis runs it atomically and no two nodes ever see half of a change. A node holds a
**lease** (one member of the sorted set ``nodes``, scored by its expiry in Redis's own
clock, ``TIME``), refreshed every third of the lease while the node lives; the records of
its connections live exactly as long as that lease. Every script starts by *reaping*:
the nodes whose lease has passed are trimmed from ``nodes`` (``ZREMRANGEBYSCORE``, as
chihaya trims its swarms) and their connections' records deleted, so a read never returns
a record of a node dead for longer than one lease, and nothing is deleted before its
lease has passed. A closed connection's records go at once (``drop_owner``).

Ownership, order and budgets are the ones of ``MemoryIndex``, across nodes: a peer
(host, port) is owned by one connection (``node/conn``) wherever it is; LOOKUP and LIST
ALL are newest first by one global sequence (``INCR seq``: re-adding moves a record to the
front); records per connection, claims per connection, records per source address (one
counter in Redis for all nodes) and records in all are checked inside the ADD script.

The client (``redis.asyncio``) is imported when a ``SharedIndex`` is made: the in-memory
default needs nothing new. A node that finds its lease gone (Redis restarted, or it could
not reach Redis for a whole lease) calls ``on_lost``: the server closes its connections,
and their peers reconnect and ADD again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Callable, Hashable
from typing import Any

from ..errors import OverBudget, P2PError, StoreError
from ..host import join_hostport
from ..protocol.ci import Record
from .store import IndexBudget

log = logging.getLogger(__name__)

DEFAULT_LEASE = 30.0  # seconds a dead node's records outlive it, at most
PAGE = 512  # records per LIST ALL page

_REAP = """
local P = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function drop(cid)
  local ck = P .. 'conn:' .. cid
  local recs = redis.call('SMEMBERS', ck .. ':recs')
  for _, rec in ipairs(recs) do
    local sep = string.find(rec, '|', 1, true)
    local rfc, peer = string.sub(rec, 1, sep - 1), string.sub(rec, sep + 1)
    redis.call('ZREM', P .. 'rfc:' .. rfc, peer)
    redis.call('HDEL', P .. 'title:' .. rfc, peer)
    redis.call('ZREM', P .. 'all', rec)
  end
  local src = redis.call('GET', ck .. ':src')
  if src and #recs > 0 then
    if redis.call('DECRBY', P .. 'src:' .. src, #recs) <= 0 then
      redis.call('DEL', P .. 'src:' .. src)
    end
  end
  for _, peer in ipairs(redis.call('SMEMBERS', ck .. ':peers')) do
    redis.call('DEL', P .. 'peer:' .. peer)
  end
  redis.call('DEL', ck .. ':recs', ck .. ':peers', ck .. ':src')
  return #recs
end
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
_REFRESH = _REAP + """
if ARGV[4] ~= '1' and not redis.call('ZSCORE', P .. 'nodes', ARGV[2]) then return 0 end
redis.call('ZADD', P .. 'nodes', now + tonumber(ARGV[3]), ARGV[2])
return 1
"""

# ARGV: prefix, node, conn id, source, rfc, title, peer, per_conn, claims, per_source, in_all
_ADD = _REAP + """
local node, cid, src, rfc, title, peer = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if not redis.call('ZSCORE', P .. 'nodes', node) then return 'lost' end
local pk = P .. 'peer:' .. peer
local owner = redis.call('GET', pk)
if owner and owner ~= cid then return 'taken' end
local ck = P .. 'conn:' .. cid
local rec = rfc .. '|' .. peer
local exists = redis.call('SISMEMBER', ck .. ':recs', rec) == 1
if not owner and redis.call('SCARD', ck .. ':peers') >= tonumber(ARGV[9]) then
  return 'claims'
end
redis.call('SET', ck .. ':src', src, 'NX')
src = redis.call('GET', ck .. ':src')
if not exists then
  if redis.call('ZCARD', P .. 'all') >= tonumber(ARGV[11]) then return 'all' end
  if redis.call('SCARD', ck .. ':recs') >= tonumber(ARGV[8]) then return 'conn' end
  if tonumber(redis.call('GET', P .. 'src:' .. src) or '0') >= tonumber(ARGV[10]) then
    return 'source'
  end
  redis.call('SADD', ck .. ':recs', rec)
  redis.call('INCR', P .. 'src:' .. src)
end
if not owner then
  redis.call('SET', pk, cid)
  redis.call('SADD', ck .. ':peers', peer)
  redis.call('SADD', P .. 'node:' .. node, cid)
end
local seq = redis.call('INCR', P .. 'seq')
redis.call('ZADD', P .. 'rfc:' .. rfc, seq, peer)
redis.call('HSET', P .. 'title:' .. rfc, peer, title)
redis.call('ZADD', P .. 'all', seq, rec)
return 'ok'
"""

# ARGV: prefix, conn id, rfc, peer -> the title, or false
_REMOVE = _REAP + """
local cid, rfc, peer = ARGV[2], ARGV[3], ARGV[4]
local ck = P .. 'conn:' .. cid
local rec = rfc .. '|' .. peer
if redis.call('GET', P .. 'peer:' .. peer) ~= cid then return false end
if redis.call('SREM', ck .. ':recs', rec) == 0 then return false end
local title = redis.call('HGET', P .. 'title:' .. rfc, peer)
redis.call('ZREM', P .. 'rfc:' .. rfc, peer)
redis.call('HDEL', P .. 'title:' .. rfc, peer)
redis.call('ZREM', P .. 'all', rec)
local src = redis.call('GET', ck .. ':src')
if src and redis.call('DECR', P .. 'src:' .. src) <= 0 then
  redis.call('DEL', P .. 'src:' .. src)
end
return title
"""

# ARGV: prefix, conn id, node
_DROP = _REAP + """
redis.call('SREM', P .. 'node:' .. ARGV[3], ARGV[2])
return drop(ARGV[2])
"""

# ARGV: prefix, node
_DROP_NODE = _REAP + "return drop_node(ARGV[2])"

# ARGV: prefix, rfc -> peer, title, peer, title, ... newest first
_LOOKUP = _REAP + """
local rfc = ARGV[2]
local out = {}
for _, peer in ipairs(redis.call('ZREVRANGE', P .. 'rfc:' .. rfc, 0, -1)) do
  out[#out + 1] = peer
  out[#out + 1] = redis.call('HGET', P .. 'title:' .. rfc, peer) or ''
end
return out
"""

# ARGV: prefix, below (exclusive seq, or '+inf'), count -> seq, rec, title, ... newest first
_PAGE = _REAP + """
local out = {}
local rows = redis.call('ZREVRANGEBYSCORE', P .. 'all', ARGV[2], '-inf', 'WITHSCORES',
                        'LIMIT', 0, tonumber(ARGV[3]))
for i = 1, #rows, 2 do
  local rec = rows[i]
  local sep = string.find(rec, '|', 1, true)
  local rfc, peer = string.sub(rec, 1, sep - 1), string.sub(rec, sep + 1)
  out[#out + 1] = rows[i + 1]
  out[#out + 1] = rec
  out[#out + 1] = redis.call('HGET', P .. 'title:' .. rfc, peer) or ''
end
return out
"""

# Seconds one call to Redis may take: a store that stops answering fails the request (its
# connection closes, its peer moves on) instead of holding it for ever.
STORE_TIMEOUT = 5.0


class StoreUnreachable(P2PError):
    """The shared store could not be reached or failed (the request's connection closes;
    its peer moves to another server)."""


_REFUSED = {
    "claims": "a connection may claim no more host:port pairs",
    "conn": "a connection may hold no more records",
    "source": "its source address holds its budget of records",
}


def _peer(host: str, port: int) -> str:
    return f"{host}|{port}"


def _split_peer(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition("|")
    return host, int(port)


class SharedIndex:
    """The index of P2P-CI in Redis, shared by every node given the same ``url``."""

    def __init__(self, url: str, *, lease: float = DEFAULT_LEASE,
                 budget: IndexBudget | None = None, prefix: str = "p2pci:") -> None:
        import redis.asyncio as aioredis  # optional: only --store redis://... needs it

        self.url = url
        self.lease = lease
        self.budget = budget or IndexBudget()
        self.prefix = prefix
        self.node = uuid.uuid4().hex[:12]
        self.on_lost: Callable[[], object] | None = None
        self._redis: Any = aioredis.from_url(url, decode_responses=True,
                                             socket_timeout=STORE_TIMEOUT,
                                             socket_connect_timeout=STORE_TIMEOUT)
        self._failures: type[Exception] = aioredis.RedisError
        self._scripts = {name: self._redis.register_script(text) for name, text in (
            ("refresh", _REFRESH), ("add", _ADD), ("remove", _REMOVE), ("drop", _DROP),
            ("drop_node", _DROP_NODE), ("lookup", _LOOKUP), ("page", _PAGE))}
        self._conns: dict[Hashable, str] = {}
        self._ids = itertools.count(1)
        self._busy: dict[str, int] = {}  # conn id -> operations in flight
        self._gone: set[str] = set()  # conn ids dropped while an operation was in flight
        self._heart: asyncio.Task[None] | None = None

    async def _run(self, name: str, *args: str | int | float) -> Any:
        """Run one script.

        Raises:
            StoreUnreachable: Redis cannot be reached, or failed.
        """
        try:
            return await self._scripts[name](args=[self.prefix, *args])
        except self._failures as exc:
            raise StoreUnreachable(f"the store {self.url}: {exc}") from exc

    # ---------------------------------------------------------------- the lease
    async def start(self) -> None:
        """Take this node's lease and keep it while the node lives.

        Raises:
            StoreUnreachable: Redis cannot be reached.
        """
        await self._run("refresh", self.node, int(self.lease * 1000), "1")
        self._heart = asyncio.get_running_loop().create_task(self._keep_lease())

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)  # a periodic timer, not synchronisation
            try:
                await self._refresh()
            except StoreUnreachable as exc:  # the lease runs out if this lasts
                log.warning("[Server] cannot refresh the lease: %s", exc)

    async def _refresh(self) -> None:
        """Extend the lease; if it was lost, take a new one and call ``on_lost``."""
        if await self._run("refresh", self.node, int(self.lease * 1000), "0"):
            return
        log.error("[Server] the lease in %s was lost; closing every connection so that "
                  "its peers register again", self.url)
        self._conns.clear()  # and a new node id: a late ADD under the old one fails
        self.node = uuid.uuid4().hex[:12]
        await self._run("refresh", self.node, int(self.lease * 1000), "1")
        if self.on_lost is not None:
            self.on_lost()

    async def aclose(self) -> None:
        """Give back the lease and every record of this node, then close the client."""
        if self._heart is not None:
            self._heart.cancel()
            await asyncio.gather(self._heart, return_exceptions=True)
        try:
            await self._run("drop_node", self.node)
        except StoreUnreachable as exc:  # the lease runs out by itself
            log.warning("[Server] could not give back the lease: %s", exc)
        await self._redis.aclose()

    # ---------------------------------------------------------------- records
    def _conn(self, owner: Hashable) -> str:
        cid = self._conns.get(owner)
        if cid is None:
            cid = self._conns[owner] = f"{self.node}/{next(self._ids)}"
        return cid

    async def add(self, owner: Hashable, rfc: int, title: str, host: str, port: int,
                  source: str = "") -> Record:
        """As ``MemoryIndex.add``, for every node.

        Raises:
            StoreError: ``host:port`` belongs to another live connection (on any node).
            OverBudget: a budget would be passed (nothing changed).
        """
        b = self.budget
        cid = self._conn(owner)
        self._busy[cid] = self._busy.get(cid, 0) + 1
        try:
            verdict = await self._run("add", self.node, cid, source, rfc, title,
                                      _peer(host, port), b.per_connection,
                                      b.claims_per_connection, b.per_source, b.in_all)
        finally:
            await self._settle(cid)
        if verdict == "taken":
            raise StoreError(f"{join_hostport(host, port)} belongs to another connection")
        if verdict == "all":
            raise OverBudget(f"the index holds its {b.in_all} records", everyone=True)
        if verdict == "lost":
            raise StoreError("this node's lease is lost")
        if verdict != "ok":
            raise OverBudget(_REFUSED.get(verdict, str(verdict)))
        return Record(rfc, title, host, port)

    async def _settle(self, cid: str) -> None:
        """One operation of ``cid`` ended: if the connection closed meanwhile, drop what
        the operation may have added after the close."""
        left = self._busy[cid] = self._busy[cid] - 1
        if left == 0:
            del self._busy[cid]
            if cid in self._gone:
                self._gone.discard(cid)
                await self._run("drop", cid, self.node)

    async def remove(self, owner: Hashable, rfc: int, host: str, port: int) -> Record | None:
        """Withdraw ``owner``'s record of ``rfc`` at ``host:port``; None if it has none."""
        cid = self._conns.get(owner)
        if cid is None:
            return None
        title = await self._run("remove", cid, rfc, _peer(host, port))
        return None if title is None else Record(rfc, str(title), host, port)

    async def drop_owner(self, owner: Hashable) -> int:
        """Remove every record and claim of ``owner`` at once; returns how many records."""
        cid = self._conns.pop(owner, None)
        if cid is None:
            return 0
        if cid in self._busy:
            self._gone.add(cid)
        return int(await self._run("drop", cid, self.node))

    async def lookup(self, rfc: int) -> list[Record]:
        """Every live holder of ``rfc`` on every node, newest first."""
        rows = await self._run("lookup", rfc)
        return [Record(rfc, rows[i + 1], *_split_peer(rows[i])) for i in range(0, len(rows), 2)]

    async def page(self, below: str = "+inf", count: int = PAGE) -> tuple[list[Record], str]:
        """Up to ``count`` live records older than the cursor ``below``, newest first, and
        the cursor of the next page ("" when this is the last)."""
        rows = await self._run("page", below, count)
        records = []
        for i in range(0, len(rows), 3):
            rfc, _, peer = rows[i + 1].partition("|")
            records.append(Record(int(rfc), rows[i + 2], *_split_peer(peer)))
        more = f"({rows[-3]}" if len(rows) == 3 * count else ""
        return records, more
