-- progress.lua: store a running job's progress, unless the job has finished meanwhile.
-- KEYS[1]: the job hash   ARGV[1]: progress JSON [fraction, message]
-- Returns: 1 stored, 0 no such job or finished.
local status = redis.call('HGET', KEYS[1], 's')
if not status or FINISHED[status] then return 0 end
redis.call('HSET', KEYS[1], 'g', ARGV[1])
return 1
