"""What a worker does between jobs, off the hot path: RQ's registry maintenance (jobs
abandoned by a dead worker, stuck intermediate lists, expired entries), and moving
delayed jobs whose time has come onto their queue (RQ's scheduler, without its process).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
from rq.group import Group
from rq.job import JobStatus
from rq.registry import ScheduledJobRegistry, StartedJobRegistry, clean_registries
from rq.utils import current_timestamp
from rq.worker_registration import clean_worker_registry

from ..jobs.flask_job import FlaskJob
from .failure import record_failure

if TYPE_CHECKING:
    from rq import Queue
    from rq.job import Job

__all__ = ["DELAYED_SECONDS", "MAINTENANCE_SECONDS", "Maintenance"]

log = logging.getLogger("flask_jobs.worker")

#: How often a worker runs RQ's registry cleanup (RQ's default is 10 minutes: a dead
#: worker's job would wait that long to be found abandoned and retried).
MAINTENANCE_SECONDS = 60
#: How often a worker moves due delayed jobs (retries with a delay, ``enqueue_in``).
DELAYED_SECONDS = 1.0


class Maintenance:
    """The periodic chores of one worker over its queues."""

    def __init__(
        self,
        queues: list[Queue],
        worker: str | None,
        on_abandoned: Callable[[Job], None],
    ) -> None:
        self.queues = queues
        #: The worker's name (the failures of jobs stuck in an intermediate list are its).
        self.worker = worker or ""
        self.on_abandoned = on_abandoned
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
        """RQ's registry cleanup of each queue (one worker at a time, by RQ's lock), then
        the hook of every job it found abandoned."""
        abandoned: list[Job] = []
        for queue in self.queues:
            if not queue.acquire_maintenance_lock():
                continue
            try:
                suspects = self._started_expired(queue)
                clean_registries(queue)
                clean_worker_registry(queue)
                queue.intermediate_queue.cleanup(self, queue)  # type: ignore[arg-type]
                abandoned += self._abandoned(suspects)
            finally:
                queue.release_maintenance_lock()  # type: ignore[no-untyped-call]
        if self.queues:
            connection = self.queues[0].connection
            if Group.acquire_maintenance_lock(connection, MAINTENANCE_SECONDS - 1):
                Group.clean_registries(connection=connection)
        for job in abandoned:
            self.on_abandoned(job)

    def handle_job_failure(self, job: Job, queue: Queue, exc_string: str = "", **_: Any) -> None:
        """What RQ's intermediate-list cleanup calls for a job stuck there: fail it."""
        record_failure(queue.connection, job, queue, None, self.worker, exc_string)

    def _started_expired(self, queue: Queue) -> list[Job]:
        registry = StartedJobRegistry(queue=queue, job_class=FlaskJob)
        found = []
        for job_id in registry.get_expired_job_ids(current_timestamp()):
            try:
                job = FlaskJob.fetch(
                    job_id, connection=queue.connection, serializer=queue.serializer
                )
            except Exception:
                continue
            if job.get_status(refresh=False) == JobStatus.STARTED:
                job._jobs_attempt = job.attempt  # type: ignore[attr-defined]
                found.append(job)
        return found

    def _abandoned(self, suspects: list[Job]) -> list[Job]:
        found = []
        for job in suspects:
            try:
                job.refresh()  # type: ignore[no-untyped-call]
            except Exception:
                continue
            if job.get_status(refresh=False) != JobStatus.STARTED:
                found.append(job)
        return found

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
