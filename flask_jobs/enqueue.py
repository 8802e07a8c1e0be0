"""The enqueue path: argument checks, the RQ job and its "queued" history event in one
round trip (for one run, or many runs of one job), or an inline run in eager mode; inside
a database transaction with writes, held until it commits or written to the outbox."""

from __future__ import annotations

import calendar
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
from .jobs.store import is_refusal, job_fields, run_pipeline, store_job
from .outbox.held import hold, session_with_writes
from .outbox.table import OutboxRow
from .redis.connection import redact_url

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

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
    """Enqueue one run of the job at ``path`` for the app of ``state`` (one round trip).

    Inside a database transaction with writes, the run waits for its commit
    instead (held in memory, or written to the outbox table).
    """
    args = tuple(args)
    kwargs = dict(kwargs)
    prepared = prepare(state, path, options, [(args, kwargs)])
    when = _when(delay, at)
    session = _transaction(state, options)
    if session is not None:
        return _with_transaction(state, session, prepared, [(args, kwargs)], options, when)[0]
    if state.config.eager:
        return _run_eager(state, prepared, args, kwargs, options)
    return _push(state, prepared, args, kwargs, options, when)


def _when(delay: timedelta | None, at: datetime | None) -> datetime | None:
    if delay is not None:
        return now() + delay
    if at is not None:
        return at.astimezone(timezone.utc)  # a naive datetime is local time, as in Python
    return None


def _push(
    state: JobsState,
    prepared: Prepared,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: JobOptions,
    when: datetime | None,
    job_id: str | None = None,
) -> FlaskJob:
    """Put one run on its queue (or RQ's scheduled registry): one Lua call, or (with
    ``depends_on`` or a fixed ``job_id`` option) RQ's own enqueue in one MULTI/EXEC."""
    queue = state.queue(prepared.queue_name)
    if options.depends_on is None and options.job_id is None:
        job = _new_job(queue, prepared, args, kwargs, when, job_id, prepared.meta)
        event = _queued_event(state, job, prepared, args, kwargs) if state.history_enabled else None
        try:
            store_job(
                state.store_script,
                state.connection,
                job.id,
                queue.name,
                job_fields(job),
                state.history_settings.stream,
                event,
                run_at=_run_at(when),
                at_front=options.at_front,
            )
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise state.connection_error(exc) from exc
        except REFUSED as exc:
            raise _refused_error(state, exc) from exc
        except redis.ResponseError as exc:
            if is_refusal(exc):
                raise _refused_error(state, exc) from exc
            raise
        return job
    rq_options = {
        **prepared.rq_options,
        "depends_on": options.depends_on,
        "job_id": job_id or options.job_id,
    }
    if when is not None:  # enqueue_at names the timeout job_timeout
        rq_options["job_timeout"] = rq_options.pop("timeout")
    for _ in range(10):  # a WatchError means a dependency changed under us: try again
        try:
            with state.connection.pipeline() as pipe:
                if when is None:
                    rq_job = queue.enqueue_call(
                        prepared.func_name,
                        args=args,
                        kwargs=kwargs,
                        at_front=options.at_front,
                        pipeline=pipe,
                        **rq_options,
                    )
                else:
                    rq_job = queue.enqueue_at(
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
                    event = _queued_event(state, rq_job, prepared, args, kwargs)
                    pipe.xadd(state.history_settings.stream, event)  # type: ignore[arg-type]
                pipe.execute()
            break
        except redis.WatchError:
            continue
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise state.connection_error(exc) from exc
        except REFUSED as exc:
            raise _refused_error(state, exc) from exc
    else:
        raise JobsConnectionError(
            f"could not enqueue {prepared.func_name}: its dependencies kept changing"
        )
    assert isinstance(rq_job, FlaskJob)
    return rq_job


def enqueue_runs(
    state: JobsState,
    path: str,
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    options: JobOptions,
) -> list[FlaskJob]:
    """Enqueue one run of the job at ``path`` per ``(args, kwargs)``, in one round trip.

    Options that need a round trip per job (``depends_on``, a fixed ``job_id``)
    and eager mode take the one-at-a-time path; inside a database transaction
    with writes, the runs wait for its commit.
    """
    if not calls:
        return []
    prepared = prepare(state, path, options, calls)  # a bad argument enqueues nothing
    session = _transaction(state, options)
    if session is not None:
        return _with_transaction(state, session, prepared, calls, options, None)
    if state.config.eager:
        return [_run_eager(state, prepared, args, kwargs, options) for args, kwargs in calls]
    if options.depends_on is not None or options.job_id is not None:
        return [_push(state, prepared, args, kwargs, options, None) for args, kwargs in calls]
    return _push_many(state, prepared, calls, options)


def _push_many(
    state: JobsState,
    prepared: Prepared,
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    options: JobOptions,
    job_ids: list[str] | None = None,
) -> list[FlaskJob]:
    """Put every run on its queue in one MULTI/EXEC (one Lua call per run)."""
    ids: list[str | None] = list(job_ids) if job_ids is not None else [None] * len(calls)
    queue = state.queue(prepared.queue_name)
    script = state.store_script
    stream = state.history_settings.stream
    history = state.history_enabled
    jobs: list[FlaskJob] = []
    events: list[dict[str, str] | None] = []
    for (args, kwargs), job_id in zip(calls, ids, strict=True):
        job = _new_job(queue, prepared, args, kwargs, None, job_id, dict(prepared.meta))
        jobs.append(job)
        events.append(_queued_event(state, job, prepared, args, kwargs) if history else None)

    def fill(pipe: Any) -> None:
        for job, event in zip(jobs, events, strict=True):
            fields = job_fields(job)
            store_job(script, pipe, job.id, queue.name, fields, stream, event, at_front=at_front)

    at_front = options.at_front
    try:
        run_pipeline(state.connection, fill, transaction=True)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise state.connection_error(exc) from exc
    except REFUSED as exc:
        raise _refused_error(state, exc) from exc
    except redis.ResponseError as exc:
        if is_refusal(exc):
            raise _refused_error(state, exc) from exc
        raise
    return jobs


def _new_job(
    queue: Queue,
    prepared: Prepared,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    when: datetime | None,
    job_id: str | None,
    meta: dict[str, Any],
) -> FlaskJob:
    """RQ's job for one run, as RQ's enqueue fills it in (nothing is sent)."""
    job = queue.create_job(
        prepared.func_name,
        args=args,
        kwargs=kwargs,
        job_id=job_id,
        status=JobStatus.QUEUED if when is None else JobStatus.SCHEDULED,
        **{**prepared.rq_options, "meta": meta},
    )
    assert isinstance(job, FlaskJob)
    job.origin = queue.name
    if when is None:
        job.enqueued_at = now()
    return job


def _run_at(when: datetime | None) -> int | None:
    """``when`` as RQ's scheduled registry scores it (whole seconds since the epoch)."""
    return None if when is None else calendar.timegm(when.utctimetuple())


# -- with the database transaction ------------------------------------------------


def _transaction(state: JobsState, options: JobOptions) -> Session | None:
    """The session whose commit this enqueue waits for, or None: enqueue at once."""
    if state.db is None or options.on_commit is False:
        return None
    config = state.config
    if options.on_commit is None and not (config.enqueue_on_commit or config.outbox):
        return None
    return session_with_writes(state.db)


def _with_transaction(
    state: JobsState,
    session: Session,
    prepared: Prepared,
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    options: JobOptions,
    when: datetime | None,
) -> list[FlaskJob]:
    """Write the runs to the outbox in ``session``'s transaction, or hold them until it commits."""
    config = state.config
    if config.outbox and not config.eager:
        return _to_outbox(state, session, prepared, calls, options, when)
    connection = redis.Redis() if config.eager else state.connection  # eager: never used
    jobs = [
        _job_object(state, prepared, args, kwargs, options, connection) for args, kwargs in calls
    ]

    def release() -> None:
        if config.eager:
            for job, (args, kwargs) in zip(jobs, calls, strict=True):
                _run_eager(state, prepared, args, kwargs, options, job)
        elif len(calls) == 1 or options.depends_on is not None:
            for job, (args, kwargs) in zip(jobs, calls, strict=True):
                _push(state, prepared, args, kwargs, options, when, job.id)
        else:
            _push_many(state, prepared, calls, options, [job.id for job in jobs])

    hold(session, jobs, release)
    return jobs


def _to_outbox(
    state: JobsState,
    session: Session,
    prepared: Prepared,
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    options: JobOptions,
    when: datetime | None,
) -> list[FlaskJob]:
    """Insert one outbox row per run, in the caller's transaction (one statement)."""
    if options.depends_on is not None:
        raise ValueError(
            "depends_on cannot go through the outbox (the relay cannot wait for another job); "
            "enqueue this job with .options(on_commit=False)"
        )
    assert state.outbox_table is not None
    queue = state.queue(prepared.queue_name)
    run_at = _run_at(when)
    jobs: list[FlaskJob] = []
    values: list[dict[str, Any]] = []
    for args, kwargs in calls:
        job = _new_job(queue, prepared, args, kwargs, when, options.job_id, dict(prepared.meta))
        event = _queued_event(state, job, prepared, args, kwargs) if state.history_enabled else None
        row = OutboxRow(job.id, queue.name, job_fields(job), run_at, options.at_front, event)
        values.append(row.to_values())
        jobs.append(job)
    session.execute(state.outbox_table.insert(), values)
    hold(session, jobs, None)
    return jobs


def _job_object(
    state: JobsState,
    prepared: Prepared,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: JobOptions,
    connection: redis.Redis,
) -> FlaskJob:
    """The job a caller gets back before it is stored: its id is the one it will have."""
    job: FlaskJob = FlaskJob.create(  # type: ignore[assignment]
        prepared.func_name,
        args=args,
        kwargs=kwargs,
        connection=connection,
        id=options.job_id,
        origin=prepared.queue_name,
        meta=prepared.meta,
        description=options.description,
        serializer=state.serializer,
    )
    return job


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


def _queued_event(
    state: JobsState,
    job: Any,
    prepared: Prepared,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> dict[str, str]:
    """The history's "queued" event of ``job``."""
    return state.events.queued(
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


def _run_eager(
    state: JobsState,
    prepared: Prepared,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: JobOptions,
    job: FlaskJob | None = None,
) -> FlaskJob:
    """Run ``job`` (default: a new one) inline, in a fresh app context."""
    if job is None:
        # The client is never used: an eager job is not stored, so tests need no Redis.
        job = _job_object(state, prepared, args, kwargs, options, redis.Redis())
    job._jobs_held = None
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
