"""Actions on one job and on many: requeue, cancel, delete; and reading jobs by id."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import redis
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import JobStatus
from rq.utils import now

from ..errors import JobsError
from ..jobs.flask_job import FlaskJob
from ..keys import job_key

if TYPE_CHECKING:
    from ..state import JobsState

__all__ = [
    "ACTIONS",
    "CANCELABLE",
    "REQUEUEABLE",
    "cancel",
    "delete",
    "job_statuses",
    "load_job",
    "perform",
    "perform_all",
    "requeue",
    "requeue_failed",
]

log = logging.getLogger("flask_jobs.ops")

#: The states a job can be requeued from, and canceled from.
REQUEUEABLE = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
CANCELABLE = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)
#: What `perform` can do to a job.
ACTIONS = ("requeue", "cancel", "delete")


def load_job(state: JobsState, job_id: str) -> FlaskJob | None:
    """The job in Redis, or None when it is gone (or its data cannot be read).

    A Redis that cannot be reached is an error, not "gone".
    """
    try:
        job = FlaskJob.fetch(job_id, connection=state.connection, serializer=state.serializer)
    except NoSuchJobError:
        return None
    except (redis.ConnectionError, redis.TimeoutError):
        raise
    except Exception as exc:  # a foreign serializer or a damaged hash: there is no job to act on
        log.warning("cannot read job %s: %s", job_id, exc)
        return None
    assert isinstance(job, FlaskJob)
    return job


def job_statuses(state: JobsState, job_ids: list[str]) -> list[str | None]:
    """The RQ status of each job (None: not in Redis), a pipeline per thousand."""
    found: list[str | None] = []
    for start in range(0, len(job_ids), 1000):
        with state.connection.pipeline(transaction=False) as pipe:
            for job_id in job_ids[start : start + 1000]:
                pipe.hget(job_key(job_id), "status")
            found.extend(v.decode() if v else None for v in pipe.execute())
    return found


def requeue(state: JobsState, job: FlaskJob) -> FlaskJob:
    """Put a failed, stopped or canceled job back on its queue as a new attempt."""
    status = job.get_status(refresh=False)
    if status not in REQUEUEABLE:
        raise JobsError(
            f"job {job.id} is {status.value}; only failed, stopped or canceled jobs can be requeued"
        )
    job.mark_requeued()
    queue = state.queue(job.origin)
    with state.connection.pipeline() as pipe:
        pipe.hset(job.key, "meta", job._serialize_meta())
        for registry in (queue.failed_job_registry, queue.canceled_job_registry):
            pipe.zrem(registry.key, job.id)
        job.started_at = None
        job.ended_at = None
        queue._enqueue_job(job, pipeline=pipe)
        if state.history_enabled:
            event = state.events.from_job(
                job, "queued", job.attempt, enqueued_at=repr(now().timestamp())
            )
            pipe.xadd(state.history_settings.stream, event)  # type: ignore[arg-type]
        pipe.execute()
    return job


def requeue_failed(state: JobsState, queue_name: str) -> int:
    """Requeue every job in ``queue_name``'s failed registry; return how many."""
    registry = state.queue(queue_name).failed_job_registry
    count = 0
    for job_id in registry.get_job_ids():
        try:
            job = FlaskJob.fetch(job_id, connection=state.connection, serializer=state.serializer)
        except Exception:
            registry.remove(job_id)  # its data expired: nothing left to run
            continue
        assert isinstance(job, FlaskJob)
        try:
            requeue(state, job)
        except (JobsError, InvalidJobOperation):
            continue
        count += 1
    return count


def cancel(state: JobsState, job: FlaskJob) -> FlaskJob:
    """Cancel a queued, scheduled or deferred job (RQ's cancel), and record it."""
    status = job.get_status(refresh=False)
    if status not in CANCELABLE:
        raise JobsError(
            f"job {job.id} is {status.value}; only queued, scheduled or deferred jobs can be "
            "canceled (stop a running one instead)"
        )
    job.cancel()
    if state.history_enabled:
        event = state.events.from_job(
            job, "canceled", job.attempt, ended_at=repr(now().timestamp())
        )
        state.connection.xadd(state.history_settings.stream, event)  # type: ignore[arg-type]
    return job


def delete(state: JobsState, job: FlaskJob) -> None:
    """Delete a job that is not running from Redis (its history stays)."""
    if job.get_status(refresh=False) == JobStatus.STARTED:
        raise JobsError(f"job {job.id} is running; stop it before deleting it")
    job.delete()


def perform(state: JobsState, action: str, job: FlaskJob) -> None:
    """Requeue, cancel or delete ``job``; `JobsError` when its state does not allow it."""
    if action == "requeue":
        requeue(state, job)
    elif action == "cancel":
        cancel(state, job)
    elif action == "delete":
        delete(state, job)
    else:
        raise ValueError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")


def perform_all(state: JobsState, action: str, jobs: Iterable[FlaskJob | None]) -> tuple[int, int]:
    """``action`` on each job: how many were done, and how many skipped (gone or wrong state)."""
    done = skipped = 0
    for job in jobs:
        if job is None:
            skipped += 1
            continue
        try:
            perform(state, action, job)
        except (JobsError, InvalidJobOperation):
            skipped += 1
        else:
            done += 1
    return done, skipped
