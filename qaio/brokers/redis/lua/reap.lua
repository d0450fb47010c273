-- reap.lua: return jobs whose lease expired to their queues, keeping their delivery counts;
-- and drop expired entries from the done/dead indexes. Idempotent: any worker may run it any time.
-- KEYS: one key per queue (keys.py Keys.head).
-- ARGV[1]: id-index prefix or ''   ARGV[2]: result TTL ms
-- Returns: how many jobs went back (at most 1000 per queue and call; the caller calls again if it hit that).
local now = clock()
local ttl = tonumber(ARGV[2])
local returned = 0
for g = 1, groups() do
  local expired = redis.call('ZRANGEBYSCORE', leased_key(g), '-inf', '(' .. now, 'LIMIT', 0, 1000)
  for _, id in ipairs(expired) do
    local jk = job_key(g, id)
    redis.call('ZREM', leased_key(g), id)
    if redis.call('HDEL', jk, 'r') == 1 then
      redis.call('HSET', jk, 's', 'queued')
      make_ready(g, jk, id)
      returned = returned + 1
    end
  end
  trim(g, now, ttl)
end
return returned
