"""How a run that did not succeed is written: failed, stopped, retried (at once or later,
through RQ's scheduled registry), or a job whose hash cannot be read.

Not the hot path: these use RQ's public job, registry and result classes in one
MULTI/EXEC, the writes RQ 3's ``handle_job_failure`` makes, so the data is RQ's own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rq.job import JobStatus
from rq.results import Result
from rq.utils import current_timestamp, now, utcformat

from ..keys import (
    execution_key,
    executions_key,
    failed_key,
    job_key,
    started_key,
    worker_executions_key,
    worker_key,
)

if TYPE_CHECKING:
    import redis
    from rq import Queue
    from rq.job import Job

__all__ = ["Run", "clear_execution", "fail_malformed", "record_failure"]

log = logging.getLogger("flask_jobs.worker")


@dataclass
class Run:
    """One execution of a job by this worker (RQ's ``Execution``, as its ids and times)."""

    job_id: str
    execution_id: str
    started: datetime
    queue: str

    @property
    def composite(self) -> str:
        """The execution's member in RQ's started registry."""
        return f"{self.job_id}:{self.execution_id}"


def clear_execution(pipe: Any, run: Run, worker: str) -> None:
    """RQ's ``cleanup_execution``: the execution hash and its registry entries."""
    pipe.delete(execution_key(run.job_id, run.execution_id))
    pipe.zrem(started_key(run.queue), run.composite)
    pipe.zrem(executions_key(run.job_id), run.execution_id)
    pipe.srem(worker_executions_key(worker), run.composite)


def record_failure(
    connection: redis.Redis,
    job: Job,
    queue: Queue,
    run: Run | None,
    worker: str,
    exc_string: str,
    *,
    stopped: bool = False,
    events: list[dict[str, str]] | None = None,
    stream: str = "",
) -> bool:
    """Write a failed run as RQ does (retried when the job's policy allows); True when retried.

    The job's status in memory is the outcome (failed, stopped, scheduled or queued).
    """
    retry = not stopped and job.should_retry
    with connection.pipeline() as pipe:
        if stopped:
            job.set_status(JobStatus.STOPPED, pipeline=pipe)
        elif not retry:
            job.set_status(JobStatus.FAILED, pipeline=pipe)
        if run is not None:
            clear_execution(pipe, run, worker)
        if not retry:
            job.failed_job_registry.add(
                job, ttl=job.failure_ttl, exc_string=exc_string, pipeline=pipe
            )
            Result.create_failure(
                job,
                job.failure_ttl,
                exc_string=exc_string,
                worker_name=worker,
                pipeline=pipe,
                execution_id=run.execution_id if run else None,
                execution_started_at=run.started if run else None,
                execution_ended_at=job.ended_at,
            )
        pipe.hincrby(worker_key(worker), "failed_job_count", 1)
        if job.started_at and job.ended_at:
            pipe.hincrbyfloat(
                worker_key(worker),
                "total_working_time",
                (job.ended_at - job.started_at).total_seconds(),
            )
        if retry:
            job.retry(queue, pipe)
        for event in events or ():
            pipe.xadd(stream, event)  # type: ignore[arg-type]
        pipe.execute()
    return retry


def fail_malformed(
    connection: redis.Redis, job_id: str, queue: str, ttl: int, exc: BaseException
) -> str:
    """Mark a job whose hash cannot be read failed (in RQ's failed registry); the message."""
    message = f"cannot read job {job_id}: {type(exc).__name__}: {exc}"[:2000]
    log.error("job %s in %s is malformed; marked failed (%s)", job_id, queue, message)
    with connection.pipeline() as pipe:
        pipe.hset(
            job_key(job_id),
            mapping={"status": JobStatus.FAILED.value, "ended_at": utcformat(now())},
        )
        pipe.zadd(failed_key(queue), {job_id: current_timestamp() + ttl if ttl > 0 else "+inf"})
        pipe.execute()
    return message
