"""How a worker survives faults: a Redis outage, a job hash it cannot read, a cold shutdown.

RQ's work loop ends the worker on any error outside its dequeue, so each of
these used to stop a worker for good or leave a job "started" or "queued" in
no queue; the reliability suite (``tests/reliability/``) injects each of them.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import redis
from rq.job import Job, JobStatus
from rq.utils import now

from ..jobs.flask_job import FlaskJob

if TYPE_CHECKING:
    from rq import Queue

__all__ = ["REDIS_DOWN", "FaultsMixin"]

log = logging.getLogger("flask_jobs.worker")

#: The errors that mean Redis cannot be reached right now.
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


class FaultsMixin:
    """Waits out Redis outages, fails unreadable jobs, and marks the job a cold shutdown kills."""

    def _redis_down(self, where: str, exc: Exception) -> None:
        log.warning("Redis unavailable (%s: %s); the worker waits for it", where, exc)
        time.sleep(1.0)

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's ``rq suspend`` check, surviving a Redis outage."""
        try:
            super().check_for_suspension(burst)  # type: ignore[misc]
        except REDIS_DOWN as exc:
            self._redis_down("suspension check", exc)

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance (registry cleanup...), tried again next time if Redis is away."""
        try:
            super().run_maintenance_tasks()  # type: ignore[misc]
        except REDIS_DOWN as exc:
            self._redis_down("maintenance", exc)

    def maintain_heartbeats(self, job: Job, execution: Any) -> None:
        """RQ's heartbeats while a work horse runs; an outage must not orphan the horse."""
        try:
            super().maintain_heartbeats(job, execution)  # type: ignore[misc]
        except REDIS_DOWN as exc:
            log.warning("Redis unavailable while job %s runs (%s)", job.id, exc)

    def execute_job(self, job: Job, queue: Queue) -> Any:
        """Run ``job``; if Redis goes away around it, RQ's cleanup recovers the job later
        (abandoned, then retried or failed) and this worker carries on."""
        try:
            return super().execute_job(job, queue)  # type: ignore[misc]
        except REDIS_DOWN as exc:
            self._redis_down(f"job {job.id}", exc)
            return None

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, *args: Any, **kwargs: Any) -> Any:
        """RQ's dequeue, failing a job whose hash cannot be read instead of the worker."""
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, *args, **kwargs)  # type: ignore[misc]
            except Exception as exc:
                # RQ pops the id, then raises (bad dates, meta, timeout...) and its work
                # loop quits: the job would stay "queued" in no queue, the worker gone.
                job_id, queue = getattr(exc, "job_id", None), getattr(exc, "queue", None)
                if job_id is None or queue is None:
                    raise
                self._fail_unreadable(str(job_id), queue, exc)

    def _fail_unreadable(self, job_id: str, queue: Queue, exc: Exception) -> None:
        from rq.registry import FailedJobRegistry
        from rq.utils import current_timestamp, utcformat

        worker: Any = self
        state = worker._jobs_state()
        message = f"cannot read job {job_id}: {type(exc).__name__}: {exc}"[:2000]
        log.error("job %s in %s is malformed; marked failed (%s)", job_id, queue.name, message)
        registry = FailedJobRegistry(queue.name, connection=worker.connection)
        ttl = state.config.failure_ttl
        with worker.connection.pipeline() as pipe:
            pipe.hset(
                FlaskJob.key_for(job_id),
                mapping={"status": JobStatus.FAILED.value, "ended_at": utcformat(now())},
            )
            pipe.zadd(registry.key, {job_id: current_timestamp() + ttl if ttl > 0 else "+inf"})
            pipe.execute()
        worker._emit(
            state.events.malformed(
                job_id=job_id, queue=queue.name, worker=worker.name, message=message
            )
        )

    def request_force_stop(self, signum: int, frame: Any) -> None:
        """RQ's cold shutdown, then fail (or retry) the job it killed, so that it does not
        stay "started" until RQ's cleanup calls it abandoned a minute or more later."""
        worker: Any = self
        job = execution = None
        if getattr(worker, "horse_pid", 0):
            execution = next(iter(worker.executions.values()), None)
            job = worker.get_current_job()
        try:
            super().request_force_stop(signum, frame)  # type: ignore[misc]
        except SystemExit:
            if job is not None:
                self._fail_interrupted(job, execution)
            raise

    def _fail_interrupted(self, job: Job, execution: Any) -> None:
        worker: Any = self
        try:
            if job.get_status(refresh=True) != JobStatus.STARTED:
                return
            job.ended_at = now()
            queue = worker.queue_class(
                job.origin,
                connection=worker.connection,
                job_class=worker.job_class,
                serializer=worker.serializer,
            )
            worker.handle_job_failure(
                job,
                queue,
                exc_string="cold shutdown: the worker was stopped and killed the job",
                execution=execution,
            )
        except Exception:  # the worker is going down anyway; RQ's cleanup is the backstop
            log.exception("could not mark job %s after a cold shutdown", job.id)
