--[[ limit_req.lua: one nginx limit_req decision for one key, in one atomic step.

The arithmetic is qaio/limits/nginx.py `step`, line for line; tests hold the two to each other.

KEYS[1]  the key's state, a hash: e = excess (milli-requests), l = last charge (ms, server clock)
ARGV[1]  rate:  milli-requests per second (nginx ctx->rate)
ARGV[2]  burst: milli-requests
ARGV[3]  delay: milli-requests passed without delay (nodelay: a value above any reachable excess)
ARGV[4]  cost:  requests charged (nginx always charges 1)
ARGV[5]  now in ms, or "" for the server's TIME; only tests and replays pass a clock
Returns  {accepted (1|0), delay_ms, excess (milli-requests), retry_after_ms (-1 when accepted)}
Writes   on acceptance only: HSET e l, and PEXPIRE at the moment the state becomes worth no more than
         an absent key (nginx.py idle_ms), so idle keys vanish without changing any later decision.
]]

local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local delay = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])

local now
if ARGV[5] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[5])
end

-- charge: leak since the last charge, then add this request; a new key starts empty (nginx: excess 0)
local state = redis.call('HMGET', KEYS[1], 'e', 'l')
local excess, last
if state[1] and state[2] then
  local stored, since = tonumber(state[1]), tonumber(state[2])
  local ms = now - since
  if ms < -60000 then
    ms = 1
  elseif ms < 0 then
    ms = 0
  end
  excess = stored - math.floor(rate * ms / 1000) + cost * 1000
  if excess < 0 then
    excess = 0
  end
  if ms ~= 0 then
    last = now
  else
    last = since
  end
else
  excess = (cost - 1) * 1000
  last = now
end

if excess > burst then
  return {0, 0, excess, math.floor(((excess - burst) * 1000 + rate - 1) / rate)}
end

redis.call('HSET', KEYS[1], 'e', string.format('%d', excess), 'l', string.format('%d', last))
redis.call('PEXPIRE', KEYS[1], math.floor(((excess + 1000) * 1000 + rate - 1) / rate))

local wait = 0
if excess > delay then
  wait = math.floor((excess - delay) * 1000 / rate)
end
return {1, wait, excess, -1}
