--[[ cap_acquire.lua: take slots of a concurrency cap, as long as fewer than `limit` are held.

Slots are leases, not counters: each is a token scored by its expiry, so the slots of a holder that
died (a gateway killed mid-request) come back once their lease runs out. One call may ask for several
slots (a gateway coalesces the requests that arrive together); they are granted in order.

KEYS[1]   the cap: a zset, member = token, score = lease expiry (ms, server clock)
ARGV[1]   limit: the most slots held at once
ARGV[2]   lease: ms until a slot expires unless released or extended
ARGV[3..] tokens: one per slot asked for, unique (the caller draws them at random)
Returns   {granted, held, wait}: the first `granted` tokens now hold slots, the others were refused;
          `held` slots are in use after this call; `wait` is the ms until the earliest held slot
          expires when some token was refused, else 0
Writes    drops expired slots; ZADD the granted tokens; the key lives no longer than its last lease
]]

local limit = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
local asked = #ARGV - 2
local granted = math.min(math.max(limit - held, 0), asked)

if granted > 0 then
  local entries = {}
  for i = 1, granted do
    entries[2 * i - 1] = now + lease
    entries[2 * i] = ARGV[2 + i]
  end
  redis.call('ZADD', KEYS[1], unpack(entries))
  held = held + granted
  if redis.call('PTTL', KEYS[1]) < lease then
    redis.call('PEXPIRE', KEYS[1], lease)
  end
end

local wait = 0
if granted < asked then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if first[2] then
    wait = tonumber(first[2]) - now
  end
end
return {granted, held, wait}
