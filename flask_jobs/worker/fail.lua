-- A run that did not succeed, or a job that cannot run: RQ 3's writes of a failure
-- (handle_job_failure: failed or stopped, in the failed registry, with a failure in RQ's
-- result stream), of a retry (Job.retry: back on the queue through Queue._enqueue_job,
-- or in the scheduled registry through Queue.schedule_job), of an abandoned job (RQ's
-- StartedJobRegistry.cleanup) or of an unreadable hash; the execution's cleanup, the
-- worker's counters and the attempt's history events. Python decides the outcome (the
-- retry policy, the interval) and hands over the job's fields as RQ's to_dict makes them.
-- KEYS: 1 job hash, 2 execution hash, 3 the job's execution registry, 4 the queue's
-- started registry, 5 worker hash, 6 the worker's execution set, 7 the job's result
-- stream, 8 the queue's failed registry, 9 the job's dependents set, 10 its dependencies
-- set, 11 the queue's list, 12 the queue's scheduled registry, 13 RQ's set of queues,
-- 14 the history stream, 15 the set of jobs whose dependents are owed their release (see
-- finish.lua; a job that failed for good joins it when it has dependents).
-- ARGV: 1 job id, 2 the outcome ("failed": failed or stopped; "queued": retried at once;
-- "scheduled": retried later), 3 the execution id ("": no run to clean up), 4 what of the
-- run goes ("run": RQ's cleanup_execution; "started": its started-registry entry only, an
-- abandoned run), 5 "1" to count a failure in the worker's hash, 6 seconds worked to add
-- to it ("": none), 7 the job's TTL (RQ's Job.cleanup: > 0 sets it on the hash, the
-- dependents and the dependencies; otherwise nothing), 8 the failed-registry score, the
-- scheduled time (epoch) or "front"/"back" of the queue, 9 the result stream's TTL ("":
-- left alone, -1: persisted), 10 the number of job-hash fields, then each field and its
-- value; then the number of result fields and each field and value (0: no result entry);
-- then the history stream's max length and the events (see events.lua).
-- A run whose started-registry entry is gone was written already (a reply lost, the same
-- call sent again) or concluded by RQ's cleanup: nothing is written again. Returns 0 for
-- such a run; else 1, or 2 when the job has dependents (to release after a failure).
local id, outcome, exec = ARGV[1], ARGV[2], ARGV[3]
if exec ~= '' then
  local composite = id .. ':' .. exec
  if not redis.call('ZSCORE', KEYS[4], composite) then return 0 end
  redis.call('ZREM', KEYS[4], composite)
  if ARGV[4] == 'run' then
    redis.call('DEL', KEYS[2])
    redis.call('ZREM', KEYS[3], exec)
    redis.call('SREM', KEYS[6], composite)
  end
end
if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[5], 'failed_job_count', 1) end
if ARGV[6] ~= '' then redis.call('HINCRBYFLOAT', KEYS[5], 'total_working_time', ARGV[6]) end
local function pairs_from(i)
  local n = tonumber(ARGV[i])
  local flat = {}
  for j = i + 1, i + 2 * n do flat[#flat + 1] = ARGV[j] end
  return flat, i + 2 * n + 1
end
local fields, i = pairs_from(10)
if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
local ttl = tonumber(ARGV[7])
if ttl and ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[9], ttl)
  redis.call('EXPIRE', KEYS[10], ttl)
end
if outcome == 'failed' then
  redis.call('ZADD', KEYS[8], ARGV[8], id)
elseif outcome == 'queued' then
  redis.call(ARGV[8] == 'front' and 'LPUSH' or 'RPUSH', KEYS[11], id)
else
  redis.call('SADD', KEYS[13], KEYS[11])
  redis.call('ZADD', KEYS[12], ARGV[8], id)
end
local result
result, i = pairs_from(i)
if #result > 0 then
  redis.call('XADD', KEYS[7], 'MAXLEN', '~', 10, '*', unpack(result))
  if ARGV[9] == '-1' then
    redis.call('PERSIST', KEYS[7])
  elseif ARGV[9] ~= '' then
    redis.call('EXPIRE', KEYS[7], ARGV[9])
  end
end
add_events(14, ARGV[i], i + 1)
local dependents = redis.call('EXISTS', KEYS[9])
if dependents == 1 and outcome == 'failed' then
  redis.call('ZADD', KEYS[15], redis.call('TIME')[1], id)
end
return 1 + dependents
