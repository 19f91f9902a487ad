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

The client, the scripts, the lease and the reap are ``store.redis_client.Leased``'s (the
one copy the tracker's store uses too); this module holds the index's scripts only.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

from ..errors import OverBudget, StoreError
from ..host import join_hostport
from ..protocol.ci import Record
from ..store.redis_client import DEFAULT_LEASE, Leased
from .store import IndexBudget

log = logging.getLogger(__name__)

PAGE = 512  # records per LIST ALL page

_DROP_CONN = """
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
"""

# ARGV: prefix, node, conn id, source, rfc, title, peer, per_conn, claims, per_source, in_all
_ADD = """
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
_REMOVE = """
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

# ARGV: prefix, rfc -> peer, title, peer, title, ... newest first
_LOOKUP = """
local rfc = ARGV[2]
local out = {}
for _, peer in ipairs(redis.call('ZREVRANGE', P .. 'rfc:' .. rfc, 0, -1)) do
  out[#out + 1] = peer
  out[#out + 1] = redis.call('HGET', P .. 'title:' .. rfc, peer) or ''
end
return out
"""

# ARGV: prefix, below (exclusive seq, or '+inf'), count -> seq, rec, title, ... newest first
_PAGE = """
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


class SharedIndex(Leased):
    """The index of P2P-CI in Redis, shared by every node given the same ``url``."""

    def __init__(self, url: str, *, lease: float = DEFAULT_LEASE,
                 budget: IndexBudget | None = None, prefix: str = "p2pci:") -> None:
        super().__init__(url, _DROP_CONN, {
            "add": _ADD, "remove": _REMOVE, "lookup": _LOOKUP, "page": _PAGE},
            lease=lease, prefix=prefix)
        self.budget = budget or IndexBudget()

    async def add(self, owner: Hashable, rfc: int, title: str, host: str, port: int,
                  source: str = "") -> Record:
        """As ``MemoryIndex.add``, for every node.

        Raises:
            StoreError: ``host:port`` belongs to another live connection (on any node).
            OverBudget: a budget would be passed (nothing changed).
        """
        b = self.budget
        verdict = await self.write(owner, "add", source, rfc, title, _peer(host, port),
                                   b.per_connection, b.claims_per_connection, b.per_source,
                                   b.in_all)
        if verdict == "taken":
            raise StoreError(f"{join_hostport(host, port)} belongs to another connection")
        if verdict == "all":
            raise OverBudget(f"the index holds its {b.in_all} records", everyone=True)
        if verdict == "lost":
            raise StoreError("this node's lease is lost")
        if verdict != "ok":
            raise OverBudget(_REFUSED.get(verdict, str(verdict)))
        return Record(rfc, title, host, port)

    async def remove(self, owner: Hashable, rfc: int, host: str, port: int) -> Record | None:
        """Withdraw ``owner``'s record of ``rfc`` at ``host:port``; None if it has none."""
        cid = self.known(owner)
        if cid is None:
            return None
        title = await self.run("remove", cid, rfc, _peer(host, port))
        return None if title is None else Record(rfc, str(title), host, port)

    async def lookup(self, rfc: int) -> list[Record]:
        """Every live holder of ``rfc`` on every node, newest first."""
        rows = await self.run("lookup", rfc)
        return [Record(rfc, rows[i + 1], *_split_peer(rows[i])) for i in range(0, len(rows), 2)]

    async def page(self, below: str = "+inf", count: int = PAGE) -> tuple[list[Record], str]:
        """Up to ``count`` live records older than the cursor ``below``, newest first, and
        the cursor of the next page ("" when this is the last)."""
        rows = await self.run("page", below, count)
        records = []
        for i in range(0, len(rows), 3):
            rfc, _, peer = rows[i + 1].partition("|")
            records.append(Record(int(rfc), rows[i + 2], *_split_peer(peer)))
        more = f"({rows[-3]}" if len(rows) == 3 * count else ""
        return records, more
