"""The Lua scripts of :mod:`.redis_queue` (after :data:`~.coordinator.PRELUDE`: ``now``, ``epoch``,
``lost``; ``KEYS[1]`` is the epoch key, ``ARGV[1..2]`` the epoch arguments).

A bucket is four keys: ``state`` (a hash: ``next_at``, the earliest next grant; ``holder``, the
member granted and not released; ``held_until``; ``token``, the fencing counter; ``sent``), the
``waiters`` (a sorted set of members by ``(generation, shard)``), ``seen`` (when each waiter's
host last asked for it: a waiter whose host stopped asking is dropped) and ``present`` (the
waiters that are connected and may be granted; the others wait to be told their turn is near). A member is
``generation:shard:count:platform@host``. The start limit is a hash: ``remaining``, ``total``,
``reset_at``, ``period``. Times are the server's seconds, as strings of 6 decimals.
"""

from __future__ import annotations

_F = "local function f(x) return string.format('%.6f', x) end\n"

#: How far down a bucket's line a grant looks for the first connected waiter (and the most told
#: at once that their turn is near).
SCAN = 256

#: KEYS: epoch, state, waiters, seen, start limit, present. ARGV[3..9]: window, margin, hold,
#: waiter TTL, grant (1: this host may take a grant; 0: it is paused), host suffix, lead; then
#: (member, score, present: 1 or 0) triples. Only a present member (connected, in acquire) is
#: granted: the first present one among the first :data:`SCAN` in line.
#: Returns (what: granted, wait or empty; the member granted or first in line; the token; seconds
#: its hold has left, or until the window (and the start limit) allow the next grant, whatever
#: the holder; the holder, if another host's; this host's members whose turn is near (the i-th in
#: line is due i windows after the next grant, near within ``lead``); seconds until the next
#: rank's turn is near, or -1).
GRANT = (
    _F
    + """
local window, margin, hold, wttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local suffix, lead = ARGV[8], tonumber(ARGV[9])
local function mine(m) return m ~= '' and string.sub(m, -#suffix) == suffix end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local start = 0
  if lost then start = now + window + margin end
  redis.call('HSET', KEYS[2], 'next_at', f(start), 'holder', '', 'held_until', '0', 'token', '0')
end
local s = redis.call('HMGET', KEYS[2], 'next_at', 'holder', 'held_until', 'token')
local next_at, holder, held_until = tonumber(s[1] or '0'), s[2] or '', tonumber(s[3] or '0')
if holder ~= '' and now >= held_until then
  holder = ''
  redis.call('HSET', KEYS[2], 'holder', '')
end
for i = 10, #ARGV, 3 do
  if ARGV[i] ~= holder then
    redis.call('ZADD', KEYS[3], ARGV[i + 1], ARGV[i])
    redis.call('HSET', KEYS[4], ARGV[i], f(now))
    if ARGV[i + 2] == '1' then redis.call('SADD', KEYS[6], ARGV[i]) end
  end
end
if mine(holder) then
  return {epoch, 'granted', holder, s[4] or '0', f(held_until - now), '', {}, '-1'}
end
while true do
  local head = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
  if not head then break end
  if now - tonumber(redis.call('HGET', KEYS[4], head) or '0') <= wttl then break end
  redis.call('ZREM', KEYS[3], head)
  redis.call('HDEL', KEYS[4], head)
  redis.call('SREM', KEYS[6], head)
end
local head = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
if not head then return {epoch, 'empty', '', '', '0', '', {}, '-1'} end
local ready_at = next_at  -- and, while a grant is held, its release (or held_until)
local sl = redis.call('HMGET', KEYS[5], 'remaining', 'reset_at', 'total', 'period')
if sl[1] then
  local remaining, reset_at = tonumber(sl[1]), tonumber(sl[2])
  if now >= reset_at then
    remaining, reset_at = tonumber(sl[3]), now + tonumber(sl[4])
    redis.call('HSET', KEYS[5], 'remaining', remaining, 'reset_at', f(reset_at))
  end
  if remaining <= 0 then ready_at = math.max(ready_at, reset_at) end
end
local first = nil
if redis.call('SCARD', KEYS[6]) > 0 then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, SCAN - 1)) do
    if redis.call('SISMEMBER', KEYS[6], m) == 1 then first = m break end
  end
end
local near, near_in = {}, -1
if ARGV[7] == '1' then
  local base, step = math.max(ready_at, now), window + margin
  local rank = -1
  if base - lead <= now then
    rank = SCAN - 1
    if step > 0 then rank = math.min(rank, math.floor((now + lead - base) / step)) end
  end
  if rank >= 0 then
    for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, rank)) do
      if mine(m) then near[#near + 1] = m end
    end
  end
  if step > 0 then near_in = base + (rank + 1) * step - lead - now end
end
if first == nil or holder ~= '' or now < ready_at or ARGV[7] ~= '1' or not mine(first) then
  return {epoch, 'wait', head, '', f(ready_at - now), holder, near, f(near_in)}
end
local token = redis.call('HINCRBY', KEYS[2], 'token', 1)
redis.call('HSET', KEYS[2], 'holder', first, 'held_until', f(now + hold), 'next_at', f(now + window + margin),
  'sent', '0')
redis.call('ZREM', KEYS[3], first)
redis.call('HDEL', KEYS[4], first)
redis.call('SREM', KEYS[6], first)
if sl[1] then redis.call('HINCRBY', KEYS[5], 'remaining', -1) end
return {epoch, 'granted', first, tostring(token), f(hold), '', near, '-1'}
""".replace("SCAN", str(SCAN))
)

#: KEYS: epoch, state. ARGV[3..7]: window, margin, member, token, the grant's epoch.
#: The window is pushed out even when the grant is stale: had the identify gone out anyway, the
#: next one still waits a window after it.
STAMP = (
    _F
    + """
local s = redis.call('HMGET', KEYS[2], 'holder', 'token', 'held_until', 'next_at')
local ok = s[1] == ARGV[5] and s[2] == ARGV[6] and ARGV[7] == epoch and now < tonumber(s[3] or '0')
local pushed = now + tonumber(ARGV[3]) + tonumber(ARGV[4])
redis.call('HSET', KEYS[2], 'next_at', f(math.max(tonumber(s[4] or '0'), pushed)))
if ok then
  redis.call('HSET', KEYS[2], 'sent', '1')
  return {epoch, 'ok', f(now)}
end
return {epoch, 'stale', f(now)}
"""
)

#: KEYS: epoch, state, start limit. ARGV[3..5]: member, token, the grant's epoch. An identify
#: released unsent gives its session start back.
RELEASE = """
local s = redis.call('HMGET', KEYS[2], 'holder', 'token', 'sent')
if s[1] == ARGV[3] and s[2] == ARGV[4] and ARGV[5] == epoch then
  redis.call('HSET', KEYS[2], 'holder', '')
  if s[3] ~= '1' and redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('HINCRBY', KEYS[3], 'remaining', 1)
  end
  return {epoch, 'released'}
end
return {epoch, 'not held'}
"""

#: KEYS: epoch, waiters, seen, present. ARGV[3]: member. A waiter that gave up.
WITHDRAW = """
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[3])
redis.call('SREM', KEYS[4], ARGV[3])
return {epoch}
"""

#: KEYS: epoch, start limit. ARGV[3..6]: total, remaining, reset_after, period ('' to only read).
#: A reading within the stored period keeps the lower remaining (another host's grants since).
START_LIMIT = (
    _F
    + """
if ARGV[3] ~= '' then
  local reset_at = now + tonumber(ARGV[5])
  local remaining = tonumber(ARGV[4])
  local old = redis.call('HMGET', KEYS[2], 'remaining', 'reset_at')
  if old[1] and tonumber(old[2]) > now then remaining = math.min(remaining, tonumber(old[1])) end
  redis.call('HSET', KEYS[2], 'total', ARGV[3], 'remaining', remaining, 'reset_at', f(reset_at),
    'period', ARGV[6])
end
local sl = redis.call('HMGET', KEYS[2], 'remaining', 'total', 'reset_at', 'period')
if not sl[1] then return {epoch, '', '', ''} end
local remaining, reset_at = tonumber(sl[1]), tonumber(sl[3])
if now >= reset_at then remaining, reset_at = tonumber(sl[2]), now + tonumber(sl[4]) end
return {epoch, tostring(remaining), sl[2], f(reset_at - now)}
"""
)
