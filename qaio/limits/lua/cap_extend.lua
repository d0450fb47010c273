--[[ cap_extend.lua: renew a held slot's lease, for holders that wait longer than one lease.

A slot whose lease already ran out is not revived: someone else may hold its place now.

KEYS[1]  the cap: a zset, member = token, score = lease expiry (ms, server clock)
ARGV[1]  token
ARGV[2]  lease: ms from now
Returns  1 if renewed, 0 if the slot was gone or expired (it is removed)
Writes   ZADD XX the new expiry; the key lives at least as long as this lease
]]

local lease = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[1])
if redis.call('PTTL', KEYS[1]) < lease then
  redis.call('PEXPIRE', KEYS[1], lease)
end
return 1
