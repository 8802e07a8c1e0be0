"""A new job in one Lua call: RQ's job hash, its queue (or RQ's scheduled registry), the
set of queues, and its "queued" history event.

The fields of the hash are those RQ's own ``Job.to_dict`` makes, written where
RQ's enqueue writes them, so RQ's classes, ``rq info`` and a plain ``rq worker``
read the job as one of theirs. One command and one reply instead of RQ's
MULTI, five commands and EXEC is most of what makes our enqueue cheaper than
``Queue.enqueue``. The enqueue path and the outbox relay share it.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import redis
from rq.job import JobStatus
from rq.rate_limit import ACQUIRE_AND_ENQUEUE_SCRIPT
from rq.utils import current_timestamp, now, utcformat

from ..keys import (
    JOB_UNIQUE_FIELD,
    JOB_UNIQUE_TTL_FIELD,
    JOB_UNIQUE_WHILE_FIELD,
    RATE_LIMIT_CONCURRENCY_FIELD,
    RATE_LIMIT_KEY_FIELD,
    RQ_JOB_PREFIX,
    RQ_QUEUE_PREFIX,
    RQ_QUEUES_KEY,
    RQ_RATE_LIMIT_KEYS,
    job_key,
    outbox_sent_key,
    queue_key,
    rate_limit_keys,
    scheduled_key,
    unique_key,
)
from .flask_job import FlaskJob

__all__ = [
    "STORE_MANY_SCRIPT",
    "STORE_SCRIPT",
    "is_refusal",
    "job_fields",
    "new_job",
    "run_at",
    "run_pipeline",
    "store_job",
    "store_many",
    "stored_as",
]

# KEYS: 1 job hash, 2 mark (of an outbox push, or a schedule's fire-time claim), 3 queue
#       list (or scheduled registry), 4 rq:queues, 5 history stream, 6 unique key,
#       7 rq:rl-keys, 8 rq:rl:<key>, 9 its :allowed set, 10 its :rate_limited set.
# ARGV: 1 job id, 2 R|L|Z (push back, front, or schedule), 3 run-at (epoch s), 4 queue key,
#       5 job TTL (-1: none), 6 mark TTL (0: no mark, no check), 7 unique TTL (0: not
#       unique), 8 whether a started job keeps its unique key (1/0), 9 concurrency (0: no
#       limit), 10 the concurrency key, 11 now (epoch s, float), 12 now (RQ's format),
#       13 RQ's queue key prefix, 14 RQ's job key prefix, 15 n: how many hash arguments
#       follow, then n field/value arguments of the job hash, then those of the history
#       event (if any).
# Returns 0 when the mark skips the job (a job that exists, or was marked as pushed), the
# id of the job holding the unique key when that job has not ended (nothing is stored, the
# mark is set: the run was decided),
# else 1.
STORE_SCRIPT = (
    """
local mark = tonumber(ARGV[6])
if mark > 0 and (redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[1]) == 1) then
  return 0
end
local unique_ttl = tonumber(ARGV[7])
if unique_ttl > 0 then
  local holder = redis.call('GET', KEYS[6])
  if holder and holder ~= ARGV[1] then
    local status = redis.call('HGET', ARGV[14] .. holder, 'status')
    if status == 'queued' or status == 'scheduled' or status == 'deferred'
        or status == 'rate_limited' or (status == 'started' and ARGV[8] == '1') then
      if mark > 0 then redis.call('SET', KEYS[2], '1', 'EX', mark) end
      return holder
    end
  end
  redis.call('SET', KEYS[6], ARGV[1], 'EX', unique_ttl)
end
local n = tonumber(ARGV[15])
redis.call('HSET', KEYS[1], unpack(ARGV, 16, 15 + n))
local ttl = tonumber(ARGV[5])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
local concurrency = tonumber(ARGV[9])
if ARGV[2] == 'Z' then
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
elseif concurrency > 0 then
  -- RQ's rate-limited enqueue (Queue._enqueue_rate_limited_job), then RQ's own script
  -- fills the free slots, oldest waiting job first.
  redis.call('HSET', KEYS[1], 'status', 'rate_limited')
  if ARGV[2] == 'L' then redis.call('HSET', KEYS[1], 'enqueue_at_front', '1') end
  redis.call('SADD', KEYS[7], ARGV[10])
  redis.call('HSET', KEYS[8], 'concurrency', concurrency)
  redis.call('ZADD', KEYS[10], ARGV[11], ARGV[1])
  local function acquire(KEYS, ARGV)
"""
    + ACQUIRE_AND_ENQUEUE_SCRIPT
    + """
  end
  acquire({KEYS[9], KEYS[10]}, {concurrency, ARGV[11], ARGV[12], ARGV[13], ARGV[14]})
elseif ARGV[2] == 'L' then
  redis.call('LPUSH', KEYS[3], ARGV[1])
else
  redis.call('RPUSH', KEYS[3], ARGV[1])
end
redis.call('SADD', KEYS[4], ARGV[4])
if mark > 0 then redis.call('SET', KEYS[2], '1', 'EX', mark) end
if #ARGV > 15 + n then
  redis.call('XADD', KEYS[5], '*', unpack(ARGV, 16 + n))
end
return 1
"""
)


# Many runs of one job on one queue, in one call: the fields and event fields they all share
# are sent once.
# KEYS: 1 queue list, 2 rq:queues, 3 history stream, then one job hash per run.
# ARGV: 1 queue key, 2 R|L, 3 job TTL (-1: none), then n and the n shared hash arguments,
#       then m and the m shared event arguments (m = 0: no history), then per run its id,
#       a and its a own hash arguments, b and its b own event arguments.
STORE_MANY_SCRIPT = """
local ttl = tonumber(ARGV[3])
local i = 4
local n = tonumber(ARGV[i])
local shared = {unpack(ARGV, i + 1, i + n)}
i = i + n + 1
local m = tonumber(ARGV[i])
local shared_event = {unpack(ARGV, i + 1, i + m)}
i = i + m + 1
local push = ARGV[2] == 'L' and 'LPUSH' or 'RPUSH'
for k = 4, #KEYS do
  local id = ARGV[i]
  local a = tonumber(ARGV[i + 1])
  local fields = {unpack(shared)}
  for j = i + 2, i + 1 + a do fields[#fields + 1] = ARGV[j] end
  i = i + 2 + a
  redis.call('HSET', KEYS[k], unpack(fields))
  if ttl > 0 then redis.call('EXPIRE', KEYS[k], ttl) end
  redis.call(push, KEYS[1], id)
  local b = tonumber(ARGV[i])
  if m > 0 then
    local event = {unpack(shared_event)}
    for j = i + 1, i + b do event[#event + 1] = ARGV[j] end
    redis.call('XADD', KEYS[3], '*', unpack(event))
  end
  i = i + 1 + b
end
redis.call('SADD', KEYS[2], ARGV[1])
return #KEYS - 3
"""
#: Runs per call of `STORE_MANY_SCRIPT` (a call blocks Redis while it runs).
MANY_CHUNK = 500


def new_job(
    queue: Any,
    func_name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    rq_options: Mapping[str, Any],
    *,
    when: datetime | None,
    job_id: str | None = None,
) -> FlaskJob:
    """RQ's job for one run on ``queue``, filled in as RQ's enqueue does (nothing is sent)."""
    job = queue.create_job(
        func_name,
        args=args,
        kwargs=kwargs,
        job_id=job_id,
        status=JobStatus.QUEUED if when is None else JobStatus.SCHEDULED,
        **rq_options,
    )
    assert isinstance(job, FlaskJob)
    job.origin = queue.name
    if when is None:
        job.enqueued_at = now()
    return job


def run_at(when: datetime | None) -> int | None:
    """``when`` as RQ's scheduled registry scores it (whole seconds since the epoch)."""
    return None if when is None else calendar.timegm(when.utctimetuple())


def job_fields(job: Any) -> dict[str, str | bytes]:
    """The fields of ``job``'s hash, as RQ's ``Job.save`` writes them.

    Empty ones are left out (a new job has no ``started_at``, ``worker_name``,
    callbacks...): RQ's ``Job.restore`` reads a missing field as an empty one,
    and each field left out is two arguments fewer to pack, send and store.
    """
    return {
        key: value if isinstance(value, str | bytes) else str(value)
        for key, value in job.to_dict().items()
        if value is not None and value != ""
    }


def store_job(
    script: Any,
    client: Any,
    job_id: str,
    queue: str,
    fields: Mapping[str, str | bytes],
    stream: str,
    event: Mapping[str, str] | None,
    *,
    run_at: int | None = None,
    at_front: bool = False,
    mark_ttl: int = 0,
    mark_key: str | None = None,
) -> Any:
    """Store a new job with ``script`` (`STORE_SCRIPT`, registered) on ``client``: a
    connection (loads the script when Redis lacks it), or a pipeline run by `run_pipeline`.
    With ``mark_ttl``, an existing or already pushed job is skipped: its mark is
    ``mark_key`` (by default the outbox's mark of the job id), set for ``mark_ttl`` seconds
    with the job."""
    if run_at is not None:
        target, mode, score = scheduled_key(queue), "Z", run_at
    else:
        target, mode, score = queue_key(queue), "L" if at_front else "R", 0
    ttl = fields.get("ttl")
    flat = [item for pair in fields.items() for item in pair]
    if event:
        flat.extend(item for pair in event.items() for item in pair)
    unique = _text(fields.get(JOB_UNIQUE_FIELD))
    unique_ttl = int(fields.get(JOB_UNIQUE_TTL_FIELD) or 0) if unique else 0
    holds_running = _text(fields.get(JOB_UNIQUE_WHILE_FIELD)) == "running"
    limit_key = _text(fields.get(RATE_LIMIT_KEY_FIELD))
    concurrency = int(fields.get(RATE_LIMIT_CONCURRENCY_FIELD) or 0) if limit_key else 0
    limit_keys = rate_limit_keys(limit_key or "-")
    keys = [job_key(job_id), mark_key or outbox_sent_key(job_id), target, RQ_QUEUES_KEY, stream,
            unique_key(unique or "-"), RQ_RATE_LIMIT_KEYS, *limit_keys]  # fmt: skip
    args = [job_id, mode, score, queue_key(queue), int(ttl) if ttl else -1, mark_ttl,
            unique_ttl, int(holds_running), concurrency, limit_key or "",
            current_timestamp(), utcformat(now()), RQ_QUEUE_PREFIX, RQ_JOB_PREFIX,
            2 * len(fields), *flat]  # fmt: skip
    if isinstance(client, redis.client.Pipeline):
        # EVALSHA as it is: redis-py would ask SCRIPT EXISTS first, a round trip per batch.
        return client.evalsha(script.sha, len(keys), *keys, *args)
    return script(keys=keys, args=args, client=client)


def store_many(
    script: Any,
    pipe: Any,
    queue: str,
    runs: Sequence[tuple[str, Mapping[str, str | bytes], Mapping[str, str] | None]],
    stream: str,
    *,
    at_front: bool = False,
) -> None:
    """Store new jobs ``(id, fields, event)`` of one queue with ``script``
    (`STORE_MANY_SCRIPT`, registered) on ``pipe``, a pipeline run by `run_pipeline`."""
    for start in range(0, len(runs), MANY_CHUNK):
        chunk = runs[start : start + MANY_CHUNK]
        shared = _shared([fields for _, fields, _ in chunk])
        history = chunk[0][2] is not None
        shared_event = _shared([event or {} for _, _, event in chunk]) if history else {}
        ttl = shared.get("ttl") or chunk[0][1].get("ttl")
        args: list[Any] = [queue_key(queue), "L" if at_front else "R", int(ttl) if ttl else -1]
        args += [2 * len(shared), *_flat(shared)]
        args += [2 * len(shared_event), *_flat(shared_event)]
        for job_id, fields, event in chunk:
            own = [item for pair in fields.items() if pair[0] not in shared for item in pair]
            args += [job_id, len(own), *own]
            mine = [
                item
                for pair in (event or {}).items()
                if pair[0] not in shared_event
                for item in pair
            ]
            args += [len(mine), *mine]
        keys = [queue_key(queue), RQ_QUEUES_KEY, stream, *(job_key(id_) for id_, _, _ in chunk)]
        pipe.evalsha(script.sha, len(keys), *keys, *args)


def _text(value: str | bytes | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def stored_as(reply: Any, job_id: str) -> str | None:
    """The id of the job a `store_job` reply stands for: ``job_id`` when it was stored, the
    id of the job holding its unique key when that one was kept instead, None when a mark
    skipped it."""
    if isinstance(reply, bytes | str) and not str(reply).isdigit():
        return reply.decode() if isinstance(reply, bytes) else reply
    return job_id if int(reply) == 1 else None


def _shared(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The items every one of ``rows`` has, with the same value."""
    first, rest = rows[0], rows[1:]
    return {k: v for k, v in first.items() if all(row.get(k) == v for row in rest)}


def _flat(mapping: Mapping[str, Any]) -> list[Any]:
    return [item for pair in mapping.items() for item in pair]


def run_pipeline(
    connection: redis.Redis, fill: Callable[[Any], None], *, transaction: bool
) -> list[Any]:
    """Run the `store_job` calls that ``fill(pipe)`` makes, in one round trip; when Redis
    does not know the script (restarted, ``SCRIPT FLUSH``), load it and run them again."""
    for attempt in (1, 2):
        with connection.pipeline(transaction=transaction) as pipe:
            fill(pipe)
            try:
                return list(pipe.execute())
            except redis.exceptions.NoScriptError:
                # Every call is the same script: it failed for all of them, none ran.
                if attempt == 2:
                    raise
                connection.script_load(STORE_SCRIPT)
                connection.script_load(STORE_MANY_SCRIPT)
    raise AssertionError("unreachable")


def is_refusal(exc: redis.ResponseError) -> bool:
    """Whether the script was refused a write: Redis full (``noeviction``) or a replica."""
    message = str(exc)
    return "OOM command not allowed" in message or "READONLY" in message
