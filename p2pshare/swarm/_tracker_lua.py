"""The Lua scripts of ``swarm.shared.SharedTracker`` (key layout: docs/scale-out.md#tracker-keys).

Strategy: each script is one atomic step of ``Tracker`` and ``Ledger`` on Redis; each runs
after ``store.redis_client.reaping(DROP)``, which gives it ``P`` (the prefix), ``now`` and
the reap of dead nodes. Keys, under the prefix:

* ``c:<cid>:src`` the connection's source address; ``c:<cid>:claims`` hash address ->
  swarms of it using that address; ``c:<cid>:swarms`` hash swarm -> its address there.
* ``addr:<port|host>`` the connection holding an address; ``claims`` addresses in all.
* ``s:<src>:claims``, ``s:<src>:bytes`` counters; ``s:<src>:swarms`` hash swarm ->
  connections from there in it (a manifest counts once per source).
* ``sw:<id>`` hash: manifest, size (its bytes), total, psize, count, nfiles, name, seeders,
  low; ``sw:<id>:m`` hash cid -> ``held|hexmask|port|host``; ``sw:<id>:h`` the cids
  holding a piece (PEERS lists them first); ``sw:<id>:n`` BITFIELD of u32 holder counts
  per piece; ``sw:<id>:t`` hash count -> pieces with that count.
* ``swarms`` sorted set id -> the announce sequence (``seq``); ``ids`` the ids, for a
  prefix search (ZRANGEBYLEX); ``name:<name>`` the ids announced under that name;
  ``mbytes`` manifest bytes in all.
"""

from __future__ import annotations

import re

HEX = re.compile(r"[0-9a-f]{1,64}\Z")

_CENSUS = """
local function census_add(sk, i)
  local c = redis.call('BITFIELD', sk .. ':n', 'INCRBY', 'u32', '#' .. i, 1)[1]
  redis.call('HINCRBY', sk .. ':t', c - 1, -1)
  redis.call('HINCRBY', sk .. ':t', c, 1)
end
local function each_bit(hex, fn)
  local L = #hex
  for k = 1, L do
    local v = tonumber(string.sub(hex, k, k), 16)
    if v ~= 0 then
      for b = 0, 3 do
        if bit.band(v, bit.lshift(1, b)) ~= 0 then fn((L - k) * 4 + b) end
      end
    end
  end
end
local function census_remove(sk, hex)
  local low = tonumber(redis.call('HGET', sk, 'low'))
  each_bit(hex, function(i)
    local c = redis.call('BITFIELD', sk .. ':n', 'INCRBY', 'u32', '#' .. i, -1)[1]
    redis.call('HINCRBY', sk .. ':t', c + 1, -1)
    redis.call('HINCRBY', sk .. ':t', c, 1)
    if c < low then low = c end
  end)
  redis.call('HSET', sk, 'low', low)
end
local function parse_member(m)
  local a = string.find(m, '|', 1, true)
  local b = string.find(m, '|', a + 1, true)
  return tonumber(string.sub(m, 1, a - 1)), string.sub(m, a + 1, b - 1), string.sub(m, b + 1)
end
local function decr(key, n)
  if redis.call('DECRBY', key, n) <= 0 then redis.call('DEL', key) end
end
"""

# A connection's records: its claims, its source's books, its memberships; empty swarms go.
DROP = _CENSUS + """
local function leave_swarm(id, cid)
  local sk = P .. 'sw:' .. id
  local m = redis.call('HGET', sk .. ':m', cid)
  if not m then return end
  redis.call('HDEL', sk .. ':m', cid)
  redis.call('SREM', sk .. ':h', cid)
  local held, mask = parse_member(m)
  if held == tonumber(redis.call('HGET', sk, 'count')) then
    redis.call('HINCRBY', sk, 'seeders', -1)
  end
  census_remove(sk, mask)
  if redis.call('HLEN', sk .. ':m') > 0 then return end
  redis.call('SREM', P .. 'name:' .. redis.call('HGET', sk, 'name'), id)
  redis.call('ZREM', P .. 'swarms', id)
  redis.call('ZREM', P .. 'ids', id)
  decr(P .. 'mbytes', tonumber(redis.call('HGET', sk, 'size')))
  redis.call('DEL', sk, sk .. ':m', sk .. ':n', sk .. ':t', sk .. ':h')
end
local function drop(cid)
  local ck = P .. 'c:' .. cid
  local src = redis.call('GET', ck .. ':src') or ''
  local sp = P .. 's:' .. src
  local claims = redis.call('HKEYS', ck .. ':claims')
  for _, addr in ipairs(claims) do redis.call('DEL', P .. 'addr:' .. addr) end
  if #claims > 0 then
    decr(P .. 'claims', #claims)
    decr(sp .. ':claims', #claims)
  end
  local swarms = redis.call('HKEYS', ck .. ':swarms')
  for _, id in ipairs(swarms) do
    if redis.call('HINCRBY', sp .. ':swarms', id, -1) <= 0 then
      redis.call('HDEL', sp .. ':swarms', id)
      decr(sp .. ':bytes', tonumber(redis.call('HGET', P .. 'sw:' .. id, 'size')))
    end
  end
  for _, id in ipairs(swarms) do leave_swarm(id, cid) end
  redis.call('DEL', ck .. ':src', ck .. ':claims', ck .. ':swarms')
  return #swarms
end
"""

# ARGV: prefix, node, cid, source, id, manifest, valid, address, total, psize, count,
# nfiles, name, then the budgets: claims per conn, per source, in all; swarms per conn;
# manifest bytes per source, in all.
_ANNOUNCE = """
local node, cid, src, id, man, valid, addr = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6],
  ARGV[7], ARGV[8]
if not redis.call('ZSCORE', P .. 'nodes', node) then return 'lost' end
local holder = redis.call('GET', P .. 'addr:' .. addr)
if holder and holder ~= cid then return 'taken' end
local sk = P .. 'sw:' .. id
local stored = redis.call('HGET', sk, 'manifest')
if stored and stored ~= man and valid ~= '1' then return 'bad' end
local ck = P .. 'c:' .. cid
src = redis.call('GET', ck .. ':src') or src
local sp = P .. 's:' .. src
local old = redis.call('HGET', ck .. ':swarms', id)
local size = #man
local function num(key) return tonumber(redis.call('GET', key) or '0') end
if not old then
  if redis.call('HLEN', ck .. ':swarms') >= tonumber(ARGV[17]) then return 'swarms' end
  if redis.call('HEXISTS', sp .. ':swarms', id) == 0 and
     num(sp .. ':bytes') + size > tonumber(ARGV[18]) then return 'srcbytes' end
end
if not stored and num(P .. 'mbytes') + size > tonumber(ARGV[19]) then return 'allbytes' end
if redis.call('HEXISTS', ck .. ':claims', addr) == 0 then
  local freed = 0
  if old and tonumber(redis.call('HGET', ck .. ':claims', old)) == 1 then freed = 1 end
  if redis.call('HLEN', ck .. ':claims') - freed >= tonumber(ARGV[14]) then return 'claims' end
  if num(sp .. ':claims') - freed >= tonumber(ARGV[15]) then return 'srcclaims' end
  if num(P .. 'claims') - freed >= tonumber(ARGV[16]) then return 'allclaims' end
end
if not stored then
  if valid ~= '1' then return 'bad' end
  local count = tonumber(ARGV[11])
  redis.call('HSET', sk, 'manifest', man, 'size', size, 'total', ARGV[9], 'psize', ARGV[10],
             'count', count, 'nfiles', ARGV[12], 'name', ARGV[13], 'seeders', 0, 'low', 0)
  if count > 0 then redis.call('HSET', sk .. ':t', 0, count) end
  redis.call('SADD', P .. 'name:' .. ARGV[13], id)
  redis.call('ZADD', P .. 'ids', 0, id)
  redis.call('INCRBY', P .. 'mbytes', size)
end
redis.call('SET', ck .. ':src', src)
if not old and redis.call('HINCRBY', sp .. ':swarms', id, 1) == 1 then
  redis.call('INCRBY', sp .. ':bytes', tonumber(redis.call('HGET', sk, 'size')))
end
if addr ~= old then
  if redis.call('HINCRBY', ck .. ':claims', addr, 1) == 1 then
    redis.call('SET', P .. 'addr:' .. addr, cid)
    redis.call('INCR', P .. 'claims')
    redis.call('INCR', sp .. ':claims')
  end
  if old and redis.call('HINCRBY', ck .. ':claims', old, -1) <= 0 then
    redis.call('HDEL', ck .. ':claims', old)
    redis.call('DEL', P .. 'addr:' .. old)
    decr(P .. 'claims', 1)
    decr(sp .. ':claims', 1)
  end
end
redis.call('HSET', ck .. ':swarms', id, addr)
redis.call('SADD', P .. 'node:' .. node, cid)
local m = redis.call('HGET', sk .. ':m', cid)
local held, mask = 0, '0'
if m then held, mask = parse_member(m) end
redis.call('HSET', sk .. ':m', cid, held .. '|' .. mask .. '|' .. addr)
redis.call('ZADD', P .. 'swarms', redis.call('INCR', P .. 'seq'), id)
return 'ok'
"""

# ARGV: prefix, cid, id, the member's whole mask (hex), then the pieces it gains (the node
# keeps each of its members' masks: only new pieces come here, so a HAVE costs O(1) per
# piece it adds, and a report of nothing new costs Redis nothing) -> 'none' or 'ok'
_HAVE = """
local cid, sk = ARGV[2], P .. 'sw:' .. ARGV[3]
local m = redis.call('HGET', sk .. ':m', cid)
if not m then return 'none' end
local count = tonumber(redis.call('HGET', sk, 'count'))
local held, _, addr = parse_member(m)
for i = 5, #ARGV do census_add(sk, ARGV[i]) end
local low = tonumber(redis.call('HGET', sk, 'low'))
while tonumber(redis.call('HGET', sk .. ':t', low) or '0') == 0 do low = low + 1 end
redis.call('HSET', sk, 'low', low)
local gained = #ARGV - 4
held = held + gained
if held == gained and gained > 0 then redis.call('SADD', sk .. ':h', cid) end
if held == count then redis.call('HINCRBY', sk, 'seeders', 1) end
redis.call('HSET', sk .. ':m', cid, held .. '|' .. ARGV[4] .. '|' .. addr)
return 'ok'
"""

# ARGV: prefix, id -> the manifest, or nil
_MANIFEST = "return redis.call('HGET', P .. 'sw:' .. ARGV[2], 'manifest')"

# ARGV: prefix, id, the asker's cid, n -> {} (no such swarm) or {count, member, ...}: up to
# n random holders (``sw:<id>:h``), then random members to make up n (a sample of 2n + 1:
# all of them in a small swarm), never the asker; O(n) however many members there are
_PEERS = """
local sk = P .. 'sw:' .. ARGV[2]
local count = redis.call('HGET', sk, 'count')
if not count then return {} end
local n, out, seen = tonumber(ARGV[4]), {count}, {[ARGV[3]] = true}
local function take(cids)
  for _, cid in ipairs(cids) do
    if #out > n then return end
    if not seen[cid] then
      seen[cid] = true
      local m = redis.call('HGET', sk .. ':m', cid)
      if m then out[#out + 1] = m end
    end
  end
end
take(redis.call('SRANDMEMBER', sk .. ':h', n + 1))
if #out <= n then take(redis.call('HRANDFIELD', sk .. ':m', 2 * n + 1)) end
return out
"""

# ARGV: prefix, id, rows -> {member, ...}: at most ``rows`` members, found by HSCAN, so
# that the dashboard's reading costs O(rows) however many members a swarm has (its
# census, binary, is read apart: ``Scripts.get_bytes``)
_ROW = """
local sk = P .. 'sw:' .. ARGV[2]
local out, n, cursor = {}, tonumber(ARGV[3]), '0'
repeat
  local page = redis.call('HSCAN', sk .. ':m', cursor, 'COUNT', math.max(n, 1))
  cursor = page[1]
  for i = 2, #page[2], 2 do
    if #out >= n then break end
    out[#out + 1] = page[2][i]
  end
until cursor == '0' or #out >= n
return out
"""

# ARGV: prefix, name, offset, page length, name lowered, '1' if it may be an id prefix
# -> {total, then ten fields per swarm (swarm.shared._entry)}
_FILES = """
local name, off, n = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ids, total
if name == '' then
  total = redis.call('ZCARD', P .. 'swarms')
  ids = redis.call('ZREVRANGE', P .. 'swarms', off, off + n - 1)
else
  local set = {}
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'name:' .. name)) do set[id] = true end
  if ARGV[6] == '1' then
    local low = ARGV[5]
    for _, id in ipairs(redis.call('ZRANGEBYLEX', P .. 'ids', '[' .. low, '(' .. low .. 'g')) do
      set[id] = true
    end
  end
  local found = {}
  for id in pairs(set) do
    found[#found + 1] = {id, tonumber(redis.call('ZSCORE', P .. 'swarms', id))}
  end
  table.sort(found, function(x, y) return x[2] > y[2] end)
  total = #found
  ids = {}
  for i = off + 1, math.min(off + n, #found) do ids[#ids + 1] = found[i][1] end
end
local out = {total}
for _, id in ipairs(ids) do
  local sk = P .. 'sw:' .. id
  local f = redis.call('HMGET', sk, 'total', 'psize', 'count', 'nfiles', 'name', 'seeders',
                       'low')
  out[#out + 1] = id
  for i = 1, 6 do out[#out + 1] = f[i] end
  out[#out + 1] = redis.call('HLEN', sk .. ':m')
  out[#out + 1] = f[7]
  out[#out + 1] = redis.call('HGET', sk .. ':t', f[7]) or '0'
end
return out
"""

SCRIPTS = {"announce": _ANNOUNCE, "have": _HAVE, "manifest": _MANIFEST, "peers": _PEERS,
           "files": _FILES, "row": _ROW}
