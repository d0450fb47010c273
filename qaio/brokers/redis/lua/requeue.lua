-- requeue.lua: put a dead or failed job back in its queue as a fresh first attempt.
-- KEYS: the job's queue (keys.py Keys.head).
-- ARGV[1]: id-index prefix or ''   ARGV[2]: job id   ARGV[3]: fresh body   ARGV[4]: enqueued_at (seconds)
-- Returns: 1 requeued, 0 no such job or not dead/failed.
local id = ARGV[2]
local jk = job_key(1, id)
local status = redis.call('HGET', jk, 's')
if status ~= 'dead' and status ~= 'failed' then return 0 end
redis.call('PERSIST', jk)
if ARGV[1] ~= '' then redis.call('PERSIST', ARGV[1] .. id) end
redis.call('HDEL', jk, 'x', 'v', 'g', 'r', 'c', 'w', 'sa')
redis.call('HSET', jk, 'b', ARGV[3], 's', 'queued', 'e', ARGV[4], 'd', 0)
redis.call('ZREM', done_key(1), id)
redis.call('ZREM', dead_key(1), id)
make_ready(1, jk, id)
return 1
