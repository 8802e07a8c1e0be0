"""How a lean worker claims its next job: the work script's dequeue, or a blocking wait.

A claim is one call of the work script (``rq suspend`` checked, paused queues
skipped, the job id moved to RQ's intermediate list and its hash returned); an
idle worker blocks in BLMOVE (one queue) or BLPOP (several), as RQ's does. A
hash that cannot be read fails that job, never the worker.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import redis
from rq.worker import WorkerStatus

from ..keys import RQ_JOB_PREFIX, intermediate_key
from .pausing import PAUSED_REFRESH
from .stopping import waiting_in_redis
from .work_script import WorkScript

if TYPE_CHECKING:
    from rq import Queue
    from rq.job import Job

__all__ = ["SKIPPED", "LeanClaimMixin"]

#: What a claim returns for a job whose hash could not be read (it is marked failed).
SKIPPED = "skipped"

log = logging.getLogger("flask_jobs.worker")


class LeanClaimMixin:
    """The lean worker's dequeue: claims by script, waits in Redis, restores the job."""

    _jobs_script: WorkScript | None = None
    _jobs_next: tuple[Job, Queue] | None = None

    def _jobs_run(
        self, words: list[Any], queues: list[Queue]
    ) -> tuple[int, tuple[Job, Queue] | str | None]:
        """One call of the work script: commands, then (with ``queues``) a dequeue."""
        worker: Any = self
        if self._jobs_script is None:
            self._jobs_script = WorkScript(worker.connection)
        last, errors, found = self._jobs_script.run(words, queues, RQ_JOB_PREFIX)
        for error in errors:
            log.error("worker %s: a job bookkeeping write failed: %s", worker.name, error)
        if found is None or isinstance(found, str):
            return last, found
        queue_key, job_id, fields = found
        return last, self._jobs_restore(queue_key, job_id, fields, queues)

    def _jobs_claim(self, queues: list[Queue]) -> tuple[Job, Queue] | str | None:
        """A job, "suspended", or None when every unpaused queue is empty."""
        return self._jobs_run([], queues)[1]

    def _jobs_restore(
        self, queue_key: str, job_id: str, fields: dict[bytes, bytes], queues: list[Queue]
    ) -> tuple[Job, Queue] | str:
        worker: Any = self
        job = worker.job_class(job_id, connection=worker.connection, serializer=worker.serializer)
        queue = next(q for q in queues if q.key == queue_key)
        try:
            job.restore(fields)
        except Exception as exc:  # a hash no enqueue wrote: fail that job, not the worker
            worker._fail_unreadable(job_id, queue, exc)
            return SKIPPED
        job.redis_server_version = worker.get_redis_server_version()
        return job, queue

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """The next job of the highest-priority unpaused queue; block while all are empty."""
        worker: Any = self
        if self._jobs_next is not None:  # claimed as the previous job ended
            ahead, self._jobs_next = self._jobs_next, None
            return ahead
        idle_since = time.monotonic()
        while True:
            if worker._stop_requested:
                return None
            paused = worker._paused_queue_names()
            active = [q for q in worker._ordered_queues if q.name not in paused]
            try:
                found = self._jobs_claim(worker.queues) if active or timeout is None else None
                if found == "suspended":
                    super().check_for_suspension(worker._jobs_burst)  # type: ignore[misc]
                    continue
                if found == SKIPPED:
                    continue
                if found is not None:
                    assert not isinstance(found, str)
                    return found
                if timeout is None:
                    return None  # burst: nothing it may run is left
                left = None
                if max_idle_time is not None:
                    left = max_idle_time - (time.monotonic() - idle_since)
                    if left <= 0:
                        return None
                if worker.get_state() != WorkerStatus.IDLE:
                    worker.set_state(WorkerStatus.IDLE)
                    worker.procline("Listening on " + ",".join(worker.queue_names()))
                worker.heartbeat()
                if worker.should_run_maintenance_tasks:
                    worker.run_maintenance_tasks()
                if not active:
                    time.sleep(PAUSED_REFRESH)
                    continue
                block = min(timeout, worker._jobs_block)
                if left is not None:
                    block = max(1, min(block, int(left + 0.999)))
                waited = self._jobs_wait(active, block)
                if waited is not None and waited != SKIPPED:
                    assert not isinstance(waited, str)
                    if worker._stop_requested:
                        self._jobs_next = waited  # teardown puts it back
                        return None
                    return waited
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.error("worker %s: Redis unreachable (%s); retrying in 1 s", worker.name, exc)
                time.sleep(1.0)

    def _jobs_wait(self, active: list[Queue], block: int) -> tuple[Job, Queue] | str | None:
        """Block until a job comes (RQ's BLMOVE for one queue, BLPOP for several)."""
        worker: Any = self
        conn = worker.connection
        with waiting_in_redis():  # a warm stop interrupts this wait, and only this one
            if len(active) == 1:
                key = active[0].key
                job_id = conn.blmove(key, intermediate_key(key), block)
                popped = None if job_id is None else (key.encode(), job_id)
            else:
                popped = conn.blpop([q.key for q in active], block)
        if popped is None:
            return None
        queue_key, job_id = (v.decode() if isinstance(v, bytes) else v for v in popped)
        fields = conn.hgetall(worker.job_class.key_for(job_id))
        if not fields:
            conn.lrem(intermediate_key(queue_key), 1, job_id)
            return None
        return self._jobs_restore(queue_key, job_id, fields, active)
