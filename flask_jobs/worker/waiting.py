"""How an idle worker waits for work: blocked in Redis on its unpaused queues (RQ's
BLMOVE for one queue, BLPOP for several), for at most `IDLE_BLOCK` seconds at a time,
so that pauses, ``rq suspend``, heartbeats and delayed jobs are looked at in between."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..keys import PAUSED_QUEUES_KEY, RQ_SUSPENDED_KEY, intermediate_key, job_key, queue_key
from .control import Interrupted

if TYPE_CHECKING:
    import redis

    from .control import Control
    from .scripts import Claimed

__all__ = ["IDLE_BLOCK", "wait_for_job"]

#: Longest an idle worker blocks on its queues before it looks around again (seconds).
IDLE_BLOCK = 1


def wait_for_job(connection: redis.Redis, names: list[str], control: Control) -> Claimed:
    """Block on the unpaused queues of ``names``; the job that came, or None (none came, a
    warm stop, a deleted job, or every queue paused or suspended)."""
    paused = {m.decode() for m in connection.smembers(PAUSED_QUEUES_KEY)}  # type: ignore[union-attr]
    active = [name for name in names if name not in paused]
    if not active or connection.exists(RQ_SUSPENDED_KEY):
        time.sleep(IDLE_BLOCK)
        return None
    popped: Any
    control.waiting = True  # a warm stop interrupts this wait, and only this one
    try:
        if control.stop_requested:
            return None
        if len(active) == 1:
            key = queue_key(active[0])
            job_id = connection.blmove(key, intermediate_key(key), IDLE_BLOCK)
            popped = None if job_id is None else (key, job_id)
        else:
            popped = connection.blpop([queue_key(n) for n in active], IDLE_BLOCK)
    except Interrupted:
        return None
    finally:
        control.waiting = False
    if popped is None:
        return None
    key, job_id = (v.decode() if isinstance(v, bytes) else v for v in popped)
    if len(active) > 1:  # BLPOP took it off its queue: into RQ's intermediate list
        with connection.pipeline() as pipe:
            pipe.rpush(intermediate_key(key), job_id)
            pipe.hgetall(job_key(job_id))
            fields = pipe.execute()[-1]
    else:  # one command: no MULTI/EXEC around it
        fields = connection.hgetall(job_key(job_id))
    if not fields:  # a deleted job: skip it
        connection.lrem(intermediate_key(key), 1, job_id)
        return None
    return key.removeprefix(queue_key("")), job_id, fields
