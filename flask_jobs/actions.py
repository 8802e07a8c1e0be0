"""Operator actions shared by the CLI and the dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rq.exceptions import InvalidJobOperation
from rq.job import JobStatus
from rq.utils import now

from .errors import JobsError

if TYPE_CHECKING:
    from .rq_job import FlaskJob
    from .state import JobsState

__all__ = ["REQUEUEABLE", "cancel", "requeue", "requeue_failed"]

REQUEUEABLE = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


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
            event = state.events.from_job(job, "queued", job.attempt)
            event["enqueued_at"] = repr(now().timestamp())
            pipe.xadd(state.history_settings.stream, event)  # type: ignore[arg-type]
        pipe.execute()
    return job


def requeue_failed(state: JobsState, queue_name: str) -> int:
    """Requeue every job in ``queue_name``'s failed registry; return how many."""
    from .rq_job import FlaskJob

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
    if status not in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        raise JobsError(
            f"job {job.id} is {status.value}; only queued, scheduled or deferred jobs can be "
            "canceled (stop a running one instead)"
        )
    job.cancel()
    if state.history_enabled:
        event = state.events.from_job(job, "canceled", job.attempt)
        event["ended_at"] = repr(now().timestamp())
        state.connection.xadd(state.history_settings.stream, event)  # type: ignore[arg-type]
    return job
