--[[ cap_release.lua: give slots back.

KEYS[1]   the cap: a zset, member = token, score = lease expiry (ms, server clock)
ARGV[1..] tokens
Returns   one integer per token: 1 if its slot was held, 0 if not (released already, or expired)
Writes    ZREM the tokens, and drops expired slots while here
]]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local held = {}
for i = 1, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) > now then
    held[i] = 1
  else
    held[i] = 0
  end
end
redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return held
