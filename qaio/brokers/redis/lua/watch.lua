-- watch.lua: read a job's state and, unless it is finished, subscribe a producer process to its end:
-- the channel joins field 'w', and the script that finishes the job PUBLISHes the final state there.
-- Reading and subscribing in one step means a job cannot finish unseen between the two.
-- KEYS[1]: the job hash   ARGV[1]: the producer's reply channel
-- Returns: the state fields (s, t, e, sa, x, v, g) or nil when there is no such job.
local f = redis.call('HMGET', KEYS[1], 's', 't', 'e', 'sa', 'x', 'v', 'g', 'w')
if not f[1] then return false end
if not FINISHED[f[1]] then
  local w, channel = f[8], ARGV[1]
  if not w then
    redis.call('HSET', KEYS[1], 'w', channel)
  elseif not string.find(' ' .. w .. ' ', ' ' .. channel .. ' ', 1, true) then
    redis.call('HSET', KEYS[1], 'w', w .. ' ' .. channel)
  end
end
f[8] = nil
return f
