"""Eager mode (``JOBS_EAGER``): a job run inline, in a fresh app context, never stored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis
from rq.job import JobStatus
from rq.utils import now

from .flask_job import FlaskJob

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["eager_job", "run_eager"]


def eager_job(
    func_name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    job_id: str | None,
    queue: str,
    meta: dict[str, Any],
    description: str | None,
    serializer: Any,
) -> FlaskJob:
    """The job of an eager run (its client is never used: tests need no Redis)."""
    job: FlaskJob = FlaskJob.create(  # type: ignore[assignment]
        func_name,
        args=args,
        kwargs=kwargs,
        connection=redis.Redis(),
        id=job_id,
        origin=queue,
        meta=meta,
        description=description,
        serializer=serializer,
    )
    return job


def run_eager(job: FlaskJob, app: Flask, *, propagate: bool) -> FlaskJob:
    """Run ``job`` now in a fresh app context of ``app``; re-raise its error if ``propagate``."""
    job._jobs_held = None
    job._jobs_eager = True
    job.started_at = now()
    try:
        with app.app_context():
            job._status = JobStatus.STARTED
            result = job.perform()
    except Exception:
        job._status = JobStatus.FAILED
        job.ended_at = now()
        if propagate:
            raise
    else:
        job._status = JobStatus.FINISHED
        job._result = result
        job.ended_at = now()
    return job
