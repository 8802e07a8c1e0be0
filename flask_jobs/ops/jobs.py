"""Actions on one job and on many: requeue, cancel, delete, stop; and reading jobs by id."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import redis
from rq.command import send_stop_job_command
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
    "ALLOWED_FROM",
    "CANCELABLE",
    "REQUEUEABLE",
    "Outcome",
    "cancel",
    "delete",
    "job_statuses",
    "load_job",
    "perform",
    "perform_all",
    "perform_each",
    "requeue",
    "requeue_failed",
    "retry_note",
    "run_now",
    "stop",
]

log = logging.getLogger("flask_jobs.ops")

#: The states a job can be requeued from, and canceled from.
REQUEUEABLE = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
CANCELABLE = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)
#: What `perform` can do to a job.
ACTIONS = ("requeue", "cancel", "delete", "stop", "run_now")
#: In words, the states each action accepts (what a skipped job was not in).
ALLOWED_FROM = {
    "requeue": "only failed, stopped or canceled jobs can be requeued",
    "cancel": "only queued, scheduled or deferred jobs can be canceled",
    "delete": "running jobs cannot be deleted (stop them first)",
    "stop": "only running jobs can be stopped",
    "run_now": "only scheduled jobs (delayed, or waiting for a retry) can be run now",
}


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


def retry_note(job: FlaskJob) -> str:
    """Whether the job's retry policy applies to the run a manual requeue starts, in words."""
    policy = job.retry_policy
    if policy is None and not job.retries_left:
        return "It has no retry policy: if it fails again, it stays failed."
    if job.retries_left:
        return (
            "Its retry policy applies: if it fails, it is retried up to "
            f"{job.retries_left} more time(s)."
        )
    return (
        "It runs once: its retry policy is used up, so if it fails again it stays failed "
        "(requeue it again by hand)."
    )


def requeue_failed(
    state: JobsState, queue_name: str, *, progress: Callable[[int], object] | None = None
) -> int:
    """Requeue every job in ``queue_name``'s failed registry; return how many.

    ``progress`` is called with the number of jobs handled after each one.
    """
    registry = state.queue(queue_name).failed_job_registry
    count = 0
    for job_id in registry.get_job_ids():
        if progress is not None:
            progress(1)
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


def stop(state: JobsState, job: FlaskJob) -> None:
    """Ask the worker running ``job`` to stop it (RQ's stop-job command).

    The worker ends the job as "stopped"; a stopped job can be requeued.
    """
    if job.get_status(refresh=True) != JobStatus.STARTED or not job.worker_name:
        status = job.get_status(refresh=False)
        raise JobsError(
            f"job {job.id} is {status.value if status else 'gone'}; {ALLOWED_FROM['stop']}"
        )
    try:
        send_stop_job_command(state.connection, job.id, serializer=state.serializer)
    except (InvalidJobOperation, NoSuchJobError) as exc:
        raise JobsError(f"job {job.id} cannot be stopped: {exc}") from exc
    log.warning("asked worker %s to stop job %s", job.worker_name, job.id)


def run_now(state: JobsState, job: FlaskJob) -> FlaskJob:
    """Put a scheduled job (delayed, or waiting for its retry) on its queue now.

    It is what RQ's scheduler does when the job is due: the job keeps its attempt
    number and what is left of its retry policy.
    """
    status = job.get_status(refresh=True)
    if status != JobStatus.SCHEDULED:
        raise JobsError(
            f"job {job.id} is {status.value if status else 'gone'}; {ALLOWED_FROM['run_now']}"
        )
    queue = state.queue(job.origin)
    with state.connection.pipeline() as pipe:
        pipe.zrem(queue.scheduled_job_registry.key, job.id)
        # as RQ's scheduler does: a rate-limited job goes through its limiter
        enqueue = queue._enqueue_rate_limited_job if job.has_rate_limit else queue._enqueue_job
        enqueue(job, pipeline=pipe, at_front=job.should_enqueue_at_front())
        pipe.execute()
    return job


def perform(state: JobsState, action: str, job: FlaskJob) -> None:
    """Requeue, cancel, delete, stop or run now ``job``; `JobsError` when its state does not
    allow it."""
    if action == "requeue":
        requeue(state, job)
    elif action == "cancel":
        cancel(state, job)
    elif action == "delete":
        delete(state, job)
    elif action == "stop":
        stop(state, job)
    elif action == "run_now":
        run_now(state, job)
    else:
        raise ValueError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")


@dataclasses.dataclass
class Outcome:
    """What an action on many jobs did: how many were done, and why the others were skipped."""

    action: str
    done: int = 0
    #: Skipped jobs by the state they were in ("gone": not in Redis).
    skipped: Counter[str] = dataclasses.field(default_factory=Counter)

    @property
    def skipped_count(self) -> int:
        """How many jobs were skipped, for any reason."""
        return sum(self.skipped.values())

    def why(self) -> str:
        """Why jobs were skipped, in words ("2 finished; only failed ... can be requeued")."""
        if not self.skipped:
            return ""
        counts = ", ".join(f"{n} {state}" for state, n in self.skipped.most_common())
        states = set(self.skipped) - {"gone"}
        reason = f": {ALLOWED_FROM[self.action]}" if states else ""
        gone = " (gone: no longer in Redis)" if "gone" in self.skipped else ""
        return f"{counts}{gone}{reason}"


def perform_each(state: JobsState, action: str, jobs: Iterable[FlaskJob | None]) -> Outcome:
    """``action`` on each job (None: gone from Redis), counting why jobs were skipped."""
    outcome = Outcome(action)
    for job in jobs:
        if job is None:
            outcome.skipped["gone"] += 1
            continue
        try:
            perform(state, action, job)
        except (JobsError, InvalidJobOperation):
            status = job.get_status(refresh=False)
            outcome.skipped[status.value if status else "gone"] += 1
        else:
            outcome.done += 1
    return outcome


def perform_all(state: JobsState, action: str, jobs: Iterable[FlaskJob | None]) -> tuple[int, int]:
    """``action`` on each job: how many were done, and how many skipped (gone or wrong state)."""
    outcome = perform_each(state, action, jobs)
    return outcome.done, outcome.skipped_count
