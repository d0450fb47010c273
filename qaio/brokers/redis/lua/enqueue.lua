-- enqueue.lua: write new jobs, each QUEUED, ready now or delayed; unique by job id.
-- KEYS: one key per queue in the batch (keys.py Keys.head; group numbers count them), then the queue
--       registry set when the producer has not registered these queues lately (single server only; on
--       a Cluster the client registers queues).
-- ARGV[1]: id-index prefix ('qaio:id:'), or '' on a Cluster (the client has already reserved the ids)
-- ARGV[2]: the producer's reply channel, stored in each new job's field 'w' (as watch.lua would), so a
--          producer that will wait has the end pushed without a watch.lua call of its own; or ''.
-- ARGV[3..]: runs of jobs that share their fields but id and body; each run is 7 fields, then its jobs:
--            group number (1-based), task, priority 0-9, level 0-9, eta ms (0 = now), enqueued_at
--            (seconds, as given), job count N, then N pairs of id, body.
-- Returns: one integer per job: 1 created, 0 the id exists already (its job was left alone).
-- Wakes: ZADD marker:<level> 0 'm' (ready) or LT eta (delayed), once per group and level.
-- Hands off: a ready job goes straight to an idle worker of its queue that takes its level (see claim.lua):
--   leased to it, its delivery in the worker's inbox, which that worker is blocked on; one job per idle worker.
local now, now_s = nil, nil -- read the clock only when a job has an eta or there may be an idle worker
local created = {}
local wake = {}
local ready = {} -- ready key -> { score, id, score, id, ... }: one ZADD per key and call (flush)
local leases = {} -- the same for `leased`, of the jobs handed to idle workers
local index, reply = ARGV[1], ARGV[2]
-- The registry, when sent, is the last key: the only one without a queue's hash tag.
local queues = #KEYS
if string.find(KEYS[queues], '{', 1, true) == nil then
  queues = queues - 1
  local names = {}
  for g = 1, queues do names[g] = string.match(KEYS[g], '{(.-)}') end
  redis.call('SADD', KEYS[#KEYS], unpack(names))
end
-- Jobs written with plain commands before this call go first: FIFO holds across both ways of writing.
-- A queue that had any hands nothing off in this call either: its woken worker claims them in order.
-- Where more wait than one call takes in, this call's ready jobs join the intake behind them, as
-- '=' .. id entries (absorb puts them in their ready sets when their turn comes).
local taken_in, behind, placed = {}, {}, {} -- placed: intake key -> '=' .. id entries (flush)
for g = 1, queues do
  local taken = absorb(g)
  taken_in[g] = taken > 0
  behind[g] = taken == INTAKE_BATCH and redis.call('LLEN', intake_key(g)) > 0
end
-- FIFO numbers: one INCRBY per group reserves one for each of its jobs, at the first that goes to a
-- ready set (numbers of delayed and handed-off jobs go unused; a one-job hand-off reserves none).
local counts, seqs = {}, {}
local i = 3
while i <= #ARGV do
  local g, count = tonumber(ARGV[i]), tonumber(ARGV[i + 6])
  counts[g] = (counts[g] or 0) + count
  i = i + 7 + 2 * count
end
local function next_seq(g)
  local seq = seqs[g] or redis.call('INCRBY', seq_key(g), counts[g]) - counts[g]
  seqs[g] = seq + 1
  return seq + 1
end

-- The common case first: every id of a run is new, and one MSETNX reserves them all in the id index
-- (a redis.call costs several µs more than the command). When one is taken, or an id appears twice in
-- the run, MSETNX writes nothing and each id is reserved with its own SET NX; so is a run too long for
-- one unpack (Lua's stops at 8000 values; qaio sends at most 2000 jobs per call, other producers may not),
-- and a run of one job, for which building the MSETNX costs more than it saves.
local function reserve_run(g, first, count)
  if count == 1 or count > 3500 then return false end
  local entries, seen = {}, {}
  for j = first, first + 2 * count - 2, 2 do
    local id = ARGV[j]
    if seen[id] then return false end
    seen[id] = true
    entries[#entries + 1] = index .. id
    entries[#entries + 1] = job_key(g, id)
  end
  return redis.call('MSETNX', unpack(entries)) == 1
end

local none_idle = {} -- group * 10 + level -> true once no idle worker of that group takes that level
local function hand_off(g, id, jk, level, body)
  if taken_in[g] or none_idle[g * 10 + level] then return false end
  local key = idle_key(g)
  -- Latest expiry first, so registrations that ran out (claim.lua drops them) come last; the clock is
  -- read only when there is a registration at all.
  local idle = redis.call('ZREVRANGE', key, 0, 15, 'WITHSCORES')
  if idle[1] ~= nil and now == nil then now, now_s = clock() end
  for k = 1, #idle, 2 do
    if tonumber(idle[k + 1]) < now then break end
    local token, max_level, lease = string.match(idle[k], '^(.*)|(%d+)|(%d+)$')
    if token and tonumber(max_level) >= level then
      redis.call('ZREM', key, idle[k])
      local receipt = token .. ':' .. id
      lease_job(g, jk, id, 1, receipt, now_s, now + tonumber(lease), leases)
      local inbox = inbox_key(g, token)
      redis.call('ZADD', inbox, 0, delivery_frame(id, receipt, 1, body))
      redis.call('PEXPIRE', inbox, tonumber(lease) * 2)
      return true
    end
  end
  none_idle[g * 10 + level] = true
  return false
end

i = 3
while i <= #ARGV do
  local g, task, priority, enqueued_at = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2], ARGV[i + 5]
  local level, eta, count = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), tonumber(ARGV[i + 6])
  local base = (9 - tonumber(priority)) * SPAN
  local mk = marker_key(g, level)
  if eta > 0 and now == nil then now, now_s = clock() end
  local delayed = eta > 0 and eta > now
  local rk = ready_key(g, level)
  local reserved = index ~= '' and reserve_run(g, i + 7, count)
  for j = i + 7, i + 5 + 2 * count, 2 do
    local id, body = ARGV[j], ARGV[j + 1]
    local jk = job_key(g, id)
    -- On a Cluster the client reserved the id (or took over a reservation whose job it found missing): a
    -- hash there is a finished job's remains, or a job another producer wrote meanwhile, which it keeps.
    local status = index == '' and redis.call('HGET', jk, 's')
    if status and not FINISHED[status] then
      created[#created + 1] = 0
    elseif index == '' or reserved or redis.call('SET', index .. id, jk, 'NX') then
      if status then redis.call('DEL', jk) end
      if reply == '' then
        redis.call('HSET', jk, 'b', body, 't', task, 'p', priority, 'l', level, 'e', enqueued_at, 's', 'queued')
      else
        redis.call('HSET', jk, 'b', body, 't', task, 'p', priority, 'l', level, 'e', enqueued_at, 's', 'queued', 'w', reply)
      end
      if delayed then
        redis.call('ZADD', delayed_key(g), eta, id)
        if wake[mk] == nil or wake[mk] > eta then wake[mk] = eta end
      elseif behind[g] then
        gather(placed, intake_key(g), '=' .. id)
        wake[mk] = 0
      elseif not hand_off(g, id, jk, level, body) then
        gather(ready, rk, base + next_seq(g), id) -- an integer below 2^53: Redis passes it on exactly
        wake[mk] = 0
      end
      created[#created + 1] = 1
    else
      created[#created + 1] = 0
    end
  end
  i = i + 7 + 2 * count
end
flush(ready, 'ZADD')
flush(leases, 'ZADD')
flush(placed, 'RPUSH')
for mk, score in pairs(wake) do redis.call('ZADD', mk, 'LT', score, 'm') end
return created
