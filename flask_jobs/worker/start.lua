-- A claimed job starts: RQ's execution record, started registry, worker state and job
-- fields (the writes of RQ 3's prepare_execution and prepare_job_execution), and the
-- "started" history events.
-- KEYS: 1 job hash, 2 execution hash, 3 the job's execution registry, 4 the queue's started
-- registry, 5 worker hash, 6 the worker's execution set, 7 the queue's intermediate list,
-- 8 the history stream.
-- ARGV: 1 job id, 2 execution id, 3 worker name, 4 now (RQ's date text), 5 now (epoch
-- float), 6 now (epoch int), 7 heartbeat TTL, 8 the worker's new state ("" when it is
-- busy already: a worker running jobs back to back writes its hash on heartbeats only),
-- 9 "1" when the worker's hash must live at least the heartbeat TTL (its TTL is shorter:
-- RQ's SimpleWorker sets it at every start), 10 history stream
-- max length, 11... the events (see events.lua).
local id, exec, worker = ARGV[1], ARGV[2], ARGV[3]
local ttl, at = tonumber(ARGV[7]), tonumber(ARGV[6])
local composite = id .. ':' .. exec
redis.call('HSET', KEYS[2], 'id', exec, 'job_id', id, 'created_at', ARGV[5],
  'last_heartbeat', ARGV[5], 'worker_name', worker)
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[3], at + ttl + 60, exec)
redis.call('EXPIRE', KEYS[3], ttl + 60)
redis.call('ZADD', KEYS[4], at + ttl, composite)
redis.call('SADD', KEYS[6], composite)
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[5], 'state', ARGV[8], 'last_heartbeat', ARGV[4])
end
if ARGV[9] == '1' then redis.call('EXPIRE', KEYS[5], ttl) end
redis.call('EXPIRE', KEYS[6], ttl)  -- the set the SADD above may have made
redis.call('HSET', KEYS[1], 'last_heartbeat', ARGV[4], 'status', 'started',
  'started_at', ARGV[4], 'worker_name', worker)
redis.call('PERSIST', KEYS[1])
redis.call('LREM', KEYS[7], 1, id)
add_events(8, ARGV[10], 11)
return 1
