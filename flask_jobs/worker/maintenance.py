"""What a worker does between jobs, off the hot path: RQ's registry maintenance (jobs
abandoned by a dead worker, stuck intermediate lists, expired entries), and moving
delayed jobs whose time has come onto their queue (RQ's scheduler, without its process).

The cleanup is RQ's ``clean_registries`` but for the started registry, whose abandoned
jobs are failed or retried here as RQ's ``StartedJobRegistry.cleanup`` does, each with
one call of the fail script (`flask_jobs.worker.failure.abandoned`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

import redis
from rq.callbacks import execute_failure_callback
from rq.exceptions import AbandonedJobError
from rq.group import Group
from rq.job import JobStatus
from rq.rate_limit import RateLimitRegistry, release_slot
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ReadyJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.utils import current_timestamp
from rq.worker_registration import clean_worker_registry

from ..jobs.flask_job import FlaskJob
from ..keys import DEPENDENTS_OWED_KEY
from .failure import abandoned, failure

if TYPE_CHECKING:
    from rq import Queue
    from rq.job import Job

    from .failure import Failure
    from .middleware import MiddlewareChain

__all__ = ["DELAYED_SECONDS", "MAINTENANCE_SECONDS", "OWED_GRACE", "Ending", "Maintenance"]

log = logging.getLogger("flask_jobs.worker")

#: How often a worker runs RQ's registry cleanup (RQ's default is 10 minutes: a dead
#: worker's job would wait that long to be found abandoned and retried).
MAINTENANCE_SECONDS = 60
#: How often a worker moves due delayed jobs (retries with a delay, ``enqueue_in``).
DELAYED_SECONDS = 1.0
#: Seconds after its end a job's dependents, still unreleased, are released by another
#: worker's maintenance (its own worker releases them at once, or died), and how many
#: such jobs one maintenance looks at.
OWED_GRACE = 30
OWED_BATCH = 100


class Ending(Protocol):
    """What the chores need of their worker (`flask_jobs.worker.loop.JobsWorker`)."""

    name: str
    stream: str
    middleware: MiddlewareChain

    def fail(self, written: Failure) -> Any:
        """Run one call of the fail script, with the history events waiting to go out."""
        ...

    def enqueue_dependents(self, job: Job) -> None:
        """Enqueue the dependents of a job that failed for good."""
        ...


class Maintenance:
    """The periodic chores of one worker over its queues."""

    def __init__(self, queues: list[Queue], worker: Ending) -> None:
        self.queues = queues
        #: The worker whose chores these are (the failures they find are its).
        self.worker = worker
        #: When (``time.monotonic()``) the registries were last cleaned, and delayed jobs moved.
        self.cleaned_at = float("-inf")
        self.moved_at = float("-inf")

    @property
    def cleaning_due(self) -> bool:
        """Whether RQ's registry cleanup is due (every `MAINTENANCE_SECONDS`)."""
        return time.monotonic() - self.cleaned_at >= MAINTENANCE_SECONDS

    def due(self) -> bool:
        """Whether a chore is due now."""
        return time.monotonic() - self.moved_at >= DELAYED_SECONDS or self.cleaning_due

    def run_due(self, worker: str) -> None:
        """Every chore that is due, if any; a Redis out of reach skips them this time."""
        if not self.due():
            return
        try:
            self.run()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("worker %s: maintenance skipped (%s)", worker, exc)

    def run(self) -> None:
        """Every chore that is due."""
        clock = time.monotonic()
        if clock - self.moved_at >= DELAYED_SECONDS:
            self.moved_at = clock
            for queue in self.queues:
                self.move_delayed(queue)
        if self.cleaning_due:
            self.cleaned_at = clock
            self.clean()

    def clean(self) -> None:
        """RQ's registry cleanup of each queue (one worker at a time, by RQ's lock), the
        jobs found abandoned failed or retried (and told to the hook) on the way."""
        for queue in self.queues:
            if not queue.acquire_maintenance_lock():
                continue
            try:
                self._clean(queue)
            finally:
                queue.release_maintenance_lock()  # type: ignore[no-untyped-call]
        if self.queues:
            connection = self.queues[0].connection
            if Group.acquire_maintenance_lock(connection, MAINTENANCE_SECONDS - 1):
                Group.clean_registries(connection=connection)
            self.release_owed(self.queues[0])

    def release_owed(self, queue: Queue) -> int:
        """Release the dependents of jobs that ended at least `OWED_GRACE` seconds ago
        and whose worker stopped before releasing them (killed between the two calls);
        how many jobs were looked at. A release is idempotent: two workers may both make
        one."""
        connection: Any = queue.connection
        seconds, _ = connection.time()  # Redis's clock: the scripts score by it
        owed = connection.zrangebyscore(
            DEPENDENTS_OWED_KEY, "-inf", int(seconds) - OWED_GRACE, start=0, num=OWED_BATCH
        )
        for raw in owed:
            job_id = raw.decode()
            try:
                job = FlaskJob.fetch(job_id, connection=connection, serializer=queue.serializer)
            except Exception:  # gone: nothing to release from
                connection.zrem(DEPENDENTS_OWED_KEY, job_id)
                continue
            log.warning("releasing the dependents of job %s, which its worker left", job_id)
            self.worker.enqueue_dependents(job)
        return len(owed)

    def _clean(self, queue: Queue) -> None:
        """RQ's ``clean_registries``, in its order, with our cleanup of the started one."""
        FinishedJobRegistry(queue=queue, job_class=FlaskJob).cleanup()
        self._abandoned(queue, StartedJobRegistry(queue=queue, job_class=FlaskJob))
        for registry in (FailedJobRegistry, DeferredJobRegistry, ReadyJobRegistry):
            registry(queue=queue, job_class=FlaskJob).cleanup()
        for limits in RateLimitRegistry.all(queue.connection):
            limits.cleanup()
        clean_worker_registry(queue)
        queue.intermediate_queue.cleanup(self, queue)  # type: ignore[arg-type]

    def handle_job_failure(self, job: Job, queue: Queue, exc_string: str = "", **_: Any) -> None:
        """What RQ's intermediate-list cleanup calls for a job stuck there: fail it."""
        worker = self.worker
        written = failure(job, queue, None, worker.name, exc_string, worker.stream)
        if written.releases(worker.fail(written)):
            worker.enqueue_dependents(job)

    def _abandoned(self, queue: Queue, registry: StartedJobRegistry) -> None:
        """RQ's ``StartedJobRegistry.cleanup``: each job still "started" whose run's
        heartbeat lapsed gets RQ's failure callback, then is retried or failed (one call
        each); then the expired entries go."""
        connection = queue.connection
        score = current_timestamp()
        members: list[bytes] = connection.zrangebyscore(registry.key, 0, score)  # type: ignore[assignment]
        for member in members:
            job_id, _, execution_id = member.decode().partition(":")
            try:
                job = FlaskJob.fetch(job_id, connection=connection, serializer=queue.serializer)
            except Exception:
                continue
            if job.get_status(refresh=False) != JobStatus.STARTED:
                continue
            job._jobs_attempt = job.attempt  # type: ignore[attr-defined]
            try:
                execute_failure_callback(
                    job, registry.death_penalty_class, AbandonedJobError, AbandonedJobError(), None
                )
            except Exception:
                log.exception("the failure callback of abandoned job %s raised", job.id)
            written = abandoned(job, queue, execution_id, self.worker.stream)
            # told first: the hooks' history events go out with the write
            self.worker.middleware.emit("on_abandoned", self.worker, job)
            if written.releases(self.worker.fail(written)):
                self.worker.enqueue_dependents(job)
            release_slot(job)
        connection.zremrangebyscore(registry.key, 0, score)

    def move_delayed(self, queue: Queue) -> None:
        """Put the due jobs of ``queue``'s scheduled registry on the queue. Each is taken
        out of the registry first: of two workers, only the one that took it enqueues it."""
        registry = ScheduledJobRegistry(queue=queue, job_class=FlaskJob)  # type: ignore[no-untyped-call]
        due = registry.get_jobs_to_schedule(current_timestamp())
        if not due:
            return
        connection = queue.connection
        for job_id in due:
            if not connection.zrem(registry.key, job_id):
                continue  # another worker moved it
            try:
                job = FlaskJob.fetch(job_id, connection=connection, serializer=queue.serializer)
            except Exception:
                continue  # gone (deleted or expired): nothing to run
            queue.enqueue_job(job, at_front=bool(job.enqueue_at_front))
