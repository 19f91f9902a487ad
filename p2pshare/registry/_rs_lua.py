"""The Lua scripts of ``registry.shared.SharedRegistry`` (docs/scale-out.md#rs-keys).

Strategy: each script is one atomic step of ``registry.store.Registry`` on Redis, after
``store.redis_client.CLOCK`` (``P``, the prefix, and ``now``, Redis's clock in ms). The
TTL is kept as an expiry: ``active`` is a sorted set of cookies scored by last contact +
TTL, so expiring is ``ZRANGEBYSCORE -inf now`` (each flagged inactive) then
``ZREMRANGEBYSCORE``, as chihaya trims its swarms. Cookies stay strings (they pass 2**53,
past Lua's numbers). Keys, under the prefix:

* ``peer:<cookie>`` hash: host, port, source, active (0/1), at (the source it is listed
  under, while listed); ``cookies`` the set of every record held.
* ``active`` sorted set cookie -> expiry (ms); ``addr:<port|host>`` the active cookie
  there.
* ``idle`` sorted set cookie -> when found inactive (ms), ``idle:<source>`` the same per
  source: the oldest is forgotten first (budgets, and ``forget_after``).
* ``held:<source>`` records registered from there.
* ``listed:<source>`` sorted set cookie -> the order it was listed; ``sources`` sorted
  set source -> the order it last listed a peer (PQuery's turns); ``seq`` the order.
"""

from __future__ import annotations

from ..store.redis_client import CLOCK

# ARGV[2]: the TTL in ms, for every script.
_COMMON = """
local TTL = tonumber(ARGV[2])
local function pk(c) return P .. 'peer:' .. c end
local function decr(key)
  if redis.call('DECR', key) <= 0 then redis.call('DEL', key) end
end
local function unlist_source(c)
  local at = redis.call('HGET', pk(c), 'at')
  if not at then return end
  redis.call('HDEL', pk(c), 'at')
  redis.call('ZREM', P .. 'listed:' .. at, c)
  if redis.call('ZCARD', P .. 'listed:' .. at) == 0 then redis.call('ZREM', P .. 'sources', at) end
end
local function unlist(c)
  unlist_source(c)
  local h = redis.call('HMGET', pk(c), 'port', 'host')
  local ak = P .. 'addr:' .. h[1] .. '|' .. h[2]
  if redis.call('GET', ak) == c then redis.call('DEL', ak) end
end
local function unidle(c, src)
  redis.call('ZREM', P .. 'idle', c)
  redis.call('ZREM', P .. 'idle:' .. src, c)
end
local function deactivate(c)
  local src = redis.call('HGET', pk(c), 'source')
  redis.call('HSET', pk(c), 'active', 0)
  redis.call('ZREM', P .. 'active', c)
  unlist(c)
  redis.call('ZADD', P .. 'idle', now, c)
  redis.call('ZADD', P .. 'idle:' .. src, now, c)
end
local function forget(c)
  local src = redis.call('HGET', pk(c), 'source')
  unidle(c, src)
  decr(P .. 'held:' .. src)
  redis.call('DEL', pk(c))
  redis.call('SREM', P .. 'cookies', c)
end
local function touch(c)
  local r = redis.call('HMGET', pk(c), 'active', 'source', 'port', 'host', 'at')
  if r[1] == '0' then unidle(c, r[2]) end
  redis.call('HSET', pk(c), 'active', 1)
  redis.call('ZADD', P .. 'active', now + TTL, c)
  redis.call('SET', P .. 'addr:' .. r[3] .. '|' .. r[4], c)
  if r[5] ~= r[2] then
    if r[5] then unlist_source(c) end
    redis.call('HSET', pk(c), 'at', r[2])
    redis.call('ZADD', P .. 'listed:' .. r[2], redis.call('INCR', P .. 'seq'), c)
    redis.call('ZADD', P .. 'sources', redis.call('INCR', P .. 'seq'), r[2])
  end
end
local function expire()
  for _, c in ipairs(redis.call('ZRANGEBYSCORE', P .. 'active', '-inf', now)) do
    deactivate(c)
  end
  redis.call('ZREMRANGEBYSCORE', P .. 'active', '-inf', now)
end
local function live(c)
  expire()
  local active = redis.call('HGET', pk(c), 'active')
  if not active then return 'unknown' end
  if active == '0' then return 'inactive' end
  return nil
end
-- ARGV[3]: forget_after ms, ARGV[4]: records forgotten per request at most
local function purge()
  for _ = 1, tonumber(ARGV[4]) do
    local oldest = redis.call('ZRANGE', P .. 'idle', 0, 0, 'WITHSCORES')
    if #oldest == 0 or now - tonumber(oldest[2]) < tonumber(ARGV[3]) then return end
    forget(oldest[1])
  end
end
"""

# ARGV: prefix, ttl, forget_after, purge step, host, port, cookie ('' if none), source,
# a fresh cookie, max peers, max per source -> {verdict, cookie}
_REGISTER = """
expire()
purge()
local host, port, c, src = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local rec_src = false
if c ~= '' then
  rec_src = redis.call('HGET', pk(c), 'source')
  if not rec_src then return {'unknown'} end
end
local other = redis.call('GET', P .. 'addr:' .. port .. '|' .. host)
if other and other ~= c then
  if redis.call('HGET', pk(other), 'source') ~= src then return {'taken'} end
  deactivate(other)
end
if rec_src ~= src then
  if tonumber(redis.call('GET', P .. 'held:' .. src) or '0') >= tonumber(ARGV[11]) then
    local idle = redis.call('ZRANGE', P .. 'idle:' .. src, 0, 0)
    if #idle == 0 then return {'srcfull'} end
    forget(idle[1])
  end
  if c == '' and redis.call('SCARD', P .. 'cookies') >= tonumber(ARGV[10]) then
    local idle = redis.call('ZRANGE', P .. 'idle', 0, 0)
    if #idle == 0 then return {'full'} end
    forget(idle[1])
  end
end
if c == '' then
  c = ARGV[9]
  if redis.call('SADD', P .. 'cookies', c) == 0 then return {'again'} end
  redis.call('HSET', pk(c), 'active', 0, 'source', src)
  redis.call('INCR', P .. 'held:' .. src)
else
  unlist(c)
  if rec_src ~= src then
    if redis.call('HGET', pk(c), 'active') == '0' then unidle(c, rec_src) end
    decr(P .. 'held:' .. rec_src)
    redis.call('INCR', P .. 'held:' .. src)
    redis.call('HSET', pk(c), 'source', src)
  end
end
redis.call('HSET', pk(c), 'host', host, 'port', port)
touch(c)
return {'ok', c}
"""

# ARGV: prefix, ttl, forget_after, purge step, cookie -> verdict
_KEEP_ALIVE = """
local c = ARGV[5]
local refusal = live(c)
if refusal then return refusal end
touch(c)
return 'ok'
"""

# ARGV: prefix, ttl, forget_after, purge step, cookie -> verdict
_LEAVE = """
local c = ARGV[5]
local active = redis.call('HGET', pk(c), 'active')
if not active then return 'unknown' end
if active == '1' then deactivate(c) end
return 'ok'
"""

# ARGV: prefix, ttl, forget_after, purge step, cookie ('' if none), offset, page length
# -> {verdict, active peers, then cookie, host, port per line from offset}
_LISTING = """
local c, off, n = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
if c ~= '' then
  local refusal = live(c)
  if refusal then return {refusal} end
  touch(c)
end
expire()
purge()
local out = {'ok', redis.call('ZCARD', P .. 'active')}
local want, seen = off + n, 0
local turns = {}
for _, src in ipairs(redis.call('ZREVRANGE', P .. 'sources', 0, -1)) do
  if seen >= want then break end
  turns[#turns + 1] = redis.call('ZREVRANGE', P .. 'listed:' .. src, 0, want - 1)
  seen = seen + 1
end
seen = 0
local r = 1
while seen < want do
  local any = false
  for _, list in ipairs(turns) do
    local x = list[r]
    if x then
      any = true
      seen = seen + 1
      if seen > off then
        local h = redis.call('HMGET', pk(x), 'host', 'port')
        out[#out + 1] = x
        out[#out + 1] = h[1]
        out[#out + 1] = h[2]
      end
      if seen >= want then break end
    end
  end
  if not any then break end
  r = r + 1
end
return out
"""

SCRIPTS = {name: CLOCK + _COMMON + text for name, text in (
    ("register", _REGISTER), ("keep_alive", _KEEP_ALIVE), ("leave", _LEAVE),
    ("listing", _LISTING))}
