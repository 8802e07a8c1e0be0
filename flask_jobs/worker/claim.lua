-- The claim of the next job, shared by the claim and finish scripts: the first job id of
-- the first unpaused non-empty queue, moved to RQ's intermediate list (as RQ's dequeue
-- does), and its hash.
-- KEYS[k+1] RQ's suspension flag, KEYS[k+2] our paused-queue set, then for each queue
-- (highest priority first) its list and its intermediate list.
-- ARGV[a+1] the job-hash key prefix, then the queue names in the order of KEYS.
-- Returns "suspended", false (nothing to run) or {queue key, job id, flat hash}.
local function claim(k, a, nqueues)
  if nqueues == 0 then return false end
  if redis.call('EXISTS', KEYS[k + 1]) == 1 then return 'suspended' end
  for q = 1, nqueues do
    local queue, intermediate = KEYS[k + 1 + 2 * q], KEYS[k + 2 + 2 * q]
    if redis.call('SISMEMBER', KEYS[k + 2], ARGV[a + 1 + q]) == 0 then
      while true do
        local id = redis.call('LMOVE', queue, intermediate, 'LEFT', 'RIGHT')
        if not id then break end
        local hash = redis.call('HGETALL', ARGV[a + 1] .. id)
        if #hash > 0 then return {queue, id, hash} end
        redis.call('LREM', intermediate, 1, id)  -- a deleted job: skip it
      end
    end
  end
  return false
end
