"""The enqueue path: argument checks, the RQ job and its "queued" history event in one
round trip, or an inline run in eager mode."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import redis
from flask import current_app, has_request_context
from rq.job import JobStatus
from rq.job import get_current_job as rq_current_job
from rq.utils import now

from .arguments import check_json_arguments
from .errors import JobsConnectionError
from .job import JobOptions
from .rq_job import META_ORIGIN, META_RETRY, FlaskJob
from .state import JobsState, redact_url

__all__ = ["enqueue"]


def enqueue(
    state: JobsState,
    path: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: JobOptions,
    *,
    delay: timedelta | None = None,
    at: datetime | None = None,
) -> FlaskJob:
    """Enqueue one run of the job at ``path`` for the app of ``state`` (one round trip)."""
    config = state.config
    func_name = path.replace(":", ".")
    args = tuple(args)
    kwargs = dict(kwargs)
    if config.serializer == "json":
        check_json_arguments(path, args, kwargs)
    queue_name = options.queue or config.queues[0]
    meta = dict(options.meta or {})
    meta[META_ORIGIN] = options.origin or _guess_origin()
    if options.retry is not None:
        meta[META_RETRY] = options.retry.to_meta()
    if config.eager:
        return _run_eager(state, func_name, args, kwargs, options, meta, queue_name)

    queue = state.queue(queue_name)
    when: datetime | None = None
    if delay is not None:
        when = now() + delay
    elif at is not None:
        when = at.astimezone(timezone.utc)  # a naive datetime is local time, as in Python
    rq_options: dict[str, Any] = {
        "timeout": options.timeout,
        "result_ttl": config.result_ttl if options.result_ttl is None else options.result_ttl,
        "failure_ttl": config.failure_ttl if options.failure_ttl is None else options.failure_ttl,
        "ttl": options.ttl,
        "description": options.description,
        "depends_on": options.depends_on,
        "job_id": options.job_id,
        "meta": meta,
        "retry": options.retry.to_rq() if options.retry is not None else None,
    }
    # enqueue_at names the timeout job_timeout (built once: the loop below may go round again)
    at_options: dict[str, Any] = {}
    if when is not None:
        at_options = {("job_timeout" if k == "timeout" else k): v for k, v in rq_options.items()}
    for _ in range(10):  # a WatchError means a dependency changed under us: try again
        try:
            with state.connection.pipeline() as pipe:
                if when is None:
                    job = queue.enqueue_call(
                        func_name,
                        args=args,
                        kwargs=kwargs,
                        at_front=options.at_front,
                        pipeline=pipe,
                        **rq_options,
                    )
                else:
                    job = queue.enqueue_at(
                        when,
                        func_name,
                        args=args,
                        kwargs=kwargs,
                        at_front=options.at_front,
                        pipeline=pipe,
                        **at_options,
                    )
                if state.history_enabled:
                    # the "queued" event rides in the same round trip as the enqueue
                    add_queued_event(
                        state, pipe, job, func_name, queue_name, args, kwargs, meta[META_ORIGIN]
                    )
                pipe.execute()
            break
        except redis.WatchError:
            continue
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise state.connection_error(exc) from exc
        except REFUSED as exc:
            raise refused_error(state, exc) from exc
    else:
        raise JobsConnectionError(f"could not enqueue {path}: its dependencies kept changing")
    assert isinstance(job, FlaskJob)
    return job


#: Redis is up but refuses writes (full under ``noeviction``, or a read-only replica).
REFUSED = (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)


def refused_error(state: JobsState, exc: Exception) -> JobsConnectionError:
    """The error for a Redis that refused an enqueue; MULTI/EXEC aborted, nothing stored."""
    return JobsConnectionError(
        f"Redis at {redact_url(state.redis_url)} refused the job ({exc}): it is full "
        "(maxmemory with noeviction: free memory or raise maxmemory) or a read-only "
        "replica (point JOBS_REDIS_URL at the master, or use a redis+sentinel:// URL)"
    )


def add_queued_event(
    state: JobsState,
    pipe: Any,
    job: Any,
    func_name: str,
    queue_name: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    origin: str,
) -> None:
    """Queue the history's "queued" event of ``job`` on the enqueue's own ``pipe``."""
    event = state.events.queued(
        job_id=job.id,
        attempt=1,
        func=func_name,
        queue=queue_name,
        args=args,
        kwargs=kwargs,
        description=job.description,
        origin=origin,
        enqueued_at=job.enqueued_at or now(),
    )
    pipe.xadd(state.history_settings.stream, event)


def _run_eager(
    state: JobsState,
    func_name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: JobOptions,
    meta: dict[str, Any],
    queue_name: str,
) -> FlaskJob:
    # The client is never used: an eager job is not stored, so tests need no Redis.
    job: FlaskJob = FlaskJob.create(  # type: ignore[assignment]
        func_name,
        args=args,
        kwargs=kwargs,
        connection=redis.Redis(),
        id=options.job_id,
        origin=queue_name,
        meta=meta,
        description=options.description,
        serializer=state.serializer,
    )
    job._jobs_eager = True
    job.started_at = now()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        with app.app_context():
            job._status = JobStatus.STARTED
            result = job.perform()
    except Exception:
        job._status = JobStatus.FAILED
        job.ended_at = now()
        if state.config.eager_propagate:
            raise
    else:
        job._status = JobStatus.FINISHED
        job._result = result
        job.ended_at = now()
    return job


def _guess_origin() -> str:
    if has_request_context():
        return "view"
    parent = rq_current_job()
    if parent is not None:
        return f"job:{parent.id}"
    return "code"
