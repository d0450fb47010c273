-- cancel.lua: cancel a job: a waiting one finishes as cancelled at once, a running one is flagged
-- (its worker's next extend returns 0 and the worker stops it).
-- KEYS: the job's queue (keys.py Keys.head).
-- ARGV[1]: id-index prefix or ''   ARGV[2]: job id   ARGV[3]: result TTL ms
-- ARGV[4]: '1' flag a running job too, '0' cancel only a job no worker holds (a gateway withdrawing it)
-- Returns: 0 unknown, finished, or running and not to be flagged; 1 running and flagged; 2 cancelled now.
absorb(1) -- the job may still be in the intake
local now, now_s = clock()
local id = ARGV[2]
local jk = job_key(1, id)
local f = redis.call('HMGET', jk, 's', 'r', 'l', 'x', 'w')
if not f[1] or FINISHED[f[1]] then return 0 end
if f[2] then
  if ARGV[4] ~= '1' then return 0 end
  redis.call('HSET', jk, 'c', '1')
  return 1
end
redis.call('ZREM', ready_key(1, tonumber(f[3]) or 0), id)
redis.call('ZREM', delayed_key(1), id)
local state = {}
if f[4] and f[4] ~= '' then state = cjson.decode(f[4]) end
state['finished_at'] = tonumber(now_s)
redis.call('HSET', jk, 's', 'cancelled', 'x', cjson.encode(state))
redis.call('HDEL', jk, 'b', 'w')
local ended = {}
finish(1, jk, id, now, tonumber(ARGV[3]), false, f[5], nil, ended)
flush(ended, 'ZADD')
return 2
