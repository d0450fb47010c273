-- claim.lua: lease up to `limit` due jobs, highest priority first and FIFO within one, across the groups.
-- KEYS: one key per queue to take from (keys.py Keys.head).
-- ARGV[1]: id-index prefix or '' (absorb indexes the ids it takes in)
-- ARGV[2]: limit   ARGV[3]: lease ms   ARGV[4]: max level 0-9   ARGV[5]: receipt token of this claim
-- ARGV[6]: the worker's token ('' = none)   ARGV[7]: '1' = register as idle if this claim finds nothing
-- ARGV[8]: how long an idle registration lasts, ms (the worker blocks for less, then claims again)
-- Returns: { now ms, next delayed eta ms or -1, N, then N pairs: delivery frame handed to this worker
--            (enqueue.lua), group number; then 4 per claimed job: id, body, deliveries, group number }.
-- Steps: take in the intake (jobs written with plain commands), promote due delayed jobs (up to 1000
-- per group and call), pop the best ready entries, lease each (receipt, deliveries + 1, status started,
-- leased zset by expiry), and re-arm the marker of every level that still has ready jobs, and level 0's
-- where the intake still holds entries, so the next idle worker wakes (chained wake-ups). A worker on
-- one queue whose ready jobs do not fill its batch takes them all and leases the rest straight from the
-- intake's head (intake_head, lease_head); one whose ready jobs fill it takes nothing in (an intake
-- entry of priority 0 comes after them all).
-- With a token: first take back this worker's idle registrations and the jobs handed to it meanwhile
-- (still leased to it, leased anew from now); last, if it found nothing at all, register it as idle
-- again, in at most `limit` of its queues (a busy worker is not handed jobs one by one: it claims them
-- in batches).
local now, now_s = clock()
local limit, lease, max_level, receipt = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local token, register, idle_ttl = ARGV[6] or '', ARGV[7] == '1', tonumber(ARGV[8] or '0')
local n = groups()

local handed = {}
if token ~= '' then
  for g = 1, n do
    for _, taken in ipairs(take_back(g, token)) do
      handed[#handed + 1] = taken[1]
      handed[#handed + 1] = g
      -- Its lease dates from the hand-off and may have run out unreaped: lease it anew, as for a claimed job.
      redis.call('ZADD', leased_key(g), 'XX', now + lease, taken[2])
    end
  end
  limit = limit - #handed / 2
end

-- The best `limit` entries of the ready zsets `sources` ({ key, group }), popped: { { id, group }, ... }.
local function pick(sources, limit)
  local picked = {}
  if limit > 0 and #sources == 1 then
    local popped = redis.call('ZPOPMIN', sources[1][1], limit)
    for i = 1, #popped, 2 do picked[#picked + 1] = { popped[i], sources[1][2] } end
  elseif limit > 0 and #sources > 1 then
    local heads = {}
    for s, source in ipairs(sources) do
      local entries = redis.call('ZRANGE', source[1], 0, limit - 1, 'WITHSCORES')
      for i = 1, #entries, 2 do heads[#heads + 1] = { tonumber(entries[i + 1]), s, entries[i] } end
    end
    table.sort(heads, function(a, b)
      if a[1] ~= b[1] then return a[1] < b[1] end
      return a[2] < b[2]
    end)
    for i = 1, math.min(limit, #heads) do
      local source = sources[heads[i][2]]
      redis.call('ZREM', source[1], heads[i][3])
      picked[#picked + 1] = { heads[i][3], source[2] }
    end
  end
  return picked
end

local out = { now, -1, #handed / 2 }
for _, v in ipairs(handed) do out[#out + 1] = v end
local until_ms = now + lease
local leases = {}

-- Lease job `id` of group g to this claim (`fields`: a hash written along, see lease_job) and add it to
-- the reply: id, body, deliveries, group.
local function claimed(g, jk, id, body, deliveries, fields)
  lease_job(g, jk, id, deliveries, receipt, now_s, until_ms, leases, fields)
  out[#out + 1] = id
  out[#out + 1] = body
  out[#out + 1] = deliveries
  out[#out + 1] = g
end

-- Non-empty ready zsets this worker may take from ({ key, group }), and how many jobs they hold.
local function ready_sources()
  local sources, count = {}, 0
  for g = 1, n do
    for level = 0, max_level do
      local key = ready_key(g, level)
      local size = redis.call('ZCARD', key)
      if size > 0 then
        sources[#sources + 1] = { key, g }
        count = count + size
      end
    end
  end
  return sources, count
end

-- The first `count` entries of group g's intake, parsed, when leasing them as they are taken in leases
-- what taking them in and popping would: no delayed job due, and all are jobs of priority 0, not
-- '=' .. id entries (so they come after every job in the ready sets, in FIFO order; qaio writes no
-- other kind there), at levels this worker takes. Else nil, having written nothing.
local function intake_head(g, count)
  local entries = redis.call('LRANGE', intake_key(g), 0, count - 1)
  if #entries == 0 then return nil end
  if #redis.call('ZRANGEBYSCORE', delayed_key(g), '-inf', now, 'LIMIT', 0, 1) > 0 then return nil end
  local jobs = {}
  for i, entry in ipairs(entries) do
    local f = parse_intake(entry)
    if f == nil or f[3] ~= '0' or tonumber(f[4]) > max_level then return nil end
    jobs[i] = f
  end
  return jobs
end

-- Take `jobs` (intake_head's) off group g's intake and lease each in one HSET: the hash absorb would
-- write and the lease, instead of absorb's HSET, the ready set's ZADD and ZPOPMIN, and the lease's
-- HMGET and HSET. An entry whose job is not new is dropped, as absorb drops it.
local function lease_head(g, jobs)
  local key = intake_key(g)
  redis.call('LTRIM', key, #jobs, -1)
  for _, f in ipairs(jobs) do
    local id = f[1]
    local jk = job_key(g, id)
    if taken_in_new(id, jk) then
      claimed(g, jk, id, f[6], 1, { 'b', f[6], 't', f[2], 'p', '0', 'l', f[4], 'e', f[5] })
    end
  end
end

-- A worker on one queue whose ready jobs do not fill its batch takes the rest from the intake's head;
-- otherwise the intake is taken in (up to 1000 entries; not when one queue's ready jobs fill the
-- batch), due delayed jobs made ready, and the batch popped from the ready sets.
local sources, waiting = ready_sources()
local head = limit > waiting and n == 1 and intake_head(1, limit - waiting)
if not head then
  local added = false -- whether the ready sets changed, so `sources` must be looked up again
  for g = 1, n do
    if n > 1 or waiting < limit then added = absorb(g) > 0 or added end
    local due = redis.call('ZRANGEBYSCORE', delayed_key(g), '-inf', now, 'LIMIT', 0, 1000)
    if #due > 0 then
      for _, id in ipairs(due) do make_ready(g, job_key(g, id), id) end
      redis.call('ZREM', delayed_key(g), unpack(due))
      added = true
    end
  end
  if added then sources = ready_sources() end
end
local picked = pick(sources, limit)

for _, p in ipairs(picked) do
  local id, g = p[1], p[2]
  local jk = job_key(g, id)
  local f = redis.call('HMGET', jk, 'b', 'd')
  local body = f[1]
  if body then -- a missing hash is a purged job's stale entry
    claimed(g, jk, id, body, (tonumber(f[2]) or 0) + 1)
  end
end
if head then lease_head(1, head) end
flush(leases, 'ZADD')

for _, source in ipairs(sources) do
  if redis.call('ZCARD', source[1]) > 0 then
    local level = tonumber(string.sub(source[1], -1))
    redis.call('ZADD', marker_key(source[2], level), 0, 'm')
  end
end
-- Entries left on an intake wait too (this call took none in, or only its first 1000): wake the next
-- idle worker for them, on the marker every worker blocks on.
for g = 1, n do
  if redis.call('LLEN', intake_key(g)) > 0 then redis.call('ZADD', marker_key(g, 0), 0, 'm') end
end

if token ~= '' and register and #out == 3 then
  for g = 1, n do
    -- Registrations that ran out (their workers died) go here, not at a settle's: that is on a round trip's path.
    redis.call('ZREMRANGEBYSCORE', idle_key(g), '-inf', '(' .. now)
    -- In at most `limit` queues: each registration takes one hand-off, and the worker has `limit` free slots.
    if g <= limit then register_idle(g, token, max_level, lease, now, idle_ttl) end
  end
end

for g = 1, n do
  local head = redis.call('ZRANGE', delayed_key(g), 0, 0, 'WITHSCORES')
  if #head > 0 then
    local eta = tonumber(head[2])
    if out[2] < 0 or eta < out[2] then out[2] = eta end
  end
end
return out
