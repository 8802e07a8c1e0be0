"""The dependents of a job that ended: RQ's release of the ones whose dependencies are all
met, one parent at a time per process, skipping those another parent already released."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ..keys import dependents_key, job_key

if TYPE_CHECKING:
    import redis
    from rq import Queue
    from rq.job import Job

__all__ = ["Dependents"]

log = logging.getLogger("flask_jobs.worker")


class Dependents:
    """Releases the dependents of the jobs a worker process ends."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection
        # Two threads ending the two parents of one child must not both enqueue it.
        self._lock = threading.Lock()

    def release(self, job: Job, queue: Queue) -> None:
        """Enqueue ``job``'s dependents that no longer wait for anything (RQ's code)."""
        with self._lock:
            try:
                self._forget_released(job.id)
                queue.enqueue_dependents(job)
            except Exception:
                log.exception("could not enqueue the dependents of job %s", job.id)

    def _forget_released(self, job_id: str) -> None:
        """Take out of the job's dependents the ones another parent's end already released
        (RQ's release does not look, and would enqueue them a second time)."""
        key = dependents_key(job_id)
        members = [m.decode() for m in self.connection.smembers(key)]  # type: ignore[union-attr]
        if not members:
            return
        with self.connection.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.hget(job_key(member), "status")
            statuses = pipe.execute()
        released = [
            member
            for member, status in zip(members, statuses, strict=True)
            if status is not None and status not in (b"deferred", b"canceled")
        ]
        if released:
            self.connection.srem(key, *released)
