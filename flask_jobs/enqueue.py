"""The enqueue path: argument checks, the RQ job and its "queued" history event in one
round trip (for one run, or many runs of one job), or an inline run in eager mode."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import redis
from flask import current_app, has_request_context
from rq import Queue
from rq.job import JobStatus
from rq.job import get_current_job as rq_current_job
from rq.utils import now

from .errors import JobsConnectionError
from .jobs.arguments import check_json_arguments
from .jobs.flask_job import META_ORIGIN, META_RETRY, FlaskJob
from .redis.connection import redact_url

if TYPE_CHECKING:
    from .jobs.function import JobCall, JobOptions
    from .state import JobsState

__all__ = ["enqueue", "enqueue_many", "enqueue_runs"]

#: Redis is up but refuses writes (full under ``noeviction``, or a read-only replica).
REFUSED = (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)


@dataclass(frozen=True)
class Prepared:
    """What every run of one enqueue shares: names, meta and RQ's options."""

    func_name: str
    queue_name: str
    meta: dict[str, Any]
    #: RQ's ``enqueue_call`` options (``timeout``, TTLs, ``meta``, ``retry``...).
    rq_options: dict[str, Any]

    @property
    def origin(self) -> str:
        """Where the enqueue came from (``view``, ``cli``, ``schedule:<name>``...)."""
        return str(self.meta[META_ORIGIN])


def prepare(
    state: JobsState,
    path: str,
    options: JobOptions,
    runs: Iterable[tuple[Sequence[Any], Mapping[str, Any]]],
) -> Prepared:
    """Check every run's arguments, then work out the options the runs share."""
    config = state.config
    if config.serializer == "json":
        for args, kwargs in runs:
            check_json_arguments(path, args, kwargs)
    meta = dict(options.meta or {})
    meta[META_ORIGIN] = options.origin or _guess_origin()
    if options.retry is not None:
        meta[META_RETRY] = options.retry.to_meta()
    rq_options: dict[str, Any] = {
        "timeout": options.timeout,
        "result_ttl": config.result_ttl if options.result_ttl is None else options.result_ttl,
        "failure_ttl": config.failure_ttl if options.failure_ttl is None else options.failure_ttl,
        "ttl": options.ttl,
        "description": options.description,
        "meta": meta,
        "retry": options.retry.to_rq() if options.retry is not None else None,
    }
    return Prepared(
        func_name=path.replace(":", "."),
        queue_name=options.queue or config.queues[0],
        meta=meta,
        rq_options=rq_options,
    )


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
    args = tuple(args)
    kwargs = dict(kwargs)
    prepared = prepare(state, path, options, [(args, kwargs)])
    if state.config.eager:
        return _run_eager(state, prepared, args, kwargs, options)

    queue = state.queue(prepared.queue_name)
    when: datetime | None = None
    if delay is not None:
        when = now() + delay
    elif at is not None:
        when = at.astimezone(timezone.utc)  # a naive datetime is local time, as in Python
    rq_options = {**prepared.rq_options, "depends_on": options.depends_on, "job_id": options.job_id}
    if when is not None:  # enqueue_at names the timeout job_timeout
        rq_options["job_timeout"] = rq_options.pop("timeout")
    for _ in range(10):  # a WatchError means a dependency changed under us: try again
        try:
            with state.connection.pipeline() as pipe:
                if when is None:
                    job = queue.enqueue_call(
                        prepared.func_name,
                        args=args,
                        kwargs=kwargs,
                        at_front=options.at_front,
                        pipeline=pipe,
                        **rq_options,
                    )
                else:
                    job = queue.enqueue_at(
                        when,
                        prepared.func_name,
                        args=args,
                        kwargs=kwargs,
                        at_front=options.at_front,
                        pipeline=pipe,
                        **rq_options,
                    )
                if state.history_enabled:
                    # the "queued" event rides in the same round trip as the enqueue
                    _add_queued_event(state, pipe, job, prepared, args, kwargs)
                pipe.execute()
            break
        except redis.WatchError:
            continue
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise state.connection_error(exc) from exc
        except REFUSED as exc:
            raise _refused_error(state, exc) from exc
    else:
        raise JobsConnectionError(f"could not enqueue {path}: its dependencies kept changing")
    assert isinstance(job, FlaskJob)
    return job


def enqueue_runs(
    state: JobsState,
    path: str,
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    options: JobOptions,
) -> list[FlaskJob]:
    """Enqueue one run of the job at ``path`` per ``(args, kwargs)``, in one round trip.

    Options that need a round trip per job (``depends_on``, a fixed ``job_id``)
    and eager mode take the one-at-a-time path.
    """
    if not calls:
        return []
    prepared = prepare(state, path, options, calls)  # a bad argument enqueues nothing
    if state.config.eager or options.depends_on is not None or options.job_id is not None:
        return [enqueue(state, path, args, kwargs, options) for args, kwargs in calls]
    datas = [
        Queue.prepare_data(
            prepared.func_name,
            args=args,
            kwargs=kwargs,
            at_front=options.at_front,
            **{**prepared.rq_options, "meta": dict(prepared.meta)},
        )
        for args, kwargs in calls
    ]
    queue = state.queue(prepared.queue_name)
    try:
        with state.connection.pipeline() as pipe:
            jobs = queue.enqueue_many(datas, pipeline=pipe)
            if state.history_enabled:
                for job, (args, kwargs) in zip(jobs, calls, strict=True):
                    _add_queued_event(state, pipe, job, prepared, args, kwargs)
            pipe.execute()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise state.connection_error(exc) from exc
    except REFUSED as exc:
        raise _refused_error(state, exc) from exc
    return [job for job in jobs if isinstance(job, FlaskJob)]


def enqueue_many(
    call: JobCall[Any, Any], runs: Iterable[tuple[Sequence[Any], Mapping[str, Any]]]
) -> list[FlaskJob]:
    """Enqueue one run of ``call`` per ``(args, kwargs)`` in ``runs``, in one round trip.

    ``call`` is a job (``send_report``) or a job with options
    (``send_report.options(queue="low")``). Every argument is checked before
    anything is sent, so a bad one enqueues nothing. Options that need a round
    trip per job (``depends_on``, a fixed ``job_id``) and eager mode take the
    one-at-a-time path.
    """
    function = call._function
    calls = [(tuple(args), dict(kwargs)) for args, kwargs in runs]
    if not calls:
        return []
    return function.jobs._enqueue_many(function.path, calls, call._options)


def _refused_error(state: JobsState, exc: Exception) -> JobsConnectionError:
    """The error for a Redis that refused an enqueue; MULTI/EXEC aborted, nothing stored."""
    return JobsConnectionError(
        f"Redis at {redact_url(state.redis_url)} refused the job ({exc}): it is full "
        "(maxmemory with noeviction: free memory or raise maxmemory) or a read-only "
        "replica (point JOBS_REDIS_URL at the master, or use a redis+sentinel:// URL)"
    )


def _add_queued_event(
    state: JobsState,
    pipe: Any,
    job: Any,
    prepared: Prepared,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> None:
    """Queue the history's "queued" event of ``job`` on the enqueue's own ``pipe``."""
    event = state.events.queued(
        job_id=job.id,
        attempt=1,
        func=prepared.func_name,
        queue=prepared.queue_name,
        args=args,
        kwargs=kwargs,
        description=job.description,
        origin=prepared.origin,
        enqueued_at=job.enqueued_at or now(),
    )
    pipe.xadd(state.history_settings.stream, event)


def _run_eager(
    state: JobsState,
    prepared: Prepared,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: JobOptions,
) -> FlaskJob:
    # The client is never used: an eager job is not stored, so tests need no Redis.
    job: FlaskJob = FlaskJob.create(  # type: ignore[assignment]
        prepared.func_name,
        args=args,
        kwargs=kwargs,
        connection=redis.Redis(),
        id=options.job_id,
        origin=prepared.queue_name,
        meta=prepared.meta,
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
