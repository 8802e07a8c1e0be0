"""The enqueue path: argument checks, the RQ job and its "queued" history event in one
round trip (for one run, or many runs of one job), or an inline run in eager mode; inside
a database transaction with writes, held until it commits or written to the outbox."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import redis
from flask import current_app
from rq.rate_limit import RateLimit
from rq.utils import now

from ..errors import ConfigurationError, JobsConnectionError
from ..jobs.eager import eager_job, run_eager
from ..jobs.flask_job import FlaskJob
from ..jobs.prepare import Prepared, limit_fields, prepare
from ..jobs.store import (
    STORE_MANY_SCRIPT,
    job_fields,
    new_job,
    run_at,
    run_pipeline,
    store_many,
    stored_as,
)
from ..keys import RATE_LIMIT_CONCURRENCY_FIELD, RATE_LIMIT_KEY_FIELD
from ..outbox.held import hold, session_with_writes
from ..outbox.table import OutboxRow
from .limited import kept, limited, push_limited
from .sending import new_jobs, own_meta, queued_event, sending
from .single import enqueue_claimed, store_one, stored_by_script

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..jobs.function import JobCall, JobOptions
    from ..state import JobsClient

__all__ = ["enqueue", "enqueue_claimed", "enqueue_many", "enqueue_runs"]


def enqueue(
    state: JobsClient,
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
    prepared = prepare(state.config, path, options, [(args, kwargs)])
    limit_fields(path, options, args, kwargs)  # a bad key enqueues nothing
    when = None
    if delay is not None:
        when = now() + delay
    elif at is not None:
        when = at.astimezone(timezone.utc)  # a naive datetime is local time, as in Python
    session = _transaction(state, options)
    if session is not None:
        return _with_transaction(state, session, prepared, [(args, kwargs)], options, when)[0]
    if state.config.eager:
        return _run_now(state, _eager_job(state, prepared, args, kwargs, options))
    return _push(state, prepared, args, kwargs, options, when)


def enqueue_runs(
    state: JobsClient,
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
    prepared = prepare(state.config, path, options, calls)  # a bad argument enqueues nothing
    for args, kwargs in calls:
        limit_fields(path, options, args, kwargs)
    session = _transaction(state, options)
    if session is not None:
        return _with_transaction(state, session, prepared, calls, options, None)
    if state.config.eager:
        return [
            _run_now(state, _eager_job(state, prepared, args, kwargs, options))
            for args, kwargs in calls
        ]
    if options.depends_on is not None or options.job_id is not None:
        return [_push(state, prepared, args, kwargs, options, None) for args, kwargs in calls]
    if limited(options):
        return push_limited(state, prepared, calls, options)
    return _push_many(state, prepared, calls, options)


def _push(
    state: JobsClient,
    prepared: Prepared,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: JobOptions,
    when: datetime | None,
    job: FlaskJob | None = None,
) -> FlaskJob:
    """Put one run (or the held ``job``) on its queue, or RQ's scheduled registry: one Lua
    call, or with ``depends_on`` or a fixed ``job_id``, RQ's own enqueue in one MULTI/EXEC."""
    if stored_by_script(options):
        job, reply = store_one(state, prepared, args, kwargs, options, when, job)
        return kept(state, job, stored_as(reply, job.id))
    queue = state.queue(prepared.queue_name)
    limits = limit_fields(prepared.path, options, args, kwargs)
    if options.unique or options.unique_key is not None:
        raise ConfigurationError(
            f"{prepared.func_name}: a unique job cannot have depends_on (a job waiting for "
            "another is never a duplicate of one on a queue); drop one of the two options"
        )
    rq_options = {
        **prepared.rq_options,
        "depends_on": options.depends_on,
        "job_id": job.id if job is not None else options.job_id,
    }
    if options.concurrency is not None:  # RQ's own rate-limited enqueue, same data
        rq_options["rate_limit"] = RateLimit(
            limits[RATE_LIMIT_KEY_FIELD], int(limits[RATE_LIMIT_CONCURRENCY_FIELD])
        )
    if when is not None:  # enqueue_at names the timeout job_timeout
        rq_options["job_timeout"] = rq_options.pop("timeout")
    elif options.concurrency is not None:
        # RQ takes a slot for a rate-limited job in a transaction of its own, not ours.
        with sending(state):
            rq_job = queue.enqueue_call(
                prepared.func_name, args=args, kwargs=kwargs, at_front=options.at_front,
                **rq_options,
            )  # fmt: skip
            if state.history_enabled:
                event = queued_event(state, rq_job, prepared, args, kwargs)
                state.connection.xadd(state.history_settings.stream, event)  # type: ignore[arg-type]
        assert isinstance(rq_job, FlaskJob)
        return rq_job
    for _ in range(10):  # a WatchError means a dependency changed under us: try again
        try:
            with sending(state), state.connection.pipeline() as pipe:
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
                    event = queued_event(state, rq_job, prepared, args, kwargs)
                    pipe.xadd(state.history_settings.stream, event)  # type: ignore[arg-type]
                pipe.execute()
            break
        except redis.WatchError:
            continue
    else:
        raise JobsConnectionError(
            f"could not enqueue {prepared.func_name}: its dependencies kept changing"
        )
    assert isinstance(rq_job, FlaskJob)
    return rq_job


def _push_many(
    state: JobsClient,
    prepared: Prepared,
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    options: JobOptions,
    jobs: list[FlaskJob] | None = None,
) -> list[FlaskJob]:
    """Put every run (or the held ``jobs``) on its queue: one Lua call per 500 runs, the
    fields they share sent once, all in one MULTI/EXEC."""
    queue = state.queue(prepared.queue_name)
    if jobs is None:
        jobs = new_jobs(queue, prepared, calls)
    history = state.history_enabled
    runs = [
        (job.id, job_fields(job), queued_event(state, job, prepared, a, k) if history else None)
        for job, (a, k) in zip(jobs, calls, strict=True)
    ]
    script = state.script(STORE_MANY_SCRIPT)
    stream = state.history_settings.stream

    def fill(pipe: Any) -> None:
        store_many(script, pipe, queue.name, runs, stream, at_front=options.at_front)

    with sending(state):
        run_pipeline(state.connection, fill, transaction=True)
    return jobs


# -- with the database transaction ------------------------------------------------


def _transaction(state: JobsClient, options: JobOptions) -> Session | None:
    """The session whose commit this enqueue waits for, or None: enqueue at once."""
    if state.db is None or options.on_commit is False:
        return None
    config = state.config
    if options.on_commit is None and not (config.enqueue_on_commit or config.outbox):
        return None
    return session_with_writes(state.db)


def _with_transaction(
    state: JobsClient,
    session: Session,
    prepared: Prepared,
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    options: JobOptions,
    when: datetime | None,
) -> list[FlaskJob]:
    """Write the runs to the outbox in ``session``'s transaction, or hold them until it commits."""
    config = state.config
    if config.eager:
        held = [_eager_job(state, prepared, args, kwargs, options) for args, kwargs in calls]
    else:
        queue = state.queue(prepared.queue_name)
        held = [
            new_job(
                queue,
                prepared.func_name,
                args,
                kwargs,
                own_meta(prepared),
                when=when,
                job_id=options.job_id,
            )
            for args, kwargs in calls
        ]
    if config.outbox and not config.eager:
        _to_outbox(state, session, prepared, calls, options, when, held)
        hold(session, held, None)
        return held

    def release() -> None:
        if config.eager:
            for job in held:
                _run_now(state, job)
        elif len(calls) == 1 or options.depends_on is not None or when is not None:
            for job, (args, kwargs) in zip(held, calls, strict=True):
                _push(state, prepared, args, kwargs, options, when, job)
        elif limited(options):
            push_limited(state, prepared, calls, options, held)
        else:
            _push_many(state, prepared, calls, options, held)

    hold(session, held, release)
    return held


def _to_outbox(
    state: JobsClient,
    session: Session,
    prepared: Prepared,
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    options: JobOptions,
    when: datetime | None,
    jobs: list[FlaskJob],
) -> None:
    """Insert one outbox row per job, in the caller's transaction (one statement)."""
    if options.depends_on is not None:
        raise ValueError(
            "depends_on cannot go through the outbox (the relay cannot wait for another job); "
            "enqueue this job with .options(on_commit=False)"
        )
    assert state.outbox_table is not None
    history = state.history_enabled
    values = [
        OutboxRow(
            job.id,
            prepared.queue_name,
            {**job_fields(job), **limit_fields(prepared.path, options, args, kwargs)},
            run_at(when),
            options.at_front,
            queued_event(state, job, prepared, args, kwargs) if history else None,
        ).to_values()
        for job, (args, kwargs) in zip(jobs, calls, strict=True)
    ]
    session.execute(state.outbox_table.insert(), values)


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


def _eager_job(
    state: JobsClient,
    prepared: Prepared,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: JobOptions,
) -> FlaskJob:
    return eager_job(
        prepared.func_name,
        args,
        kwargs,
        job_id=options.job_id,
        queue=prepared.queue_name,
        meta=prepared.meta,
        description=options.description,
        serializer=state.serializer,
    )


def _run_now(state: JobsClient, job: FlaskJob) -> FlaskJob:
    """Run an eager ``job`` in a fresh context of the current app."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return run_eager(job, app, propagate=state.config.eager_propagate)
