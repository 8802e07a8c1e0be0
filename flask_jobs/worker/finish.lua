-- A job finished: RQ's writes of a success (RQ 3's handle_job_success: worker counters,
-- job status, the result in RQ's result stream, the finished registry, TTLs, the
-- execution's cleanup), the worker's state, the attempt's history events; then, in the
-- same call, the claim of the next job (see claim.lua).
-- KEYS: 1 job hash, 2 execution hash, 3 the job's execution registry, 4 the queue's
-- started registry, 5 worker hash, 6 the worker's execution set, 7 the job's result
-- stream, 8 the queue's finished registry, 9 the job's dependents set, 10 its
-- dependencies set, 11 the history stream, 12 the set of jobs whose dependents are owed
-- their release (the job joins it when it has dependents: the release clears it, or
-- another worker's maintenance does it if this one dies first), then the claim's keys.
-- ARGV: 1 job id, 2 execution id, 3 worker name, 4 now (RQ's date text), 5 seconds
-- worked, to add to the worker's counters now ("": the worker adds its counts up with its
-- next heartbeat), 6 result TTL, 7 finished-registry score, 8 the return value (base64,
-- "" for None), 9 execution start (epoch), 10 execution end (epoch), 11 history stream
-- max length, 12 "1" when the job has dependencies (KEYS[10] exists), 13... the events
-- (see events.lua); then the number of queues to claim from, and the claim's arguments. The worker's state is not written: busy with the next job, or
-- idle, which the loop writes when it finds nothing to claim.
-- Returns {whether the job has dependents, the claim}.
local id, exec, worker = ARGV[1], ARGV[2], ARGV[3]
local ttl = tonumber(ARGV[6])
if ARGV[5] ~= '' then
  redis.call('HINCRBY', KEYS[5], 'successful_job_count', 1)
  redis.call('HINCRBYFLOAT', KEYS[5], 'total_working_time', ARGV[5])
end
local dependents = redis.call('EXISTS', KEYS[9])
if dependents == 1 then redis.call('ZADD', KEYS[12], redis.call('TIME')[1], id) end
if ttl ~= 0 then
  redis.call('HSET', KEYS[1], 'status', 'finished', 'ended_at', ARGV[4],
    'last_heartbeat', ARGV[4], 'worker_name', worker)
  local result = {'type', '1', 'worker_name', worker}
  if ARGV[8] ~= '' then
    result[#result + 1] = 'return_value'
    result[#result + 1] = ARGV[8]
  end
  for _, v in ipairs({'execution_id', ARGV[2], 'execution_started_at', ARGV[9],
                      'execution_ended_at', ARGV[10]}) do result[#result + 1] = v end
  redis.call('XADD', KEYS[7], 'MAXLEN', 10, '*', unpack(result))
  if ttl == -1 then redis.call('PERSIST', KEYS[7]) else redis.call('EXPIRE', KEYS[7], ttl) end
  redis.call('ZADD', KEYS[8], ARGV[7], id)
end
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  if dependents == 1 then redis.call('EXPIRE', KEYS[9], ttl) end
  if ARGV[12] == '1' then redis.call('EXPIRE', KEYS[10], ttl) end
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[4], id .. ':' .. exec)
redis.call('ZREM', KEYS[3], exec)
redis.call('SREM', KEYS[6], id .. ':' .. exec)
local i = add_events(11, ARGV[11], 13)
return {dependents, claim(12, i, tonumber(ARGV[i]))}
