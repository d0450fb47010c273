-- settle.lua: end deliveries (ack, retry, dead-letter, release) and store their states, in one step.
-- KEYS: one key per queue in the batch (keys.py Keys.head).
-- ARGV[1]: id-index prefix or ''   ARGV[2]: result TTL ms
-- ARGV[3..]: 9 per settlement: id, group number, action ('a' ack | 'd' dead | 'r' retry | 'l' release),
--            receipt, status, state JSON (attempt, error, traceback, finished_at, worker; may be ''),
--            result bytes ('' = none), retry body (retry only), retry eta ms (retry only)
-- Returns: ids of the jobs that finished here (the Cluster client then sets the TTL of their index keys).
-- A receipt that no longer matches (lease expired and the job was claimed again, or cancelled) is ignored.
-- Finished jobs' states are PUBLISHed to the channels of waiting producers (field 'w') right here.
-- ARGV[last 4] (optional, present when the count after ARGV[2] is 4 more than a multiple of 9): a worker
--            blocked on its inbox (token, max level, lease ms, registration ms): once its jobs are settled,
--            register it as idle in each group with no ready job it takes, as a claim that found nothing
--            would; it saves that worker the claim call before the next hand-off.
local now = clock()
local ttl = tonumber(ARGV[2])
local finished = {}
local touched = {}
local left, ended = {}, {} -- leased key -> ids; done/dead key -> score, id pairs (sent by flush)
local last = #ARGV
local idle = nil
if (last - 2) % 9 == 4 then idle, last = { ARGV[last - 3], tonumber(ARGV[last - 2]), ARGV[last - 1], tonumber(ARGV[last]) }, last - 4 end
for i = 3, last, 9 do
  local id, g, action = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local jk = job_key(g, id)
  -- The receipt, the reply channels, then the STATE_FIELDS that settling leaves as they are (t e sa v g).
  local held = redis.call('HMGET', jk, 'r', 'w', 't', 'e', 'sa', 'v', 'g')
  if held[1] == ARGV[i + 3] then
    gather(left, leased_key(g), id)
    if action == 'a' or action == 'd' then
      if ARGV[i + 6] ~= '' then
        redis.call('HSET', jk, 's', ARGV[i + 4], 'x', ARGV[i + 5], 'v', ARGV[i + 6])
      else
        redis.call('HSET', jk, 's', ARGV[i + 4], 'x', ARGV[i + 5])
      end
      -- Only failed and dead jobs can be requeued: the others' bodies are dead weight for the TTL.
      if action == 'a' and ARGV[i + 4] ~= 'failed' then
        redis.call('HDEL', jk, 'r', 'c', 'b', 'w')
      else
        redis.call('HDEL', jk, 'r', 'c', 'w')
      end
      local result = ARGV[i + 6] ~= '' and ARGV[i + 6] or held[6]
      local state = { ARGV[i + 4], held[3], held[4], held[5], ARGV[i + 5], result, held[7] } -- STATE_FIELDS
      finish(g, jk, id, now, ttl, action == 'd', held[2], state, ended)
      finished[#finished + 1] = id
      touched[g] = (touched[g] or action == 'd') -- true once a job of the group died here
    elseif action == 'r' then
      redis.call('HSET', jk, 'b', ARGV[i + 7], 's', ARGV[i + 4], 'x', ARGV[i + 5], 'd', 0)
      redis.call('HDEL', jk, 'r', 'v')
      schedule(g, jk, id, tonumber(ARGV[i + 8]), now)
    else -- release: back to the queue unrun; this delivery does not count
      release(g, jk, id)
    end
  end
end
flush(left, 'ZREM')
flush(ended, 'ZADD')
-- The dead index only where a job died here: the reaper trims both as well.
for g, died in pairs(touched) do trim(g, now, ttl, not died) end
if idle then
  for g = 1, groups() do
    local levels = {}
    for level = 0, idle[2] do levels[#levels + 1] = ready_key(g, level) end
    -- One EXISTS for all the levels it takes: this runs after the PUBLISH above, whose message Redis
    -- sends only when the script ends, so every call here delays the waiting producer.
    if redis.call('EXISTS', unpack(levels)) == 0 then register_idle(g, idle[1], idle[2], idle[3], now, idle[4]) end
  end
end
return finished
