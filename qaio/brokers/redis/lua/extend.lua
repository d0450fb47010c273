-- extend.lua: renew leases in one batch.
-- KEYS: one key per queue in the batch (keys.py Keys.head).
-- ARGV[1]: id-index prefix or ''   ARGV[2]: lease ms
-- ARGV[3..]: 3 per delivery: id, group number, receipt
-- Returns: one integer per delivery: 1 renewed, 0 lost (receipt changed or job gone) or cancel requested.
local now = clock()
local until_ms = now + tonumber(ARGV[2])
local kept = {}
for i = 3, #ARGV, 3 do
  local id, g = ARGV[i], tonumber(ARGV[i + 1])
  local f = redis.call('HMGET', job_key(g, id), 'r', 'c')
  if f[1] == ARGV[i + 2] and not f[2] then
    redis.call('ZADD', leased_key(g), 'XX', until_ms, id)
    kept[#kept + 1] = 1
  else
    kept[#kept + 1] = 0
  end
end
return kept
