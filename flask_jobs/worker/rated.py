"""Rate limits where a worker claims (``@jobs.job(rate="100/m")``): a job over its rate
does not start; it waits in RQ's scheduled registry until the window has room, and the
worker takes the next job. Every worker counts starts in one sliding window in Redis
(`flask_jobs.jobs.rate`), so the limit holds across all of them."""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from rq.job import JobStatus

from ..jobs.rate import start_allowed
from ..keys import intermediate_key, job_key, queue_key, scheduled_key

if TYPE_CHECKING:
    import redis

    from .scripts import Claimed

__all__ = ["admit"]

log = logging.getLogger("flask_jobs.worker")


def admit(connection: redis.Redis, found: Claimed) -> bool:
    """Whether the job of a claim may start now; if its rate limit says no, it is put
    back (scheduled for when a start leaves the window) and the answer is False."""
    assert isinstance(found, tuple)
    queue, job_id, fields = found
    check = start_allowed(connection, job_id, fields)
    if check.allowed:
        return True
    # RQ's scheduled registry counts whole seconds: at most a second later than needed.
    due = math.ceil(time.time() + check.wait_seconds)
    with connection.pipeline() as pipe:  # one MULTI/EXEC: never both claimed and scheduled
        pipe.lrem(intermediate_key(queue_key(queue)), 1, job_id)
        pipe.zadd(scheduled_key(queue), {job_id: due})
        pipe.hset(job_key(job_id), "status", JobStatus.SCHEDULED.value)
        pipe.execute()
    log.debug("job %s: over its rate limit, scheduled for %s", job_id, due)
    return False
