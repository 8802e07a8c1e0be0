"""The dependents of a job that ended: RQ's release of the ones whose dependencies are all
met, one parent at a time across every worker process, skipping those another parent
already released.

Why one at a time: RQ's release WATCHes only the ending job's own keys, so two workers
ending the two parents of one child at the same moment can both find the child ready and
enqueue it twice (a chord's callback called twice). Under one lock in Redis the releases
run in turn: each runs after its own job's status was written, so the last parent to end
finds every dependency met, and a child already released is skipped."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from redis.exceptions import LockError

from ..keys import DEPENDENTS_LOCK_KEY, dependents_key, job_key

if TYPE_CHECKING:
    import redis
    from rq import Queue
    from rq.job import Job

__all__ = ["Dependents"]

log = logging.getLogger("flask_jobs.worker")

#: Seconds a release may hold the lock (a worker that dies holding it frees it then), and
#: the most a release waits for it.
LOCK_TIMEOUT = 10
LOCK_WAIT = 30


class Dependents:
    """Releases the dependents of the jobs a worker process ends."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection
        # Threads of one process queue up here, not on the lock in Redis.
        self._lock = threading.Lock()

    def release(self, job: Job, queue: Queue) -> None:
        """Enqueue ``job``'s dependents that no longer wait for anything (RQ's code)."""
        with self._lock:
            try:
                lock = self.connection.lock(
                    DEPENDENTS_LOCK_KEY, timeout=LOCK_TIMEOUT, blocking_timeout=LOCK_WAIT
                )
                held = lock.acquire()
                if not held:
                    log.error(
                        "could not take the dependents lock in %ss: the dependents of job %s "
                        "are released without it",
                        LOCK_WAIT,
                        job.id,
                    )
                try:
                    self._forget_released(job.id)
                    queue.enqueue_dependents(job)
                finally:
                    if held:
                        with contextlib.suppress(LockError):  # expired: no longer ours
                            lock.release()
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
