-- _common.lua: helpers that scripts.py puts in front of each script that names them; not a script of its
-- own. Each helper is one top-level `local`, its comment right above it.
-- A queue arrives as ONE key, its 'P:{q}:ready:0' (keys.py Keys.head), and its other keys are named from
-- it here: all share the queue's hash tag, so they live in its Cluster slot. Redis turns every KEYS entry
-- into a Lua string on every call, and the 24 others cost more that way than naming the few a call uses.
-- Job hashes are named the same way ('P:{q}:job:<id>'). The id index ('P:id:<id>', ARGV[1] = 'P:id:')
-- is written here only on a single server; on a Cluster ARGV[1] is '' and the client keeps the index.
local SPAN = 562949953421312 -- 2^49: ready score = (9 - priority) * SPAN + seq, exact in a double
local FINISHED = { succeeded = true, failed = true, dead = true, cancelled = true, expired = true }

-- 'P:{q}:ready:0' -> 'P:{q}:', the start of every key of the queue of group g (keys.py GROUP_SUFFIXES).
local prefixes = {}
local function group_prefix(g)
  local prefix = prefixes[g]
  if prefix == nil then
    prefix = string.sub(KEYS[g], 1, -8)
    prefixes[g] = prefix
  end
  return prefix
end
local function ready_key(g, level) return group_prefix(g) .. 'ready:' .. level end
local function marker_key(g, level) return group_prefix(g) .. 'marker:' .. level end
local function delayed_key(g) return group_prefix(g) .. 'delayed' end
local function leased_key(g) return group_prefix(g) .. 'leased' end
local function seq_key(g) return group_prefix(g) .. 'seq' end
local function done_key(g) return group_prefix(g) .. 'done' end
local function dead_key(g) return group_prefix(g) .. 'dead' end
local job_prefix = {}
local function job_key(g, id)
  local prefix = job_prefix[g]
  if prefix == nil then
    prefix = group_prefix(g) .. 'job:'
    job_prefix[g] = prefix
  end
  return prefix .. id
end

-- Idle workers of a queue (zset: 'token|max level|lease ms' -> registration expiry ms) and a worker's
-- inbox of jobs handed to it (zset of delivery frames); in the queue's slot, like the job hashes.
local function idle_key(g) return group_prefix(g) .. 'idle' end
local function inbox_key(g, token) return group_prefix(g) .. 'inbox:' .. token end

-- A queue's intake (list): jobs that producers wrote with plain commands, not enqueue.lua (docs/redis.md,
-- "Writing a job with plain commands"): each entry six netstrings, id, task, priority, level, enqueued_at
-- and body; the producer has set the marker, and `absorb` indexes the id. An entry '=' .. id is a job
-- enqueue.lua wrote behind a longer intake than it could take in: its hash is written, it waits its turn.
local function intake_key(g) return group_prefix(g) .. 'intake' end
-- Intake entries one script takes in (`absorb`): bounds the time a call holds Redis.
local INTAKE_BATCH = 1000

-- Netstrings (len ':' bytes): binary-safe, so bodies and results of any serializer pass through.
local function netstring(v) return #v .. ':' .. v end

-- A handed-off delivery as the worker reads it: netstrings of id, receipt, deliveries and body.
local function delivery_frame(id, receipt, deliveries, body)
  return netstring(id) .. netstring(receipt) .. netstring(tostring(deliveries)) .. netstring(body)
end

local function read_netstring(s, pos)
  local colon = string.find(s, ':', pos, true)
  local n = tonumber(string.sub(s, pos, colon - 1))
  return string.sub(s, colon + 1, colon + n), colon + n + 1
end

-- An intake entry's six fields, or nil when it is not one (a producer in another language erred).
local function parse_intake(entry)
  local fields, pos, size = {}, 1, #entry
  for i = 1, 6 do
    local _, colon, digits = string.find(entry, '^(%d+):', pos) -- '^' anchors at pos
    local last = colon and colon + tonumber(digits)
    if not last or last > size then return nil end
    fields[i] = string.sub(entry, colon + 1, last)
    pos = last + 1
  end
  if pos <= size or fields[1] == '' or not string.find(fields[3], '^%d$') or not string.find(fields[4], '^%d$') then
    return nil
  end
  -- enqueued_at becomes the hash's 'e', which every read of the job's state parses as a number
  if string.find(fields[5], '[^%d%.eE+%-]') or not tonumber(fields[5]) then return nil end
  return fields
end

-- Take back a worker's idle registrations in group g and the deliveries handed to it that are still its
-- own (a lease that ran out was reaped, and its job may be another worker's now): { { frame, id }, ... }.
local function take_back(g, token)
  local key = idle_key(g)
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if string.sub(member, 1, #token + 1) == token .. '|' then redis.call('ZREM', key, member) end
  end
  local box, frames = inbox_key(g, token), {}
  for _, frame in ipairs(redis.call('ZRANGE', box, 0, -1)) do
    local id, pos = read_netstring(frame, 1)
    if redis.call('HGET', job_key(g, id), 'r') == read_netstring(frame, pos) then frames[#frames + 1] = { frame, id } end
  end
  redis.call('DEL', box)
  return frames
end

-- Register a worker as idle in group g until now + ttl ms: enqueue.lua hands it the next job it takes.
local function register_idle(g, token, max_level, lease, now, ttl)
  redis.call('ZADD', idle_key(g), now + ttl, token .. '|' .. max_level .. '|' .. lease)
end

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), t[1] .. '.' .. string.format('%06d', t[2])
end

local function ready_score(priority, seq)
  return string.format('%.0f', (9 - priority) * SPAN + seq)
end

-- Zset members a script adds or removes job by job, gathered per key (`batch`: key -> values) and sent
-- by `flush` as one command per key: a redis.call costs several µs more than the command itself.
local function gather(batch, key, a, b)
  local values = batch[key]
  if values == nil then values = {}; batch[key] = values end
  values[#values + 1] = a
  if b ~= nil then values[#values + 1] = b end
end

-- One `command` ('ZADD' with score, member pairs; 'ZREM' or 'RPUSH' with members) per key of
-- `batch`, in parts of 7000 values: Lua's unpack stops at 8000.
local function flush(batch, command)
  for key, values in pairs(batch) do
    for i = 1, #values, 7000 do redis.call(command, key, unpack(values, i, math.min(i + 6999, #values))) end
  end
end

-- Whether a job taken in from the intake is new: its id reserved in the index (ARGV[1]), or, on a
-- Cluster, where the client keeps the index, its hash absent. Not new: a push retried after a lost reply.
local function taken_in_new(id, jk)
  if ARGV[1] ~= '' then return redis.call('SET', ARGV[1] .. id, jk, 'NX') ~= false end
  return redis.call('EXISTS', jk) == 0
end

-- Move up to INTAKE_BATCH entries of group g's intake, in order, into job hashes and ready sets, as
-- enqueue.lua writes a job, the id reserved in the index (ARGV[1]; on a Cluster, where the client
-- keeps the index, the hash must not exist). Every script that reads, orders or drops waiting jobs
-- calls it first, so to them a job in the intake is as if enqueue.lua had written it. An entry whose
-- id is taken (a push retried after a lost reply) is dropped. One that does not parse becomes a job of
-- its own, 'malformed-<queue>-<n>', with the entry as its body, which the worker cannot decode and so
-- dead-letters with the reason. An entry '=' .. id (enqueue.lua's) puts its job, written already, in
-- its ready set now, unless it was cancelled meanwhile. Returns how many entries it took.
local function absorb(g)
  local key = intake_key(g)
  local entries = redis.call('LRANGE', key, 0, INTAKE_BATCH - 1)
  if #entries == 0 then return 0 end
  redis.call('LTRIM', key, #entries, -1)
  local seq = redis.call('INCRBY', seq_key(g), #entries) - #entries
  local ready = {}
  for _, entry in ipairs(entries) do
    seq = seq + 1
    local placed_id = string.byte(entry) == 61 and string.sub(entry, 2)
    local placed = placed_id and redis.call('HMGET', job_key(g, placed_id), 's', 'p', 'l')
    if placed and placed[1] then -- enqueue.lua's (see intake_key): in line now, unless cancelled meanwhile
      local score = (9 - tonumber(placed[2])) * SPAN + seq
      if placed[1] == 'queued' then gather(ready, ready_key(g, placed[3]), score, placed_id) end
    else
      local f = parse_intake(entry)
        or { 'malformed-' .. string.match(KEYS[g], '{(.-)}') .. '-' .. seq, '', '0', '0', '0', entry }
      local jk = job_key(g, f[1])
      if taken_in_new(f[1], jk) then
        redis.call('HSET', jk, 'b', f[6], 't', f[2], 'p', f[3], 'l', f[4], 'e', f[5], 's', 'queued')
        gather(ready, ready_key(g, f[4]), (9 - tonumber(f[3])) * SPAN + seq, f[1])
      end
    end
  end
  flush(ready, 'ZADD')
  return #entries
end

-- Lease a job to a worker until `until_ms`: the one place that marks a job as taken (claim, hand-off).
-- Its place in `leased` goes into `leases` (ZADD them with flush). `fields`: more of its hash's fields
-- and values, written in the same HSET (a job leased as it is taken in), or nil.
local function lease_job(g, jk, id, deliveries, receipt, now_s, until_ms, leases, fields)
  if fields then
    redis.call('HSET', jk, 'd', deliveries, 'r', receipt, 's', 'started', 'sa', now_s, unpack(fields))
  else
    redis.call('HSET', jk, 'd', deliveries, 'r', receipt, 's', 'started', 'sa', now_s)
  end
  gather(leases, leased_key(g), until_ms, id)
end

-- Put a job (hash already written) in its level's ready zset with a new FIFO position, and wake a worker.
local function make_ready(g, jk, id)
  local f = redis.call('HMGET', jk, 'p', 'l')
  local level = tonumber(f[2]) or 0
  local seq = redis.call('INCR', seq_key(g))
  redis.call('ZADD', ready_key(g, level), ready_score(tonumber(f[1]) or 0, seq), id)
  redis.call('ZADD', marker_key(g, level), 0, 'm')
end

-- Give a leased job back unrun (its caller has left `leased`): this delivery does not count.
local function release(g, jk, id)
  redis.call('HINCRBY', jk, 'd', -1)
  redis.call('HSET', jk, 's', 'queued')
  redis.call('HDEL', jk, 'r')
  make_ready(g, jk, id)
end

-- Ready now, or delayed until eta (ms); the marker's score tells idle workers when to look again.
local function schedule(g, jk, id, eta, now)
  if eta > now then
    redis.call('ZADD', delayed_key(g), eta, id)
    local level = tonumber(redis.call('HGET', jk, 'l')) or 0
    redis.call('ZADD', marker_key(g, level), 'LT', eta, 'm')
  else
    make_ready(g, jk, id)
  end
end

-- The state fields get_state reads, in the order replies.py decodes them.
local STATE_FIELDS = { 's', 't', 'e', 'sa', 'x', 'v', 'g' }

-- The id and the state fields as netstrings, '-' for a missing field.
local function frame(id, fields)
  local parts = { netstring(id) }
  for i = 1, #STATE_FIELDS do
    local v = fields[i]
    parts[#parts + 1] = v and netstring(v) or '-'
  end
  return table.concat(parts)
end

-- Push the finished state to every process waiting on the job (w: its field 'w', the channels).
-- `fields`: the STATE_FIELDS as they now are, when the caller has them (else they are read here).
local function publish(jk, id, w, fields)
  if w then
    local msg = frame(id, fields or redis.call('HMGET', jk, unpack(STATE_FIELDS)))
    for channel in string.gmatch(w, '%S+') do redis.call('PUBLISH', channel, msg) end
  end
end

-- A job reached a final status: keep its state for the result TTL, index it, tell waiters.
-- `w` is the job's field 'w' (reply channels): the caller read it with its other fields and deleted it.
-- Its place in the done or dead index goes into `ended` (ZADD them with flush).
local function finish(g, jk, id, now, ttl, dead, w, fields, ended)
  redis.call('PEXPIRE', jk, ttl)
  if ARGV[1] ~= '' then redis.call('PEXPIRE', ARGV[1] .. id, ttl) end
  gather(ended, dead and dead_key(g) or done_key(g), now, id)
  publish(jk, id, w, fields)
end

-- Drop index entries of finished jobs whose hashes have expired (of dead ones too unless `done_only`).
local function trim(g, now, ttl, done_only)
  redis.call('ZREMRANGEBYSCORE', done_key(g), '-inf', '(' .. (now - ttl))
  if not done_only then redis.call('ZREMRANGEBYSCORE', dead_key(g), '-inf', '(' .. (now - ttl)) end
end

local function groups() return #KEYS end
