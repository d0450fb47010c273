-- retire.lua: a worker that stops: drop its idle registrations and put the jobs handed to it back.
-- KEYS: one key per queue it took from (keys.py Keys.head).
-- ARGV[1]: id-index prefix or ''   ARGV[2]: the worker's token
-- Returns: how many handed jobs went back to their queues (unrun; their delivery does not count).
local returned = 0
for g = 1, groups() do
  for _, taken in ipairs(take_back(g, ARGV[2])) do
    local id = taken[2]
    local jk = job_key(g, id)
    redis.call('ZREM', leased_key(g), id)
    redis.call('HDEL', jk, 'sa')
    release(g, jk, id)
    returned = returned + 1
  end
end
return returned
