-- forget.lua: delete succeeded jobs now, their results read and wanted no longer, not at the result TTL.
-- KEYS: one key per queue in the batch (keys.py Keys.head).
-- ARGV[1]: id-index prefix or ''   ARGV[2..]: 2 per job: id, group number (1-based)
-- Returns: the ids deleted (the Cluster client deletes their index keys). Jobs in any other status stay.
local gone = {}
for i = 2, #ARGV, 2 do
  local id, g = ARGV[i], tonumber(ARGV[i + 1])
  local jk = job_key(g, id)
  if redis.call('HGET', jk, 's') == 'succeeded' then
    redis.call('DEL', jk)
    if ARGV[1] ~= '' then redis.call('DEL', ARGV[1] .. id) end
    redis.call('ZREM', done_key(g), id)
    gone[#gone + 1] = id
  end
end
return gone
