-- enqueue.lua: write new jobs, each QUEUED, ready now or delayed; unique by job id.
-- KEYS: one 25-key group per queue in the batch (keys.py GROUP_SUFFIXES), then the queue registry set
--       (single server only; on a Cluster the client registers queues).
-- ARGV[1]: id-index prefix ('qaio:id:'), or '' on a Cluster (the client has already reserved the ids)
-- ARGV[2..]: 8 per job: id, group number (1-based), task, body, priority 0-9, level 0-9,
--            eta ms (0 = now), enqueued_at (seconds, as given)
-- ARGV[last] (optional, present when the count after ARGV[1] is one more than a multiple of 8): the
--            producer's reply channel, stored in each new job's field 'w' (as watch.lua would), so a
--            producer that will wait has the end pushed without a watch.lua call of its own.
-- Returns: one integer per job: 1 created, 0 the id exists already (its job was left alone).
-- Wakes: ZADD marker:<level> 0 'm' (ready) or LT eta (delayed), once per group and level.
-- Hands off: a ready job goes straight to an idle worker of its queue that takes its level (see claim.lua):
--   leased to it, its delivery in the worker's inbox, which that worker is blocked on; one job per idle worker.
local now, now_s = nil, nil -- read the clock only when a job has an eta or there may be an idle worker
local created = {}
local wake = {}
local ready = {} -- ready key -> { score, id, score, id, ... }: one ZADD per key and call
local last = #ARGV
local reply = nil
if (last - 1) % 8 == 1 then reply, last = ARGV[last], last - 1 end
local n = groups()
if #KEYS > n * GROUP then
  for g = 1, n do redis.call('SADD', KEYS[#KEYS], string.match(KEYS[(g - 1) * GROUP + 1], '{(.-)}')) end
end
-- Reserve one FIFO number per job and group with a single INCRBY (numbers of delayed jobs go unused).
local seqs = {}
for i = 3, last, 8 do
  local g = tonumber(ARGV[i])
  seqs[g] = (seqs[g] or 0) + 1
end
for g, count in pairs(seqs) do seqs[g] = redis.call('INCRBY', seq_key(g), count) - count end

local none_idle = {} -- group * 10 + level -> true once no idle worker of that group takes that level
local function hand_off(g, id, jk, level, body)
  if none_idle[g * 10 + level] then return false end
  if now == nil then now, now_s = clock() end
  local key = idle_key(g)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', key, now, '+inf', 'LIMIT', 0, 16)) do
    local token, max_level, lease = string.match(member, '^(.*)|(%d+)|(%d+)$')
    if token and tonumber(max_level) >= level then
      redis.call('ZREM', key, member)
      local receipt = token .. ':' .. id
      lease_job(g, jk, id, 1, receipt, now_s, now + tonumber(lease))
      local inbox = inbox_key(g, token)
      redis.call('ZADD', inbox, 0, delivery_frame(id, receipt, 1, body))
      redis.call('PEXPIRE', inbox, tonumber(lease) * 2)
      return true
    end
  end
  none_idle[g * 10 + level] = true
  return false
end

for i = 2, last, 8 do
  local id, g = ARGV[i], tonumber(ARGV[i + 1])
  local jk = job_key(g, id)
  if ARGV[1] == '' or redis.call('SET', ARGV[1] .. id, jk, 'NX') then
    -- On a Cluster the client reserved the id; a hash still there is an expired job's remains.
    if ARGV[1] == '' then redis.call('DEL', jk) end
    local priority, level, eta = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6])
    redis.call('HSET', jk, 'b', ARGV[i + 3], 't', ARGV[i + 2], 'p', priority, 'l', level, 'e', ARGV[i + 7],
      's', 'queued', 'd', 0)
    if reply then redis.call('HSET', jk, 'w', reply) end
    local mk = marker_key(g, level)
    if eta > 0 and now == nil then now, now_s = clock() end
    if eta > 0 and eta > now then
      redis.call('ZADD', delayed_key(g), eta, id)
      if wake[mk] == nil or wake[mk] > eta then wake[mk] = eta end
    elseif hand_off(g, id, jk, level, ARGV[i + 3]) then
      seqs[g] = seqs[g] + 1 -- its FIFO number goes unused
    else
      seqs[g] = seqs[g] + 1
      local rk = ready_key(g, level)
      local entries = ready[rk]
      if entries == nil then entries = {}; ready[rk] = entries end
      entries[#entries + 1] = ready_score(priority, seqs[g])
      entries[#entries + 1] = id
      wake[mk] = 0
    end
    created[#created + 1] = 1
  else
    created[#created + 1] = 0
  end
end
for rk, entries in pairs(ready) do redis.call('ZADD', rk, unpack(entries)) end
for mk, score in pairs(wake) do redis.call('ZADD', mk, 'LT', score, 'm') end
return created
