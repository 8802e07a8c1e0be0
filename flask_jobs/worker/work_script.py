"""The lean worker's one Lua script: a job's bookkeeping writes, then the next dequeue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..keys import PAUSED_QUEUES_KEY, RQ_SUSPENDED_KEY, intermediate_key

if TYPE_CHECKING:
    import redis
    from rq import Queue

__all__ = ["WORK_SCRIPT", "WorkScript", "take_commands"]

#: One script for both ends of a job. ARGV: the job key prefix, the number of queues
#: N, the N queue names, then commands (each as its length, then its words). KEYS:
#: the paused set, RQ's suspended flag, then each queue and its intermediate list,
#: highest priority first. It runs the commands in order (the writes RQ's own code
#: made for the start or end of a job; as atomic as RQ's MULTI/EXEC), then, when
#: N > 0, checks `rq suspend`, skips paused queues and moves the first job id of the
#: first non-empty queue to RQ's intermediate list, as RQ's dequeue does. Returns
#: {the last command's integer reply, errors[, "suspended" or {queue, id, hash}]}.
WORK_SCRIPT = """
local nq = tonumber(ARGV[2])
local i, last, errors = 3 + nq, 0, {}
while i <= #ARGV do
  local count = tonumber(ARGV[i])
  local reply = redis.pcall(unpack(ARGV, i + 1, i + count))
  if type(reply) == 'table' and reply.err then errors[#errors + 1] = reply.err end
  last = type(reply) == 'number' and reply or 0
  i = i + count + 1
end
if nq == 0 then return {last, errors} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {last, errors, 'suspended'} end
for q = 1, nq do
  local queue, intermediate = KEYS[1 + 2 * q], KEYS[2 + 2 * q]
  if redis.call('SISMEMBER', KEYS[1], ARGV[2 + q]) == 0 then
    while true do
      local id = redis.call('LMOVE', queue, intermediate, 'LEFT', 'RIGHT')
      if not id then break end
      local hash = redis.call('HGETALL', ARGV[1] .. id)
      if #hash > 0 then return {last, errors, {queue, id, hash}} end
      redis.call('LREM', intermediate, 1, id)  -- a deleted job: skip it, as RQ does
    end
  end
end
return {last, errors}
"""


#: What a dequeue found: "suspended", or (queue key, job id, the job's hash).
Found = str | tuple[str, str, dict[bytes, bytes]] | None


def take_commands(pipe: Any) -> list[Any]:
    """The commands queued on a redis-py pipeline, as the script's words; empties it."""
    words: list[Any] = []
    for args, _options in pipe.command_stack:
        words.append(len(args))
        words.extend(args)
    pipe.reset()
    return words


class WorkScript:
    """`WORK_SCRIPT`, loaded once per connection and run with EVALSHA."""

    def __init__(self, connection: redis.Redis) -> None:
        self._script = connection.register_script(WORK_SCRIPT)

    def run(
        self, words: list[Any], queues: list[Queue], job_prefix: str
    ) -> tuple[int, list[str], Found]:
        """Run ``words`` (see `take_commands`), then dequeue from ``queues`` (if any):
        the last command's integer reply, the errors, and what the dequeue found."""
        keys: list[str] = [PAUSED_QUEUES_KEY, RQ_SUSPENDED_KEY]
        for queue in queues:
            keys += [queue.key, intermediate_key(queue.key)]
        reply = self._script(
            keys=keys, args=[job_prefix, len(queues), *(q.name for q in queues), *words]
        )
        errors = [e.decode() if isinstance(e, bytes) else str(e) for e in reply[1]]
        found = reply[2] if len(reply) > 2 else None
        if found is None or isinstance(found, bytes):
            return int(reply[0]), errors, None if found is None else found.decode()
        queue_key, job_id, flat = found
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        return int(reply[0]), errors, (queue_key.decode(), job_id.decode(), fields)
