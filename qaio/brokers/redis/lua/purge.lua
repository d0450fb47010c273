-- purge.lua: drop waiting jobs (intake, ready and delayed) of one queue; leased jobs finish as usual.
-- KEYS: the queue (keys.py Keys.head).
-- ARGV[1]: id-index prefix or ''   ARGV[2]: at most this many jobs per call (the caller repeats)
-- Returns: the ids dropped (the Cluster client deletes their index keys).
local budget = tonumber(ARGV[2])
absorb(1) -- jobs in the intake are waiting too
local dropped = {}
local sources = { delayed_key(1) }
for level = 0, 9 do sources[#sources + 1] = ready_key(1, level) end
for _, key in ipairs(sources) do
  if budget <= 0 then break end
  local ids = redis.call('ZRANGE', key, 0, budget - 1)
  if #ids > 0 then
    for _, id in ipairs(ids) do
      redis.call('DEL', job_key(1, id))
      if ARGV[1] ~= '' then redis.call('DEL', ARGV[1] .. id) end
      dropped[#dropped + 1] = id
    end
    redis.call('ZREM', key, unpack(ids))
    budget = budget - #ids
  end
end
return dropped
