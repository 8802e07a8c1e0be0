-- A job ended: the release of its dependents whose dependencies are all met (RQ 3's
-- enqueue_dependents), checked and written in one call, so that two parents of one child
-- ending at the same moment release it once. The dependents and the keys they need were
-- read beforehand (dependents.py); a set that changed since makes the call write nothing
-- and ask for another reading.
-- KEYS: 1 the ended job's hash, 2 its dependents set, then for each dependent read (n of
-- them) 6 keys: its hash, its dependencies set, its dependents set, its queue's deferred
-- registry, its queue's list and its queue's ready registry (queue: the dependent's
-- origin); then the hashes of the dependents' dependencies (m of them, the ended job's
-- own not again); last, the set of jobs owed a release (see finish.lua), which the ended
-- job leaves once its release is made ("ok" or "gone").
-- ARGV: 1 the ended job's id, 2 now (RQ's date text), 3 now (epoch int), 4 the timeout a
-- job without one gets (RQ's queue default), 5 n, 6 m, then n pairs (dependent id, its
-- origin as read), then the m dependency ids in the order of their KEYS.
-- Returns {"retry"} (a set changed: nothing was written), {"gone"} (the ended job's hash
-- is gone: nothing released, as RQ's release raises then), or {"ok", queued ids, {origin,
-- id, ...} of rate-limited ones moved to their ready registry, for RQ's enqueue to give
-- them a slot}.
local parent, n, m = ARGV[1], tonumber(ARGV[5]), tonumber(ARGV[6])
local read, hash_of = {}, {[parent] = KEYS[1]}
for i = 1, n do read[ARGV[5 + 2 * i]] = i end
for j = 1, m do hash_of[ARGV[6 + 2 * n + j]] = KEYS[2 + 6 * n + j] end

local function set(v) return v and v ~= '' and tonumber(v) ~= 0 end

local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  redis.call('ZREM', KEYS[#KEYS], parent)
  return {'gone'}
end
-- RQ's rules for the ended job itself: canceled or stopped holds every dependent back,
-- failed only those that do not allow failures; any other status lets them go.
local blocks = status == 'canceled' or status == 'stopped'
local failed = status == 'failed'

-- First every check, and no write: a changed set returns before anything is written.
local forget, release = {}, {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local i = read[id]
  if not i then return {'retry'} end  -- a dependent added since the reading
  local k = 2 + 6 * (i - 1)
  local f = redis.call('HMGET', KEYS[k + 1], 'status', 'origin', 'allow_dependency_failures')
  if f[1] == 'deferred' then
    if (f[2] or '') ~= ARGV[6 + 2 * i] then return {'retry'} end
    local allow = set(f[3])
    local met = not blocks and (allow or not failed)
    if met then
      -- The others, as RQ reads them: a hash that is gone does not hold the dependent.
      for _, dep in ipairs(redis.call('SMEMBERS', KEYS[k + 2])) do
        if dep ~= parent then
          local key = hash_of[dep]
          if not key then return {'retry'} end  -- a dependency added since the reading
          local s = redis.call('HGET', key, 'status')
          if s and s ~= 'finished' and not (allow and s == 'failed') then
            met = false
            break
          end
        end
      end
    end
    if met then release[#release + 1] = k end
  elseif f[1] and f[1] ~= 'canceled' then
    forget[#forget + 1] = id  -- released already (another parent's end, or by hand)
  end
  -- a canceled dependent, or one whose hash is gone, stays in the set (as RQ leaves it)
end

-- Then the writes: RQ's move to ready and its enqueue from there, in one go.
local queued, limited = {}, {}
for _, k in ipairs(release) do
  local i = (k - 2) / 6 + 1
  local id, origin = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  local job = KEYS[k + 1]
  local f = redis.call('HMGET', job, 'rate_limit_key', 'rate_limit_concurrency', 'ttl',
    'timeout', 'enqueue_at_front', 'enqueue_at_front_on_retry', 'ended_at')
  redis.call('ZREM', KEYS[k + 4], id)
  if (f[1] or '') ~= '' and set(f[2]) then
    -- RQ's concurrency limit: the job waits in its queue's ready registry, and RQ's own
    -- enqueue from there gives it a slot or has it wait for one.
    redis.call('HSET', job, 'status', 'ready_to_enqueue')
    redis.call('ZADD', KEYS[k + 6], ARGV[3], id)
    limited[#limited + 1] = origin
    limited[#limited + 1] = id
  else
    redis.call('HSET', job, 'status', 'queued', 'enqueued_at', ARGV[2])
    if (f[4] or '') == '' then redis.call('HSET', job, 'timeout', ARGV[4]) end
    local ttl = tonumber(f[3])
    if ttl and ttl > 0 then
      redis.call('EXPIRE', job, ttl)
      redis.call('EXPIRE', KEYS[k + 3], ttl)
      redis.call('EXPIRE', KEYS[k + 2], ttl)
    end
    local front = (set(f[6]) and (f[7] or '') ~= '') or set(f[5])
    redis.call(front and 'LPUSH' or 'RPUSH', KEYS[k + 5], id)
    queued[#queued + 1] = id
  end
  forget[#forget + 1] = id
end
for at = 1, #forget, 1000 do  -- unpack's limit: at most a thousand at a time
  redis.call('SREM', KEYS[2], unpack(forget, at, math.min(at + 999, #forget)))
end
redis.call('ZREM', KEYS[#KEYS], parent)
return {'ok', queued, limited}
